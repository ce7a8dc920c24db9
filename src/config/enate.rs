//! `[enate]`: the bridge's webhook subscriptions in Enate, as configuration,
//! for `enate-bridge subscriptions plan | apply | list | delete`.
//!
//! The section is inert by default: without subscriptions the bridge neither
//! needs nor contacts Enate, and `serve` never does. What can be checked
//! without Enate is checked at load, like every other key: webhook names,
//! GUIDs, filter types Enate's page says do not apply, URLs (HTTPS unless
//! `allow_http`), duplicates. Credentials are not required at load: a running
//! bridge does not need Enate's API token, only the job that runs
//! `subscriptions` does, so they are read (from the environment or a file)
//! when such a command runs.

use std::path::PathBuf;

use reqwest::Url;
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use super::{ConfigError, UrlSetting};
use crate::{
    enate_api::{FilterObjectType, applicable_filter_types},
    webhook::Webhook,
};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnateSettings {
    /// The Enate Web API's base URL, to which paths such as
    /// `WebHookSubscription/GetAllWebhookSubscriptions` are appended. Empty: not configured.
    pub api_url: UrlSetting,
    /// The bridge's public base URL, as Enate reaches it. A subscription's
    /// SubscriberURL defaults to `{public_url}/webhooks/{Webhook}`, and only
    /// subscriptions under it (or at a configured subscriber_url) are the bridge's own.
    pub public_url: UrlSetting,
    /// Accept http:// URLs (a test instance): the token and the secret then travel in clear.
    pub allow_http: bool,
    /// One request to Enate waits this long for its answer.
    pub request_timeout_secs: u64,
    /// A request that failed with a 5xx, a timeout or no connection is tried
    /// again this many times, with exponential backoff.
    pub retries: u32,
    /// The path of Enate's "Webhook Test – Simulate Event" operation (not in
    /// Enate's public text: the instance's Swagger page says), for `subscriptions verify`.
    pub test_path: String,
    pub auth: EnateAuthSettings,
    pub tls: EnateTlsSettings,
    pub subscriptions: Vec<SubscriptionEntry>,
}

/// `[enate.tls]`: what the Web API client trusts besides the system's roots.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnateTlsSettings {
    /// A PEM bundle of CA certificates trusted in addition to the system's
    /// (a company proxy that re-signs traffic, a private CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// `ca_file`'s certificates, read at load.
    #[serde(skip)]
    pub ca_certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// How the bridge authenticates to Enate's Web API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnateAuthMethod {
    /// `Authorization: Bearer <token>`, the token given.
    Bearer,
    /// An OAuth 2 client-credentials grant at `token_url`, then a bearer token.
    ClientCredentials,
    /// Older instances: a user name and password posted to `Authentication/Login`,
    /// whose answer is the token, sent as the `authToken` query parameter
    /// (as Enate's sample receiver does).
    Login,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnateAuthSettings {
    pub method: EnateAuthMethod,
    #[serde(
        serialize_with = "redact_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// A file holding the token (a mounted secret); instead of `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    pub token_url: String,
    pub client_id: String,
    #[serde(
        serialize_with = "redact_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret; instead of `client_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The `scope` of the token request; empty: none sent.
    pub scope: String,
    /// For `login`: the account's user name.
    pub username: String,
    #[serde(
        serialize_with = "redact_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<SecretString>,
    /// A file holding the password; instead of `password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// One subscription the bridge should have in Enate: `[[enate.subscriptions]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionEntry {
    pub webhook: Webhook,
    /// company (31), contract (215), service (217) or process (911): a name or code.
    pub filter_object_type: FilterObjectType,
    pub filter_object_guid: Uuid,
    /// Default: `{public_url}/webhooks/{Webhook}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_url: Option<String>,
}

impl Default for EnateSettings {
    fn default() -> Self {
        Self {
            api_url: UrlSetting::default(),
            public_url: UrlSetting::default(),
            allow_http: false,
            request_timeout_secs: 30,
            retries: 3,
            test_path: crate::enate_api::TEST_PATH.to_string(),
            auth: EnateAuthSettings::default(),
            tls: EnateTlsSettings::default(),
            subscriptions: Vec::new(),
        }
    }
}

impl Default for EnateAuthSettings {
    fn default() -> Self {
        Self {
            method: EnateAuthMethod::Bearer,
            token: None,
            token_file: None,
            token_url: String::new(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            scope: String::new(),
            username: String::new(),
            password: None,
            password_file: None,
        }
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(key, reason)
}

impl EnateSettings {
    /// Checks what serde cannot; the error names the key (and the entry).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("enate.api_url", &self.api_url),
            ("enate.public_url", &self.public_url),
        ] {
            if let Some(url) = value.url() {
                self.check_scheme(key, url)?;
            }
        }
        if !self.auth.token_url.is_empty() {
            self.check_url("enate.auth.token_url", &self.auth.token_url)?;
        }
        if let Some(url) = self.public_url.url()
            && (url.query().is_some() || url.fragment().is_some())
        {
            return Err(invalid(
                "enate.public_url",
                "must not have a query or fragment: paths are appended to it",
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid(
                "enate.request_timeout_secs",
                "must be greater than 0",
            ));
        }
        if self.auth.token.is_some() && self.auth.token_file.is_some() {
            return Err(invalid(
                "enate.auth.token",
                "give token or token_file, not both",
            ));
        }
        if self.auth.client_secret.is_some() && self.auth.client_secret_file.is_some() {
            return Err(invalid(
                "enate.auth.client_secret",
                "give client_secret or client_secret_file, not both",
            ));
        }
        if self.auth.password.is_some() && self.auth.password_file.is_some() {
            return Err(invalid(
                "enate.auth.password",
                "give password or password_file, not both",
            ));
        }
        let test_path = self.test_path.trim();
        if test_path.trim_matches('/').is_empty() || test_path.contains(['?', '#']) {
            return Err(invalid(
                "enate.test_path",
                "must be a path under enate.api_url, such as WebHookSubscription/SimulateEvent \
                 (no query: the subscription's GUID is added as webHookSubscriptionGUID)",
            ));
        }
        if self.subscriptions.is_empty() {
            return Ok(());
        }
        for (key, value) in [
            ("enate.api_url", &self.api_url),
            ("enate.public_url", &self.public_url),
        ] {
            if value.is_empty() {
                return Err(invalid(
                    key,
                    "is required when enate.subscriptions lists subscriptions",
                ));
            }
        }
        for (index, entry) in self.subscriptions.iter().enumerate() {
            self.check_entry(index, entry)?;
        }
        for (index, entry) in self.subscriptions.iter().enumerate() {
            if let Some(first) = self.subscriptions[..index]
                .iter()
                .position(|other| self.same_subscription(other, entry))
            {
                return Err(invalid(
                    format!("enate.subscriptions[{index}]"),
                    format!(
                        "repeats enate.subscriptions[{first}] (same webhook, filter object GUID and subscriber URL)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether there is anything for `subscriptions` to do.
    pub fn is_configured(&self) -> bool {
        self.api_url.url().is_some()
    }

    /// The SubscriberURL of an entry: its own, or `{public_url}/webhooks/{Webhook}`.
    pub fn subscriber_url(&self, entry: &SubscriptionEntry) -> String {
        match &entry.subscriber_url {
            Some(url) => url.clone(),
            None => format!(
                "{}/webhooks/{}",
                self.public_url.as_str().trim_end_matches('/'),
                entry.webhook.enate_name()
            ),
        }
    }

    /// Two entries for one subscription. The filter type is left out, as the
    /// plan leaves it out: a GUID names one object, whatever its type.
    fn same_subscription(&self, a: &SubscriptionEntry, b: &SubscriptionEntry) -> bool {
        a.webhook == b.webhook
            && a.filter_object_guid == b.filter_object_guid
            && normalize_url(&self.subscriber_url(a)) == normalize_url(&self.subscriber_url(b))
    }

    fn check_url(&self, key: &str, value: &str) -> Result<Url, ConfigError> {
        // Errors show the URL with any password hidden: it is printed at every start.
        let shown = crate::redact::redact_url(value);
        let url = Url::parse(value)
            .map_err(|error| invalid(key, format!("{shown:?} is not a URL ({error})")))?;
        self.check_scheme(key, &url)?;
        Ok(url)
    }

    /// HTTPS (or HTTP when allowed), a host, and no credentials.
    fn check_scheme(&self, key: &str, url: &Url) -> Result<(), ConfigError> {
        let shown = crate::redact::redact_url(url.as_str());
        if !url.username().is_empty() || url.password().is_some() {
            // A URL is printed by plan and list; credentials go in enate.auth.
            return Err(invalid(key, "must not hold credentials; use enate.auth"));
        }
        let value = &shown;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(invalid(
                    key,
                    format!(
                        "{value:?} is not HTTPS; set enate.allow_http = true only for a test instance \
                         (the token and the webhook secret would travel in clear)"
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    key,
                    format!("{value:?}: scheme {other} is not https"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(key, format!("{value:?} has no host")));
        }
        Ok(())
    }

    fn check_entry(&self, index: usize, entry: &SubscriptionEntry) -> Result<(), ConfigError> {
        let key = |name: &str| format!("enate.subscriptions[{index}].{name}");
        let allowed = applicable_filter_types(entry.webhook);
        if !allowed.contains(&entry.filter_object_type) {
            let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
            return Err(invalid(
                key("filter_object_type"),
                format!(
                    "{} does not apply to {} (Enate's page: it takes {})",
                    entry.filter_object_type,
                    entry.webhook,
                    names.join(", ")
                ),
            ));
        }
        if entry.filter_object_guid.is_nil() {
            return Err(invalid(
                key("filter_object_guid"),
                "the nil GUID names no object; give the GUID of the company, contract, service or process",
            ));
        }
        if let Some(url) = &entry.subscriber_url {
            let parsed = self.check_url(&key("subscriber_url"), url)?;
            // The bridge learns the webhook from the path alone (the body does
            // not say): a URL naming another webhook would mislabel every event.
            let last = parsed
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .unwrap_or_default();
            if Webhook::from_path_segment(last) != Some(entry.webhook) {
                return Err(invalid(
                    key("subscriber_url"),
                    format!(
                        "{url:?} must end in /{} (the bridge learns the webhook from the path)",
                        entry.webhook
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A URL for comparing: scheme and host lowercased (the URL parser does it),
/// default port dropped, no trailing slash. Text that is no URL is only trimmed.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    match Url::parse(url) {
        Ok(parsed) => parsed.as_str().trim_end_matches('/').to_string(),
        Err(_) => url.trim_end_matches('/').to_string(),
    }
}

fn redact_option<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{ConfigError, Settings};

    const GUID: &str = "aaaaaaaa-1111-4222-8333-444444444444";

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, format!("[auth]\nsecrets = [\"s\"]\n{toml}")).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(Some(&path), Some(env))
    }

    fn section(entries: &str) -> String {
        format!(
            "[enate]\napi_url = \"https://enate.example.com/webapi\"\n\
             public_url = \"https://bridge.example.com\"\n{entries}"
        )
    }

    fn entry(webhook: &str, filter_type: &str, guid: &str) -> String {
        format!(
            "[[enate.subscriptions]]\nwebhook = \"{webhook}\"\nfilter_object_type = {filter_type}\n\
             filter_object_guid = \"{guid}\"\n"
        )
    }

    #[test]
    fn without_an_enate_section_nothing_is_configured() {
        let settings = load("", &[]).unwrap();
        assert!(!settings.enate.is_configured());
        assert!(settings.enate.subscriptions.is_empty());
    }

    #[test]
    fn subscriptions_load_with_names_or_codes() {
        let settings = load(
            &section(&format!(
                "{}{}",
                entry("PacketCreated", "\"Company\"", GUID),
                entry("packet_updated", "215", &GUID.to_uppercase()),
            )),
            &[],
        )
        .unwrap();
        let [first, second] = &settings.enate.subscriptions[..] else {
            panic!("two entries");
        };
        assert_eq!(first.webhook, Webhook::PacketCreated);
        assert_eq!(first.filter_object_type, FilterObjectType::Company);
        assert_eq!(second.webhook, Webhook::PacketUpdated);
        assert_eq!(second.filter_object_type, FilterObjectType::Contract);
        assert_eq!(second.filter_object_guid.to_string(), GUID);
        assert_eq!(
            settings.enate.subscriber_url(first),
            "https://bridge.example.com/webhooks/PacketCreated"
        );
    }

    /// Wrong `[[enate.subscriptions]]` entries and the key each error must name.
    fn bad_subscriptions() -> Vec<(String, &'static str)> {
        vec![
            (
                section(&entry("PacketDeleted", "31", GUID)),
                "unknown webhook \"PacketDeleted\" for key `enate.subscriptions[0].webhook`",
            ),
            (
                section(&entry("PacketCreated", "31", "not-a-guid")),
                "enate.subscriptions[0].filter_object_guid",
            ),
            (
                section(&entry("PacketCreated", "\"schedule\"", GUID)),
                "enate.subscriptions[0].filter_object_type",
            ),
            (
                section(&entry("PacketCreated", "32", GUID)),
                "enate.subscriptions[0].filter_object_type",
            ),
            (
                section(&format!(
                    "{}{}",
                    entry("PacketUpdated", "31", GUID),
                    entry("PacketCreated", "\"process\"", GUID)
                )),
                "enate.subscriptions[1].filter_object_type: process does not apply to PacketCreated",
            ),
            (
                section(&entry(
                    "PacketUpdated",
                    "31",
                    "00000000-0000-0000-0000-000000000000",
                )),
                "enate.subscriptions[0].filter_object_guid",
            ),
            (
                section(&format!(
                    "{}subscriber_url = \"https://elsewhere.example.com/hooks/PacketUpdated\"\n",
                    entry("PacketCreated", "31", GUID)
                )),
                "enate.subscriptions[0].subscriber_url",
            ),
            (
                section(&format!(
                    "{}subscriber_url = \"http://elsewhere.example.com/PacketCreated\"\n",
                    entry("PacketCreated", "31", GUID)
                )),
                "enate.subscriptions[0].subscriber_url",
            ),
            (
                section(&format!(
                    "{}{}",
                    entry("PacketUpdated", "31", GUID),
                    entry("PacketUpdated", "\"contract\"", GUID)
                )),
                "enate.subscriptions[1]: repeats enate.subscriptions[0]",
            ),
        ]
    }

    /// Wrong URLs, keys and `[enate.auth]` of `[enate]`, and the key each error must name.
    fn bad_urls_and_auth() -> Vec<(String, &'static str)> {
        vec![
            (
                format!(
                    "[enate]\npublic_url = \"https://b.example.com\"\n{}",
                    entry("PacketUpdated", "31", GUID)
                ),
                "enate.api_url: is required",
            ),
            (
                "[enate]\npublic_url = \"http://bridge.example.com\"\n".to_string(),
                "enate.public_url",
            ),
            (
                "[enate]\napi_url = \"https://user:pw@enate.example.com\"\n".to_string(),
                "enate.api_url: must not hold credentials",
            ),
            (
                "[enate]\npublic_url = \"https://bridge.example.com/?x=1\"\n".to_string(),
                "enate.public_url",
            ),
            ("[enate]\nretrys = 3\n".to_string(), "enate.retrys"),
            (
                "[enate.auth]\nmethod = \"password\"\n".to_string(),
                "method",
            ),
            (
                "[enate.auth]\ntoken = \"tok-value\"\ntoken_file = \"/run/secrets/t\"\n"
                    .to_string(),
                "enate.auth.token",
            ),
            (
                "[enate.auth]\npassword = \"tok-value\"\npassword_file = \"/run/secrets/p\"\n"
                    .to_string(),
                "enate.auth.password: give password or password_file, not both",
            ),
            (
                "[enate]\ntest_path = \"WebHookSubscription/SimulateEvent?x=1\"\n".to_string(),
                "enate.test_path",
            ),
        ]
    }

    #[test]
    fn bad_entries_name_their_key() {
        for (toml, expected) in bad_subscriptions().into_iter().chain(bad_urls_and_auth()) {
            let error = load(&toml, &[]).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{toml}\nwanted {expected:?} in: {error}"
            );
            assert!(
                !error.contains("tok-value") && !error.contains(":pw@"),
                "leaked: {error}"
            );
        }
    }

    #[test]
    fn http_is_accepted_only_when_allowed() {
        let toml = "[enate]\nallow_http = true\napi_url = \"http://127.0.0.1:9000\"\npublic_url = \"http://127.0.0.1:8080/\"\n";
        let settings = load(
            &format!("{toml}{}", entry("NewCommunication", "\"process\"", GUID)),
            &[],
        )
        .unwrap();
        assert_eq!(
            settings
                .enate
                .subscriber_url(&settings.enate.subscriptions[0]),
            "http://127.0.0.1:8080/webhooks/NewCommunication"
        );
    }

    #[test]
    fn credentials_come_from_the_environment_and_are_redacted() {
        let settings = load(
            "[enate]\napi_url = \"https://enate.example.com/webapi\"\n",
            &[
                ("ENATE_BRIDGE__ENATE__AUTH__TOKEN", "tok-value"),
                (
                    "ENATE_BRIDGE__ENATE__AUTH__CLIENT_SECRET",
                    "client-secret-value",
                ),
                ("ENATE_BRIDGE__ENATE__AUTH__METHOD", "client_credentials"),
            ],
        )
        .unwrap();
        assert_eq!(
            settings.enate.auth.method,
            EnateAuthMethod::ClientCredentials
        );
        let text = settings.to_redacted_toml();
        assert!(
            !text.contains("tok-value") && !text.contains("client-secret-value"),
            "{text}"
        );
        assert!(text.contains("token = \"[redacted]\""), "{text}");
    }

    #[test]
    fn the_login_password_comes_from_the_environment_and_is_redacted() {
        let settings = load(
            "[enate]\napi_url = \"https://enate.example.com/webapi\"\n\
             [enate.auth]\nmethod = \"login\"\nusername = \"bridge-account\"\n",
            &[("ENATE_BRIDGE__ENATE__AUTH__PASSWORD", "password-value")],
        )
        .unwrap();
        assert_eq!(settings.enate.auth.method, EnateAuthMethod::Login);
        assert_eq!(settings.enate.auth.username, "bridge-account");
        let text = settings.to_redacted_toml();
        assert!(!text.contains("password-value"), "{text}");
        assert!(text.contains("password = \"[redacted]\""), "{text}");
    }

    #[test]
    fn urls_compare_without_case_of_host_default_port_or_trailing_slash() {
        assert_eq!(
            normalize_url("HTTPS://Bridge.Example.com:443/webhooks/PacketCreated/"),
            normalize_url("https://bridge.example.com/webhooks/PacketCreated")
        );
        assert_ne!(
            normalize_url("https://bridge.example.com/webhooks/PacketCreated"),
            normalize_url("https://bridge.example.com/webhooks/PacketUpdated")
        );
    }
}
