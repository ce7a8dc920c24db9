//! Loading the whole configuration, end to end: sources, names in errors,
//! redaction.

use std::path::Path;

use super::*;
use secrecy::ExposeSecret;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn serving_needs_a_secret_and_other_commands_do_not() {
    let settings = Settings::load_from(None, env(&[])).unwrap();
    let error = settings.require_secrets().unwrap_err().to_string();
    assert!(error.contains("auth.secrets"), "{error}");
}

#[test]
fn misspelt_variables_are_reported_and_other_prefixed_ones_are_not() {
    for name in [
        "ENATE_BRIDGE_SERVER__BIND",
        "ENATE_BRIDGE_SERVER_BIND",
        "ENATE_BRIDGE_AMQP__URLS",
    ] {
        let error = Settings::load_from(None, env(&[(name, "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(name) && error.contains("ENATE_BRIDGE__SERVER__BIND"),
            "{name}: {error}"
        );
    }
    for name in [
        "ENATE_BRIDGE_TEST_AMQP_URL",
        "ENATE_BRIDGEX",
        "OTHER__SERVER__BIND",
    ] {
        assert!(
            Settings::load_from(None, env(&[(name, "x")])).is_ok(),
            "{name} is not the bridge's"
        );
    }
}

#[test]
fn a_host_name_is_accepted_where_an_address_is_expected() {
    let settings = Settings::load_from(
        None,
        env(&[("ENATE_BRIDGE__SERVER__BIND", "localhost:8080")]),
    )
    .unwrap();
    assert_eq!(
        settings.server.bind.socket_address().to_string(),
        "127.0.0.1:8080"
    );
    assert!(
        settings
            .to_redacted_toml()
            .contains("bind = \"localhost:8080\"")
    );
}

#[test]
fn errors_name_the_key_once_without_doubled_words() {
    let cases = [
        ("ENATE_BRIDGE__SERVER__MAX_BODY_BYTES", "lots"),
        ("ENATE_BRIDGE__SERVER__BIND", "nonsense"),
        ("ENATE_BRIDGE__AMQP__HEARTBEAT_SECS", "-1"),
    ];
    for (key, value) in cases {
        let error = Settings::load_from(None, env(&[(key, value)]))
            .unwrap_err()
            .to_string();
        let words: Vec<&str> = error.split_whitespace().collect();
        assert!(
            !words.windows(2).any(|pair| pair[0] == pair[1]),
            "{key}={value}: {error}"
        );
        assert!(!error.starts_with("configuration"), "{error}");
    }
}

#[test]
fn allow_unauthenticated_starts_without_secrets() {
    let settings = Settings::load_from(
        None,
        env(&[("ENATE_BRIDGE__AUTH__ALLOW_UNAUTHENTICATED", "true")]),
    )
    .unwrap();
    assert!(settings.auth.secrets.is_empty());
    assert_eq!(settings.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(settings.amqp.exchange, "enate");
}

#[test]
fn environment_lists_are_comma_separated() {
    let settings = Settings::load_from(
        None,
        env(&[
            ("ENATE_BRIDGE__AUTH__SECRETS", "one, two"),
            (
                "ENATE_BRIDGE__AMQP__URLS",
                "amqp://a:pw@h1:5672/%2f,amqp://a:pw@h2:5672/%2f",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(settings.auth.secrets.len(), 2);
    assert_eq!(settings.amqp.urls.len(), 2);
}

#[test]
fn a_numeric_secret_stays_a_string() {
    let settings =
        Settings::load_from(None, env(&[("ENATE_BRIDGE__AUTH__SECRETS", "12345")])).unwrap();
    assert_eq!(settings.auth.secrets[0].expose_secret(), "12345");
}

#[test]
fn unknown_keys_are_named() {
    let error = Settings::load_from(
        None,
        env(&[
            ("ENATE_BRIDGE__AUTH__SECRETS", "s"),
            ("ENATE_BRIDGE__SERVER__BINDD", "x"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("server.bindd"), "{error}");

    let error = Settings::load_from(
        None,
        env(&[
            ("ENATE_BRIDGE__AUTH__SECRETS", "s"),
            ("ENATE_BRIDGE__SERVR__BIND", "x"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("servr"), "{error}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("ENATE_BRIDGE__SERVER__BIND", "nonsense", "server.bind"),
        ("ENATE_BRIDGE__ADMIN__BIND", "nonsense", "admin.bind"),
        (
            "ENATE_BRIDGE__AMQP__ROUTING_KEY",
            "{event}.{colour}",
            "amqp.routing_key",
        ),
        (
            "ENATE_BRIDGE__EVENTS__NAIVE_TIME_ZONE",
            "Mars/Olympus",
            "events.naive_time_zone",
        ),
        (
            "ENATE_BRIDGE__AMQP__URLS",
            "http://x:secretpw@h/",
            "amqp.urls[0]",
        ),
        (
            "ENATE_BRIDGE__INGRESS__INVALID_PAYLOAD",
            "drop",
            "invalid_payload",
        ),
        ("ENATE_BRIDGE__AUTH__HEADER", "bad header", "auth.header"),
        (
            "ENATE_BRIDGE__AMQP__CONFIRM_TIMEOUT_MS",
            "0",
            "amqp.confirm_timeout_ms",
        ),
        ("ENATE_BRIDGE__LOG__FORMAT", "xml", "format"),
        ("ENATE_BRIDGE__SPOOL__MODE", "sometimes", "mode"),
        (
            "ENATE_BRIDGE__AMQP__CONFIRMS_PER_CHANNEL",
            "0",
            "amqp.confirms_per_channel",
        ),
        ("ENATE_BRIDGE__AMQP__THREADS", "1025", "amqp.threads"),
        ("ENATE_BRIDGE__SPOOL__MAX_BYTES", "0", "spool.max_bytes"),
        (
            "ENATE_BRIDGE__SERVER__BODY_TIMEOUT_SECS",
            "0",
            "server.body_timeout_secs",
        ),
        (
            "ENATE_BRIDGE__SERVER__MAX_BODY_BUFFER_BYTES",
            "1000",
            "server.max_body_buffer_bytes",
        ),
        (
            "ENATE_BRIDGE__SERVER__MAX_EVENTS_PER_REQUEST",
            "0",
            "server.max_events_per_request",
        ),
    ];
    for (key, value, expected) in cases {
        let error = Settings::load_from(
            None,
            env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s"), (key, value)]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(expected), "{key}={value}: {error}");
        assert!(
            !error.contains("secretpw"),
            "{key}={value} leaked a password: {error}"
        );
    }
}

#[test]
fn file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    std::fs::write(
        &path,
        "[amqp]\nexchange = \"from-file\"\nrouting_key = \"{status}\"\n[auth]\nsecrets = [\"s\"]\n",
    )
    .unwrap();
    let settings = Settings::load_from(
        Some(&path),
        env(&[("ENATE_BRIDGE__AMQP__EXCHANGE", "from-env")]),
    )
    .unwrap();
    assert_eq!(settings.amqp.exchange, "from-env");
    assert_eq!(settings.amqp.routing_key.to_string(), "{status}");

    std::fs::write(&path, "[amqp]\nexchang = \"typo\"\n").unwrap();
    let error = Settings::load_from(Some(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("exchang"), "{error}");
}

#[test]
fn redacted_toml_hides_secrets_and_passwords() {
    let settings = Settings::load_from(
        None,
        env(&[
            ("ENATE_BRIDGE__AUTH__SECRETS", "topsecret"),
            (
                "ENATE_BRIDGE__AMQP__URLS",
                "amqps://user:hunter2@broker:5671/prod",
            ),
        ]),
    )
    .unwrap();
    let text = settings.to_redacted_toml();
    assert!(
        !text.contains("topsecret") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(text.contains("amqps://user:***@broker:5671/prod"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[test]
fn no_secret_reaches_an_error_or_check_config_whatever_its_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    let cases = [
        "[auth]\nsecrets = \"topsecret\"\n",
        "[auth]\nsecrets = 12345678\n",
        "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = \"amqp://u:topsecret@h:5672/%2f\"\n",
        "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top/secret@h:5672/%2f\"]\n",
        "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top#secret@h:5672/%2f\"]\n",
        "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top?secret@h:5672/%2f\"]\n",
        "[auth]\nsecrets = [\"s\"]\n[enate.auth]\ntoken_url = \"http://id:topsecret@idp.example/token\"\n",
        "[auth]\nsecrets = [\"s\"]\n[enate]\napi_url = \"https://u:topsecret@enate.example/\"\n",
    ];
    for text in cases {
        std::fs::write(&path, text).unwrap();
        let shown = match Settings::load_from(Some(&path), env(&[])) {
            Ok(settings) => settings.to_redacted_toml(),
            Err(error) => error.to_string(),
        };
        for secret in [
            "topsecret",
            "top/secret",
            "top#secret",
            "top?secret",
            "12345678",
        ] {
            assert!(!shown.contains(secret), "{text}: {shown}");
        }
    }
}

#[test]
fn a_secret_list_is_a_list_or_one_comma_separated_string() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, "[auth]\nsecrets = \"one, two\"\n").unwrap();
    let settings = Settings::load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(settings.auth.secrets.len(), 2);
    std::fs::write(&path, "[auth]\nsecrets = [12345]\n").unwrap();
    let settings = Settings::load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(settings.auth.secrets[0].expose_secret(), "12345");
}

#[test]
fn example_file_loads_and_matches_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let from_file =
        Settings::load_from(Some(&path), env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s")])).unwrap();
    let defaults = Settings::load_from(None, env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s")])).unwrap();
    assert_eq!(from_file.to_redacted_toml(), defaults.to_redacted_toml());
}

/// `[amqp.tls]`: every problem with its files or its URLs is named by its
/// full key at load, with the file and the reason (table-driven).
#[test]
fn broker_tls_files_are_read_at_load_and_each_problem_names_its_key() {
    use enate_bridge_test_support::certs::TestCa;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("config test CA");
    let ca_file = ca.write(dir.path().join("ca.pem")).unwrap();
    let client = ca.client("bridge").write(dir.path(), "client").unwrap();
    let other = ca.client("other").write(dir.path(), "other").unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let path = |p: &Path| p.display().to_string();
    let (ca_file, cert, key, other_key, not_pem) = (
        path(&ca_file),
        path(&client.cert),
        path(&client.key),
        path(&other.key),
        path(&not_pem),
    );
    let missing = path(&dir.path().join("missing.pem"));
    const TLS_URL: (&str, &str) = (
        "ENATE_BRIDGE__AMQP__URLS",
        "amqps://u:hunter2@broker:5671/%2f",
    );
    const CA: &str = "ENATE_BRIDGE__AMQP__TLS__CA_FILE";
    const CERT: &str = "ENATE_BRIDGE__AMQP__TLS__CERT_FILE";
    const KEY: &str = "ENATE_BRIDGE__AMQP__TLS__KEY_FILE";
    // Each row: the variables, and what the error must say.
    type Row<'a> = (Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Row> = vec![
        (
            vec![TLS_URL, (CA, &missing)],
            &["amqp.tls.ca_file: cannot read", "missing.pem"],
        ),
        (
            vec![TLS_URL, (CA, &not_pem)],
            &["amqp.tls.ca_file:", "is not PEM"],
        ),
        (
            vec![TLS_URL, (CA, &key)],
            &["amqp.tls.ca_file:", "holds no certificate"],
        ),
        (
            vec![TLS_URL, (CERT, &cert)],
            &["amqp.tls.key_file is not set"],
        ),
        (
            vec![TLS_URL, (KEY, &key)],
            &["amqp.tls.cert_file is not set"],
        ),
        (
            vec![TLS_URL, (CERT, &cert), (KEY, &cert)],
            &["amqp.tls.key_file:", "no usable private key"],
        ),
        (
            vec![TLS_URL, (CERT, &cert), (KEY, &other_key)],
            &[
                "amqp.tls.key_file:",
                "does not match amqp.tls.cert_file",
                "client.pem",
            ],
        ),
        (
            vec![
                ("ENATE_BRIDGE__AMQP__URLS", "amqp://u:hunter2@broker/%2f"),
                (CA, &ca_file),
            ],
            &["amqp.tls:", "no URL in amqp.urls is amqps://"],
        ),
        (
            vec![(
                "ENATE_BRIDGE__AMQP__URLS",
                "amqps://broker/%2f?auth_mechanism=external",
            )],
            &["amqp.tls.cert_file:", "EXTERNAL"],
        ),
        (
            vec![(
                "ENATE_BRIDGE__AMQP__URLS",
                "amqp://broker/%2f?auth_mechanism=external",
            )],
            &["amqp.urls[0]:", "needs amqps://"],
        ),
        (
            vec![
                TLS_URL,
                ("ENATE_BRIDGE__AMQP__TLS__SERVER_NAME", "not a name!"),
            ],
            &["amqp.tls.server_name:", "not a DNS name"],
        ),
    ];
    for (row, (vars, needles)) in cases.iter().enumerate() {
        let error = Settings::load_from(None, env(vars))
            .unwrap_err()
            .to_string();
        assert!(
            needles.iter().all(|needle| error.contains(needle)) && !error.contains("hunter2"),
            "row {row} ({vars:?}): expected {needles:?} in: {error}"
        );
    }

    // A private CA and a client certificate: loaded, and EXTERNAL needs no password.
    let settings = Settings::load_from(
        None,
        env(&[
            (
                "ENATE_BRIDGE__AMQP__URLS",
                "amqps://broker/%2f?auth_mechanism=external",
            ),
            (CA, &ca_file),
            (CERT, &cert),
            (KEY, &key),
        ]),
    )
    .unwrap();
    assert!(settings.amqp.tls.client().is_some());
    // A managed broker: amqps:// and nothing else, the system's roots.
    let settings = Settings::load_from(None, env(&[TLS_URL])).unwrap();
    assert!(settings.amqp.tls.client().is_some());
    assert!(
        Settings::load_from(None, env(&[]))
            .unwrap()
            .amqp
            .tls
            .client()
            .is_none()
    );
}

mod tls_files {
    use std::fs;

    use super::*;
    use enate_bridge_test_support::certs::TestCa;

    fn load_tls(cert: &Path, key: &Path) -> Result<Settings, ConfigError> {
        Settings::load_from(
            None,
            env(&[
                (
                    "ENATE_BRIDGE__SERVER__TLS__CERT_FILE",
                    cert.to_str().unwrap(),
                ),
                ("ENATE_BRIDGE__SERVER__TLS__KEY_FILE", key.to_str().unwrap()),
            ]),
        )
    }

    #[test]
    fn a_certificate_and_its_key_are_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("config test CA");
        let files = ca
            .server(&["localhost"])
            .write(dir.path(), "server")
            .unwrap();
        let settings = load_tls(&files.cert, &files.key).unwrap();
        let certificate = settings.server.tls.certificate.expect("read at load");
        let in_a_year = jiff::Timestamp::now().as_second() + 364 * 24 * 3600;
        assert!(certificate.not_after_unix > in_a_year, "{certificate:?}");
        assert!(!certificate.serial.is_empty());
        // check-config prints the paths, never the key's content.
        let printed = Settings::to_redacted_toml(&load_tls(&files.cert, &files.key).unwrap());
        assert!(printed.contains("server.key"), "{printed}");
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    }

    #[test]
    fn each_unusable_file_is_refused_at_load_naming_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("config test CA");
        let good = ca.server(&["localhost"]).write(dir.path(), "good").unwrap();
        let other = ca
            .server(&["localhost"])
            .write(dir.path(), "other")
            .unwrap();
        let missing = dir.path().join("missing.pem");
        let not_pem = dir.path().join("not.pem");
        fs::write(&not_pem, "hello, not a certificate\n").unwrap();
        let half = dir.path().join("half.pem");
        let cert_pem = fs::read_to_string(&good.cert).unwrap();
        fs::write(&half, &cert_pem[..cert_pem.len() / 2]).unwrap();
        let cases: [(&str, &Path, &Path, &str, &str); 6] = [
            (
                "unreadable certificate",
                &missing,
                &good.key,
                "server.tls.cert_file",
                "cannot read",
            ),
            (
                "unreadable key",
                &good.cert,
                &missing,
                "server.tls.key_file",
                "cannot read",
            ),
            (
                "certificate not PEM",
                &not_pem,
                &good.key,
                "server.tls.cert_file",
                "no PEM certificate",
            ),
            (
                "half a certificate",
                &half,
                &good.key,
                "server.tls.cert_file",
                "not a PEM certificate chain",
            ),
            (
                "key not PEM",
                &good.cert,
                &not_pem,
                "server.tls.key_file",
                "no PEM private key",
            ),
            (
                "another certificate's key",
                &good.cert,
                &other.key,
                "server.tls.key_file",
                "does not belong",
            ),
        ];
        for (case, cert, key, wanted_key, wanted_reason) in cases {
            let error = load_tls(cert, key).unwrap_err();
            assert_eq!(error.key(), wanted_key, "{case}: {error}");
            let message = error.to_string();
            assert!(message.contains(wanted_key), "{case}: {message}");
            assert!(message.contains(wanted_reason), "{case}: {message}");
            assert!(!message.contains("PRIVATE KEY-----\n"), "{case}: {message}");
        }
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let error = Settings::load_from(
            None,
            env(&[("ENATE_BRIDGE__SERVER__TLS__CERT_FILE", "/tmp/x.pem")]),
        )
        .unwrap_err();
        assert_eq!(error.key(), "server.tls.key_file", "{error}");
    }

    #[test]
    fn the_enate_ca_file_is_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("proxy CA");
        let path = ca.write(dir.path().join("ca.pem")).unwrap();
        let settings = Settings::load_from(
            None,
            env(&[("ENATE_BRIDGE__ENATE__TLS__CA_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(settings.enate.tls.ca_certificates.len(), 1);
        let not_pem = dir.path().join("not.pem");
        fs::write(&not_pem, "nope").unwrap();
        let error = Settings::load_from(
            None,
            env(&[(
                "ENATE_BRIDGE__ENATE__TLS__CA_FILE",
                not_pem.to_str().unwrap(),
            )]),
        )
        .unwrap_err();
        assert_eq!(error.key(), "enate.tls.ca_file", "{error}");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }
}
