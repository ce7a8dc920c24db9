//! The real `enate-bridge` binary as a subprocess, configured by environment
//! variables, so it can be killed -9, stopped with SIGTERM and restarted on
//! the same spool. Its JSON log is kept for the report.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::eventually;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};

pub const SECRET: &str = "faults-secret";

pub struct Bridge {
    child: Option<Child>,
    pub ingress_port: u16,
    pub admin_port: u16,
    /// `amqp.urls`: one URL, or several separated by commas.
    pub amqp_url: String,
    pub spool_dir: PathBuf,
    /// Settings beside the defaults below (later ones win), kept for restarts.
    env: Vec<(String, String)>,
    /// Every log line of every run, as received.
    pub log: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

impl Bridge {
    /// Starts the binary against `amqp_url` with its spool in `spool_dir`, and
    /// waits for its "enate-bridge listening" line.
    pub async fn start(amqp_url: &str, spool_dir: &Path) -> Bridge {
        Bridge::start_with(amqp_url, spool_dir, &[]).await
    }

    /// `start`, with more `ENATE_BRIDGE__...` settings (they win over the defaults).
    pub async fn start_with(amqp_url: &str, spool_dir: &Path, env: &[(&str, &str)]) -> Bridge {
        let mut bridge = Bridge {
            child: None,
            ingress_port: 0,
            admin_port: 0,
            amqp_url: amqp_url.to_string(),
            spool_dir: spool_dir.to_path_buf(),
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            log: Arc::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        bridge.spawn().await;
        bridge
    }

    async fn spawn(&mut self) {
        let mut child = Command::new(crate::suite::get().bridge_binary)
            .arg("serve")
            .env("ENATE_BRIDGE__AUTH__SECRETS", SECRET)
            .env("ENATE_BRIDGE__SERVER__BIND", "127.0.0.1:0")
            .env("ENATE_BRIDGE__ADMIN__BIND", "127.0.0.1:0")
            .env("ENATE_BRIDGE__AMQP__URLS", &self.amqp_url)
            .env("ENATE_BRIDGE__AMQP__HEARTBEAT_SECS", "2")
            .env("ENATE_BRIDGE__AMQP__CONFIRM_TIMEOUT_MS", "2000")
            .env("ENATE_BRIDGE__SPOOL__DIR", &self.spool_dir)
            .env("ENATE_BRIDGE__LOG__FORMAT", "json")
            .env("ENATE_BRIDGE__LOG__LEVEL", "warn,enate_bridge=info")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the enate-bridge binary starts");
        let (ports, listening) = oneshot::channel();
        let mut ports = Some(ports);
        let log = self.log.clone();
        let stdout = child.stdout.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["message"] == "enate-bridge listening"
                    && let Some(ports) = ports.take()
                {
                    let port = |key: &str| entry[key].as_u64().unwrap_or(0) as u16;
                    let _ = ports.send((port("ingress_port"), port("admin_port")));
                }
                log.lock().unwrap().push(line);
            }
        });
        let log = self.log.clone();
        let stderr = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        let (ingress, admin) = match tokio::time::timeout(Duration::from_secs(30), listening).await
        {
            Ok(Ok(ports)) => ports,
            _ => panic!(
                "the bridge did not log \"enate-bridge listening\"; its log:\n{}",
                self.log.lock().unwrap().join("\n")
            ),
        };
        self.ingress_port = ingress;
        self.admin_port = admin;
        self.child = Some(child);
    }

    pub fn webhook_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/webhooks/PacketUpdated",
            self.ingress_port
        )
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// `GET /spool`.
    pub async fn spool(&self) -> Result<Value, String> {
        let response = self
            .client
            .get(self.admin_url("/spool"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json().await.map_err(|e| e.to_string())
    }

    /// The value of one series of /metrics (0 when absent or unreachable).
    pub async fn metric(&self, series: &str) -> f64 {
        let Ok(response) = self.client.get(self.admin_url("/metrics")).send().await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The whole /metrics page (empty when unreachable).
    pub async fn metrics_text(&self) -> String {
        match self.client.get(self.admin_url("/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// `GET /readyz`: (status code, body).
    pub async fn readyz(&self) -> Result<(u16, Value), String> {
        let response = self
            .client
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.map_err(|e| e.to_string())?))
    }

    /// Waits until /readyz says the broker is connected.
    pub async fn wait_broker_connected(&self, within: Duration) {
        eventually(within, "the bridge to connect to RabbitMQ", || async {
            match self.readyz().await {
                Ok((200, body)) if body["broker"]["status"] == "connected" => Ok(()),
                other => Err(format!("/readyz {other:?}")),
            }
        })
        .await
    }

    /// kill -9, waiting for the process to be gone.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("the bridge runs");
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }

    /// SIGTERM; returns the exit status (the process is killed if it has not
    /// exited within `within`, and then this panics).
    pub async fn sigterm(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the bridge runs");
        let pid = child.id().unwrap().to_string();
        crate::node::run("kill", &["-TERM", &pid]).expect("kill -TERM");
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                panic!(
                    "the bridge did not exit within {within:?} of SIGTERM; its log ends with:\n{}",
                    self.log_tail(40)
                );
            }
        }
    }

    /// SIGTERM (kill -9 if that takes more than 20 s), without judging the outcome.
    pub async fn stop_any_way(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let _ = crate::node::run("kill", &["-TERM", &pid]);
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    }

    /// Starts the binary again on the same spool (new ports), after it stopped.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped bridge");
        self.log
            .lock()
            .unwrap()
            .push("---- faults: bridge restarted ----".into());
        self.spawn().await;
    }

    /// The URLs (password redacted) of every connection the bridge made, in
    /// order, from its "connected to RabbitMQ" log lines: the last one is the
    /// node it publishes to, once /readyz says connected.
    pub fn connections(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                (entry["message"] == "connected to RabbitMQ")
                    .then(|| entry["url"].as_str().map(String::from))?
            })
            .collect()
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines that are not the per-request "webhook handled" lines: what the
    /// bridge said about its connection, spool and shutdown.
    pub fn notable_log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| !line.contains("\"webhook handled\""))
            .cloned()
            .collect()
    }

    /// Log lines mentioning `needle` (e.g. an event id).
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }
}
