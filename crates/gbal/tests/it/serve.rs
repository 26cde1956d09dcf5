//! `gbal serve` with no configuration: ready, tokens, v1 and v2 checks over HTTP, SIGTERM.

use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{Server, run, wait_exit, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn wait_ready(server: &Server) {
    wait_ready_at(&server.public, Duration::from_secs(30)).await;
}

fn token(server: &Server, sub: &str) -> String {
    let out = run(server.dir.path(), &["token", "--sub", sub], &[]);
    assert!(
        out.status.success(),
        "gbal token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_with_no_configuration_and_answers_v1_and_v2() {
    let server = Server::start(&[]);
    wait_ready(&server).await;
    let token = token(&server, "black-box");
    let base = format!("{}/customs/guarantees", server.public);

    let v1 = client()
        .post(format!("{base}/balances"))
        .bearer_auth(&token)
        .header("Accept", V1)
        .json(&json!({"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":"AC01"}))
        .send()
        .await
        .expect("v1 POST");
    assert_eq!(v1.status(), 200);
    let body = v1.text().await.expect("body");
    assert_eq!(
        body,
        r#"{"response":{"balance":12345678.9,"currency":"GBP"}}"#
    );

    let v2 = client()
        .post(format!("{base}/26XI0000010000036/balance"))
        .bearer_auth(&token)
        .header("Accept", V2)
        .json(&json!({"accessCode":"ac01"}))
        .send()
        .await
        .expect("v2 POST");
    assert_eq!(v2.status(), 200);
    let body: Value = v2.json().await.expect("JSON");
    assert_eq!(body["balance"], json!(7500.25));
    assert_eq!(body["currency"], "EUR");

    // The development token only works with this process's secret: a forged one is refused.
    let forged = client()
        .post(format!("{base}/26XI0000010000010/balance"))
        .bearer_auth(format!("{token}x"))
        .header("Accept", V2)
        .json(&json!({"accessCode":"AC01"}))
        .send()
        .await
        .expect("v2 POST");
    assert_eq!(forged.status(), 401);

    // The client subcommand against the same process.
    let out = run(
        server.dir.path(),
        &[
            "check",
            "--url",
            &server.public,
            "--token",
            &token,
            "--grn",
            "26GB0000010000039",
            "--access-code",
            "AC01",
            "--tin",
            "GB954131533000",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "balance: 1234.56 GBP"
    );

    let metrics = client()
        .get(format!("{}/metrics", server.internal))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("gbal_balance_outcomes_total"), "{text}");
    assert!(!text.contains("AC01") && !text.contains("ac01"));
    let logs = server.output().join("\n");
    assert!(
        logs.contains("DEVELOPMENT MODE"),
        "the development secret must be announced loudly:\n{logs}"
    );
    assert!(
        !logs.contains("AC01") && !logs.contains("ac01"),
        "access code in the logs:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_waiting_request_finish_and_exits_0() {
    // 26GB0000090000011's reply comes 2 s late; readiness must be 503 while the process drains
    // (and the listener keeps answering for the shutdown delay, so that it can be seen).
    let (delay, grace) = (Duration::from_secs(2), Duration::from_secs(10));
    let mut server = Server::start(&[
        ("GBAL_SHUTDOWN__DELAY", "2s"),
        ("GBAL_SHUTDOWN__GRACE", "10s"),
    ]);
    wait_ready(&server).await;
    let token = token(&server, "draining");
    let url = format!("{}/customs/guarantees/balances", server.public);
    let request = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(token)
            .header("Accept", V1)
            .json(&json!({"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000090000011","accessCode":"AC01"}))
            .send()
            .await
    });
    // Signalled once the check is inside the balance service, waiting for its reply.
    let metrics = format!("{}/metrics", server.internal);
    gbal_testkit::eventually(
        Duration::from_secs(30),
        "the check is in flight",
        || async {
            let text = client().get(&metrics).send().await.expect("metrics");
            text.text()
                .await
                .expect("metrics text")
                .lines()
                .any(|l| l.starts_with("gbal_balance_checks_in_flight ") && !l.ends_with(" 0"))
        },
    )
    .await;
    server.terminate();
    gbal_testkit::eventually(
        Duration::from_secs(30),
        "readiness turns 503 on SIGTERM",
        || async {
            let ready = client()
                .get(format!("{}/readyz", server.public))
                .send()
                .await
                .expect("readyz answers while draining");
            ready.status() == 503
        },
    )
    .await;

    let answer = request
        .await
        .expect("task")
        .expect("the waiting request got an answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.expect("body"),
        r#"{"response":{"balance":10000,"currency":"GBP"}}"#
    );

    // It exits within its delay and grace (and a generous margin for a slow machine).
    let status = wait_exit(&mut server.child, delay + grace + Duration::from_secs(10)).await;
    assert!(status.success(), "gbal exited with {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_polls_a_pending_request_until_its_balance_arrives() {
    // A 1 s synchronous wait and the sandbox guarantee answered after 2 s: 202, then polling.
    let server = Server::start(&[("GBAL_BALANCE__SYNC_WAIT", "1s")]);
    wait_ready(&server).await;
    let token = token(&server, "polling");
    let out = run(
        server.dir.path(),
        &[
            "check",
            "--url",
            &server.public,
            "--token",
            &token,
            "--grn",
            "26GB0000090000011",
            "--access-code",
            "AC01",
            "--tin",
            "GB954131533000",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "balance: 10000 GBP"
    );
    assert!(
        stderr.contains("202") && stderr.contains("pending"),
        "progress while polling: {stderr}"
    );

    // A refusal is printed readably and exits 1.
    let out = run(
        server.dir.path(),
        &[
            "check",
            "--url",
            &server.public,
            "--token",
            &token,
            "--grn",
            "26GB0000010000012",
            "--access-code",
            "ZZ99",
            "--tin",
            "GB954131533000",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("error 12 at GRR(1).ACC(1).Access code"));
}
