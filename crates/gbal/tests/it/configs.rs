//! The shipped configurations, as `gbal serve` takes them: the default (no file),
//! `config/sandbox.toml` and the sandbox overlay's `gbal.toml`, `config/production.toml`. Each
//! starts, or refuses with exit 2 and a message naming the key, as the configuration rules say:
//! the published development secret only in development mode with both listeners on loopback,
//! an https JWKS URL in production, bounded durations, and a warning for plain-http GMS in
//! production.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gbal::config::DEVELOPMENT_SECRET;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use crate::process::{Server, free_port, gbal, http_client, wait_ready_at};

/// A secret of the operator's own.
const OWN_SECRET: &str = "an-operators-own-sandbox-secret-0123456789";
const REPLY_TOKEN: &str = "reply-token-0123456789";
const V2: &str = "application/vnd.hmrc.2.0+json";
/// A JWKS with one RSA public key (its private half was thrown away): enough to start.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"config-test","use":"sig","alg":"RS256","e":"AQAB","n":"wMcNIdMMbwwq3G8iuuquF7YHhL0N4jbRh5YTvM1ZxKyLHtX5O20HFTQvU0jdTKh968kho3f5JPYujeeeaybLhYMS6vZ7H8ZRntNi-N9q__cd1eidtymlMuFpPAa1mXbvn5vU1ACDd7o1rTZ4BmBdKhRFv1RtJC7A50g36dsiH8Z76AjRMzWyL7CYhQojbhIaH7vb3UeOHsiuuucZqJYwSwYZqErt_wI4opRTf9wUqSPR5pIdk5ZpJB4NrzBICmEZquTyZRjzQ_26PVvQ5EVFl_y_B0yJ47Fqs9uDnKc3lRPL-PSSwaqPmKTJ9ByMCnHNOrJY-zz8RWAYSQdVSn-UUw"}]}"#;

/// A file of the repository.
fn repo_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    assert!(file.is_file(), "{} is missing", file.display());
    file.to_string_lossy().into_owned()
}

/// Runs `gbal serve` with `env` and expects it to refuse at once: exit 2, a message naming
/// `key`. Fails (and kills it) if it is still running after 30 s, i.e. if it started.
fn refuses(env: &[(&str, &str)], key: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = gbal();
    cmd.current_dir(dir.path())
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn gbal serve");
    // It refuses before it listens; 30 s is a bound on "at once" for a slow machine.
    let exited = gbal_testkit::until_blocking(
        Duration::from_secs(30),
        || child.try_wait().expect("try_wait"),
        Option::is_some,
    );
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("gbal serve started with {env:?}; it should refuse naming {key}");
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
    assert!(
        stderr.contains(&format!("{key}: ")),
        "{env:?}: the message should name {key}: {stderr}"
    );
    assert!(
        !stderr.contains(DEVELOPMENT_SECRET) && !stderr.contains(OWN_SECRET),
        "a secret was printed: {stderr}"
    );
}

/// Starts `gbal serve` off the async worker threads.
async fn start(env: Vec<(&'static str, String)>) -> Server {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start(&env)
    })
    .await
    .expect("gbal serve started")
}

/// A v2 check at `public` with a token signed with `secret` for `issuer`: its status.
async fn check(public: &str, secret: &str, issuer: &str) -> u16 {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        iss: &'a str,
        aud: &'a str,
        scope: &'a str,
        exp: i64,
    }
    let claims = Claims {
        sub: "config-test",
        iss: issuer,
        aud: "gbal",
        scope: "common-transit-convention-guarantee-balance",
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + 600,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    http_client(Duration::from_secs(30))
        .post(format!(
            "{public}/customs/guarantees/26XI0000010000036/balance"
        ))
        .bearer_auth(token)
        .header("Accept", V2)
        .json(&json!({"accessCode": "AC01"}))
        .send()
        .await
        .expect("v2 POST")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_configuration_starts_on_loopback_only() {
    let server = start(vec![]).await;
    wait_ready_at(&server.public, Duration::from_secs(30)).await;
    assert_eq!(check(&server.public, DEVELOPMENT_SECRET, "gbal").await, 200);
    let output = server.output().join("\n");
    assert!(
        output.contains("published development HS256 secret"),
        "the development secret is warned about: {output}"
    );
    drop(server);

    // Either listener on a non-loopback address: refused, implied or set explicitly.
    for (public, internal) in [("0.0.0.0:0", "127.0.0.1:0"), ("127.0.0.1:0", "0.0.0.0:0")] {
        let listen = [
            ("GBAL_PUBLIC__LISTEN", public),
            ("GBAL_INTERNAL__LISTEN", internal),
        ];
        refuses(&listen, "auth.hs256_secret");
        let explicit = [
            listen[0],
            listen[1],
            ("GBAL_AUTH__HS256_SECRET", DEVELOPMENT_SECRET),
        ];
        refuses(&explicit, "auth.hs256_secret");
    }
    // Durations that could not be scheduled or would never fire.
    for (key, value, named) in [
        ("GBAL_AUTH__JWKS_REFRESH", "0s", "auth.jwks_refresh"),
        ("GBAL_AUTH__LEEWAY", "6m", "auth.leeway"),
        ("GBAL_BALANCE__TTL", "1000000d", "balance.ttl"),
        ("GBAL_EXPIRY__INTERVAL", "31d", "expiry.interval"),
    ] {
        let mut env = vec![(key, value)];
        if key.starts_with("GBAL_AUTH__JWKS") {
            env.push(("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks"));
        }
        refuses(&env, named);
    }
    // Timings that cannot fit a request, and requests that would not outlive theirs by a
    // minute (a 202's id must still be readable).
    for (env, named) in [
        (
            vec![
                ("GBAL_GMS__TRANSPORT", "ncts-xml"),
                ("GBAL_GMS__URL", "http://127.0.0.1:9/movements/messages"),
                ("GBAL_INTERNAL__REPLY_TOKEN", "reply-token-0123456789"),
                ("GBAL_GMS__RETRY__MAX_ELAPSED", "10s"),
            ],
            "public.request_timeout",
        ),
        (
            vec![("GBAL_BALANCE__V2_WAIT", "29500ms")],
            "public.request_timeout",
        ),
        (vec![("GBAL_BALANCE__TTL", "89s")], "balance.ttl"),
    ] {
        refuses(&env, named);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_configurations_start_only_with_their_own_secret() {
    // config/sandbox.toml, and the sandbox overlay's file with the listeners its Deployment
    // sets: both bind 0.0.0.0 (on free ports here).
    for (file, issuer) in [
        ("config/sandbox.toml", "gbal-sandbox"),
        ("deploy/overlays/sandbox/gbal.toml", "gbal-sandbox"),
    ] {
        let config = repo_file(file);
        let listen = [
            ("GBAL_CONFIG", config.as_str()),
            ("GBAL_PUBLIC__LISTEN", "0.0.0.0:0"),
            ("GBAL_INTERNAL__LISTEN", "0.0.0.0:0"),
        ];
        refuses(&listen, "auth.hs256_secret");
        let published = [
            listen[0],
            listen[1],
            listen[2],
            ("GBAL_AUTH__HS256_SECRET", DEVELOPMENT_SECRET),
        ];
        refuses(&published, "auth.hs256_secret");

        // With the secret the Secret provides, it starts and takes tokens signed with it.
        let server = start(vec![
            ("GBAL_CONFIG", config.clone()),
            ("GBAL_PUBLIC__LISTEN", "0.0.0.0:0".to_owned()),
            ("GBAL_INTERNAL__LISTEN", "0.0.0.0:0".to_owned()),
            ("GBAL_AUTH__HS256_SECRET", OWN_SECRET.to_owned()),
            ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN.to_owned()),
        ])
        .await;
        // The banner names 0.0.0.0; connect over loopback.
        let public = server.public.replace("0.0.0.0", "127.0.0.1");
        wait_ready_at(&public, Duration::from_secs(30)).await;
        assert_eq!(check(&public, OWN_SECRET, issuer).await, 200, "{file}");
        assert_eq!(
            check(&public, DEVELOPMENT_SECRET, issuer).await,
            401,
            "{file}: the published secret signs nothing here"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_configuration_refuses_unsafe_keys_and_warns_of_plain_http_gms() {
    let config = repo_file("config/production.toml");
    let base = [
        ("GBAL_CONFIG", config.as_str()),
        ("DATABASE_URL", "postgres://gbal@db.invalid/gbal"),
        ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN),
        ("GBAL_PUBLIC__LISTEN", "127.0.0.1:0"),
        ("GBAL_INTERNAL__LISTEN", "127.0.0.1:0"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        env
    };
    // The published secret, set explicitly, even on loopback.
    refuses(
        &with(&[
            ("GBAL_AUTH__JWKS_URL", ""),
            ("GBAL_AUTH__HS256_SECRET", DEVELOPMENT_SECRET),
        ]),
        "auth.hs256_secret",
    );
    refuses(
        &with(&[(
            "GBAL_AUTH__JWKS_URL",
            "http://auth.example/.well-known/jwks.json",
        )]),
        "auth.jwks_url",
    );
    refuses(&with(&[("GBAL_AUTH__LEEWAY", "1h")]), "auth.leeway");
    refuses(
        &with(&[("GBAL_AUTH__JWKS_REFRESH", "0s")]),
        "auth.jwks_refresh",
    );

    // It starts on PostgreSQL with a JWKS, and says at start that GMS is reached over plain
    // http.
    gbal_testkit::with_migrated_database("gbal_config", Duration::from_secs(60), |db| async move {
        let dir = tempfile::tempdir().expect("dir");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, JWKS).expect("write the JWKS");
        let gms = format!("http://127.0.0.1:{}/movements/messages", free_port());
        let server = start(vec![
            ("GBAL_CONFIG", repo_file("config/production.toml")),
            ("DATABASE_URL", db.url.clone()),
            ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN.to_owned()),
            ("GBAL_AUTH__JWKS_URL", String::new()),
            ("GBAL_AUTH__JWKS_FILE", jwks.to_string_lossy().into_owned()),
            ("GBAL_GMS__URL", gms),
        ])
        .await;
        wait_ready_at(&server.public, Duration::from_secs(30)).await;
        let warning = server
            .output()
            .into_iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("gms.url is plain http"))
            });
        let warning = warning.unwrap_or_else(|| {
            panic!(
                "no warning about plain-http GMS:\n{}",
                server.output().join("\n")
            )
        });
        assert_eq!(warning["level"], "WARN", "{warning}");
    })
    .await;
}
