//! The published contract (`schemas/`) against the real bridge: odd inputs
//! still become events that match the event schema, the schema refuses what the
//! bridge must never publish, and the admin listener serves the documents.
//!
//! Every message any test consumes is also checked, by `helpers::contract`.

use serde_json::{Value, json};

use crate::helpers::{
    contract::{EVENT_SCHEMA_TEXT, schema_errors},
    json, spawn_app,
};

/// Odd but real-world inputs, each with what must be true of its events. The
/// events are checked against the schema when they are consumed.
fn odd_inputs() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "PacketUpdated",
            json!({"GUID": "AAAAAAAA-0000-4000-8000-000000000001", "Status": 9,
                   "ProcessType": "Project", "RAGStatus": "-2",
                   "StartedByMethod": "ByRobotUserInBulk"}),
            "unknown code and unknown name",
        ),
        (
            "PacketCreated",
            json!({"GUID": "PKT-17", "Reference": 202234, "Title": "  ", "Status": 1,
                   "status": 2, "DueDate": "next tuesday", "ResolvedOn": 1700000000,
                   "ProcessType": 2.0, "CustomerName": true}),
            "warnings: not a GUID, bad dates, a duplicate key; numbers and booleans as text",
        ),
        (
            "PacketUpdated",
            json!({"GUID": "{aaaaaaaa-0000-4000-8000-000000000002}", "DueDate": "2024-05-01",
                   "ResolvedOn": "/Date(1700000000000+0100)/", "RAGStatus": "DueToday",
                   "Status": "In Progress", "ProcessType": "ticket", "Title": "Zahlung über 5 €",
                   "Region": {"Name": "EMEA", "Codes": [1, 2]}, "Tags": ["a", null], "Empty": null}),
            "every date form, enum names, unicode, nested extra keys",
        ),
        (
            "PacketUpdated",
            json!({"DueDate": "-70000-01-01T00:00:00Z",
                   "ResolvedOn": "/Date(-70000000000000)/"}),
            "dates before year 0 are no RFC 3339 date",
        ),
        (
            "NewCommunication",
            json!({"GUID": "11111111222233334444555555555555",
                   "PacketGUID": "{AAAAAAAA-0000-4000-8000-000000000003}",
                   "Sender": "jane@acme.example", "From": "jane@acme.example",
                   "CC": "a@acme.example; b@acme.example,", "Subject": "Re: payroll",
                   "AttachmentCount": "3", "CommunicationType": "EmailIncoming"}),
            "a communication on a packet",
        ),
        (
            "NewCommunication",
            json!({"GUID": "11111111-2222-3333-4444-000000000002", "CC": ["x@acme.example", ""],
                   "AttachmentCount": "three", "CommunicationType": 42}),
            "a communication without a packet: no subject",
        ),
        (
            "BusinessObjectCreated",
            json!({"GUID": "33333333-0000-4000-8000-000000000001", "Name": "Acme Ltd",
                   "Type": "Company", "ParentGUID": null}),
            "a business object",
        ),
        (
            "BusinessObjectUpdated",
            json!({"GUID": "33333333-0000-4000-8000-000000000002", "Name": "Schedule 7",
                   "PacketGUID": "aaaaaaaa-0000-4000-8000-000000000004"}),
            "a business object naming a packet has a subject",
        ),
        (
            "SpecificBusinessObjectUpdated",
            json!({}),
            "an empty object",
        ),
        (
            "PacketCreated",
            json!([
                {"GUID": "aaaaaaaa-0000-4000-8000-000000000005", "ProcessType": 1, "Status": 0},
                {"GUID": "aaaaaaaa-0000-4000-8000-000000000006", "ProcessType": 3, "Status": 5},
                {"Reference": "no guid"}
            ]),
            "an array body",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_inputs_become_events_that_match_the_schema() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    for (webhook, body, why) in odd_inputs() {
        let response = app.post_json(webhook, &body).await;
        assert_eq!(response.status(), 200, "{why}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["status"], "published", "{why}: {answer}");
        let events = answer["event_ids"].as_array().unwrap().len();
        for _ in 0..events {
            // `next` has checked it against the schema already; asked again here
            // so this test says which input broke it.
            let event = json(&queue.next().await);
            let errors = schema_errors(&event);
            assert!(errors.is_empty(), "{why}: {errors:?}\n{event}");
        }
    }
    queue.assert_empty().await;
}

/// A change made to a real event.
type Mutation = fn(&mut Value);

/// One real event, mutated in ways the bridge must never publish: the schema
/// refuses each, so a schema that accepted anything would fail here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_what_the_bridge_must_never_publish() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    let body = json!({"GUID": "aaaaaaaa-0000-4000-8000-000000000007", "Status": 4,
                      "ProcessType": 2, "DueDate": "2024-06-01T17:00:00+01:00"});
    app.post_json("PacketUpdated", &body).await;
    let event = json(&queue.next().await);
    assert_eq!(schema_errors(&event), Vec::<String>::new());

    let mutations: [(&str, Mutation); 14] = [
        ("a name and a code that disagree", |e| {
            e["data"]["status_code"] = json!(3)
        }),
        ("a name no version knows", |e| {
            e["data"]["status"] = json!("escalated")
        }),
        ("a code without its name", |e| {
            e["data"]["status"] = json!(null)
        }),
        ("a property not in the contract", |e| e["ttl"] = json!(5)),
        ("a data property not in the contract", |e| {
            e["data"]["priority"] = json!(1)
        }),
        ("a data property left out", |e| {
            e["data"].as_object_mut().unwrap().remove("cc");
        }),
        ("time without milliseconds", |e| {
            e["time"] = json!("2026-01-01T00:00:00Z")
        }),
        ("a date not in UTC", |e| {
            e["data"]["due_date"] = json!("2024-06-01T17:00:00+01:00")
        }),
        ("an id that is no UUID", |e| e["id"] = json!("42")),
        ("another type", |e| {
            e["type"] = json!("com.enate.webhook.packet_deleted")
        }),
        ("a warning that names no field", |e| {
            e["data"]["warnings"] = json!(["something odd"])
        }),
        ("a packet event without its subject", |e| {
            e.as_object_mut().unwrap().remove("subject");
        }),
        ("an empty string instead of null", |e| {
            e["data"]["title"] = json!("")
        }),
        ("cc as a string", |e| e["data"]["cc"] = json!("a@b.example")),
    ];
    for (what, mutate) in mutations {
        let mut broken = event.clone();
        mutate(&mut broken);
        assert!(
            !schema_errors(&broken).is_empty(),
            "the schema accepts {what}: {broken}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_the_contract() {
    let app = spawn_app().await;
    let documents = [
        ("/schemas/event.schema.json", EVENT_SCHEMA_TEXT),
        (
            "/schemas/asyncapi.json",
            include_str!("../../schemas/asyncapi.json"),
        ),
        (
            "/schemas/openapi.json",
            include_str!("../../schemas/openapi.json"),
        ),
        (
            "/asyncapi.json",
            include_str!("../../schemas/asyncapi.json"),
        ),
        ("/openapi.json", include_str!("../../schemas/openapi.json")),
    ];
    for (path, text) in documents {
        let response = app.get_admin(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/") && content_type.contains("json"),
            "{path}: {content_type}"
        );
        assert_eq!(response.text().await.unwrap(), text, "{path}");
    }
    let index: Value = app.get_admin("/schemas").await.json().await.unwrap();
    assert_eq!(
        index["documents"].as_array().map(Vec::len),
        Some(3),
        "{index}"
    );
    let missing = app.get_admin("/schemas/nothing.json").await;
    assert_eq!(missing.status(), 404);
}
