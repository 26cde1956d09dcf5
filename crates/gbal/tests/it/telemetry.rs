//! Telemetry of the real binary: JSON logs with the request id in every line of a request, and
//! OTLP trace export only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, checked with an OTLP/HTTP
//! collector stand-in that decodes what it is sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use serde_json::Value;

use crate::process::{dev_token, free_port, http_client, wait_exit, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";

struct Run {
    child: Child,
    public: String,
    stdout: Arc<Mutex<Vec<String>>>,
    /// Reads the child's standard output until it closes.
    reader: Option<JoinHandle<()>>,
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
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
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
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            lines.lock().expect("lines").push(line);
        }
    });
    Run {
        child,
        public: format!("http://127.0.0.1:{port}"),
        stdout,
        reader: Some(reader),
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
    // Within the default shutdown grace (25 s) and a margin.
    let status = wait_exit(&mut run.child, Duration::from_secs(40)).await;
    assert!(status.success(), "gbal exited with {status}");
    // Every line it printed, up to the end of its output.
    if let Some(reader) = run.reader.take() {
        reader.join().expect("the output reader");
    }
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

/// One request a collector was sent: its path, content type and body.
#[derive(Debug, Clone)]
struct Export {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// What a collector was sent.
type Seen = Arc<Mutex<Vec<Export>>>;

/// An OTLP/HTTP collector stand-in on `listener`: it records every request it gets and answers
/// 200 (an empty protobuf `ExportTraceServiceResponse`).
fn collector_on(listener: TcpListener) -> Seen {
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
            record.lock().expect("seen").push(Export {
                path,
                content_type: header("content-type"),
                body: buf[head_end..].to_vec(),
            });
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    seen
}

/// A collector on a free port, and its URL.
fn collector() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (url, collector_on(listener))
}

/// One exported span: its service's name, its own name, its string attributes.
type Span = (String, String, Vec<(String, String)>);

/// The spans of every trace export a collector was sent.
fn spans(seen: &Seen) -> Vec<Span> {
    let mut out = Vec::new();
    for export in seen.lock().expect("seen").iter() {
        assert_eq!(export.path, "/v1/traces", "{export:?}");
        assert_eq!(export.content_type, "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(export.body.as_slice())
            .expect("an OTLP ExportTraceServiceRequest");
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    any_value::Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                let attributes = span
                    .attributes
                    .iter()
                    .filter_map(|a| match a.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(s) => Some((a.key.clone(), s.clone())),
                        _ => None,
                    })
                    .collect();
                out.push((service.clone(), span.name, attributes));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_are_exported_over_otlp_when_an_endpoint_is_set() {
    let (url, seen) = collector();
    let mut run = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url)]);
    check_and_stop(&mut run, "telemetry-otlp-1").await;
    // The last batch is flushed at shutdown: everything is there once the process has exited.
    let spans = spans(&seen);
    let request = spans
        .iter()
        .find(|(_, name, attributes)| {
            name == "request"
                && attributes
                    .iter()
                    .any(|(k, v)| k == "request_id" && v == "telemetry-otlp-1")
        })
        .unwrap_or_else(|| panic!("no span of the request reached the collector: {spans:?}"));
    assert_eq!(request.0, "gbal", "the service is named");
    assert!(
        spans.iter().any(|(_, name, _)| name == "gms_submit"),
        "the GMS call is traced too: {spans:?}"
    );
    let all = format!("{spans:?}");
    assert!(!all.contains("AC01"), "the access code reached a span");
}

/// Without an endpoint nothing is exported: not even to OTLP/HTTP's default endpoint
/// (`localhost:4318`), where an exporter built with no endpoint would send. The test holds that
/// port for its run; it fails, saying so, when something else holds it.
#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_exported_without_an_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:4318").unwrap_or_else(|e| {
        panic!("this test listens on OTLP/HTTP's default port 127.0.0.1:4318, which is taken: {e}")
    });
    let seen = collector_on(listener);
    // IPv6's loopback too, where the machine has one ("localhost" may resolve to it first).
    let seen_v6 = TcpListener::bind("[::1]:4318").ok().map(collector_on);
    // Every other OTLP variable set, and the endpoint present but empty: none of them turns
    // the export on.
    let mut run = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", String::new()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_SERVICE_NAME", "gbal-telemetry-test".to_owned()),
    ]);
    check_and_stop(&mut run, "telemetry-otlp-2").await;
    assert!(
        seen.lock().expect("seen").is_empty(),
        "something was exported to the default endpoint"
    );
    if let Some(seen) = seen_v6 {
        assert!(seen.lock().expect("seen").is_empty());
    }
}
