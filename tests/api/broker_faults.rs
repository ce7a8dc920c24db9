//! The broker refusing, losing or never confirming a message, with the spool
//! off: each fault is made to happen for real (a closed port, a cut or
//! black-holed connection through the fault proxy, a full queue that nacks, an
//! exchange without a route), and the bridge must answer 503 with Retry-After
//! at once, never a false 200. (With the spool on, the same faults are answered
//! 200 `spooled`: see `spool.rs`.)

use std::time::{Duration, Instant};

use lapin::{
    ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};
use serde_json::{Value, json};

use enate_bridge::config::SpoolMode;
use enate_bridge_test_support::{eventually, eventually_every};

use crate::helpers::{
    FaultProxy, TestApp, amqp_url, delete_exchanges_and_queues, json, metric_value, spawn_app,
    spawn_app_with, spawn_app_without_waiting, test_settings, try_spawn_app, webhooks_total,
};

const FAILURES: &str = "enate_bridge_publish_failures_total";

async fn assert_unavailable_at_once(app: &TestApp, limit: Duration) -> Value {
    let started = Instant::now();
    let response = app
        .post_json("PacketUpdated", &json!({"ProcessType": 2, "Status": 1}))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(
        elapsed < limit,
        "the 503 took {elapsed:?}, more than {limit:?}"
    );
    response.json().await.unwrap()
}

/// Posts distinct events until one is published, for at most 15 s.
async fn post_until_published(app: &TestApp, attempt_base: u32) {
    let mut n = 0;
    // Every 200 ms, as each probe publishes an event.
    eventually_every(
        Duration::from_secs(15),
        Duration::from_millis(200),
        "a publish to succeed",
        || {
            let body = json!({"Reference": format!("{attempt_base}-{n}")});
            n += 1;
            async move {
                let status = app.post_json("PacketUpdated", &body).await.status();
                if status == 200 { Ok(()) } else { Err(status) }
            }
        },
    )
    .await
}

async fn wait_for_readyz(app: &TestApp, status: u16, within: Duration) -> Value {
    eventually(within, format_args!("/readyz to turn {status}"), || async {
        let response = app.get_admin("/readyz").await;
        if response.status() == status {
            Ok(response.json().await.unwrap())
        } else {
            Err(response.status())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_unreachable_the_bridge_starts_says_why_and_answers_503_at_once() {
    let app = spawn_app_without_waiting(|settings| {
        settings.amqp.urls = vec![
            "amqp://guest:hidden-password@127.0.0.1:1/%2f"
                .to_string()
                .parse()
                .unwrap(),
        ];
        settings.spool.mode = SpoolMode::Off;
    })
    .await;

    let answer = assert_unavailable_at_once(&app, Duration::from_secs(1)).await;
    assert_eq!(answer["status"], "unavailable");

    let readyz = wait_for_readyz(&app, 503, Duration::from_secs(1)).await;
    let reason = readyz["reason"].as_str().unwrap();
    assert!(reason.contains("127.0.0.1:1"), "{reason}");
    assert!(
        !reason.contains("hidden-password"),
        "the password leaked: {reason}"
    );
    let metrics = app.metrics().await;
    assert_eq!(metric_value(&metrics, "enate_bridge_amqp_connected"), 0.0);
    assert_eq!(
        metric_value(&metrics, &format!("{FAILURES}{{reason=\"disconnected\"}}")),
        1.0
    );
    assert!(!metrics.contains("hidden-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_noticed_answered_503_and_recovered() {
    let proxy = FaultProxy::start(&amqp_url()).await;
    let app = spawn_app_with(|settings| {
        settings.amqp.urls = vec![proxy.url().parse().unwrap()];
        settings.amqp.heartbeat_secs = 1;
        settings.spool.mode = SpoolMode::Off;
    })
    .await;
    let queue = app.bind_queue("#").await;
    assert_eq!(
        app.post_json("PacketUpdated", &json!({"Reference": "before"}))
            .await
            .status(),
        200
    );

    proxy.cut();
    wait_for_readyz(&app, 503, Duration::from_secs(5)).await;
    assert_unavailable_at_once(&app, Duration::from_secs(1)).await;

    proxy.restore();
    wait_for_readyz(&app, 200, Duration::from_secs(15)).await;
    assert_eq!(
        app.post_json("PacketUpdated", &json!({"Reference": "after"}))
            .await
            .status(),
        200
    );

    assert_eq!(json(&queue.next().await)["data"]["reference"], "before");
    assert_eq!(json(&queue.next().await)["data"]["reference"], "after");
    queue.assert_empty().await;
    let metrics = app.metrics().await;
    assert!(metric_value(&metrics, "enate_bridge_amqp_reconnects_total") >= 1.0);
    assert_eq!(metric_value(&metrics, "enate_bridge_amqp_connected"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_connection_is_a_503_after_the_confirm_timeout_not_a_hang() {
    let proxy = FaultProxy::start(&amqp_url()).await;
    let app = spawn_app_with(|settings| {
        settings.amqp.urls = vec![proxy.url().parse().unwrap()];
        settings.amqp.confirm_timeout_ms = 500;
        settings.spool.mode = SpoolMode::Off;
    })
    .await;
    // A 500 ms confirm timeout is short for a loaded test machine: warm up first.
    post_until_published(&app, 0).await;
    let timeouts = format!("{FAILURES}{{reason=\"timeout\"}}");
    let before = metric_value(&app.metrics().await, &timeouts);

    proxy.black_hole();
    assert_unavailable_at_once(&app, Duration::from_secs(2)).await;
    assert_eq!(metric_value(&app.metrics().await, &timeouts), before + 1.0);

    proxy.restore();
    post_until_published(&app, 1).await;
}

/// With several brokers in `amqp.urls` (a cluster's nodes), a connection lost
/// to a node that black-holes its packets must not be retried on that node
/// first: connecting to it hangs until the timeout, and every replica would
/// wait that long before trying the next node. The cluster suite found the
/// bridge always starting again from the first URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_to_a_black_holed_node_is_replaced_on_another_node_without_waiting_for_it()
 {
    let nodes = [
        FaultProxy::start(&amqp_url()).await,
        FaultProxy::start(&amqp_url()).await,
    ];
    const TIMEOUT: Duration = Duration::from_secs(5);
    let app = spawn_app_with(|settings| {
        settings.amqp.urls = nodes
            .iter()
            .map(|node| node.url().parse().unwrap())
            .collect();
        settings.amqp.heartbeat_secs = 1;
        settings.amqp.confirm_timeout_ms = TIMEOUT.as_millis() as u64;
        settings.spool.mode = SpoolMode::Off;
    })
    .await;
    let on = nodes
        .iter()
        .position(|node| node.forwarded() > 0)
        .expect("the bridge connected through one of the proxies");
    let other = &nodes[1 - on];

    let reconnects =
        || async { metric_value(&app.metrics().await, "enate_bridge_amqp_reconnects_total") };
    let before = reconnects().await;
    nodes[on].black_hole();
    // Heartbeat 1 s: the connection is noticed dead in 2-3 s. The other node
    // can take over within one poll of /readyz, so the 503 may never be seen:
    // the reconnect counter says when the bridge is back (an unseen 503 was
    // shorter than the poll, well inside the bound below).
    let lost = std::cell::Cell::new(None);
    // Every 20 ms: the probe also times the 503, to the poll.
    eventually_every(
        Duration::from_secs(10) + TIMEOUT * 3,
        Duration::from_millis(20),
        "the bridge to reconnect after the black hole",
        || async {
            let ready = app.get_admin("/readyz").await.status() == 200;
            if !ready && lost.get().is_none() {
                lost.set(Some(Instant::now()));
            }
            if !ready {
                return Err("/readyz 503".to_string());
            }
            let reconnects = reconnects().await;
            if reconnects > before {
                Ok(())
            } else {
                Err(format!("/readyz 200, reconnects {reconnects}"))
            }
        },
    )
    .await;
    let reconnected_in = lost.get().map_or(Duration::ZERO, |at| at.elapsed());
    assert!(
        other.forwarded() > 0,
        "the bridge never connected to the other node"
    );
    assert!(
        reconnected_in < TIMEOUT / 2,
        "reconnecting took {reconnected_in:?}: the bridge waited for the black-holed node \
         (connect timeout {TIMEOUT:?}) before trying the other one"
    );
    post_until_published(&app, 0).await;
    nodes[on].restore();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_from_a_full_queue_is_a_503() {
    let app = spawn_app_with(|settings| settings.spool.mode = SpoolMode::Off).await;
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(1));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let _full = app.declare_bound_queue("", options, arguments, "#").await;

    assert_eq!(
        app.post_json("PacketUpdated", &json!({"n": 1}))
            .await
            .status(),
        200
    );
    let answer = assert_unavailable_at_once(&app, Duration::from_secs(2)).await;

    assert!(
        answer["reason"].as_str().unwrap().contains("nack"),
        "{answer}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, &format!("{FAILURES}{{reason=\"nack\"}}")),
        1.0
    );
    assert_eq!(
        webhooks_total(&metrics, "PacketUpdated", "unavailable"),
        1.0
    );
    assert_eq!(
        app.get_admin("/readyz").await.status(),
        200,
        "a nack is not an outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_message_is_a_503_when_no_alternate_exchange_catches_it() {
    let mut settings = test_settings();
    settings.amqp.declare_topology = false;
    settings.spool.mode = SpoolMode::Off;
    let setup = spawn_app().await;
    let channel = setup.amqp.create_channel().await.unwrap();
    channel
        .exchange_declare(
            settings.amqp.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let keep_alive = setup.bind_queue("nothing.matches.this").await;
    let app = try_spawn_app(settings).await.unwrap();
    app.wait_until_connected().await;

    let answer = assert_unavailable_at_once(&app, Duration::from_secs(2)).await;

    assert!(
        answer["reason"].as_str().unwrap().contains("returned"),
        "{answer}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, &format!("{FAILURES}{{reason=\"returned\"}}")),
        1.0
    );
    drop(keep_alive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_exchange_stops_the_start_with_a_message_naming_it() {
    let settings = test_settings();
    let exchange = settings.amqp.exchange.clone();
    let setup = spawn_app().await;
    let channel = setup.amqp.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    let error = match try_spawn_app(settings.clone()).await {
        Ok(_) => panic!("the bridge started on a conflicting topology"),
        Err(error) => format!("{error:#}"),
    };

    delete_exchanges_and_queues(vec![
        exchange.clone(),
        settings.amqp.quarantine_exchange.clone(),
        settings.amqp.unrouted_exchange.clone(),
    ]);
    // The spool was opened before the conflict was found; no TestApp cleans it up.
    let _ = std::fs::remove_dir_all(&settings.spool.dir);
    assert!(error.contains(&format!("exchange {exchange:?}")), "{error}");
    assert!(error.contains("amqp.exchange"), "{error}");
    assert!(error.contains("amqp.declare_topology"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_or_vhost_stops_the_start_with_a_message_that_says_so() {
    // The test broker's host and port, with a wrong password, then a wrong vhost.
    let url = amqp_url();
    let after_at = url.rsplit_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let host = after_at.split('/').next().unwrap_or(after_at);
    let wrong_password = format!("amqp://guest:guest-wrong-password@{host}/%2f");
    let wrong_vhost = format!("amqp://guest:guest@{host}/no-such-vhost");
    for (case, broker) in [("password", wrong_password), ("vhost", wrong_vhost)] {
        let mut settings = test_settings();
        settings.amqp.urls = vec![broker.parse().unwrap()];
        let error = match try_spawn_app(settings.clone()).await {
            Ok(_) => panic!("{case}: the bridge started on a refused login"),
            Err(error) => format!("{error:#}"),
        };
        let _ = std::fs::remove_dir_all(&settings.spool.dir);
        assert!(error.contains("refused the login"), "{case}: {error}");
        assert!(error.contains("amqp.urls"), "{case}: {error}");
        assert!(
            !error.contains("guest-wrong-password"),
            "{case}: the password leaked: {error}"
        );
    }
}
