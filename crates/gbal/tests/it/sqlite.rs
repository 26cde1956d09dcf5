//! `database.url` as a `sqlite:` URL: `gbal serve` keeps its requests in the file the URL
//! names (or in memory), and a URL of a scheme gbal does not know stops it naming the key.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::process::{Server, dev_token, gbal, http_client, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";
const GRN: &str = "26GB0000010000021";

/// A v1 check of the sandbox's `GRN` on `server`, answered with its balance; returns what
/// the server printed so far.
async fn check(server: &Server) -> String {
    wait_ready_at(&server.public, Duration::from_secs(30)).await;
    let answer = http_client(Duration::from_secs(30))
        .post(format!("{}/customs/guarantees/balances", server.public))
        .bearer_auth(dev_token("sqlite-url"))
        .header("Accept", V1)
        .json(
            &json!({"taxIdentifier":"GB954131533000","guaranteeReference":GRN,"accessCode":"AC01"}),
        )
        .send()
        .await
        .expect("v1 POST");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["response"]["balance"], json!(12345678.9), "{body}");
    let logs = server.output().join("\n");
    assert!(
        logs.contains("database.url is SQLite"),
        "the start-up warning names the store:\n{logs}"
    );
    logs
}

/// The GRNs of the requests in the SQLite file at `path`, with their status.
async fn rows(path: &Path) -> Vec<(String, Option<String>)> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("open the SQLite file gbal wrote");
    let rows = sqlx::query_as("SELECT grn, status FROM balance_requests")
        .fetch_all(&mut conn)
        .await
        .expect("read balance_requests");
    conn.close().await.expect("close");
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_url_keeps_the_requests_in_the_file_it_names() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Both ways of writing it, each naming a file in a folder that does not exist yet.
    for (key, url, file) in [
        (
            "GBAL_DATABASE__URL",
            format!("sqlite://{}/one/x.db", dir.path().display()),
            dir.path().join("one/x.db"),
        ),
        (
            "DATABASE_URL",
            format!("sqlite:{}/two/x.db", dir.path().display()),
            dir.path().join("two/x.db"),
        ),
    ] {
        let server = Server::start(&[(key, &url)]);
        check(&server).await;
        assert!(file.is_file(), "{key}={url}: no file at {}", file.display());
        assert_eq!(
            rows(&file).await,
            [(GRN.to_owned(), Some("SUCCESS".to_owned()))],
            "{key}={url}"
        );
        assert!(
            !server.dir.path().join("data").exists(),
            "{key}={url}: the default ./data/gbal.sqlite was made too"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_memory_url_serves_from_memory() {
    let server = Server::start(&[("DATABASE_URL", "sqlite::memory:")]);
    let logs = check(&server).await;
    assert!(logs.contains(":memory:"), "{logs}");
    assert!(!server.dir.path().join("data").exists());
}

/// Runs `gbal <command>` with `DATABASE_URL=url` and expects a refusal at once: exit 2 and a
/// message naming `database.url`, without the URL's password.
fn refused(command: &str, url: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut child = gbal()
        .current_dir(dir.path())
        .arg(command)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .env("GBAL_PUBLIC__LISTEN", "127.0.0.1:0")
        .env("GBAL_INTERNAL__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gbal");
    // It refuses before it opens anything; 30 s bounds "at once" on a slow machine.
    let exited = gbal_testkit::until_blocking(
        Duration::from_secs(30),
        || child.try_wait().expect("try_wait"),
        Option::is_some,
    );
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("gbal {command} started with DATABASE_URL={url}");
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{command} {url}: {stderr}");
    assert!(
        stderr.contains("database.url: "),
        "{command} {url}: {stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{command} {url}: {stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "{command} {url}: a store was made"
    );
}

#[test]
fn sqlite_or_postgres_only_an_unknown_scheme_is_a_configuration_error() {
    for command in ["serve", "migrate"] {
        refused(command, "mysql://gbal:s3cret@db/gbal");
        refused(command, "gbal:s3cret@db/gbal");
        refused(command, "sqlite://x.db?mode=bogus");
    }
}
