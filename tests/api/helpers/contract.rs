//! The published contract, checked on every message a test receives: an event
//! must match `schemas/event.schema.json` and carry the AMQP properties and
//! headers that `schemas/asyncapi.json` promises; a quarantined payload must
//! carry its two headers. `TestQueue::try_next` calls `check_delivery`, so every
//! test that consumes from RabbitMQ checks the contract without asking.
//!
//! Each checked message is counted, and the running totals are written to
//! `target/tmp/contract-checked-messages.txt`, so a run of the suite says how
//! much real output the documents were held against.

use std::{
    collections::BTreeMap,
    sync::{LazyLock, Mutex},
};

use jsonschema::Validator;
use lapin::message::Delivery;
use serde_json::Value;

use super::header;

pub const EVENT_SCHEMA_TEXT: &str = include_str!("../../../schemas/event.schema.json");
const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The event schema, formats checked too (draft 2020-12 makes `format` an
/// annotation only unless asked): a `date-time` or `uuid` that is not one fails.
pub static EVENT_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(EVENT_SCHEMA_TEXT).expect("the schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the event schema compiles")
});

/// Every reason `event` breaks the schema, one line each; empty when it matches.
pub fn schema_errors(event: &Value) -> Vec<String> {
    EVENT_SCHEMA
        .iter_errors(event)
        .map(|error| format!("at {}: {error}", error.instance_path()))
        .collect()
}

/// Panics, naming every broken promise, unless the message keeps the contract.
pub fn check_delivery(delivery: &Delivery) {
    let properties = &delivery.properties;
    let content_type = properties.content_type().as_ref().map(|c| c.as_str());
    if content_type == Some(CLOUDEVENTS_CONTENT_TYPE) {
        check_event(delivery);
    } else if let Some(webhook) = header(properties, "x-enate-webhook") {
        assert!(
            header(properties, "x-quarantine-reason").is_some_and(|reason| !reason.is_empty()),
            "a quarantined message has an x-quarantine-reason header"
        );
        count(vec![format!("quarantined {webhook}")]);
    } else {
        panic!(
            "a message of the bridge is an event (content type {CLOUDEVENTS_CONTENT_TYPE}) or \
             a quarantined payload (header x-enate-webhook); this one is neither: {properties:?}"
        );
    }
}

fn check_event(delivery: &Delivery) {
    let text = String::from_utf8_lossy(&delivery.data);
    let event: Value = serde_json::from_slice(&delivery.data)
        .unwrap_or_else(|error| panic!("an event is JSON ({error}): {text}"));
    let errors = schema_errors(&event);
    assert!(
        errors.is_empty(),
        "the event does not match schemas/event.schema.json:\n  {}\n{text}",
        errors.join("\n  ")
    );

    // The AMQP side, as schemas/asyncapi.json describes it.
    let properties = &delivery.properties;
    let property =
        |value: &Option<lapin::types::ShortString>| value.as_ref().map(|v| v.as_str().to_string());
    assert_eq!(
        property(properties.message_id()).as_deref(),
        event["id"].as_str(),
        "message_id is the event id"
    );
    assert_eq!(
        property(properties.kind()).as_deref(),
        event["type"].as_str(),
        "the type property is the event type"
    );
    assert_eq!(
        property(properties.app_id()).as_deref(),
        Some("enate-bridge")
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    assert!(properties.timestamp().is_some(), "a timestamp");
    let data = &event["data"];
    let kind = event["type"].as_str().unwrap_or_default();
    let routing_word = |field: &str| data[field].as_str().unwrap_or("none").to_string();
    let expected_headers = [
        (
            "event",
            kind.trim_start_matches("com.enate.webhook.").to_string(),
        ),
        ("process_type", routing_word("process_type")),
        ("status", routing_word("status")),
    ];
    for (name, expected) in expected_headers {
        assert_eq!(
            header(properties, name),
            Some(expected),
            "header {name} of {text}"
        );
    }

    let mut labels = vec![format!("event {kind}")];
    let mut tag = |applies: bool, label: &str| {
        if applies {
            labels.push(label.to_string());
        }
    };
    let non_empty = |value: &Value| match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    };
    tag(non_empty(&data["warnings"]), "with warnings");
    tag(non_empty(&data["extra"]), "with extra keys");
    tag(data.get("raw").is_none(), "without raw");
    tag(!data["cc"].is_null(), "with cc");
    tag(
        [
            "status",
            "process_type",
            "rag_status",
            "started_by_method",
            "communication_type",
        ]
        .iter()
        .any(|field| data[*field] == "unknown"),
        "with an unknown enum value",
    );
    tag(event.get("subject").is_none(), "without subject");
    count(labels);
}

/// Totals since the test binary started: "messages" and one line per label.
static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

fn count(labels: Vec<String>) {
    let mut counts = COUNTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *counts.entry("messages checked".into()).or_default() += 1;
    for label in labels {
        *counts.entry(label).or_default() += 1;
    }
    let report: String = counts
        .iter()
        .map(|(label, n)| format!("{n:>6}  {label}\n"))
        .collect();
    // Rewritten whole each time: whatever test is the last to consume, the file
    // holds the totals of the run. Written under the lock, so never interleaved.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract-checked-messages.txt"),
        report,
    );
}
