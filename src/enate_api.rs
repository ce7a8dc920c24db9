//! Enate's Web API for webhook subscriptions, as the bridge uses it: every
//! path, query parameter, field name and code is in this one file, so a
//! difference found on a real instance is a one-line change here.
//!
//! Source: Enate's public pages "API Webhook Subscription" and "How to work
//! with Enate's Webhooks" (docs.enate.net, Integrations → Webhooks), and the
//! subscription model of Enate's sample receiver (github.com/EnateLtd/WebhookReceiver).
//! Each instance serves its own Swagger page, `https://<instance>/operational/swagger`,
//! which is the reference for its paths and bodies: the README says how to
//! compare it with this file.
//!
//! What the public text does not give, and how the bridge copes:
//! - The update operation's path. The bridge does not update: a subscription
//!   whose header or secret differs is replaced (a new one subscribed, then the
//!   old one unsubscribed).
//! - Whether answers are wrapped. The sample receiver reads the new
//!   subscription from `{"Result": {...}}`, the docs show bare values: both are
//!   accepted, for every answer.
//! - Key casing. .NET serializers answer PascalCase; keys are matched
//!   case-insensitively all the same.
//! - `FilterObjectType` comes back as a name (`"Company"`, `"None"`) though
//!   subscribing takes the numeric code: both are read.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::webhook::Webhook;

/// Every subscription Enate holds (that the account may see). GET, no parameters.
pub const LIST_PATH: &str = "WebHookSubscription/GetAllWebhookSubscriptions";
/// Creates a subscription. POST, the fields below as a JSON body.
pub const SUBSCRIBE_PATH: &str = "WebHookSubscription/SubscribeToWebhook";
/// Deletes a subscription. POST, the GUID as a query parameter, no body.
pub const UNSUBSCRIBE_PATH: &str = "WebHookSubscription/Unsubscribe";
/// The query parameter of [`UNSUBSCRIBE_PATH`] (spelled with a capital H in Enate's docs).
pub const UNSUBSCRIBE_GUID_PARAMETER: &str = "webHookSubscriptionGUID";
/// "Webhook Test – Simulate Event": makes Enate send a test message to the
/// subscription's SubscriberURL, with its custom header. GET, the GUID as
/// [`TEST_GUID_PARAMETER`]. Enate's public text names the operation and its
/// parameter but not its path: this is the default of `enate.test_path`, a
/// guess from the names of its neighbours, to be checked on the instance's
/// Swagger page.
pub const TEST_PATH: &str = "WebHookSubscription/SimulateEvent";
/// The query parameter of the test operation.
pub const TEST_GUID_PARAMETER: &str = "webHookSubscriptionGUID";
/// Older instances' login (Enate's sample receiver): POST a JSON body
/// `{"username", "password"}`; the answer is the token as a JSON string.
pub const LOGIN_PATH: &str = "Authentication/Login";
/// The login's query: the token in the answer rather than a cookie.
pub const LOGIN_QUERY: (&str, &str) = ("useCookie", "false");
/// How a login token is sent with each call: as this query parameter.
pub const LOGIN_TOKEN_PARAMETER: &str = "authToken";
/// The login body's field names.
pub const LOGIN_USERNAME: &str = "username";
pub const LOGIN_PASSWORD: &str = "password";

/// Field names of a subscription, in requests and answers.
pub mod field {
    pub const GUID: &str = "GUID";
    pub const WEBHOOK: &str = "Webhook";
    pub const FILTER_OBJECT_GUID: &str = "FilterObjectGUID";
    pub const FILTER_OBJECT_TYPE: &str = "FilterObjectType";
    pub const SUBSCRIBER_URL: &str = "SubscriberURL";
    pub const CUSTOM_HEADER: &str = "CustomHeader";
    pub const CUSTOM_HEADER_VALUE: &str = "CustomHeaderValue";
    /// The wrapper some answers put around their payload (Enate's sample receiver).
    pub const RESULT: &str = "Result";
}

/// `FilterObjectType` 0: no filter object, which Enate names `None` (its list
/// answers the name; an instance answering the code gets the same name shown).
pub const NO_FILTER_CODE: i64 = 0;
pub const NO_FILTER_NAME: &str = "None";

/// What a subscription filters on (`FilterObjectType`): codes of the EnateObjects enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterObjectType {
    Company,
    Contract,
    Service,
    Process,
}

impl FilterObjectType {
    pub const ALL: [FilterObjectType; 4] = [
        FilterObjectType::Company,
        FilterObjectType::Contract,
        FilterObjectType::Service,
        FilterObjectType::Process,
    ];

    /// The numeric code subscribing takes.
    pub fn code(self) -> i64 {
        match self {
            FilterObjectType::Company => 31,
            FilterObjectType::Contract => 215,
            FilterObjectType::Service => 217,
            FilterObjectType::Process => 911,
        }
    }

    /// The name Enate answers with.
    pub fn enate_name(self) -> &'static str {
        match self {
            FilterObjectType::Company => "Company",
            FilterObjectType::Contract => "Contract",
            FilterObjectType::Service => "Service",
            FilterObjectType::Process => "Process",
        }
    }

    /// The name in the bridge's configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            FilterObjectType::Company => "company",
            FilterObjectType::Contract => "contract",
            FilterObjectType::Service => "service",
            FilterObjectType::Process => "process",
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// A name in any casing, or a code as a number or numeric string.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        match text.parse::<i64>() {
            Ok(code) => Self::from_code(code),
            Err(_) => Self::ALL
                .into_iter()
                .find(|t| t.name().eq_ignore_ascii_case(text)),
        }
    }
}

impl std::fmt::Display for FilterObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for FilterObjectType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for FilterObjectType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FilterObjectType;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "company (31), contract (215), service (217) or process (911), as a name or code",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, code: i64) -> Result<Self::Value, E> {
                FilterObjectType::from_code(code)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Signed(code), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, code: u64) -> Result<Self::Value, E> {
                i64::try_from(code)
                    .ok()
                    .and_then(FilterObjectType::from_code)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Unsigned(code), &self))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                FilterObjectType::parse(text)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The filter object types Enate's page allows for a webhook. The page names
/// them for PacketCreated only (Company, Contract or Service); for the other
/// webhooks it is silent, so every type is let through and Enate judges.
pub fn applicable_filter_types(webhook: Webhook) -> &'static [FilterObjectType] {
    match webhook {
        Webhook::PacketCreated => &[
            FilterObjectType::Company,
            FilterObjectType::Contract,
            FilterObjectType::Service,
        ],
        _ => &FilterObjectType::ALL,
    }
}

/// A subscription to create: the body of [`SUBSCRIBE_PATH`].
pub struct NewSubscription<'a> {
    pub webhook: Webhook,
    pub filter_object_type: FilterObjectType,
    pub filter_object_guid: Uuid,
    pub subscriber_url: &'a str,
    pub custom_header: &'a str,
    pub custom_header_value: &'a SecretString,
}

impl NewSubscription<'_> {
    /// The JSON body. It holds the secret: it is sent, never printed or logged.
    pub fn body(&self) -> Value {
        json!({
            field::WEBHOOK: self.webhook.enate_name(),
            field::FILTER_OBJECT_GUID: self.filter_object_guid.hyphenated().to_string(),
            field::FILTER_OBJECT_TYPE: self.filter_object_type.code(),
            field::SUBSCRIBER_URL: self.subscriber_url,
            field::CUSTOM_HEADER: self.custom_header,
            field::CUSTOM_HEADER_VALUE: self.custom_header_value.expose_secret(),
        })
    }
}

/// A value Enate gave that the bridge knows, or the text it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known<T> {
    Known(T),
    Other(String),
}

/// A subscription as Enate lists it. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Subscription {
    pub guid: Uuid,
    pub webhook: Known<Webhook>,
    pub filter_object_type: Known<FilterObjectType>,
    pub filter_object_guid: Known<Uuid>,
    pub subscriber_url: String,
    pub custom_header: Option<String>,
    pub custom_header_value: Option<SecretString>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("guid", &self.guid)
            .field("webhook", &self.webhook)
            .field("filter_object_type", &self.filter_object_type)
            .field("filter_object_guid", &self.filter_object_guid)
            .field("subscriber_url", &self.subscriber_url)
            .field("custom_header", &self.custom_header)
            .field(
                "custom_header_value",
                &self.custom_header_value.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Enate's answer was not shaped as this file expects.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnexpectedAnswer(String);

/// Reads the answer of [`LIST_PATH`]: a list of subscriptions.
pub fn parse_list(answer: &Value) -> Result<Vec<Subscription>, UnexpectedAnswer> {
    let Value::Array(items) = unwrap_result(answer) else {
        return Err(UnexpectedAnswer(format!(
            "expected a list of subscriptions, got {}",
            kind(answer)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_subscription(item).map_err(|UnexpectedAnswer(reason)| {
                UnexpectedAnswer(format!("item {index}: {reason}"))
            })
        })
        .collect()
}

/// Reads the GUID of a new subscription from the answer of [`SUBSCRIBE_PATH`]:
/// a subscription object, or the GUID alone. `None` when there is none.
pub fn parse_created_guid(answer: &Value) -> Option<Uuid> {
    match unwrap_result(answer) {
        Value::String(text) => Uuid::parse_str(text.trim()).ok(),
        Value::Object(object) => get(object, field::GUID)
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text.trim()).ok()),
        _ => None,
    }
}

fn parse_subscription(item: &Value) -> Result<Subscription, UnexpectedAnswer> {
    let Value::Object(object) = item else {
        return Err(UnexpectedAnswer(format!(
            "expected an object, got {}",
            kind(item)
        )));
    };
    let text = |name: &str| get(object, name).and_then(Value::as_str).map(str::trim);
    let guid = text(field::GUID)
        .and_then(|text| Uuid::parse_str(text).ok())
        .ok_or_else(|| UnexpectedAnswer(format!("no {} that is a GUID", field::GUID)))?;
    let webhook = match text(field::WEBHOOK) {
        Some(name) => Webhook::from_path_segment(name)
            .map_or_else(|| Known::Other(name.to_string()), Known::Known),
        None => Known::Other(String::new()),
    };
    let filter_object_type = match get(object, field::FILTER_OBJECT_TYPE) {
        Some(Value::Number(code)) if code.as_i64() == Some(NO_FILTER_CODE) => {
            Known::Other(NO_FILTER_NAME.to_string())
        }
        Some(Value::Number(code)) => code
            .as_i64()
            .and_then(FilterObjectType::from_code)
            .map_or_else(|| Known::Other(code.to_string()), Known::Known),
        Some(Value::String(name)) => FilterObjectType::parse(name)
            .map_or_else(|| Known::Other(no_filter_named(name.trim())), Known::Known),
        _ => Known::Other(String::new()),
    };
    let filter_object_guid = match text(field::FILTER_OBJECT_GUID) {
        Some(value) => {
            Uuid::parse_str(value).map_or_else(|_| Known::Other(value.to_string()), Known::Known)
        }
        None => Known::Other(String::new()),
    };
    let non_empty = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_string);
    Ok(Subscription {
        guid,
        webhook,
        filter_object_type,
        filter_object_guid,
        subscriber_url: text(field::SUBSCRIBER_URL).unwrap_or_default().to_string(),
        custom_header: non_empty(text(field::CUSTOM_HEADER)),
        // Not trimmed here: compared trimmed, as the bridge compares what Enate sends.
        custom_header_value: get(object, field::CUSTOM_HEADER_VALUE)
            .and_then(Value::as_str)
            .filter(|value| !value.trim().is_empty())
            .map(SecretString::from),
    })
}

/// A filter type the bridge does not know, as shown: `None` for Enate's no-filter
/// (the code 0 as text, or the name in any casing), else the text itself.
fn no_filter_named(text: &str) -> String {
    if text.eq_ignore_ascii_case(NO_FILTER_NAME) || text.parse::<i64>() == Ok(NO_FILTER_CODE) {
        NO_FILTER_NAME.to_string()
    } else {
        text.to_string()
    }
}

/// `{"Result": x}` is `x`; anything else is itself.
fn unwrap_result(answer: &Value) -> &Value {
    match answer {
        Value::Object(object) if object.len() == 1 => get(object, field::RESULT).unwrap_or(answer),
        _ => answer,
    }
}

/// A key, matched case-insensitively.
fn get<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// What a JSON value is, for messages: never the value itself, which could hold a secret.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_object_types_parse_from_names_and_codes() {
        for (text, expected) in [
            ("company", Some(FilterObjectType::Company)),
            ("Company", Some(FilterObjectType::Company)),
            ("31", Some(FilterObjectType::Company)),
            (" 215 ", Some(FilterObjectType::Contract)),
            ("SERVICE", Some(FilterObjectType::Service)),
            ("911", Some(FilterObjectType::Process)),
            ("None", None),
            ("32", None),
            ("", None),
        ] {
            assert_eq!(FilterObjectType::parse(text), expected, "{text:?}");
        }
    }

    #[test]
    fn packet_created_takes_company_contract_or_service() {
        let types = applicable_filter_types(Webhook::PacketCreated);
        assert!(types.contains(&FilterObjectType::Contract));
        assert!(!types.contains(&FilterObjectType::Process));
        assert_eq!(applicable_filter_types(Webhook::PacketUpdated).len(), 4);
    }

    #[test]
    fn the_subscribe_body_has_the_six_parameters_with_the_numeric_type() {
        let secret = SecretString::from("s3cret");
        let body = NewSubscription {
            webhook: Webhook::PacketCreated,
            filter_object_type: FilterObjectType::Service,
            filter_object_guid: Uuid::parse_str("AAAAAAAA-1111-4222-8333-444444444444").unwrap(),
            subscriber_url: "https://bridge.example.com/webhooks/PacketCreated",
            custom_header: "X-Enate-Secret",
            custom_header_value: &secret,
        }
        .body();
        assert_eq!(
            body,
            json!({
                "Webhook": "PacketCreated",
                "FilterObjectGUID": "aaaaaaaa-1111-4222-8333-444444444444",
                "FilterObjectType": 217,
                "SubscriberURL": "https://bridge.example.com/webhooks/PacketCreated",
                "CustomHeader": "X-Enate-Secret",
                "CustomHeaderValue": "s3cret",
            })
        );
    }

    #[test]
    fn lists_are_read_bare_or_wrapped_with_names_or_codes_in_any_key_casing() {
        let item = json!({
            "GUID": "215d6b04-f587-eb11-b9ad-e86a64437383",
            "Webhook": "PacketCreated",
            "FilterObjectGUID": "AAAAAAAA-1111-4222-8333-444444444444",
            "FilterObjectType": "Company",
            "SubscriberURL": "https://bridge.example.com/webhooks/PacketCreated",
            "Signature": "sig",
            "CustomHeader": "X-Enate-Secret",
            "CustomHeaderValue": " s3cret",
        });
        let lower: Value = serde_json::from_str(
            &item
                .to_string()
                .replace("FilterObjectType", "filterObjectType"),
        )
        .unwrap();
        for answer in [json!([item]), json!({"Result": [item]}), json!([lower])] {
            let list = parse_list(&answer).unwrap();
            assert_eq!(list.len(), 1, "{answer}");
            let subscription = &list[0];
            assert_eq!(subscription.webhook, Known::Known(Webhook::PacketCreated));
            assert_eq!(
                subscription.filter_object_type,
                Known::Known(FilterObjectType::Company)
            );
            assert_eq!(
                subscription.filter_object_guid,
                Known::Known(Uuid::parse_str("aaaaaaaa-1111-4222-8333-444444444444").unwrap())
            );
            assert_eq!(
                subscription.custom_header.as_deref(),
                Some("X-Enate-Secret")
            );
            assert_eq!(
                subscription
                    .custom_header_value
                    .as_ref()
                    .unwrap()
                    .expose_secret(),
                " s3cret"
            );
            assert!(!format!("{subscription:?}").contains("s3cret"));
        }
        let coded = json!([{"GUID": "215d6b04-f587-eb11-b9ad-e86a64437383", "Webhook": "Elsewhere",
                            "FilterObjectType": 215, "FilterObjectGUID": "not-a-guid"}]);
        let subscription = &parse_list(&coded).unwrap()[0];
        assert_eq!(
            subscription.filter_object_type,
            Known::Known(FilterObjectType::Contract)
        );
        assert_eq!(subscription.webhook, Known::Other("Elsewhere".into()));
        assert_eq!(
            subscription.filter_object_guid,
            Known::Other("not-a-guid".into())
        );
        assert!(subscription.custom_header.is_none() && subscription.custom_header_value.is_none());
    }

    #[test]
    fn a_filter_object_type_of_0_reads_as_none_as_enate_names_it() {
        for given in [
            json!(0),
            json!("0"),
            json!("None"),
            json!("none"),
            json!(" NONE "),
        ] {
            let answer = json!([{"GUID": "215d6b04-f587-eb11-b9ad-e86a64437383",
                                 "Webhook": "PacketCreated", "FilterObjectType": given}]);
            let subscription = &parse_list(&answer).unwrap()[0];
            assert_eq!(
                subscription.filter_object_type,
                Known::Other("None".into()),
                "{given}"
            );
        }
        let answer =
            json!([{"GUID": "215d6b04-f587-eb11-b9ad-e86a64437383", "FilterObjectType": 32}]);
        assert_eq!(
            parse_list(&answer).unwrap()[0].filter_object_type,
            Known::Other("32".into())
        );
    }

    #[test]
    fn malformed_lists_are_errors_that_do_not_quote_the_answer() {
        for answer in [
            json!({"Message": "secret-ish"}),
            json!(["secret-ish"]),
            json!([{"Webhook": "PacketCreated", "CustomHeaderValue": "secret-ish"}]),
        ] {
            let error = parse_list(&answer).unwrap_err().to_string();
            assert!(!error.contains("secret-ish"), "{error}");
        }
    }

    #[test]
    fn the_created_guid_is_read_from_an_object_a_wrapper_or_a_string() {
        let guid = Uuid::parse_str("215d6b04-f587-eb11-b9ad-e86a64437383").unwrap();
        for answer in [
            json!({"GUID": "215D6B04-F587-EB11-B9AD-E86A64437383", "Webhook": "PacketCreated"}),
            json!({"Result": {"guid": "215d6b04-f587-eb11-b9ad-e86a64437383"}}),
            json!("215d6b04-f587-eb11-b9ad-e86a64437383"),
        ] {
            assert_eq!(parse_created_guid(&answer), Some(guid), "{answer}");
        }
        assert_eq!(parse_created_guid(&json!({"Result": true})), None);
    }
}
