//! A Jepsen-style load: K concurrent HTTP clients, each sending its share of
//! uniquely identifiable Enate-shaped events (Reference "c{client}-{seq}") one
//! after another, recording every answer, while a fault happens. Nothing is
//! retried: the history says exactly what each event was promised.
//!
//! The clients send to one bridge, or spread over several (`Targets`, a load
//! balancer's view of its replicas: one taken out of rotation gets nothing).

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::poll_until;
use serde_json::{Value, json};
use tokio::{task::JoinSet, time::Instant};

use crate::bridge::SECRET;

/// What the bridge answered to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 `published`: confirmed by RabbitMQ.
    Published,
    /// 200 `spooled`: fsynced in the spool.
    Spooled,
    /// 200 `duplicate`: seen before (never expected here: each event is unique).
    Duplicate,
    /// 200 with another body: a 200 whose promise is unknown.
    Other200(String),
    /// 503.
    Unavailable,
    /// Any other status.
    Status(u16),
    /// No HTTP answer (connection refused or reset, timeout).
    Transport(String),
}

impl Answer {
    pub fn is_200(&self) -> bool {
        matches!(
            self,
            Answer::Published | Answer::Spooled | Answer::Duplicate | Answer::Other200(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub reference: String,
    pub answer: Answer,
    /// The event ids of a 200 answer.
    pub event_ids: Vec<String>,
    /// When the request was sent and when its answer came, since the load began.
    pub sent_at: Duration,
    pub answered_at: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub clients: usize,
    pub total: usize,
    /// Events per second over all clients; `None`: as fast as the bridge answers.
    pub rate: Option<f64>,
    /// The references' first letters (`{prefix}{client}-{seq}`), so that two
    /// loads in one test never send the same event.
    pub prefix: &'static str,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            clients: 16,
            total: 3000,
            rate: None,
            prefix: "c",
        }
    }
}

/// The webhook URLs the clients spread their events over, as a load balancer
/// sees its replicas: `None` is a replica out of rotation (down, or not yet
/// back). Cheap to clone; every clone sees changes.
#[derive(Clone)]
pub struct Targets(Arc<RwLock<Vec<Option<String>>>>);

impl Targets {
    pub fn new(urls: Vec<String>) -> Targets {
        Targets(Arc::new(RwLock::new(urls.into_iter().map(Some).collect())))
    }

    /// Puts replica `index` in rotation at `url`, or takes it out (`None`).
    pub fn set(&self, index: usize, url: Option<String>) {
        self.0.write().unwrap()[index] = url;
    }

    /// Event `seq` of `client`: round robin over the replicas in rotation,
    /// each client starting at its own.
    fn pick(&self, client: usize, seq: usize) -> Option<String> {
        let urls = self.0.read().unwrap();
        let live: Vec<&String> = urls.iter().flatten().collect();
        (!live.is_empty()).then(|| live[(client + seq) % live.len()].clone())
    }
}

pub struct Load {
    pub spec: LoadSpec,
    pub started: Instant,
    sent: Arc<AtomicUsize>,
    records: Arc<Mutex<Vec<Record>>>,
    clients: JoinSet<()>,
}

/// The body of event `c{client}-{seq}`.
pub fn event_body(reference: &str) -> Value {
    json!({
        "Reference": reference,
        "ProcessType": 2,
        "Status": 4,
        "Title": format!("fault suite event {reference}"),
        "CustomerName": "Acme",
    })
}

impl Load {
    /// Starts the clients against `url` (the bridge's webhook URL).
    pub fn start(url: String, spec: LoadSpec) -> Load {
        Load::start_on(Targets::new(vec![url]), spec)
    }

    /// Starts the clients against the replicas of `targets`.
    pub fn start_on(targets: Targets, spec: LoadSpec) -> Load {
        // A pooled connection is dropped after 2 s idle, before the bridge's
        // keep-alive (actix-web's 5 s) closes it: reusing a connection the
        // server is closing at that moment fails the request unanswered
        // ("connection closed before message completed"), a race of every
        // HTTP/1.1 client with keep-alive, not a refusal by the bridge.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(spec.clients)
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        let sent = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(Mutex::new(Vec::with_capacity(spec.total)));
        let mut clients = JoinSet::new();
        let per_client = spec.total.div_ceil(spec.clients);
        for client in 0..spec.clients {
            let count = per_client.min(spec.total.saturating_sub(client * per_client));
            let (http, targets, sent, records) =
                (http.clone(), targets.clone(), sent.clone(), records.clone());
            clients.spawn(async move {
                for seq in 0..count {
                    if let Some(rate) = spec.rate {
                        // Client c sends its n-th event at (n * clients + c) / rate:
                        // the load's pacing, not a wait for something.
                        let slot = (seq * spec.clients + client) as f64 / rate;
                        tokio::time::sleep_until(started + Duration::from_secs_f64(slot)).await;
                    }
                    let reference = format!("{}{client}-{seq}", spec.prefix);
                    let sent_at = started.elapsed();
                    sent.fetch_add(1, Ordering::SeqCst);
                    let (answer, event_ids) = match targets.pick(client, seq) {
                        Some(url) => send(&http, &url, &reference).await,
                        None => (
                            Answer::Transport("no replica in rotation".into()),
                            Vec::new(),
                        ),
                    };
                    records.lock().unwrap().push(Record {
                        reference,
                        answer,
                        event_ids,
                        sent_at,
                        answered_at: started.elapsed(),
                    });
                }
            });
        }
        Load {
            spec,
            started,
            sent,
            records,
            clients,
        }
    }

    /// Events sent so far (answered or not).
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Answers so far that match `what`.
    pub fn count(&self, what: impl Fn(&Answer) -> bool) -> usize {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| what(&r.answer))
            .count()
    }

    /// Waits until at least `n` events were sent (or the load ended).
    pub async fn wait_sent(&self, n: usize) {
        let n = n.min(self.spec.total);
        // No bound but the load's own end: it sends `total` events, then stops.
        let _ = poll_until(Duration::MAX, Duration::from_millis(10), || async {
            self.sent() >= n
        })
        .await;
    }

    /// Waits until `what` holds for at least `n` answers, at most `within`;
    /// false when the load ended or time ran out first.
    pub async fn wait_answers(
        &self,
        n: usize,
        what: impl Fn(&Answer) -> bool,
        within: Duration,
    ) -> bool {
        // Every 10 ms: the moment it holds is when the test acts.
        poll_until(within, Duration::from_millis(10), || async {
            if self.count(&what) >= n {
                Some(true)
            } else if self.finished() {
                Some(false)
            } else {
                None
            }
        })
        .await
        .unwrap_or(false)
    }

    pub fn finished(&self) -> bool {
        self.records.lock().unwrap().len() >= self.spec.total
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for every client to finish and returns the history.
    pub async fn finish(mut self) -> History {
        while let Some(result) = self.clients.join_next().await {
            result.expect("a load client panicked");
        }
        let records = std::mem::take(&mut *self.records.lock().unwrap());
        History {
            records,
            duration: self.started.elapsed(),
        }
    }
}

/// Every event sent and what it was answered.
pub struct History {
    pub records: Vec<Record>,
    pub duration: Duration,
}

impl History {
    /// Adds a later load's events to this history.
    pub fn extend(&mut self, later: History) {
        self.records.extend(later.records);
        self.duration += later.duration;
    }
}

async fn send(http: &reqwest::Client, url: &str, reference: &str) -> (Answer, Vec<String>) {
    let response = match http
        .post(url)
        .header("X-Enate-Secret", SECRET)
        .body(event_body(reference).to_string())
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return (Answer::Transport(transport_error(&error)), Vec::new()),
    };
    let status = response.status().as_u16();
    let body: Result<Value, _> = response.json().await;
    match (status, body) {
        (200, Ok(body)) => {
            let ids = body["event_ids"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let answer = match body["status"].as_str() {
                Some("published") => Answer::Published,
                Some("spooled") => Answer::Spooled,
                Some("duplicate") => Answer::Duplicate,
                _ => Answer::Other200(body.to_string()),
            };
            (answer, ids)
        }
        (200, Err(error)) => (
            Answer::Other200(format!("unreadable body: {error}")),
            Vec::new(),
        ),
        (503, _) => (Answer::Unavailable, Vec::new()),
        (status, _) => (Answer::Status(status), Vec::new()),
    }
}

/// A short kind for a transport error (refused, reset, timeout, ...).
fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timeout".into();
    }
    if error.is_connect() {
        return "connect".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}
