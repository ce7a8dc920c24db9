//! The contract as files, served by the admin listener: the JSON Schema of the
//! events, the AsyncAPI document of the exchange and the OpenAPI document of the
//! HTTP API (`schemas/` in the source tree). They are compiled into the binary, so
//! a container serves the documents of exactly the version it runs, with no file
//! to mount.
//!
//! `/schemas/{document}` serves each under its own name, so the relative
//! references between them (`asyncapi.json` → `event.schema.json`) resolve for a
//! tool that reads them from the bridge as well as from the source tree.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::admin_resource;

/// One document of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Document {
    /// Its file name in `schemas/` and under `/schemas/`.
    pub name: &'static str,
    pub media_type: &'static str,
    pub description: &'static str,
    pub text: &'static str,
}

pub const EVENT_SCHEMA: Document = Document {
    name: "event.schema.json",
    media_type: "application/schema+json",
    description: "JSON Schema (draft 2020-12) of the CloudEvents event the bridge publishes",
    text: include_str!("../../schemas/event.schema.json"),
};

pub const ASYNCAPI: Document = Document {
    name: "asyncapi.json",
    media_type: "application/json",
    description: "AsyncAPI 3.0: the RabbitMQ exchanges, routing keys, queues and messages",
    text: include_str!("../../schemas/asyncapi.json"),
};

pub const OPENAPI: Document = Document {
    name: "openapi.json",
    media_type: "application/json",
    description: "OpenAPI 3.1: the ingress and admin HTTP listeners",
    text: include_str!("../../schemas/openapi.json"),
};

pub const DOCUMENTS: [Document; 3] = [EVENT_SCHEMA, ASYNCAPI, OPENAPI];

/// The contract's routes on the admin listener.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(admin_resource("/schemas").route(web::get().to(index)))
        .service(admin_resource("/schemas/{document}").route(web::get().to(document)))
        .service(admin_resource("/asyncapi.json").route(web::get().to(|| serve(ASYNCAPI))))
        .service(admin_resource("/openapi.json").route(web::get().to(|| serve(OPENAPI))));
}

/// The documents, their media types and where they are.
async fn index() -> HttpResponse {
    let documents: Vec<_> = DOCUMENTS
        .iter()
        .map(|document| {
            json!({
                "name": document.name,
                "url": format!("/schemas/{}", document.name),
                "media_type": document.media_type,
                "description": document.description,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "documents": documents,
    }))
}

async fn document(name: web::Path<String>) -> HttpResponse {
    match DOCUMENTS
        .iter()
        .find(|document| document.name == name.as_str())
    {
        Some(document) => serve(*document).await,
        None => HttpResponse::NotFound().json(json!({
            "status": "not_found",
            "reason": "no such document; /schemas lists them",
        })),
    }
}

async fn serve(document: Document) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(document.media_type)
        .body(document.text)
}

/// The documents against the code they describe: a change on either side that
/// the other does not follow fails here. (The integration tests hold every event
/// and answer of a real bridge against the documents too.)
#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;
    use crate::{
        event::{EventBuilder, cloudevents_type, event_id},
        normalize::{EventData, NormalizeOptions, enums::EnumKind},
        payload::split_body,
        routing::RoutingKeyTemplate,
        webhook::Webhook,
    };

    fn parse(document: Document) -> Value {
        serde_json::from_str(document.text)
            .unwrap_or_else(|error| panic!("{}: {error}", document.name))
    }

    /// A JSON pointer into a document, which must be there.
    fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
        value
            .pointer(pointer)
            .unwrap_or_else(|| panic!("nothing at {pointer}"))
    }

    fn strings(value: &Value) -> Vec<Option<&str>> {
        value
            .as_array()
            .expect("a list")
            .iter()
            .map(Value::as_str)
            .collect()
    }

    const ENUMS: [(EnumKind, &str); 5] = [
        (EnumKind::ProcessType, "process_type"),
        (EnumKind::Status, "status"),
        (EnumKind::RagStatus, "rag_status"),
        (EnumKind::CommunicationType, "communication_type"),
        (EnumKind::StartedByMethod, "started_by_method"),
    ];

    #[test]
    fn the_documents_are_valid_json_schema_and_carry_the_crate_version() {
        let schema = parse(EVENT_SCHEMA);
        jsonschema::draft202012::meta::validate(&schema).expect("a draft 2020-12 schema");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(at(&parse(ASYNCAPI), "/info/version"), version);
        assert_eq!(at(&parse(OPENAPI), "/info/version"), version);
        assert_eq!(at(&parse(ASYNCAPI), "/asyncapi"), "3.0.0");
        assert_eq!(at(&parse(OPENAPI), "/openapi"), "3.1.0");
    }

    #[test]
    fn data_has_the_fields_of_event_data_in_its_order() {
        let data = EventData {
            raw: Some(serde_json::value::RawValue::from_string("{}".into()).unwrap()),
            ..EventData::default()
        };
        let Value::Object(fields) = serde_json::to_value(&data).unwrap() else {
            panic!("data is an object")
        };
        let schema = parse(EVENT_SCHEMA);
        let properties: Vec<&String> = at(&schema, "/$defs/data/properties")
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(properties, fields.keys().collect::<Vec<_>>());
        let required = strings(at(&schema, "/$defs/data/required"));
        let always: Vec<Option<&str>> = fields
            .keys()
            .filter(|key| *key != "raw")
            .map(|key| Some(key.as_str()))
            .collect();
        assert_eq!(required, always, "every field but raw is always there");
    }

    #[test]
    fn enum_names_and_codes_are_the_bridges() {
        let schema = parse(EVENT_SCHEMA);
        let asyncapi = parse(ASYNCAPI);
        for (kind, field) in ENUMS {
            let table = kind.table();
            let names: Vec<Option<&str>> = table.iter().map(|(_, name)| Some(*name)).collect();

            let mut with_unknown = names.clone();
            with_unknown.extend([Some("unknown"), None]);
            let declared = strings(at(&schema, &format!("/$defs/data/properties/{field}/enum")));
            assert_eq!(declared, with_unknown, "{field}: its names");

            // The pairs: one per code, then unknown, then absent.
            let pairs = at(&schema, &format!("/$defs/{field}_codes/oneOf"))
                .as_array()
                .unwrap();
            assert_eq!(pairs.len(), table.len() + 2, "{field}");
            for (pair, (code, name)) in pairs.iter().zip(table) {
                let properties = &pair["properties"];
                assert_eq!(properties[field]["const"], *name, "{field}");
                assert_eq!(
                    properties[format!("{field}_code")]["const"],
                    *code,
                    "{field}"
                );
            }
            let unknown_codes = &pairs[table.len()]["properties"][format!("{field}_code")];
            let codes: Vec<Value> = table.iter().map(|(code, _)| Value::from(*code)).collect();
            assert_eq!(unknown_codes["not"]["enum"], Value::Array(codes), "{field}");

            // The routing words of the AsyncAPI document: the names, unknown, none.
            let mut words = names.clone();
            words.extend([Some("unknown"), Some("none")]);
            let schema_name = match field {
                "process_type" => "processTypeWord",
                "status" => "statusWord",
                "rag_status" => "ragStatusWord",
                "communication_type" => "communicationTypeWord",
                _ => "startedByMethodWord",
            };
            let declared = at(
                &asyncapi,
                &format!("/components/schemas/{schema_name}/enum"),
            );
            assert_eq!(strings(declared), words, "{field}: routing words");
            if let Some(parameter) =
                asyncapi.pointer(&format!("/channels/events/parameters/{field}/enum"))
            {
                assert_eq!(strings(parameter), words, "{field}: channel parameter");
            }
        }
    }

    #[test]
    fn event_types_and_webhooks_are_the_bridges() {
        let types: Vec<Option<&str>> = Webhook::ALL
            .iter()
            .map(|webhook| Some(cloudevents_type(*webhook)))
            .collect();
        let names: Vec<Option<&str>> = Webhook::ALL
            .iter()
            .map(|webhook| Some(webhook.enate_name()))
            .collect();
        let events: Vec<Option<&str>> = Webhook::ALL
            .iter()
            .map(|webhook| Some(webhook.event_name()))
            .collect();
        let asyncapi = parse(ASYNCAPI);
        let openapi = parse(OPENAPI);
        assert_eq!(
            strings(at(&parse(EVENT_SCHEMA), "/properties/type/enum")),
            types
        );
        assert_eq!(
            strings(at(&asyncapi, "/channels/events/parameters/event/enum")),
            events
        );
        assert_eq!(
            strings(at(&asyncapi, "/components/schemas/eventWord/enum")),
            events
        );
        assert_eq!(
            strings(at(
                &asyncapi,
                "/components/schemas/quarantineHeaders/properties/x-enate-webhook/enum"
            )),
            names
        );
        assert_eq!(
            strings(at(
                &openapi,
                "/paths/~1webhooks~1{webhook}/post/parameters/0/schema/enum"
            )),
            names
        );
        assert_eq!(
            strings(at(
                &openapi,
                "/components/schemas/UnknownWebhook/properties/valid_webhooks/items/enum"
            )),
            names
        );
        // One AsyncAPI message per event type, carrying it.
        for webhook in Webhook::ALL {
            let name = webhook.enate_name();
            let message = format!("{}{}", name[..1].to_lowercase(), &name[1..]);
            let kind = at(
                &asyncapi,
                &format!("/components/messages/{message}/bindings/amqp/messageType"),
            );
            assert_eq!(kind, cloudevents_type(webhook), "{message}");
        }
    }

    fn builder(source: &str) -> EventBuilder {
        EventBuilder {
            source: source.into(),
            normalize: NormalizeOptions {
                naive_time_zone: jiff::tz::TimeZone::UTC,
                include_raw: true,
            },
            routing_key: RoutingKeyTemplate::parse("{event}.{process_type}.{status}").unwrap(),
        }
    }

    /// The AsyncAPI examples were captured from a real bridge; rebuilt here from
    /// their own `data.raw` (sent as compact JSON) and `time`, they must come out
    /// the same: payload, id, routing key, headers and properties.
    #[test]
    fn asyncapi_examples_are_what_the_bridge_publishes() {
        let asyncapi = parse(ASYNCAPI);
        let schema = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&parse(EVENT_SCHEMA))
            .unwrap();
        let messages = at(&asyncapi, "/components/messages").as_object().unwrap();
        let mut checked = 0;
        for (message, definition) in messages {
            for example in definition["examples"].as_array().unwrap() {
                let name = example["name"].as_str().unwrap();
                let amqp = &definition["x-amqp-examples"][name];
                if message == "quarantined" {
                    check_quarantined_example(example, amqp);
                } else {
                    check_event_example(example, amqp, &schema);
                }
                checked += 1;
            }
        }
        assert!(checked >= 7, "an example per message: {checked}");
    }

    fn check_event_example(example: &Value, amqp: &Value, schema: &jsonschema::Validator) {
        let payload = &example["payload"];
        let name = &example["name"];
        let errors: Vec<String> = schema.iter_errors(payload).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let raw = serde_json::to_string(&payload["data"]["raw"]).unwrap();
        let kind = payload["type"].as_str().unwrap();
        let webhook = Webhook::ALL
            .into_iter()
            .find(|webhook| cloudevents_type(*webhook) == kind)
            .unwrap();
        let received = payload["time"].as_str().unwrap().parse().unwrap();
        let object = split_body(raw.as_bytes())
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
        let event = builder(payload["source"].as_str().unwrap())
            .build(webhook, object, received)
            .unwrap();
        let published: Value = serde_json::from_slice(&event.body).unwrap();
        assert_eq!(&published, payload, "{name}: the payload");
        let headers: Map<String, Value> = [
            ("event", event.routing.event),
            ("process_type", event.routing.process_type.as_str()),
            ("status", event.routing.status.as_str()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.into()))
        .collect();
        assert_eq!(
            example["headers"],
            Value::Object(headers),
            "{name}: headers"
        );
        assert_eq!(amqp["routing_key"], event.routing_key, "{name}");
        let properties = &amqp["properties"];
        assert_eq!(properties["message_id"], event.id.to_string(), "{name}");
        assert_eq!(properties["type"], kind, "{name}");
        assert_eq!(properties["timestamp"], event.timestamp, "{name}");
        assert_eq!(properties["content_type"], "application/cloudevents+json");
        assert_eq!(properties["app_id"], "enate-bridge");
        assert_eq!(properties["delivery_mode"], 2);
    }

    fn check_quarantined_example(example: &Value, amqp: &Value) {
        let body = example["payload"].as_str().expect("the body as text");
        let webhook =
            Webhook::from_path_segment(example["headers"]["x-enate-webhook"].as_str().unwrap())
                .unwrap();
        let reason = match split_body(body.as_bytes()) {
            Err(invalid) => invalid.0,
            Ok(objects) => {
                let object = objects.into_iter().next().unwrap();
                builder("enate-bridge")
                    .build(webhook, object, jiff::Timestamp::now())
                    .expect_err("the example cannot become an event")
                    .0
            }
        };
        assert_eq!(example["headers"]["x-quarantine-reason"], reason);
        let properties = &amqp["properties"];
        assert_eq!(
            properties["message_id"],
            event_id(webhook, body.as_bytes()).to_string()
        );
        assert_eq!(properties["type"], cloudevents_type(webhook));
        assert_eq!(amqp["routing_key"], webhook.event_name());
    }
}
