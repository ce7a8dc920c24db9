//! The routing-key template (`amqp.routing_key`), e.g. `{event}.{process_type}.{status}`.
//! Parsed once at start, so a misspelt placeholder stops the start instead of
//! producing odd keys at run time.

use std::fmt::{self, Write};

use crate::normalize::enums::Word;

/// The values a routing key can be made of, already in routing form: the
/// event's name and the words of its enumerations (snake_case names, `none`
/// when absent, `unknown` when Enate sent an unknown code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingValues {
    pub event: &'static str,
    pub process_type: Word,
    pub status: Word,
    pub rag_status: Word,
    pub communication_type: Word,
    pub started_by_method: Word,
}

/// The longest routing word any placeholder renders, in bytes
/// (`specific_business_object_updated`); `event.rs` tests that it holds.
pub const MAX_WORD_BYTES: usize = 32;
/// AMQP's limit on a routing key.
const MAX_KEY_BYTES: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Event,
    ProcessType,
    Status,
    RagStatus,
    CommunicationType,
    StartedByMethod,
}

const PLACEHOLDERS: [(&str, Placeholder); 6] = [
    ("event", Placeholder::Event),
    ("process_type", Placeholder::ProcessType),
    ("status", Placeholder::Status),
    ("rag_status", Placeholder::RagStatus),
    ("communication_type", Placeholder::CommunicationType),
    ("started_by_method", Placeholder::StartedByMethod),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingKeyTemplate {
    /// As written, for `check-config`.
    text: String,
    parts: Vec<Part>,
}

/// Why a routing-key template cannot be used; the text says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

macro_rules! bail {
    ($($arg:tt)*) => { return Err(TemplateError(format!($($arg)*))) };
}

impl fmt::Display for RoutingKeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl RoutingKeyTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                bail!("{template:?}: a `{{` is never closed");
            };
            let name = &rest[open + 1..open + close];
            let Some(&(_, placeholder)) = PLACEHOLDERS.iter().find(|(known, _)| *known == name)
            else {
                let known: Vec<&str> = PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
                bail!(
                    "{template:?}: unknown placeholder {{{name}}}; known placeholders: {}",
                    known.join(", ")
                );
            };
            parts.push(Part::Placeholder(placeholder));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            bail!("{template:?}: a `}}` has no `{{`");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let placeholders = parts
            .iter()
            .filter(|part| matches!(part, Part::Placeholder(_)))
            .count();
        let literals: usize = parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.len(),
                Part::Placeholder(_) => 0,
            })
            .sum();
        let longest = literals + placeholders * MAX_WORD_BYTES;
        if longest > MAX_KEY_BYTES {
            bail!(
                "{template:?}: can render keys of up to {longest} bytes; AMQP allows {MAX_KEY_BYTES}"
            );
        }
        Ok(Self {
            text: template.to_string(),
            parts,
        })
    }

    pub fn render(&self, values: &RoutingValues) -> String {
        let mut key = String::with_capacity(64);
        for part in &self.parts {
            let text = match part {
                Part::Literal(text) => text.as_str(),
                Part::Placeholder(Placeholder::Event) => values.event,
                Part::Placeholder(Placeholder::ProcessType) => values.process_type.as_str(),
                Part::Placeholder(Placeholder::Status) => values.status.as_str(),
                Part::Placeholder(Placeholder::RagStatus) => values.rag_status.as_str(),
                Part::Placeholder(Placeholder::CommunicationType) => {
                    values.communication_type.as_str()
                }
                Part::Placeholder(Placeholder::StartedByMethod) => {
                    values.started_by_method.as_str()
                }
            };
            let _ = key.write_str(text);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::enums::EnumKind;

    fn values() -> RoutingValues {
        RoutingValues {
            event: "packet_updated",
            process_type: Word::parse(EnumKind::ProcessType, "ticket"),
            status: Word::parse(EnumKind::Status, "resolved"),
            rag_status: Word::parse(EnumKind::RagStatus, "overdue"),
            communication_type: Word::none(EnumKind::CommunicationType),
            started_by_method: Word::parse(EnumKind::StartedByMethod, "by_email"),
        }
    }

    #[test]
    fn renders_the_default_and_every_placeholder() {
        let cases = [
            (
                "{event}.{process_type}.{status}",
                "packet_updated.ticket.resolved",
            ),
            ("enate.{rag_status}", "enate.overdue"),
            ("{communication_type}-{started_by_method}", "none-by_email"),
            ("fixed", "fixed"),
            ("", ""),
        ];
        for (template, expected) in cases {
            assert_eq!(
                RoutingKeyTemplate::parse(template)
                    .unwrap()
                    .render(&values()),
                expected,
                "{template}"
            );
        }
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        for (template, reason) in [
            ("{event}.{colour}", "unknown placeholder {colour}"),
            ("{event", "never closed"),
            (
                "{event}{event}{event}{event}{event}{event}{event}{event}",
                "AMQP allows 255",
            ),
            ("event}", "has no"),
        ] {
            let error = RoutingKeyTemplate::parse(template).unwrap_err().to_string();
            assert!(error.contains(reason), "{template}: {error}");
        }
    }
}
