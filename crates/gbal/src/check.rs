//! `gbal check`: a client that asks a running gbal for a balance, polls a 202 until the answer
//! is there, and prints the outcome readably (or the JSON body with `--json`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::Value;

/// Which question to ask.
#[derive(Debug, Clone)]
pub enum Question {
    /// A new balance check.
    Check {
        /// The guarantee.
        grn: String,
        /// Its access code.
        access_code: String,
        /// The principal's TIN (API v1).
        tin: Option<String>,
        /// 1 or 2.
        api: u8,
    },
    /// Read an earlier v1 request.
    BalanceId(String),
}

/// How to ask.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// gbal's public URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The API's base path.
    pub base_path: String,
    /// A bearer token.
    pub token: String,
    /// Print the final JSON body instead of a summary.
    pub json: bool,
    /// How often to poll a pending request.
    pub interval: Duration,
    /// When to stop polling.
    pub timeout: Duration,
}

/// The final answer: whether it was a balance, and what to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// A balance was obtained.
    pub balance: bool,
    /// The text to print.
    pub text: String,
}

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";

/// Asks, polls while pending, and describes the outcome.
pub async fn run(options: &CheckOptions, question: &Question) -> anyhow::Result<Answer> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("HTTP client")?;
    let base = format!("{}{}", options.url.trim_end_matches('/'), options.base_path);
    let (status, body) = match question {
        Question::Check {
            grn,
            access_code,
            api: 2,
            ..
        } => {
            let body = serde_json::json!({ "accessCode": access_code });
            send(
                client
                    .post(format!("{base}/{grn}/balance"))
                    .header("Accept", V2)
                    .json(&body),
                &options.token,
            )
            .await?
        }
        Question::Check {
            grn,
            access_code,
            tin,
            ..
        } => {
            let body = serde_json::json!({
                "taxIdentifier": tin.clone().unwrap_or_default(),
                "guaranteeReference": grn,
                "accessCode": access_code,
            });
            send(
                client
                    .post(format!("{base}/balances"))
                    .header("Accept", V1)
                    .json(&body),
                &options.token,
            )
            .await?
        }
        Question::BalanceId(id) => poll(&client, options, &format!("{base}/balances/{id}")).await?,
    };
    let (status, body) = if status == StatusCode::ACCEPTED {
        let id = body["balanceId"]
            .as_str()
            .context("a 202 without balanceId")?
            .to_owned();
        eprintln!(
            "gbal answered 202: request {id} is pending; polling every {}s",
            options.interval.as_secs_f32()
        );
        poll(&client, options, &format!("{base}/balances/{id}")).await?
    } else {
        (status, body)
    };
    Ok(describe(status, &body, options.json))
}

async fn send(
    request: reqwest::RequestBuilder,
    token: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .context("calling gbal")?;
    let status = response.status();
    let text = response.text().await.context("reading gbal's answer")?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, body))
}

/// GETs a v1 request until it has a response, is gone, or the timeout passes.
async fn poll(
    client: &reqwest::Client,
    options: &CheckOptions,
    url: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let start = Instant::now();
    loop {
        let (status, body) = send(client.get(url).header("Accept", V1), &options.token).await?;
        let pending = status == StatusCode::OK && body["request"].get("response").is_none();
        if !pending {
            eprintln!();
            return Ok((status, body));
        }
        if start.elapsed() >= options.timeout {
            eprintln!();
            bail!(
                "still pending after {}s; ask again later with --balance-id",
                start.elapsed().as_secs()
            );
        }
        eprint!(
            "\rwaiting for the GMS reply... {}s",
            start.elapsed().as_secs()
        );
        let _ = std::io::stderr().flush();
        tokio::time::sleep(options.interval).await;
    }
}

/// The readable (or JSON) description of gbal's final answer.
pub fn describe(status: StatusCode, body: &Value, json: bool) -> Answer {
    // v1 POST 200: {"response":{...}}; v1 GET: {"request":{"response":{...}}}; v2: top level.
    let response = body
        .get("request")
        .and_then(|r| r.get("response"))
        .or_else(|| body.get("response"));
    let balance_of = |v: &Value| {
        v.get("balance").filter(|b| b.is_number()).map(|b| {
            (
                b.to_string(),
                v["currency"].as_str().unwrap_or("").to_owned(),
            )
        })
    };
    let found = if status == StatusCode::OK {
        response.and_then(balance_of).or_else(|| balance_of(body))
    } else {
        None
    };
    let is_balance =
        found.is_some() && response.is_none_or(|r| r.get("status").is_none_or(|s| s == "SUCCESS"));
    if json {
        return Answer {
            balance: is_balance,
            text: body.to_string(),
        };
    }
    let mut text = String::new();
    if let (true, Some((amount, currency))) = (is_balance, &found) {
        let _ = write!(text, "balance: {amount} {currency}");
        return Answer {
            balance: true,
            text,
        };
    }
    let errors = response
        .and_then(|r| r.get("errors"))
        .and_then(Value::as_array);
    if let Some(errors) = errors {
        let _ = writeln!(text, "refused by the guarantee management system:");
        for e in errors {
            let _ = writeln!(
                text,
                "  error {} at {}{}",
                e["errorType"],
                e["errorPointer"].as_str().unwrap_or("?"),
                e.get("errorReason")
                    .and_then(Value::as_str)
                    .map(|r| format!(" (reason {r})"))
                    .unwrap_or_default()
            );
        }
        return Answer {
            balance: false,
            text: text.trim_end().to_owned(),
        };
    }
    let code = body["code"].as_str().unwrap_or("");
    let message = body["message"].as_str().unwrap_or("");
    let _ = write!(text, "{} {code}: {message}", status.as_u16());
    if let Some(items) = body.get("errors").and_then(Value::as_array) {
        for e in items {
            let _ = write!(
                text,
                "\n  {}: {}",
                e["code"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            );
        }
    }
    Answer {
        balance: false,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_each_shape() {
        let v1 = describe(
            StatusCode::OK,
            &json!({"response":{"balance":12345678.9,"currency":"GBP"}}),
            false,
        );
        assert_eq!(
            v1,
            Answer {
                balance: true,
                text: "balance: 12345678.9 GBP".into()
            }
        );
        let v2 = describe(
            StatusCode::OK,
            &json!({"_links":{},"balance":1234.56,"currency":"GBP"}),
            false,
        );
        assert_eq!(v2.text, "balance: 1234.56 GBP");
        let get = describe(
            StatusCode::OK,
            &json!({"request":{"balanceId":"x","response":{"status":"SUCCESS","balance":50000,"currency":"EUR"}}}),
            false,
        );
        assert_eq!(get.text, "balance: 50000 EUR");
        let refused = describe(
            StatusCode::BAD_REQUEST,
            &json!({"code":"FUNCTIONAL_ERROR","message":"m","response":{"errors":[{"errorType":12,"errorPointer":"GRR(1).ACC(1).Access code"}]}}),
            false,
        );
        assert!(!refused.balance);
        assert!(
            refused
                .text
                .contains("error 12 at GRR(1).ACC(1).Access code"),
            "{}",
            refused.text
        );
        let get_refused = describe(
            StatusCode::OK,
            &json!({"request":{"response":{"status":"FUNCTIONAL_ERROR","errors":[{"errorType":14,"errorPointer":"p","errorReason":"R261"}]}}}),
            false,
        );
        assert!(!get_refused.balance && get_refused.text.contains("reason R261"));
        let bad = describe(
            StatusCode::BAD_REQUEST,
            &json!({"code":"BAD_REQUEST","message":"Bad request","errors":[{"code":"INVALID_ACCESS_CODE","reason":"Access code must be 4 characters in length"}]}),
            false,
        );
        assert_eq!(
            bad.text,
            "400 BAD_REQUEST: Bad request\n  INVALID_ACCESS_CODE: Access code must be 4 characters in length"
        );
        let raw = describe(StatusCode::OK, &json!({"balance":1,"currency":"GBP"}), true);
        assert_eq!(raw.text, r#"{"balance":1,"currency":"GBP"}"#);
    }
}
