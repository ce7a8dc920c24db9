//! Enate failing: refusals, partial failures, 5xx and timeouts, giving up,
//! and the secret kept out of every message.

use std::time::Duration;

use crate::{
    fake_enate::{
        CLIENT_ID, CLIENT_SECRET, FakeEnate, Fault, LIST, SUBSCRIBE, TOKEN_REQUEST, UNSUBSCRIBE,
    },
    helpers::{
        Bridge, COMPANY, CONTRACT, Entry, OLD_SECRET, SECRET, SERVICE, lines_starting, stored, url,
    },
};

const ENTRIES: [Entry; 3] = [
    Entry("PacketCreated", "31", COMPANY),
    Entry("PacketCreated", "215", CONTRACT),
    Entry("PacketCreated", "217", SERVICE),
];

#[tokio::test]
async fn a_wrong_token_says_what_the_enate_account_needs() {
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES)
        .env("ENATE_BRIDGE__ENATE__AUTH__TOKEN", "an-expired-token-value");
    for args in [&["plan"][..], &["apply"], &["list"]] {
        let run = bridge.subscriptions(args).await;
        assert_eq!(run.code, 1, "{args:?}: {}", run.describe());
        assert!(
            run.stderr.contains("401 Unauthorized")
                && run
                    .stderr
                    .contains("Process Builder role and rights on the filter object"),
            "{args:?}: {}",
            run.describe()
        );
        assert!(
            !run.stderr.contains("an-expired-token-value"),
            "{}",
            run.describe()
        );
    }
    assert!(enate.subscriptions().is_empty());
}

#[tokio::test]
async fn a_partial_failure_is_reported_per_entry_and_the_rest_is_applied() {
    let enate = FakeEnate::start().await;
    enate.forbid_filter(CONTRACT);
    let bridge = Bridge::new(&enate, "", &ENTRIES);

    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 1, "{}", apply.describe());
    assert_eq!(
        lines_starting(&apply.stdout, "created").len(),
        2,
        "{}",
        apply.describe()
    );
    let failed = lines_starting(&apply.stdout, "FAILED");
    assert_eq!(failed.len(), 1, "{}", apply.describe());
    assert!(failed[0].contains(CONTRACT), "{}", apply.describe());
    assert!(
        apply
            .stdout
            .contains("Enate refused SubscribeToWebhook (403 Forbidden)")
            && apply.stdout.contains("Process Builder")
            && apply
                .stdout
                .contains("does not have access to the requested entity"),
        "{}",
        apply.describe()
    );
    assert!(
        apply
            .stdout
            .contains("2 created, 0 replaced, 0 deleted, 0 unchanged, 1 FAILED"),
        "{}",
        apply.describe()
    );
    assert_eq!(enate.subscriptions().len(), 2);

    // Still refused: the two stay, the third still fails, nothing is doubled.
    let again = bridge.subscriptions(&["apply"]).await;
    assert_eq!(again.code, 1, "{}", again.describe());
    assert!(
        again
            .stdout
            .contains("0 created, 0 replaced, 0 deleted, 2 unchanged, 1 FAILED"),
        "{}",
        again.describe()
    );
    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    assert_eq!(
        lines_starting(&plan.stdout, "create").len(),
        1,
        "{}",
        plan.describe()
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_a_lost_answer_does_not_subscribe_twice() {
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]);
    enate.fault_next(LIST, Fault::Status(500));
    enate.fault_next(SUBSCRIBE, Fault::Status(503));
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(enate.subscriptions().len(), 1);
    // The failed subscribe was not repeated blindly: the list was read first.
    assert_eq!(enate.requests(), [LIST, LIST, SUBSCRIBE, LIST, SUBSCRIBE]);

    // Carried out, but answered after the 2 s timeout: found in the list, not made again.
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]);
    enate.fault_next(SUBSCRIBE, Fault::SlowAnswer(Duration::from_secs(4)));
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(
        lines_starting(&apply.stdout, "created").len(),
        1,
        "{}",
        apply.describe()
    );
    assert_eq!(enate.subscriptions().len(), 1, "one subscription, not two");
    assert_eq!(enate.requests(), [LIST, SUBSCRIBE, LIST]);
}

#[tokio::test]
async fn enate_failing_for_good_is_given_up_after_the_retries() {
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]);
    for _ in 0..3 {
        enate.fault_next(LIST, Fault::Status(500));
    }
    let started = std::time::Instant::now();
    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 1, "{}", plan.describe());
    assert!(
        plan.stderr.contains(
            "Enate answered GetAllWebhookSubscriptions with 500 Internal Server Error (3 attempts)"
        ),
        "{}",
        plan.describe()
    );
    // Two pauses: 0.5 s and 1 s, each with up to a quarter of jitter.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(enate.requests(), [LIST, LIST, LIST]);

    // Answers that never come in time: the same bound, counted as timeouts.
    for _ in 0..3 {
        enate.fault_next(LIST, Fault::SlowAnswer(Duration::from_secs(2)));
    }
    let impatient = Bridge::new(&enate, "", &ENTRIES[..1])
        .env("ENATE_BRIDGE__ENATE__REQUEST_TIMEOUT_SECS", "1");
    let apply = impatient.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 1, "{}", apply.describe());
    assert!(
        apply
            .stderr
            .contains("Enate did not answer GetAllWebhookSubscriptions within 1 s (3 attempts)"),
        "{}",
        apply.describe()
    );
    assert!(enate.subscriptions().is_empty());
}

#[tokio::test]
async fn a_replacement_whose_unsubscribe_fails_is_reported_and_finished_by_the_next_apply() {
    let enate = FakeEnate::start().await;
    let old = stored(
        "PacketCreated",
        31,
        COMPANY,
        &url("PacketCreated"),
        OLD_SECRET,
    );
    enate.insert(old.clone());
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]).env(
        "ENATE_BRIDGE__AUTH__SECRETS",
        &format!("{SECRET},{OLD_SECRET}"),
    );
    for _ in 0..3 {
        enate.fault_next(UNSUBSCRIBE, Fault::Status(502));
    }
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 1, "{}", apply.describe());
    let held = enate.subscriptions();
    assert_eq!(held.len(), 2, "the new one made, the old one still there");
    let new = held.iter().find(|s| s.guid != old.guid).unwrap();
    assert!(
        apply.stdout.contains(&format!("subscribed {}", new.guid))
            && apply
                .stdout
                .contains(&format!("could not unsubscribe {}", old.guid))
            && apply.stdout.contains("502 Bad Gateway (3 attempts)"),
        "{}",
        apply.describe()
    );

    let plan = bridge.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 2, "{}", plan.describe());
    assert!(
        plan.stdout
            .contains("1 more subscription(s) for this entry"),
        "{}",
        plan.describe()
    );
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(enate.subscriptions(), std::slice::from_ref(new));
}

#[tokio::test]
async fn an_answer_that_echoes_the_secret_is_printed_redacted() {
    let enate = FakeEnate::start().await;
    let bridge = Bridge::new(&enate, "", &ENTRIES[..1]);
    enate.fault_next(SUBSCRIBE, Fault::Status(400));
    // Bridge::subscriptions fails the test if the secret is printed anywhere.
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 1, "{}", apply.describe());
    assert!(
        apply
            .stdout
            .contains("Enate rejected SubscribeToWebhook (400 Bad Request)")
            && apply
                .stdout
                .contains(r#"\"CustomHeaderValue\":\"[redacted]\""#),
        "{}",
        apply.describe()
    );
    let json = bridge.subscriptions(&["apply", "--json"]).await;
    assert_eq!(json.code, 0, "{}", json.describe());
    assert_eq!(json.json()["ok"], true);
}

#[tokio::test]
async fn a_wrong_api_url_is_a_404_that_says_to_check_it() {
    let enate = FakeEnate::start().await;
    let wrong = Bridge::new(&enate, "", &ENTRIES[..1]).env(
        "ENATE_BRIDGE__ENATE__API_URL",
        &enate.api_url.replace("/webapi", "/api"),
    );
    let plan = wrong.subscriptions(&["plan"]).await;
    assert_eq!(plan.code, 1, "{}", plan.describe());
    assert!(
        plan.stderr.contains("404 Not Found") && plan.stderr.contains("Check enate.api_url"),
        "{}",
        plan.describe()
    );
}

#[tokio::test]
async fn client_credentials_get_a_token_first_and_a_refusal_names_the_keys() {
    let enate = FakeEnate::start().await;
    let auth = format!(
        "[enate.auth]\nmethod = \"client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
        enate.token_url
    );
    let bridge =
        Bridge::new(&enate, &auth, &ENTRIES[..1]).without_env("ENATE_BRIDGE__ENATE__AUTH__TOKEN");
    // The client secret as a mounted file would hold it, newline included.
    let secret_file = bridge.dir.join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let bridge = bridge.env(
        "ENATE_BRIDGE__ENATE__AUTH__CLIENT_SECRET_FILE",
        secret_file.to_str().unwrap(),
    );
    let apply = bridge.subscriptions(&["apply"]).await;
    assert_eq!(apply.code, 0, "{}", apply.describe());
    assert_eq!(enate.requests(), [TOKEN_REQUEST, LIST, SUBSCRIBE]);

    std::fs::write(&secret_file, "not-the-client-secret\n").unwrap();
    let refused = bridge.subscriptions(&["plan"]).await;
    assert_eq!(refused.code, 1, "{}", refused.describe());
    assert!(
        refused
            .stderr
            .contains("the token endpoint refused the client credentials (401 Unauthorized)")
            && refused
                .stderr
                .contains("enate.auth.client_id and client_secret"),
        "{}",
        refused.describe()
    );
    assert!(
        !refused.stderr.contains("not-the-client-secret"),
        "{}",
        refused.describe()
    );
}

#[tokio::test]
async fn missing_settings_are_named_before_enate_is_called() {
    let enate = FakeEnate::start().await;
    let cases = [
        (
            Bridge::new(&enate, "", &ENTRIES).without_env("ENATE_BRIDGE__ENATE__AUTH__TOKEN"),
            "enate.auth.token is not set: give it as ENATE_BRIDGE__ENATE__AUTH__TOKEN",
        ),
        (
            Bridge::new(&enate, "", &ENTRIES)
                .without_env("ENATE_BRIDGE__AUTH__SECRETS")
                .env("ENATE_BRIDGE__AUTH__ALLOW_UNAUTHENTICATED", "true"),
            "auth.secrets is empty",
        ),
        (
            Bridge::new(&enate, "", &ENTRIES).env("ENATE_BRIDGE__ENATE__API_URL", ""),
            "enate.api_url: is required when enate.subscriptions lists subscriptions",
        ),
        (
            Bridge::new(&enate, "", &[]).env("ENATE_BRIDGE__ENATE__API_URL", ""),
            "enate.api_url is not set: configure [enate]",
        ),
        (
            Bridge::new(
                &enate,
                "",
                &[Entry("PacketCreated", "\"process\"", COMPANY)],
            ),
            "enate.subscriptions[0].filter_object_type: process does not apply to PacketCreated",
        ),
    ];
    for (bridge, expected) in cases {
        let run = bridge.subscriptions(&["plan"]).await;
        assert_eq!(run.code, 1, "{expected}: {}", run.describe());
        assert!(
            run.stderr.contains(expected),
            "{expected}: {}",
            run.describe()
        );
    }
    assert!(enate.requests().is_empty(), "{:?}", enate.requests());
}
