//! The request body as Enate sent it: one JSON object, or an array of objects
//! (one event each). Each object keeps its exact bytes, because the event id is
//! derived from them (an Enate retry of the same delivery gets the same id).

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value, value::RawValue};

/// The payload cannot become an event: not JSON, not an object or array of
/// objects, or a known field of a type it can never have (found by `normalize`).
/// The reason names the field (never its value), so it is safe to return and log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPayload(pub String);

/// One object of the body: its text as received and its parsed keys.
#[derive(Debug)]
pub struct RawObject<'a> {
    pub text: &'a str,
    pub object: Map<String, Value>,
}

/// Why a body is not split into events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Invalid(#[from] InvalidPayload),
    /// An array of more than `max` items: counting stopped at `max + 1`, so a
    /// body of 100,000 tiny objects costs no more than one of `max + 1`.
    #[error("more than {max} objects")]
    TooManyEvents { max: usize },
}

/// Splits the body into its objects, or says why it cannot be events.
pub fn split_body(body: &[u8]) -> Result<Vec<RawObject<'_>>, InvalidPayload> {
    split_body_at_most(body, usize::MAX).map_err(|error| match error {
        SplitError::Invalid(invalid) => invalid,
        SplitError::TooManyEvents { .. } => unreachable!("no array holds usize::MAX items"),
    })
}

/// Splits the body into at most `max_events` objects, or says why it cannot.
pub fn split_body_at_most(
    body: &[u8],
    max_events: usize,
) -> Result<Vec<RawObject<'_>>, SplitError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| InvalidPayload("the body is not UTF-8 text".into()))?;
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{feff}');
    match trimmed.as_bytes().first() {
        Some(b'{') => Ok(vec![RawObject {
            text: trimmed,
            object: parse_object(trimmed)?,
        }]),
        Some(b'[') => {
            let items = array_items(trimmed, max_events)?;
            if items.is_empty() {
                return Err(InvalidPayload("the body is an empty array".into()).into());
            }
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    let text = item.get();
                    if !text.starts_with('{') {
                        return Err(InvalidPayload(format!(
                            "item {index} of the array is not a JSON object"
                        ))
                        .into());
                    }
                    Ok(RawObject {
                        text,
                        object: parse_object(text)?,
                    })
                })
                .collect()
        }
        None => Err(InvalidPayload("the body is empty".into()).into()),
        Some(_) => match serde_json::from_str::<Value>(trimmed) {
            Ok(_) => Err(InvalidPayload(
                "the body is JSON but neither an object nor an array of objects".into(),
            )
            .into()),
            Err(e) => Err(InvalidPayload(format!(
                "the body is not valid JSON ({})",
                e.classify_name()
            ))
            .into()),
        },
    }
}

/// The items of a JSON array, each as its raw text, at most `max` of them: the
/// array is read item by item and reading stops at the first one over.
fn array_items(text: &str, max: usize) -> Result<Vec<&RawValue>, SplitError> {
    let mut over = false;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let items = AtMost {
        max,
        over: &mut over,
    }
    .deserialize(&mut deserializer)
    .and_then(|items| deserializer.end().map(|()| items));
    match items {
        Ok(items) => Ok(items),
        Err(_) if over => Err(SplitError::TooManyEvents { max }),
        Err(e) => Err(InvalidPayload(format!(
            "the body is not valid JSON ({})",
            e.classify_name()
        ))
        .into()),
    }
}

/// Deserializes a sequence of raw values, failing (and saying so in `over`)
/// at the item after `max`.
struct AtMost<'f> {
    max: usize,
    over: &'f mut bool,
}

impl<'de> DeserializeSeed<'de> for AtMost<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AtMost<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<&RawValue>()? {
            if items.len() == self.max {
                *self.over = true;
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

fn parse_object(text: &str) -> Result<Map<String, Value>, InvalidPayload> {
    serde_json::from_str(text).map_err(|e| {
        InvalidPayload(format!(
            "the body is not valid JSON ({})",
            e.classify_name()
        ))
    })
}

/// A short, value-free name for a JSON error, safe to return to the sender.
trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> String {
        format!(
            "{:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
        .to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_keeps_its_trimmed_bytes() {
        let body = b"\n  {\"GUID\": \"x\"}\n";
        let objects = split_body(body).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].text, "{\"GUID\": \"x\"}");
        assert_eq!(objects[0].object["GUID"], "x");
    }

    #[test]
    fn an_array_gives_one_object_each_with_its_own_bytes() {
        let body = br#"[ {"a":1} , {"b": 2} ]"#;
        let objects = split_body(body).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].text, r#"{"a":1}"#);
        assert_eq!(objects[1].text, r#"{"b": 2}"#);
    }

    #[test]
    fn what_is_not_an_object_or_array_of_objects_is_invalid() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "empty"),
            (b"   ", "empty"),
            (b"not json", "not valid JSON"),
            (b"{\"a\":", "not valid JSON"),
            (b"42", "neither an object"),
            (b"\"text\"", "neither an object"),
            (b"[]", "empty array"),
            (b"[{\"a\":1}, 2]", "item 1"),
            (b"\xff\xfe", "not UTF-8"),
        ];
        for (body, reason) in cases {
            let InvalidPayload(text) = split_body(body).unwrap_err();
            assert!(
                text.contains(reason),
                "{:?}: {text}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn an_array_over_the_cap_is_too_many_events_and_reading_stops_there() {
        let body = br#"[{"a":1},{"b":2},{"c":3}]"#;
        assert_eq!(split_body_at_most(body, 3).unwrap().len(), 3);
        assert_eq!(
            split_body_at_most(body, 2).unwrap_err(),
            SplitError::TooManyEvents { max: 2 }
        );
        // What follows the item over the cap is not even read.
        let broken_after_the_cap = br#"[{},{},{} this is not JSON"#;
        assert_eq!(
            split_body_at_most(broken_after_the_cap, 2).unwrap_err(),
            SplitError::TooManyEvents { max: 2 }
        );
        assert!(matches!(
            split_body_at_most(b"{}", 1).unwrap().as_slice(),
            [_]
        ));
    }

    #[test]
    fn trailing_garbage_is_invalid() {
        assert!(split_body(b"{\"a\":1} trailing").is_err());
        assert!(split_body(b"[{\"a\":1}] x").is_err());
    }
}
