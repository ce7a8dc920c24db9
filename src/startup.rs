//! Building and running the application: the broker connection, the ingress
//! and admin listeners, and the orderly shutdown. Tests drive this same
//! `Application` with port 0.

use std::{future::Future, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;

use tokio::task::JoinHandle;
use tokio_util::{sync::DropGuard, task::TaskTracker};

use crate::{
    amqp::{Broker, BrokerSettings, Topology},
    auth::Authenticator,
    config::{ListenAddress, Settings, SpoolMode, read_server_certificate},
    dedup::{DEFAULT_CAPACITY, Dedup},
    delivery::{Delivery, Destinations, SpoolPolicy},
    event::EventBuilder,
    ingress_tls::{CertificateStore, CertificateWatch, ReloadRequest, server_config},
    metrics::Metrics,
    routes::{
        self, refusal_log,
        state::{AppState, Limits},
    },
    shutdown::Shutdown,
    spool::Spool,
};

pub struct Application {
    ingress_port: u16,
    admin_port: u16,
    ingress: Server,
    admin: Server,
    state: web::Data<AppState>,
    forwarder: Option<JoinHandle<()>>,
    /// With server.tls: asks for the certificate files to be read again.
    certificate_reload: Option<ReloadRequest>,
    shutdown: Shutdown,
    /// Bounds the wait for requests in flight, and then for the background tasks.
    shutdown_timeout: Duration,
    /// An application dropped without being run stops its background tasks too.
    _stop_on_drop: DropGuard,
}

impl Application {
    /// Opens the spool, connects to the broker (or starts retrying in the
    /// background), binds both listeners and returns, ready to run. Fails on a
    /// spool that cannot be opened, a topology conflict or a port that cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.require_secrets()?;
        let shutdown = Shutdown::new();
        // From here on, a failed build stops what it has started.
        let stop_on_drop = shutdown.everything.clone().drop_guard();
        let metrics = Arc::new(Metrics::new());
        // The spool first: it is local and can fail for good (a bad spool.dir), and
        // then nothing should have started yet.
        let open_spool = || Spool::open(&settings.spool.dir, settings.spool.max_bytes);
        let policy = match settings.spool.mode {
            SpoolMode::Off => SpoolPolicy::Off,
            SpoolMode::OnFailure => SpoolPolicy::OnFailure(open_spool()?),
            SpoolMode::Always => SpoolPolicy::Always(open_spool()?),
        };
        let started = Broker::start_tracked(
            broker_settings(&settings),
            &shutdown.tasks,
            shutdown.broker.clone(),
        )
        .await;
        let broker = match started {
            Ok(broker) => broker,
            Err(error) => {
                // Closed, not dropped: the file is then left clean for the next run.
                if let Some(spool) = policy.spool() {
                    spool.close().await;
                }
                return Err(error).context("cannot start on RabbitMQ");
            }
        };
        let destinations = Destinations {
            exchange: settings.amqp.exchange.clone(),
            quarantine_exchange: settings.amqp.quarantine_exchange.clone(),
        };
        let delivery = Delivery::new(broker, destinations, policy, metrics.clone());
        let forwarder = delivery.start_forwarder(&shutdown.tasks, shutdown.forwarder.clone());
        let state = web::Data::new(app_state(&settings, delivery, metrics, &shutdown));
        shutdown.tasks.spawn(write_refusal_summaries(
            state.clone(),
            shutdown.everything.clone(),
        ));
        let (ingress, ingress_port, watch) = serve_ingress(&settings, &state)?;
        let certificate_reload = watch.map(|watch| {
            let request = watch.reload_request();
            shutdown.tasks.spawn(watch.run(shutdown.everything.clone()));
            request
        });
        let (admin, admin_port) = serve_admin(&settings, &state)?;
        Ok(Self {
            ingress_port,
            admin_port,
            ingress,
            admin,
            state,
            forwarder,
            certificate_reload,
            _stop_on_drop: stop_on_drop,
            shutdown,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        })
    }

    pub fn ingress_port(&self) -> u16 {
        self.ingress_port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// With server.tls, what makes the ingress read its certificate files
    /// again now (the binary asks on SIGHUP); they are also polled.
    pub fn certificate_reload(&self) -> Option<ReloadRequest> {
        self.certificate_reload.clone()
    }

    /// Every background task of this application. Once `run_until_stopped`
    /// has returned after a shutdown, it is closed and empty: no task outlives
    /// the application (the API tests check it).
    pub fn tasks(&self) -> TaskTracker {
        self.shutdown.tasks.clone()
    }

    /// Serves until `shutdown` resolves, then: /readyz turns 503, the ingress
    /// stops accepting, requests in flight finish (confirmed or spooled, within
    /// server.shutdown_timeout_secs), the spool's forwarder stops, the AMQP
    /// connection is closed cleanly, the spool is closed, and every background
    /// task is waited for, within what is left of that same timeout (at least
    /// a second): one budget for the whole stop, so it ends inside a container
    /// runtime's grace period (compose: 45 s for the default 30).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let ingress_handle = self.ingress.handle();
        let admin_handle = self.admin.handle();
        let mut ingress = self.shutdown.tasks.spawn(self.ingress);
        let mut admin = self.shutdown.tasks.spawn(self.admin);
        tokio::select! {
            () = shutdown => {}
            result = &mut ingress => return Err(server_ended("ingress", result)),
            result = &mut admin => return Err(server_ended("admin", result)),
        }
        tracing::info!("shutting down: finishing requests in flight");
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        self.shutdown.intake.cancel();
        ingress_handle.stop(true).await;
        let _ = ingress.await;
        self.shutdown.forwarder.cancel();
        if let Some(forwarder) = self.forwarder {
            let _ = forwarder.await;
        }
        let delivery = &self.state.delivery;
        delivery.broker().close().await;
        if let Some(spool) = delivery.policy().spool() {
            spool.close().await;
        }
        admin_handle.stop(true).await;
        let _ = admin.await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.shutdown.finish(left.max(Duration::from_secs(1))).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What every handler shares, from the settings and the parts built before it.
fn app_state(
    settings: &Settings,
    delivery: Delivery,
    metrics: Arc<Metrics>,
    shutdown: &Shutdown,
) -> AppState {
    let auth = Authenticator::new(settings.auth.header.name().clone(), &settings.auth.secrets);
    if settings.auth.secrets.is_empty() {
        tracing::warn!(
            "auth.allow_unauthenticated is set: every webhook is accepted without checking"
        );
    }
    let events = EventBuilder::from_settings(settings);
    AppState::new(
        auth,
        events,
        delivery,
        Dedup::new(
            Duration::from_secs(settings.dedup.window_secs),
            DEFAULT_CAPACITY,
        ),
        metrics,
        Limits {
            max_body_bytes: settings.server.max_body_bytes,
            body_timeout: Duration::from_secs(settings.server.body_timeout_secs),
            max_body_buffer_bytes: settings.server.max_body_buffer_bytes,
            max_events_per_request: settings.server.max_events_per_request,
            max_in_flight: settings.max_in_flight(),
            invalid_payload: settings.ingress.invalid_payload,
        },
        shutdown.intake.clone(),
    )
}

/// TLS handshakes in progress at once per worker thread; beyond them, the
/// worker accepts no new connection until one ends.
const TLS_HANDSHAKES_PER_WORKER: usize = 8192;

/// The ingress listener, bound and ready to run, and its port; with
/// server.tls, HTTPS, and the watch that reloads its certificate.
fn serve_ingress(
    settings: &Settings,
    state: &web::Data<AppState>,
) -> anyhow::Result<(Server, u16, Option<CertificateWatch>)> {
    let listener = bind(&settings.server.bind, "server.bind")?;
    let port = listener.local_addr()?.port();
    let metrics = state.metrics.clone();
    let state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::ingress)
    })
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    let tls = &settings.server.tls;
    let Some((cert_file, key_file)) = tls.files() else {
        return Ok((server.listen(listener)?.run(), port, None));
    };
    // Read at load; settings made in code without loading are read here, so
    // files that are set never leave the ingress on plain HTTP.
    let certificate = match &tls.certificate {
        Some(certificate) => certificate.clone(),
        None => read_server_certificate(cert_file, key_file).context("server.tls")?,
    };
    let certificate = &certificate;
    let store = CertificateStore::new(certificate);
    let watch = CertificateWatch::new(
        store.clone(),
        (cert_file.to_path_buf(), key_file.to_path_buf()),
        certificate,
        metrics,
    );
    // The handshake has its own deadline: a connection that opens TCP and
    // sends nothing must not hold a slot until the body deadline. And many
    // handshakes may be in progress at once: with actix-web's default (256 per
    // worker), 3,000 connections that send nothing held up every legitimate
    // handshake behind them for seconds (`scripts/hostile --tls`: p99 12.9 s).
    // A pending handshake costs a socket and a few KB, not CPU.
    let server = server
        .tls_handshake_timeout(Duration::from_secs(tls.handshake_timeout_secs))
        .max_connection_rate(TLS_HANDSHAKES_PER_WORKER)
        .listen_rustls_0_23(listener, server_config(store))?;
    Ok((server.run(), port, Some(watch)))
}

/// The admin listener, bound and ready to run, and its port.
fn serve_admin(settings: &Settings, state: &web::Data<AppState>) -> anyhow::Result<(Server, u16)> {
    let listener = bind(&settings.admin.bind, "admin.bind")?;
    let port = listener.local_addr()?.port();
    let state = state.clone();
    let server =
        HttpServer::new(move || App::new().app_data(state.clone()).configure(routes::admin))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
    Ok((server, port))
}

/// Every refusal_log window, the counts of refusals not logged one by one;
/// ends when the application stops.
async fn write_refusal_summaries(
    state: web::Data<AppState>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(refusal_log::WINDOW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => state.refusal_log.write_summaries(),
            () = stop.cancelled() => return,
        }
    }
}

fn broker_settings(settings: &Settings) -> BrokerSettings {
    let amqp = &settings.amqp;
    BrokerSettings {
        urls: amqp.urls.clone(),
        connection_name: amqp.connection_name.clone(),
        heartbeat_secs: amqp.heartbeat_secs,
        channels: amqp.channels,
        confirms_per_channel: amqp.confirms_per_channel,
        timeout: Duration::from_millis(amqp.confirm_timeout_ms),
        topology: amqp.declare_topology.then(|| Topology {
            exchange: amqp.exchange.clone(),
            quarantine_exchange: amqp.quarantine_exchange.clone(),
            unrouted_exchange: amqp.unrouted_exchange.clone(),
        }),
        tls: amqp.tls.client().cloned(),
    }
}

fn bind(address: &ListenAddress, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address.socket_address())
        .with_context(|| format!("{key}: cannot listen on {address}"))
}

fn server_ended(
    name: &str,
    result: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> anyhow::Error {
    match result {
        Ok(Ok(())) => anyhow::anyhow!("the {name} listener stopped unexpectedly"),
        Ok(Err(error)) => anyhow::Error::new(error).context(format!("the {name} listener failed")),
        Err(error) => anyhow::Error::new(error).context(format!("the {name} listener panicked")),
    }
}
