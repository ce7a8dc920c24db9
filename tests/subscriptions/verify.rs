//! `subscriptions verify`: a real bridge (the library's `Application` on port
//! 0, against the real RabbitMQ), the fake Enate sending its test message to
//! the bridge's URL with the subscription's header, and the binary watching
//! RabbitMQ for it.

use std::time::{Duration, Instant};

use enate_bridge::{
    config::{ListenAddress, Settings},
    startup::Application,
};
use lapin::{
    Connection, ConnectionProperties,
    options::{ExchangeDeleteOptions, QueueDeleteOptions},
};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    fake_enate::{FakeEnate, Fault, TEST},
    helpers::{Bridge, COMPANY, CONTRACT, Run, SECRET, stored},
};

fn amqp_url() -> String {
    std::env::var("ENATE_BRIDGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A running bridge with exchanges of its own; they are deleted on drop.
struct RunningBridge {
    ingress: String,
    admin_port: u16,
    exchange: String,
    quarantine: String,
    unrouted: String,
    spool_dir: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningBridge {
    async fn start() -> RunningBridge {
        let mut settings = Settings::load_from(
            None,
            Some(
                [(
                    "ENATE_BRIDGE__AUTH__SECRETS".to_string(),
                    SECRET.to_string(),
                )]
                .into(),
            ),
        )
        .expect("test settings are valid");
        let prefix = format!("test-verify-{}", &Uuid::new_v4().simple().to_string()[..12]);
        settings.server.bind = ListenAddress::parse("127.0.0.1:0").unwrap();
        settings.server.workers = 1;
        settings.admin.bind = ListenAddress::parse("127.0.0.1:0").unwrap();
        settings.amqp.urls = vec![amqp_url().parse().unwrap()];
        settings.amqp.exchange = format!("{prefix}.enate");
        settings.amqp.quarantine_exchange = format!("{prefix}.quarantine");
        settings.amqp.unrouted_exchange = format!("{prefix}.unrouted");
        settings.amqp.connection_name = format!("enate-bridge {prefix}");
        settings.spool.dir = std::env::temp_dir()
            .join("enate-bridge-tests")
            .join(&prefix);
        // Made first, so that its drop cleans up even if the start fails.
        let mut bridge = RunningBridge {
            ingress: String::new(),
            admin_port: 0,
            exchange: settings.amqp.exchange.clone(),
            quarantine: settings.amqp.quarantine_exchange.clone(),
            unrouted: settings.amqp.unrouted_exchange.clone(),
            spool_dir: settings.spool.dir.clone(),
            stop: None,
        };
        let application = Application::build(settings)
            .await
            .expect("the bridge starts");
        let (stop, stopped) = oneshot::channel::<()>();
        bridge.ingress = format!("http://127.0.0.1:{}", application.ingress_port());
        bridge.admin_port = application.admin_port();
        bridge.stop = Some(stop);
        let admin_port = bridge.admin_port;
        tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        // The exchanges exist once the bridge has connected: ready says so.
        let ready = format!("http://127.0.0.1:{admin_port}/readyz");
        enate_bridge_test_support::eventually::eventually(
            Duration::from_secs(30),
            "the bridge to be ready",
            || async {
                reqwest::get(&ready)
                    .await
                    .is_ok_and(|response| response.status().is_success())
            },
        )
        .await;
        bridge
    }

    fn url(&self, webhook: &str) -> String {
        format!("{}/webhooks/{webhook}", self.ingress)
    }

    /// The verify configuration: this bridge's broker, exchanges and admin
    /// listener, the fake Enate, and one entry per (webhook, type, GUID, URL).
    fn config(&self, enate: &FakeEnate, entries: &[(&str, &str, &str, String)]) -> Bridge {
        self.config_with(enate, "", entries)
    }

    /// `config`, with `extra` keys at the end of `[enate]`.
    fn config_with(
        &self,
        enate: &FakeEnate,
        extra: &str,
        entries: &[(&str, &str, &str, String)],
    ) -> Bridge {
        let mut toml = format!(
            "[admin]\nbind = \"127.0.0.1:{}\"\n\
             [amqp]\nexchange = \"{}\"\nquarantine_exchange = \"{}\"\nunrouted_exchange = \"{}\"\n\
             [enate]\napi_url = \"{}\"\npublic_url = \"{}\"\nallow_http = true\n\
             request_timeout_secs = 5\nretries = 0\n{extra}\n",
            self.admin_port,
            self.exchange,
            self.quarantine,
            self.unrouted,
            enate.api_url,
            self.ingress
        );
        for (webhook, filter_type, guid, url) in entries {
            toml.push_str(&format!(
                "[[enate.subscriptions]]\nwebhook = \"{webhook}\"\nfilter_object_type = {filter_type}\n\
                 filter_object_guid = \"{guid}\"\nsubscriber_url = \"{url}\"\n"
            ));
        }
        Bridge::with_toml(&toml).env("ENATE_BRIDGE__AMQP__URLS", &amqp_url())
    }
}

impl Drop for RunningBridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let names = [
            self.exchange.clone(),
            self.quarantine.clone(),
            self.unrouted.clone(),
        ];
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let Ok(connection) =
                    Connection::connect(&amqp_url(), ConnectionProperties::default()).await
                else {
                    return;
                };
                for name in &names {
                    if let Ok(channel) = connection.create_channel().await {
                        let _ = channel
                            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                            .await;
                    }
                    if let Ok(channel) = connection.create_channel().await {
                        let _ = channel
                            .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                            .await;
                    }
                }
                let _ = connection.close(200, "cleaned up".into()).await;
            });
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.spool_dir);
    }
}

/// The report line of a subscription, and the notes under it.
fn report(run: &Run, guid: Uuid) -> (&str, Vec<&str>) {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let index = lines
        .iter()
        .position(|line| line.contains(&guid.to_string()))
        .unwrap_or_else(|| panic!("no line for {guid}:\n{}", run.describe()));
    let notes = lines[index + 1..]
        .iter()
        .take_while(|line| line.trim_start().starts_with("- "))
        .copied()
        .collect();
    (lines[index], notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_whose_test_message_reaches_rabbitmq_is_delivered() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    let created = stored(
        "PacketCreated",
        31,
        COMPANY,
        &bridge.url("PacketCreated"),
        SECRET,
    );
    let updated = stored(
        "PacketUpdated",
        215,
        CONTRACT,
        &bridge.url("PacketUpdated"),
        SECRET,
    );
    enate.insert(created.clone());
    enate.insert(updated.clone());
    let config = bridge.config(
        &enate,
        &[
            ("PacketCreated", "31", COMPANY, bridge.url("PacketCreated")),
            (
                "PacketUpdated",
                "215",
                CONTRACT,
                bridge.url("PacketUpdated"),
            ),
        ],
    );

    let run = config.subscriptions(&["verify", "--timeout", "20"]).await;
    assert_eq!(run.code, 0, "{}", run.describe());
    for subscription in [&created, &updated] {
        let (line, notes) = report(&run, subscription.guid);
        assert!(line.starts_with("delivered "), "{line}\n{}", run.describe());
        assert!(notes.is_empty(), "{}", run.describe());
    }
    assert!(
        run.stdout
            .contains("Verify: 2 of 2 subscription(s) delivered."),
        "{}",
        run.describe()
    );

    let json = config
        .subscriptions(&["verify", "--timeout", "20", "--json"])
        .await;
    assert_eq!(json.code, 0, "{}", json.describe());
    let document = json.json();
    assert_eq!(document["all_delivered"], true, "{}", json.describe());
    let lines = document["subscriptions"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(line["result"], "delivered", "{line}");
        assert_eq!(line["destination"], "events", "{line}");
        assert!(line["seconds"].as_f64().unwrap() >= 0.0, "{line}");
    }
    // Four test messages, each answered 200 by the bridge.
    let deliveries = enate.test_deliveries();
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    assert!(
        deliveries.iter().all(|(_, status)| *status == Some(200)),
        "{deliveries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_with_a_wrong_secret_is_not_delivered_and_the_refused_secret_is_named() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    let good = stored(
        "PacketCreated",
        31,
        COMPANY,
        &bridge.url("PacketCreated"),
        SECRET,
    );
    let wrong = stored(
        "PacketUpdated",
        215,
        CONTRACT,
        &bridge.url("PacketUpdated"),
        "a-secret-the-bridge-does-not-know",
    );
    enate.insert(good.clone());
    enate.insert(wrong.clone());
    let config = bridge.config(
        &enate,
        &[
            ("PacketCreated", "31", COMPANY, bridge.url("PacketCreated")),
            (
                "PacketUpdated",
                "215",
                CONTRACT,
                bridge.url("PacketUpdated"),
            ),
        ],
    );

    // A long timeout: the refusal ends the wait, as the counters show it.
    let started = Instant::now();
    let run = config.subscriptions(&["verify", "--timeout", "300"]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        took < Duration::from_secs(300),
        "waited out the timeout: {took:?}"
    );
    assert!(
        report(&run, good.guid).0.starts_with("delivered "),
        "{}",
        run.describe()
    );
    let (line, notes) = report(&run, wrong.guid);
    assert!(line.starts_with("not delivered"), "{}", run.describe());
    let notes = notes.join("\n");
    assert!(
        notes.contains("the bridge refused the secret")
            && notes.contains(
                "enate_bridge_webhooks_total{webhook=\"PacketUpdated\",outcome=\"unauthorized\"} rose by 1"
            ),
        "{}",
        run.describe()
    );
    assert!(
        !run.stdout.contains("a-secret-the-bridge-does-not-know"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.contains("Verify: 1 of 2"), "{}", run.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enate_refusing_the_test_call_is_reported_with_its_error() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    let forbidden = stored(
        "PacketCreated",
        31,
        COMPANY,
        &bridge.url("PacketCreated"),
        SECRET,
    );
    let failing = stored(
        "PacketUpdated",
        215,
        CONTRACT,
        &bridge.url("PacketUpdated"),
        SECRET,
    );
    enate.insert(forbidden.clone());
    enate.insert(failing.clone());
    // Verified in entry order: the first test call gets 403, the second 500.
    enate.fault_next(TEST, Fault::Status(403));
    enate.fault_next(TEST, Fault::Status(500));
    let config = bridge.config(
        &enate,
        &[
            ("PacketCreated", "31", COMPANY, bridge.url("PacketCreated")),
            (
                "PacketUpdated",
                "215",
                CONTRACT,
                bridge.url("PacketUpdated"),
            ),
        ],
    );

    let run = config.subscriptions(&["verify", "--timeout", "5"]).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let (line, notes) = report(&run, forbidden.guid);
    assert!(line.starts_with("test refused"), "{}", run.describe());
    assert!(
        notes[0].contains("Enate refused the test message (enate.test_path) (403 Forbidden)")
            && notes[0].contains("Process Builder"),
        "{}",
        run.describe()
    );
    let (line, notes) = report(&run, failing.guid);
    assert!(line.starts_with("test refused"), "{}", run.describe());
    assert!(
        notes[0].contains("500 Internal Server Error")
            && notes[0].contains("An error has occurred."),
        "{}",
        run.describe()
    );
    assert!(enate.test_deliveries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_path_the_instance_does_not_serve_is_named() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    let subscription = stored(
        "PacketCreated",
        31,
        COMPANY,
        &bridge.url("PacketCreated"),
        SECRET,
    );
    enate.insert(subscription.clone());
    let config = bridge.config_with(
        &enate,
        "test_path = \"WebHookSubscription/NoSuchOperation\"",
        &[("PacketCreated", "31", COMPANY, bridge.url("PacketCreated"))],
    );

    let run = config.subscriptions(&["verify", "--timeout", "5"]).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let (line, notes) = report(&run, subscription.guid);
    assert!(line.starts_with("test refused"), "{}", run.describe());
    assert!(
        notes[0].contains("404 Not Found") && notes[0].contains("enate.test_path is not"),
        "{}",
        run.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_url_without_a_bridge_is_named_before_enate_is_asked() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!(
        "http://127.0.0.1:{}/webhooks/PacketCreated",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let lost = stored("PacketCreated", 31, COMPANY, &nowhere, SECRET);
    // And a URL where something else answers: the fake Enate itself.
    let elsewhere = format!("{}/webhooks/PacketUpdated", enate.api_url);
    let proxied = stored("PacketUpdated", 215, CONTRACT, &elsewhere, SECRET);
    enate.insert(lost.clone());
    enate.insert(proxied.clone());
    let config = bridge.config(
        &enate,
        &[
            ("PacketCreated", "31", COMPANY, nowhere.clone()),
            ("PacketUpdated", "215", CONTRACT, elsewhere.clone()),
        ],
    );

    let run = config.subscriptions(&["verify", "--timeout", "5"]).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let (line, notes) = report(&run, lost.guid);
    assert!(line.starts_with("no bridge at URL"), "{}", run.describe());
    assert!(
        notes[0].contains(&format!("GET {nowhere} failed"))
            && notes[0].contains("enate.public_url"),
        "{}",
        run.describe()
    );
    let (line, notes) = report(&run, proxied.guid);
    assert!(line.starts_with("no bridge at URL"), "{}", run.describe());
    assert!(
        notes[0].contains("answered 404 Not Found without Allow: POST"),
        "{}",
        run.describe()
    );
    assert!(
        !enate.requests().contains(&TEST),
        "Enate was asked: {:?}",
        enate.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_that_never_comes_is_given_up_after_the_timeout() {
    let bridge = RunningBridge::start().await;
    let enate = FakeEnate::start().await;
    enate.test_sends_nothing();
    let silent = stored(
        "PacketCreated",
        31,
        COMPANY,
        &bridge.url("PacketCreated"),
        SECRET,
    );
    enate.insert(silent.clone());
    let config = bridge.config(
        &enate,
        &[("PacketCreated", "31", COMPANY, bridge.url("PacketCreated"))],
    );

    let started = Instant::now();
    let run = config.subscriptions(&["verify", "--timeout", "3"]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.describe());
    let (line, notes) = report(&run, silent.guid);
    assert!(line.starts_with("not delivered"), "{}", run.describe());
    let notes = notes.join("\n");
    assert!(
        notes.contains("no request reached the bridge")
            && notes.contains("Process Builder")
            && notes.contains("Enate could not reach"),
        "{}",
        run.describe()
    );
    // It waited the 3 s asked for, not the default 30 s.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(30),
        "{took:?}"
    );
}
