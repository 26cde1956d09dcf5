//! The OpenAPI document gbal serves, checked against expectations of its own: the structure
//! OpenAPI 3.1 requires, every operation and status of the written contract (listed below
//! from the contract, not from the code), and HMRC's published documents (the same paths,
//! methods and success statuses). `docs/openapi.json` is the served document, committed
//! (`GBAL_UPDATE_OPENAPI=1` rewrites it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use crate::support::*;

/// Each operation of the contract with every status the contract gives it (auth: 401, 403;
/// the caller's rate: 429; the timeout layer's last resort: 503).
fn contract() -> BTreeMap<(&'static str, &'static str), BTreeSet<u16>> {
    let operations: [(&str, &str, &[u16]); 6] = [
        (
            "post",
            "/customs/guarantees/balances",
            &[200, 202, 400, 401, 403, 406, 413, 415, 429, 500, 502, 503],
        ),
        (
            "get",
            "/customs/guarantees/balances/{balanceId}",
            &[200, 400, 401, 403, 404, 429, 502],
        ),
        (
            "post",
            "/customs/guarantees/{grn}/balance",
            &[
                200, 400, 401, 403, 404, 406, 413, 415, 429, 500, 502, 503, 504,
            ],
        ),
        ("get", "/livez", &[200]),
        ("get", "/readyz", &[200, 503]),
        ("get", "/openapi.json", &[200]),
    ];
    operations
        .into_iter()
        .map(|(method, path, statuses)| ((method, path), statuses.iter().copied().collect()))
        .collect()
}

/// The document the running service serves.
async fn served() -> Value {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json()
}

/// The (method, path) → statuses of a document's operations.
fn operations(doc: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let statuses = operation["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            out.insert((method.clone(), path.clone()), statuses);
        }
    }
    out
}

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where `doc` breaks the structure OpenAPI 3.1 requires of it; empty when it does not.
fn structural_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        problem(format!("openapi is {}, not 3.1.x", doc["openapi"]));
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            problem(format!("info.{field} is required and a string"));
        }
    }
    let Some(paths) = doc["paths"].as_object() else {
        problem("paths is required".to_owned());
        return problems;
    };
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            problem(format!("path {path} does not start with /"));
        }
        let templated: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        for (method, operation) in item.as_object().into_iter().flatten() {
            let at = format!("{method} {path}");
            if !HTTP_METHODS.contains(&method.as_str())
                && !["summary", "description", "servers", "parameters"].contains(&method.as_str())
            {
                problem(format!("{at}: not a field of a path item"));
                continue;
            }
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            if let Some(id) = operation["operationId"].as_str()
                && !operation_ids.insert(id.to_owned())
            {
                problem(format!("{at}: operationId {id} is not unique"));
            }
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(doc, p))
                .collect();
            for parameter in &parameters {
                let location = parameter["in"].as_str().unwrap_or_default();
                if !["query", "header", "path", "cookie"].contains(&location) {
                    problem(format!("{at}: parameter in {location:?}"));
                }
                if !parameter["name"].is_string() {
                    problem(format!("{at}: a parameter without a name"));
                }
                if location == "path" && parameter["required"] != true {
                    problem(format!("{at}: path parameter not required"));
                }
            }
            let declared: BTreeSet<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if declared != templated {
                problem(format!(
                    "{at}: path parameters {declared:?}, template names {templated:?}"
                ));
            }
            let Some(responses) = operation["responses"].as_object().filter(|r| !r.is_empty())
            else {
                problem(format!("{at}: no responses"));
                continue;
            };
            for (status, response) in responses {
                let valid_key = status == "default"
                    || (status.len() == 3
                        && status.starts_with(['1', '2', '3', '4', '5'])
                        && status[1..].chars().all(|c| c.is_ascii_digit() || c == 'X'));
                if !valid_key {
                    problem(format!("{at}: response key {status}"));
                }
                if !resolve(doc, response)["description"].is_string() {
                    problem(format!("{at} {status}: no description"));
                }
            }
        }
    }
    // Every reference names something the document holds.
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for reference in refs {
        if pointer(doc, &reference).is_none() {
            problem(format!("$ref {reference} resolves to nothing"));
        }
    }
    problems
}

fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    reference.strip_prefix('#').and_then(|p| doc.pointer(p))
}

/// `value`, or what its `$ref` names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    value["$ref"]
        .as_str()
        .and_then(|r| pointer(doc, r))
        .unwrap_or(value)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_structural_check_finds_what_breaks_openapi_3_1() {
    let good: Value = serde_json::from_str(
        r##"{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a/{id}":{"get":{
            "parameters":[{"$ref":"#/components/parameters/id"}],
            "responses":{"200":{"description":"ok"}}}}},
            "components":{"parameters":{"id":{"in":"path","name":"id","required":true}}}}"##,
    )
    .unwrap();
    assert_eq!(structural_problems(&good), Vec::<String>::new());
    for (breakage, pointer, value) in [
        ("version", "/openapi", Value::from("3.0.3")),
        (
            "no description",
            "/paths/~1a~1{id}/get/responses/200",
            serde_json::json!({}),
        ),
        (
            "bad key",
            "/paths/~1a~1{id}/get/responses",
            serde_json::json!({"2000":{"description":"x"}}),
        ),
        (
            "parameter",
            "/components/parameters/id/name",
            Value::from("other"),
        ),
        (
            "dangling ref",
            "/paths/~1a~1{id}/get/parameters/0/$ref",
            Value::from("#/nothing"),
        ),
    ] {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        assert!(
            !structural_problems(&bad).is_empty(),
            "{breakage} not found"
        );
    }
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1() {
    let problems = structural_problems(&served().await);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn every_operation_and_status_of_the_contract_is_documented() {
    let documented = operations(&served().await);
    let mut missing = Vec::new();
    for ((method, path), statuses) in contract() {
        let Some(listed) = documented.get(&(method.to_owned(), path.to_owned())) else {
            missing.push(format!("{method} {path}: not documented"));
            continue;
        };
        for status in statuses {
            if !listed.contains(&status.to_string()) {
                missing.push(format!("{method} {path}: {status} not documented"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // Nothing the contract does not have.
    let contracted: BTreeSet<(String, String)> = contract()
        .keys()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let extra: Vec<_> = documented
        .keys()
        .filter(|k| !contracted.contains(k))
        .collect();
    assert!(
        extra.is_empty(),
        "operations outside the contract: {extra:?}"
    );
}

#[tokio::test]
async fn the_balance_operations_require_the_bearer_token() {
    let doc = served().await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, method) in [
        ("/customs/guarantees/balances", "post"),
        ("/customs/guarantees/balances/{balanceId}", "get"),
        ("/customs/guarantees/{grn}/balance", "post"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"][0]["bearer"],
            serde_json::json!([]),
            "{method} {path}"
        );
    }
}

/// The (method, path) → statuses of one of HMRC's `application.yaml` documents, read by
/// indentation: `paths:`, then a path at two spaces, a method at four, `responses:` at six
/// and each status at eight.
fn hmrc_operations(version: &str) -> BTreeMap<(String, String), BTreeSet<String>> {
    let file = gbal_testkit::reference::hmrc_dir(version).join("application.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let key = |line: &str, indent: usize| -> Option<String> {
        let spaces = line.len() - line.trim_start().len();
        (spaces == indent)
            .then(|| line.trim().strip_suffix(':'))
            .flatten()
            .map(|k| k.trim_matches(['\'', '"']).to_owned())
    };
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let (mut in_paths, mut path, mut method, mut in_responses) = (false, None, None, false);
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let spaces = line.len() - line.trim_start().len();
        if spaces == 0 {
            in_paths = line.trim() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = key(line, 2) {
            path = Some(p);
            method = None;
        } else if let Some(m) = key(line, 4).filter(|m| HTTP_METHODS.contains(&m.as_str())) {
            method = Some(m);
            in_responses = false;
            out.entry((method.clone().unwrap(), path.clone().unwrap()))
                .or_default();
        } else if spaces == 6 {
            in_responses = line.trim() == "responses:";
        } else if in_responses
            && let (Some(status), Some(m), Some(p)) = (key(line, 8), &method, &path)
        {
            out.entry((m.clone(), p.clone()))
                .or_default()
                .insert(status);
        }
    }
    assert!(!out.is_empty(), "no operation read from {}", file.display());
    out
}

#[tokio::test]
async fn hmrc_s_documents_list_the_same_paths_methods_and_success_statuses() {
    let documented = operations(&served().await);
    let success = |statuses: &BTreeSet<String>| -> BTreeSet<String> {
        statuses
            .iter()
            .filter(|s| s.starts_with('2'))
            .cloned()
            .collect()
    };
    let mut read = 0;
    for version in ["v1", "v2"] {
        for (operation, statuses) in hmrc_operations(version) {
            read += 1;
            let ours = documented.get(&operation).unwrap_or_else(|| {
                panic!("HMRC's {version} {operation:?} is not in gbal's document")
            });
            assert_eq!(
                success(ours),
                success(&statuses),
                "{version} {operation:?}: success statuses"
            );
            let undocumented: Vec<&String> =
                statuses.iter().filter(|s| !ours.contains(*s)).collect();
            assert!(
                undocumented.is_empty(),
                "{version} {operation:?}: HMRC answers {undocumented:?}, gbal does not document them"
            );
        }
    }
    assert_eq!(
        read, 3,
        "HMRC's three operations (v1 POST and GET, v2 POST)"
    );
}

#[test]
fn hmrc_s_documents_are_read() {
    let v1 = hmrc_operations("v1");
    let statuses = |v: &BTreeMap<(String, String), BTreeSet<String>>, m: &str, p: &str| {
        v[&(m.to_owned(), p.to_owned())]
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(&v1, "post", "/customs/guarantees/balances"),
        ["200", "202", "400", "406"]
    );
    assert_eq!(
        statuses(&v1, "get", "/customs/guarantees/balances/{balanceId}"),
        ["200", "404", "406"]
    );
    let v2 = hmrc_operations("v2");
    assert!(statuses(&v2, "post", "/customs/guarantees/{grn}/balance").contains(&"429".to_owned()));
}

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// `docs/openapi.json` is what the service serves (so a reader, and schemathesis, see the
/// document the checks above hold for).
#[tokio::test]
async fn docs_openapi_json_is_the_served_document() {
    let served = served().await;
    let path = committed_path();
    if std::env::var_os("GBAL_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, gbal_api::openapi::document_json(BASE)).unwrap();
        return;
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
            .unwrap_or(Value::Null);
    assert!(
        committed == served,
        "docs/openapi.json is out of date: run `GBAL_UPDATE_OPENAPI=1 cargo nextest run -p gbal-api openapi` and commit it"
    );
}
