//! Audit events of the real binary: JSON lines on the `gbal::audit` target whatever the log
//! format and level, and the HTTP sink's last flush when the process stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::process::{Server, dev_token, http_client, wait_exit};

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
/// The sandbox's access code, in a case only these checks use (GMS matches it regardless).
const CODE: &str = "aC01";

/// A balance (v1) and a v2 body that is not JSON: a `SUCCESS` and an `INVALID_REQUEST`.
/// Returns the request ids of the two exchanges.
async fn two_checks(server: &Server, sub: &str) -> [String; 2] {
    let client = http_client(Duration::from_secs(20));
    let token = dev_token(sub);
    let ok = client
        .post(format!("{}/customs/guarantees/balances", server.public))
        .bearer_auth(&token)
        .header("accept", V1)
        .json(&serde_json::json!({"taxIdentifier": "GB954131533000",
            "guaranteeReference": "26GB0000010000021", "accessCode": CODE}))
        .send()
        .await
        .expect("v1 check");
    assert_eq!(ok.status(), 200);
    let refused = client
        .post(format!(
            "{}/customs/guarantees/26GB0000010000039/balance",
            server.public
        ))
        .bearer_auth(&token)
        .header("accept", V2)
        .header("content-type", "text/plain")
        .body(format!(r#"{{"accessCode":"{CODE}"}}"#))
        .send()
        .await
        .expect("v2 check");
    assert_eq!(refused.status(), 415);
    let id = |r: &reqwest::Response| {
        r.headers()["x-request-id"]
            .to_str()
            .expect("a request id")
            .to_owned()
    };
    [id(&ok), id(&refused)]
}

#[tokio::test]
async fn audit_events_are_json_lines_on_their_target_whatever_the_log_format_and_level() {
    for format in ["text", "json"] {
        let server = Server::start(&[
            ("GBAL_TELEMETRY__LOG_FORMAT", format),
            // No INFO line but the one that says where gbal listens: audit events are not
            // log lines, and the log level does not filter them.
            ("GBAL_TELEMETRY__LOG_LEVEL", "warn,gbal::serve=info"),
        ]);
        let sub = format!("audit-{format}");
        let ids = two_checks(&server, &sub).await;
        let mut output = Vec::new();
        let audit_lines =
            gbal_testkit::eventually_some(Duration::from_secs(10), "two audit lines", || {
                output.extend(server.output());
                let lines: Vec<String> = output
                    .iter()
                    .filter(|l| l.contains("gbal::audit"))
                    .cloned()
                    .collect();
                async move { (lines.len() >= 2).then_some(lines) }
            })
            .await;
        assert_eq!(audit_lines.len(), 2, "{format}: {audit_lines:#?}");
        let events: Vec<Value> = audit_lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{format}: {e}: {l}")))
            .collect();
        assert!(
            audit_lines
                .iter()
                .all(|l| l.starts_with(r#"{"target":"gbal::audit","eventType":"#)),
            "{audit_lines:#?}"
        );
        assert_eq!(events[0]["eventType"], "SUCCESS");
        assert_eq!(events[0]["caller"], sub.as_str());
        assert_eq!(events[0]["apiVersion"], 1);
        assert_eq!(events[0]["grn"], "26GB0000010000021");
        assert_eq!(events[0]["taxIdentifier"], "GB954131533000");
        assert_eq!(events[0]["balance"], 12345678.9);
        assert_eq!(events[0]["httpRequestId"], ids[0].as_str());
        assert_eq!(events[1]["eventType"], "INVALID_REQUEST");
        assert_eq!(events[1]["httpStatus"], 415);
        assert_eq!(events[1]["apiVersion"], 2);
        assert_eq!(events[1]["httpRequestId"], ids[1].as_str());
        // The log level kept the check's INFO lines out; the access code is nowhere.
        assert!(
            !output
                .iter()
                .any(|l| l.contains("simulated GMS answered") || l.contains(CODE)),
            "{format}: {output:#?}"
        );
    }
}

/// What the audit endpoint was sent: each request's `Authorization` header and body.
type Posts = Arc<Mutex<Vec<(String, String)>>>;

/// A local audit endpoint on a thread: answers 204 to every request and keeps what it was
/// sent.
fn receiver() -> (String, Posts) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/audit", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let kept = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("a socket");
                let mut reader = BufReader::new(stream);
                loop {
                    let (mut length, mut auth) = (0, String::new());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap_or((header, ""));
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        } else if name.eq_ignore_ascii_case("authorization") {
                            auth = value.trim().to_owned();
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    kept.lock()
                        .unwrap()
                        .push((auth, String::from_utf8_lossy(&body).into_owned()));
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, posts)
}

#[tokio::test]
async fn the_http_sink_flushes_what_is_queued_when_the_process_stops() {
    let (url, posts) = receiver();
    let mut server = Server::start(&[
        ("GBAL_AUDIT__SINK", "http"),
        ("GBAL_AUDIT__HTTP_URL", url.as_str()),
        ("GBAL_AUDIT__HTTP_TOKEN", "audit-token-0123"),
        // Nothing is sent before the stop: a batch waits a minute for more events.
        ("GBAL_AUDIT__FLUSH_INTERVAL", "60s"),
    ]);
    let ids = two_checks(&server, "audit-http").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(posts.lock().unwrap().is_empty(), "sent before the stop");
    server.terminate();
    let status = wait_exit(&mut server.child, Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");

    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "one batch: {posts:#?}");
    let (auth, body) = &posts[0];
    assert_eq!(auth, "Bearer audit-token-0123");
    let events: Vec<Value> = serde_json::from_str(body).expect("a JSON array");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["SUCCESS", "INVALID_REQUEST"]);
    assert_eq!(events[0]["httpRequestId"], ids[0].as_str());
    assert!(!body.contains(CODE), "{body}");
    // The HTTP sink replaces the log: no audit line on stdout.
    assert!(
        !server.output().iter().any(|l| l.contains("gbal::audit")),
        "{:#?}",
        server.output()
    );
}
