//! Secrets in the configuration: `auth.secrets` as a [`Secret`] each, trimmed
//! and non-empty from the moment it is loaded, so no user of one trims it again;
//! the lists `auth.secrets` and `amqp.urls` read from TOML or the environment
//! without a value reaching an error; and the redacted forms `check-config`
//! prints.

use std::{fmt, str::FromStr};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serializer};

use crate::amqp::{AmqpUrl, NotAnAmqpUrl};

/// A webhook secret (one of `auth.secrets`): trimmed, because Enate's own
/// example value has a leading space and the bridge trims what it is sent, and
/// never empty, since an empty secret would accept a request without one.
/// Debug shows no part of it.
#[derive(Clone)]
pub struct Secret(SecretString);

/// A secret that is empty once trimmed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("is empty (secrets are trimmed before comparing)")]
pub struct EmptySecret;

impl FromStr for Secret {
    type Err = EmptySecret;

    fn from_str(text: &str) -> Result<Self, EmptySecret> {
        match text.trim() {
            "" => Err(EmptySecret),
            trimmed => Ok(Self(SecretString::from(trimmed))),
        }
    }
}

impl Secret {
    /// For code below the configuration that takes secrecy's own type (`enate_api`).
    pub fn as_secret_string(&self) -> &SecretString {
        &self.0
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// An item of a list that may hold secrets, made from its text when loaded.
pub(super) trait ListItem: Sized {
    /// The key of the list, to name an item in an error (`auth.secrets[1]`).
    const KEY: &'static str;
    /// What follows the item's name in an error; it never shows a secret.
    type Error: fmt::Display;
    fn from_text(text: &str) -> Result<Self, Self::Error>;
}

impl ListItem for Secret {
    const KEY: &'static str = "auth.secrets";
    type Error = EmptySecret;
    fn from_text(text: &str) -> Result<Self, EmptySecret> {
        text.parse()
    }
}

/// `auth.secrets` and `amqp.urls`: a list of strings, or one string of
/// comma-separated items (as the environment gives them, and as people write
/// them in TOML by mistake). A wrong type is refused without the value in the
/// message: serde's own message would quote it, secret and all.
pub(super) fn secret_list<'de, D: serde::Deserializer<'de>, T: ListItem>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    deserializer.deserialize_any(SecretListVisitor(std::marker::PhantomData))
}

const NOT_A_SECRET_LIST: &str = "expected a list of strings, or one string of comma-separated items (the value is not shown: it may be a secret)";

struct SecretListVisitor<T>(std::marker::PhantomData<T>);

/// Makes the items, naming the first that is wrong by its index.
fn items<E: serde::de::Error, T: ListItem>(
    texts: impl IntoIterator<Item = SecretString>,
) -> Result<Vec<T>, E> {
    texts
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            T::from_text(text.expose_secret())
                .map_err(|error| E::custom(format!("{}[{index}] {error}", T::KEY)))
        })
        .collect()
}

impl<'de, T: ListItem> serde::de::Visitor<'de> for SecretListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_A_SECRET_LIST)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        items(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(SecretString::from),
        )
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut texts = Vec::new();
        while let Some(SecretItem(item)) = seq.next_element()? {
            texts.push(item);
        }
        items(texts)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_SECRET_LIST))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_SECRET_LIST))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_SECRET_LIST))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_SECRET_LIST))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(serde::de::Error::custom(NOT_A_SECRET_LIST))
    }
}

/// One item of a secret list: text, or a number taken as its digits.
struct SecretItem(SecretString);

impl<'de> Deserialize<'de> for SecretItem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl serde::de::Visitor<'_> for ItemVisitor {
            type Value = SecretItem;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string (the value is not shown: it may be a secret)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SecretItem, E> {
                Ok(SecretItem(SecretString::from(text)))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<SecretItem, E> {
                Ok(SecretItem(SecretString::from(number.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<SecretItem, E> {
                Ok(SecretItem(SecretString::from(number.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretItem, E> {
                Err(E::custom(
                    "expected a string (the value is not shown: it may be a secret)",
                ))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretItem, E> {
                Err(E::custom(
                    "expected a string (the value is not shown: it may be a secret)",
                ))
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

pub(super) fn redact_all<S: Serializer>(secrets: &[Secret], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(|_| "[redacted]"))
}

impl ListItem for AmqpUrl {
    const KEY: &'static str = "amqp.urls";
    type Error = NotAnAmqpUrl;
    fn from_text(text: &str) -> Result<Self, NotAnAmqpUrl> {
        text.parse()
    }
}

pub(super) fn redact_url_passwords<S: Serializer>(
    urls: &[AmqpUrl],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(AmqpUrl::shown))
}
