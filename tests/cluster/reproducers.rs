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
