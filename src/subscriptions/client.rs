//! The HTTP client of Enate's Web API: authentication, timeouts, bounded
//! retries with exponential backoff, and errors that say what to do.
//!
//! No secret reaches an error: Enate's error bodies are quoted (they often say
//! what is wrong), but only after every secret the client knows (the API token,
//! the client secret, the webhook secrets) is replaced with `[redacted]`, since
//! an answer may echo the request that carried them.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use uuid::Uuid;

use crate::config::{EnateAuthMethod, EnateSettings, Secret};
use crate::enate_api::{
    self, LIST_PATH, LOGIN_PATH, NewSubscription, SUBSCRIBE_PATH, Subscription,
    UNSUBSCRIBE_GUID_PARAMETER, UNSUBSCRIBE_PATH,
};
use crate::telemetry::error_chain;

/// The first retry waits this long, each next one twice as long (plus up to a
/// quarter of jitter), up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// How much of an Enate error body is quoted.
const DETAIL_CHARS: usize = 500;

/// A call to Enate, named as in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    List,
    Subscribe,
    Unsubscribe,
    Token,
    /// "Webhook Test – Simulate Event" (`enate.test_path`).
    Test,
    Login,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last_segment = |path: &'static str| path.rsplit('/').next().unwrap_or(path);
        f.write_str(match self {
            Operation::List => last_segment(LIST_PATH),
            Operation::Subscribe => last_segment(SUBSCRIBE_PATH),
            Operation::Unsubscribe => last_segment(UNSUBSCRIBE_PATH),
            Operation::Token => "the token request (enate.auth.token_url)",
            Operation::Test => "the test message (enate.test_path)",
            Operation::Login => last_segment(LOGIN_PATH),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnateError {
    /// The configuration lacks what a call needs (a token, a readable file).
    #[error("{0}")]
    Setup(String),
    #[error(
        "Enate refused {operation} ({status}){detail}. The account of enate.auth needs Enate's Process \
         Builder role and rights on the filter object (the company, contract, service or process); a \
         wrong or expired token is refused the same way"
    )]
    Refused {
        operation: Operation,
        status: StatusCode,
        detail: String,
    },
    #[error(
        "Enate answered {operation} with 404 Not Found{detail}. Check enate.api_url: the base URL of \
         the Web API, under which its Swagger page lists WebHookSubscription"
    )]
    NotFound {
        operation: Operation,
        detail: String,
    },
    #[error("Enate rejected {operation} ({status}){detail}")]
    Rejected {
        operation: Operation,
        status: StatusCode,
        detail: String,
    },
    #[error("Enate answered {operation} with {status} ({}){detail}", Attempts(*.attempts))]
    ServerError {
        operation: Operation,
        status: StatusCode,
        attempts: u32,
        detail: String,
    },
    /// Not retried: a certificate that is not trusted now will not be in a second.
    #[error(
        "cannot reach Enate for {operation}: the TLS certificate of {host} is not trusted \
         ({reason}); if a company proxy or a private CA signs it, set enate.tls.ca_file to that \
         CA's certificate (PEM)"
    )]
    UntrustedCertificate {
        operation: Operation,
        host: String,
        reason: String,
    },
    #[error("Enate did not answer {operation} within {timeout_secs} s ({})", Attempts(*.attempts))]
    Timeout {
        operation: Operation,
        timeout_secs: u64,
        attempts: u32,
    },
    #[error("cannot reach Enate for {operation} ({}): {reason}", Attempts(*.attempts))]
    Unreachable {
        operation: Operation,
        attempts: u32,
        reason: String,
    },
    #[error(
        "Enate's answer to {operation} is not shaped as the bridge expects ({reason}); compare the \
         instance's Swagger page with the README's \"Subscription API\""
    )]
    Unexpected {
        operation: Operation,
        reason: String,
    },
    #[error("Enate lists no subscription {0} (`enate-bridge subscriptions list` shows them)")]
    UnknownSubscription(Uuid),
    #[error(
        "the token endpoint refused the client credentials ({status}){detail}. Check \
         enate.auth.client_id and client_secret"
    )]
    TokenRefused { status: StatusCode, detail: String },
    #[error(
        "Enate refused the login ({status}){detail}. Check enate.auth.username and \
         enate.auth.password (ENATE_BRIDGE__ENATE__AUTH__PASSWORD or enate.auth.password_file)"
    )]
    LoginRefused { status: StatusCode, detail: String },
}

impl EnateError {
    /// A failure that may pass if tried again: a 5xx, 408 or 429, a timeout, no connection.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EnateError::ServerError { .. }
                | EnateError::Timeout { .. }
                | EnateError::Unreachable { .. }
        )
    }

    /// The same failure, counted over `total` attempts (for a retry loop outside the client).
    pub fn after_attempts(mut self, total: u32) -> Self {
        if let EnateError::ServerError { attempts, .. }
        | EnateError::Timeout { attempts, .. }
        | EnateError::Unreachable { attempts, .. } = &mut self
        {
            *attempts = total;
        }
        self
    }
}

/// "1 attempt", "3 attempts".
struct Attempts(u32);

impl std::fmt::Display for Attempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => f.write_str("1 attempt"),
            n => write!(f, "{n} attempts"),
        }
    }
}

/// How an unsubscribe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    Deleted,
    /// Enate answered 404: the subscription is gone already (by an earlier attempt
    /// whose answer was lost, or by someone else).
    AlreadyGone,
}

/// Replaces every known secret in a text: as it is, JSON-escaped once and
/// twice (a JSON body quoted inside a JSON answer), and form-encoded (a token
/// request echoed). Secrets shorter than 4 characters are left alone:
/// replacing them would garble every message and protect nothing.
#[derive(Default)]
struct Redactor {
    secrets: Vec<SecretString>,
}

impl Redactor {
    fn add(&mut self, secret: &impl ExposeSecret<str>) {
        let trimmed = secret.expose_secret().trim();
        if trimmed.len() < 4 {
            return;
        }
        let json_escaped = |text: &str| {
            let quoted = serde_json::to_string(text).expect("a string serializes");
            quoted[1..quoted.len() - 1].to_string()
        };
        let once = json_escaped(trimmed);
        let twice = json_escaped(&once);
        for form in [trimmed.to_string(), once, twice, form_encoded(trimmed)] {
            if !self
                .secrets
                .iter()
                .any(|known| known.expose_secret() == form)
            {
                self.secrets.push(SecretString::from(form));
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.secrets
            .sort_by_key(|secret| std::cmp::Reverse(secret.expose_secret().len()));
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |text, secret| {
            text.replace(secret.expose_secret(), "[redacted]")
        })
    }

    /// `": <the body, one line, redacted, cut>"`, or nothing for an empty body.
    fn detail(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            return String::new();
        }
        let scrubbed = self.scrub(&line);
        let cut: String = scrubbed.chars().take(DETAIL_CHARS).collect();
        let ellipsis = if cut.len() < scrubbed.len() {
            "..."
        } else {
            ""
        };
        format!(": {cut}{ellipsis}")
    }
}

pub struct EnateClient {
    http: reqwest::Client,
    /// `enate.api_url`, to which the paths of Enate's API are appended.
    api_url: Url,
    token: SecretString,
    /// How the token goes with each call: a bearer header, or (`login`) the
    /// `authToken` query parameter.
    method: EnateAuthMethod,
    timeout: Duration,
    retries: u32,
    redactor: Redactor,
}

impl EnateClient {
    /// Reads the credentials (and fetches a token with client credentials).
    /// `hide` are further secrets that must never appear in an error: the
    /// webhook secrets.
    pub async fn connect(
        settings: &EnateSettings,
        api_url: &Url,
        hide: &[Secret],
    ) -> Result<Self, EnateError> {
        let timeout = Duration::from_secs(settings.request_timeout_secs);
        // In addition to the system's roots, not instead: a proxy that re-signs
        // traffic may pass other hosts (the token URL) through untouched.
        let extra_roots = settings
            .tls
            .ca_certificates
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| EnateError::Setup(format!("enate.tls.ca_file: {error}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .tls_certs_merge(extra_roots)
            .build()
            .map_err(|error| EnateError::Setup(format!("cannot build an HTTP client: {error}")))?;
        let mut redactor = Redactor::default();
        hide.iter().for_each(|secret| redactor.add(secret));
        let mut client = Self {
            http,
            api_url: api_url.clone(),
            token: SecretString::from(""),
            method: settings.auth.method,
            timeout,
            retries: settings.retries,
            redactor,
        };
        let auth = &settings.auth;
        client.token = match auth.method {
            EnateAuthMethod::Bearer => read_secret(
                auth.token.as_ref(),
                auth.token_file.as_deref(),
                "enate.auth.token",
                "ENATE_BRIDGE__ENATE__AUTH__TOKEN",
            )?,
            EnateAuthMethod::ClientCredentials => {
                let client_secret = read_secret(
                    auth.client_secret.as_ref(),
                    auth.client_secret_file.as_deref(),
                    "enate.auth.client_secret",
                    "ENATE_BRIDGE__ENATE__AUTH__CLIENT_SECRET",
                )?;
                client.redactor.add(&client_secret);
                client.fetch_token(settings, &client_secret).await?
            }
            EnateAuthMethod::Login => {
                let password = read_secret(
                    auth.password.as_ref(),
                    auth.password_file.as_deref(),
                    "enate.auth.password",
                    "ENATE_BRIDGE__ENATE__AUTH__PASSWORD",
                )?;
                client.redactor.add(&password);
                client.login(settings, &password).await?
            }
        };
        let token = client.token.clone();
        client.redactor.add(&token);
        Ok(client)
    }

    /// How many times a transient failure is tried again.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Every subscription Enate lists.
    pub async fn list(&self) -> Result<Vec<Subscription>, EnateError> {
        let url = self.url(LIST_PATH);
        let answer = self
            .send(Operation::List, self.retries, || {
                self.authorized(Method::GET, &url)
            })
            .await?;
        enate_api::parse_list(&answer).map_err(|reason| EnateError::Unexpected {
            operation: Operation::List,
            reason: reason.to_string(),
        })
    }

    /// One attempt at subscribing, never retried here: a lost answer may hide a
    /// subscription Enate made, so the caller looks before trying again.
    /// `None`: Enate answered success without a GUID the bridge can read.
    pub async fn subscribe_once(
        &self,
        subscription: &NewSubscription<'_>,
    ) -> Result<Option<Uuid>, EnateError> {
        let url = self.url(SUBSCRIBE_PATH);
        let body = subscription.body();
        let answer = self
            .send(Operation::Subscribe, 0, || {
                self.authorized(Method::POST, &url).json(&body)
            })
            .await?;
        Ok(enate_api::parse_created_guid(&answer))
    }

    /// Deletes a subscription; retried, since deleting twice does no harm.
    pub async fn unsubscribe(&self, guid: Uuid) -> Result<Unsubscribed, EnateError> {
        let mut url = self.url(UNSUBSCRIBE_PATH);
        url.query_pairs_mut()
            .append_pair(UNSUBSCRIBE_GUID_PARAMETER, &guid.hyphenated().to_string());
        let result = self
            .send(Operation::Unsubscribe, self.retries, || {
                self.authorized(Method::POST, &url)
            })
            .await;
        match result {
            Ok(_) => Ok(Unsubscribed::Deleted),
            Err(EnateError::NotFound { .. }) => Ok(Unsubscribed::AlreadyGone),
            Err(error) => Err(error),
        }
    }

    /// Asks Enate to send a subscription its test message ("Webhook Test –
    /// Simulate Event" at `test_path`). Sent once, never retried: a retry
    /// after a lost answer would send a second message, muddling what the
    /// caller watches for, and Enate's own error is what the caller reports.
    pub async fn send_test_message(&self, test_path: &str, guid: Uuid) -> Result<(), EnateError> {
        let mut url = self.url(test_path.trim().trim_matches('/'));
        url.query_pairs_mut().append_pair(
            enate_api::TEST_GUID_PARAMETER,
            &guid.hyphenated().to_string(),
        );
        self.send(Operation::Test, 0, || self.authorized(Method::GET, &url))
            .await
            .map(|_| ())
    }

    /// A request carrying the token as `enate.auth.method` says.
    fn authorized(&self, method: Method, url: &Url) -> RequestBuilder {
        match self.method {
            EnateAuthMethod::Login => {
                let mut url = url.clone();
                url.query_pairs_mut()
                    .append_pair(enate_api::LOGIN_TOKEN_PARAMETER, self.token.expose_secret());
                self.http.request(method, url)
            }
            EnateAuthMethod::Bearer | EnateAuthMethod::ClientCredentials => self
                .http
                .request(method, url.clone())
                .bearer_auth(self.token.expose_secret()),
        }
    }

    /// `enate.auth.method = "login"`: the token is the answer to a login with
    /// the user name and password, as Enate's sample receiver logs in.
    async fn login(
        &self,
        settings: &EnateSettings,
        password: &SecretString,
    ) -> Result<SecretString, EnateError> {
        let username = settings.auth.username.trim();
        if username.is_empty() {
            return Err(EnateError::Setup(
                "enate.auth.method = \"login\" needs enate.auth.username (and enate.auth.password)"
                    .into(),
            ));
        }
        let mut url = self.url(LOGIN_PATH);
        let (name, value) = enate_api::LOGIN_QUERY;
        url.query_pairs_mut().append_pair(name, value);
        let body = serde_json::json!({
            enate_api::LOGIN_USERNAME: username,
            enate_api::LOGIN_PASSWORD: password.expose_secret(),
        });
        let answer = self
            .send(Operation::Login, self.retries, || {
                self.http.post(url.clone()).json(&body)
            })
            .await
            .map_err(|error| match error {
                EnateError::Refused { status, detail, .. }
                | EnateError::Rejected { status, detail, .. } => {
                    EnateError::LoginRefused { status, detail }
                }
                other => other,
            })?;
        // The sample receiver takes the answer's text between its quotes: a JSON
        // string. `{"Result": "..."}` is read too, as every answer may be wrapped.
        let token = match &answer {
            Value::String(token) => Some(token.as_str()),
            Value::Object(object) => object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(enate_api::field::RESULT))
                .and_then(|(_, value)| value.as_str()),
            _ => None,
        };
        match token.map(str::trim).filter(|token| !token.is_empty()) {
            Some(token) => Ok(SecretString::from(token)),
            None => Err(EnateError::Unexpected {
                operation: Operation::Login,
                reason: "no token (a JSON string) in the answer".into(),
            }),
        }
    }

    /// The pause before retry number `attempt` (0 for the first retry).
    pub fn backoff(attempt: u32) -> Duration {
        let base = BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(BACKOFF_CAP);
        base + base.mul_f64(fastrand::f64() / 4.0)
    }

    /// `{api_url}/{path}`, whether or not `api_url` ends in `/`.
    fn url(&self, path: &str) -> Url {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .expect("an HTTP(S) URL, checked at load, has a path")
            .pop_if_empty()
            .extend(path.split('/'));
        url
    }

    async fn fetch_token(
        &self,
        settings: &EnateSettings,
        client_secret: &SecretString,
    ) -> Result<SecretString, EnateError> {
        let auth = &settings.auth;
        if auth.token_url.is_empty() || auth.client_id.is_empty() {
            return Err(EnateError::Setup(
                "enate.auth.method = \"client_credentials\" needs enate.auth.token_url and enate.auth.client_id".into(),
            ));
        }
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", auth.client_id.as_str()),
            ("client_secret", client_secret.expose_secret()),
        ];
        if !auth.scope.is_empty() {
            form.push(("scope", auth.scope.as_str()));
        }
        let answer = self
            .send(Operation::Token, self.retries, || {
                self.http.post(&auth.token_url).form(&form)
            })
            .await
            .map_err(|error| match error {
                EnateError::Refused { status, detail, .. }
                | EnateError::Rejected { status, detail, .. } => {
                    EnateError::TokenRefused { status, detail }
                }
                other => other,
            })?;
        // An OAuth 2 answer has `access_token`; a bare JSON string is taken as the token too.
        let token = match &answer {
            Value::String(token) => Some(token.as_str()),
            Value::Object(object) => object.get("access_token").and_then(Value::as_str),
            _ => None,
        };
        match token.map(str::trim).filter(|token| !token.is_empty()) {
            Some(token) => Ok(SecretString::from(token)),
            None => Err(EnateError::Unexpected {
                operation: Operation::Token,
                reason: "no access_token in the answer".into(),
            }),
        }
    }

    /// Sends a request built by `build`, trying a transient failure again up to
    /// `retries` times. Answers a success's body as JSON (a body that is not
    /// JSON as a string, an empty one as null).
    async fn send(
        &self,
        operation: Operation,
        retries: u32,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Value, EnateError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(operation, attempt, &build).await {
                Ok(answer) => return Ok(answer),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            if attempt > retries {
                return Err(failure);
            }
            tokio::time::sleep(Self::backoff(attempt - 1)).await;
        }
    }

    async fn attempt(
        &self,
        operation: Operation,
        attempts: u32,
        build: &impl Fn() -> RequestBuilder,
    ) -> Result<Value, EnateError> {
        let timeout = || EnateError::Timeout {
            operation,
            timeout_secs: self.timeout.as_secs(),
            attempts,
        };
        let transport = |error: reqwest::Error| {
            if error.is_timeout() {
                return timeout();
            }
            if let Some(reason) = certificate_problem(&error) {
                return EnateError::UntrustedCertificate {
                    operation,
                    host: error
                        .url()
                        .and_then(|url| url.host_str())
                        .unwrap_or("Enate")
                        .to_string(),
                    reason,
                };
            }
            EnateError::Unreachable {
                operation,
                attempts,
                reason: self.redactor.scrub(&error_chain(&error)),
            }
        };
        let response = build()
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return Ok(serde_json::from_slice(&body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&body).trim().to_string())
            }));
        }
        let detail = self.redactor.detail(&body);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => EnateError::Refused {
                operation,
                status,
                detail,
            },
            StatusCode::NOT_FOUND => EnateError::NotFound { operation, detail },
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                EnateError::ServerError {
                    operation,
                    status,
                    attempts,
                    detail,
                }
            }
            status if status.is_server_error() => EnateError::ServerError {
                operation,
                status,
                attempts,
                detail,
            },
            status => EnateError::Rejected {
                operation,
                status,
                detail,
            },
        })
    }
}

/// `application/x-www-form-urlencoded` text of a value.
fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A secret given inline or as a file (whose content is trimmed: files end in a newline).
fn read_secret(
    inline: Option<&SecretString>,
    file: Option<&std::path::Path>,
    key: &str,
    variable: &str,
) -> Result<SecretString, EnateError> {
    if let Some(secret) = inline {
        if secret.expose_secret().trim().is_empty() {
            return Err(EnateError::Setup(format!("{key} is empty")));
        }
        return Ok(SecretString::from(secret.expose_secret().trim()));
    }
    let Some(path) = file else {
        return Err(EnateError::Setup(format!(
            "{key} is not set: give it as {variable}, or as a file with {key}_file"
        )));
    };
    let content = std::fs::read_to_string(path).map_err(|error| {
        EnateError::Setup(format!(
            "{key}_file: cannot read {}: {error}",
            path.display()
        ))
    })?;
    let secret = content.trim();
    if secret.is_empty() {
        return Err(EnateError::Setup(format!(
            "{key}_file: {} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(secret))
}

/// Why rustls refused the server's certificate, if that is why the request
/// failed. The rustls error sits inside `io::Error`s, whose `source()` skips
/// the error they wrap, so the walk goes into each of them.
fn certificate_problem(error: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(rustls::Error::InvalidCertificate(reason)) =
            current.downcast_ref::<rustls::Error>()
        {
            return Some(format!("{reason:?}"));
        }
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_a_quarter_of_jitter() {
        for (attempt, base_ms) in [
            (0, 500),
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (4, 8000),
            (10, 8000),
            (40, 8000),
        ] {
            let pause = EnateClient::backoff(attempt).as_millis();
            assert!(
                pause >= base_ms && pause <= base_ms + base_ms / 4,
                "attempt {attempt}: {pause} ms"
            );
        }
    }

    #[test]
    fn details_are_one_line_cut_and_redacted() {
        let mut redactor = Redactor::default();
        redactor.add(&SecretString::from(" webhook-secret "));
        redactor.add(&SecretString::from("abc"));
        let detail =
            redactor.detail(b"{\"CustomHeaderValue\":\n \"webhook-secret\", \"x\": \"abc\"}");
        assert_eq!(
            detail,
            ": {\"CustomHeaderValue\": \"[redacted]\", \"x\": \"abc\"}"
        );
        assert_eq!(redactor.detail(b" \n"), "");
        let mut redactor = Redactor::default();
        redactor.add(&SecretString::from(r#"q"uo\te d"#));
        for echoed in [
            r#"{"CustomHeaderValue": "q\"uo\\te d"}"#,
            r#"{"Request": "{\"CustomHeaderValue\": \"q\\\"uo\\\\te d\"}"}"#,
            "client_secret=q%22uo%5Cte+d&grant_type=client_credentials",
        ] {
            let detail = redactor.detail(echoed.as_bytes());
            assert!(
                detail.contains("[redacted]") && !detail.contains("uo"),
                "{echoed} -> {detail}"
            );
        }
        let long = redactor.detail("é".repeat(DETAIL_CHARS + 100).as_bytes());
        assert!(long.ends_with("...") && long.chars().count() == 2 + DETAIL_CHARS + 3);
    }

    #[test]
    fn secrets_are_read_inline_or_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "file-token\n").unwrap();
        let inline = SecretString::from(" inline-token ");
        let read = |inline, file| read_secret(inline, file, "enate.auth.token", "VAR");
        assert_eq!(
            read(Some(&inline), None).unwrap().expose_secret(),
            "inline-token"
        );
        assert_eq!(
            read(None, Some(&path)).unwrap().expose_secret(),
            "file-token"
        );
        let missing = read(None, None).unwrap_err().to_string();
        assert!(
            missing.contains("enate.auth.token is not set") && missing.contains("VAR"),
            "{missing}"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(
            read(None, Some(&path))
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        let unreadable = read(None, Some(&dir.path().join("absent")))
            .unwrap_err()
            .to_string();
        assert!(unreadable.contains("enate.auth.token_file"), "{unreadable}");
    }
}
