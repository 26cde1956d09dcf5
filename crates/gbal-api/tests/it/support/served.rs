//! An app served over real sockets by `gbal_api::serve` (both listeners on loopback ports),
//! and raw HTTP/1.1 on a socket for what a well-behaved client never sends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gbal_api::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `gbal_api::serve` running `state` until dropped (or [`Served::stop`]).
pub struct Served {
    pub public: SocketAddr,
    pub internal: SocketAddr,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Served {
    pub async fn start(state: AppState) -> Served {
        let public = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a public port");
        let internal = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("an internal port");
        let (public_addr, internal_addr) = (
            public.local_addr().expect("address"),
            internal.local_addr().expect("address"),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(gbal_api::serve(public, internal, state, stop.clone()));
        Served {
            public: public_addr,
            internal: internal_addr,
            stop,
            task: Some(task),
        }
    }

    /// `http://<public><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// Shuts down as on SIGTERM and waits until both listeners have stopped.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("stopped within 30 s")
            .expect("the server task")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An HTTP client whose every request is bounded.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A raw connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .expect("connected within 5 s")
            .expect("connect");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// The status of the next answer (its body read and dropped), `None` if the connection
    /// closed first, `Err` if nothing came within `within`.
    pub async fn status(&mut self, within: Duration) -> Result<Option<u16>, &'static str> {
        tokio::time::timeout(within, self.read_answer())
            .await
            .map_err(|_| "no answer in time")
    }

    async fn read_answer(&mut self) -> Option<u16> {
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < length {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.buf.drain(..length);
        Some(status)
    }

    /// How long until the server closes the connection (whatever it sends first is read and
    /// dropped), or `None` if it is still open after `within`.
    pub async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut chunk = [0u8; 4096];
        loop {
            let left = within.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// `GET <path>` as raw bytes, keeping the connection alive.
pub fn raw_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gbal\r\n\r\n").into_bytes()
}
