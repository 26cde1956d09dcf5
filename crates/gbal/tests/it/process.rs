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

/// The reference examples.
pub fn examples_dir() -> PathBuf {
    let shared = std::env::var_os("GBAL_SHARED_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let dir = shared.join("reference/xsd/examples");
    assert!(
        dir.is_dir(),
        "{} is missing (set GBAL_SHARED_DIR)",
        dir.display()
    );
    dir
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
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut internal) = (None, None);
        let mut early = Vec::new();
        while public.is_none() || internal.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("gbal serve did not say where it listens within 30 s");
            });
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
