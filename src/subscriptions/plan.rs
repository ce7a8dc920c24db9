//! The plan: the subscriptions `[enate]` asks for, against those Enate has.
//!
//! A subscription is identified by its webhook, filter object (type and GUID)
//! and SubscriberURL; what it carries (the custom header and its value) is
//! what can be *changed*. Only subscriptions pointing at this bridge (under
//! `enate.public_url`, or at a configured subscriber_url) are ever deleted:
//! other receivers' subscriptions in the same Enate are left alone.

use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use crate::enate_api::{FilterObjectType, Known, Subscription};
use crate::{
    config::{EnateSettings, Secret, normalize_url},
    webhook::Webhook,
};

/// One configured subscription, with its SubscriberURL resolved.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Its position in `enate.subscriptions`.
    pub entry: usize,
    pub webhook: Webhook,
    pub filter_object_type: FilterObjectType,
    pub filter_object_guid: Uuid,
    pub subscriber_url: String,
}

impl Desired {
    pub fn from_settings(enate: &EnateSettings) -> Vec<Desired> {
        enate
            .subscriptions
            .iter()
            .enumerate()
            .map(|(entry, subscription)| Desired {
                entry,
                webhook: subscription.webhook,
                filter_object_type: subscription.filter_object_type,
                filter_object_guid: subscription.filter_object_guid,
                subscriber_url: enate.subscriber_url(subscription),
            })
            .collect()
    }

    fn key(&self) -> Key {
        Key {
            webhook: self.webhook.enate_name().to_string(),
            filter_object_guid: self.filter_object_guid.hyphenated().to_string(),
            subscriber_url: normalize_url(&self.subscriber_url),
        }
    }

    /// Why Enate's filter type contradicts this one, if it does. A type Enate
    /// names in a way this bridge does not know (its docs show `"None"`) cannot
    /// contradict: the GUID names the object. Were the type part of the key, an
    /// instance answering `"None"` would make every apply subscribe again.
    fn type_difference(&self, subscription: &Subscription) -> Option<String> {
        match subscription.filter_object_type {
            Known::Known(given) if given != self.filter_object_type => Some(format!(
                "filter type is {given}, not {}",
                self.filter_object_type
            )),
            _ => None,
        }
    }
}

/// Whether a SubscriberURL is this bridge's: under `{public_url}/webhooks/`
/// (any webhook, even one the bridge does not know), or a configured one.
pub fn points_at_bridge(subscriber_url: &str, public_url: &str, desired: &[Desired]) -> bool {
    let url = normalize_url(subscriber_url);
    let under_public_url = !public_url.is_empty()
        && url.starts_with(&format!("{}/webhooks/", normalize_url(public_url)));
    under_public_url
        || desired
            .iter()
            .any(|wanted| normalize_url(&wanted.subscriber_url) == url)
}

/// What identifies a subscription, as comparable text. The filter type is
/// compared apart (see [`Desired::type_difference`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    webhook: String,
    filter_object_guid: String,
    subscriber_url: String,
}

impl Key {
    fn of(subscription: &Subscription) -> Key {
        Key {
            webhook: match &subscription.webhook {
                Known::Known(webhook) => webhook.enate_name().to_string(),
                Known::Other(text) => text.clone(),
            },
            filter_object_guid: match &subscription.filter_object_guid {
                Known::Known(guid) => guid.hyphenated().to_string(),
                Known::Other(text) => text.to_lowercase(),
            },
            subscriber_url: normalize_url(&subscription.subscriber_url),
        }
    }
}

/// What a subscription must carry: `auth.header` and the first of `auth.secrets`.
/// The other secrets are still accepted by the bridge (a rotation in progress).
pub struct Expected<'a> {
    pub header: &'a str,
    pub secrets: &'a [Secret],
}

impl Expected<'_> {
    /// The CustomHeaderValue new subscriptions get.
    pub fn secret(&self) -> &Secret {
        &self.secrets[0]
    }

    fn is_current(&self, subscription: &Subscription) -> bool {
        self.header_matches(subscription) && self.secret_index(subscription) == Some(0)
    }

    fn header_matches(&self, subscription: &Subscription) -> bool {
        subscription
            .custom_header
            .as_deref()
            .is_some_and(|header| header.trim().eq_ignore_ascii_case(self.header))
    }

    /// Which of `auth.secrets` the subscription carries, if any.
    pub fn secret_index(&self, subscription: &Subscription) -> Option<usize> {
        let value = subscription.custom_header_value.as_ref()?;
        self.secrets
            .iter()
            .position(|secret| secret.expose_secret() == value.expose_secret().trim())
    }

    /// Why a subscription is not current, in words without the secret.
    fn differences(&self, subscription: &Subscription) -> Vec<String> {
        let mut reasons = Vec::new();
        match subscription.custom_header.as_deref() {
            None => reasons.push(format!(
                "has no custom header (the bridge requires {})",
                self.header
            )),
            Some(_) if self.header_matches(subscription) => {}
            Some(header) => reasons.push(format!("custom header is {header}, not {}", self.header)),
        }
        match (
            subscription.custom_header_value.is_some(),
            self.secret_index(subscription),
        ) {
            (false, _) => reasons.push("has no CustomHeaderValue".into()),
            (true, Some(0)) => {}
            (true, Some(index)) => reasons.push(format!(
                "secret is auth.secrets[{index}], not the first (a rotation)"
            )),
            (true, None) => reasons.push(
                "secret is not one of auth.secrets (the bridge refuses its events with 401)".into(),
            ),
        }
        reasons
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Configured, not in Enate.
    Create,
    /// Configured and in Enate, but with another header or secret, or more than once:
    /// replaced by a current subscription.
    Change,
    Unchanged,
    /// The bridge's own, no longer configured: deleted by `apply --prune`.
    Delete,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Change => "change",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub action: Action,
    /// Its position in `enate.subscriptions`; none for a deletion.
    pub entry: Option<usize>,
    pub webhook: String,
    pub filter_object_type: String,
    pub filter_object_guid: String,
    pub subscriber_url: String,
    /// Enate's subscriptions this line is about (GUIDs).
    pub subscriptions: Vec<Uuid>,
    /// For a change: the subscription that is already current and stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<Uuid>,
    pub reasons: Vec<String>,
    #[serde(skip)]
    pub desired: Option<Desired>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub rows: Vec<Row>,
    /// Subscriptions in Enate that point elsewhere, left alone.
    pub other_receivers: usize,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    pub create: usize,
    pub change: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Plan {
    /// Compares the configured subscriptions with Enate's. `public_url` decides
    /// which of Enate's are the bridge's own.
    pub fn new(
        desired: &[Desired],
        existing: &[Subscription],
        expected: &Expected<'_>,
        public_url: &str,
    ) -> Plan {
        let keys: Vec<Key> = existing.iter().map(Key::of).collect();
        let mut claimed = vec![false; existing.len()];
        let mut rows = Vec::new();
        for wanted in desired {
            let key = wanted.key();
            let matches: Vec<usize> = (0..existing.len())
                .filter(|&index| keys[index] == key)
                .collect();
            matches.iter().for_each(|&index| claimed[index] = true);
            rows.push(desired_row(wanted, key, &matches, existing, expected));
        }
        let mut other_receivers = 0;
        for (index, subscription) in existing.iter().enumerate() {
            if claimed[index] {
                continue;
            }
            if points_at_bridge(&subscription.subscriber_url, public_url, desired) {
                rows.push(delete_row(subscription, &keys[index]));
            } else {
                other_receivers += 1;
            }
        }
        Plan {
            rows,
            other_receivers,
        }
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for row in &self.rows {
            match row.action {
                Action::Create => counts.create += 1,
                Action::Change => counts.change += 1,
                Action::Delete => counts.delete += 1,
                Action::Unchanged => counts.unchanged += 1,
            }
        }
        counts
    }

    /// Whether Enate differs from the configuration.
    pub fn has_changes(&self) -> bool {
        self.rows.iter().any(|row| row.action != Action::Unchanged)
    }
}

/// The row of one configured entry, given the existing subscriptions with its
/// key (`matches`): created when there is none, unchanged when exactly one is
/// current, changed otherwise, with the reasons why.
fn desired_row(
    wanted: &Desired,
    key: Key,
    matches: &[usize],
    existing: &[Subscription],
    expected: &Expected<'_>,
) -> Row {
    let current = matches.iter().copied().find(|&index| {
        expected.is_current(&existing[index]) && wanted.type_difference(&existing[index]).is_none()
    });
    let mut reasons = Vec::new();
    let action = match (matches.len(), current) {
        (0, _) => Action::Create,
        (1, Some(_)) => Action::Unchanged,
        (_, Some(_)) => {
            reasons.push(format!(
                "{} more subscription(s) for this entry: Enate would deliver each event more than once",
                matches.len() - 1
            ));
            Action::Change
        }
        (count, None) => {
            for &index in matches {
                let mut differences = expected.differences(&existing[index]);
                differences.extend(wanted.type_difference(&existing[index]));
                let differences = differences.join("; ");
                reasons.push(if count == 1 {
                    differences
                } else {
                    format!("{}: {differences}", existing[index].guid)
                });
            }
            Action::Change
        }
    };
    Row {
        action,
        entry: Some(wanted.entry),
        webhook: wanted.webhook.enate_name().to_string(),
        filter_object_type: wanted.filter_object_type.name().to_string(),
        filter_object_guid: key.filter_object_guid,
        subscriber_url: wanted.subscriber_url.clone(),
        subscriptions: matches.iter().map(|&index| existing[index].guid).collect(),
        keep: current.map(|index| existing[index].guid),
        reasons,
        desired: Some(wanted.clone()),
    }
}

/// The row of a subscription that points at this bridge but is no longer
/// configured: `apply --prune` deletes it.
fn delete_row(subscription: &Subscription, key: &Key) -> Row {
    Row {
        action: Action::Delete,
        entry: None,
        webhook: key.webhook.clone(),
        filter_object_type: match &subscription.filter_object_type {
            Known::Known(filter_type) => filter_type.name().to_string(),
            Known::Other(text) => text.clone(),
        },
        filter_object_guid: key.filter_object_guid.clone(),
        subscriber_url: subscription.subscriber_url.clone(),
        subscriptions: vec![subscription.guid],
        keep: None,
        reasons: vec!["points at this bridge but is not in enate.subscriptions".into()],
        desired: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    const PUBLIC: &str = "https://bridge.example.com";

    fn guid(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn desired(entry: usize, webhook: Webhook, filter: u8) -> Desired {
        Desired {
            entry,
            webhook,
            filter_object_type: FilterObjectType::Company,
            filter_object_guid: guid(filter),
            subscriber_url: format!("{PUBLIC}/webhooks/{webhook}"),
        }
    }

    fn existing(
        id: u8,
        webhook: &str,
        filter: u8,
        url: &str,
        header: &str,
        secret: &str,
    ) -> Subscription {
        Subscription {
            guid: guid(id),
            webhook: Webhook::from_path_segment(webhook)
                .map_or_else(|| Known::Other(webhook.into()), Known::Known),
            filter_object_type: Known::Known(FilterObjectType::Company),
            filter_object_guid: Known::Known(guid(filter)),
            subscriber_url: url.into(),
            custom_header: (!header.is_empty()).then(|| header.to_string()),
            custom_header_value: (!secret.is_empty()).then(|| SecretString::from(secret)),
        }
    }

    fn plan(desired: &[Desired], existing: &[Subscription], secrets: &[&str]) -> Plan {
        let secrets: Vec<Secret> = secrets.iter().map(|s| s.parse().unwrap()).collect();
        let expected = Expected {
            header: "X-Enate-Secret",
            secrets: &secrets,
        };
        Plan::new(desired, existing, &expected, PUBLIC)
    }

    fn actions(plan: &Plan) -> Vec<(Action, String)> {
        plan.rows
            .iter()
            .map(|row| (row.action, row.reasons.join(" | ")))
            .collect()
    }

    #[test]
    fn missing_is_created_current_is_unchanged_foreign_is_left_alone() {
        let url = format!("{PUBLIC}/webhooks/PacketUpdated");
        let plan = plan(
            &[
                desired(0, Webhook::PacketCreated, 1),
                desired(1, Webhook::PacketUpdated, 1),
            ],
            &[
                // Enate's own casing of the header, a padded secret and a trailing slash still match.
                existing(
                    10,
                    "PacketUpdated",
                    1,
                    &format!("{url}/"),
                    "x-enate-secret",
                    " new ",
                ),
                existing(
                    11,
                    "PacketUpdated",
                    1,
                    "https://other.example.com/hook",
                    "X",
                    "y",
                ),
            ],
            &["new"],
        );
        assert_eq!(
            actions(&plan),
            [
                (Action::Create, String::new()),
                (Action::Unchanged, String::new())
            ]
        );
        assert_eq!(plan.rows[1].subscriptions, [guid(10)]);
        assert_eq!(plan.other_receivers, 1);
        assert!(plan.has_changes());
    }

    #[test]
    fn header_and_secret_differences_are_changes_that_never_show_the_secret() {
        let url = format!("{PUBLIC}/webhooks/PacketUpdated");
        let cases = [
            (
                "X-Enate-Secret",
                "old",
                "secret is auth.secrets[1], not the first (a rotation)",
            ),
            (
                "X-Enate-Secret",
                "leaked",
                "secret is not one of auth.secrets",
            ),
            (
                "X-Other",
                "new",
                "custom header is X-Other, not X-Enate-Secret",
            ),
            ("", "new", "has no custom header"),
            ("X-Enate-Secret", "", "has no CustomHeaderValue"),
        ];
        for (header, secret, reason) in cases {
            let plan = plan(
                &[desired(0, Webhook::PacketUpdated, 1)],
                &[existing(10, "PacketUpdated", 1, &url, header, secret)],
                &["new", "old"],
            );
            let [(action, reasons)] = &actions(&plan)[..] else {
                panic!("one row");
            };
            assert_eq!(*action, Action::Change, "{header}/{secret}");
            assert!(reasons.contains(reason), "{header}/{secret}: {reasons}");
            assert!(plan.rows[0].keep.is_none());
            let json = serde_json::to_string(&plan).unwrap();
            assert!(
                !json.contains("leaked") && !json.contains("\"new\""),
                "{json}"
            );
        }
    }

    #[test]
    fn another_filter_type_is_a_change_but_a_type_enate_does_not_name_is_not() {
        let url = format!("{PUBLIC}/webhooks/PacketUpdated");
        let mut contract = existing(10, "PacketUpdated", 1, &url, "X-Enate-Secret", "new");
        contract.filter_object_type = Known::Known(FilterObjectType::Contract);
        let changed = plan(
            &[desired(0, Webhook::PacketUpdated, 1)],
            &[contract],
            &["new"],
        );
        assert_eq!(
            actions(&changed),
            [(
                Action::Change,
                "filter type is contract, not company".into()
            )]
        );

        let mut unnamed = existing(11, "PacketUpdated", 1, &url, "X-Enate-Secret", "new");
        unnamed.filter_object_type = Known::Other("None".into());
        let unchanged = plan(
            &[desired(0, Webhook::PacketUpdated, 1)],
            &[unnamed],
            &["new"],
        );
        assert_eq!(actions(&unchanged), [(Action::Unchanged, String::new())]);
    }

    #[test]
    fn a_second_subscription_for_one_entry_is_a_change_that_keeps_the_current_one() {
        let url = format!("{PUBLIC}/webhooks/PacketUpdated");
        let plan = plan(
            &[desired(0, Webhook::PacketUpdated, 1)],
            &[
                existing(10, "PacketUpdated", 1, &url, "X-Enate-Secret", "old"),
                existing(11, "PacketUpdated", 1, &url, "X-Enate-Secret", "new"),
            ],
            &["new", "old"],
        );
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].action, Action::Change);
        assert_eq!(plan.rows[0].keep, Some(guid(11)));
        assert_eq!(plan.rows[0].subscriptions, [guid(10), guid(11)]);
    }

    #[test]
    fn only_the_bridges_own_undesired_subscriptions_are_deleted() {
        let plan = plan(
            &[desired(0, Webhook::PacketUpdated, 1)],
            &[
                // Another filter object, same bridge: ours, not configured.
                existing(
                    10,
                    "PacketUpdated",
                    2,
                    &format!("{PUBLIC}/webhooks/PacketUpdated"),
                    "X-Enate-Secret",
                    "new",
                ),
                // A webhook name this bridge does not know, under its URL: still its own.
                existing(
                    11,
                    "PacketDeleted",
                    1,
                    &format!("{PUBLIC}/webhooks/PacketDeleted"),
                    "X-Enate-Secret",
                    "new",
                ),
                // The same host under another path, and another host: not ours.
                existing(
                    12,
                    "PacketUpdated",
                    1,
                    "https://bridge.example.com/other/PacketUpdated",
                    "X",
                    "y",
                ),
                existing(
                    13,
                    "PacketUpdated",
                    1,
                    "https://bridge.example.org/webhooks/PacketUpdated",
                    "X",
                    "y",
                ),
            ],
            &["new"],
        );
        let deleted: Vec<Uuid> = plan
            .rows
            .iter()
            .filter(|row| row.action == Action::Delete)
            .flat_map(|row| row.subscriptions.clone())
            .collect();
        assert_eq!(deleted, [guid(10), guid(11)]);
        assert_eq!(plan.other_receivers, 2);
        let counts = plan.counts();
        assert_eq!((counts.create, counts.delete), (1, 2));
    }

    #[test]
    fn nothing_configured_and_nothing_ours_is_no_change() {
        let plan = plan(
            &[],
            &[existing(
                12,
                "PacketUpdated",
                1,
                "https://elsewhere.example.com/x",
                "X",
                "y",
            )],
            &["new"],
        );
        assert!(plan.rows.is_empty() && !plan.has_changes());
    }
}
