//! The publisher itself (`enate_bridge::amqp::Broker`), many confirms in flight
//! on one channel, against the broker: a message called published must be in
//! its queue; a message the broker returned must never be called published.
//!
//! lapin hands a `basic.return` to whichever confirm it completes next, so with
//! pipelined confirms a naive publisher can see the return of B on A's ack and
//! a bare ack for B: `raw_lapin_*` (ignored; a demonstration) counts how often.
//! Also: a channel the broker closes is not a lost connection, and closing
//! does not wait for a connection attempt.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use enate_bridge::amqp::{Broker, BrokerSettings, Message, PublishError};
use enate_bridge_test_support::eventually;
use lapin::{
    BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};
use uuid::Uuid;

use crate::helpers::{TestQueue, amqp_url};

const TASKS: usize = 16;
const PER_TASK: usize = 150;

/// A topic exchange with no alternate exchange and a queue bound to `routed.#`:
/// every message to `nowhere.*` comes back as a return.
struct Setup {
    exchange: String,
    queue: TestQueue,
    connection: Connection,
}

impl Setup {
    async fn new() -> Setup {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let exchange = format!("test-returns-{}", Uuid::new_v4().simple());
        let channel = connection.create_channel().await.unwrap();
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                "routed.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Setup {
            exchange,
            queue: TestQueue {
                channel,
                name: queue.name().to_string(),
            },
            connection,
        }
    }

    /// Every message id in the queue.
    async fn delivered(&self) -> HashSet<String> {
        let mut ids = HashSet::new();
        // Everything was confirmed before this runs: an empty get means the end.
        while let Some(delivery) = self.queue.try_next_unchecked().await {
            ids.insert(
                delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .unwrap()
                    .to_string(),
            );
        }
        ids
    }

    async fn delete(self) {
        let channel = self.connection.create_channel().await.unwrap();
        let _ = channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Message `n` of a task: even ones are routed, odd ones are returned.
fn routing_key(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "routed.x"
    } else {
        "nowhere.x"
    }
}

#[derive(Default)]
struct Outcomes {
    published: Vec<(String, &'static str)>,
    returned: usize,
    other: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_confirms_pipelined_on_one_channel_a_returned_message_is_never_called_published() {
    every_returned_message_is_called_returned(|task, n| format!("{task}-{n}")).await;
}

/// An event can be in flight twice (Enate's concurrent duplicates, a spooled
/// copy beside a live one): each return must judge one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_with_one_id_are_each_judged_by_their_own_return() {
    every_returned_message_is_called_returned(|task, n| format!("{}-{n}", task / 2)).await;
}

/// 16 tasks publish through one lane; `id_of(task, n)` names message `n` of a task.
async fn every_returned_message_is_called_returned(id_of: fn(usize, usize) -> String) {
    let setup = Setup::new().await;
    let broker = Broker::start(BrokerSettings {
        urls: vec![amqp_url().parse().unwrap()],
        connection_name: "enate-bridge returns test".into(),
        heartbeat_secs: 10,
        channels: 1,
        confirms_per_channel: 64,
        timeout: Duration::from_secs(10),
        topology: None,
        tls: None,
    })
    .await
    .unwrap();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (broker, outcomes, exchange) =
            (broker.clone(), outcomes.clone(), setup.exchange.clone());
        tasks.spawn(async move {
            for n in 0..PER_TASK {
                let id = id_of(task, n);
                let message = Message {
                    exchange: exchange.as_str().into(),
                    routing_key: routing_key(n).into(),
                    body: id.clone().into_bytes().into(),
                    properties: BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_message_id(id.as_str().into()),
                };
                let result = broker.publish(message).await;
                let mut outcomes = outcomes.lock().unwrap();
                match result {
                    Ok(_) => outcomes.published.push((id, routing_key(n))),
                    Err(PublishError::Returned) => outcomes.returned += 1,
                    Err(_) => outcomes.other += 1,
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    broker.close().await;
    let delivered = setup.delivered().await;
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    setup.delete().await;

    let called_published_but_returned: Vec<&String> = outcomes
        .published
        .iter()
        .filter(|(_, key)| *key == "nowhere.x")
        .map(|(id, _)| id)
        .collect();
    let lost: Vec<&String> = outcomes
        .published
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !delivered.contains(*id))
        .collect();
    println!(
        "RETURNS publisher: published={} returned={} other={} delivered={} lost={}",
        outcomes.published.len(),
        outcomes.returned,
        outcomes.other,
        delivered.len(),
        lost.len()
    );
    assert!(
        called_published_but_returned.is_empty(),
        "returned messages called published: {called_published_but_returned:?}"
    );
    assert!(lost.is_empty(), "published but not in the queue: {lost:?}");
    assert_eq!(outcomes.other, 0, "only returns may fail here");
    assert!(
        outcomes.returned >= TASKS * PER_TASK / 2,
        "every unroutable message is returned"
    );
    // A routed message whose ack carried a neighbour's return is judged
    // returned (the bridge spools it and sends it again): safe, and rare.
    assert!(
        outcomes.published.len() * 2 >= TASKS * PER_TASK / 2,
        "most routed messages are called published"
    );
}

/// The same traffic through raw lapin, sends serialized (no send-order race),
/// taking `Ack(None)` as published, the way a naive pipelined publisher does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a demonstration of lapin's return attribution, not a test of the bridge"]
async fn raw_lapin_pipelined_confirms_attach_returns_to_the_wrong_message() {
    let setup = Setup::new().await;
    let channel = setup.connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let send_lock = Arc::new(tokio::sync::Mutex::new(()));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (channel, lock, outcomes, exchange) = (
            channel.clone(),
            send_lock.clone(),
            outcomes.clone(),
            setup.exchange.clone(),
        );
        tasks.spawn(async move {
            for n in 0..PER_TASK {
                let id = format!("{task}-{n}");
                let confirm = {
                    let _send = lock.lock().await;
                    channel
                        .basic_publish(
                            exchange.as_str().into(),
                            routing_key(n).into(),
                            BasicPublishOptions {
                                mandatory: true,
                                immediate: false,
                            },
                            id.as_bytes(),
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_message_id(id.as_str().into()),
                        )
                        .await
                        .unwrap()
                };
                let confirmation = confirm.await.unwrap();
                let mut outcomes = outcomes.lock().unwrap();
                match confirmation {
                    Confirmation::Ack(None) => outcomes.published.push((id, routing_key(n))),
                    _ => outcomes.returned += 1,
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let delivered = setup.delivered().await;
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    setup.delete().await;
    let lost = outcomes
        .published
        .iter()
        .filter(|(id, _)| !delivered.contains(id))
        .count();
    println!(
        "RETURNS raw lapin: published={} returned={} delivered={} published_but_not_delivered={lost}",
        outcomes.published.len(),
        outcomes.returned,
        delivered.len()
    );
    assert_eq!(
        lost, 0,
        "messages taken as published never reached the queue"
    );
}

fn broker_settings(url: String, timeout: Duration) -> BrokerSettings {
    BrokerSettings {
        urls: vec![url.parse().unwrap()],
        connection_name: "enate-bridge publisher test".into(),
        heartbeat_secs: 10,
        channels: 1,
        confirms_per_channel: 8,
        timeout,
        topology: None,
        tls: None,
    }
}

/// RabbitMQ closes a channel that publishes to a missing exchange, and lapin
/// reports it as an error event; the connection is fine and must be kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_broker_closes_is_reopened_without_reconnecting() {
    let broker = Broker::start(broker_settings(amqp_url(), Duration::from_secs(5)))
        .await
        .unwrap();
    for n in 0..3 {
        let result = broker
            .publish(Message {
                exchange: "test-no-such-exchange".into(),
                routing_key: "x".into(),
                body: b"x".to_vec().into(),
                properties: BasicProperties::default().with_message_id(format!("m{n}").into()),
            })
            .await;
        assert!(
            matches!(result, Err(PublishError::Channel(_))),
            "{result:?}"
        );
        // Not a synchronization: the half second after each channel error is
        // the window in which a wrong reconnect (counted below) would happen;
        // no event could say that none will.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        broker.status().reconnects,
        0,
        "a channel error is not a lost connection"
    );
    assert!(broker.readiness().is_ok());
    broker.close().await;
}

/// A broker that accepts TCP and never answers holds a connection attempt for
/// the whole connect timeout; a shutdown must not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_does_not_wait_for_a_connection_attempt_to_a_silent_broker() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let broker = Broker::start(broker_settings(url, Duration::from_secs(1)))
        .await
        .expect("an unreachable broker does not stop the start");
    let attempts_of_start = accepted.load(std::sync::atomic::Ordering::SeqCst);
    // The supervisor is now in its next attempt, held by the silent broker.
    eventually(
        Duration::from_secs(10),
        "the supervisor's next attempt to reach the silent broker",
        || async {
            let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst);
            if attempts > attempts_of_start {
                Ok(())
            } else {
                Err(format!("{attempts} connections accepted"))
            }
        },
    )
    .await;
    let closing = std::time::Instant::now();
    broker.close().await;
    assert!(
        closing.elapsed() < Duration::from_secs(2),
        "close waited {:?} for a connection attempt",
        closing.elapsed()
    );
}
