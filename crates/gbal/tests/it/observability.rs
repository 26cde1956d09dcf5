//! What operators are given to watch gbal: every metric the dashboard and the alert rules in
//! `deploy/observability` use, and every metric `docs/operations.md` documents (with its type,
//! labels and label values), is one a running `gbal serve` exposes on `/metrics` after the
//! traffic that produces it; and `gbal --version` names the commit the binary was built from.
//!
//! It reads the deploy files and the documentation, not the crates: a metric added to either
//! cannot go unchecked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gbal_testkit::{TestDatabase, eventually, until, with_database};
use serde_json::{Value, json};

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

/// The text of `/metrics`.
async fn scrape(internal: &str) -> String {
    client()
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// One series of a scrape: its name, labels and value.
#[derive(Debug)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every series of a Prometheus text scrape.
fn series(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (head, value) = line
                .rsplit_once(' ')
                .expect("a sample line ends in its value");
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (head, ""),
            };
            let mut map = BTreeMap::new();
            // Values are quoted and gbal's never hold `",`; split on that.
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                map.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
            }
            Series {
                name: name.to_owned(),
                labels: map,
                value: value.parse().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The names of the series on `/metrics` (histograms as `_bucket`, `_sum`, `_count`).
fn series_names(text: &str) -> BTreeSet<String> {
    series(text).into_iter().map(|s| s.name).collect()
}

/// The `# TYPE` of each metric of a scrape.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
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

    // The database gauges exist only with PostgreSQL.
    let text = with_database("gbal_obs", Duration::from_secs(120), |db| async move {
        drive_and_scrape(&db, |text| {
            let exposed = series_names(text);
            used_metric_names().iter().all(|(m, _)| exposed.contains(m))
        })
        .await
    })
    .await;
    let exposed = series_names(&text);

    let missing: BTreeSet<String> = used
        .iter()
        .filter(|(m, _)| !exposed.contains(m))
        .map(|(m, file)| format!("{m} (in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/observability uses metrics gbal does not expose: {missing:?}\nexposed: {exposed:?}"
    );
}

/// Starts gbal on `db`, sends the traffic that makes every documented series appear (a check
/// of each version, one shed, one refused by the once-a-minute rule, one caller over its rate,
/// a refused GMS reply, an expired lock for the expiry job), and returns the text of
/// `/metrics` once `done` holds for it (or, failing that, after 60 s, for the caller to say
/// what is missing).
async fn drive_and_scrape(db: &TestDatabase, done: impl Fn(&str) -> bool) -> String {
    // One balance request in flight at a time, and each held 2 s by the simulator's reply
    // delay, so that a second one at the same time is shed. The expiry job every second.
    // Audit events go to an HTTP endpoint nothing listens on, so that the dropped-events
    // counter the dashboard and an alert read is there too.
    let nowhere = format!(
        "http://127.0.0.1:{}/audit",
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    );
    let gbal = Serve::start(&[
        ("DATABASE_URL", &db.url),
        ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN),
        ("GBAL_PUBLIC__MAX_IN_FLIGHT", "1"),
        ("GBAL_SIMULATOR__REPLY_DELAY", "2s"),
        ("GBAL_EXPIRY__INTERVAL", "1s"),
        ("GBAL_AUDIT__SINK", "http"),
        ("GBAL_AUDIT__HTTP_URL", &nowhere),
        ("GBAL_AUDIT__RETRIES", "0"),
        ("GBAL_AUDIT__FLUSH_INTERVAL", "100ms"),
    ]);
    let base = format!("{}/customs/guarantees", gbal.public);
    eventually(Duration::from_secs(30), "/readyz answers 200", || async {
        client()
            .get(format!("{}/readyz", gbal.public))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
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
    eventually(
        Duration::from_secs(30),
        "the v1 check is inside the balance service",
        || async {
            series(&scrape(&gbal.internal).await)
                .iter()
                .any(|s| s.name == "gbal_balance_checks_in_flight" && s.value >= 1.0)
        },
    )
    .await;
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

    // Another caller over its request rate: requests one after the other, faster than
    // `rate_limit.per_second` once its `rate_limit.burst` is spent.
    let flooder = dev_token("observability-flood");
    let burst: u32 = gbal_testkit::defaults::integer("rate_limit.burst");
    let mut throttled = false;
    for _ in 0..burst * 10 {
        let answer = client()
            .get(format!(
                "{base}/balances/22b9899e-24ee-48e6-a189-97d1f45391c4"
            ))
            .bearer_auth(&flooder)
            .header("Accept", V1)
            .send()
            .await
            .expect("GET");
        if answer.status() == 429 {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "a caller over its rate is refused 429");

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

    // A lock that ran out an hour ago, for the expiry job to delete.
    let pool = db.pool().await;
    sqlx::query(
        "INSERT INTO request_locks (key, expires_at) \
         VALUES ('balance:observability:expired', now() - interval '1 hour')",
    )
    .execute(&pool)
    .await
    .expect("insert an expired lock");
    pool.close().await;

    // Series kept by background jobs appear at their ticks (every 1 to 10 s).
    until(
        Duration::from_secs(60),
        || scrape(&gbal.internal),
        |text| done(text),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// The metrics docs/operations.md documents.

/// One row of the metrics table of `docs/operations.md`.
#[derive(Debug, PartialEq)]
struct Documented {
    name: String,
    kind: String,
    /// Each label, with its values when the documentation lists them all (a closed set).
    labels: BTreeMap<String, Option<BTreeSet<String>>>,
}

/// The backquoted words of `text`, in order.
fn quoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `text` split at the commas outside parentheses.
fn top_level_items(text: &str) -> Vec<String> {
    let (mut items, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

/// The labels a cell of the table describes. Three forms: `` `a` (`x`, `y`), `b` `` (each label,
/// with its values in parentheses when they are all listed); `` `reason`: `x` (what), `y` ``
/// (one label and its values); `same as above`.
fn labels_of(
    cell: &str,
    above: Option<&BTreeMap<String, Option<BTreeSet<String>>>>,
) -> BTreeMap<String, Option<BTreeSet<String>>> {
    let cell = cell.trim();
    if cell.is_empty() {
        return BTreeMap::new();
    }
    if cell.starts_with("same as above") {
        return above.expect("`same as above` below a row").clone();
    }
    if let Some((name, values)) = cell
        .strip_prefix('`')
        .and_then(|rest| rest.split_once("`:"))
    {
        // The values are the quoted words outside parentheses, up to the first `;`.
        let values = values.split(';').next().unwrap_or("");
        let outside: String = {
            let mut depth = 0;
            values
                .chars()
                .filter(|c| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => return depth == 0,
                    }
                    false
                })
                .collect()
        };
        return BTreeMap::from([(
            name.to_owned(),
            Some(quoted(&outside).into_iter().collect()),
        )]);
    }
    top_level_items(cell)
        .into_iter()
        .map(|item| {
            let (name, rest) = match item.split_once('(') {
                Some((name, rest)) => (name, Some(rest.trim_end_matches(')'))),
                None => (item.as_str(), None),
            };
            let name = quoted(name)
                .pop()
                .unwrap_or_else(|| panic!("a label name in {item:?}"));
            // Closed only when the parentheses hold nothing but quoted values.
            let values = rest.and_then(|rest| {
                let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
                parts
                    .iter()
                    .all(|p| {
                        p.len() > 2
                            && p.starts_with('`')
                            && p.ends_with('`')
                            && p[1..p.len() - 1].find('`').is_none()
                    })
                    .then(|| {
                        parts
                            .iter()
                            .map(|p| p.trim_matches('`').to_owned())
                            .collect()
                    })
            });
            (name, values)
        })
        .collect()
}

/// The metrics table of `docs/operations.md` (section "Metrics").
fn documented_metrics(doc: &str) -> Vec<Documented> {
    let section = doc
        .split("\n### Metrics\n")
        .nth(1)
        .expect("docs/operations.md has a ### Metrics section");
    let section = section.split("\n#").next().unwrap_or(section);
    let mut rows: Vec<Documented> = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        assert!(cells.len() >= 4, "a metrics row of four cells: {line}");
        let labels = labels_of(cells[2], rows.last().map(|r| &r.labels));
        rows.push(Documented {
            name: quoted(cells[0]).remove(0),
            kind: cells[1].trim().to_owned(),
            labels,
        });
    }
    rows
}

#[test]
fn observability_the_metrics_table_is_read_with_its_labels_and_values() {
    let doc = "intro\n\n### Metrics\n\n| metric | type | labels | what |\n|---|---|---|---|\n\
        | `a_seconds` | histogram | `m`, `route` (the route, e.g. `/x`; `unmatched` else), `code` | x |\n\
        | `b_total` | counter | `version` (`v1`, `v2`), `outcome` (`ok`, `failed`) | y |\n\
        | `c_total` | counter | `reason`: `client` (caller over `rate.*`), `lock` (held); `lock` every 5 s | z |\n\
        | `d_total` | counter | same as above | w |\n\
        | `e` | gauge | | v |\n\n### Next\n| `f` | gauge | | no |\n";
    let rows = documented_metrics(doc);
    let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    let labels = |v: Vec<(&str, Option<BTreeSet<String>>)>| {
        v.into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["a_seconds", "b_total", "c_total", "d_total", "e"]
    );
    assert_eq!(rows[0].kind, "histogram");
    assert_eq!(
        rows[0].labels,
        labels(vec![("m", None), ("route", None), ("code", None)])
    );
    assert_eq!(
        rows[1].labels,
        labels(vec![
            ("version", set(&["v1", "v2"])),
            ("outcome", set(&["ok", "failed"]))
        ])
    );
    assert_eq!(
        rows[2].labels,
        labels(vec![("reason", set(&["client", "lock"]))])
    );
    assert_eq!(rows[3].labels, rows[2].labels);
    assert!(rows[4].labels.is_empty());
}

/// What is wrong with a scrape against the documented metrics; empty when nothing is.
fn undocumented_or_missing(text: &str, documented: &[Documented]) -> Vec<String> {
    let all = series(text);
    let kinds = types(text);
    let mut problems = Vec::new();
    for metric in documented {
        // A histogram's series: `_bucket` (with `le`), `_sum` and `_count`; its count is the
        // number of observations.
        let counted = if metric.kind == "histogram" {
            format!("{}_count", metric.name)
        } else {
            metric.name.clone()
        };
        let found: Vec<&Series> = all.iter().filter(|s| s.name == counted).collect();
        if found.is_empty() {
            problems.push(format!("{}: no series", metric.name));
            continue;
        }
        if kinds.get(&metric.name) != Some(&metric.kind) {
            problems.push(format!(
                "{}: documented as a {}, exposed as {:?}",
                metric.name,
                metric.kind,
                kinds.get(&metric.name)
            ));
        }
        for s in &found {
            let names: BTreeSet<&String> = s.labels.keys().collect();
            let expected: BTreeSet<&String> = metric.labels.keys().collect();
            if names != expected {
                problems.push(format!(
                    "{}: labels {names:?}, documented {expected:?}",
                    metric.name
                ));
            }
            for (label, values) in &metric.labels {
                if let (Some(values), Some(value)) = (values, s.labels.get(label))
                    && !values.contains(value)
                {
                    problems.push(format!(
                        "{}: {label}=\"{value}\" is not among the documented {values:?}",
                        metric.name
                    ));
                }
            }
        }
        // Counters and histograms record the traffic sent; gauges may read 0.
        if metric.kind != "gauge" && !found.iter().any(|s| s.value > 0.0) {
            problems.push(format!(
                "{}: nothing counted after its traffic",
                metric.name
            ));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread")]
async fn observability_every_documented_metric_is_exposed_with_its_labels_after_its_traffic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documented = documented_metrics(&doc);
    let names: BTreeSet<&str> = documented.iter().map(|d| d.name.as_str()).collect();
    // The table itself was read: the metrics the issue of unasserted series named are there.
    for expected in [
        "http_server_request_duration_seconds",
        "gbal_waiting_requests",
        "gbal_expired_rows_total",
        "gbal_db_pool_connections",
        "gbal_db_pool_idle_connections",
        "gbal_requests_shed_total",
        "gbal_replies_total",
        "gbal_gms_calls_total",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not read from docs/operations.md: {names:?}"
        );
    }
    // And the closed sets of values, which the scrape's values are checked against.
    let row = |name: &str| documented.iter().find(|d| d.name == name).expect(name);
    for (metric, label, value) in [
        ("gbal_balance_outcomes_total", "outcome", "gms_query_limit"),
        ("gbal_rate_limit_refusals_total", "reason", "cluster_lock"),
        ("gbal_replies_total", "result", "schema_invalid"),
        ("gbal_gms_calls_total", "transport", "simulator"),
    ] {
        assert!(
            row(metric).labels[label]
                .as_ref()
                .is_some_and(|values| values.contains(value)),
            "{metric}: {label}'s values not read: {:?}",
            row(metric).labels
        );
    }

    let text = with_database("gbal_obs_doc", Duration::from_secs(120), |db| async move {
        let documented = documented_metrics(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
            )
            .expect("docs/operations.md"),
        );
        drive_and_scrape(&db, |text| {
            undocumented_or_missing(text, &documented).is_empty()
        })
        .await
    })
    .await;
    let problems = undocumented_or_missing(&text, &documented);
    assert!(
        problems.is_empty(),
        "/metrics differs from docs/operations.md:\n  {}\n\n{text}",
        problems.join("\n  ")
    );
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
