//! `subscriptions list` and `subscriptions delete GUID`.

use crate::{
    fake_enate::{FakeEnate, LIST, UNSUBSCRIBE},
    helpers::{Bridge, COMPANY, Entry, OLD_SECRET, SECRET, SERVICE, stored, url},
};

#[tokio::test]
async fn list_shows_every_subscription_which_secret_it_carries_and_whether_it_is_the_bridges() {
    let enate = FakeEnate::start().await;
    let current = stored("PacketCreated", 31, COMPANY, &url("PacketCreated"), SECRET);
    let rotated = stored(
        "PacketUpdated",
        217,
        SERVICE,
        &url("PacketUpdated"),
        OLD_SECRET,
    );
    let foreign = stored(
        "PacketUpdated",
        217,
        SERVICE,
        "https://crm.example.com/enate/PacketUpdated",
        "their-own-secret-value",
    );
    for subscription in [&current, &rotated, &foreign] {
        enate.insert(subscription.clone());
    }
    let bridge = Bridge::new(&enate, "", &[Entry("PacketCreated", "31", COMPANY)]).env(
        "ENATE_BRIDGE__AUTH__SECRETS",
        &format!("{SECRET},{OLD_SECRET}"),
    );

    let list = bridge.subscriptions(&["list"]).await;
    assert_eq!(list.code, 0, "{}", list.describe());
    let line = |guid: uuid::Uuid| {
        list.stdout
            .lines()
            .find(|line| line.starts_with(&guid.to_string()))
            .unwrap_or_else(|| panic!("no line for {guid}:\n{}", list.describe()))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line(current.guid)[1..],
        [
            "PacketCreated",
            "company",
            COMPANY,
            &url("PacketCreated"),
            "X-Enate-Secret",
            "auth.secrets[0]",
            "yes"
        ]
    );
    assert_eq!(
        line(rotated.guid)[5..],
        ["X-Enate-Secret", "auth.secrets[1]", "yes"]
    );
    assert_eq!(line(foreign.guid)[5..], ["X-Enate-Secret", "other"]);
    assert!(
        list.stdout
            .contains("3 subscription(s), 2 pointing at this bridge."),
        "{}",
        list.describe()
    );
    assert!(
        !list.stdout.contains("their-own-secret-value"),
        "{}",
        list.describe()
    );

    let json = bridge.subscriptions(&["list", "--json"]).await.json();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["guid"], rotated.guid.to_string());
    assert_eq!(items[1]["filter_object_type"], "service");
    assert_eq!(items[1]["secret"], "auth.secrets[1]");
    assert_eq!(items[1]["this_bridge"], true);
    assert_eq!(items[2]["this_bridge"], false);
    assert!(!json.to_string().contains("their-own-secret-value"));
    assert_eq!(enate.requests(), [LIST, LIST]);
}

#[tokio::test]
async fn delete_unsubscribes_one_guid_and_an_unknown_guid_is_an_error() {
    let enate = FakeEnate::start().await;
    let doomed = stored("PacketCreated", 31, COMPANY, &url("PacketCreated"), SECRET);
    let kept = stored("PacketUpdated", 31, COMPANY, &url("PacketUpdated"), SECRET);
    enate.insert(doomed.clone());
    enate.insert(kept.clone());
    let bridge = Bridge::new(&enate, "", &[]);

    let guid = doomed.guid.to_string();
    let delete = bridge.subscriptions(&["delete", &guid]).await;
    assert_eq!(delete.code, 0, "{}", delete.describe());
    assert_eq!(
        delete.stdout,
        format!(
            "deleted {guid}: PacketCreated company {COMPANY} -> {}\n",
            url("PacketCreated")
        )
    );
    assert_eq!(enate.subscriptions(), [kept]);
    assert_eq!(enate.requests(), [LIST, UNSUBSCRIBE]);

    let again = bridge.subscriptions(&["delete", &guid]).await;
    assert_eq!(again.code, 1, "{}", again.describe());
    assert!(
        again
            .stderr
            .contains(&format!("Enate lists no subscription {guid}")),
        "{}",
        again.describe()
    );

    let malformed = bridge.subscriptions(&["delete", "not-a-guid"]).await;
    assert_eq!(malformed.code, 1, "a usage error; {}", malformed.describe());
}
