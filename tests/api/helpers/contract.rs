//! The published contract, checked on every message a test receives: an event
//! must match `schemas/event.schema.json` and carry the AMQP properties and
//! headers that `schemas/asyncapi.json` promises; a quarantined payload must
//! carry its two headers. `TestQueue::try_next` calls `check_delivery`, so every
//! test that consumes from RabbitMQ checks the contract without asking.
//!
//! The HTTP side too: `checked` holds an answer of the bridge against
//! `schemas/openapi.json` (status, content type, required headers, body).
//!
//! Each checked message and answer is counted, and the running totals are
//! written to `target/tmp/contract-checked.txt`, so a run of the suite says how
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
        count("messages checked", vec![format!("quarantined {webhook}")]);
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
    count("messages checked", labels);
}

/// Totals since the test binary started: messages and answers, and one line per label.
static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

fn count(total: &str, labels: Vec<String>) {
    let mut counts = COUNTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *counts.entry(total.into()).or_default() += 1;
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
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract-checked.txt"),
        report,
    );
}

const OPENAPI_TEXT: &str = include_str!("../../../schemas/openapi.json");

/// The OpenAPI document, with validators made on demand for its response bodies.
static OPENAPI: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(OPENAPI_TEXT).expect("the OpenAPI document is JSON"));
static ANSWER_SCHEMAS: Mutex<BTreeMap<String, std::sync::Arc<Validator>>> =
    Mutex::new(BTreeMap::new());

/// The OpenAPI path template that `path` matches on a listener, if any.
fn path_template(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let paths = OPENAPI["paths"].as_object()?;
    paths
        .keys()
        .find(|template| {
            let (template, concrete): (Vec<&str>, Vec<&str>) =
                (template.split('/').collect(), path.split('/').collect());
            template.len() == concrete.len()
                && template.iter().zip(&concrete).all(|(t, c)| {
                    (t.starts_with('{') && t.ends_with('}') && !c.is_empty()) || t == c
                })
        })
        .cloned()
}

/// A validator for the schema at `pointer` in the OpenAPI document. OpenAPI 3.1
/// schemas are JSON Schema 2020-12; the whole document is the root, so their
/// `#/components/...` references resolve (its other keys are not keywords).
fn answer_schema(pointer: &str) -> std::sync::Arc<Validator> {
    let mut cache = ANSWER_SCHEMAS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(pointer.to_string())
        .or_insert_with(|| {
            let mut root = OPENAPI.clone();
            let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
            root["$ref"] = Value::String(format!("#{fragment}"));
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|error| panic!("the schema at {pointer} compiles: {error}"));
            std::sync::Arc::new(validator)
        })
        .clone()
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Panics unless the OpenAPI document declares this answer: its status for the
/// operation (a path it does not have: 404 `not_found`), its body's schema, and
/// the headers it requires (`Retry-After`, `Allow`).
pub fn check_answer(
    method: &str,
    path: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) {
    let text = String::from_utf8_lossy(body);
    let what = format!("{method} {path} answered {status} {text}");
    let method = method.to_lowercase();
    let operation = path_template(path)
        .map(|template| format!("/paths/{}/{method}", escape(&template)))
        .filter(|pointer| OPENAPI.pointer(pointer).is_some());
    let Some(operation) = operation else {
        // No such path, or not for this method: 404 or 405, with their bodies.
        let (schema, label) = match status {
            405 => {
                assert!(headers.contains_key("allow"), "{what}: a 405 has Allow");
                ("MethodNotAllowed", "method not allowed")
            }
            _ => ("NotFound", "no such route"),
        };
        assert!(matches!(status, 404 | 405), "{what}: expected 404 or 405");
        validate_answer(&format!("/components/schemas/{schema}"), body, &what);
        count(
            "answers checked",
            vec![format!("answer {status} ({label})")],
        );
        return;
    };
    let mut response_pointer = format!("{operation}/responses/{status}");
    let Some(mut response) = OPENAPI.pointer(&response_pointer) else {
        panic!("{what}: the OpenAPI document declares no {status} for {operation}");
    };
    if let Some(reference) = response["$ref"].as_str() {
        response_pointer = reference.trim_start_matches('#').to_string();
        response = OPENAPI
            .pointer(&response_pointer)
            .expect("the $ref resolves");
    }
    if let Some(required) = response["headers"].as_object() {
        for name in required.keys() {
            assert!(headers.contains_key(name.as_str()), "{what}: header {name}");
        }
    }
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let content = &response["content"];
    assert!(
        content.get(media_type).is_some(),
        "{what}: content type {content_type:?} is not one of {content}"
    );
    if media_type.ends_with("json") {
        validate_answer(
            &format!("{response_pointer}/content/{}/schema", escape(media_type)),
            body,
            &what,
        );
    }
    let status_word = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["status"].as_str().map(str::to_string))
        .unwrap_or_default();
    count(
        "answers checked",
        vec![format!("answer {status} {status_word}")],
    );
}

fn validate_answer(pointer: &str, body: &[u8], what: &str) {
    let body: Value =
        serde_json::from_slice(body).unwrap_or_else(|error| panic!("{what}: not JSON ({error})"));
    let validator = answer_schema(pointer);
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|error| format!("at {}: {error}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the body does not match the OpenAPI document:\n  {}",
        errors.join("\n  ")
    );
}

/// The response after `check_answer`, rebuilt so the test can still read it.
pub async fn checked(method: &str, path: &str, response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the body arrives");
    check_answer(method, path, status.as_u16(), &headers, &body);
    let mut rebuilt = http::Response::builder().status(status);
    for (name, value) in &headers {
        rebuilt = rebuilt.header(name, value);
    }
    reqwest::Response::from(rebuilt.body(body).expect("a valid response"))
}
