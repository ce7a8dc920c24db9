//! What workers consume: the event, its properties, its routing key.

use serde_json::{Value, json};

use crate::helpers::{header, json, spawn_app, spawn_app_with};

fn resolved_ticket() -> Value {
    json!({
        "GUID": "AAAAAAAA-1111-4222-8333-444444444444",
        "Reference": "202234-T",
        "Title": "Payroll question ",
        "Status": 4,
        "DueDate": "2024-06-01T17:00:00+01:00",
        "RAGStatus": 1,
        "ProcessType": 2,
        "ProcessTypeName": "General Enquiry",
        "CustomerName": "Acme",
        "StartedbyMethod": "4",
        "ResolvedOn": "/Date(1700000000000)/",
        "Region": "EMEA"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_update_is_published_as_a_cloudevent_once_confirmed() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;

    let response = app.post_json("PacketUpdated", &resolved_ticket()).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "published");
    let id = answer["event_ids"][0].as_str().unwrap().to_string();
    assert_eq!(answer["event_ids"].as_array().unwrap().len(), 1);

    let delivery = queue.next().await;
    assert_eq!(
        delivery.routing_key.as_str(),
        "packet_updated.ticket.resolved"
    );
    let properties = &delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().unwrap().as_str(),
        "application/cloudevents+json"
    );
    assert_eq!(properties.message_id().as_ref().unwrap().as_str(), id);
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(
        properties.kind().as_ref().unwrap().as_str(),
        "com.enate.webhook.packet_updated"
    );
    assert_eq!(
        properties.app_id().as_ref().unwrap().as_str(),
        "enate-bridge"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let timestamp = properties.timestamp().unwrap();
    assert!(
        now.abs_diff(timestamp) < 60,
        "timestamp {timestamp} is not now ({now})"
    );
    assert_eq!(
        header(properties, "event").as_deref(),
        Some("packet_updated")
    );
    assert_eq!(
        header(properties, "process_type").as_deref(),
        Some("ticket")
    );
    assert_eq!(header(properties, "status").as_deref(), Some("resolved"));

    let event = json(&delivery);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], id);
    assert_eq!(event["source"], "enate-bridge");
    assert_eq!(event["type"], "com.enate.webhook.packet_updated");
    assert_eq!(event["subject"], "aaaaaaaa-1111-4222-8333-444444444444");
    assert_eq!(event["datacontenttype"], "application/json");
    let time = event["time"].as_str().unwrap();
    assert!(
        time.len() == "2026-01-01T00:00:00.000Z".len() && time.ends_with('Z'),
        "time {time} is RFC 3339 UTC with milliseconds"
    );
    let data = &event["data"];
    assert_eq!(data["guid"], "aaaaaaaa-1111-4222-8333-444444444444");
    assert_eq!(data["reference"], "202234-T");
    assert_eq!(data["title"], "Payroll question");
    assert_eq!(data["status"], "resolved");
    assert_eq!(data["status_code"], 4);
    assert_eq!(data["process_type"], "ticket");
    assert_eq!(data["process_type_code"], 2);
    assert_eq!(data["process_type_name"], "General Enquiry");
    assert_eq!(data["rag_status"], "due_in_future");
    assert_eq!(data["due_date"], "2024-06-01T16:00:00Z");
    assert_eq!(data["resolved_on"], "2023-11-14T22:13:20Z");
    assert_eq!(data["started_by_method"], "by_email");
    assert_eq!(data["started_by_method_code"], 4);
    assert_eq!(data["packet_guid"], Value::Null);
    assert_eq!(data["cc"], Value::Null);
    assert_eq!(data["extra"], json!({"Region": "EMEA"}));
    assert_eq!(data["warnings"], json!([]));
    assert_eq!(data["raw"], resolved_ticket());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_every_webhook_reaches_its_event() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    let cases = [
        ("PacketCreated", "packet_created"),
        ("packetcreated", "packet_created"),
        ("PACKETUPDATED", "packet_updated"),
        ("packet_updated", "packet_updated"),
        ("NewCommunication", "new_communication"),
        ("BusinessObjectCreated", "business_object_created"),
        ("business_object_updated", "business_object_updated"),
        (
            "SpecificBusinessObjectUpdated",
            "specific_business_object_updated",
        ),
    ];
    for (path, event) in cases {
        let response = app.post_json(path, &json!({"Name": path})).await;
        assert_eq!(response.status(), 200, "{path}");
        let delivery = queue.next().await;
        assert_eq!(
            delivery.routing_key.as_str(),
            format!("{event}.none.none"),
            "{path}"
        );
        assert_eq!(
            json(&delivery)["type"],
            format!("com.enate.webhook.{event}"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_body_publishes_one_event_per_object() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    let body = json!([
        {"ProcessType": 1, "Status": 1, "Reference": "1-C"},
        {"ProcessType": 3, "Status": "In Progress", "Reference": "2-A"}
    ]);

    let response = app.post_json("PacketCreated", &body).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let ids = answer["event_ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    let mut keys = vec![queue.next().await, queue.next().await]
        .into_iter()
        .map(|d| (d.routing_key.to_string(), json(&d)["id"].clone()))
        .collect::<Vec<_>>();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(keys[0].0, "packet_created.action.in_progress");
    assert_eq!(keys[1].0, "packet_created.case.to_do");
    assert!(ids.contains(&keys[0].1) && ids.contains(&keys[1].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_delivery_gets_the_same_event_id() {
    let app = spawn_app().await;
    let body = resolved_ticket().to_string();
    let first: Value = app
        .post_webhook("PacketUpdated", body.clone())
        .await
        .json()
        .await
        .unwrap();
    let retry: Value = app
        .post_webhook("PacketUpdated", body.clone())
        .await
        .json()
        .await
        .unwrap();
    let other_webhook: Value = app
        .post_webhook("PacketCreated", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["event_ids"], retry["event_ids"]);
    assert_ne!(first["event_ids"], other_webhook["event_ids"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_on_resolved_tickets_gets_only_resolved_tickets() {
    let app = spawn_app().await;
    let resolved_tickets = app.bind_queue("*.ticket.resolved").await;
    let cases = [
        json!({"ProcessType": 2, "Status": 4, "Reference": "wanted"}),
        json!({"ProcessType": 2, "Status": 2}),
        json!({"ProcessType": 1, "Status": 4}),
        json!({"ProcessType": "Ticket", "Status": "Resolved", "Reference": "wanted too"}),
    ];
    for body in &cases {
        assert_eq!(app.post_json("PacketUpdated", body).await.status(), 200);
    }
    assert_eq!(
        json(&resolved_tickets.next().await)["data"]["reference"],
        "wanted"
    );
    assert_eq!(
        json(&resolved_tickets.next().await)["data"]["reference"],
        "wanted too"
    );
    resolved_tickets.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_no_queue_is_bound_for_lands_in_the_unrouted_queue() {
    let app = spawn_app().await;
    let tickets = app.bind_queue("*.ticket.*").await;
    let unrouted = app.queue(&app.unrouted).await;

    let response = app
        .post_json("PacketUpdated", &json!({"ProcessType": 1, "Status": 1}))
        .await;

    assert_eq!(response.status(), 200);
    let delivery = unrouted.next().await;
    assert_eq!(delivery.routing_key.as_str(), "packet_updated.case.to_do");
    assert_eq!(json(&delivery)["data"]["process_type"], "case");
    tickets.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_content_type_is_accepted() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    let content_types = [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ];
    for (n, content_type) in content_types.into_iter().enumerate() {
        // Distinct bodies: the same body twice would be answered as a duplicate.
        let mut request = app
            .client
            .post(format!("{}/webhooks/PacketUpdated", app.address))
            .header("X-Enate-Secret", crate::helpers::SECRET)
            .body(json!({"Status": 1, "Reference": n}).to_string());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            200,
            "{content_type:?}"
        );
        queue.next().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_key_template_and_source_are_configurable() {
    let app = spawn_app_with(|settings| {
        settings.amqp.routing_key = enate_bridge::routing::RoutingKeyTemplate::parse(
            "enate.{rag_status}.{communication_type}.{started_by_method}",
        )
        .unwrap();
        settings.events.source = "urn:acme:enate".into();
        settings.events.include_raw = false;
    })
    .await;
    let queue = app.bind_queue("#").await;

    app.post_json(
        "NewCommunication",
        &json!({"CommunicationType": 2, "RAGStatus": 9}),
    )
    .await;

    let delivery = queue.next().await;
    assert_eq!(
        delivery.routing_key.as_str(),
        "enate.unknown.email_incoming.none"
    );
    let event = json(&delivery);
    assert_eq!(event["source"], "urn:acme:enate");
    assert!(event["data"].get("raw").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_confirms_per_channel_still_confirm_every_event() {
    let app = spawn_app_with(|settings| {
        settings.amqp.confirms_per_channel = 8;
        settings.amqp.channels = 2;
    })
    .await;
    let queue = app.bind_queue("#").await;
    let pending: Vec<_> = (0..40)
        .map(|n| app.post_in_background("PacketUpdated", &json!({"Reference": n}).to_string()))
        .collect();
    for request in pending {
        assert_eq!(request.await.unwrap().status(), 200);
    }
    for _ in 0..40 {
        queue.next().await;
    }
    queue.assert_empty().await;
}
