//! A private RabbitMQ node for one fault test: its own name, ports and folder,
//! so it can be stopped, killed, restarted and alarmed without touching the
//! machine's shared broker on 5672. Dropping it stops it (even during a panic)
//! and deletes its folder.
//!
//! It needs its own RABBITMQ_CONFIG_FILE (`listeners.tcp.local`) and an empty
//! RABBITMQ_CONF_ENV_FILE, because the machine's /etc/rabbitmq files pin the
//! shared node's name and port 5672 (see scripts/test, which does the same).
//!
//! The cluster suite (tests/cluster) uses it too: it prepares several nodes on
//! its own port range, boots them at once and joins them. The TLS suite
//! (tests/tls) prepares nodes with a TLS listener too (`prepare_tls`).

use std::{
    collections::HashSet,
    hash::{Hash, Hasher},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{certs::TestCert, eventually, eventually_every, poll_until};
use lapin::{Connection, ConnectionProperties};

/// How long a node gets to boot (about 6 s here; more on a loaded machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Where a suite's nodes take their ports: AMQP ports in `first..first + span`,
/// each node's distribution port `dist_offset` above its AMQP port. Both
/// below the ephemeral range (32768+), so that no outgoing connection takes
/// one between the check that it is free and the node's bind.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub first: u16,
    pub span: u16,
    pub dist_offset: u16,
}

/// The single-node fault suite: AMQP 20000-23999, distribution 24000-27999.
pub const FAULTS_PORTS: Ports = Ports {
    first: 20_000,
    span: 4_000,
    dist_offset: 4_000,
};

/// The TLS suite: AMQP 12000-12499, TLS `TLS_PORT_OFFSET` above (12500-12999),
/// distribution 13000-13499.
pub const TLS_PORTS: Ports = Ports {
    first: 12_000,
    span: 500,
    dist_offset: 1_000,
};
/// A TLS node's TLS listener, above its plain AMQP port.
pub const TLS_PORT_OFFSET: u16 = 500;

/// A node's TLS listener: the CA it trusts for client certificates, its own
/// certificate, and whether a client must present one.
pub struct TlsListener<'a> {
    pub ca_pem: &'a str,
    pub server: &'a TestCert,
    pub fail_if_no_peer_cert: bool,
}

pub struct Node {
    pub name: String,
    pub port: u16,
    /// The TLS listener's port, for a node made by `prepare_tls`.
    pub tls_port: Option<u16>,
    dist_port: u16,
    dir: PathBuf,
    /// Each start's `setsid rabbitmq-server`: the leader of the node's process group.
    servers: std::sync::Mutex<Vec<std::process::Child>>,
}

impl Node {
    /// Starts a node named after `test` and this process, and waits until an
    /// AMQP connection to it succeeds.
    pub async fn start(test: &str) -> Node {
        let node = Node::prepare(test, FAULTS_PORTS);
        node.boot().await;
        node
    }

    /// A node named after `test` and this process, with its folder, ports and
    /// configuration, not started yet (`boot` starts it).
    pub fn prepare(test: &str, ports: Ports) -> Node {
        Node::prepare_with(test, ports, None)
    }

    /// `prepare`, with a TLS listener `TLS_PORT_OFFSET` above the AMQP port
    /// (which stays, for the test's own connections): `verify_peer` against
    /// `tls.ca_pem`, and EXTERNAL login (the `rabbitmq_auth_mechanism_ssl`
    /// plugin, the user name from the client certificate's common name)
    /// beside PLAIN. Its files are in the node's `tls/` folder.
    pub fn prepare_tls(test: &str, ports: Ports, tls: &TlsListener<'_>) -> Node {
        Node::prepare_with(test, ports, Some(tls))
    }

    fn prepare_with(test: &str, ports: Ports, tls: Option<&TlsListener<'_>>) -> Node {
        require_rabbitmq();
        let pid = std::process::id();
        let slug: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let extra = tls.map(|_| TLS_PORT_OFFSET);
        let (port, dist_port) = free_ports(test, pid, ports, extra);
        let tls_port = extra.map(|offset| port + offset);
        let dir = std::env::temp_dir().join(format!("enate-bridge-faults-{slug}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the node's folder can be created");
        }
        let mut conf = format!("listeners.tcp.local = 127.0.0.1:{port}\n");
        if let (Some(tls), Some(tls_port)) = (tls, tls_port) {
            let files = dir.join("tls");
            std::fs::create_dir_all(&files).unwrap();
            std::fs::write(files.join("ca.pem"), tls.ca_pem).unwrap();
            tls.server.write(&files, "server").unwrap();
            let f = |name: &str| files.join(name).display().to_string();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = {}\n\
                 auth_mechanisms.1 = PLAIN\n\
                 auth_mechanisms.2 = AMQPLAIN\n\
                 auth_mechanisms.3 = EXTERNAL\n\
                 ssl_cert_login_from = common_name\n",
                f("ca.pem"),
                f("server.pem"),
                f("server.key"),
                tls.fail_if_no_peer_cert
            ));
            std::fs::write(
                dir.join("enabled_plugins"),
                "[rabbitmq_auth_mechanism_ssl].\n",
            )
            .unwrap();
        }
        std::fs::write(dir.join("rabbitmq.conf"), conf).unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        // The server drops to the rabbitmq user: it must own its folder.
        run("chown", &["-R", "rabbitmq:rabbitmq", dir.to_str().unwrap()])
            .expect("chown of the node's folder to rabbitmq");
        Node {
            name: format!("faults-{slug}-{pid}@localhost"),
            port,
            tls_port,
            dist_port,
            dir,
            servers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The node's own folder (owned by the rabbitmq user).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the server on this node's folder and ports (first start or restart:
    /// durable queues and persistent messages survive) and waits until it takes
    /// AMQP connections.
    pub async fn boot(&self) {
        let started = Instant::now();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("out.txt"))
            .unwrap();
        let dir = &self.dir;
        let server = Command::new("setsid")
            .arg("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags"))
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("rabbitmq-server can be started");
        self.servers.lock().unwrap().push(server);
        let fails = |why: String| -> ! {
            panic!(
                "the private RabbitMQ node {} did not take AMQP connections ({why}); its output:\n{}",
                self.name,
                std::fs::read_to_string(self.dir.join("out.txt")).unwrap_or_default()
            )
        };
        // Every 200 ms: each probe opens an AMQP connection.
        let booted = poll_until(BOOT_TIMEOUT, Duration::from_millis(200), || async {
            if let Ok(Ok(connection)) = tokio::time::timeout(
                Duration::from_secs(5),
                Connection::connect(&self.url(), ConnectionProperties::default()),
            )
            .await
            {
                let _ = connection.close(200, "ready".into()).await;
                return true;
            }
            let exited = self
                .servers
                .lock()
                .unwrap()
                .last_mut()
                .and_then(|server| server.try_wait().ok().flatten());
            if let Some(status) = exited {
                fails(format!("rabbitmq-server exited: {status}"));
            }
            false
        })
        .await;
        if booted.is_err() {
            fails(format!("not within {BOOT_TIMEOUT:?}"));
        }
        eprintln!(
            "faults: node {} ready on 127.0.0.1:{} in {:.1} s",
            self.name,
            self.port,
            started.elapsed().as_secs_f64()
        );
    }

    /// A clean stop (`rabbitmqctl stop`), returning once the server process is gone.
    pub async fn stop(&self) {
        let pid = self.beam_pid();
        let output = self.ctl_async(&["stop"]).await;
        assert!(
            output.is_ok(),
            "rabbitmqctl -n {} stop failed: {output:?}",
            self.name
        );
        if let Some(pid) = pid {
            wait_gone(pid, Duration::from_secs(30)).await;
        }
    }

    /// A crash: kill -9 of the node's beam.smp.
    pub async fn kill9(&self) {
        let pid = self
            .beam_pid()
            .expect("the node's pid file names its beam.smp");
        run("kill", &["-9", &pid.to_string()]).expect("kill -9 of beam.smp");
        wait_gone(pid, Duration::from_secs(10)).await;
    }

    /// The TLS listener's URL with `userinfo` (`guest:guest@`, or empty for
    /// EXTERNAL login) and `query` (`?auth_mechanism=external`, or empty).
    pub fn tls_url(&self, userinfo: &str, query: &str) -> String {
        let port = self.tls_port.expect("a node made by prepare_tls");
        format!("amqps://{userinfo}127.0.0.1:{port}/%2f{query}")
    }

    /// Serves `server` to new TLS connections from now on (a certificate
    /// rotated on the broker): its files replaced, and Erlang's cache of PEM
    /// files cleared, which would otherwise keep the old one for minutes.
    /// Connections already open keep theirs.
    pub async fn replace_server_certificate(&self, server: &TestCert) {
        server
            .write(&self.dir.join("tls"), "server")
            .expect("writing the node's new certificate");
        self.ctl_async(&["eval", "ssl:clear_pem_cache()."])
            .await
            .expect("clearing the node's PEM cache");
    }

    /// A user without a password, for EXTERNAL login with a client
    /// certificate whose common name is `name`, allowed everything on `/`.
    pub async fn add_certificate_user(&self, name: &str) {
        for args in [
            vec!["add_user", name, "unused-password"],
            vec!["clear_password", name],
            vec!["set_permissions", "-p", "/", name, ".*", ".*", ".*"],
        ] {
            self.ctl_async(&args)
                .await
                .expect("adding the certificate's user");
        }
    }

    /// Memory alarm: the broker blocks every publishing connection.
    pub async fn set_memory_alarm(&self) {
        self.ctl_async(&["set_vm_memory_high_watermark", "0.0000001"])
            .await
            .expect("setting the memory watermark");
    }

    pub async fn lift_memory_alarm(&self) {
        self.ctl_async(&["set_vm_memory_high_watermark", "0.4"])
            .await
            .expect("resetting the memory watermark");
    }

    /// Sets the password of the node's `guest` user (the bridge logs in as guest).
    pub async fn set_guest_password(&self, password: &str) {
        self.ctl_async(&["change_password", "guest", password])
            .await
            .expect("changing guest's password");
    }

    /// A vhost guest may use, with at most `limit` connections.
    pub async fn add_vhost_with_connection_limit(&self, vhost: &str, limit: u32) {
        for args in [
            vec!["add_vhost", vhost],
            vec!["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        ] {
            self.ctl_async(&args).await.expect("preparing the vhost");
        }
        let limits = format!("{{\"max-connections\": {limit}}}");
        self.ctl_async(&["set_vhost_limits", "-p", vhost, &limits])
            .await
            .expect("limiting the vhost's connections");
    }

    /// Closes every client connection, as a broker restart would.
    pub async fn close_all_connections(&self) {
        self.ctl_async(&["close_all_connections", "the fault suite closes it"])
            .await
            .expect("closing the connections");
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    fn beam_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Makes this (running, blank) node a member of `seed`'s cluster, as
    /// RabbitMQ's clustering guide does it: stop_app, join_cluster, start_app.
    /// A failed attempt is undone (the seed forgets the node, the node is reset)
    /// and tried again, twice at most: under load a join can leave mnesia unable
    /// to start.
    pub async fn join_cluster(&self, seed: &Node) {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match self.try_join_cluster(seed).await {
                Ok(()) => return,
                Err(error) if attempt < ATTEMPTS => {
                    eprintln!(
                        "faults: {} could not join {} (attempt {attempt}), resetting: {error}",
                        self.name, seed.name
                    );
                    let _ = self.ctl_async(&["stop_app"]).await;
                    // The seed may already count this node as a member.
                    let _ = seed
                        .ctl_async(&["forget_cluster_node", self.name.as_str()])
                        .await;
                    let _ = self.ctl_async(&["reset"]).await;
                }
                Err(error) => panic!(
                    "{} could not join the cluster of {}: {error}",
                    self.name, seed.name
                ),
            }
        }
    }

    async fn try_join_cluster(&self, seed: &Node) -> Result<(), String> {
        for args in [
            vec!["stop_app"],
            vec!["join_cluster", seed.name.as_str()],
            vec!["start_app"],
        ] {
            self.ctl_async(&args).await?;
        }
        Ok(())
    }

    /// Every line of the node's own log files (RABBITMQ_LOG_BASE).
    fn log_lines(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("log"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
            .flat_map(|entry| {
                std::fs::read_to_string(entry.path())
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many lines of the node's own log (RABBITMQ_LOG_BASE) contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> usize {
        self.log_lines()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// What the node holds, for a test's failure report: every queue with its
    /// ready and unacked messages, every binding, and the node log's warnings.
    pub async fn diagnosis(&self) -> String {
        let mut report = String::new();
        for args in [
            &[
                "list_queues",
                "-q",
                "name",
                "messages_ready",
                "messages_unacknowledged",
            ][..],
            &[
                "list_bindings",
                "-q",
                "source_name",
                "destination_name",
                "routing_key",
            ][..],
        ] {
            let listing = self.ctl_async(args).await.unwrap_or_else(|error| error);
            report.push_str(&format!("rabbitmqctl {}:\n{listing}\n", args[0]));
        }
        let warnings: Vec<String> = self
            .log_lines()
            .into_iter()
            .filter(|line| line.contains("[warning]") || line.contains("[error]"))
            .collect();
        let skip = warnings.len().saturating_sub(40);
        report.push_str(&format!(
            "node log warnings and errors (last 40):\n{}\n",
            warnings[skip..].join("\n")
        ));
        report
    }

    /// The messages of `queue` that no consumer has acked yet: ready or
    /// delivered and unacknowledged (a passive declare counts only the ready).
    pub async fn unacked_messages(&self, queue: &str) -> Result<u64, String> {
        let listing = self
            .ctl_async(&[
                "list_queues",
                "-q",
                "--no-table-headers",
                "name",
                "messages",
            ])
            .await?;
        listing
            .lines()
            .find_map(|line| match line.split_once('\t') {
                Some((name, count)) if name == queue => count.trim().parse().ok(),
                _ => None,
            })
            .ok_or_else(|| format!("no queue {queue} in rabbitmqctl list_queues: {listing}"))
    }

    /// Waits until a consumer has acked every message of `queue`: then it has
    /// them all (none ready, none in its prefetch).
    pub async fn wait_consumed(&self, queue: &str, within: Duration) {
        // Every 500 ms: each probe runs rabbitmqctl.
        eventually_every(
            within,
            Duration::from_millis(500),
            format_args!("the consumer of {queue} to have acked every message"),
            || async {
                match self.unacked_messages(queue).await {
                    Ok(0) => Ok(()),
                    Ok(n) => Err(format!("{n} messages ready or unacked")),
                    Err(error) => Err(error),
                }
            },
        )
        .await
    }

    /// `rabbitmqctl -n NODE ARGS...`; `Err` with its output when it fails.
    pub async fn ctl_async(&self, args: &[&str]) -> Result<String, String> {
        self.tool_async("rabbitmqctl", args).await
    }

    /// Any of RabbitMQ's CLI tools (`rabbitmq-diagnostics`, `rabbitmq-queues`,
    /// ...) against this node.
    pub async fn tool_async(&self, tool: &'static str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(String::from).collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run(tool, &refs)
        })
        .await
        .unwrap()
    }
}

impl Drop for Node {
    /// Kills the node (its folder is deleted, so a clean stop would only cost
    /// time) and whatever is left of each start, then deletes its folder.
    fn drop(&mut self) {
        if let Some(pid) = self.beam_pid()
            && alive(pid)
        {
            let _ = run("kill", &["-9", &pid.to_string()]);
        }
        let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(|e| e.into_inner()));
        for mut server in servers {
            if server.try_wait().ok().flatten().is_none() {
                let _ = run("kill", &["-9", "--", &format!("-{}", server.id())]);
            }
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails the test, pointing at scripts/test, when RabbitMQ is not installed.
fn require_rabbitmq() {
    let installed = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        installed("rabbitmq-server") && installed("rabbitmqctl"),
        "the fault tests start private RabbitMQ nodes, but rabbitmq-server is not installed: \
         run scripts/test once (it installs Debian's rabbitmq-server), or apt-get install rabbitmq-server"
    );
}

/// Two free ports in `ports` derived from the test's name and the process id:
/// the AMQP port and the distribution port. Ports handed out before in this
/// process are skipped too: several nodes are prepared before any binds.
/// `extra`: one more port, that far above the AMQP port, must be free too.
fn free_ports(test: &str, pid: u32, ports: Ports, extra: Option<u16>) -> (u16, u16) {
    static HANDED_OUT: std::sync::Mutex<Option<HashSet<u16>>> = std::sync::Mutex::new(None);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (test, pid).hash(&mut hasher);
    let mut offset = (hasher.finish() % u64::from(ports.span)) as u16;
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let port = ports.first + offset;
        let dist = port + ports.dist_offset;
        let extra_free = extra.is_none_or(|offset| port_free(port + offset));
        if !handed_out.contains(&port) && port_free(port) && port_free(dist) && extra_free {
            handed_out.insert(port);
            return (port, dist);
        }
        offset = (offset + 7) % ports.span;
    }
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("0.0.0.0", port)).is_ok()
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

async fn wait_gone(pid: u32, within: Duration) {
    eventually(within, format_args!("process {pid} to be gone"), || async {
        !alive(pid)
    })
    .await
}

/// Runs a command to its end; `Err` with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{program} {args:?}: {}: {text}", output.status))
    }
}
