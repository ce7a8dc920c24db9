//! TLS to the broker, for real: the `enate-bridge` binary against a private
//! RabbitMQ node with a TLS listener that verifies peers (`verify_peer`) and
//! takes EXTERNAL logins, with certificates the test makes itself (a CA, the
//! node's, the bridge's, and the bad ones: another CA's, expired, for another
//! name). Each test boots its own node (about 6 s); one test runs at a time.
//!
//! - `a_bridge_publishes_over_amqps_...`: `amqp.tls.ca_file`, password login,
//!   then EXTERNAL login with a client certificate (and `quarantine list`
//!   connecting the same way);
//! - `every_certificate_problem_at_start_...`: each stops the start with exit 1
//!   and a message naming its key and the reason (a second node, which wants
//!   a client certificate, for the bridge that has none);
//! - `a_broker_certificate_rotated_...`: `tls_refused` on /readyz and the gauge,
//!   one ERROR line, 200 events spooled and forwarded once fixed;
//! - `the_broker_stopped_under_load_over_tls_...`: the fault suite's checker;
//! - `a_tls_endpoint_that_closes_right_after_the_handshake_...`: no broker, a
//!   TLS server of the test's own (a proxy whose backend is down) that
//!   completes the handshake and closes: unreachable and retried, never a
//!   refused certificate.
//!
//! The test's own connections (declaring and reading the queue) use the
//! node's plain port; the bridge uses only its TLS port.

use std::{
    net::TcpListener,
    path::Path,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use lapin::{
    Connection, ConnectionProperties, options::QueueBindOptions, options::QueueDeclareOptions,
    types::FieldTable,
};
use tokio::sync::{Mutex, MutexGuard};

use enate_bridge_test_support::{
    bridge::Bridge,
    certs::{CertFiles, TestCa, TestCert, Validity},
    checker::{Verdict, drain_queue, wait_spool_drained},
    eventually, init_suite,
    load::{Answer, History, Load, LoadSpec},
    node::{Node, TLS_PORTS, TlsListener},
    proxy::FaultProxy,
};

const REPORT_FILE: &str = "tls-report.txt";
const QUEUE: &str = "tls.all";
/// The name in the node's certificate; the URLs say 127.0.0.1, which it also carries.
const NODE_NAMES: &[&str] = &["localhost", "127.0.0.1"];
/// The bridge's client certificate's common name: its EXTERNAL user.
const CLIENT_CN: &str = "enate-bridge";

static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    init_suite!(REPORT_FILE);
    SERIAL.lock().await
}

/// The test's certificates, written to a folder of their own.
struct Pki {
    ca: TestCa,
    other_ca: TestCa,
    dir: tempfile::TempDir,
    node_cert: TestCert,
}

impl Pki {
    fn new() -> Pki {
        let ca = TestCa::new("enate-bridge test CA");
        let node_cert = ca.server(NODE_NAMES);
        let pki = Pki {
            other_ca: TestCa::new("some other CA"),
            dir: tempfile::tempdir().unwrap(),
            node_cert,
            ca,
        };
        pki.ca.write(pki.path("ca.pem")).unwrap();
        pki.other_ca.write(pki.path("other-ca.pem")).unwrap();
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn client(&self, ca: &TestCa, stem: &str) -> CertFiles {
        ca.client(CLIENT_CN).write(self.dir.path(), stem).unwrap()
    }

    /// A node whose TLS listener serves `node_cert` and verifies client
    /// certificates against `ca` (a client may present none).
    async fn node(&self, test: &str) -> Node {
        self.node_with(test, false).await
    }

    /// `node`; with `fail_if_no_peer_cert`, a client must present a certificate.
    async fn node_with(&self, test: &str, fail_if_no_peer_cert: bool) -> Node {
        let node = Node::prepare_tls(
            test,
            TLS_PORTS,
            &TlsListener {
                ca_pem: &self.ca.cert_pem(),
                server: &self.node_cert,
                fail_if_no_peer_cert,
            },
        );
        node.boot().await;
        node
    }
}

fn temp_spool() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("enate-bridge-tls-spool")
        .tempdir()
        .unwrap()
}

/// The queue the checker reads, bound to the bridge's exchange with '#'
/// (once the bridge has declared it).
async fn declare_bound_queue(amqp_url: &str) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("the test connects to its node");
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the test declares its queue");
    channel
        .queue_bind(
            QUEUE.into(),
            "enate".into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("the test binds its queue");
    let _ = connection.close(200, "declared".into()).await;
}

async fn check(name: &str, node: &Node, bridge: &Bridge, history: &History) -> Verdict {
    let drain = wait_spool_drained(bridge, Duration::from_secs(90)).await;
    let delivered = drain_queue(&node.url(), QUEUE).await;
    let mut verdict = Verdict::compute(name, history, &delivered);
    verdict.note(format!("drain={:.1}s", drain.as_secs_f64()));
    verdict
}

/// Runs `enate-bridge serve` until it exits (it must, within 60 s); returns
/// its exit code and everything it printed.
async fn serve_until_exit(amqp_url: &str, spool: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .arg("serve")
        .env("ENATE_BRIDGE__AUTH__SECRETS", "tls-secret")
        .env("ENATE_BRIDGE__SERVER__BIND", "127.0.0.1:0")
        .env("ENATE_BRIDGE__ADMIN__BIND", "127.0.0.1:0")
        .env("ENATE_BRIDGE__AMQP__URLS", amqp_url)
        .env("ENATE_BRIDGE__SPOOL__DIR", spool)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the enate-bridge binary starts");
    let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut text).await;
            }
            text
        })
    };
    let mut child = child;
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    // A bridge still running after a minute has not stopped its start: the
    // test fails with what it printed.
    let code = match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(status) => status.unwrap().code().unwrap_or(-1),
        Err(_) => {
            let _ = child.kill().await;
            -1
        }
    };
    let text = format!("{}{}", stdout.await.unwrap(), stderr.await.unwrap());
    (code, text)
}

/// Posts one event; returns the answer's `status` word.
async fn post_one(bridge: &Bridge, reference: &str) -> String {
    let response = bridge
        .client
        .post(bridge.webhook_url())
        .header("X-Enate-Secret", enate_bridge_test_support::bridge::SECRET)
        .json(&enate_bridge_test_support::load::event_body(reference))
        .send()
        .await
        .expect("the bridge answers");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_publishes_over_amqps_trusting_its_ca_file_with_a_password_or_a_client_certificate()
 {
    let _serial = serial().await;
    let pki = Pki::new();
    let node = pki.node("tls-publish").await;
    let ca_file = pki.path("ca.pem");

    // A private CA trusted with ca_file, password login.
    let spool = temp_spool();
    let url = node.tls_url("guest:guest@", "");
    let bridge = Bridge::start_with(
        &url,
        spool.path(),
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file)],
    )
    .await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url()).await;
    assert_eq!(post_one(&bridge, "password-1").await, "published");
    drop(bridge);

    // EXTERNAL: the client certificate is the login (its common name the user).
    node.add_certificate_user(CLIENT_CN).await;
    let client = pki.client(&pki.ca, "client");
    let spool = temp_spool();
    let url = node.tls_url("", "?auth_mechanism=external");
    let bridge = Bridge::start_with(
        &url,
        spool.path(),
        &[
            ("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file),
            (
                "ENATE_BRIDGE__AMQP__TLS__CERT_FILE",
                &client.cert.display().to_string(),
            ),
            (
                "ENATE_BRIDGE__AMQP__TLS__KEY_FILE",
                &client.key.display().to_string(),
            ),
        ],
    )
    .await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    assert_eq!(post_one(&bridge, "external-1").await, "published");
    let connections = node
        .ctl_async(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "user",
            "auth_mechanism",
            "ssl",
            "ssl_protocol",
        ])
        .await
        .unwrap();
    assert!(
        connections
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == [CLIENT_CN, "EXTERNAL", "true", "tlsv1.3"]),
        // TLS 1.3: the node's refusals in the start test go through the
        // bridge's verdict window, which only TLS 1.3 connections wait.
        "the bridge logged in as {CLIENT_CN} with EXTERNAL over TLS 1.3: {connections}"
    );
    drop(bridge);

    // The command-line tools connect as the bridge does: `quarantine list`
    // over the TLS port, with the same ca_file and client certificate.
    let listed = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .args(["quarantine", "list", "--json"])
        .env("ENATE_BRIDGE__AMQP__URLS", &url)
        .env("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file)
        .env("ENATE_BRIDGE__AMQP__TLS__CERT_FILE", &client.cert)
        .env("ENATE_BRIDGE__AMQP__TLS__KEY_FILE", &client.key)
        .env("ENATE_BRIDGE__AUTH__SECRETS", "unused-by-quarantine-list")
        .output()
        .await
        .unwrap();
    assert!(
        listed.status.success(),
        "quarantine list over amqps with a client certificate: {}",
        String::from_utf8_lossy(&listed.stderr)
    );

    let mut delivered = drain_queue(&node.url(), QUEUE).await;
    delivered.sort();
    assert_eq!(delivered, ["external-1", "password-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_certificate_problem_at_start_stops_it_with_exit_1_naming_the_key_and_the_reason() {
    let _serial = serial().await;
    let pki = Pki::new();
    let node = pki.node("tls-start").await;
    let url = node.tls_url("guest:guest@", "");
    let ca_file = pki.path("ca.pem");
    let other_ca_file = pki.path("other-ca.pem");
    let stranger = pki.client(&pki.other_ca, "stranger");
    let (stranger_cert, stranger_key) = (
        stranger.cert.display().to_string(),
        stranger.key.display().to_string(),
    );
    // Each case: what is wrong, the bridge's settings, what its message must say.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "the broker's certificate from a CA not in ca_file",
            vec![("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &other_ca_file)],
            &["amqp.tls.ca_file", "UnknownIssuer"],
        ),
        (
            "the system's roots, which do not hold the test's CA",
            vec![],
            &["amqp.tls.ca_file", "UnknownIssuer"],
        ),
        (
            "a certificate for other names than server_name",
            vec![
                ("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file),
                ("ENATE_BRIDGE__AMQP__TLS__SERVER_NAME", "broker.example"),
            ],
            &[
                "amqp.tls.server_name",
                "not valid for name \"broker.example\"",
            ],
        ),
        (
            "a client certificate from a CA the broker does not trust",
            vec![
                ("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file),
                ("ENATE_BRIDGE__AMQP__TLS__CERT_FILE", &stranger_cert),
                ("ENATE_BRIDGE__AMQP__TLS__KEY_FILE", &stranger_key),
            ],
            // Its alert, every time: the reset that used to race it
            // (see `CERTIFICATE_VERDICT_WINDOW` in src/amqp/tls.rs) is gone.
            &[
                "amqp.tls.cert_file",
                "refused the bridge's TLS client certificate",
                "received fatal alert: UnknownCA",
            ],
        ),
    ];
    let mut failures = Vec::new();
    let mut check_case = async |case: &str, env: &[(&str, &str)], needles: &[&str]| {
        let spool = temp_spool();
        let started = Instant::now();
        let (code, output) = serve_until_exit(&url, spool.path(), env).await;
        let named = needles.iter().all(|needle| output.contains(needle));
        if code != 1 || !named || output.contains("guest:guest") {
            failures.push(format!(
                "{case}: exit {code}, expected 1 and {needles:?} in:\n{output}"
            ));
        }
        eprintln!(
            "tls: {case}: exit {code} after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    };
    for (case, env, needles) in &cases {
        check_case(case, env, needles).await;
    }
    // An expired certificate on the broker.
    node.replace_server_certificate(&pki.ca.server_with(NODE_NAMES, Validity::Expired))
        .await;
    check_case(
        "the broker's certificate expired",
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file)],
        &["amqp.tls.ca_file", "certificate expired"],
    )
    .await;
    drop(node);

    // A broker that wants a client certificate, and the bridge has none.
    let strict = pki.node_with("tls-start-strict", true).await;
    let url = strict.tls_url("guest:guest@", "");
    let spool = temp_spool();
    let (code, output) = serve_until_exit(
        &url,
        spool.path(),
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &ca_file)],
    )
    .await;
    eprintln!("tls: no client certificate for a broker that wants one: exit {code}");
    if code != 1
        || !output.contains("refused the bridge's TLS client certificate")
        || !output.contains("received fatal alert: CertificateRequired")
    {
        failures.push(format!(
            "no client certificate: exit {code}, expected 1 and the refusal in:\n{output}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_rotated_to_an_untrusted_one_is_tls_refused_spooled_and_forwarded_once_fixed()
 {
    let _serial = serial().await;
    let pki = Pki::new();
    let node = pki.node("tls-rotated").await;
    // Through a proxy that counts the bridge's connection attempts.
    let proxy = FaultProxy::start(&node.tls_url("guest:guest@", "")).await;
    let spool = temp_spool();
    let bridge = Bridge::start_with(
        &format!("amqps://guest:guest@127.0.0.1:{}/%2f", proxy.port),
        spool.path(),
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &pki.path("ca.pem"))],
    )
    .await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url()).await;
    assert_eq!(bridge.metric("enate_bridge_amqp_tls_refused").await, 0.0);

    // The broker's certificate rotated to one from a CA the bridge does not
    // trust; the connection is cut, as a broker restart would.
    let attempts_before = proxy.forwarded();
    node.replace_server_certificate(&pki.other_ca.server(NODE_NAMES))
        .await;
    node.close_all_connections().await;
    let rotated_at = Instant::now();
    let readyz = eventually(
        Duration::from_secs(30),
        "tls_refused to show on /readyz",
        || async {
            match bridge.readyz().await {
                Ok((_, body)) if body["broker"]["status"] == "tls_refused" => Ok(body),
                last => Err(format!("{last:?}")),
            }
        },
    )
    .await;
    let noticed = rotated_at.elapsed();
    assert_eq!(bridge.metric("enate_bridge_amqp_tls_refused").await, 1.0);
    assert!(
        readyz["broker"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("amqp.tls.ca_file")
                && reason.contains("UnknownIssuer")
                && !reason.contains("guest:guest")),
        "{readyz}"
    );
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            total: 200,
            ..LoadSpec::default()
        },
    );
    let history = load.finish().await;
    let spooled = history
        .records
        .iter()
        .filter(|r| r.answer == Answer::Spooled)
        .count();
    // Several handshakes refused (the proxy counts the attempts), one ERROR line.
    eventually(
        Duration::from_secs(30),
        "the bridge to have tried 3 more handshakes",
        || async {
            match proxy.forwarded() - attempts_before {
                tried if tried >= 3 => Ok(()),
                tried => Err(format!("{tried} tried")),
            }
        },
    )
    .await;
    let error_lines = bridge.log_lines_with("failed on a certificate").len();

    node.replace_server_certificate(&pki.node_cert).await;
    let fixed_at = Instant::now();
    bridge.wait_broker_connected(Duration::from_secs(60)).await;
    let reconnect = fixed_at.elapsed();
    assert_eq!(bridge.metric("enate_bridge_amqp_tls_refused").await, 0.0);
    let mut verdict = check("tls-rotated", &node, &bridge, &history).await;
    verdict.note(format!(
        "noticed_after={:.1}s tls_error_lines={error_lines} reconnect_after_fix={:.1}s",
        noticed.as_secs_f64(),
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert_eq!(
        spooled, 200,
        "every event was spooled while TLS was refused"
    );
    assert_eq!(error_lines, 1, "one ERROR line per change, not per attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_stopped_under_load_over_tls_and_started_again_loses_nothing() {
    let _serial = serial().await;
    let pki = Pki::new();
    let node = pki.node("tls-stopped").await;
    let spool = temp_spool();
    let bridge = Bridge::start_with(
        &node.tls_url("guest:guest@", ""),
        spool.path(),
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &pki.path("ca.pem"))],
    )
    .await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url()).await;
    let load = Load::start(
        bridge.webhook_url(),
        // Paced, so that the outage (stop, 5 s, boot) falls inside the load.
        LoadSpec {
            total: 1200,
            rate: Some(100.0),
            ..LoadSpec::default()
        },
    );
    load.wait_sent(load.spec.total / 4).await;
    let stopped_at = Instant::now();
    node.stop().await;
    let sent_at_stop = load.sent();
    // The outage's length, the subject of the test (not a wait for something).
    tokio::time::sleep_until((stopped_at + Duration::from_secs(5)).into()).await;
    node.boot().await;
    let started = Instant::now();
    bridge.wait_broker_connected(Duration::from_secs(60)).await;
    let reconnect = started.elapsed();
    let history = load.finish().await;
    let mut verdict = check("tls-broker-stop", &node, &bridge, &history).await;
    verdict.note(format!(
        "stopped_after={sent_at_stop} reconnect={:.1}s",
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert!(
        verdict.spooled > 0,
        "the outage was not spooled: {}",
        verdict.line()
    );
}

/// A TLS server (rustls, TLS 1.2 and 1.3, `cert` as its certificate, no
/// client certificate asked for) that completes each handshake, sends its
/// session tickets, and closes: with close_notify on every other connection,
/// without it on the others. What a TLS-terminating proxy or load balancer
/// whose backend is down does. Returns its port and how many handshakes it
/// completed.
fn cut_after_handshake_server(cert: &TestCert) -> (u16, Arc<AtomicUsize>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    // Lives as long as the test process; one connection at a time is plenty.
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            let mut shook = true;
            while tls.is_handshaking() {
                if tls.complete_io(&mut socket).is_err() {
                    shook = false;
                    break;
                }
            }
            if !shook {
                continue;
            }
            let nth = counted.fetch_add(1, Ordering::SeqCst);
            if nth % 2 == 1 {
                tls.send_close_notify();
            }
            while tls.wants_write() {
                if tls.write_tls(&mut socket).is_err() {
                    break;
                }
            }
            drop(socket);
        }
    });
    (port, handshakes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_endpoint_that_closes_right_after_the_handshake_is_unreachable_and_retried_not_a_refused_certificate()
 {
    let _serial = serial().await;
    let pki = Pki::new();
    let (port, handshakes) = cut_after_handshake_server(&pki.node_cert);
    let spool = temp_spool();
    // No client certificate configured: the old heuristic called this a
    // refused client certificate and stopped the start with exit 1.
    let bridge = Bridge::start_with(
        &format!("amqps://guest:guest@127.0.0.1:{port}/%2f"),
        spool.path(),
        &[("ENATE_BRIDGE__AMQP__TLS__CA_FILE", &pki.path("ca.pem"))],
    )
    .await;
    // Several completed handshakes, each cut (with and without close_notify),
    // and the bridge still runs and answers.
    eventually(
        Duration::from_secs(30),
        "the bridge to complete 4 handshakes with the cutting endpoint",
        || async {
            match handshakes.load(Ordering::SeqCst) {
                done if done >= 4 => Ok(()),
                done => Err(format!("{done} handshakes")),
            }
        },
    )
    .await;
    let (_, readyz) = bridge.readyz().await.expect("the bridge still runs");
    assert_eq!(readyz["broker"]["status"], "unavailable", "{readyz}");
    let reason = readyz["broker"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("right after the handshake")
            && !reason.contains("client certificate")
            && !reason.contains("guest:guest"),
        "{readyz}"
    );
    assert_eq!(bridge.metric("enate_bridge_amqp_tls_refused").await, 0.0);
    assert!(
        bridge.log_lines_with("failed on a certificate").is_empty(),
        "no certificate ERROR line"
    );
    assert_eq!(post_one(&bridge, "spooled-1").await, "spooled");
}
