//! A TCP proxy between the bridge and RabbitMQ that makes network faults happen
//! for real: `cut` closes every connection and refuses new ones (a broker gone),
//! `black_hole` keeps connections open but moves no byte (packets vanishing, no
//! RST), `restore` forwards again.

use std::{
    net::SocketAddr,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use lapin::uri::AMQPUri;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
    BlackHole,
}

pub struct FaultProxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    uri: AMQPUri,
    accept: JoinHandle<()>,
    /// Connections accepted and forwarded upstream so far.
    forwarded: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// A proxy in front of the broker of `amqp_url`.
    pub async fn start(amqp_url: &str) -> Self {
        let uri = AMQPUri::from_str(amqp_url).expect("a valid AMQP URL");
        let upstream: SocketAddr =
            tokio::net::lookup_host((uri.authority.host.as_str(), uri.authority.port))
                .await
                .unwrap()
                .next()
                .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let counted = forwarded.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *modes.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, modes.subscribe()));
                tokio::spawn(pump(server_read, client_write, modes.subscribe()));
            }
        });
        Self {
            port,
            mode,
            uri,
            accept,
            forwarded,
        }
    }

    /// The broker's URL, through the proxy.
    pub fn url(&self) -> String {
        let user = &self.uri.authority.userinfo;
        let vhost = self.uri.vhost.replace('/', "%2f");
        format!(
            "amqp://{}:{}@127.0.0.1:{}/{vhost}",
            user.username, user.password, self.port
        )
    }

    /// How many connections the proxy has forwarded to the broker so far.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn black_hole(&self) {
        self.mode.send_replace(Mode::BlackHole);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.accept.abort();
    }
}

/// Copies bytes one way while forwarding; holds them while black-holed; closes on a cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = mode.wait_for(|m| *m == Mode::Cut) => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Black-holed bytes are held until the mode changes; a cut drops them.
        let current = *mode.wait_for(|m| *m != Mode::BlackHole).await.unwrap();
        if current == Mode::Cut {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
