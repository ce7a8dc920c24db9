//! The request body as Enate sent it: one JSON object, or an array of objects
//! (one event each). Each object keeps its exact bytes, because the event id is
//! derived from them (an Enate retry of the same delivery gets the same id).
//!
//! Nothing the sender sent is dropped here: a key given twice in one object (JSON
//! allows it) is kept twice in [`RawObject::entries`], and repeated keys inside
//! nested objects are listed, so normalization applies one rule to them all and
//! says so in a warning. Parsing keeps serde_json's nesting limit, which is what
//! keeps the stack safe; a body past it, or with a number no JSON reader can
//! hold (`1e400`), gets a reason that says so.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, value::RawValue};
use std::fmt;

/// How deeply objects and arrays may nest, counted from the event's own object
/// (the first level; in an array body, each item's object): serde_json's
/// recursion limit of 128, which bounds the parser's stack use, refuses the 128th.
/// An array body's items are read as raw text first, so the array itself does
/// not count.
pub const MAX_NESTING: usize = 127;

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
    /// Its keys and values in the order received; a key given twice is here twice.
    pub entries: Vec<(String, Value)>,
    /// Keys given more than once inside a nested object, each with the top-level
    /// key it is under (the nested object keeps the first non-null value).
    /// At most [`NESTED_DUPLICATES_LISTED`] of them; the rest are counted in
    /// `nested_duplicates_unlisted`.
    pub nested_duplicates: Vec<NestedDuplicate>,
    pub nested_duplicates_unlisted: usize,
}

/// Nested repeats listed per object. The rest are only counted: a 1 MiB body of
/// 100,000 repeated keys under one long key must not become 100,000 copies of it.
pub const NESTED_DUPLICATES_LISTED: usize = 16;

/// A key repeated inside the value of the top-level key `under`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedDuplicate {
    pub under: String,
    pub key: String,
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
        Some(b'{') => Ok(vec![parse_object(trimmed)?]),
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
                    Ok(parse_object(text)?)
                })
                .collect()
        }
        None => Err(InvalidPayload("the body is empty".into()).into()),
        Some(_) => match serde_json::from_str::<Value>(trimmed) {
            Ok(_) => Err(InvalidPayload(
                "the body is JSON but neither an object nor an array of objects".into(),
            )
            .into()),
            Err(e) => Err(explain(e, None).into()),
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
        Err(e) => Err(explain(e, None).into()),
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

/// Parses one object, keeping every key as given.
fn parse_object(text: &str) -> Result<RawObject<'_>, InvalidPayload> {
    let mut parsing = Parsing::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let entries = deserializer
        .deserialize_map(ObjectVisitor {
            parsing: &mut parsing,
        })
        .and_then(|entries| deserializer.end().map(|()| entries));
    match entries {
        Ok(entries) => Ok(RawObject {
            text,
            entries,
            nested_duplicates: parsing.nested_duplicates,
            nested_duplicates_unlisted: parsing.nested_duplicates_unlisted,
        }),
        Err(e) => Err(explain(e, parsing.current_key.as_deref())),
    }
}

/// The reason for a body serde_json could not read: the nesting limit and numbers
/// out of range are told apart from syntax errors (serde_json reports all three as
/// syntax, and says which only in its message).
fn explain(error: serde_json::Error, under_key: Option<&str>) -> InvalidPayload {
    let message = error.to_string();
    if message.starts_with("recursion limit exceeded") {
        return InvalidPayload(format!(
            "the body is nested deeper than {MAX_NESTING} levels"
        ));
    }
    if message.starts_with("number out of range") {
        return InvalidPayload(match under_key {
            Some(key) => match crate::enate_fields::data_name(key) {
                Some(name) => format!("{name}: a number out of range is not a valid {name}"),
                None => format!(
                    "extra: the value of {} has a number out of range",
                    quoted(key)
                ),
            },
            None => "the body has a number out of range".into(),
        });
    }
    InvalidPayload(format!(
        "the body is not valid JSON ({})",
        error.classify_name()
    ))
}

/// A key as it may appear in a warning or reason: quoted, escaped, and cut short
/// (a key can be as long as the body).
pub fn quoted(key: &str) -> String {
    const SHOWN_BYTES: usize = 64;
    let mut shown = String::with_capacity(SHOWN_BYTES);
    for c in key.chars() {
        let escaped = c.escape_debug().to_string();
        if shown.len() + escaped.len() > SHOWN_BYTES {
            return format!("\"{shown}…\"");
        }
        shown.push_str(&escaped);
    }
    format!("\"{shown}\"")
}

/// What the visitors record while parsing one object.
#[derive(Default)]
struct Parsing {
    /// The top-level key whose value is being parsed: names the field when it fails.
    current_key: Option<String>,
    nested_duplicates: Vec<NestedDuplicate>,
    nested_duplicates_unlisted: usize,
}

/// The top-level object, as a list of entries (a repeated key kept each time).
struct ObjectVisitor<'p> {
    parsing: &'p mut Parsing,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            // Held in `parsing` while the value is read, so a failure can name it.
            self.parsing.current_key = Some(key);
            let mut nested = Repeats {
                keys: Vec::new(),
                room: NESTED_DUPLICATES_LISTED.saturating_sub(self.parsing.nested_duplicates.len()),
                unlisted: 0,
            };
            let value = map.next_value_seed(ValueSeed {
                duplicates: &mut nested,
            })?;
            let key = self.parsing.current_key.take().unwrap_or_default();
            self.parsing.nested_duplicates_unlisted += nested.unlisted;
            self.parsing
                .nested_duplicates
                .extend(nested.keys.into_iter().map(|nested_key| NestedDuplicate {
                    under: key.clone(),
                    key: nested_key,
                }));
            entries.push((key, value));
        }
        Ok(entries)
    }
}

/// Any JSON value, as serde_json's own `Value` reads it, except that a key
/// repeated in an object keeps its first non-null value and is recorded.
struct ValueSeed<'d> {
    duplicates: &'d mut Repeats,
}

/// Keys repeated inside one top-level value: the first `room` kept, the rest counted.
struct Repeats {
    keys: Vec<String>,
    room: usize,
    unlisted: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed {
            duplicates: &mut *self.duplicates,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed {
                duplicates: &mut *self.duplicates,
            })?;
            match object.get_mut(&key) {
                Some(kept) => {
                    if kept.is_null() {
                        *kept = value;
                    }
                    if self.duplicates.keys.len() < self.duplicates.room {
                        self.duplicates.keys.push(key);
                    } else {
                        self.duplicates.unlisted += 1;
                    }
                }
                None => {
                    object.insert(key, value);
                }
            }
        }
        Ok(Value::Object(object))
    }
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
        assert_eq!(objects[0].entries, [("GUID".to_string(), "x".into())]);
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

    #[test]
    fn a_repeated_key_is_kept_each_time() {
        let objects = split_body(br#"{"a": 1, "B": {"x": null, "x": 2, "x": 3}, "a": 4}"#).unwrap();
        let object = &objects[0];
        assert_eq!(
            object.entries,
            [
                ("a".to_string(), 1.into()),
                ("B".to_string(), serde_json::json!({"x": 2})),
                ("a".to_string(), 4.into()),
            ]
        );
        let repeat = |key: &str| NestedDuplicate {
            under: "B".into(),
            key: key.into(),
        };
        assert_eq!(object.nested_duplicates, [repeat("x"), repeat("x")]);
    }

    fn nested(levels: usize) -> String {
        // `levels` objects, one inside the other.
        "{\"a\":".repeat(levels - 1) + "{}" + &"}".repeat(levels - 1)
    }

    #[test]
    fn nesting_up_to_the_limit_is_read_and_past_it_is_said() {
        assert!(split_body(nested(MAX_NESTING).as_bytes()).is_ok());
        for body in [
            nested(MAX_NESTING + 1),
            nested(200),
            format!("[{}]", nested(200)),
            "{\"a\":".to_string() + &"[".repeat(200) + &"]".repeat(200) + "}",
        ] {
            let InvalidPayload(reason) = split_body(body.as_bytes()).unwrap_err();
            assert_eq!(
                reason,
                "the body is nested deeper than 127 levels",
                "{}",
                &body[..20]
            );
        }
    }

    #[test]
    fn a_number_no_reader_can_hold_is_out_of_range_and_names_its_field() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"Status": 1e400}"#,
                "status: a number out of range is not a valid status",
            ),
            (
                br#"[{"RAGStatus": -1e999}]"#,
                "rag_status: a number out of range is not a valid rag_status",
            ),
            (
                br#"{"Region": {"x": [1e400]}}"#,
                r#"extra: the value of "Region" has a number out of range"#,
            ),
            (b"1e400", "the body has a number out of range"),
            (b"[1e400]", "item 0 of the array is not a JSON object"),
        ];
        for (body, expected) in cases {
            let InvalidPayload(reason) = split_body(body).unwrap_err();
            assert_eq!(reason, expected, "{}", String::from_utf8_lossy(body));
            assert!(
                !reason.contains("400") && !reason.contains("999"),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_key_is_shown_quoted_escaped_and_cut_short() {
        assert_eq!(quoted("Region"), r#""Region""#);
        assert_eq!(quoted("a\"b\n"), r#""a\"b\n""#);
        let long = quoted(&"é".repeat(100));
        assert_eq!(long, format!("\"{}…\"", "é".repeat(32)));
    }

    #[test]
    fn nested_repeats_past_the_list_are_counted_not_copied() {
        let long_key = "k".repeat(1024);
        let repeats = vec![r#""x":0"#; 1000].join(",");
        let body = format!(r#"{{"{long_key}": {{{repeats}}}}}"#);
        let objects = split_body(body.as_bytes()).unwrap();
        let object = &objects[0];
        assert_eq!(object.nested_duplicates.len(), NESTED_DUPLICATES_LISTED);
        assert_eq!(
            object.nested_duplicates_unlisted,
            999 - NESTED_DUPLICATES_LISTED
        );
    }
}
