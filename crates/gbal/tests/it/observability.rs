//! What operators are given to watch gbal: every metric the dashboard and the alert rules in
//! `deploy/observability` use is one a running `gbal serve` exposes on `/metrics`; and
//! `gbal --version` names the commit the binary was built from.
//!
//! Self-contained on purpose (its own process and database handling): it reads the deploy
//! files, not the crates, and must keep working whatever shape the shared test helpers take.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Gauges the dashboard and the rules use that gbal does not expose yet (the pending-request
/// gauges are being added). The test fails once one of them appears on `/metrics`, so that
/// this list is emptied then, and with it the exemption.
const PENDING: &[&str] = &[
    "gbal_pending_requests",
    "gbal_oldest_pending_request_age_seconds",
];

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
const REPLY_TOKEN: &str = "observability-reply-token";

fn observability_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability")
}

// ---------------------------------------------------------------------------------------
// Metric names in PromQL.

/// The metric names an expression selects: what is left once strings, label matchers, range
/// and offset durations, grouping label lists, function names and keywords are taken out.
/// Grafana's `label_values(<selector>, <label>)` is read as its selector.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let expr = expr.trim();
    let expr = match expr
        .strip_prefix("label_values(")
        .and_then(|rest| rest.rsplit_once(','))
    {
        Some((selector, _label)) => selector,
        None => expr,
    };
    // Strings first: a label value may hold braces or brackets.
    let mut plain = String::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            while let Some(d) = chars.next() {
                if d == '\\' && c != '`' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
            plain.push_str("\"\"");
        } else {
            plain.push(c);
        }
    }
    let plain = remove_groups(&plain, '{', '}');
    let plain = remove_groups(&plain, '[', ']');

    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let tokens = tokenize(&plain);
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let next = tokens.get(i + 1).map(String::as_str);
        let is_ident = token.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':');
        if is_ident && GROUPING.contains(&token.to_ascii_lowercase().as_str()) {
            // Skip the label list that follows, if any: `by (a, b)`, `group_left`.
            i += 1;
            if tokens.get(i).map(String::as_str) == Some("(") {
                while tokens.get(i).is_some_and(|t| t != ")") {
                    i += 1;
                }
            }
        } else if is_ident
            && next != Some("(")
            // An aggregation with its grouping first: `sum by (a) (…)`.
            && !next.is_some_and(|n| ["by", "without"].contains(&n.to_ascii_lowercase().as_str()))
            && !KEYWORDS.contains(&token.to_ascii_lowercase().as_str())
        {
            names.insert(token.clone());
        }
        i += 1;
    }
    names
}

/// `text` without every `open … close` group (not nested in PromQL once strings are gone).
fn remove_groups(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in text.chars() {
        match c {
            c if c == open => inside = true,
            c if c == close => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Identifiers, numbers and single punctuation characters.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.' || c == '$' {
            let mut word = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' || d == '.' || d == '$' {
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(word);
        } else {
            tokens.push(c.to_string());
            chars.next();
        }
    }
    tokens
}

#[test]
fn observability_metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"sum by (le, http_route) (rate(a_bucket{job="$job", http_route="/x/{id}", b=~"[a]"}[$__rate_interval]))
           / on (pod) group_left (ns) max without(x) (b_total offset 5m) > bool 0 and c:rate5m"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["a_bucket", "b_total", "c:rate5m"]
    );
    assert_eq!(
        metric_names(r#"label_values(gbal_x{job="$job"}, namespace)"#)
            .into_iter()
            .collect::<Vec<_>>(),
        ["gbal_x"]
    );
}

/// Every PromQL expression of the dashboard (panel queries and variable queries).
fn dashboard_exprs(board: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut panels: Vec<&Value> = Vec::new();
    for panel in board["panels"].as_array().expect("dashboard panels") {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("a target's expr").to_owned());
        }
    }
    for variable in board["templating"]["list"].as_array().expect("variables") {
        if variable["type"] == "query" {
            let query = &variable["query"];
            let query = query["query"].as_str().or(query.as_str()).expect("query");
            exprs.push(query.to_owned());
        }
    }
    exprs
}

/// Every `expr:` of a rule file, written inline or as a block scalar (`expr: |`).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        if let Some(rest) = line.trim_start().strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let mut block = Vec::new();
                while let Some(next) = lines.get(i + 1) {
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    block.push(next.trim());
                    i += 1;
                }
                exprs.push(block.join(" "));
            } else {
                exprs.push(rest.trim_matches(|c| c == '"' || c == '\'').to_owned());
            }
        }
        i += 1;
    }
    exprs
}

/// The metric names the dashboard and the rules use, with where each comes from.
fn used_metric_names() -> Vec<(String, String)> {
    let dir = observability_dir();
    let mut used = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path);
        let exprs = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                dashboard_exprs(&serde_json::from_str(&text.expect("read")).expect("JSON"))
            }
            Some("yaml") if name != "kustomization.yaml" => rule_exprs(&text.expect("read")),
            _ => continue,
        };
        assert!(!exprs.is_empty(), "{name}: no expressions found");
        for expr in exprs {
            for metric in metric_names(&expr) {
                used.push((metric, name.clone()));
            }
        }
    }
    used
}

// ---------------------------------------------------------------------------------------
// A running gbal.

/// A `gbal serve` child process, killed when dropped.
struct Serve {
    child: Child,
    public: String,
    internal: String,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbal"));
        cmd.current_dir(dir.path())
            .arg("serve")
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .env("GBAL_PUBLIC__LISTEN", "127.0.0.1:0")
            .env("GBAL_INTERNAL__LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        // The text banner: "  public API:   http://127.0.0.1:<port>/customs/guarantees  (…)".
        let origin = |line: &str| {
            let url = line.split_whitespace().find(|w| w.starts_with("http://"))?;
            let rest = &url["http://".len()..];
            Some(format!(
                "http://{}",
                &rest[..rest.find('/').unwrap_or(rest.len())]
            ))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut internal, mut seen) = (None, None, Vec::new());
        while public.is_none() || internal.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                panic!("gbal serve did not start within 30 s:\n{}", seen.join("\n"));
            };
            if line.trim_start().starts_with("public API:") {
                public = origin(&line);
            } else if line.trim_start().starts_with("internal:") {
                internal = origin(&line);
            }
            seen.push(line);
        }
        // Keep draining the output so that the child never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Serve {
            child,
            public: public.unwrap(),
            internal: internal.unwrap(),
            _dir: dir,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn dev_token(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gbal"))
        .args(["token", "--sub", sub])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run gbal token");
    assert!(out.status.success(), "gbal token failed");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The names of the series on `/metrics` (histograms as `_bucket`, `_sum`, `_count`).
async fn exposed_names(internal: &str) -> BTreeSet<String> {
    let text = client()
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// A fresh database on the PostgreSQL server of `DATABASE_URL` (the local default without it):
/// the database gauges exist only with PostgreSQL.
struct Database {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Database {
        let server = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at DATABASE_URL must answer: {e}"));
        let name = format!("gbal_obs_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .expect("drop a leftover database");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("the role may create databases");
        // Same user, host, port and parameters; another database name.
        let (scheme, rest) = server.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let query = path.split_once('?').map(|(_, q)| format!("?{q}"));
        let url = format!("{scheme}://{authority}/{name}{}", query.unwrap_or_default());
        Database { admin, name, url }
    }

    async fn drop_database(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await;
        self.admin.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn observability_every_metric_of_the_dashboard_and_rules_is_exposed() {
    let used = used_metric_names();
    let distinct: BTreeSet<&str> = used.iter().map(|(m, _)| m.as_str()).collect();
    // The extraction itself must have found the dashboard's and the rules' metrics.
    assert!(
        distinct.len() >= 15
            && distinct.contains("gbal_gms_calls_total")
            && distinct.contains("http_server_request_duration_seconds_bucket"),
        "too few metric names read from deploy/observability: {distinct:?}"
    );

    let db = Database::create().await;
    let url = db.url.clone();
    let run = tokio::spawn(async move { drive_and_scrape(&url).await });
    let outcome = tokio::time::timeout(Duration::from_secs(90), run).await;
    // Let the killed process's connections go before the database does.
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.drop_database().await;
    let exposed = match outcome {
        Err(_) => panic!("the test did not finish within 90 s"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the test task failed: {e}"),
        Ok(Ok(exposed)) => exposed,
    };

    let missing: BTreeSet<String> = used
        .iter()
        .filter(|(m, _)| !exposed.contains(m) && !PENDING.contains(&m.as_str()))
        .map(|(m, file)| format!("{m} (in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/observability uses metrics gbal does not expose: {missing:?}\nexposed: {exposed:?}"
    );
    for pending in PENDING {
        assert!(
            !exposed.contains(*pending),
            "gbal now exposes {pending}: take it off PENDING in tests/it/observability.rs"
        );
    }
}

/// Starts gbal on `database_url`, makes every series the dashboard needs appear, and returns
/// the names on `/metrics` once they stop changing.
async fn drive_and_scrape(database_url: &str) -> BTreeSet<String> {
    // One balance request in flight at a time, and each held 2 s by the simulator's reply
    // delay, so that a second one at the same time is shed.
    let gbal = Serve::start(&[
        ("DATABASE_URL", database_url),
        ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN),
        ("GBAL_PUBLIC__MAX_IN_FLIGHT", "1"),
        ("GBAL_SIMULATOR__REPLY_DELAY", "2s"),
    ]);
    let base = format!("{}/customs/guarantees", gbal.public);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client()
        .get(format!("{}/readyz", gbal.public))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "/readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = dev_token("observability");
    let v1_body = json!({"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":"AC01"});

    // A v1 check, and while it waits for its reply a v2 check, which is shed.
    let v1 = {
        let (url, token, body) = (format!("{base}/balances"), token.clone(), v1_body.clone());
        tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth(token)
                .header("Accept", V1)
                .json(&body)
                .send()
                .await
                .expect("v1 POST")
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v2 = |grn: &'static str| {
        client()
            .post(format!("{base}/{grn}/balance"))
            .bearer_auth(&token)
            .header("Accept", V2)
            .json(&json!({"accessCode":"AC01"}))
            .send()
    };
    let shed = v2("26XI0000010000036").await.expect("v2 POST");
    assert_eq!(shed.status(), 503, "the second request in flight is shed");
    assert_eq!(v1.await.expect("v1 task"), 200);

    // The v2 check now that nothing else is in flight, then the same v1 check again within a
    // minute: refused by the once-a-minute rule.
    let answered = v2("26XI0000010000036").await.expect("v2 POST");
    assert_eq!(answered.status(), 200);
    let again = client()
        .post(format!("{base}/balances"))
        .bearer_auth(&token)
        .header("Accept", V1)
        .json(&v1_body)
        .send()
        .await
        .expect("v1 POST");
    assert_eq!(again.status(), 429);

    // A reply GMS could send, refused: not an IE037.
    let refused = client()
        .post(format!(
            "{}/balances/MDTP-GUA-22b9899e24ee48e6a18997d1",
            gbal.internal
        ))
        .bearer_auth(REPLY_TOKEN)
        .header("X-Message-Type", "IE037")
        .header("Content-Type", "application/xml")
        .body("not XML")
        .send()
        .await
        .expect("reply POST");
    assert_eq!(refused.status(), 400);

    // Gauges kept by background jobs appear at their first tick; wait until two scrapes agree.
    let mut previous = exposed_names(&gbal.internal).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = exposed_names(&gbal.internal).await;
        if now == previous && now.contains("gbal_db_pool_connections") {
            return now;
        }
        previous = now;
    }
}

// ---------------------------------------------------------------------------------------
// gbal --version.

#[test]
fn observability_version_names_the_package_version_and_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_gbal"))
        .arg("--version")
        .output()
        .expect("run gbal --version");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("UTF-8");
    let prefix = format!("gbal {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = line
        .trim()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`gbal --version` printed {line:?}"));

    // Built from this checkout: a commit of its history (HEAD may have moved since).
    let in_git = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        assert!(
            commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "not a short commit hash: {commit:?}"
        );
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("git cat-file");
        assert!(
            known.success(),
            "{commit} is not a commit of this repository"
        );
    } else {
        assert!(!commit.is_empty(), "an empty commit in {line:?}");
    }
}
