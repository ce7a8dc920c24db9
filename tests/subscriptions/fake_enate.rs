//! A fake Enate Web API: a real HTTP server on a free port, holding webhook
//! subscriptions in memory. Its paths and field names are written out here as
//! Enate's pages give them, not taken from the bridge's `enate_api`, so a slip
//! there fails these tests.
//!
//! It is strict where Enate's docs are: every request needs the bearer token,
//! and SubscribeToWebhook needs exactly the six parameters, with a numeric
//! FilterObjectType. It can be told to fail: the next matching request gets a
//! status (a 400 echoes the request body, as some APIs do, secret included), or
//! is carried out and answered late; a filter object can be forbidden (403),
//! as for an account without rights on it.
//!
//! The test operation ("Webhook Test – Simulate Event") does what Enate does:
//! it POSTs a test message to the subscription's SubscriberURL with the
//! subscription's custom header, after answering. Older instances' login
//! (`Authentication/Login`, as Enate's sample receiver calls it) answers a
//! token that is then accepted as the `authToken` query parameter.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use enate_bridge_test_support::certs::TestCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use uuid::Uuid;

pub const TOKEN: &str = "fake-enate-api-token-7f3a";
pub const CLIENT_ID: &str = "enate-bridge-ci";
pub const CLIENT_SECRET: &str = "fake-client-secret-91be";

pub const LIST: &str = "GetAllWebhookSubscriptions";
pub const SUBSCRIBE: &str = "SubscribeToWebhook";
pub const UNSUBSCRIBE: &str = "Unsubscribe";
pub const TOKEN_REQUEST: &str = "token";
pub const TEST: &str = "SimulateEvent";
pub const LOGIN: &str = "Login";
pub const USERNAME: &str = "bridge-account";
pub const PASSWORD: &str = "fake-login-password-3c8d";
/// The token a login answers (with characters that need escaping in a query).
pub const LOGIN_TOKEN: &str = "fake+login/token=e41b";

/// What the next request of an operation gets instead of a normal answer.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answered with this status, not carried out.
    Status(u16),
    /// Carried out, answered after this long.
    SlowAnswer(Duration),
}

/// A subscription as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub guid: Uuid,
    pub webhook: String,
    pub filter_object_guid: String,
    pub filter_object_type: i64,
    pub subscriber_url: String,
    pub custom_header: Option<String>,
    pub custom_header_value: Option<String>,
}

#[derive(Default)]
struct State {
    subscriptions: Vec<Stored>,
    faults: VecDeque<(&'static str, Fault)>,
    forbidden_filters: HashSet<String>,
    /// Operations in the order they arrived (token requests included).
    requests: Vec<&'static str>,
    /// List FilterObjectType as its numeric code rather than its name.
    type_codes: bool,
    /// The test operation answers 200 but sends nothing (Enate cannot reach the URL).
    test_sends_nothing: bool,
    /// What the test operation sent: the SubscriberURL and the status it got.
    test_deliveries: Vec<(String, Option<u16>)>,
}

pub struct FakeEnate {
    /// The Web API's base URL, as `enate.api_url`.
    pub api_url: String,
    /// The token endpoint, as `enate.auth.token_url`.
    pub token_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl FakeEnate {
    pub async fn start() -> FakeEnate {
        Self::start_with(None).await
    }

    /// The fake over HTTPS, with this certificate (for `localhost`): as an
    /// instance behind a company proxy that re-signs traffic looks.
    pub async fn start_https(certificate: &TestCert) -> FakeEnate {
        let chain = vec![CertificateDer::from_pem_slice(certificate.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Self::start_with(Some(config)).await
    }

    async fn start_with(tls: Option<rustls::ServerConfig>) -> FakeEnate {
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/webapi/WebHookSubscription/GetAllWebhookSubscriptions",
                    web::get().to(list),
                )
                .route(
                    "/webapi/WebHookSubscription/SubscribeToWebhook",
                    web::post().to(subscribe),
                )
                .route(
                    "/webapi/WebHookSubscription/Unsubscribe",
                    web::post().to(unsubscribe),
                )
                .route(
                    "/webapi/WebHookSubscription/SimulateEvent",
                    web::get().to(simulate_event),
                )
                .route("/webapi/Authentication/Login", web::post().to(login))
                .route("/oauth/token", web::post().to(token))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0);
        // Over HTTPS, by name: the certificate is for localhost.
        let (server, base) = match tls {
            None => (server.listen(listener), format!("http://127.0.0.1:{port}")),
            Some(config) => (
                server.listen_rustls_0_23(listener, config),
                format!("https://localhost:{port}"),
            ),
        };
        let server = server.unwrap().run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeEnate {
            api_url: format!("{base}/webapi"),
            token_url: format!("{base}/oauth/token"),
            state,
            handle,
        }
    }

    /// A subscription made elsewhere (Enate's UI, another tool, an earlier secret).
    pub fn insert(&self, subscription: Stored) {
        self.state().subscriptions.push(subscription);
    }

    pub fn subscriptions(&self) -> Vec<Stored> {
        self.state().subscriptions.clone()
    }

    /// The next request of `operation` gets `fault` (faults queue up in order).
    pub fn fault_next(&self, operation: &'static str, fault: Fault) {
        self.state().faults.push_back((operation, fault));
    }

    /// Subscribing on this filter object is refused with 403, as for an account
    /// without rights on it.
    pub fn forbid_filter(&self, guid: &str) {
        self.state().forbidden_filters.insert(guid.to_lowercase());
    }

    /// Lists answer FilterObjectType as the numeric code (an instance that does).
    pub fn answer_type_codes(&self) {
        self.state().type_codes = true;
    }

    /// The test operation answers success but sends no message.
    pub fn test_sends_nothing(&self) {
        self.state().test_sends_nothing = true;
    }

    /// The test messages sent: SubscriberURL and the status it answered (None: no answer).
    pub fn test_deliveries(&self) -> Vec<(String, Option<u16>)> {
        self.state().test_deliveries.clone()
    }

    /// The operations requested so far, in order.
    pub fn requests(&self) -> Vec<&'static str> {
        self.state().requests.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for FakeEnate {
    fn drop(&mut self) {
        // The stop command is sent by the call; the future only waits for it.
        drop(self.handle.stop(false));
    }
}

/// Records the request, applies a queued fault, checks the bearer token. `Err`
/// is the answer to give instead; `Ok(Some(delay))` asks for a late answer.
fn admit(
    state: &Mutex<State>,
    operation: &'static str,
    request: &HttpRequest,
    body: &str,
) -> Result<Option<Duration>, Box<HttpResponse>> {
    let mut state = state.lock().unwrap();
    state.requests.push(operation);
    let fault = state
        .faults
        .iter()
        .position(|(op, _)| *op == operation)
        .and_then(|index| state.faults.remove(index))
        .map(|(_, fault)| fault);
    if let Some(Fault::Status(code)) = fault {
        let status = actix_web::http::StatusCode::from_u16(code).unwrap();
        // A 400 echoes what it was sent, as some APIs do: secrets included.
        let answer = if code == 400 {
            json!({"Message": "The request is invalid.", "Request": body})
        } else {
            json!({"Message": "An error has occurred."})
        };
        return Err(Box::new(HttpResponse::build(status).json(answer)));
    }
    let authorization = request
        .headers()
        .get("Authorization")
        .and_then(|value| value.to_str().ok());
    let login_token =
        web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
            .ok()
            .and_then(|query| query.get("authToken").cloned());
    if authorization != Some(&format!("Bearer {TOKEN}"))
        && login_token.as_deref() != Some(LOGIN_TOKEN)
    {
        return Err(Box::new(HttpResponse::Unauthorized().json(
            json!({"Message": "Authorization has been denied for this request."}),
        )));
    }
    Ok(match fault {
        Some(Fault::SlowAnswer(delay)) => Some(delay),
        _ => None,
    })
}

async fn late(delay: Option<Duration>, answer: HttpResponse) -> HttpResponse {
    if let Some(delay) = delay {
        // A slow Enate, the subject of the tests that ask for one (not a wait).
        tokio::time::sleep(delay).await;
    }
    answer
}

fn type_name(code: i64) -> &'static str {
    match code {
        31 => "Company",
        215 => "Contract",
        217 => "Service",
        911 => "Process",
        _ => "None",
    }
}

async fn list(state: web::Data<Mutex<State>>, request: HttpRequest) -> HttpResponse {
    let delay = match admit(&state, LIST, &request, "") {
        Ok(delay) => delay,
        Err(answer) => return *answer,
    };
    // As Enate's page shows it: a bare list, FilterObjectType as a name
    // (or, when told, as its code).
    let items: Vec<Value> = {
        let state = state.lock().unwrap();
        let codes = state.type_codes;
        state
            .subscriptions
            .iter()
            .map(|s| {
                json!({
                    "GUID": s.guid,
                    "Webhook": s.webhook,
                    "FilterObjectGUID": s.filter_object_guid,
                    "FilterObjectType": if codes {
                        json!(s.filter_object_type)
                    } else {
                        json!(type_name(s.filter_object_type))
                    },
                    "SubscriberURL": s.subscriber_url,
                    "Signature": "c2lnbmF0dXJl",
                    "CustomHeader": s.custom_header,
                    "CustomHeaderValue": s.custom_header_value,
                })
            })
            .collect()
    };
    late(delay, HttpResponse::Ok().json(items)).await
}

#[derive(serde::Deserialize)]
struct TestQuery {
    #[serde(rename = "webHookSubscriptionGUID")]
    guid: Uuid,
}

/// "Webhook Test – Simulate Event": answers, then POSTs a test message to the
/// subscription's SubscriberURL with its custom header, as Enate does. The
/// message is a packet as PacketCreated sends it, with a fresh GUID each time.
async fn simulate_event(
    state: web::Data<Mutex<State>>,
    request: HttpRequest,
    query: web::Query<TestQuery>,
) -> HttpResponse {
    let delay = match admit(&state, TEST, &request, "") {
        Ok(delay) => delay,
        Err(answer) => return *answer,
    };
    let (subscription, sends_nothing) = {
        let state = state.lock().unwrap();
        let found = state
            .subscriptions
            .iter()
            .find(|s| s.guid == query.guid)
            .cloned();
        (found, state.test_sends_nothing)
    };
    let Some(subscription) = subscription else {
        return HttpResponse::NotFound()
            .json(json!({"Message": "No webhook subscription with this GUID."}));
    };
    if !sends_nothing {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            let body = json!({
                "GUID": Uuid::new_v4(),
                "Reference": "000001-C",
                "Title": "Webhook test",
                "Status": 1,
                "DueDate": null,
                "RAGStatus": 1,
                "ProcessType": 1,
                "ProcessTypeName": "Webhook Test",
                "CustomerName": "Test Customer",
                "SupplierName": "Test Supplier",
                "ContractName": "Test Contract",
                "ServiceName": "Test Service",
                "ServiceLineName": "Test Service Line",
                "StartedbyMethod": 0,
            });
            let mut post = reqwest::Client::new()
                .post(&subscription.subscriber_url)
                .timeout(Duration::from_secs(10))
                .json(&body);
            if let (Some(header), Some(value)) = (
                &subscription.custom_header,
                &subscription.custom_header_value,
            ) {
                post = post.header(header.as_str(), value.as_str());
            }
            let status = post.send().await.ok().map(|r| r.status().as_u16());
            state
                .lock()
                .unwrap()
                .test_deliveries
                .push((subscription.subscriber_url.clone(), status));
        });
    }
    late(delay, HttpResponse::Ok().json(json!({"Result": true}))).await
}

/// Older instances' login: a JSON body of user name and password; the answer
/// is the token as a JSON string.
async fn login(
    state: web::Data<Mutex<State>>,
    query: web::Query<std::collections::HashMap<String, String>>,
    body: web::Json<Value>,
) -> HttpResponse {
    state.lock().unwrap().requests.push(LOGIN);
    if query.get("useCookie").map(String::as_str) != Some("false") {
        return HttpResponse::BadRequest().json(json!({"Message": "useCookie=false expected"}));
    }
    if body.get("username").and_then(Value::as_str) != Some(USERNAME)
        || body.get("password").and_then(Value::as_str) != Some(PASSWORD)
    {
        // Echoes what it was sent, as some APIs do: the password must still not be printed.
        return HttpResponse::Unauthorized()
            .json(json!({"Message": "Invalid user name or password.", "Request": *body}));
    }
    HttpResponse::Ok().json(LOGIN_TOKEN)
}

async fn subscribe(
    state: web::Data<Mutex<State>>,
    request: HttpRequest,
    body: String,
) -> HttpResponse {
    let delay = match admit(&state, SUBSCRIBE, &request, &body) {
        Ok(delay) => delay,
        Err(answer) => return *answer,
    };
    let json_content = request
        .headers()
        .get("Content-Type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let stored = match (json_content, serde_json::from_str::<Value>(&body)) {
        (true, Ok(value)) => validate(&value),
        _ => Err("the body must be JSON, sent as application/json".to_string()),
    };
    let mut stored = match stored {
        Ok(stored) => stored,
        Err(reason) => return HttpResponse::BadRequest().json(json!({"Message": reason})),
    };
    {
        let mut state = state.lock().unwrap();
        if state
            .forbidden_filters
            .contains(&stored.filter_object_guid.to_lowercase())
        {
            return HttpResponse::Forbidden().json(json!({
                "Message": "The user does not have access to the requested entity."
            }));
        }
        stored.guid = Uuid::new_v4();
        state.subscriptions.push(stored.clone());
    }
    // Wrapped in Result, as Enate's sample receiver reads the answer.
    let answer = json!({"Result": {
        "GUID": stored.guid,
        "Webhook": stored.webhook,
        "FilterObjectGUID": stored.filter_object_guid,
        "FilterObjectType": type_name(stored.filter_object_type),
        "SubscriberURL": stored.subscriber_url,
    }});
    late(delay, HttpResponse::Ok().json(answer)).await
}

/// The six parameters and nothing else, as Enate's page lists them.
fn validate(body: &Value) -> Result<Stored, String> {
    let object = body.as_object().ok_or("the body must be an object")?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected = [
        "CustomHeader",
        "CustomHeaderValue",
        "FilterObjectGUID",
        "FilterObjectType",
        "SubscriberURL",
        "Webhook",
    ];
    if keys != expected {
        return Err(format!("the body has the keys {keys:?}, not {expected:?}"));
    }
    let text = |key: &str| {
        object[key]
            .as_str()
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .ok_or(format!("{key} must be a non-empty string"))
    };
    let webhook = text("Webhook")?;
    let webhooks = [
        "PacketCreated",
        "PacketUpdated",
        "NewCommunication",
        "BusinessObjectCreated",
        "BusinessObjectUpdated",
        "SpecificBusinessObjectUpdated",
    ];
    if !webhooks.contains(&webhook.as_str()) {
        return Err(format!("unknown Webhook {webhook}"));
    }
    let filter_object_type = object["FilterObjectType"]
        .as_i64()
        .filter(|code| [31, 215, 217, 911].contains(code))
        .ok_or("FilterObjectType must be the numeric code 31, 215, 217 or 911")?;
    let filter_object_guid = text("FilterObjectGUID")?;
    Uuid::parse_str(&filter_object_guid).map_err(|_| "FilterObjectGUID must be a GUID")?;
    let subscriber_url = text("SubscriberURL")?;
    if !subscriber_url.starts_with("https://") && !subscriber_url.starts_with("http://") {
        return Err("SubscriberURL must be a URL".into());
    }
    Ok(Stored {
        guid: Uuid::nil(),
        webhook,
        filter_object_guid,
        filter_object_type,
        subscriber_url,
        custom_header: Some(text("CustomHeader")?),
        custom_header_value: Some(text("CustomHeaderValue")?),
    })
}

#[derive(serde::Deserialize)]
struct UnsubscribeQuery {
    #[serde(rename = "webHookSubscriptionGUID")]
    guid: Uuid,
}

async fn unsubscribe(
    state: web::Data<Mutex<State>>,
    request: HttpRequest,
    query: web::Query<UnsubscribeQuery>,
) -> HttpResponse {
    let delay = match admit(&state, UNSUBSCRIBE, &request, "") {
        Ok(delay) => delay,
        Err(answer) => return *answer,
    };
    let removed = {
        let mut state = state.lock().unwrap();
        let before = state.subscriptions.len();
        state.subscriptions.retain(|s| s.guid != query.guid);
        before != state.subscriptions.len()
    };
    let answer = if removed {
        HttpResponse::Ok().json(json!({"Result": true}))
    } else {
        HttpResponse::NotFound().json(json!({"Message": "No webhook subscription with this GUID."}))
    };
    late(delay, answer).await
}

/// An OAuth 2 client-credentials token endpoint.
async fn token(
    state: web::Data<Mutex<State>>,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    state.lock().unwrap().requests.push(TOKEN_REQUEST);
    let get = |key: &str| form.get(key).map(String::as_str);
    if get("grant_type") != Some("client_credentials")
        || get("client_id") != Some(CLIENT_ID)
        || get("client_secret") != Some(CLIENT_SECRET)
    {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    HttpResponse::Ok()
        .json(json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}))
}
