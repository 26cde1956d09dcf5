//! Telemetry of the real binary: JSON logs with the request id in every line of a request, and
//! OTLP trace export only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{dev_token, free_port, http_client, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";

struct Run {
    child: Child,
    public: String,
    stdout: Arc<Mutex<Vec<String>>>,
}

fn start(env: &[(&str, String)]) -> Run {
    let dir = tempfile::tempdir().expect("dir").keep();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbal"));
    cmd.current_dir(dir)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("GBAL_PUBLIC__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "GBAL_INTERNAL__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn gbal serve");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let lines = stdout.clone();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            lines.lock().expect("lines").push(line);
        }
    });
    Run {
        child,
        public: format!("http://127.0.0.1:{port}"),
        stdout,
    }
}

async fn check_and_stop(run: &mut Run, request_id: &str) {
    wait_ready_at(&run.public, Duration::from_secs(30)).await;
    let response = http_client(Duration::from_secs(20))
        .post(format!("{}/customs/guarantees/balances", run.public))
        .bearer_auth(dev_token("telemetry"))
        .header("Accept", V1)
        .header("X-Request-Id", request_id)
        .json(&serde_json::json!({"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000012","accessCode":"AC01"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-request-id"],
        request_id,
        "the request id is echoed"
    );
    let pid = run.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = run.child.try_wait().expect("wait") {
            assert!(status.success(), "gbal exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "gbal did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the reader thread take the last lines.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_in_every_line_of_a_request() {
    let mut run = start(&[("GBAL_TELEMETRY__LOG_FORMAT", "json".to_owned())]);
    check_and_stop(&mut run, "telemetry-request-42").await;
    let lines = run.stdout.lock().expect("lines").clone();
    assert!(!lines.is_empty());
    let events: Vec<Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    // Events logged inside the request (the GMS call, the outcome) name the request id.
    let in_request: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == "request"))
        })
        .collect();
    assert!(
        !in_request.is_empty(),
        "no event inside a request span:\n{}",
        lines.join("\n")
    );
    for e in &in_request {
        let spans = e["spans"].as_array().expect("spans");
        assert!(
            spans
                .iter()
                .any(|s| s["request_id"] == "telemetry-request-42"),
            "an event of the request without its id: {e}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "gbal listening" && e["public_addr"].is_string())
    );
    let all = lines.join("\n");
    assert!(!all.contains("AC01"), "the access code reached a log line");
}

/// What a collector saw: path, content type and body length of each request.
type Seen = Arc<Mutex<Vec<(String, String, usize)>>>;

/// A collector that records the path and content type of every request it gets.
fn collector() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        l.strip_prefix(&format!("{name}:"))
                            .map(|v| v.trim().to_owned())
                    })
                    .unwrap_or_default()
            };
            let length: usize = header("content-length").parse().unwrap_or(0);
            while buf.len() < head_end + length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            record
                .lock()
                .expect("seen")
                .push((path, header("content-type"), length));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_are_exported_over_otlp_only_when_an_endpoint_is_set() {
    let (url, seen) = collector();
    let mut run = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url.clone())]);
    check_and_stop(&mut run, "telemetry-otlp-1").await;
    let exports = seen.lock().expect("seen").clone();
    assert!(
        exports.iter().any(|(path, kind, len)| path == "/v1/traces"
            && kind == "application/x-protobuf"
            && *len > 0),
        "no OTLP trace export reached the collector: {exports:?}"
    );

    // Without the variable, nothing is sent anywhere.
    let (_, quiet) = collector();
    let mut run = start(&[]);
    check_and_stop(&mut run, "telemetry-otlp-2").await;
    assert!(quiet.lock().expect("seen").is_empty());
    assert_eq!(
        seen.lock().expect("seen").len(),
        exports.len(),
        "the first collector got nothing more"
    );
}
