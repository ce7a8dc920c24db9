//! `spawn_app()` and what tests need around it: a consumer on the test's own
//! queues, and a TCP proxy that can cut or black-hole the broker connection.
//! Every message a test consumes and every answer of `post_webhook`,
//! `post_in_background` and `get_admin` is checked against the published
//! contract (`contract`).

pub mod contract;
pub mod tls;

pub use enate_bridge_test_support::proxy::FaultProxy;

use std::time::Duration;

use enate_bridge::{
    config::{ListenAddress, Settings},
    startup::Application,
};
use enate_bridge_test_support::eventually;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub const SECRET: &str = "test-secret";

/// The broker tests use; `scripts/test` sets it when it starts a private node.
pub fn amqp_url() -> String {
    std::env::var("ENATE_BRIDGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub exchange: String,
    pub quarantine: String,
    pub unrouted: String,
    pub client: reqwest::Client,
    pub amqp: Connection,
    pub spool_dir: std::path::PathBuf,
    /// The bridge's background tasks (`Application::tasks`).
    pub tasks: TaskTracker,
    pub ingress_port: u16,
    /// With server.tls: what SIGHUP asks for (`Application::certificate_reload`).
    pub certificate_reload: Option<enate_bridge::ingress_tls::ReloadRequest>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test: loopback on port 0, unique names, a short confirm timeout.
pub fn test_settings() -> Settings {
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
    let prefix = format!("test-{}", &Uuid::new_v4().simple().to_string()[..12]);
    settings.server.bind = ListenAddress::parse("127.0.0.1:0").unwrap();
    settings.server.workers = 2;
    settings.admin.bind = ListenAddress::parse("127.0.0.1:0").unwrap();
    settings.amqp.urls = vec![amqp_url().parse().unwrap()];
    settings.amqp.exchange = format!("{prefix}.enate");
    settings.amqp.quarantine_exchange = format!("{prefix}.quarantine");
    settings.amqp.unrouted_exchange = format!("{prefix}.unrouted");
    settings.amqp.confirm_timeout_ms = 2000;
    settings.amqp.connection_name = format!("enate-bridge {prefix}");
    settings.spool.dir = std::env::temp_dir()
        .join("enate-bridge-tests")
        .join(&prefix);
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the bridge and waits until it is connected to RabbitMQ with its
/// topology declared, so a test never races the first connection (which, on a
/// loaded machine, can outlast the test's short confirm timeout and be retried
/// in the background).
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_without_waiting(customize).await;
    app.wait_until_connected().await;
    app
}

/// Starts the bridge without waiting for RabbitMQ: for tests whose broker is
/// unreachable on purpose.
pub async fn spawn_app_without_waiting(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    customize(&mut settings);
    try_spawn_app(settings)
        .await
        .expect("the application starts")
}

pub async fn try_spawn_app(settings: Settings) -> anyhow::Result<TestApp> {
    if std::env::var_os("TEST_LOG").is_some() {
        let mut log = settings.log.clone();
        log.format = enate_bridge::config::LogFormat::Text;
        enate_bridge::telemetry::init(&log);
    }
    let exchange = settings.amqp.exchange.clone();
    let quarantine = settings.amqp.quarantine_exchange.clone();
    let unrouted = settings.amqp.unrouted_exchange.clone();
    let spool_dir = settings.spool.dir.clone();
    let scheme = match settings.server.tls.certificate {
        Some(_) => "https",
        None => "http",
    };
    let application = Application::build(settings).await?;
    let address = format!("{scheme}://127.0.0.1:{}", application.ingress_port());
    let ingress_port = application.ingress_port();
    let certificate_reload = application.certificate_reload();
    let admin_address = format!("http://127.0.0.1:{}", application.admin_port());
    let tasks = application.tasks();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stop.await;
    }));
    let amqp = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("the test connects to RabbitMQ");
    Ok(TestApp {
        address,
        admin_address,
        exchange,
        quarantine,
        unrouted,
        client: reqwest::Client::new(),
        amqp,
        spool_dir,
        tasks,
        ingress_port,
        certificate_reload,
        shutdown: Some(shutdown),
        server: Some(server),
    })
}

/// How long a bridge gets to connect to RabbitMQ in a test.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);

impl TestApp {
    /// Waits until /readyz says the broker is connected: the topology is
    /// declared and publishing works. Panics after 30 s.
    pub async fn wait_until_connected(&self) {
        eventually(
            CONNECT_WITHIN,
            "the bridge to connect to RabbitMQ",
            || async {
                let readyz: Value = self.get_admin("/readyz").await.json().await.unwrap();
                if readyz["broker"]["status"] == "connected" {
                    Ok(())
                } else {
                    Err(readyz)
                }
            },
        )
        .await
    }

    /// POSTs `body` to /webhooks/{webhook} with the right secret.
    pub async fn post_webhook(
        &self,
        webhook: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let response = self
            .client
            .post(format!("{}/webhooks/{webhook}", self.address))
            .header("X-Enate-Secret", SECRET)
            .body(body)
            .send()
            .await
            .expect("the bridge answers");
        contract::checked("POST", &format!("/webhooks/{webhook}"), response).await
    }

    /// POSTs in a task of its own, for a request that must stay in flight.
    /// Black-holes `proxy` (the bridge's way to RabbitMQ), sends a webhook whose
    /// confirm is thus held back, and returns once that request holds an
    /// admission slot (/readyz `ingress.slots_in_use`); `proxy.restore()` lets
    /// it finish.
    pub async fn hold_a_slot(&self, proxy: &FaultProxy) -> JoinHandle<reqwest::Response> {
        self.hold_a_slot_with(proxy, "{}").await
    }

    /// `hold_a_slot`, with a PacketUpdated of this body.
    pub async fn hold_a_slot_with(
        &self,
        proxy: &FaultProxy,
        body: &str,
    ) -> JoinHandle<reqwest::Response> {
        proxy.black_hole();
        let held = self.post_in_background("PacketUpdated", body);
        eventually(
            Duration::from_secs(10),
            "a request to hold a slot",
            || async {
                let readyz: Value = self.get_admin("/readyz").await.json().await.unwrap();
                if readyz["ingress"]["slots_in_use"] == 1 {
                    Ok(())
                } else {
                    Err(readyz)
                }
            },
        )
        .await;
        held
    }

    pub fn post_in_background(&self, webhook: &str, body: &str) -> JoinHandle<reqwest::Response> {
        let request = self
            .client
            .post(format!("{}/webhooks/{webhook}", self.address))
            .header("X-Enate-Secret", SECRET)
            .body(body.to_string());
        let path = format!("/webhooks/{webhook}");
        tokio::spawn(async move {
            let response = request.send().await.expect("the bridge answers");
            contract::checked("POST", &path, response).await
        })
    }

    pub async fn post_json(&self, webhook: &str, body: &Value) -> reqwest::Response {
        self.post_webhook(webhook, body.to_string()).await
    }

    pub async fn get_admin(&self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("the admin listener answers");
        contract::checked("GET", path, response).await
    }

    pub async fn metrics(&self) -> String {
        self.get_admin("/metrics").await.text().await.unwrap()
    }

    /// A fresh exclusive queue bound to the bridge's exchange with `pattern`.
    pub async fn bind_queue(&self, pattern: &str) -> TestQueue {
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        self.declare_bound_queue("", options, FieldTable::default(), pattern)
            .await
    }

    /// Declares a queue (`""`: a server-named one) and binds it to the bridge's
    /// exchange with `pattern`.
    pub async fn declare_bound_queue(
        &self,
        name: &str,
        options: QueueDeclareOptions,
        arguments: FieldTable,
        pattern: &str,
    ) -> TestQueue {
        // The bridge declares the exchange when it connects.
        self.wait_until_connected().await;
        let channel = self.amqp.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(name.into(), options, arguments)
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                self.exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        TestQueue {
            channel,
            name: queue.name().to_string(),
        }
    }

    /// A queue the bridge declared (quarantine, unrouted).
    pub async fn queue(&self, name: &str) -> TestQueue {
        TestQueue {
            channel: self.amqp.create_channel().await.unwrap(),
            name: name.to_string(),
        }
    }

    /// Stops the application as SIGTERM would and returns how `run_until_stopped` ended.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("the server task does not panic"),
            None => Ok(()),
        }
    }

    /// Begins a shutdown without waiting for it.
    pub fn begin_stop(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().expect("the app is running")
    }
}

impl Drop for TestApp {
    /// Deletes the test's durable exchanges and queues, even when the test panicked.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        delete_exchanges_and_queues(vec![
            self.exchange.clone(),
            self.quarantine.clone(),
            self.unrouted.clone(),
        ]);
        let _ = std::fs::remove_dir_all(&self.spool_dir);
    }
}

/// Deletes queues and exchanges of these names, from a thread of its own so it
/// can run inside `Drop`, even during a panic.
pub fn delete_exchanges_and_queues(names: Vec<String>) {
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
}

pub struct TestQueue {
    pub channel: Channel,
    pub name: String,
}

impl TestQueue {
    /// The next message, waiting up to 15 seconds for it.
    pub async fn next(&self) -> Delivery {
        eventually(
            Duration::from_secs(15),
            format_args!("a message in queue {}", self.name),
            || self.try_next(),
        )
        .await
    }

    /// The next message, if any, once checked against the published contract.
    pub async fn try_next(&self) -> Option<Delivery> {
        let delivery = self.try_next_unchecked().await?;
        contract::check_delivery(&delivery);
        Some(delivery)
    }

    /// The next message, if any, as it is: for queues the test itself publishes
    /// to, whose messages are not the bridge's.
    pub async fn try_next_unchecked(&self) -> Option<Delivery> {
        self.channel
            .basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get works")
            .map(|message| message.delivery)
    }

    /// Asserts the queue stays empty (messages are confirmed before the bridge
    /// answers, so a short wait only guards against a late, wrong publish).
    pub async fn assert_empty(&self) {
        // Not a synchronization: the 200 ms are how long "stays empty" is
        // watched for; no event could say that nothing more will come.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(message) = self.try_next().await {
            panic!(
                "queue {} should be empty but holds {:?}",
                self.name,
                String::from_utf8_lossy(&message.data)
            );
        }
    }
}

/// A string header of a message, or None.
pub fn header(properties: &BasicProperties, name: &str) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.to_string()),
        other => Some(format!("{other:?}")),
    }
}

pub fn json(delivery: &Delivery) -> Value {
    serde_json::from_slice(&delivery.data).expect("the message is JSON")
}

/// `enate_bridge_webhooks_total` for one webhook and outcome.
pub fn webhooks_total(metrics: &str, webhook: &str, outcome: &str) -> f64 {
    metric_value(
        metrics,
        &format!(r#"enate_bridge_webhooks_total{{outcome="{outcome}",webhook="{webhook}"}}"#),
    )
}

/// The value of one sample line of a /metrics page, 0 when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}
