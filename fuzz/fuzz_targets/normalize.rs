//! From the body's bytes to the published CloudEvent, as the ingress does it
//! (`split_body`, then `EventBuilder::build` per object): it never panics, an
//! event is JSON whose `data.raw` is the object's bytes exactly, and its id is
//! derived from those bytes.

#![no_main]

use enate_bridge::{
    event::{EventBuilder, event_id},
    normalize::NormalizeOptions,
    payload::{InvalidPayload, split_body},
    routing::RoutingKeyTemplate,
    webhook::Webhook,
};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::LazyLock;

const MAX_REASON_BYTES: usize = 256;

static BUILDER: LazyLock<EventBuilder> = LazyLock::new(|| EventBuilder {
    source: "enate-bridge".into(),
    normalize: NormalizeOptions {
        naive_time_zone: jiff::tz::TimeZone::get("Europe/London").expect("bundled zone"),
        include_raw: true,
    },
    routing_key: RoutingKeyTemplate::parse("{event}.{process_type}.{status}")
        .expect("a valid template"),
});

/// The part of the published event this target checks.
#[derive(Deserialize)]
struct Published<'a> {
    id: String,
    #[serde(borrow)]
    data: PublishedData<'a>,
}

#[derive(Deserialize)]
struct PublishedData<'a> {
    #[serde(borrow)]
    raw: &'a RawValue,
    warnings: Vec<String>,
}

fuzz_target!(|input: &[u8]| {
    // The first byte picks the webhook: the rest is the body.
    let Some((&pick, body)) = input.split_first() else {
        return;
    };
    let webhook = Webhook::ALL[pick as usize % Webhook::ALL.len()];
    let Ok(objects) = split_body(body) else {
        return;
    };
    let received = jiff::Timestamp::from_second(1_767_225_600).expect("a valid instant");
    for object in objects {
        let text = object.text;
        match BUILDER.build(webhook, object, received) {
            Ok(event) => {
                let published: Published = serde_json::from_slice(&event.body)
                    .expect("a built event is JSON with data.raw and warnings");
                assert_eq!(
                    published.data.raw.get(),
                    text,
                    "data.raw is the bytes received"
                );
                assert_eq!(published.id, event.id.to_string());
                assert_eq!(event.id, event_id(webhook, text.as_bytes()));
                for warning in &published.data.warnings {
                    let field = warning.split(": ").next().unwrap_or_default();
                    assert!(
                        !field.is_empty()
                            && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                        "a warning starts with its data field: {warning}"
                    );
                }
                assert!(!event.routing_key.is_empty());
            }
            Err(InvalidPayload(reason)) => {
                assert!(!reason.is_empty());
                assert!(
                    reason.len() <= MAX_REASON_BYTES,
                    "reason too long: {reason}"
                );
            }
        }
    }
});
