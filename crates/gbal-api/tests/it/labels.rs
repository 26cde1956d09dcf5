//! Closed label sets: nothing a caller chooses (methods, paths, headers, ids, tokens) becomes
//! a metric label, so made-up requests add no series to `/metrics`.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

/// `len` characters of `[A-Z0-9]`, different on each call (xorshift).
fn made_up(state: &mut u64, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            char::from(CHARS[(*state % CHARS.len() as u64) as usize])
        })
        .collect()
}

/// The series of `/metrics` (each line without its value), as a set.
async fn series(app: &TestApp) -> BTreeSet<String> {
    let reply = app
        .call_internal(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, 200);
    reply
        .text()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').map_or(l, |(id, _)| id).to_owned())
        .collect()
}

#[tokio::test]
async fn made_up_methods_paths_headers_and_ids_add_no_series() {
    let mut parts = Parts::sqlite().await;
    parts.metrics = Some(metrics_render());
    let gms = parts.simulator();
    // A rate that never refuses: a 429 would be a new status, not a made-up label.
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 100_000;
        c.rate_limit.burst = 100_000;
    })
    .await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let caller_token = token(&caller("labels"));

    // One request of each kind, so the series the closed sets allow exist.
    let request = |seed: &mut u64, kind: u64| -> (bool, Request<Body>) {
        let method = format!("X{}", made_up(seed, 12));
        let (method, path, internal) = match kind % 8 {
            0 => (
                method,
                format!("/{}/{}", made_up(seed, 12), made_up(seed, 12)),
                false,
            ),
            1 => (method, format!("{BASE}/balances"), false),
            2 => ("GET".to_owned(), format!("/{}", made_up(seed, 12)), false),
            3 => (
                "GET".to_owned(),
                format!("{BASE}/balances/{}", made_up(seed, 12)),
                false,
            ),
            4 => (
                "POST".to_owned(),
                format!("{BASE}/{}/balance", made_up(seed, 12)),
                false,
            ),
            5 => (method, format!("/{}", made_up(seed, 12)), true),
            6 => (
                "POST".to_owned(),
                format!("/balances/{}", made_up(seed, 12)),
                true,
            ),
            _ => (method, "/metrics".to_owned(), true),
        };
        let mut builder = Request::builder()
            .method(method.as_str())
            .uri(path)
            .header(
                format!("x-{}", made_up(seed, 12).to_lowercase()),
                made_up(seed, 12),
            )
            .header("x-message-type", made_up(seed, 12))
            .header("accept", if kind.is_multiple_of(2) { V1 } else { V2 });
        if kind.is_multiple_of(3) {
            builder = builder.header("authorization", format!("Bearer {caller_token}"));
        }
        (internal, builder.body(Body::from("{}")).unwrap())
    };
    for kind in 0..48 {
        let (internal, r) = request(&mut seed, kind);
        if internal {
            app.call_internal(r).await;
        } else {
            app.call(r).await;
        }
    }
    // `/metrics` records itself after it answers: once more, so that it is in `before`.
    series(&app).await;
    let before = series(&app).await;

    let mut tokens = Vec::new();
    for i in 0..600u64 {
        let (internal, r) = request(&mut seed, i);
        tokens.push(r.method().to_string());
        tokens.push(r.uri().path().to_owned());
        if internal {
            app.call_internal(r).await;
        } else {
            app.call(r).await;
        }
    }
    let after = series(&app).await;
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(
        added.is_empty(),
        "the made-up requests added series: {added:#?}"
    );
    let text = after.iter().cloned().collect::<Vec<_>>().join("\n");
    let chosen = |part: &&str| {
        part.len() >= 12
            && part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    for made_up_part in tokens
        .iter()
        .filter_map(|t| t.rsplit('/').next())
        .filter(chosen)
    {
        assert!(
            !text.contains(made_up_part),
            "{made_up_part} is in /metrics:\n{text}"
        );
    }
    assert!(text.contains(r#"http_request_method="other""#), "{text}");
    assert!(text.contains(r#"http_route="unmatched""#), "{text}");
}
