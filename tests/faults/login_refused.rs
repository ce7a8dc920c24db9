//! The broker refusing the bridge's connection: a login refused while
//! running (the password rotated on the broker), and a vhost at its
//! connection limit, which is not a refused login.

use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};

use crate::harness::{check, serial, start, temp_spool, time_to_reconnect};
use enate_bridge_test_support::{
    eventually,
    load::{Answer, Load, LoadSpec},
    node::Node,
};

/// What RabbitMQ logs for each login it refuses.
const REFUSED_LOGIN: &str = "PLAIN login refused: user 'guest'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_while_running_is_a_distinct_state_that_spools_and_drains_once_fixed() {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, bridge) = start("login-refused", spool.path()).await;

    // A password rotated on the broker and not in the bridge's amqp.urls.
    let refused_before = node.log_lines_with(REFUSED_LOGIN);
    node.set_guest_password("rotated-elsewhere").await;
    node.close_all_connections().await;
    let refused_at = Instant::now();
    let readyz = eventually(
        Duration::from_secs(30),
        "the refused login to show on /readyz",
        || async {
            match bridge.readyz().await {
                Ok((_, body)) if body["broker"]["status"] == "login_refused" => Ok(body),
                last => Err(format!("{last:?}")),
            }
        },
    )
    .await;
    let noticed = refused_at.elapsed();
    assert_eq!(bridge.metric("enate_bridge_amqp_login_refused").await, 1.0);
    assert!(
        readyz["broker"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("amqp.urls") && !reason.contains("rotated")),
        "{readyz}"
    );
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            total: 300,
            ..LoadSpec::default()
        },
    );
    let history = load.finish().await;
    let spooled = history
        .records
        .iter()
        .filter(|r| r.answer == Answer::Spooled)
        .count();
    // Several reconnect attempts (the broker refused them, says its log), and
    // the refusal is logged once.
    eventually(
        Duration::from_secs(30),
        "the broker to have refused 3 of the bridge's logins",
        || async {
            match node.log_lines_with(REFUSED_LOGIN) - refused_before {
                refused if refused >= 3 => Ok(()),
                refused => Err(format!("{refused} refused")),
            }
        },
    )
    .await;
    let refusal_lines = bridge.log_lines_with("refuses the bridge's login").len();

    node.set_guest_password("guest").await;
    let reconnect = time_to_reconnect(&bridge).await;
    assert_eq!(bridge.metric("enate_bridge_amqp_login_refused").await, 0.0);
    let mut verdict = check("login-refused", &node, &bridge, &history).await;
    verdict.note(format!(
        "noticed_after={:.1}s refusal_log_lines={refusal_lines} reconnect_after_fix={:.1}s",
        noticed.as_secs_f64(),
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert_eq!(
        spooled, 300,
        "every event was spooled while the login was refused"
    );
    assert_eq!(
        refusal_lines, 1,
        "one ERROR line for the refusal, not one per attempt"
    );
}

/// RabbitMQ says NOT_ALLOWED (530) for a vhost at its connection limit too:
/// that passes (another replica closes), so it must not stop the start as a
/// refused login would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_at_its_connection_limit_is_waited_for_not_taken_for_a_refused_login() {
    let _serial = serial().await;
    let node = Node::start("connection-limit").await;
    node.add_vhost_with_connection_limit("limited", 1).await;
    let url = node.url().replace("/%2f", "/limited");
    let other = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("the first connection fits the limit");
    let broker = enate_bridge::amqp::Broker::start(enate_bridge::amqp::BrokerSettings {
        urls: vec![url.parse().unwrap()],
        connection_name: "enate-bridge connection limit".into(),
        heartbeat_secs: 10,
        channels: 1,
        confirms_per_channel: 8,
        timeout: Duration::from_secs(2),
        topology: None,
        tls: None,
    })
    .await
    .expect("a vhost at its connection limit is not a refused login");
    let waiting = broker.readiness().unwrap_err();
    assert!(!waiting.is_login_refused(), "{waiting}");
    let _ = other.close(200, "room for the bridge".into()).await;
    eventually(
        Duration::from_secs(30),
        "the bridge to connect once there was room",
        || async { broker.readiness() },
    )
    .await;
    broker.close().await;
}
