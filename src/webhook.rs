//! The six Enate webhooks. The body of a webhook does not say which one it is,
//! so the bridge learns it from the URL Enate was given: `/webhooks/{webhook}`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    PacketCreated,
    PacketUpdated,
    NewCommunication,
    BusinessObjectCreated,
    BusinessObjectUpdated,
    SpecificBusinessObjectUpdated,
}

impl Webhook {
    pub const ALL: [Webhook; 6] = [
        Webhook::PacketCreated,
        Webhook::PacketUpdated,
        Webhook::NewCommunication,
        Webhook::BusinessObjectCreated,
        Webhook::BusinessObjectUpdated,
        Webhook::SpecificBusinessObjectUpdated,
    ];

    /// The name as Enate spells it (the `Webhook` parameter of a subscription).
    pub fn enate_name(self) -> &'static str {
        match self {
            Webhook::PacketCreated => "PacketCreated",
            Webhook::PacketUpdated => "PacketUpdated",
            Webhook::NewCommunication => "NewCommunication",
            Webhook::BusinessObjectCreated => "BusinessObjectCreated",
            Webhook::BusinessObjectUpdated => "BusinessObjectUpdated",
            Webhook::SpecificBusinessObjectUpdated => "SpecificBusinessObjectUpdated",
        }
    }

    /// The snake_case name used in routing keys, event types and metric labels.
    pub fn event_name(self) -> &'static str {
        match self {
            Webhook::PacketCreated => "packet_created",
            Webhook::PacketUpdated => "packet_updated",
            Webhook::NewCommunication => "new_communication",
            Webhook::BusinessObjectCreated => "business_object_created",
            Webhook::BusinessObjectUpdated => "business_object_updated",
            Webhook::SpecificBusinessObjectUpdated => "specific_business_object_updated",
        }
    }

    /// Whether the body's `GUID` is the packet's own (and so a CloudEvents subject).
    pub fn is_packet_event(self) -> bool {
        matches!(self, Webhook::PacketCreated | Webhook::PacketUpdated)
    }

    /// Position in [`Webhook::ALL`], for tables indexed by webhook.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Matches `PacketCreated`, `packetcreated`, `packet_created`, `Packet-Created`, ...
    pub fn from_path_segment(segment: &str) -> Option<Webhook> {
        let (mut given, mut known) = ([0u8; 48], [0u8; 48]);
        let folded = fold_ascii(segment, &mut given)?;
        Webhook::ALL
            .into_iter()
            .find(|webhook| fold_ascii(webhook.enate_name(), &mut known) == Some(folded))
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.enate_name())
    }
}

/// Lowercases and drops separators (`_`, `-`, space), so names compare whatever
/// their casing or separator. Folds into a stack buffer, since it runs for every
/// key of every payload. `None` when the name has a non-ASCII character or folds
/// to more than `N` bytes: it then cannot be one of the ASCII names it is
/// matched against.
pub(crate) fn fold_ascii<'b, const N: usize>(
    name: &str,
    buffer: &'b mut [u8; N],
) -> Option<&'b str> {
    let mut length = 0;
    for byte in name.bytes() {
        if matches!(byte, b'_' | b'-' | b' ') {
            continue;
        }
        if !byte.is_ascii() || length == N {
            return None;
        }
        buffer[length] = byte.to_ascii_lowercase();
        length += 1;
    }
    std::str::from_utf8(&buffer[..length]).ok()
}

/// Serialized as the name Enate spells it (the spool keeps it this way).
impl serde::Serialize for Webhook {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.enate_name())
    }
}

impl<'de> serde::Deserialize<'de> for Webhook {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Webhook::from_path_segment(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown webhook {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_webhook_matches_its_names() {
        for webhook in Webhook::ALL {
            for form in [
                webhook.enate_name().to_string(),
                webhook.enate_name().to_lowercase(),
                webhook.enate_name().to_uppercase(),
                webhook.event_name().to_string(),
            ] {
                assert_eq!(Webhook::from_path_segment(&form), Some(webhook), "{form}");
            }
            assert_eq!(Webhook::ALL[webhook.index()], webhook);
        }
    }

    #[test]
    fn names_fold_to_lowercase_without_separators() {
        let mut buffer = [0u8; 32];
        for (name, folded) in [
            ("StartedbyMethod", "startedbymethod"),
            ("Started_By-Method", "startedbymethod"),
            ("in progress", "inprogress"),
            ("GUID", "guid"),
            ("", ""),
        ] {
            assert_eq!(fold_ascii(name, &mut buffer), Some(folded), "{name}");
        }
        assert_eq!(fold_ascii("Ünïcode", &mut buffer), None);
        assert_eq!(fold_ascii(&"x".repeat(33), &mut buffer), None);
    }

    #[test]
    fn other_names_do_not_match() {
        for name in ["", "Packet", "PacketDeleted", "packet__created_x", "../etc"] {
            assert_eq!(Webhook::from_path_segment(name), None, "{name}");
        }
    }
}
