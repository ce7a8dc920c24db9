//! A reproducer without the bridge (ignored by default): raw lapin publishes
//! with pipelined publisher confirms to a durable `x-max-length = 200`,
//! `x-overflow = reject-publish` queue drained by a slow consumer; every
//! message the broker acks must reach the consumer. Found by the queue-nack
//! fault: here (lapin 4.12.3, RabbitMQ 3.10.8) some acked messages never
//! arrive when several confirms are outstanding on one channel
//! (FAULT_RAW_CHANNELS=1: 16 publishers on one channel, the worst case;
//! =16: one outstanding confirm per channel, where none was lost).
//!
//! cargo test --test faults raw_confirms -- --ignored --nocapture
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use lapin::{
    BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};

use crate::node::Node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn raw_confirms_every_message_acked_by_a_reject_publish_queue_arrives() {
    let _serial = crate::serial().await;
    let node = Node::start("raw-confirms").await;
    let connection = Connection::connect(&node.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let setup = connection.create_channel().await.unwrap();
    setup
        .exchange_declare(
            "x".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(200));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    setup
        .queue_declare(
            "limited".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .unwrap();
    setup
        .queue_bind(
            "limited".into(),
            "x".into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = crate::slow_consumer_raw(node.url(), "limited", 400, stopped);
    let mut channels = Vec::new();
    let n_channels: usize = std::env::var("FAULT_RAW_CHANNELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for _ in 0..n_channels {
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        channels.push(channel);
    }
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (channels, acked, next) = (channels.clone(), acked.clone(), next.clone());
        tasks.spawn(async move {
            let mut pending: Vec<String> = (0..190).map(|seq| format!("c{client}-{seq}")).collect();
            while !pending.is_empty() {
                let mut retry = Vec::new();
                for reference in pending {
                    let index = if channels.len() == 16 {
                        client
                    } else {
                        next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % channels.len()
                    };
                    let confirm = channels[index]
                        .basic_publish(
                            "x".into(),
                            "packet_updated.ticket.resolved".into(),
                            BasicPublishOptions {
                                mandatory: true,
                                immediate: false,
                            },
                            reference.as_bytes(),
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await
                        .unwrap()
                        .await
                        .unwrap();
                    match confirm {
                        Confirmation::Ack(None) => acked.lock().unwrap().push(reference),
                        _ => retry.push(reference),
                    }
                }
                pending = retry;
                if !pending.is_empty() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let probe = connection.create_channel().await.unwrap();
    loop {
        let queue = probe
            .queue_declare(
                "limited".into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        if queue.message_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send_replace(true);
    let got: HashSet<String> = consumer.await.unwrap().into_iter().collect();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<&String> = acked.iter().filter(|r| !got.contains(*r)).collect();
    println!(
        "RAW CONFIRMS channels={} acked={} consumed_unique={} lost={} {:?}",
        channels.len(),
        acked.len(),
        got.len(),
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        lost.is_empty(),
        "messages acked by the broker never reached the queue"
    );
}
