//! Enate's enumerations: codes, the snake_case names workers see, and the
//! lenient parsing Enate's payloads need (integers, numeric strings, or names
//! in any casing and separator). Enate adds values over releases, so a code
//! outside the table is kept as data (`unknown`), never an error. The tables
//! are also the only list of the routing words ([`Word`]).

use serde_json::Value;

use crate::webhook::fold_ascii;

/// One of Enate's enumerations, with its code-to-name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumKind {
    ProcessType,
    Status,
    RagStatus,
    CommunicationType,
    StartedByMethod,
}

impl EnumKind {
    pub const fn table(self) -> &'static [(i64, &'static str)] {
        match self {
            EnumKind::ProcessType => &[(1, "case"), (2, "ticket"), (3, "action")],
            EnumKind::Status => &[
                (0, "draft"),
                (1, "to_do"),
                (2, "in_progress"),
                (3, "waiting"),
                (4, "resolved"),
                (5, "closed"),
            ],
            EnumKind::RagStatus => &[
                (-2, "to_be_determined"),
                (-1, "overdue"),
                (0, "due_today"),
                (1, "due_in_future"),
            ],
            EnumKind::CommunicationType => &[
                (0, "email_outgoing"),
                (1, "phone_incoming"),
                (2, "email_incoming"),
                (3, "ess_comment"),
                (4, "audit_note"),
                (5, "phone_outgoing"),
                (6, "letter_incoming"),
                (7, "letter_outgoing"),
            ],
            EnumKind::StartedByMethod => &[
                (0, "workflow"),
                (1, "by_operational_user"),
                (2, "by_self_service_user"),
                (3, "by_robot_user"),
                (4, "by_email"),
                (5, "from_ticket"),
                (6, "by_operational_user_in_bulk"),
                (7, "by_robot_user_in_bulk"),
                (8, "by_schedule"),
            ],
        }
    }
}

/// A routing word of one enumeration, typed: a name of its table, `none` (the
/// field was absent) or `unknown` (a code or name outside the table). Metrics
/// index their series by its slot and headers and routing keys print it, so no
/// one looks a word up in a second list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    kind: EnumKind,
    /// The table's names by position, then `none`, then `unknown`.
    slot: usize,
}

impl Word {
    /// How many words `kind` has: its table's names, `none` and `unknown`.
    pub const fn count(kind: EnumKind) -> usize {
        kind.table().len() + 2
    }

    pub const fn none(kind: EnumKind) -> Self {
        Self {
            kind,
            slot: kind.table().len(),
        }
    }

    pub const fn unknown(kind: EnumKind) -> Self {
        Self {
            kind,
            slot: kind.table().len() + 1,
        }
    }

    /// The word of a normalized field (a name [`parse_enum`] gave, or absent).
    pub fn of(kind: EnumKind, name: Option<&str>) -> Self {
        name.map_or(Self::none(kind), |name| Self::parse(kind, name))
    }

    /// The word `text` spells; `unknown` if it spells none. For words kept as
    /// text, e.g. in a spool record's headers.
    pub fn parse(kind: EnumKind, text: &str) -> Self {
        match kind.table().iter().position(|(_, name)| *name == text) {
            Some(slot) => Self { kind, slot },
            None if text == NONE => Self::none(kind),
            None => Self::unknown(kind),
        }
    }

    pub fn kind(self) -> EnumKind {
        self.kind
    }

    /// Its position among the [`Word::count`] words of its kind.
    pub fn slot(self) -> usize {
        self.slot
    }

    pub fn as_str(self) -> &'static str {
        match self.kind.table().get(self.slot) {
            Some((_, name)) => name,
            None if self.slot == self.kind.table().len() => NONE,
            None => UNKNOWN,
        }
    }
}

/// A parsed enumeration value: the name workers route on and the code Enate sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumValue {
    /// The snake_case name, or `unknown` for a code or name outside the table.
    pub name: &'static str,
    /// The integer code; `None` only when Enate sent a name the table does not know.
    pub code: Option<i64>,
}

pub const UNKNOWN: &str = "unknown";
/// The routing word for an absent field.
pub const NONE: &str = "none";

/// What became of an enumeration field.
#[derive(Debug, PartialEq, Eq)]
pub enum EnumParse {
    Absent,
    Value(EnumValue),
    /// The value is a type no enumeration can have (an object, a list, a boolean, a
    /// fraction, a number out of range).
    Invalid,
}

pub fn parse_enum(kind: EnumKind, value: &Value) -> EnumParse {
    match value {
        Value::Null => EnumParse::Absent,
        Value::Number(number) => match whole_number(number) {
            Some(code) => EnumParse::Value(from_code(kind, code)),
            None => EnumParse::Invalid,
        },
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return EnumParse::Absent;
            }
            if let Ok(code) = text.parse::<i64>() {
                // Out of range, it is no code the event can carry: like an unknown name.
                return EnumParse::Value(match safe(code) {
                    Some(code) => from_code(kind, code),
                    None => EnumValue {
                        name: UNKNOWN,
                        code: None,
                    },
                });
            }
            let (mut given, mut candidate) = ([0u8; 48], [0u8; 48]);
            let folded = fold_ascii(text, &mut given);
            let known = kind
                .table()
                .iter()
                .find(|(_, name)| folded.is_some() && fold_ascii(name, &mut candidate) == folded);
            EnumParse::Value(match known {
                Some(&(code, name)) => EnumValue {
                    name,
                    code: Some(code),
                },
                None => EnumValue {
                    name: UNKNOWN,
                    code: None,
                },
            })
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => EnumParse::Invalid,
    }
}

fn from_code(kind: EnumKind, code: i64) -> EnumValue {
    let name = kind
        .table()
        .iter()
        .find(|(known, _)| *known == code)
        .map_or(UNKNOWN, |&(_, name)| name);
    EnumValue {
        name,
        code: Some(code),
    }
}

/// The largest whole number that every JSON reader reads exactly: 2^53 - 1,
/// JavaScript's `Number.MAX_SAFE_INTEGER`. Codes and counts outside ±this are
/// refused, so a Node.js or .NET worker never reads a rounded code; the published
/// schemas declare this range (the API tester found 2^63 and 10^27 codes
/// that were refused with a misleading reason, or accepted by one path and not
/// the other).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A code or count: a whole number within ±[`MAX_SAFE_INTEGER`], written as an
/// integer or as a float (`2.0`, `1e3`).
pub(crate) fn whole_number(number: &serde_json::Number) -> Option<i64> {
    let whole = match number.as_i64() {
        Some(whole) => whole,
        None => {
            let value = number.as_f64()?;
            // Within the range every whole f64 converts exactly.
            if value.fract() != 0.0 || value.abs() > MAX_SAFE_INTEGER as f64 {
                return None;
            }
            value as i64
        }
    };
    safe(whole)
}

/// The number, if within ±[`MAX_SAFE_INTEGER`].
pub(crate) fn safe(whole: i64) -> Option<i64> {
    (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER)
        .contains(&whole)
        .then_some(whole)
}

/// What a number that is not a code or count is, for a reason.
pub(crate) fn describe_number(number: &serde_json::Number) -> &'static str {
    match number.as_f64() {
        Some(value) if value.fract() != 0.0 => "a fraction",
        _ => "a number out of range",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [EnumKind; 5] = [
        EnumKind::ProcessType,
        EnumKind::Status,
        EnumKind::RagStatus,
        EnumKind::CommunicationType,
        EnumKind::StartedByMethod,
    ];

    fn value(name: &'static str, code: i64) -> EnumParse {
        EnumParse::Value(EnumValue {
            name,
            code: Some(code),
        })
    }

    #[test]
    fn every_code_and_name_in_every_form() {
        for kind in ALL {
            for &(code, name) in kind.table() {
                let pascal: String = name
                    .split('_')
                    .map(|w| w[..1].to_uppercase() + &w[1..])
                    .collect();
                let spaced = name.replace('_', " ");
                let forms = [
                    json!(code),
                    json!(code as f64),
                    json!(code.to_string()),
                    json!(format!(" {code} ")),
                    json!(name),
                    json!(pascal),
                    json!(pascal.to_uppercase()),
                    json!(spaced),
                    json!(name.to_uppercase()),
                ];
                for form in forms {
                    assert_eq!(
                        parse_enum(kind, &form),
                        value(name, code),
                        "{kind:?} {form}"
                    );
                }
            }
        }
    }

    #[test]
    fn enate_display_names() {
        assert_eq!(
            parse_enum(EnumKind::Status, &json!("To Do")),
            value("to_do", 1)
        );
        assert_eq!(
            parse_enum(EnumKind::Status, &json!("In_Progress")),
            value("in_progress", 2)
        );
        assert_eq!(
            parse_enum(EnumKind::Status, &json!("InProgress")),
            value("in_progress", 2)
        );
        assert_eq!(
            parse_enum(EnumKind::CommunicationType, &json!("ESSComment")),
            value("ess_comment", 3)
        );
        assert_eq!(
            parse_enum(EnumKind::RagStatus, &json!("ToBeDetermined")),
            value("to_be_determined", -2)
        );
    }

    #[test]
    fn unknown_codes_are_kept() {
        for (kind, code) in [
            (EnumKind::ProcessType, 4),
            (EnumKind::ProcessType, 0),
            (EnumKind::Status, 6),
            (EnumKind::Status, -1),
            (EnumKind::RagStatus, 2),
            (EnumKind::CommunicationType, 8),
            (EnumKind::StartedByMethod, 99),
        ] {
            assert_eq!(
                parse_enum(kind, &json!(code)),
                value(UNKNOWN, code),
                "{kind:?} {code}"
            );
            assert_eq!(
                parse_enum(kind, &json!(code.to_string())),
                value(UNKNOWN, code),
                "{kind:?} {code}"
            );
        }
    }

    #[test]
    fn whole_numbers_up_to_2_to_the_53_are_codes() {
        for (number, code) in [
            (json!(MAX_SAFE_INTEGER), MAX_SAFE_INTEGER),
            (json!(-MAX_SAFE_INTEGER), -MAX_SAFE_INTEGER),
            (json!(9007199254740991.0), MAX_SAFE_INTEGER),
            (json!(1e15), 1_000_000_000_000_000),
        ] {
            assert_eq!(
                parse_enum(EnumKind::Status, &number),
                value(UNKNOWN, code),
                "{number}"
            );
        }
    }

    #[test]
    fn unknown_names_have_no_code() {
        assert_eq!(
            parse_enum(EnumKind::Status, &json!("9007199254740992")),
            EnumParse::Value(EnumValue {
                name: UNKNOWN,
                code: None
            })
        );
        assert_eq!(
            parse_enum(EnumKind::Status, &json!("Escalated")),
            EnumParse::Value(EnumValue {
                name: UNKNOWN,
                code: None
            })
        );
    }

    #[test]
    fn every_word_reads_back_from_its_text_at_its_slot() {
        for kind in ALL {
            for slot in 0..Word::count(kind) {
                let word = Word { kind, slot };
                assert_eq!(Word::parse(kind, word.as_str()), word, "{kind:?} {slot}");
            }
            assert_eq!(Word::of(kind, None).as_str(), NONE);
            assert_eq!(Word::parse(kind, "escalated").as_str(), UNKNOWN);
        }
    }

    #[test]
    fn absent_and_invalid() {
        for absent in [json!(null), json!(""), json!("   ")] {
            assert_eq!(
                parse_enum(EnumKind::Status, &absent),
                EnumParse::Absent,
                "{absent}"
            );
        }
        for invalid in [
            json!({"a": 1}),
            json!([1]),
            json!(true),
            json!(1.5),
            json!(9007199254740992i64),
            json!(-9007199254740992i64),
            json!(1e19),
            json!(9223372036854775808u64),
        ] {
            assert_eq!(
                parse_enum(EnumKind::Status, &invalid),
                EnumParse::Invalid,
                "{invalid}"
            );
        }
    }
}
