//! An Enate instance whose certificate comes from a CA the system does not
//! trust (a company proxy that re-signs traffic, a private CA): refused with
//! a message naming `enate.tls.ca_file`, and reached once it is set.

use enate_bridge_test_support::certs::TestCa;

use crate::{
    fake_enate::FakeEnate,
    helpers::{Bridge, COMPANY, Entry},
};

const ENTRIES: [Entry; 1] = [Entry("PacketCreated", "31", COMPANY)];

#[tokio::test]
async fn an_untrusted_certificate_names_enate_tls_ca_file_and_the_ca_file_fixes_it() {
    let ca = TestCa::new("company proxy CA");
    let enate = FakeEnate::start_https(&ca.server(&["localhost"])).await;

    let untrusted = Bridge::new(&enate, "", &ENTRIES)
        .subscriptions(&["list"])
        .await;

    assert_eq!(untrusted.code, 1, "{}", untrusted.describe());
    for wanted in ["not trusted", "localhost", "enate.tls.ca_file"] {
        assert!(
            untrusted.stderr.contains(wanted),
            "{wanted}: {}",
            untrusted.describe()
        );
    }
    assert!(enate.requests().is_empty(), "{:?}", enate.requests());

    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path().join("proxy-ca.pem")).unwrap();
    let extra = format!(
        "[enate.tls]\nca_file = {:?}\n",
        ca_file.display().to_string()
    );
    let trusted = Bridge::new(&enate, &extra, &ENTRIES)
        .subscriptions(&["plan"])
        .await;

    // plan exits 2 when it has changes to make: Enate was reached and read.
    assert_eq!(trusted.code, 2, "{}", trusted.describe());
    assert!(
        trusted.stdout.contains("PacketCreated"),
        "{}",
        trusted.describe()
    );
    assert!(
        enate.requests().contains(&"GetAllWebhookSubscriptions"),
        "{:?}",
        enate.requests()
    );
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_stops_the_command_naming_the_key() {
    let enate = FakeEnate::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let extra = format!("[enate.tls]\nca_file = {:?}\n", path.display().to_string());

    let run = Bridge::new(&enate, &extra, &ENTRIES)
        .subscriptions(&["list"])
        .await;

    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stderr.contains("enate.tls.ca_file"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("no PEM certificate"),
        "{}",
        run.describe()
    );
}
