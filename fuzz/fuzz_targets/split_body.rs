//! `payload::split_body` on any bytes: it never panics, every object it gives is
//! a slice of the body byte for byte, and it keeps every key the body has.

#![no_main]

use enate_bridge::payload::{InvalidPayload, split_body};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// A reason is a sentence about the body, never the body: it stays short.
const MAX_REASON_BYTES: usize = 256;

fuzz_target!(|body: &[u8]| {
    match split_body(body) {
        Ok(objects) => {
            assert!(!objects.is_empty(), "an accepted body has an object");
            for object in &objects {
                let text = object.text.as_bytes();
                let offset = (text.as_ptr() as usize)
                    .checked_sub(body.as_ptr() as usize)
                    .expect("the object's text lies inside the body");
                assert_eq!(&body[offset..offset + text.len()], text, "raw bytes kept");
                assert!(object.text.starts_with('{') && object.text.ends_with('}'));
                // serde_json's own reading (a repeated key overwrites) knows the
                // same keys: none was lost, none made up.
                let plain: Map<String, Value> =
                    serde_json::from_str(object.text).expect("the object is valid JSON");
                assert!(object.entries.len() >= plain.len());
                for (key, _) in &object.entries {
                    assert!(plain.contains_key(key), "key {key:?} was made up");
                }
                for key in plain.keys() {
                    assert!(
                        object.entries.iter().any(|(kept, _)| kept == key),
                        "key {key:?} was lost"
                    );
                }
            }
        }
        Err(InvalidPayload(reason)) => {
            assert!(!reason.is_empty());
            assert!(
                reason.len() <= MAX_REASON_BYTES,
                "reason too long: {reason}"
            );
        }
    }
});
