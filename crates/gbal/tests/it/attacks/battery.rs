//! The attack battery: hostile traffic against a real `gbal serve`, over real sockets on
//! loopback, each attack asserting the bound gbal promises and printing its figures.
//!
//! Shared by the integration tests (`tests/it/attacks.rs`, [`Scale::short`], the debug binary)
//! and the benchmark (`benches/attack.rs`, [`Scale::long`], the release binary). Every loop is
//! bounded in count and in time. The assertions are bounds on behaviour (closed, refused,
//! throttled, bounded growth); the only times asserted are "within a configured timeout plus a
//! generous margin", where the behaviour is a timeout.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The settings the battery sets, by the environment variable that sets each.
pub mod key {
    /// `public.header_read_timeout`: a request's head must arrive within it.
    pub const PUBLIC_HEADER_READ_TIMEOUT: &str = "GBAL_PUBLIC__HEADER_READ_TIMEOUT";
    /// `internal.header_read_timeout`.
    pub const INTERNAL_HEADER_READ_TIMEOUT: &str = "GBAL_INTERNAL__HEADER_READ_TIMEOUT";
    /// `public.max_connections`: open connections on the public listener.
    pub const PUBLIC_MAX_CONNECTIONS: &str = "GBAL_PUBLIC__MAX_CONNECTIONS";
    /// `internal.max_connections`.
    pub const INTERNAL_MAX_CONNECTIONS: &str = "GBAL_INTERNAL__MAX_CONNECTIONS";
    /// `public.body_timeout`: a request's body must arrive within it.
    pub const PUBLIC_BODY_TIMEOUT: &str = "GBAL_PUBLIC__BODY_TIMEOUT";
    /// `public.max_in_flight`: balance requests served at once by the replica.
    pub const PUBLIC_MAX_IN_FLIGHT: &str = "GBAL_PUBLIC__MAX_IN_FLIGHT";
    /// `rate_limit.max_in_flight`: one caller's requests served at once.
    pub const CALLER_MAX_IN_FLIGHT: &str = "GBAL_RATE_LIMIT__MAX_IN_FLIGHT";
    /// `public.body_limit`.
    pub const PUBLIC_BODY_LIMIT: &str = "GBAL_PUBLIC__BODY_LIMIT";
    /// `internal.reply_token`.
    pub const REPLY_TOKEN: &str = "GBAL_INTERNAL__REPLY_TOKEN";
    /// `rate_limit.per_second`.
    pub const RATE_PER_SECOND: &str = "GBAL_RATE_LIMIT__PER_SECOND";
    /// `rate_limit.burst`.
    pub const RATE_BURST: &str = "GBAL_RATE_LIMIT__BURST";
}

/// The HS256 secret the battery's gbal verifies tokens with (not the development secret).
const SECRET: &str = "attack-battery-secret-0123456789abcdefghijklmnop";
/// The reply token of the internal listener.
pub const REPLY_TOKEN: &str = "attack-battery-reply-token-0123";
const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
const BASE: &str = "/customs/guarantees";
/// A sandbox guarantee the simulator answers at once with a balance, by API v2 (no TIN, so
/// GMS's per-TIN query limit never applies).
const V2_GRN: &str = "26XI0000010000036";
/// A balance check bystanders make: v2, answered 200 by the embedded simulator.
const V2_BODY: &str = r#"{"accessCode":"AC01"}"#;

/// How big each attack is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Requests of the method, path and header flood.
    pub flood_requests: usize,
    /// Length of each made-up method, path segment and header name.
    pub flood_token_len: usize,
    /// Half-sent requests held on each listener.
    pub half_open: usize,
    /// The header-read timeout set for the half-sent attack.
    pub header_timeout: Duration,
    /// Connections the connection flood opens.
    pub connection_flood: usize,
    /// The connection cap set for the connection flood.
    pub connection_cap: usize,
    /// Slow-body connections from one caller.
    pub slow_bodies: usize,
    /// The body deadline set for the slow-body attack.
    pub body_timeout: Duration,
    /// `public.max_in_flight` during the slow-body attack: fewer than the slow bodies.
    pub max_in_flight: usize,
    /// GETs of the polling flood.
    pub get_flood: usize,
    /// Requests each bystander makes during an attack.
    pub bystander_requests: usize,
    /// The longest any loop of an attack may run.
    pub max_duration: Duration,
    /// The RSS growth an attack may cause, besides what the connections it holds may cost
    /// ([`PER_CONNECTION_KIB`] each).
    pub rss_growth_kib: u64,
}

/// The memory one held connection may cost: twice a full request head (`max_header_bytes`,
/// 16 KiB by default) for its read buffer and what the server keeps beside it. The cap on
/// connections bounds the total.
pub const PER_CONNECTION_KIB: u64 = 32;

impl Scale {
    /// The integration tests' size: every attack in a few seconds.
    pub fn short() -> Scale {
        Scale {
            flood_requests: 3_000,
            flood_token_len: 12,
            half_open: 200,
            header_timeout: Duration::from_secs(2),
            connection_flood: 1_000,
            connection_cap: 32,
            slow_bodies: 32,
            body_timeout: Duration::from_secs(2),
            max_in_flight: 8,
            get_flood: 400,
            bystander_requests: 20,
            max_duration: Duration::from_secs(20),
            rss_growth_kib: 32 * 1024,
        }
    }

    /// The benchmark's size (the integration tests use the short one only).
    #[allow(dead_code)]
    pub fn long() -> Scale {
        Scale {
            flood_requests: 50_000,
            flood_token_len: 64,
            half_open: 2_000,
            header_timeout: Duration::from_secs(5),
            connection_flood: 10_000,
            connection_cap: 1_024,
            slow_bodies: 400,
            body_timeout: Duration::from_secs(10),
            max_in_flight: 64,
            get_flood: 20_000,
            bystander_requests: 200,
            max_duration: Duration::from_secs(180),
            rss_growth_kib: 32 * 1024,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The target: a `gbal serve` child process.

/// A running `gbal serve` (SQLite, the embedded simulator), killed when dropped.
#[derive(Debug)]
pub struct Target {
    child: Child,
    _dir: tempfile::TempDir,
    /// The public listener.
    pub public: SocketAddr,
    /// The internal listener.
    pub internal: SocketAddr,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Target {
    /// Starts `gbal serve` in a fresh directory on free loopback ports with the battery's
    /// secrets and `settings`, and waits until `/readyz` answers 200.
    pub async fn start(settings: &[(&str, String)]) -> Target {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbal"));
        cmd.current_dir(dir.path())
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("GBAL_PUBLIC__LISTEN", "127.0.0.1:0")
            .env("GBAL_INTERNAL__LISTEN", "127.0.0.1:0")
            .env("GBAL_AUTH__HS256_SECRET", SECRET)
            .env(key::REPLY_TOKEN, REPLY_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in settings {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gbal serve");
        // The output is drained as it comes (a full pipe would stall gbal); the last lines are
        // kept for a failure message.
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let (tx, output) = (tx.clone(), output.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut kept = output.lock().expect("output");
                    if kept.len() == 200 {
                        kept.pop_front();
                    }
                    kept.push_back(line.clone());
                    drop(kept);
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut internal) = (None, None);
        while public.is_none() || internal.is_none() {
            let exited = child.try_wait().expect("try_wait");
            let line = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => line,
                Err(_) if exited.is_none() && Instant::now() < deadline => continue,
                Err(_) => {
                    let _ = child.kill();
                    let printed: Vec<String> =
                        output.lock().expect("output").iter().cloned().collect();
                    panic!(
                        "gbal serve ({}) did not say where it listens; it printed:\n{}",
                        exited.map_or("running for 30 s".to_owned(), |s| format!("exited: {s}")),
                        printed.join("\n")
                    );
                }
            };
            let addr = |line: &str| -> Option<SocketAddr> {
                let url = line.split_whitespace().find(|w| w.starts_with("http://"))?;
                let rest = &url["http://".len()..];
                rest[..rest.find('/').unwrap_or(rest.len())].parse().ok()
            };
            let line = line.trim_start();
            if line.starts_with("public API:") {
                public = addr(line);
            } else if line.starts_with("internal:") {
                internal = addr(line);
            }
        }
        let target = Target {
            child,
            _dir: dir,
            public: public.expect("public address"),
            internal: internal.expect("internal address"),
            output,
        };
        let client = client();
        let ready = eventually(Duration::from_secs(30), async || {
            matches!(client.get(target.url("/readyz")).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        assert!(
            ready,
            "/readyz never answered 200:\n{}",
            target.recent_output()
        );
        target
    }

    /// `http://<public><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// `http://<internal><path>`.
    pub fn internal_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.internal)
    }

    /// The process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The sockets the process holds open (listeners and connections).
    pub fn sockets(&self) -> usize {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())) else {
            return 0;
        };
        fds.filter_map(Result::ok)
            .filter(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The last lines the process printed.
    pub fn recent_output(&self) -> String {
        let kept = self.output.lock().expect("output");
        kept.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Asserts that the process runs and `/livez` answers 200 on a fresh connection.
    pub async fn assert_alive(&mut self, after: &str) {
        assert!(
            self.running(),
            "gbal exited after {after}:\n{}",
            self.recent_output()
        );
        let livez = client().get(self.url("/livez")).send().await;
        assert!(
            matches!(&livez, Ok(r) if r.status() == 200),
            "/livez after {after}: {livez:?}"
        );
    }

    /// A v2 balance check by caller `sub`: its status and how long it took.
    pub async fn check(&self, client: &reqwest::Client, sub: &str) -> (u16, Duration) {
        let started = Instant::now();
        let status = client
            .post(self.url(&format!("{BASE}/{V2_GRN}/balance")))
            .bearer_auth(token(sub))
            .header("Accept", V2)
            .header("Content-Type", "application/json")
            .body(V2_BODY)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        (status, started.elapsed())
    }

    /// `/metrics`: its size in bytes and its series (lines that are not comments).
    pub async fn metrics(&self) -> (usize, Vec<String>) {
        let text = client()
            .get(self.internal_url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("/metrics body");
        let series = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        (text.len(), series)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    scope: &'a str,
    exp: i64,
}

/// A token for `sub` that the battery's gbal accepts.
pub fn token(sub: &str) -> String {
    let claims = Claims {
        sub,
        iss: "gbal",
        aud: "gbal",
        scope: "common-transit-convention-guarantee-balance",
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

/// An HTTP client whose every request is bounded (30 s).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Polls `condition` every 50 ms until it holds (true) or `within` has passed (false).
pub async fn eventually(within: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The 99th percentile of `times` (zero when there are none).
pub fn p99(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = (sorted.len() * 99).div_ceil(100).saturating_sub(1);
    sorted.get(at).copied().unwrap_or_default()
}

/// Statuses counted by code (0: no answer).
fn tally(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_insert(0) += 1;
    }
    counts
}

/// The label values of a Prometheus series line.
fn label_values(line: &str) -> Vec<&str> {
    let Some((_, labels)) = line.split_once('{') else {
        return Vec::new();
    };
    let labels = labels.rsplit_once('}').map_or(labels, |(l, _)| l);
    labels
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(_, v)| v.trim_end_matches('"'))
        .collect()
}

/// Whether a label value is one the flood made up: a method or path segment (a run of `len`
/// upper-case letters and digits) or a header name (`x-...`).
fn caller_chosen(value: &str, len: usize) -> bool {
    let mut run = 0;
    for c in value.chars() {
        run = if c.is_ascii_uppercase() || c.is_ascii_digit() {
            run + 1
        } else {
            0
        };
        if run >= len {
            return true;
        }
    }
    value.starts_with("x-")
}

/// A pseudo-random generator for made-up names (xorshift; no need for more).
struct Names(u64);

impl Names {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` characters of `[A-Z0-9]`.
    fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| char::from(CHARS[(self.next() % CHARS.len() as u64) as usize]))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a socket, for what a well-behaved client cannot send.

/// An answer read off a socket (its body is read, so that the connection can be used
/// again, and dropped).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
}

/// Reads one HTTP/1.1 answer from `reader` (`buf` holds bytes read before and keeps what
/// follows). `Ok(None)`: the peer closed before sending anything.
async fn read_answer<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Answer>> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let mut fill = async |buf: &mut Vec<u8>, want: usize| -> std::io::Result<()> {
        while buf.len() < want {
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    if let Some(len) = header("content-length").and_then(|v| v.parse().ok()) {
        fill(buf, len).await?;
        buf.drain(..len);
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                let want = buf.len() + 1;
                fill(buf, want).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            fill(buf, line_end + 2 + size + 2).await?;
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    Ok(Some(Answer { status }))
}

/// A raw client connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` within `within`.
    pub async fn open(addr: SocketAddr, within: Duration) -> std::io::Result<Conn> {
        let stream = tokio::time::timeout(within, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next answer, within `within`. `Ok(None)`: closed without an answer.
    pub async fn answer(&mut self, within: Duration) -> std::io::Result<Option<Answer>> {
        tokio::time::timeout(within, read_answer(&mut self.stream, &mut self.buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }

    /// Waits until the server closes the connection (reading and dropping whatever it
    /// sends first, such as a 408), for at most `within`: how long it took, or `None`.
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

/// `GET <path>` with `Host`, as bytes.
fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gbal\r\n\r\n").into_bytes()
}

/// Sends `request` on a fresh connection to `addr` and reads the answer: its status, or `None`
/// when the server closed (or reset) the connection without one. Write errors are
/// tolerated: a server may stop reading an oversized request and answer or close.
async fn exchange(addr: SocketAddr, request: &[u8], within: Duration) -> Option<u16> {
    let mut conn = Conn::open(addr, within).await.expect("connect");
    let _ = conn.send(request).await;
    match conn.answer(within).await {
        Ok(Some(a)) => Some(a.status),
        Ok(None) => None,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            panic!("no answer and no close within {within:?}")
        }
        Err(_) => None,
    }
}

// ---------------------------------------------------------------------------------------
// The attacks.

/// Made-up methods, random paths and random header names, without a token, on both
/// listeners: no caller-chosen value becomes a metric series, `/metrics` and RSS stay bounded.
pub async fn label_flood(scale: Scale) {
    let mut target = Target::start(&[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let base = [target.public, target.internal];
    // `pick` chooses the route kind, the method kind, the listener and the version asked for,
    // each independently of the others.
    let send = move |client: &reqwest::Client, names: &mut Names, pick: u64, len: usize| {
        let method = reqwest::Method::from_bytes(format!("X{}", names.token(len)).as_bytes())
            .expect("a method token");
        let path = match pick % 3 {
            0 => format!("/{}/{}", names.token(len), names.token(len)),
            1 => format!("{BASE}/balances"),
            _ => format!("{BASE}/{}/balance", names.token(len)),
        };
        let method = match (pick / 3) % 4 {
            2 => reqwest::Method::POST,
            3 => reqwest::Method::GET,
            _ => method,
        };
        client
            .request(
                method,
                format!("http://{}{path}", base[(pick / 12) as usize % 2]),
            )
            .header(
                format!("x-{}", names.token(len).to_lowercase()),
                names.token(len),
            )
            .header(
                "Accept",
                if (pick / 24).is_multiple_of(2) {
                    V1
                } else {
                    V2
                },
            )
            .send()
    };
    // A first round registers the series the closed label sets allow (`other`, `unmatched`,
    // the statuses); the flood that follows must add none.
    let mut names = Names(0x9e37_79b9_7f4a_7c15);
    for pick in 0..48 {
        let _ = send(&client, &mut names, pick, scale.flood_token_len).await;
    }
    let (bytes_before, series_before) = target.metrics().await;
    let rss_before = target.rss_kib();

    let started = Instant::now();
    let workers = 16;
    let per_worker = scale.flood_requests / workers;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, len, deadline) = (client.clone(), scale.flood_token_len, scale.max_duration);
        tasks.push(tokio::spawn(async move {
            let mut names = Names(0x2545_f491_4f6c_dd1d ^ (w as u64 + 1));
            let mut statuses = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                if started.elapsed() > deadline {
                    break;
                }
                let pick = names.next();
                let status = send(&client, &mut names, pick, len)
                    .await
                    .map_or(0, |r| r.status().as_u16());
                statuses.push(status);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.expect("flood worker"));
    }
    let took = started.elapsed();
    let (bytes_after, series_after) = target.metrics().await;
    let rss_after = target.rss_kib();
    println!(
        "attack label_flood: {} requests in {:.1} s (statuses {:?}); /metrics {} -> {} bytes, \
         {} -> {} series; RSS {} -> {} KiB",
        statuses.len(),
        took.as_secs_f64(),
        tally(&statuses),
        bytes_before,
        bytes_after,
        series_before.len(),
        series_after.len(),
        rss_before,
        rss_after
    );
    target.assert_alive("the label flood").await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 0).count(),
        0,
        "every flood request is answered"
    );
    // A series is its name and labels (the line without its value).
    let identity = |line: &str| line.rsplit_once(' ').map_or(line, |(id, _)| id).to_owned();
    let known: std::collections::HashSet<String> =
        series_before.iter().map(|l| identity(l)).collect();
    let new: Vec<String> = series_after
        .iter()
        .map(|l| identity(l))
        .filter(|id| !known.contains(id))
        .collect();
    let made_up: Vec<&String> = series_after
        .iter()
        .filter(|l| {
            label_values(l)
                .iter()
                .any(|v| caller_chosen(v, scale.flood_token_len))
        })
        .collect();
    assert!(
        made_up.is_empty(),
        "caller-chosen values became metric labels ({} series), e.g. {:?}",
        made_up.len(),
        made_up.iter().take(3).collect::<Vec<_>>()
    );
    // A few unrelated series (a gauge a periodic job publishes for the first time) may appear
    // meanwhile; one per made-up value would be thousands.
    assert!(
        new.len() <= 50,
        "the flood added {} series to /metrics, e.g. {:?}",
        new.len(),
        new.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        bytes_after <= bytes_before + 64 * 1024,
        "/metrics grew from {bytes_before} to {bytes_after} bytes"
    );
    assert!(
        rss_after <= rss_before + scale.rss_growth_kib,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

/// Half-sent request heads on both listeners: each connection is closed within the header
/// timeout (plus a margin), and `/livez` answers on a fresh connection meanwhile.
pub async fn half_sent_headers(scale: Scale) {
    let timeout = format!("{}ms", scale.header_timeout.as_millis());
    let cap = (scale.half_open * 2 + 64).to_string();
    let mut target = Target::start(&[
        (key::PUBLIC_HEADER_READ_TIMEOUT, timeout.clone()),
        (key::INTERNAL_HEADER_READ_TIMEOUT, timeout),
        (key::PUBLIC_MAX_CONNECTIONS, cap.clone()),
        (key::INTERNAL_MAX_CONNECTIONS, cap),
    ])
    .await;
    let rss_before = target.rss_kib();
    let sockets_before = target.sockets();
    let started = Instant::now();
    let mut conns = Vec::new();
    for addr in [target.public, target.internal] {
        for _ in 0..scale.half_open {
            let mut conn = Conn::open(addr, Duration::from_secs(5))
                .await
                .expect("connect");
            conn.send(b"GET /livez HTTP/1.1\r\nHost: gbal\r\nX-Half: sent\r\n")
                .await
                .expect("send half a head");
            conns.push(conn);
        }
    }
    let opened = started.elapsed();
    let held = target.sockets().saturating_sub(sockets_before);
    let rss_held = target.rss_kib();
    // While they are held, a fresh connection is still served on both listeners.
    let client = client();
    let mut probe_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let livez = client.get(target.url("/livez")).send().await;
        assert!(
            matches!(&livez, Ok(r) if r.status() == 200),
            "/livez during the half-sent attack: {livez:?}"
        );
        let metrics = client.get(target.internal_url("/metrics")).send().await;
        assert!(
            matches!(&metrics, Ok(r) if r.status() == 200),
            "/metrics during the half-sent attack: {metrics:?}"
        );
        probe_times.push(t.elapsed());
    }
    // Eventually: the header timeout, plus a generous margin for a busy machine.
    let limit = scale.header_timeout + Duration::from_secs(5);
    let waits = conns.into_iter().map(|mut conn| {
        tokio::spawn(async move {
            let left = limit.saturating_sub(started.elapsed());
            conn.closed_within(left).await.map(|_| started.elapsed())
        })
    });
    let mut closed = Vec::new();
    for w in waits.collect::<Vec<_>>() {
        closed.push(w.await.expect("closing task"));
    }
    let open = closed.iter().filter(|c| c.is_none()).count();
    let latest = closed.iter().flatten().max().copied().unwrap_or_default();
    let rss_after = target.rss_kib();
    println!(
        "attack half_sent_headers: {} connections ({} per listener) opened in {:.2} s, {} held \
         by gbal; /livez and /metrics p99 {:?} meanwhile; all but {} closed, the last {:.2} s \
         after the first was opened (header timeout {:?}); RSS {} -> {} (held) -> {} KiB",
        scale.half_open * 2,
        scale.half_open,
        opened.as_secs_f64(),
        held,
        p99(&probe_times),
        open,
        latest.as_secs_f64(),
        scale.header_timeout,
        rss_before,
        rss_held,
        rss_after
    );
    assert_eq!(
        open, 0,
        "{open} half-sent connections still open {limit:?} after the attack began"
    );
    target.assert_alive("the half-sent attack").await;
    let allowed = scale.rss_growth_kib + PER_CONNECTION_KIB * held as u64;
    assert!(
        rss_held.max(rss_after) <= rss_before + allowed,
        "RSS grew from {rss_before} to {} KiB with {held} connections held (allowed: {allowed} KiB)",
        rss_held.max(rss_after)
    );
}

/// More connections than the cap: gbal never holds more than the cap (the rest wait in the
/// kernel's queue or are refused), an existing health connection keeps answering, RSS stays
/// bounded, and a caller is served once the flood stops.
pub async fn connection_flood(scale: Scale) {
    let cap = scale.connection_cap;
    let mut target = Target::start(&[
        (key::PUBLIC_MAX_CONNECTIONS, cap.to_string()),
        // Long enough that the flood's idle connections are still held while it is measured.
        (key::PUBLIC_HEADER_READ_TIMEOUT, "60s".to_owned()),
    ])
    .await;
    // A keep-alive health connection, opened before the flood, asks /livez every 250 ms (so
    // that it is never idle long enough to be closed) until the flood has been measured.
    let mut health = Conn::open(target.public, Duration::from_secs(5))
        .await
        .expect("health connection");
    let ask_livez = async |conn: &mut Conn| -> Option<u16> {
        conn.send(&get("/livez")).await.ok()?;
        conn.answer(Duration::from_secs(10))
            .await
            .ok()?
            .map(|a| a.status)
    };
    assert_eq!(ask_livez(&mut health).await, Some(200), "health connection");
    let rss_before = target.rss_kib();
    let sockets_before = target.sockets();
    let (stop_health, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let health = tokio::spawn(async move {
        let mut statuses = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut stopped => return (statuses, health),
                _ = tick.tick() => statuses.push(ask_livez(&mut health).await),
            }
        }
    });

    let started = Instant::now();
    let mut flood = Vec::new();
    let (mut refused, mut timed_out) = (0usize, 0usize);
    let batch = 250;
    let mut left = scale.connection_flood;
    while left > 0 && started.elapsed() < scale.max_duration {
        let n = left.min(batch);
        left -= n;
        let addr = target.public;
        let opens: Vec<_> = (0..n)
            .map(|_| tokio::spawn(Conn::open(addr, Duration::from_millis(500))))
            .collect();
        for o in opens {
            match o.await.expect("connect task") {
                Ok(c) => flood.push(c),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => timed_out += 1,
                Err(_) => refused += 1,
            }
        }
    }
    // Let gbal take all it will take, then count what it holds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = target.sockets().saturating_sub(sockets_before);
    let rss_during = target.rss_kib();
    let _ = stop_health.send(());
    let (health_during, _health) = health.await.expect("health connection task");
    // A newcomer during the flood: it waits (or is refused) rather than being served past
    // the cap; its request is answered, or its connection closed, once the flood stops.
    let mut newcomer = Conn::open(target.public, Duration::from_millis(500))
        .await
        .ok();
    if let Some(c) = newcomer.as_mut() {
        let _ = c.send(&get("/livez")).await;
    }
    let newcomer_during = match newcomer.as_mut() {
        Some(c) => match c.answer(Duration::from_millis(500)).await {
            Ok(Some(a)) => format!("answered {}", a.status),
            Ok(None) => "closed".to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "waiting".to_owned(),
            Err(e) => format!("refused ({e})"),
        },
        None => "not connected (kernel queue full)".to_owned(),
    };
    let flooded = flood.len();
    drop(flood);
    let stopped = Instant::now();
    let newcomer_after = match newcomer.as_mut() {
        Some(c) if newcomer_during == "waiting" => match c.answer(Duration::from_secs(15)).await {
            Ok(Some(a)) => format!("answered {}", a.status),
            Ok(None) => "closed".to_owned(),
            Err(e) => format!("{e}"),
        },
        _ => "-".to_owned(),
    };
    let client = client();
    let mut served_after = None;
    let served = eventually(Duration::from_secs(15), async || {
        let (status, took) = target.check(&client, "after-the-flood").await;
        served_after = Some((status, took));
        status == 200
    })
    .await;
    let rss_after = target.rss_kib();
    println!(
        "attack connection_flood: {} connections attempted, {} connected, {} timed out, {} \
         refused; gbal held {} (cap {}); health connection during: {} answers {:?}; newcomer \
         during: {}, \
         after: {}; a caller served {:.2} s after the flood stopped ({:?}); RSS {} -> {} -> {} KiB",
        scale.connection_flood,
        flooded,
        timed_out,
        refused,
        held,
        cap,
        health_during.len(),
        tally(
            &health_during
                .iter()
                .map(|s| s.unwrap_or(0))
                .collect::<Vec<_>>()
        ),
        newcomer_during,
        newcomer_after,
        stopped.elapsed().as_secs_f64(),
        served_after,
        rss_before,
        rss_during,
        rss_after
    );
    assert!(
        held <= cap,
        "gbal held {held} connections past the cap of {cap} (the health connection is one)"
    );
    assert!(
        !health_during.is_empty() && health_during.iter().all(|s| *s == Some(200)),
        "the existing health connection stopped answering /livez: {health_during:?}"
    );
    // Refused may also mean answered 503 (and closed).
    assert!(
        !newcomer_during.starts_with("answered") || newcomer_during == "answered 503",
        "a newcomer was served past the cap: {newcomer_during}"
    );
    assert!(
        newcomer_after == "-" || newcomer_after == "answered 200" || newcomer_after == "closed",
        "the waiting newcomer was neither served nor closed after the flood: {newcomer_after}"
    );
    assert!(served, "no caller served after the flood: {served_after:?}");
    target.assert_alive("the connection flood").await;
    let allowed = scale.rss_growth_kib + PER_CONNECTION_KIB * held as u64;
    assert!(
        rss_during <= rss_before + allowed,
        "RSS grew from {rss_before} to {rss_during} KiB during the flood, {held} connections held \
         (allowed: {allowed} KiB)"
    );
}

/// One caller sends many request bodies a byte at a time (and some without a token): the
/// others' checks are served meanwhile (none shed), and every slow body is ended within the
/// body deadline plus a margin.
pub async fn slow_bodies(scale: Scale) {
    let mut target = Target::start(&[
        (key::PUBLIC_MAX_IN_FLIGHT, scale.max_in_flight.to_string()),
        // One caller may hold a quarter of the replica's places at most.
        (
            key::CALLER_MAX_IN_FLIGHT,
            (scale.max_in_flight / 4).max(1).to_string(),
        ),
        (
            key::PUBLIC_BODY_TIMEOUT,
            format!("{}ms", scale.body_timeout.as_millis()),
        ),
    ])
    .await;
    let client = client();
    let bystanders = async |tag: &str| {
        let mut statuses = Vec::new();
        let mut times = Vec::new();
        for i in 0..scale.bystander_requests {
            let (status, took) = target.check(&client, &format!("bystander-{tag}-{i}")).await;
            statuses.push(status);
            times.push(took);
        }
        (statuses, times)
    };
    let (before_statuses, before_times) = bystanders("before").await;
    assert!(
        before_statuses.iter().all(|s| *s == 200),
        "checks before the attack: {:?}",
        tally(&before_statuses)
    );
    let rss_before = target.rss_kib();

    let attacker = token("slow-attacker");
    let started = Instant::now();
    let limit = scale.body_timeout + Duration::from_secs(5);
    let mut slow = Vec::new();
    for i in 0..scale.slow_bodies {
        let mut conn = Conn::open(target.public, Duration::from_secs(5))
            .await
            .expect("connect");
        // Every fourth comes without a token: it must be refused without its body being read.
        let auth = if i % 4 == 3 {
            String::new()
        } else {
            format!("Authorization: Bearer {attacker}\r\n")
        };
        let head = format!(
            "POST {BASE}/{V2_GRN}/balance HTTP/1.1\r\nHost: gbal\r\n{auth}Accept: {V2}\r\n\
             Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{{"
        );
        conn.send(head.as_bytes()).await.expect("send the head");
        let with_token = i % 4 != 3;
        slow.push(tokio::spawn(async move {
            let Conn { stream, mut buf } = conn;
            let (mut reader, mut writer) = stream.into_split();
            let mut answer = std::pin::pin!(read_answer(&mut reader, &mut buf));
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    a = &mut answer => {
                        let status = a.ok().flatten().map(|a| a.status);
                        return (with_token, status, Some(started.elapsed()));
                    }
                    _ = tick.tick() => {
                        if started.elapsed() > limit {
                            return (with_token, None, None);
                        }
                        // One more byte of whitespace: the body never ends in time.
                        let _ = writer.write_all(b" ").await;
                    }
                }
            }
        }));
    }
    let during = bystanders("during").await;
    let rss_during = target.rss_kib();
    let mut ended = Vec::new();
    for s in slow {
        ended.push(s.await.expect("slow body task"));
    }
    let rss_after = target.rss_kib();
    let unended = ended.iter().filter(|(_, _, at)| at.is_none()).count();
    let attacker_statuses: Vec<u16> = ended.iter().map(|(_, s, _)| s.unwrap_or(0)).collect();
    let untokened: Vec<Option<u16>> = ended
        .iter()
        .filter(|(t, _, _)| !t)
        .map(|(_, s, _)| *s)
        .collect();
    let latest = ended
        .iter()
        .filter_map(|(_, _, at)| *at)
        .max()
        .unwrap_or_default();
    println!(
        "attack slow_bodies: {} slow bodies from one caller (max_in_flight {}, body timeout \
         {:?}); their answers {:?} (0: closed), the last after {:.2} s, {} never ended; \
         bystanders' p99 {:?} before, {:?} during ({:?}); RSS {} -> {} -> {} KiB",
        scale.slow_bodies,
        scale.max_in_flight,
        scale.body_timeout,
        tally(&attacker_statuses),
        latest.as_secs_f64(),
        unended,
        p99(&before_times),
        p99(&during.1),
        tally(&during.0),
        rss_before,
        rss_during,
        rss_after
    );
    assert!(
        during.0.iter().all(|s| *s == 200),
        "other callers' checks during one caller's slow bodies: {:?}",
        tally(&during.0)
    );
    assert!(
        untokened.iter().all(|s| *s == Some(401)),
        "slow bodies without a token are refused with 401 before their body: {untokened:?}"
    );
    assert_eq!(
        unended, 0,
        "{unended} slow bodies still held {limit:?} after they began"
    );
    target.assert_alive("the slow-body attack").await;
    assert!(
        rss_during <= rss_before + scale.rss_growth_kib,
        "RSS grew from {rss_before} to {rss_during} KiB"
    );
}

/// One caller polls `GET /balances/{id}` as fast as it can: it is throttled to its rate,
/// and other callers' GETs are not.
pub async fn get_polling_flood(scale: Scale) {
    let (per_second, burst) = (10u64, 20u64);
    let target = Target::start(&[
        (key::RATE_PER_SECOND, per_second.to_string()),
        (key::RATE_BURST, burst.to_string()),
    ])
    .await;
    let client = client();
    let id = "0190b4d2-7c3a-7000-8000-000000000000";
    let poll = |client: &reqwest::Client, token: &str| {
        client
            .get(target.url(&format!("{BASE}/balances/{id}")))
            .bearer_auth(token)
            .header("Accept", V1)
            .send()
    };
    let started = Instant::now();
    let attacker = token("poller");
    let workers = 8;
    let flood = (0..workers).map(|_| {
        let (client, attacker) = (client.clone(), attacker.clone());
        let url = target.url(&format!("{BASE}/balances/{id}"));
        let (n, max) = (scale.get_flood / workers, scale.max_duration);
        tokio::spawn(async move {
            let mut statuses = Vec::with_capacity(n);
            for _ in 0..n {
                if started.elapsed() > max {
                    break;
                }
                let status = client
                    .get(&url)
                    .bearer_auth(&attacker)
                    .header("Accept", V1)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                statuses.push(status);
            }
            statuses
        })
    });
    let flood: Vec<_> = flood.collect();
    // Bystanders poll at a polite pace (within their rate) meanwhile.
    let mut bystander_statuses = Vec::new();
    let mut bystander_times = Vec::new();
    let tokens: Vec<String> = (0..3).map(|i| token(&format!("polite-{i}"))).collect();
    for i in 0..scale.bystander_requests {
        let t = Instant::now();
        let status = poll(&client, &tokens[i % tokens.len()])
            .await
            .map_or(0, |r| r.status().as_u16());
        bystander_statuses.push(status);
        bystander_times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for f in flood {
        statuses.extend(f.await.expect("poller"));
    }
    let took = started.elapsed();
    let served = statuses.iter().filter(|s| **s != 429).count() as u64;
    let allowed = burst + per_second * took.as_secs_f64().ceil() as u64;
    println!(
        "attack get_polling_flood: {} GETs from one caller in {:.1} s: {:?} ({} served, its rate \
         allows {}); other callers' GETs {:?}, p99 {:?}",
        statuses.len(),
        took.as_secs_f64(),
        tally(&statuses),
        served,
        allowed,
        tally(&bystander_statuses),
        p99(&bystander_times)
    );
    assert!(
        served <= allowed,
        "one caller got {served} GETs served in {took:?}; its rate allows {allowed}"
    );
    assert!(
        statuses.iter().all(|s| *s != 0),
        "every poll is answered (429 or its answer)"
    );
    assert!(
        bystander_statuses.iter().all(|s| *s == 404),
        "other callers' GETs of an unknown id are answered 404, not throttled: {:?}",
        tally(&bystander_statuses)
    );
}

/// Oversized and numerous headers, oversized bodies (declared and chunked), JSON nested
/// 10,000 deep on the public API and XML nested 10,000 deep on the reply route: each refused
/// with a 4xx (or the connection closed), gbal alive, RSS bounded.
pub async fn oversized_input() {
    // A body limit that lets the deep JSON reach the parser.
    let mut target = Target::start(&[(key::PUBLIC_BODY_LIMIT, "65536".to_owned())]).await;
    let rss_before = target.rss_kib();
    let within = Duration::from_secs(10);
    let caller = token("oversized");
    let refused = |s: Option<u16>| s.is_none_or(|s| (400..500).contains(&s));
    let mut figures = Vec::new();

    let big_header = format!(
        "GET /livez HTTP/1.1\r\nHost: gbal\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let status = exchange(target.public, big_header.as_bytes(), within).await;
    figures.push(("a 1 MiB header", status));
    assert!(refused(status), "a 1 MiB header: {status:?}");

    let mut many = String::from("GET /livez HTTP/1.1\r\nHost: gbal\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let status = exchange(target.public, many.as_bytes(), within).await;
    figures.push(("10,000 headers", status));
    assert!(refused(status), "10,000 headers: {status:?}");

    let declared = format!(
        "POST {BASE}/balances HTTP/1.1\r\nHost: gbal\r\nAuthorization: Bearer {caller}\r\n\
         Accept: {V1}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    );
    let status = exchange(target.public, declared.as_bytes(), within).await;
    figures.push(("a declared 100 MiB body", status));
    assert_eq!(status, Some(413), "a declared 100 MiB body");

    let mut chunked = format!(
        "POST {BASE}/balances HTTP/1.1\r\nHost: gbal\r\nAuthorization: Bearer {caller}\r\n\
         Accept: {V1}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..64 {
        chunked.extend_from_slice(b"4000\r\n");
        chunked.extend_from_slice(&[b' '; 0x4000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let status = exchange(target.public, &chunked, within).await;
    figures.push(("a chunked 1 MiB body", status));
    assert!(
        status.is_none() || status == Some(413),
        "a chunked 1 MiB body: {status:?}"
    );

    let deep = format!(
        r#"{{"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_json = format!(
        "POST {BASE}/balances HTTP/1.1\r\nHost: gbal\r\nAuthorization: Bearer {caller}\r\n\
         Accept: {V1}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{deep}",
        deep.len()
    );
    let status = exchange(target.public, deep_json.as_bytes(), within).await;
    figures.push(("JSON nested 10,000 deep", status));
    assert_eq!(status, Some(400), "JSON nested 10,000 deep");
    target.assert_alive("JSON nested 10,000 deep").await;

    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}{}",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    );
    let deep_xml = format!(
        "POST /balances/MDTP-GUA-000000000000000000000000 HTTP/1.1\r\nHost: gbal\r\n\
         Authorization: Bearer {REPLY_TOKEN}\r\nX-Message-Type: IE037\r\n\
         Content-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
        xml.len()
    );
    let status = exchange(target.internal, deep_xml.as_bytes(), within).await;
    figures.push(("XML nested 10,000 deep (reply route)", status));
    assert!(
        status.is_some_and(|s| (400..500).contains(&s)),
        "XML nested 10,000 deep: {status:?}"
    );
    target.assert_alive("the oversized inputs").await;
    let rss_after = target.rss_kib();
    println!("attack oversized_input: {figures:?}; RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after <= rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

/// HTTP/2 is not served: the prior-knowledge preface and an `h2c` upgrade get HTTP/1.1
/// answers (or a closed connection) on both listeners, so HTTP/2's stream attacks do not
/// apply. Should HTTP/2 ever be enabled, this fails, and the battery needs rapid-reset and
/// concurrent-stream attacks.
pub async fn http2_not_served() {
    let target = Target::start(&[]).await;
    let within = Duration::from_secs(10);
    let mut seen = Vec::new();
    for addr in [target.public, target.internal] {
        let mut conn = Conn::open(addr, within).await.expect("connect");
        conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .expect("send the preface");
        let mut first = Vec::new();
        let mut chunk = [0u8; 64];
        let read = tokio::time::timeout(within, conn.stream.read(&mut chunk)).await;
        if let Ok(Ok(n)) = read {
            first.extend_from_slice(&chunk[..n]);
        }
        assert!(
            first.is_empty() || first.starts_with(b"HTTP/1.1 "),
            "the HTTP/2 preface got something other than HTTP/1.1: {:?}",
            String::from_utf8_lossy(&first)
        );
        seen.push(
            String::from_utf8_lossy(&first)
                .lines()
                .next()
                .unwrap_or("closed")
                .to_owned(),
        );

        let upgrade =
            b"GET /livez HTTP/1.1\r\nHost: gbal\r\nConnection: Upgrade, HTTP2-Settings\r\n\
            Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
        let status = exchange(addr, upgrade, within).await;
        assert_ne!(status, Some(101), "an h2c upgrade was accepted");
        seen.push(format!("h2c upgrade: {status:?}"));
    }
    println!("attack http2_not_served: {seen:?}");
}

/// The once-a-minute rule cannot be dodged by writing a GRN in another case (API v1 keeps
/// the GRN as typed).
pub async fn grn_case_changes() {
    let target = Target::start(&[]).await;
    let client = client();
    let caller = token("case-changer");
    let mut statuses = Vec::new();
    for grn in [
        "26GB0000010000021",
        "26gb0000010000021",
        "26Gb0000010000021",
    ] {
        let status = client
            .post(target.url(&format!("{BASE}/balances")))
            .bearer_auth(&caller)
            .header("Accept", V1)
            .json(&serde_json::json!({
                "taxIdentifier": "GB954131533000",
                "guaranteeReference": grn,
                "accessCode": "AC01",
            }))
            .send()
            .await
            .expect("v1 POST")
            .status()
            .as_u16();
        statuses.push((grn, status));
    }
    println!("attack grn_case_changes: {statuses:?}");
    assert_eq!(statuses[0].1, 200, "the first check");
    for (grn, status) in &statuses[1..] {
        assert_eq!(*status, 429, "{grn} within the minute of the first check");
    }
}

/// Tokens whose `sub` shows nothing (whitespace, zero-width and other format characters) are
/// refused with 401: nobody can act as a caller that looks like no one, or like another.
pub async fn invisible_caller_ids() {
    let target = Target::start(&[]).await;
    let client = client();
    let mut seen = Vec::new();
    for sub in [
        " ",
        "\u{a0}\u{3000}",
        "\u{200b}",
        "\u{200b}\u{200c}\u{200d}\u{2060}",
        "\u{feff}",
        "\u{202e}\u{2066}",
        "\u{3164}",
        " \u{200b}\t",
    ] {
        let (status, _) = target.check(&client, sub).await;
        seen.push((sub.escape_debug().to_string(), status));
        assert_eq!(status, 401, "sub {:?}", sub.escape_debug().to_string());
    }
    // The same requests from a visible caller (invisible characters around it are its own).
    for sub in ["visible", "\u{200b}visible"] {
        let (status, _) = target.check(&client, sub).await;
        seen.push((sub.escape_debug().to_string(), status));
        assert_eq!(status, 200, "sub {:?}", sub.escape_debug().to_string());
    }
    println!("attack invisible_caller_ids: {seen:?}");
}
