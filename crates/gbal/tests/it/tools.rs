//! The command-line tools: configuration errors, tokens, `ncts inspect`, healthcheck.

use std::fs;

use crate::process::{examples_dir, run};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn configuration_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("GBAL_BALANCE__SYNC_WAIT", "fifteen")],
            "balance.sync_wait",
        ),
        (&[("GBAL_GMS__TRANSPORT", "smoke-signals")], "gms.transport"),
        (&[("GBAL_MODE", "production")], "auth."),
    ];
    for (env, key) in cases {
        let out = run(dir.path(), &["serve"], env);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(key), "{env:?}: {}", stderr(&out));
    }
    // A production configuration with every key source but no reply token for ncts-xml.
    fs::write(
        dir.path().join("prod.toml"),
        "mode = \"production\"\n[auth]\njwks_url = \"https://auth.example/jwks\"\n[gms]\ntransport = \"ncts-xml\"\nurl = \"https://gms.example/m\"\n",
    )
    .expect("write");
    let out = run(
        dir.path(),
        &["serve", "--config", "prod.toml"],
        &[("DATABASE_URL", "postgres://db/gbal")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("internal.reply_token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn print_config_redacts_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        &["serve", "--print-config"],
        &[
            (
                "GBAL_AUTH__HS256_SECRET",
                "a-very-secret-value-of-32-bytes-or-more",
            ),
            ("DATABASE_URL", "postgres://user:pw@db/gbal"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[redacted]") && text.contains("sync_wait"),
        "{text}"
    );
    assert!(
        !text.contains("a-very-secret") && !text.contains("pw@db"),
        "{text}"
    );
}

#[test]
fn token_needs_an_hs256_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        &["token", "--sub", "me"],
        &[("GBAL_AUTH__JWKS_URL", "https://auth.example/jwks")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("auth.hs256_secret"),
        "{}",
        stderr(&out)
    );
    let out = run(dir.path(), &["token", "--sub", "me", "--ttl", "5m"], &[]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count(),
        3,
        "a JWT"
    );
}

#[test]
fn ncts_inspect_gives_each_example_its_verdict() {
    let dir = examples_dir();
    let expect: [(&str, bool, &str); 13] = [
        ("valid/IE034.xml", true, "valid IE034"),
        (
            "valid/IE034-without-tin.xml",
            true,
            "GRN 25XI8R3C6J1N5V2H7 (query 2), access code present",
        ),
        (
            "valid/IE034-transit-request.xml",
            true,
            "GRN 25GB4K7P2W9X3M6T1",
        ),
        ("valid/IE037.xml", true, "balance 18250.75 GBP"),
        ("valid/IE906-unknown-tin.xml", true, "Incorrect EORI Number"),
        (
            "valid/IE906-unsupported-guarantee-type.xml",
            true,
            "Unsupported Guarantee Type",
        ),
        (
            "valid/IE917.xml",
            true,
            "XML error 12 for DatOfPreMES9 element",
        ),
        ("invalid/IE034-access-code-5-chars.xml", false, "line 24"),
        ("invalid/IE034-bad-date.xml", false, "DatOfPreMES9"),
        (
            "invalid/IE037-missing-MesTypMES20.xml",
            false,
            "MesTypMES20",
        ),
        ("invalid/IE037-negative-balance.xml", false, "BalEXP3"),
        ("invalid/IE037-without-BalEXP3.xml", false, "BalEXP3"),
        ("invalid/IE906-too-long-fields.xml", false, "ErrReaER13"),
    ];
    for (name, valid, words) in expect {
        let path = dir.join(name);
        let out = run(
            &dir,
            &["ncts", "inspect", path.to_str().expect("path")],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.success(),
            valid,
            "{name}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.starts_with(if valid { "valid" } else { "invalid" }),
            "{name}: {text}"
        );
        assert!(text.contains(words), "{name}: expected {words:?} in {text}");
        for code in ["K3V9", "7TQ2"] {
            assert!(
                !text.contains(code),
                "{name}: inspect must not print access codes"
            );
        }
    }
}

#[test]
fn healthcheck_exit_codes() {
    let dir = tempfile::tempdir().expect("dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for status in ["200 OK", "503 Service Unavailable"] {
            let (mut s, _) = listener.accept().expect("accept");
            // Read the whole request head before answering, so closing sends no reset.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("http://{addr}/livez");
    let ok = run(dir.path(), &["healthcheck", &url], &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(
        run(dir.path(), &["healthcheck", &url], &[]).status.code(),
        Some(1)
    );
    server.join().expect("server");
    // Nothing listening.
    assert_eq!(
        run(dir.path(), &["healthcheck", &url, "--timeout", "1s"], &[])
            .status
            .code(),
        Some(1)
    );
}
