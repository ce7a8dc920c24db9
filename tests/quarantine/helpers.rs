//! A topology of its own per test, quarantined messages published as the
//! ingress publishes them, the queues read without taking from them, and
//! runs of the binary.

use std::{collections::BTreeSet, process::Stdio, time::Duration};

use enate_bridge::{
    amqp::Topology,
    delivery::{Destinations, Outgoing},
    event::event_id,
    webhook::Webhook,
};
use futures::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use uuid::Uuid;

pub fn amqp_url() -> String {
    std::env::var("ENATE_BRIDGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// What a previous release might have said of a body the current one accepts.
pub const OLD_REASON: &str = "status: 4 is not a valid status";

/// A body the current normalizer makes a resolved ticket: `packet_updated.ticket.resolved`.
pub fn valid_body(n: usize) -> Vec<u8> {
    format!(
        r#"{{"GUID":"5f0e7d1c-0000-4000-8000-{n:012}","Reference":"R{n}","ProcessType":2,"Status":4}}"#
    )
    .into_bytes()
}

/// A body no release makes an event of.
pub const INVALID_BODY: &[u8] = br#"{"GUID": "5f0e7d1c-0000-4000-8000-000000000001", "#;

/// One test's exchanges and queues on the shared broker.
pub struct Scene {
    pub connection: Connection,
    pub channel: Channel,
    pub exchange: String,
    pub quarantine: String,
    pub unrouted: String,
    /// Bound to `exchange` with `#`: every event the replay publishes.
    pub events: String,
}

impl Scene {
    pub async fn new() -> Scene {
        let prefix = format!("qt-{}", Uuid::new_v4().simple());
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("the test connects to RabbitMQ");
        let topology = Topology {
            exchange: format!("{prefix}.enate"),
            quarantine_exchange: format!("{prefix}.quarantine"),
            unrouted_exchange: format!("{prefix}.unrouted"),
        };
        topology.declare(&connection).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let events = format!("{prefix}.events");
        channel
            .queue_declare(
                events.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                events.as_str().into(),
                topology.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Scene {
            connection,
            channel,
            exchange: topology.exchange,
            quarantine: topology.quarantine_exchange,
            unrouted: topology.unrouted_exchange,
            events,
        }
    }

    /// Publishes `body` to the quarantine as the ingress does, with `reason`,
    /// received at `received` (seconds); returns its id.
    pub async fn quarantine(
        &self,
        webhook: Webhook,
        body: &[u8],
        reason: &str,
        received: u64,
    ) -> Uuid {
        let id = event_id(webhook, body);
        let outgoing = Outgoing::quarantined(
            id,
            webhook,
            reason,
            body.to_vec(),
            Some("application/json"),
            received,
        );
        let destinations = Destinations {
            exchange: self.exchange.clone(),
            quarantine_exchange: self.quarantine.clone(),
        };
        let message = destinations.amqp_message(&outgoing);
        self.publish(
            message.exchange.as_str(),
            message.routing_key.as_str(),
            &message.body,
            message.properties,
        )
        .await;
        id
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "the test's publish is confirmed");
    }

    pub async fn count(&self, queue: &str) -> u32 {
        let channel = self.connection.create_channel().await.unwrap();
        let count = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        let _ = channel.close(200, "counted".into()).await;
        count
    }

    /// Every message `queue` holds, received and handed back (nothing acked).
    pub async fn peek(&self, queue: &str) -> Vec<Delivery> {
        let expected = self.count(queue).await as usize;
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .basic_qos(0, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "peek".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut seen = Vec::with_capacity(expected);
        while seen.len() < expected {
            match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await {
                Ok(Some(delivery)) => seen.push(delivery.unwrap()),
                _ => break,
            }
        }
        let _ = channel.close(200, "peeked".into()).await;
        seen
    }

    /// The message ids `queue` holds (nothing acked).
    pub async fn ids(&self, queue: &str) -> BTreeSet<String> {
        self.peek(queue).await.iter().map(message_id).collect()
    }

    /// The environment that points the binary at this scene through `url`.
    pub fn env(&self, url: &str) -> Vec<(String, String)> {
        vec![
            ("ENATE_BRIDGE__AMQP__URLS".into(), url.into()),
            ("ENATE_BRIDGE__AMQP__EXCHANGE".into(), self.exchange.clone()),
            (
                "ENATE_BRIDGE__AMQP__QUARANTINE_EXCHANGE".into(),
                self.quarantine.clone(),
            ),
            (
                "ENATE_BRIDGE__AMQP__UNROUTED_EXCHANGE".into(),
                self.unrouted.clone(),
            ),
        ]
    }

    pub async fn cleanup(self) {
        for queue in [&self.events, &self.quarantine, &self.unrouted] {
            let _ = self
                .channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [&self.exchange, &self.quarantine, &self.unrouted] {
            let _ = self
                .channel
                .exchange_delete(exchange.as_str().into(), Default::default())
                .await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

pub fn message_id(delivery: &Delivery) -> String {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default()
}

pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let value = delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(name)?
        .clone();
    match value {
        lapin::types::AMQPValue::LongString(text) => {
            Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
        }
        _ => None,
    }
}

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.describe()))
    }
}

pub fn command(env: &[(String, String)], args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"));
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary to its end.
pub async fn run(env: &[(String, String)], args: &[&str]) -> Run {
    let output = command(env, args).output().await.unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
