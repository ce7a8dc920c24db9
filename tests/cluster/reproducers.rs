//! Reproducers of what the cluster suite found, without the bridge's binary:
//! is it RabbitMQ, or our code? Ignored (each boots a cluster); run them with
//! `cargo test --test cluster reproducers -- --ignored --nocapture`.

use lapin::{
    Connection, ConnectionProperties, ErrorKind, options::QueueDeclareOptions, types::FieldTable,
};

use enate_bridge::amqp::Topology;

use crate::cluster::Cluster;

async fn connect(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("the reproducer connects")
}

/// RabbitMQ's answer: a durable classic queue lives on its home node; while
/// that node is down, declaring it from another node is 404 NOT_FOUND (a
/// channel error). The bridge's topology (whose `enate.unrouted` and
/// `enate.quarantine` are classic queues, on node a here since definitions
/// were imported there) must still declare on node b.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a reproducer: boots a three-node cluster"]
async fn classic_queue_with_its_home_node_down_is_not_found_elsewhere_and_the_topology_still_declares()
 {
    let _serial = crate::serial().await;
    let cluster = Cluster::start("repro-classic").await;
    let on_a = connect(&cluster.nodes[0].url()).await;
    let channel = on_a.create_channel().await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare("repro.classic".into(), durable, FieldTable::default())
        .await
        .expect("declared on its home node");
    let _ = on_a.close(200, "declared".into()).await;
    cluster.nodes[0].stop().await;

    let on_b = connect(&cluster.nodes[1].url()).await;
    let answer = on_b
        .create_channel()
        .await
        .unwrap()
        .queue_declare("repro.classic".into(), durable, FieldTable::default())
        .await;
    println!("RabbitMQ, declaring a classic queue whose home node is down: {answer:?}");
    let Err(error) = answer else {
        panic!("RabbitMQ declared a classic queue whose home node is down");
    };
    assert!(
        matches!(error.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == 404),
        "expected 404 NOT_FOUND, got {error:?}"
    );

    let topology = Topology {
        exchange: "enate".into(),
        quarantine_exchange: "enate.quarantine".into(),
        unrouted_exchange: "enate.unrouted".into(),
    };
    let declared = topology.declare(&on_b).await;
    println!("the bridge's topology on node b, node a down: {declared:?}");
    assert!(
        declared.is_ok(),
        "the bridge's topology must declare while the home node of its classic queues is down: {declared:?}"
    );
    let _ = on_b.close(200, "checked".into()).await;
}

/// RabbitMQ's answer to a publish to a quorum queue through a node left alone
/// (two of three nodes down), on a channel opened while the cluster was whole:
/// is it refused (nack), or neither confirmed nor refused until quorum is back?
/// The bridge's answer time and throughput in that outage depend on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a reproducer: boots a three-node cluster"]
async fn a_publish_through_a_node_left_without_quorum_is_neither_confirmed_nor_refused() {
    use std::time::{Duration, Instant};

    use lapin::{Confirmation, options::ConfirmSelectOptions};

    let _serial = crate::serial().await;
    let cluster = Cluster::start("repro-minority").await;
    let on_c = connect(&cluster.nodes[2].url()).await;
    let channel = on_c.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let whole = send(&channel, "while whole").await.await;
    println!("with the cluster whole: {whole:?}");
    assert!(matches!(whole, Ok(Confirmation::Ack(None))));

    futures::future::join_all(cluster.nodes[..2].iter().map(|node| node.stop())).await;
    let sent = Instant::now();
    let confirm = send(&channel, "without quorum").await;
    let mut confirm = Box::pin(confirm);
    let within_10_s = tokio::time::timeout(Duration::from_secs(10), &mut confirm).await;
    println!("without quorum, within 10 s: {within_10_s:?}");
    futures::future::join_all(cluster.nodes[..2].iter().map(|node| node.boot())).await;
    let at_last = tokio::time::timeout(Duration::from_secs(60), confirm).await;
    println!(
        "once quorum is back, {:.1} s after the publish: {at_last:?}",
        sent.elapsed().as_secs_f64()
    );
    assert!(
        within_10_s.is_err(),
        "RabbitMQ answered within 10 s without quorum: {within_10_s:?}"
    );
    let _ = on_c.close(200, "checked".into()).await;
}

/// Sends `body` to `enate.tickets` (persistent, mandatory); returns its confirm.
async fn send(channel: &lapin::Channel, body: &'static str) -> lapin::PublisherConfirm {
    channel
        .basic_publish(
            "".into(),
            "enate.tickets".into(),
            lapin::options::BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body.as_bytes(),
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("the publish is sent")
}
