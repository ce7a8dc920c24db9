//! Webhook authenticity: Enate adds the subscription's CustomHeader with its
//! CustomHeaderValue to every message; the value must be one of `auth.secrets`.

use actix_web::http::header::{HeaderMap, HeaderName};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::Secret;

#[derive(Clone)]
pub struct Authenticator {
    header: HeaderName,
    /// Empty only when unauthenticated access was asked for.
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("header", &self.header)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Authenticator {
    /// `header` and `secrets` were checked (and the secrets trimmed) with the configuration.
    pub fn new(header: HeaderName, secrets: &[Secret]) -> Self {
        Self {
            header,
            secrets: secrets.to_vec(),
        }
    }

    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// Whether the request carries an accepted secret. Every secret is compared,
    /// in constant time, so the answer's timing says nothing about which matched
    /// or how much of a guess was right.
    pub fn is_authentic(&self, headers: &HeaderMap) -> bool {
        if self.secrets.is_empty() {
            return true;
        }
        let Some(given) = headers.get(&self.header) else {
            return false;
        };
        let given = given.as_bytes().trim_ascii();
        let mut matched = subtle::Choice::from(0);
        for secret in &self.secrets {
            matched |= given.ct_eq(secret.expose_secret().as_bytes());
        }
        matched.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn authenticator(secrets: &[&str]) -> Authenticator {
        let secrets: Vec<Secret> = secrets.iter().map(|s| s.parse().unwrap()).collect();
        Authenticator::new(HeaderName::from_static("x-enate-secret"), &secrets)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn accepts_any_configured_secret_after_trimming() {
        let auth = authenticator(&[" old-secret", "new-secret "]);
        let cases = [
            ("old-secret", true),
            ("new-secret", true),
            ("  new-secret\t", true),
            ("new-secret-x", false),
            ("new-secre", false),
            ("", false),
            ("NEW-SECRET", false),
        ];
        for (given, expected) in cases {
            assert_eq!(
                auth.is_authentic(&headers(&[("x-enate-secret", given)])),
                expected,
                "{given:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_other_header_is_refused() {
        let auth = authenticator(&["s3cret"]);
        assert!(!auth.is_authentic(&headers(&[])));
        assert!(!auth.is_authentic(&headers(&[("x-other", "s3cret")])));
    }

    #[test]
    fn the_header_name_is_case_insensitive() {
        // HeaderName normalizes to lowercase; a configured "X-Enate-Secret" matches any casing.
        let header = HeaderName::try_from("X-Enate-Secret").unwrap();
        let auth = Authenticator::new(header, &["s".parse().unwrap()]);
        assert!(auth.is_authentic(&headers(&[("x-enate-secret", "s")])));
    }

    #[test]
    fn no_secrets_means_unauthenticated_access() {
        assert!(authenticator(&[]).is_authentic(&headers(&[])));
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let text = format!("{:?}", authenticator(&["hunter2"]));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
