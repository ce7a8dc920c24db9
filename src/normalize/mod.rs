//! Turns one raw Enate object into the `data` of the event workers consume:
//! every documented field present (null when absent), enums as names and codes,
//! GUIDs and dates in one form, unknown keys kept under `extra`, and anything
//! the bridge had to guess about listed under `warnings`.

pub mod enums;
pub mod fields;

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

use crate::{
    enate_fields::Field,
    payload::{InvalidPayload, RawObject, quoted},
};
use enums::{EnumKind, EnumParse, EnumValue, parse_enum};
use fields::Invalid;

/// What normalization needs beyond the object itself.
#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    pub naive_time_zone: TimeZone,
    pub include_raw: bool,
}

/// The `data` of a normalized event. Field order here is the order in the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventData {
    pub guid: Option<String>,
    pub packet_guid: Option<String>,
    pub reference: Option<String>,
    pub title: Option<String>,
    pub name: Option<String>,
    pub status: Option<&'static str>,
    pub status_code: Option<i64>,
    pub process_type: Option<&'static str>,
    pub process_type_code: Option<i64>,
    pub process_type_name: Option<String>,
    pub rag_status: Option<&'static str>,
    pub rag_status_code: Option<i64>,
    pub due_date: Option<String>,
    pub resolved_on: Option<String>,
    pub customer_name: Option<String>,
    pub supplier_name: Option<String>,
    pub contract_name: Option<String>,
    pub service_name: Option<String>,
    pub service_line_name: Option<String>,
    pub started_by_method: Option<&'static str>,
    pub started_by_method_code: Option<i64>,
    pub communication_type: Option<&'static str>,
    pub communication_type_code: Option<i64>,
    pub sender: Option<String>,
    pub from: Option<String>,
    pub cc: Option<Vec<String>>,
    pub subject: Option<String>,
    pub attachment_count: Option<i64>,
    pub extra: Map<String, Value>,
    pub warnings: Vec<String>,
    /// The object exactly as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Box<RawValue>>,
}

/// Warnings about repeated keys, per object: past this, one line counts the rest,
/// so a body of repeated keys cannot multiply into a far larger event.
const MAX_REPEAT_WARNINGS: usize = 10;

/// Normalizes one object. Consumes it so unknown keys move into `extra` without a copy.
///
/// One rule for a key given more than once, whether repeated exactly or in another
/// casing, at the top or inside a nested object: the first non-null value is kept,
/// a warning names the key, and `raw` still holds every value as sent.
pub fn normalize(
    raw: RawObject<'_>,
    options: &NormalizeOptions,
) -> Result<EventData, InvalidPayload> {
    let mut data = EventData::default();
    let mut repeats = Vec::new();
    // Fields already met, and those met with a value: `Status` and `status` in one
    // object are the same field, and the first non-null one wins.
    let mut seen: Vec<Field> = Vec::new();
    let mut given: Vec<Field> = Vec::new();
    for (key, value) in raw.entries {
        let Some(field) = Field::from_key(&key) else {
            match data.extra.get_mut(&key) {
                Some(kept) => {
                    repeats.push(format!("extra: key {} given more than once", quoted(&key)));
                    if kept.is_null() {
                        *kept = value;
                    }
                }
                None => {
                    data.extra.insert(key, value);
                }
            }
            continue;
        };
        if seen.contains(&field) {
            repeats.push(format!(
                "{}: given more than once (key {})",
                field.data_name(),
                quoted(&key)
            ));
            if given.contains(&field) || value.is_null() {
                continue;
            }
        } else {
            seen.push(field);
        }
        apply(&mut data, field, &value, options)?;
        if !value.is_null() {
            given.push(field);
        }
    }
    repeats.extend(raw.nested_duplicates.iter().map(|repeat| {
        format!(
            "extra: key {} given more than once inside {}",
            quoted(&repeat.key),
            quoted(&repeat.under)
        )
    }));
    let unsaid = repeats.len().saturating_sub(MAX_REPEAT_WARNINGS) + raw.nested_duplicates_unlisted;
    data.warnings.extend(
        repeats
            .into_iter()
            .take(MAX_REPEAT_WARNINGS)
            .map(|repeat| format!("{repeat}, the first non-null value kept")),
    );
    if unsaid > 0 {
        data.warnings
            .push(format!("extra: {unsaid} more keys given more than once"));
    }
    if options.include_raw {
        // Embedded verbatim: no second serialization, and byte for byte what Enate sent.
        data.raw = Some(
            RawValue::from_string(raw.text.to_string())
                .expect("the object was parsed from this text"),
        );
    }
    Ok(data)
}

fn apply(
    data: &mut EventData,
    field: Field,
    value: &Value,
    options: &NormalizeOptions,
) -> Result<(), InvalidPayload> {
    let name = field.data_name();
    let invalid =
        |Invalid(what): Invalid| InvalidPayload(format!("{name}: {what} is not a valid {name}"));
    let warnings = &mut data.warnings;
    match field {
        Field::Guid => data.guid = fields::guid(value, warnings, name).map_err(invalid)?,
        Field::PacketGuid => {
            data.packet_guid = fields::guid(value, warnings, name).map_err(invalid)?
        }
        Field::Reference => data.reference = fields::text(value).map_err(invalid)?,
        Field::Title => data.title = fields::text(value).map_err(invalid)?,
        Field::Name => data.name = fields::text(value).map_err(invalid)?,
        Field::ProcessTypeName => data.process_type_name = fields::text(value).map_err(invalid)?,
        Field::CustomerName => data.customer_name = fields::text(value).map_err(invalid)?,
        Field::SupplierName => data.supplier_name = fields::text(value).map_err(invalid)?,
        Field::ContractName => data.contract_name = fields::text(value).map_err(invalid)?,
        Field::ServiceName => data.service_name = fields::text(value).map_err(invalid)?,
        Field::ServiceLineName => data.service_line_name = fields::text(value).map_err(invalid)?,
        Field::Sender => data.sender = fields::text(value).map_err(invalid)?,
        Field::From => data.from = fields::text(value).map_err(invalid)?,
        Field::Subject => data.subject = fields::text(value).map_err(invalid)?,
        Field::DueDate => {
            data.due_date =
                fields::date(value, &options.naive_time_zone, warnings, name).map_err(invalid)?
        }
        Field::ResolvedOn => {
            data.resolved_on =
                fields::date(value, &options.naive_time_zone, warnings, name).map_err(invalid)?
        }
        Field::Cc => data.cc = fields::cc_list(value).map_err(invalid)?,
        Field::AttachmentCount => {
            data.attachment_count = fields::count(value, warnings, name).map_err(invalid)?
        }
        Field::Status => {
            (data.status, data.status_code) = enum_field(EnumKind::Status, value, warnings, name)?
        }
        Field::ProcessType => {
            (data.process_type, data.process_type_code) =
                enum_field(EnumKind::ProcessType, value, warnings, name)?
        }
        Field::RagStatus => {
            (data.rag_status, data.rag_status_code) =
                enum_field(EnumKind::RagStatus, value, warnings, name)?
        }
        Field::StartedByMethod => {
            (data.started_by_method, data.started_by_method_code) =
                enum_field(EnumKind::StartedByMethod, value, warnings, name)?
        }
        Field::CommunicationType => {
            (data.communication_type, data.communication_type_code) =
                enum_field(EnumKind::CommunicationType, value, warnings, name)?
        }
    }
    Ok(())
}

fn enum_field(
    kind: EnumKind,
    value: &Value,
    warnings: &mut Vec<String>,
    name: &str,
) -> Result<(Option<&'static str>, Option<i64>), InvalidPayload> {
    match parse_enum(kind, value) {
        EnumParse::Absent => Ok((None, None)),
        EnumParse::Value(EnumValue { name: found, code }) => {
            if found == enums::UNKNOWN {
                warnings.push(match code {
                    Some(code) => {
                        format!("{name}: code {code} is not a known {name}, kept as unknown")
                    }
                    None => format!("{name}: not a known {name} name, kept as unknown"),
                });
            }
            Ok((Some(found), code))
        }
        EnumParse::Invalid => Err(InvalidPayload(format!(
            "{name}: {} is not a valid {name}",
            describe_type(value)
        ))),
    }
}

fn describe_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) => enums::describe_number(number),
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> NormalizeOptions {
        NormalizeOptions {
            naive_time_zone: TimeZone::UTC,
            include_raw: true,
        }
    }

    /// A raw object as `payload::split_body` gives it (its text leaked: tests only).
    fn object(value: Value) -> RawObject<'static> {
        object_from(Box::leak(value.to_string().into_boxed_str()))
    }

    fn object_from(text: &'static str) -> RawObject<'static> {
        let mut objects = crate::payload::split_body(text.as_bytes()).expect("an object");
        assert_eq!(objects.len(), 1);
        objects.pop().unwrap()
    }

    #[test]
    fn a_packet_from_enate_documentation() {
        let raw = json!({
            "GUID": "A1B2C3D4-0000-4000-8000-000000000001",
            "Reference": "202234-C",
            "Title": "  Onboard Jane ",
            "Status": 2,
            "DueDate": "2024-06-01T17:00:00",
            "RAGStatus": -1,
            "ProcessType": 1,
            "ProcessTypeName": "Start Employee",
            "CustomerName": "Acme",
            "SupplierName": "",
            "ContractName": "Payroll",
            "ServiceName": "HR",
            "ServiceLineName": "Onboarding",
            "StartedByMethod": 4,
            "ResolvedOn": null,
            "TenantCode": "X1"
        });
        let data = normalize(object(raw.clone()), &options()).unwrap();
        assert_eq!(
            data.guid.as_deref(),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
        assert_eq!(data.reference.as_deref(), Some("202234-C"));
        assert_eq!(data.title.as_deref(), Some("Onboard Jane"));
        assert_eq!(
            (data.status, data.status_code),
            (Some("in_progress"), Some(2))
        );
        assert_eq!(
            (data.process_type, data.process_type_code),
            (Some("case"), Some(1))
        );
        assert_eq!(data.process_type_name.as_deref(), Some("Start Employee"));
        assert_eq!(
            (data.rag_status, data.rag_status_code),
            (Some("overdue"), Some(-1))
        );
        assert_eq!(
            (data.started_by_method, data.started_by_method_code),
            (Some("by_email"), Some(4))
        );
        assert_eq!(data.due_date.as_deref(), Some("2024-06-01T17:00:00Z"));
        assert_eq!(data.supplier_name, None);
        assert_eq!(data.resolved_on, None);
        assert_eq!(Value::Object(data.extra), json!({"TenantCode": "X1"}));
        assert!(data.warnings.is_empty(), "{:?}", data.warnings);
        let kept: Value = serde_json::from_str(data.raw.unwrap().get()).unwrap();
        assert_eq!(kept, raw);
    }

    #[test]
    fn every_field_is_always_present_in_json() {
        let data = normalize(object(json!({})), &options()).unwrap();
        let json = serde_json::to_value(&data).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "guid",
                "packet_guid",
                "reference",
                "title",
                "name",
                "status",
                "status_code",
                "process_type",
                "process_type_code",
                "process_type_name",
                "rag_status",
                "rag_status_code",
                "due_date",
                "resolved_on",
                "customer_name",
                "supplier_name",
                "contract_name",
                "service_name",
                "service_line_name",
                "started_by_method",
                "started_by_method_code",
                "communication_type",
                "communication_type_code",
                "sender",
                "from",
                "cc",
                "subject",
                "attachment_count",
                "extra",
                "warnings",
                "raw"
            ]
        );
    }

    #[test]
    fn raw_is_left_out_when_not_wanted() {
        let options = NormalizeOptions {
            include_raw: false,
            ..options()
        };
        let json = serde_json::to_value(normalize(object(json!({})), &options).unwrap()).unwrap();
        assert!(json.get("raw").is_none());
    }

    #[test]
    fn keys_match_in_any_case() {
        for key in [
            "StartedbyMethod",
            "StartedByMethod",
            "startedbymethod",
            "STARTEDBYMETHOD",
            "started_by_method",
        ] {
            let data = normalize(object(json!({ key: 3 })), &options()).unwrap();
            assert_eq!(data.started_by_method, Some("by_robot_user"), "{key}");
            assert!(data.extra.is_empty(), "{key}");
        }
    }

    #[test]
    fn a_communication() {
        let data = normalize(
            object(json!({
                "GUID": "{11111111-2222-3333-4444-555555555555}",
                "PacketGUID": "AAAAAAAABBBBCCCCDDDDEEEEEEEEEEEE",
                "Sender": "jane@acme.com",
                "From": "jane@acme.com",
                "CC": "a@acme.com; b@acme.com",
                "Subject": "Re: payroll",
                "AttachmentCount": "2",
                "CommunicationType": "EmailIncoming"
            })),
            &options(),
        )
        .unwrap();
        assert_eq!(
            data.guid.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(
            data.packet_guid.as_deref(),
            Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        );
        assert_eq!(
            data.cc,
            Some(vec!["a@acme.com".into(), "b@acme.com".into()])
        );
        assert_eq!(data.attachment_count, Some(2));
        assert_eq!(
            (data.communication_type, data.communication_type_code),
            (Some("email_incoming"), Some(2))
        );
        assert_eq!(data.from.as_deref(), Some("jane@acme.com"));
    }

    #[test]
    fn unknown_codes_are_kept_with_a_warning() {
        let data = normalize(
            object(json!({"Status": 9, "ProcessType": "Project"})),
            &options(),
        )
        .unwrap();
        assert_eq!((data.status, data.status_code), (Some("unknown"), Some(9)));
        assert_eq!(
            (data.process_type, data.process_type_code),
            (Some("unknown"), None)
        );
        assert_eq!(data.warnings.len(), 2, "{:?}", data.warnings);
    }

    #[test]
    fn impossible_types_are_invalid_and_name_the_field() {
        let cases = [
            (json!({"Status": {"code": 2}}), "status"),
            (json!({"ProcessType": [1]}), "process_type"),
            (json!({"GUID": 12}), "guid"),
            (json!({"Title": {"a": 1}}), "title"),
            (json!({"DueDate": []}), "due_date"),
            (json!({"CC": {"to": "x"}}), "cc"),
            (json!({"AttachmentCount": true}), "attachment_count"),
            (json!({"RAGStatus": 0.5}), "rag_status"),
        ];
        for (input, field) in cases {
            let InvalidPayload(reason) = normalize(object(input.clone()), &options()).unwrap_err();
            assert!(
                reason.starts_with(&format!("{field}:")),
                "{input}: {reason}"
            );
        }
    }

    #[test]
    fn the_first_of_duplicate_keys_wins() {
        let data = normalize(object(json!({"Status": 4, "status": 1})), &options()).unwrap();
        assert_eq!(data.status, Some("resolved"));
        assert_eq!(
            data.warnings,
            [r#"status: given more than once (key "status"), the first non-null value kept"#]
        );
        let data = normalize(object(json!({"Status": null, "status": 1})), &options()).unwrap();
        assert_eq!(data.status, Some("to_do"));
    }

    /// Repeated exactly, in another casing, or inside a nested object: one rule,
    /// one kind of warning, and `raw` keeps every value.
    #[test]
    fn every_repeated_key_follows_one_rule() {
        let cases: [(&'static str, Value, &[&str]); 5] = [
            (
                r#"{"Status": 4, "Status": 1}"#,
                json!({}),
                &[r#"status: given more than once (key "Status"), the first non-null value kept"#],
            ),
            (
                r#"{"Status": null, "Status": 1}"#,
                json!({}),
                &[r#"status: given more than once (key "Status"), the first non-null value kept"#],
            ),
            (
                r#"{"Region": "EMEA", "Region": "APAC"}"#,
                json!({"Region": "EMEA"}),
                &[r#"extra: key "Region" given more than once, the first non-null value kept"#],
            ),
            (
                r#"{"Region": null, "Region": "APAC"}"#,
                json!({"Region": "APAC"}),
                &[r#"extra: key "Region" given more than once, the first non-null value kept"#],
            ),
            (
                r#"{"Meta": {"k": 1, "k": 2}}"#,
                json!({"Meta": {"k": 1}}),
                &[
                    r#"extra: key "k" given more than once inside "Meta", the first non-null value kept"#,
                ],
            ),
        ];
        for (text, extra, warnings) in cases {
            let data = normalize(object_from(text), &options()).unwrap();
            assert_eq!(Value::Object(data.extra), extra, "{text}");
            assert_eq!(data.warnings, warnings, "{text}");
            assert_eq!(data.raw.unwrap().get(), text);
        }
        let data = normalize(object_from(r#"{"Status": 4, "Status": 1}"#), &options()).unwrap();
        assert_eq!(data.status, Some("resolved"));
    }

    #[test]
    fn warnings_about_repeated_keys_are_bounded() {
        let text = format!(
            "{{{}}}",
            (0..50).map(|_| r#""k": 1"#).collect::<Vec<_>>().join(",")
        );
        let data = normalize(object_from(Box::leak(text.into_boxed_str())), &options()).unwrap();
        assert_eq!(data.warnings.len(), MAX_REPEAT_WARNINGS + 1);
        assert_eq!(
            data.warnings.last().unwrap(),
            "extra: 39 more keys given more than once"
        );
    }

    #[test]
    fn out_of_range_numbers_say_so_and_name_the_field() {
        for (text, reason) in [
            (
                r#"{"Status": 123456789012345678901234567890}"#,
                "status: a number out of range is not a valid status",
            ),
            (
                r#"{"ProcessType": 18446744073709551616}"#,
                "process_type: a number out of range is not a valid process_type",
            ),
            (
                r#"{"AttachmentCount": -1e300}"#,
                "attachment_count: a number out of range is not a valid attachment_count",
            ),
        ] {
            let InvalidPayload(found) = normalize(object_from(text), &options()).unwrap_err();
            assert_eq!(found, reason, "{text}");
        }
    }
}
