//! The OpenAPI document: 3.1, every route and error documented, and `docs/openapi.json`
//! without drift (`GBAL_UPDATE_OPENAPI=1` rewrites it).

use std::path::PathBuf;

use serde_json::Value;

use crate::support::BASE;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn docs_openapi_json_matches_the_code() {
    let generated = gbal_api::openapi::document_json(BASE);
    let path = committed_path();
    if std::env::var_os("GBAL_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `GBAL_UPDATE_OPENAPI=1 cargo nextest run -p gbal-api openapi` and commit it"
    );
}

#[test]
fn every_route_and_error_is_documented() {
    let doc: Value = serde_json::from_str(&gbal_api::openapi::document_json(BASE)).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut routes: Vec<String> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{m} {path}"))
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "get /customs/guarantees/balances/{balanceId}",
            "get /livez",
            "get /openapi.json",
            "get /readyz",
            "post /customs/guarantees/balances",
            "post /customs/guarantees/{grn}/balance",
        ]
    );
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let mut s: Vec<String> = doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        statuses("/customs/guarantees/balances", "post"),
        [
            "200", "202", "400", "401", "403", "406", "413", "415", "429", "500", "502", "503"
        ]
    );
    assert_eq!(
        statuses("/customs/guarantees/balances/{balanceId}", "get"),
        [
            "200", "400", "401", "403", "404", "406", "429", "500", "502", "503"
        ]
    );
    assert_eq!(
        statuses("/customs/guarantees/{grn}/balance", "post"),
        [
            "200", "400", "401", "403", "404", "406", "413", "415", "429", "500", "502", "503",
            "504"
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, method) in [
        ("/customs/guarantees/balances", "post"),
        ("/customs/guarantees/{grn}/balance", "post"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"][0]["bearer"],
            serde_json::json!([])
        );
    }
}
