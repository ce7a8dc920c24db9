//! A bridge configuration pointing at a fake Enate, and runs of the binary.

use std::path::PathBuf;

use uuid::Uuid;

use crate::fake_enate::{CLIENT_SECRET, FakeEnate, LOGIN_TOKEN, PASSWORD, Stored, TOKEN};

pub const SECRET: &str = "bridge-secret-current-5d1c";
pub const OLD_SECRET: &str = "bridge-secret-old-0a9e";
pub const PUBLIC_URL: &str = "https://bridge.example.com";
pub const COMPANY: &str = "aaaaaaaa-1111-4222-8333-444444444444";
pub const CONTRACT: &str = "bbbbbbbb-1111-4222-8333-444444444444";
pub const SERVICE: &str = "cccccccc-1111-4222-8333-444444444444";

/// Everything no output may hold (the login token also as a query escapes it).
const NEVER_PRINTED: [&str; 7] = [
    SECRET,
    OLD_SECRET,
    TOKEN,
    CLIENT_SECRET,
    PASSWORD,
    LOGIN_TOKEN,
    "fake%2Blogin%2Ftoken%3De41b",
];

/// One `[[enate.subscriptions]]`: webhook, filter_object_type as TOML, GUID.
pub struct Entry(pub &'static str, pub &'static str, pub &'static str);

pub struct Bridge {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.describe()))
    }
}

impl Bridge {
    /// `[enate]` with the fake's URL, a 2 s timeout, 2 retries, `extra` TOML at
    /// the end of `[enate]`, then the entries. The secrets and the token come
    /// from the environment, as in production.
    pub fn new(fake: &FakeEnate, extra: &str, entries: &[Entry]) -> Bridge {
        let mut toml = format!(
            "[enate]\napi_url = \"{}\"\npublic_url = \"{PUBLIC_URL}\"\nallow_http = true\n\
             request_timeout_secs = 2\nretries = 2\n{extra}\n",
            fake.api_url
        );
        for Entry(webhook, filter_type, guid) in entries {
            toml.push_str(&format!(
                "[[enate.subscriptions]]\nwebhook = \"{webhook}\"\nfilter_object_type = {filter_type}\n\
                 filter_object_guid = \"{guid}\"\n"
            ));
        }
        Bridge::with_toml(&toml)
    }

    /// A configuration written out whole by the test.
    pub fn with_toml(toml: &str) -> Bridge {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bridge.toml");
        std::fs::write(&config, toml).unwrap();
        Bridge {
            dir: dir.path().to_path_buf(),
            _dir: dir,
            config,
            env: vec![
                ("ENATE_BRIDGE__AUTH__SECRETS".into(), SECRET.into()),
                ("ENATE_BRIDGE__ENATE__AUTH__TOKEN".into(), TOKEN.into()),
            ],
        }
    }

    /// Sets (or replaces) one environment variable of the runs.
    pub fn env(mut self, name: &str, value: &str) -> Bridge {
        self.env.retain(|(existing, _)| existing != name);
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn without_env(mut self, name: &str) -> Bridge {
        self.env.retain(|(existing, _)| existing != name);
        self
    }

    /// Runs `enate-bridge --config FILE subscriptions ARGS` with only this
    /// environment, and checks that nothing secret was printed.
    pub async fn subscriptions(&self, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(&self.config)
            .arg("subscriptions")
            .args(args)
            .output()
            .await
            .expect("enate-bridge runs");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for secret in NEVER_PRINTED {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`subscriptions {}` printed a secret ({secret}):\n{}",
                args.join(" "),
                run.describe()
            );
        }
        run
    }
}

/// A subscription as Enate would hold it, made by hand or by an earlier apply.
pub fn stored(webhook: &str, filter_type: i64, filter: &str, url: &str, secret: &str) -> Stored {
    Stored {
        guid: Uuid::new_v4(),
        webhook: webhook.into(),
        filter_object_guid: filter.into(),
        filter_object_type: filter_type,
        subscriber_url: url.into(),
        custom_header: Some("X-Enate-Secret".into()),
        custom_header_value: Some(secret.into()),
    }
}

/// The bridge's SubscriberURL for a webhook.
pub fn url(webhook: &str) -> String {
    format!("{PUBLIC_URL}/webhooks/{webhook}")
}

/// The lines of a table whose first column is `first`.
pub fn lines_starting<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.split_whitespace().next() == Some(first))
        .collect()
}
