//! `enate.auth.method = "login"` (older instances: `Authentication/Login`
//! with a user name and password), and how `list` names a FilterObjectType of 0.

use crate::{
    fake_enate::{FakeEnate, LIST, LOGIN, PASSWORD, USERNAME},
    helpers::{Bridge, COMPANY, Entry, SECRET, stored, url},
};

fn login_bridge(enate: &FakeEnate, password: &str) -> Bridge {
    Bridge::new(
        enate,
        &format!("[enate.auth]\nmethod = \"login\"\nusername = \"{USERNAME}\"\n"),
        &[Entry("PacketCreated", "31", COMPANY)],
    )
    .without_env("ENATE_BRIDGE__ENATE__AUTH__TOKEN")
    .env("ENATE_BRIDGE__ENATE__AUTH__PASSWORD", password)
}

#[tokio::test]
async fn a_login_with_user_name_and_password_gets_the_token_the_calls_carry() {
    let enate = FakeEnate::start().await;
    enate.insert(stored(
        "PacketCreated",
        31,
        COMPANY,
        &url("PacketCreated"),
        SECRET,
    ));

    let list = login_bridge(&enate, PASSWORD)
        .subscriptions(&["list"])
        .await;
    assert_eq!(list.code, 0, "{}", list.describe());
    assert!(
        list.stdout
            .contains("1 subscription(s), 1 pointing at this bridge"),
        "{}",
        list.describe()
    );
    // The list call was admitted on the login's token alone (no bearer token is set).
    assert_eq!(enate.requests(), [LOGIN, LIST]);
}

#[tokio::test]
async fn a_refused_login_names_the_keys_and_never_the_password() {
    let enate = FakeEnate::start().await;
    let wrong = "wrong-login-password-77aa";

    let list = login_bridge(&enate, wrong).subscriptions(&["list"]).await;
    assert_eq!(list.code, 1, "{}", list.describe());
    assert!(
        list.stderr
            .contains("Enate refused the login (401 Unauthorized)")
            && list.stderr.contains("enate.auth.username")
            && list.stderr.contains("enate.auth.password"),
        "{}",
        list.describe()
    );
    // The fake echoes the request it refused: the password is redacted from it.
    assert!(
        !list.stderr.contains(wrong) && list.stderr.contains("[redacted]"),
        "{}",
        list.describe()
    );
    assert_eq!(enate.requests(), [LOGIN]);
}

#[tokio::test]
async fn a_login_without_a_password_says_where_to_give_it() {
    let enate = FakeEnate::start().await;
    let list = login_bridge(&enate, PASSWORD)
        .without_env("ENATE_BRIDGE__ENATE__AUTH__PASSWORD")
        .subscriptions(&["list"])
        .await;
    assert_eq!(list.code, 1, "{}", list.describe());
    assert!(
        list.stderr.contains("enate.auth.password is not set")
            && list.stderr.contains("ENATE_BRIDGE__ENATE__AUTH__PASSWORD"),
        "{}",
        list.describe()
    );
    assert!(enate.requests().is_empty());
}

#[tokio::test]
async fn list_shows_a_filter_object_type_of_0_as_none_as_enate_names_it() {
    let enate = FakeEnate::start().await;
    enate.answer_type_codes();
    let unfiltered = stored("PacketCreated", 0, COMPANY, &url("PacketCreated"), SECRET);
    enate.insert(unfiltered.clone());
    let bridge = Bridge::new(&enate, "", &[Entry("PacketCreated", "31", COMPANY)]);

    let list = bridge.subscriptions(&["list"]).await;
    assert_eq!(list.code, 0, "{}", list.describe());
    let line = list
        .stdout
        .lines()
        .find(|line| line.starts_with(&unfiltered.guid.to_string()))
        .unwrap_or_else(|| panic!("{}", list.describe()));
    assert_eq!(
        line.split_whitespace().nth(2),
        Some("None"),
        "{}",
        list.describe()
    );
    let json = bridge.subscriptions(&["list", "--json"]).await;
    assert_eq!(
        json.json()[0]["filter_object_type"],
        "None",
        "{}",
        json.describe()
    );
}
