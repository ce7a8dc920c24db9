//! `enate-bridge send-sample`: POSTs realistic Enate-shaped webhooks to a running
//! bridge, with the configured secret, to try a deployment end to end before (or
//! without) pointing Enate at it.
//!
//! The payloads look like Enate's (see the README's contract): PascalCase keys,
//! integer enum codes, an ISO 8601 due date with an offset, .NET's `/Date(..)/` for
//! `ResolvedOn`, `StartedbyMethod` spelled as in Enate's docs. Each one is a
//! different packet, so each becomes a different event. The first `PacketUpdated`
//! is a resolved ticket: it lands in the compose stack's `enate.tickets.resolved`,
//! the queue its example worker prints.

use std::{process::ExitCode, time::Duration};

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{config::Settings, telemetry::error_chain, webhook::Webhook};

/// For clap: a webhook name in any casing or in snake_case, as the ingress path takes it.
pub fn parse_webhook(name: &str) -> Result<Webhook, NotAWebhook> {
    Webhook::from_path_segment(name).ok_or(NotAWebhook)
}

/// A `--webhook` that names none of Enate's six; clap prints it after the
/// value, so it lists what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Enate webhook; one of {}", webhook_names())]
pub struct NotAWebhook;

fn webhook_names() -> String {
    let names: Vec<&str> = Webhook::ALL.iter().map(|w| w.enate_name()).collect();
    names.join(", ")
}

/// Sends `count` sample webhooks of one kind and prints each answer. Exits 1 if any
/// answer is not 2xx, or the bridge cannot be reached.
pub fn run(settings: &Settings, webhook: Webhook, url: Option<String>, count: usize) -> ExitCode {
    if settings.auth.secrets.is_empty() && !settings.auth.allow_unauthenticated {
        eprintln!(
            "send-sample: it sends the bridge's secret in {}: give it the bridge's auth.secrets \
             (e.g. ENATE_BRIDGE__AUTH__SECRETS, as the bridge was started with)",
            settings.auth.header
        );
        return ExitCode::FAILURE;
    }
    let url = url.unwrap_or_else(|| default_url(settings, webhook));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("send-sample: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let all_accepted = runtime.block_on(send(settings, webhook, &url, count));
    if all_accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn send(settings: &Settings, webhook: Webhook, url: &str, count: usize) -> bool {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!(
                "send-sample: cannot build an HTTP client: {}",
                error_chain(&error)
            );
            return false;
        }
    };
    // Without a secret (auth.allow_unauthenticated) the header is left out.
    let secret = settings.auth.secrets.first();
    let mut rng = fastrand::Rng::new();
    let now = Timestamp::now();
    let mut all_accepted = true;
    for n in 0..count {
        let body = payload(webhook, n, &mut rng, now);
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(secret) = secret {
            request = request.header(settings.auth.header.as_str(), secret.expose_secret());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                println!("{status} {}", body.trim());
                all_accepted &= status.is_success();
            }
            Err(error) => {
                // The same for every request that would follow: stop here.
                eprintln!("send-sample: {url} did not answer: {}", error_chain(&error));
                return false;
            }
        }
    }
    all_accepted
}

/// `http://<server.bind>/webhooks/<Webhook>`, with a wildcard address replaced by
/// loopback, as `healthcheck` does for admin.bind.
pub fn default_url(settings: &Settings, webhook: Webhook) -> String {
    format!(
        "http://{}/webhooks/{}",
        settings.server.bind.reachable_from_here(),
        webhook.enate_name()
    )
}

/// The `n`th sample body of `webhook`. `now` anchors the dates; `rng` varies GUIDs
/// and references.
pub fn payload(webhook: Webhook, n: usize, rng: &mut fastrand::Rng, now: Timestamp) -> Value {
    match webhook {
        Webhook::PacketCreated | Webhook::PacketUpdated => packet(webhook, n, rng, now),
        Webhook::NewCommunication => communication(n, rng),
        Webhook::BusinessObjectCreated
        | Webhook::BusinessObjectUpdated
        | Webhook::SpecificBusinessObjectUpdated => business_object(n, rng),
    }
}

/// One line per process type: code, reference suffix, process names, titles.
const PROCESSES: [(i64, &str, [&str; 2], [&str; 2]); 3] = [
    (
        2,
        "T",
        ["General Enquiry", "Payroll Query"],
        ["Payroll question", "Missing payslip for October"],
    ),
    (
        1,
        "C",
        ["Start Employee", "Supplier Onboarding"],
        ["Onboard Jane Doe", "New supplier: Northwind Traders"],
    ),
    (
        3,
        "A",
        ["Approve Invoice", "Verify Bank Details"],
        [
            "Approve invoice INV-20418",
            "Call back to confirm bank details",
        ],
    ),
];
/// Status codes in turn: resolved first (see the module comment).
const UPDATED_STATUSES: [i64; 5] = [4, 2, 3, 5, 1];
const CREATED_STATUSES: [i64; 2] = [1, 0];
const CUSTOMERS: [&str; 3] = ["Acme Ltd", "Globex Corporation", "Initech"];
/// Contract, service and service line, one per process type above.
const SERVICES: [(&str, &str, &str); 3] = [
    ("Payroll Outsourcing", "Payroll", "UK Payroll"),
    ("HR Outsourcing", "People Services", "Onboarding"),
    (
        "Finance Operations",
        "Accounts Payable",
        "Invoice Processing",
    ),
];

fn packet(webhook: Webhook, n: usize, rng: &mut fastrand::Rng, now: Timestamp) -> Value {
    let (process_type, suffix, names, titles) = PROCESSES[n % PROCESSES.len()];
    let status = match webhook {
        Webhook::PacketCreated => CREATED_STATUSES[n % CREATED_STATUSES.len()],
        _ => UPDATED_STATUSES[n % UPDATED_STATUSES.len()],
    };
    let draft = status == 0;
    let done = status >= 4;
    // Every fourth packet is overdue.
    let overdue = n % 4 == 3 && !done;
    let due = if overdue {
        now - 26.hours()
    } else {
        now + (24 * (1 + n as i64 % 5)).hours()
    };
    let (contract, service, service_line) = SERVICES[n % SERVICES.len()];
    let customer = CUSTOMERS[n % CUSTOMERS.len()];
    let started_by = [4, 1, 0, 2][n % 4]; // by email, by an agent, by workflow, self-service
    json!({
        "GUID": guid(rng),
        "Reference": format!("{}-{suffix}", rng.u32(100_000..1_000_000)),
        // Enate sends no title and no due date until a packet is submitted.
        "Title": if draft { Value::Null } else { titles[n / 3 % 2].into() },
        "Status": status,
        "DueDate": if draft { Value::Null } else { enate_local_time(due).into() },
        "RAGStatus": if draft { -2 } else if overdue { -1 } else { 1 },
        "ProcessType": process_type,
        "ProcessTypeName": names[n / 3 % 2],
        "CustomerName": customer,
        "SupplierName": if n.is_multiple_of(2) { Value::Null } else { "Northwind Traders".into() },
        "ContractName": contract,
        "ServiceName": service,
        "ServiceLineName": service_line,
        "StartedbyMethod": started_by,
        "ResolvedOn": if done { dotnet_date(now - 5.minutes()).into() } else { Value::Null },
    })
}

/// Communication type codes in turn: incoming email, outgoing email,
/// self-service comment, audit note, incoming phone call.
const COMMUNICATION_TYPES: [i64; 5] = [2, 0, 3, 4, 1];
const PEOPLE: [(&str, &str); 3] = [
    ("Jane Doe", "jane.doe@acme.example"),
    ("Sam Patel", "sam.patel@globex.example"),
    ("Service Desk", "servicedesk@bpo.example"),
];

fn communication(n: usize, rng: &mut fastrand::Rng) -> Value {
    let (sender, from) = PEOPLE[n % PEOPLE.len()];
    let (_, suffix, _, titles) = PROCESSES[n % PROCESSES.len()];
    let cc = if n.is_multiple_of(2) {
        "payroll@acme.example; team.lead@acme.example".into()
    } else {
        Value::Null
    };
    json!({
        "GUID": guid(rng),
        "PacketGUID": guid(rng),
        "Sender": sender,
        "From": from,
        "CC": cc,
        "Subject": format!("RE: {} [{}-{suffix}]", titles[0], rng.u32(100_000..1_000_000)),
        "AttachmentCount": n % 3,
        "CommunicationType": COMMUNICATION_TYPES[n % COMMUNICATION_TYPES.len()],
    })
}

/// Companies and schedules: the business objects Enate reports.
const BUSINESS_OBJECTS: [&str; 4] = [
    "Acme Ltd",
    "Month-end close schedule",
    "Globex Corporation",
    "Weekly payroll run",
];

fn business_object(n: usize, rng: &mut fastrand::Rng) -> Value {
    json!({
        "GUID": guid(rng),
        "Name": BUSINESS_OBJECTS[n % BUSINESS_OBJECTS.len()],
    })
}

/// Uppercase, as Enate's sample receiver shows them.
fn guid(rng: &mut fastrand::Rng) -> String {
    let bytes = rng.u128(..).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_upper(&mut Uuid::encode_buffer())
        .to_string()
}

/// ISO 8601 with the offset of a UK instance: `2026-06-01T17:00:00+01:00`.
fn enate_local_time(at: Timestamp) -> String {
    let zone = TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC);
    at.to_zoned_datetime(zone)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// .NET's JSON date: `/Date(1700000000000)/`, milliseconds since the epoch.
fn dotnet_date(at: Timestamp) -> String {
    format!("/Date({})/", at.as_millisecond())
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::normalize::{NormalizeOptions, normalize};

    fn samples(webhook: Webhook, count: usize) -> Vec<Map<String, Value>> {
        let mut rng = fastrand::Rng::with_seed(7);
        let now: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap();
        (0..count)
            .map(|n| match payload(webhook, n, &mut rng, now) {
                Value::Object(map) => map,
                other => panic!("{webhook} sample {n} is not an object: {other}"),
            })
            .collect()
    }

    fn keys(object: &Map<String, Value>) -> Vec<&str> {
        object.keys().map(String::as_str).collect()
    }

    const PACKET_KEYS: [&str; 15] = [
        "GUID",
        "Reference",
        "Title",
        "Status",
        "DueDate",
        "RAGStatus",
        "ProcessType",
        "ProcessTypeName",
        "CustomerName",
        "SupplierName",
        "ContractName",
        "ServiceName",
        "ServiceLineName",
        "StartedbyMethod",
        "ResolvedOn",
    ];

    #[test]
    fn packet_samples_have_enate_packet_fields_and_vary() {
        for webhook in [Webhook::PacketCreated, Webhook::PacketUpdated] {
            let samples = samples(webhook, 6);
            for (n, sample) in samples.iter().enumerate() {
                assert_eq!(keys(sample), PACKET_KEYS, "{webhook} sample {n}");
            }
            let distinct = |key: &str| {
                let mut values: Vec<String> = samples.iter().map(|s| s[key].to_string()).collect();
                values.sort();
                values.dedup();
                values.len()
            };
            assert_eq!(distinct("GUID"), 6, "{webhook}: one packet per sample");
            assert_eq!(distinct("Reference"), 6, "{webhook}");
            assert_eq!(
                distinct("ProcessType"),
                3,
                "{webhook}: case, ticket and action"
            );
            assert!(distinct("Status") >= 2, "{webhook}: statuses vary");
            assert!(distinct("ProcessTypeName") >= 3, "{webhook}");
        }
    }

    #[test]
    fn the_first_packet_updated_is_a_resolved_ticket() {
        let first = &samples(Webhook::PacketUpdated, 1)[0];
        assert_eq!(first["ProcessType"], 2);
        assert_eq!(first["Status"], 4);
        let resolved_on = first["ResolvedOn"].as_str().unwrap();
        assert!(
            resolved_on.starts_with("/Date(") && resolved_on.ends_with(")/"),
            "{resolved_on}"
        );
        assert!(first["Reference"].as_str().unwrap().ends_with("-T"));
    }

    #[test]
    fn packets_not_yet_submitted_have_no_title_nor_due_date() {
        let created = samples(Webhook::PacketCreated, 2);
        assert_eq!(
            created[1]["Status"], 0,
            "the second PacketCreated is a draft"
        );
        assert!(created[1]["Title"].is_null() && created[1]["DueDate"].is_null());
        assert!(created[0]["Title"].is_string() && created[0]["DueDate"].is_string());
    }

    #[test]
    fn communication_samples_have_the_communication_fields() {
        for (n, sample) in samples(Webhook::NewCommunication, 5).iter().enumerate() {
            assert_eq!(
                keys(sample),
                [
                    "GUID",
                    "PacketGUID",
                    "Sender",
                    "From",
                    "CC",
                    "Subject",
                    "AttachmentCount",
                    "CommunicationType"
                ],
                "sample {n}"
            );
            assert_ne!(sample["GUID"], sample["PacketGUID"], "sample {n}");
            assert!(sample["AttachmentCount"].is_u64(), "sample {n}");
        }
    }

    #[test]
    fn business_object_samples_have_a_guid_and_a_name() {
        for webhook in [
            Webhook::BusinessObjectCreated,
            Webhook::BusinessObjectUpdated,
            Webhook::SpecificBusinessObjectUpdated,
        ] {
            for (n, sample) in samples(webhook, 4).iter().enumerate() {
                assert_eq!(keys(sample), ["GUID", "Name"], "{webhook} sample {n}");
            }
        }
    }

    /// The bridge understands every sample without guessing: no warnings, nothing
    /// under `extra`, and each enum a known name.
    #[test]
    fn every_sample_normalizes_cleanly() {
        let options = NormalizeOptions {
            naive_time_zone: TimeZone::UTC,
            include_raw: false,
        };
        for webhook in Webhook::ALL {
            for (n, sample) in samples(webhook, 10).into_iter().enumerate() {
                let text = Value::Object(sample.clone()).to_string();
                let raw = crate::payload::split_body(text.as_bytes())
                    .expect("a sample is one object")
                    .remove(0);
                let data = normalize(raw, &options)
                    .unwrap_or_else(|e| panic!("{webhook} sample {n}: {e:?}"));
                let row = format!("{webhook} sample {n}: {data:?}");
                assert!(data.warnings.is_empty(), "{row}");
                assert!(data.extra.is_empty(), "{row}");
                assert!(data.guid.is_some(), "{row}");
                for name in [
                    data.status,
                    data.process_type,
                    data.rag_status,
                    data.started_by_method,
                    data.communication_type,
                ]
                .into_iter()
                .flatten()
                {
                    assert_ne!(name, "unknown", "{row}");
                }
                if webhook.is_packet_event() {
                    assert!(
                        data.process_type.is_some() && data.status.is_some(),
                        "{row}"
                    );
                }
                if webhook == Webhook::NewCommunication {
                    assert!(data.packet_guid.is_some(), "{row}");
                    assert!(data.communication_type.is_some(), "{row}");
                }
            }
        }
    }

    #[test]
    fn the_default_url_is_server_bind_with_a_wildcard_made_loopback() {
        for (bind, want) in [
            (
                "0.0.0.0:8080",
                "http://127.0.0.1:8080/webhooks/PacketUpdated",
            ),
            ("[::]:8080", "http://[::1]:8080/webhooks/PacketUpdated"),
            (
                "10.1.2.3:9000",
                "http://10.1.2.3:9000/webhooks/PacketUpdated",
            ),
        ] {
            let mut settings = Settings::default();
            settings.server.bind = crate::config::ListenAddress::parse(bind).unwrap();
            assert_eq!(
                default_url(&settings, Webhook::PacketUpdated),
                want,
                "bind {bind}"
            );
        }
    }

    #[test]
    fn webhook_names_parse_as_the_ingress_path_does() {
        assert_eq!(
            parse_webhook("new_communication"),
            Ok(Webhook::NewCommunication)
        );
        assert_eq!(parse_webhook("PacketUpdated"), Ok(Webhook::PacketUpdated));
        let error = parse_webhook("PacketDeleted").unwrap_err().to_string();
        assert!(error.contains("PacketCreated"), "{error}");
    }
}
