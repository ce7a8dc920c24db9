//! Setting values that are text in the file and the environment, and typed
//! everywhere else: each parses once, when the configuration is loaded, so an
//! invalid value stops the start with its key named, and no other module
//! parses it again. Each keeps the text it was given, for `check-config`.

use std::{
    fmt,
    net::{SocketAddr, ToSocketAddrs},
};

use actix_web::http::header::HeaderName;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// An address to listen on: `IP:PORT`, or `HOST:PORT` with a host name
/// (`localhost:8080`) resolved when the configuration is loaded, IPv4 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    text: String,
    address: SocketAddr,
}

impl ListenAddress {
    pub fn parse(text: &str) -> Result<Self, NotAnAddress> {
        let address = match text.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => resolve(text)?,
        };
        Ok(Self {
            text: text.to_string(),
            address,
        })
    }

    pub fn socket_address(&self) -> SocketAddr {
        self.address
    }

    /// How a process on this host reaches the listener: a wildcard address
    /// (0.0.0.0, [::]) becomes loopback.
    pub fn reachable_from_here(&self) -> SocketAddr {
        let mut address = self.address;
        if address.ip().is_unspecified() {
            address.set_ip(match address {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        address
    }
}

/// What to write instead, ending every address error: whoever reads it is
/// fixing the value by hand.
const ADDRESS_EXAMPLE: &str =
    "write an address like 0.0.0.0:8080, 127.0.0.1:8080 or localhost:8080";

/// Text that is not an address to listen on.
#[derive(Debug, thiserror::Error)]
pub enum NotAnAddress {
    #[error("{text:?} has no port: {ADDRESS_EXAMPLE}")]
    NoPort { text: String },
    /// The resolver's reason is part of the sentence (as the message always
    /// was), not a source, so an error chain does not repeat it.
    #[error("{text:?} is not an address ({reason}): {ADDRESS_EXAMPLE}")]
    Unresolvable {
        text: String,
        reason: std::io::Error,
    },
    #[error("{text:?} resolves to no address: {ADDRESS_EXAMPLE}")]
    NoAddress { text: String },
}

fn resolve(text: &str) -> Result<SocketAddr, NotAnAddress> {
    let text_owned = || text.to_string();
    if !text.contains(':') {
        return Err(NotAnAddress::NoPort { text: text_owned() });
    }
    let addresses: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|reason| NotAnAddress::Unresolvable {
            text: text_owned(),
            reason,
        })?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| NotAnAddress::NoAddress { text: text_owned() })
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An HTTP header name (`auth.header`), case-insensitive like every header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSetting {
    text: String,
    name: HeaderName,
}

/// Text that is not an HTTP header name (or is empty, which `HeaderName`
/// would otherwise refuse with no word of why).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text:?} is not a valid header name")]
pub struct NotAHeaderName {
    text: String,
}

impl HeaderSetting {
    pub fn parse(text: &str) -> Result<Self, NotAHeaderName> {
        let name = HeaderName::try_from(text)
            .ok()
            .filter(|_| !text.is_empty())
            .ok_or_else(|| NotAHeaderName {
                text: text.to_string(),
            })?;
        Ok(Self {
            text: text.to_string(),
            name,
        })
    }

    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// As written in the configuration (Enate's CustomHeader keeps its casing).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for HeaderSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IANA time zone name (`events.naive_time_zone`), e.g. `Europe/London`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeZoneSetting {
    text: String,
    zone: jiff::tz::TimeZone,
}

/// Text that names no time zone in the IANA database.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text:?} is not an IANA time zone name (e.g. Europe/London)")]
pub struct NotATimeZone {
    text: String,
}

impl TimeZoneSetting {
    pub fn parse(text: &str) -> Result<Self, NotATimeZone> {
        let zone = jiff::tz::TimeZone::get(text).map_err(|_| NotATimeZone {
            text: text.to_string(),
        })?;
        Ok(Self {
            text: text.to_string(),
            zone,
        })
    }

    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }
}

impl fmt::Display for TimeZoneSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A URL of `[enate]` (`enate.api_url`, `enate.public_url`), parsed when
/// loaded; empty means not set. Whether it may be used (HTTPS, no
/// credentials) depends on `enate.allow_http`, so the section checks that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlSetting {
    text: String,
    url: Option<reqwest::Url>,
}

/// Text that is not a URL; shown without its password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{shown:?} is not a URL ({reason})")]
pub struct NotAUrl {
    shown: String,
    reason: String,
}

impl UrlSetting {
    pub fn parse(text: &str) -> Result<Self, NotAUrl> {
        let url = match text {
            "" => None,
            text => Some(reqwest::Url::parse(text).map_err(|reason| NotAUrl {
                shown: crate::redact::redact_url(text),
                reason: reason.to_string(),
            })?),
        };
        Ok(Self {
            text: text.to_string(),
            url,
        })
    }

    /// `None` when not set.
    pub fn url(&self) -> Option<&reqwest::Url> {
        self.url.as_ref()
    }

    /// As written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.url.is_none()
    }
}

impl fmt::Display for UrlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Serde for a value that parses from its text and displays as it.
macro_rules! text_serde {
    ($type:ty) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$type>::parse(&text).map_err(D::Error::custom)
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

text_serde!(ListenAddress);
text_serde!(HeaderSetting);
text_serde!(TimeZoneSetting);
text_serde!(UrlSetting);
text_serde!(crate::routing::RoutingKeyTemplate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_ips_and_host_names() {
        let cases = [
            ("0.0.0.0:8080", "0.0.0.0:8080", "127.0.0.1:8080"),
            ("127.0.0.1:9091", "127.0.0.1:9091", "127.0.0.1:9091"),
            ("[::]:8080", "[::]:8080", "[::1]:8080"),
            ("localhost:8080", "127.0.0.1:8080", "127.0.0.1:8080"),
        ];
        for (text, bound, reached) in cases {
            let address = ListenAddress::parse(text).unwrap();
            assert_eq!(address.socket_address().to_string(), bound, "{text}");
            assert_eq!(address.reachable_from_here().to_string(), reached, "{text}");
            assert_eq!(address.to_string(), text, "displayed as written");
        }
    }

    #[test]
    fn a_bad_address_says_what_to_write() {
        for text in ["nonsense", "localhost", "no-such-host.invalid:80", ""] {
            let error = ListenAddress::parse(text).unwrap_err().to_string();
            assert!(error.contains("localhost:8080"), "{text}: {error}");
        }
    }

    #[test]
    fn header_names_keep_their_casing_for_enate() {
        let header = HeaderSetting::parse("X-Enate-Secret").unwrap();
        assert_eq!(header.as_str(), "X-Enate-Secret");
        assert_eq!(header.name().as_str(), "x-enate-secret");
        assert!(HeaderSetting::parse("bad header").is_err());
        assert!(HeaderSetting::parse("").is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            TimeZoneSetting::parse("Europe/London").unwrap().to_string(),
            "Europe/London"
        );
        assert!(TimeZoneSetting::parse("Mars/Olympus").is_err());
    }
}
