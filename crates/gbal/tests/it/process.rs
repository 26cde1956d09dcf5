//! Running `gbal` as a child process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn gbal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gbal"))
}

/// Runs `gbal args...` in `dir` with extra environment variables and waits for it.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = gbal();
    cmd.current_dir(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gbal")
}

/// gbal's example messages (`valid/` and `invalid/`), kept in the repository.
pub fn examples_dir() -> PathBuf {
    gbal_testkit::reference::messages_dir()
}

/// A running `gbal serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub public: String,
    pub internal: String,
    pub lines: mpsc::Receiver<String>,
    pub dir: tempfile::TempDir,
    early: Vec<String>,
}

impl Server {
    /// Starts `gbal serve` with no configuration file, in a fresh directory, on free ports.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut cmd = gbal();
        cmd.current_dir(dir.path())
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("GBAL_PUBLIC__LISTEN", "127.0.0.1:0")
            .env("GBAL_INTERNAL__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gbal serve");
        let lines = output_lines(&mut child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut internal) = (None, None);
        let mut early = Vec::new();
        while public.is_none() || internal.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    panic!(
                        "gbal serve exited ({status}) before it said where it listens; it printed:\n{}",
                        early.join("\n")
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!(
                        "gbal serve did not say where it listens within 30 s; it printed:\n{}",
                        early.join("\n")
                    );
                }
            };
            let url = |l: &str| {
                l.split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(|u| {
                        let rest = &u["http://".len()..];
                        format!("http://{}", &rest[..rest.find('/').unwrap_or(rest.len())])
                    })
            };
            if line.trim_start().starts_with("public API:") {
                public = url(&line);
            } else if line.trim_start().starts_with("internal:") {
                internal = url(&line);
            } else if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "gbal listening"
            {
                // JSON logs carry no banner; the log line names both addresses.
                let addr = |key: &str| event[key].as_str().map(|a| format!("http://{a}"));
                public = addr("public_addr");
                internal = addr("internal_addr");
            }
            early.push(line);
        }
        Server {
            child,
            public: public.expect("public URL"),
            internal: internal.expect("internal URL"),
            lines,
            dir,
            early,
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> Vec<String> {
        self.early
            .iter()
            .cloned()
            .chain(self.lines.try_iter())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Helpers of the fault and multi-replica tests (faults.rs, replicas.rs).

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no drain, no flush) and reaps it.
    pub fn kill_hard(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL failed");
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// A TCP port that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A development token for `sub`, signed like `gbal token --sub <sub>` signs it (the same
/// function, called in process: the load and fault tests need many callers).
pub fn dev_token(sub: &str) -> String {
    let config = gbal::config::Config::load(None).expect("the built-in configuration loads");
    gbal::token::mint(&config, sub, None, Duration::from_secs(3600)).expect("a token")
}

/// An HTTP client whose every request is bounded.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Waits until `GET {public}/readyz` answers 200.
pub async fn wait_ready_at(public: &str, within: Duration) {
    let client = http_client(Duration::from_secs(3));
    gbal_testkit::eventually(within, &format!("{public}/readyz answers 200"), || async {
        client
            .get(format!("{public}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// Waits until `child` exits, for at most `within` (a bound on "eventually": generous, above
/// whatever configured delay and grace the test gave it), and returns how it ended.
pub async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    gbal_testkit::eventually_some(within, "the process exits", || {
        let status = child.try_wait().expect("try_wait");
        async move { status }
    })
    .await
}

/// A running `gbal gms-sim`, killed when dropped.
pub struct Sim {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub lines: mpsc::Receiver<String>,
}

impl Sim {
    /// Starts `gbal gms-sim --listen <listen> args...` and waits until it says where it listens.
    pub fn start(listen: &str, args: &[&str]) -> Sim {
        let mut cmd = gbal();
        cmd.arg("gms-sim")
            .args(["--listen", listen])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gbal gms-sim");
        let lines = output_lines(&mut child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("gbal gms-sim did not say where it listens within 30 s");
            });
            if let Some(rest) = line.strip_prefix("GMS simulator listening on ") {
                break rest.trim().to_owned();
            }
        };
        Sim { child, url, lines }
    }

    /// Where gbal posts IE034 messages.
    pub fn messages_url(&self) -> String {
        format!("{}/movements/messages", self.url)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines `child` prints on stdout and stderr, as they come (one reader thread per stream).
fn output_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    lines
}
