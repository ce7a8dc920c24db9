//! Coercions for single fields: text, GUIDs, dates, CC lists, counts.
//!
//! Each returns `Ok(None)` for absent (null, missing and empty are the same in
//! Enate's payloads), `Ok(Some(..))` for a value, and `Err(Invalid)` for a type the
//! field can never have. A value of the right type that cannot be understood
//! (a malformed date) is `Ok(None)` plus a warning: the original stays in `raw`.

use jiff::{Timestamp, civil, tz::TimeZone};
use serde_json::Value;
use uuid::Uuid;

use super::enums::{describe_number, safe, whole_number};

/// The value's JSON type can never be this field's.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

pub type FieldResult<T> = Result<Option<T>, Invalid>;

/// Trimmed text; numbers and booleans become their text, as Enate's .NET side may send them.
pub fn text(value: &Value) -> FieldResult<String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(non_empty(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) => Err(Invalid("a list")),
        Value::Object(_) => Err(Invalid("an object")),
    }
}

fn non_empty(s: &str) -> Option<String> {
    let trimmed = s.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// A GUID, lowercase and hyphenated. Accepts uppercase, braces, `urn:uuid:` and the
/// 32-digit form. Text that is not a GUID is kept as given, with a warning.
pub fn guid(value: &Value, warnings: &mut Vec<String>, field: &str) -> FieldResult<String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(non_empty(s).map(|text| match Uuid::try_parse(&text) {
            Ok(uuid) => uuid.hyphenated().to_string(),
            Err(_) => {
                warnings.push(format!("{field}: not a GUID, kept as given"));
                text
            }
        })),
        Value::Number(_) => Err(Invalid("a number")),
        Value::Bool(_) => Err(Invalid("a boolean")),
        Value::Array(_) => Err(Invalid("a list")),
        Value::Object(_) => Err(Invalid("an object")),
    }
}

/// A point in time, as RFC 3339 in UTC.
pub fn date(
    value: &Value,
    naive_zone: &TimeZone,
    warnings: &mut Vec<String>,
    field: &str,
) -> FieldResult<String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match parse_timestamp(s, naive_zone) {
                Some(ts) => Ok(Some(format_utc(ts))),
                None => {
                    warnings.push(format!("{field}: unparseable date, set to null"));
                    Ok(None)
                }
            }
        }
        Value::Number(_) => {
            warnings.push(format!("{field}: a number is not a date, set to null"));
            Ok(None)
        }
        Value::Bool(_) => Err(Invalid("a boolean")),
        Value::Array(_) => Err(Invalid("a list")),
        Value::Object(_) => Err(Invalid("an object")),
    }
}

/// RFC 3339 in UTC with `Z`, keeping the precision given (no trailing zeros).
pub fn format_utc(ts: Timestamp) -> String {
    ts.to_string()
}

/// 0000-01-01T00:00:00Z, in seconds: RFC 3339 has four-digit years, so an earlier
/// instant has no RFC 3339 form (jiff would print `-000249-...`). The tests'
/// schema check found one, from `/Date(-70000000000000)/`.
const EARLIEST_RFC3339_SECOND: i64 = -62_167_219_200;

/// ISO 8601 with an offset, without one (read in `naive_zone`), a plain date
/// (midnight in `naive_zone`), or .NET's `/Date(1700000000000)/` form; `None`
/// for anything else, and for an instant before the year 0.
pub fn parse_timestamp(text: &str, naive_zone: &TimeZone) -> Option<Timestamp> {
    let parsed = if let Some(ts) = parse_dotnet_date(text) {
        Some(ts)
    } else if let Ok(ts) = text.parse::<Timestamp>() {
        Some(ts)
    } else if let Ok(datetime) = text.parse::<civil::DateTime>() {
        naive_zone.to_timestamp(datetime).ok()
    } else {
        None
    };
    parsed.filter(|ts| ts.as_second() >= EARLIEST_RFC3339_SECOND)
}

/// `/Date(ms)/` or `/Date(ms+hhmm)/`: milliseconds since the epoch in UTC; the
/// offset only says where the writer was, so it does not move the instant.
fn parse_dotnet_date(text: &str) -> Option<Timestamp> {
    let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let millis_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map_or(inner.len(), |(i, _)| i);
    let (millis, offset) = inner.split_at(millis_end);
    let offset_ok =
        offset.is_empty() || (offset.len() == 5 && offset[1..].bytes().all(|b| b.is_ascii_digit()));
    if !offset_ok {
        return None;
    }
    Timestamp::from_millisecond(millis.parse().ok()?).ok()
}

/// CC addresses: a string split on `;` and `,`, or a list of strings taken as is.
pub fn cc_list(value: &Value) -> FieldResult<Vec<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let addresses: Vec<String> = s
                .split([';', ','])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            Ok((!addresses.is_empty()).then_some(addresses))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Invalid("a list with an entry that is not text")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Value::Number(_) => Err(Invalid("a number")),
        Value::Bool(_) => Err(Invalid("a boolean")),
        Value::Object(_) => Err(Invalid("an object")),
    }
}

/// A whole number; a numeric string is accepted.
pub fn count(value: &Value, warnings: &mut Vec<String>, field: &str) -> FieldResult<i64> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match whole_number(n) {
            Some(count) => Ok(Some(count)),
            None => Err(Invalid(describe_number(n))),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<i64>().ok().and_then(safe) {
                Some(count) => Ok(Some(count)),
                None => {
                    warnings.push(format!("{field}: not a whole number, set to null"));
                    Ok(None)
                }
            }
        }
        Value::Bool(_) => Err(Invalid("a boolean")),
        Value::Array(_) => Err(Invalid("a list")),
        Value::Object(_) => Err(Invalid("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_trimmed_and_empty_is_null() {
        let cases = [
            (
                json!("  Start Employee "),
                Ok(Some("Start Employee".to_string())),
            ),
            (json!(""), Ok(None)),
            (json!("   "), Ok(None)),
            (json!(null), Ok(None)),
            (json!(42), Ok(Some("42".to_string()))),
            (json!(true), Ok(Some("true".to_string()))),
            (json!({"a": 1}), Err(Invalid("an object"))),
            (json!(["a"]), Err(Invalid("a list"))),
        ];
        for (input, expected) in cases {
            assert_eq!(text(&input), expected, "{input}");
        }
    }

    #[test]
    fn guid_forms() {
        let canonical = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        for form in [
            "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
            "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
            "3f2504e04f8911d39a0c0305e82c3301",
            "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            " 3f2504e0-4f89-11d3-9a0c-0305e82c3301 ",
        ] {
            let mut warnings = Vec::new();
            assert_eq!(
                guid(&json!(form), &mut warnings, "guid"),
                Ok(Some(canonical.to_string())),
                "{form}"
            );
            assert!(warnings.is_empty(), "{form}: {warnings:?}");
        }
    }

    #[test]
    fn a_non_guid_is_kept_with_a_warning() {
        let mut warnings = Vec::new();
        assert_eq!(
            guid(&json!("not-a-guid"), &mut warnings, "packet_guid"),
            Ok(Some("not-a-guid".to_string()))
        );
        assert_eq!(warnings, ["packet_guid: not a GUID, kept as given"]);
        assert_eq!(guid(&json!(""), &mut warnings, "guid"), Ok(None));
        assert_eq!(
            guid(&json!(12), &mut warnings, "guid"),
            Err(Invalid("a number"))
        );
        assert_eq!(
            guid(&json!({}), &mut warnings, "guid"),
            Err(Invalid("an object"))
        );
    }

    #[test]
    fn date_forms() {
        let utc = TimeZone::UTC;
        let london = TimeZone::get("Europe/London").unwrap();
        let cases: [(&str, &TimeZone, &str); 13] = [
            ("2024-05-01T10:00:00Z", &utc, "2024-05-01T10:00:00Z"),
            ("2024-05-01T10:00:00+02:00", &utc, "2024-05-01T08:00:00Z"),
            ("2024-05-01T10:00:00-0500", &utc, "2024-05-01T15:00:00Z"),
            (
                "2024-05-01T10:00:00.1234567Z",
                &utc,
                "2024-05-01T10:00:00.1234567Z",
            ),
            (
                "2024-05-01T10:00:00.123+01:00",
                &utc,
                "2024-05-01T09:00:00.123Z",
            ),
            ("2024-05-01T10:00:00", &utc, "2024-05-01T10:00:00Z"),
            ("2024-05-01T10:00:00.5", &utc, "2024-05-01T10:00:00.5Z"),
            ("2024-05-01T10:00:00", &london, "2024-05-01T09:00:00Z"),
            ("2024-01-15T10:00:00", &london, "2024-01-15T10:00:00Z"),
            ("2024-05-01 10:00:00", &utc, "2024-05-01T10:00:00Z"),
            ("/Date(1700000000000)/", &london, "2023-11-14T22:13:20Z"),
            ("/Date(1700000000000+0100)/", &utc, "2023-11-14T22:13:20Z"),
            ("0000-01-01T00:00:00Z", &utc, "0000-01-01T00:00:00Z"),
        ];
        for (input, zone, expected) in cases {
            let mut warnings = Vec::new();
            assert_eq!(
                date(&json!(input), zone, &mut warnings, "due_date"),
                Ok(Some(expected.to_string())),
                "{input}"
            );
            assert!(warnings.is_empty(), "{input}: {warnings:?}");
        }
        let mut warnings = Vec::new();
        assert_eq!(
            date(&json!("2024-05-01"), &london, &mut warnings, "due_date"),
            Ok(Some("2024-04-30T23:00:00Z".to_string())),
            "a plain date is midnight in the naive zone"
        );
    }

    #[test]
    fn unparseable_dates_are_null_with_a_warning() {
        for input in [
            json!("next tuesday"),
            json!("2024-13-45T00:00:00Z"),
            json!("/Date(abc)/"),
            json!("/Date(-70000000000000)/"),
            json!("-000001-12-31T23:59:59Z"),
            json!(1700000000),
        ] {
            let mut warnings = Vec::new();
            assert_eq!(
                date(&input, &TimeZone::UTC, &mut warnings, "due_date"),
                Ok(None),
                "{input}"
            );
            assert_eq!(warnings.len(), 1, "{input}");
            assert!(
                warnings[0].starts_with("due_date:"),
                "{input}: {warnings:?}"
            );
        }
        let mut warnings = Vec::new();
        assert_eq!(
            date(&json!(""), &TimeZone::UTC, &mut warnings, "d"),
            Ok(None)
        );
        assert_eq!(
            date(&json!(null), &TimeZone::UTC, &mut warnings, "d"),
            Ok(None)
        );
        assert!(warnings.is_empty());
        assert_eq!(
            date(&json!({}), &TimeZone::UTC, &mut warnings, "d"),
            Err(Invalid("an object"))
        );
    }

    #[test]
    fn cc_forms() {
        let list = |items: &[&str]| {
            Ok(Some(
                items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ))
        };
        let cases = [
            (json!("a@x.com; b@x.com"), list(&["a@x.com", "b@x.com"])),
            (
                json!("a@x.com,b@x.com ,; c@x.com;"),
                list(&["a@x.com", "b@x.com", "c@x.com"]),
            ),
            (json!("a@x.com"), list(&["a@x.com"])),
            (json!(["a@x.com", "b@x.com"]), list(&["a@x.com", "b@x.com"])),
            (json!([]), list(&[])),
            (json!(" ; "), Ok(None)),
            (json!(""), Ok(None)),
            (json!(null), Ok(None)),
            (json!(5), Err(Invalid("a number"))),
            (json!({"a": 1}), Err(Invalid("an object"))),
            (
                json!(["a", 1]),
                Err(Invalid("a list with an entry that is not text")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(cc_list(&input), expected, "{input}");
        }
    }

    #[test]
    fn count_forms() {
        let mut warnings = Vec::new();
        assert_eq!(count(&json!(3), &mut warnings, "n"), Ok(Some(3)));
        assert_eq!(count(&json!("3"), &mut warnings, "n"), Ok(Some(3)));
        assert_eq!(count(&json!(" 12 "), &mut warnings, "n"), Ok(Some(12)));
        assert_eq!(count(&json!(2.0), &mut warnings, "n"), Ok(Some(2)));
        assert_eq!(count(&json!(""), &mut warnings, "n"), Ok(None));
        assert_eq!(count(&json!(null), &mut warnings, "n"), Ok(None));
        assert!(warnings.is_empty());
        assert_eq!(count(&json!("three"), &mut warnings, "n"), Ok(None));
        assert_eq!(
            count(&json!("9007199254740992"), &mut warnings, "n"),
            Ok(None)
        );
        assert_eq!(warnings.len(), 2);
        assert_eq!(
            count(&json!(2.5), &mut warnings, "n"),
            Err(Invalid("a fraction"))
        );
        assert_eq!(
            count(&json!([1]), &mut warnings, "n"),
            Err(Invalid("a list"))
        );
        assert_eq!(
            count(&json!(1e20), &mut warnings, "n"),
            Err(Invalid("a number out of range"))
        );
        assert_eq!(
            count(&json!(true), &mut warnings, "n"),
            Err(Invalid("a boolean"))
        );
    }
}
