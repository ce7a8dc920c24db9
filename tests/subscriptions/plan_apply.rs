//! plan, apply, idempotence, prune, rotation: the workflow as an operator runs it.

use crate::{
    fake_enate::{FakeEnate, LIST},
    helpers::{
        Bridge, COMPANY, CONTRACT, Entry, OLD_SECRET, SECRET, SERVICE, lines_starting, stored, url,
    },
};

const ENTRIES: [Entry; 3] = [
    Entry("PacketCreated", "\"company\"", COMPANY),
    Entry("packet_updated", "215", CONTRACT),
    Entry("NewCommunication", "\"Service\"", SERVICE),
];

#[tokio::test]
async fn plan_shows_the_creations_apply_makes_them_and_then_there_is_nothing_to_do() {
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES);

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "changes pending; {}", plan.describe());
    assert_eq!(
        lines_starting(&plan.stdout, "create").len(),
        3,
        "{}",
        plan.describe()
    );
    assert!(
        plan.stdout
            .contains("Plan: 3 to create, 0 to change, 0 unchanged."),
        "{}",
        plan.describe()
    );
    assert!(enate.subscriptions().is_empty(), "plan changes nothing");

    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(
        lines_starting(&apply.stdout, "created").len(),
        3,
        "{}",
        apply.describe()
    );
    let mut held = enate.subscriptions();
    held.sort_by_key(|s| s.filter_object_type);
    let summary: Vec<_> = held
        .iter()
        .map(|s| {
            (
                s.webhook.as_str(),
                s.filter_object_type,
                s.filter_object_guid.as_str(),
                s.subscriber_url.clone(),
                s.custom_header.as_deref(),
                s.custom_header_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "PacketCreated",
                31,
                COMPANY,
                url("PacketCreated"),
                Some("X-Enate-Secret"),
                Some(SECRET)
            ),
            (
                "PacketUpdated",
                215,
                CONTRACT,
                url("PacketUpdated"),
                Some("X-Enate-Secret"),
                Some(SECRET)
            ),
            (
                "NewCommunication",
                217,
                SERVICE,
                url("NewCommunication"),
                Some("X-Enate-Secret"),
                Some(SECRET)
            ),
        ]
    );
    for subscription in &held {
        assert!(
            apply.stdout.contains(&subscription.guid.to_string()),
            "{}",
            apply.describe()
        );
    }

    // Idempotent: a second apply only reads.
    let before = enate.requests().len();
    let again = bridge.subscriptions(&["apply"]).await;
    assert_eq!(again.code, 0, "{}", again.describe());
    assert!(
        again
            .stdout
            .contains("Apply: 0 created, 0 replaced, 0 deleted, 3 unchanged."),
        "{}",
        again.describe()
    );
    assert_eq!(
        enate.requests()[before..],
        [LIST],
        "a second apply only lists"
    );
    assert_eq!(enate.subscriptions(), held);

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 0, "nothing to do; {}", plan.describe());
    assert!(plan.stdout.contains("Nothing to do"), "{}", plan.describe());
}

#[tokio::test]
async fn plan_json_says_what_apply_would_do_line_by_line() {
    let enate = FakeEnate::start().await;
    let current = stored("PacketCreated", 31, COMPANY, &url("PacketCreated"), SECRET);
    enate.insert(current.clone());
    let bridge = Bridge::new(&enate, "", &ENTRIES[..2]);

    let plan = bridge.subscriptions(&["plan", "--json"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    let json = plan.json();
    assert_eq!(json["changes_pending"], true);
    assert_eq!(
        json["counts"],
        serde_json::json!({"create": 1, "change": 0, "delete": 0, "unchanged": 1})
    );
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{json:#}");
    assert_eq!(rows[0]["action"], "unchanged");
    assert_eq!(rows[0]["entry"], 0);
    assert_eq!(rows[0]["subscriptions"], serde_json::json!([current.guid]));
    assert_eq!(rows[1]["action"], "create");
    assert_eq!(rows[1]["entry"], 1);
    assert_eq!(rows[1]["webhook"], "PacketUpdated");
    assert_eq!(rows[1]["filter_object_type"], "contract");
    assert_eq!(rows[1]["filter_object_guid"], CONTRACT);
    assert_eq!(rows[1]["subscriber_url"], url("PacketUpdated"));
}

#[tokio::test]
async fn only_the_bridges_own_subscriptions_are_deleted_and_only_with_prune() {
    let enate = FakeEnate::start().await;
    let wanted = stored("PacketCreated", 31, COMPANY, &url("PacketCreated"), SECRET);
    let no_longer_wanted = stored("PacketUpdated", 217, SERVICE, &url("PacketUpdated"), SECRET);
    let other_receiver = stored(
        "PacketUpdated",
        217,
        SERVICE,
        "https://crm.example.com/enate/PacketUpdated",
        "their-own-secret-value",
    );
    for subscription in [&wanted, &no_longer_wanted, &other_receiver] {
        enate.insert(subscription.clone());
    }
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]);

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    let deletions = lines_starting(&plan.stdout, "delete");
    assert_eq!(deletions.len(), 1, "{}", plan.describe());
    assert!(
        deletions[0].contains(&no_longer_wanted.guid.to_string()),
        "{}",
        plan.describe()
    );
    assert!(
        plan.stdout.contains("1 to delete (apply --prune)")
            && plan
                .stdout
                .contains("1 subscription of another receiver left alone"),
        "{}",
        plan.describe()
    );

    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(
        lines_starting(&apply.stdout, "kept").len(),
        1,
        "{}",
        apply.describe()
    );
    assert!(
        apply.stdout.contains("apply --prune deletes"),
        "{}",
        apply.describe()
    );
    assert_eq!(
        enate.subscriptions().len(),
        3,
        "nothing deleted without --prune"
    );

    let prune = bridge.subscriptions(&["apply", "--prune"]).await;
    assert_eq!(prune.code, 0, "{}", prune.describe());
    assert!(
        prune
            .stdout
            .contains("Apply: 0 created, 0 replaced, 1 deleted, 1 unchanged."),
        "{}",
        prune.describe()
    );
    assert_eq!(enate.subscriptions(), [wanted, other_receiver]);

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.describe());
}

#[tokio::test]
async fn a_rotation_moves_every_subscription_to_the_first_secret() {
    let enate = FakeEnate::start().await;
    let old: Vec<_> = [
        stored(
            "PacketCreated",
            31,
            COMPANY,
            &url("PacketCreated"),
            OLD_SECRET,
        ),
        stored(
            "PacketUpdated",
            215,
            CONTRACT,
            &url("PacketUpdated"),
            OLD_SECRET,
        ),
    ]
    .into_iter()
    .inspect(|subscription| enate.insert(subscription.clone()))
    .collect();

    // Step 1 of the rotation: the new secret first, the old one still accepted.
    let bridge = Bridge::new(&enate, "", &ENTRIES[..2]).env(
        "ENATE_BRIDGE__AUTH__SECRETS",
        &format!("{SECRET},{OLD_SECRET}"),
    );
    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    assert_eq!(
        lines_starting(&plan.stdout, "change").len(),
        2,
        "{}",
        plan.describe()
    );
    assert_eq!(
        plan.stdout
            .matches("secret is auth.secrets[1], not the first (a rotation)")
            .count(),
        2,
        "{}",
        plan.describe()
    );

    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(
        lines_starting(&apply.stdout, "replaced").len(),
        2,
        "{}",
        apply.describe()
    );
    let now = enate.subscriptions();
    assert_eq!(now.len(), 2, "replaced, not added to");
    for (before, after) in old.iter().zip(&now) {
        assert_ne!(before.guid, after.guid);
        assert_eq!(
            (
                &after.webhook,
                after.filter_object_type,
                &after.subscriber_url
            ),
            (
                &before.webhook,
                before.filter_object_type,
                &before.subscriber_url
            )
        );
        assert_eq!(after.custom_header_value.as_deref(), Some(SECRET));
        assert!(
            apply
                .stdout
                .contains(&format!("unsubscribed {}", before.guid)),
            "{}",
            apply.describe()
        );
    }
    assert_eq!(bridge.subscriptions(&["plan"]).await.code, 0);

    // Step 3: the old secret dropped; nothing left to move.
    let bridge = bridge.env("ENATE_BRIDGE__AUTH__SECRETS", SECRET);
    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 0, "{}", plan.describe());
}

#[tokio::test]
async fn a_new_header_name_is_a_change_too() {
    let enate = FakeEnate::start().await;
    enate.insert(stored(
        "PacketCreated",
        31,
        COMPANY,
        &url("PacketCreated"),
        SECRET,
    ));
    let bridge =
        Bridge::new(&enate, "", &ENTRIES[..1]).env("ENATE_BRIDGE__AUTH__HEADER", "X-Bridge-Key");

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    assert!(
        plan.stdout
            .contains("custom header is X-Enate-Secret, not X-Bridge-Key"),
        "{}",
        plan.describe()
    );
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    let [now] = &enate.subscriptions()[..] else {
        panic!("one subscription");
    };
    assert_eq!(now.custom_header.as_deref(), Some("X-Bridge-Key"));
}
