//! The metering API over HTTP: `check`, `deduct`, `release` (../shared/real-client.md §4), each
//! with the student's `X-User-ID` and own bearer, bounded by `METERING_TIMEOUT_SECS`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::outbound::Outbound;

/// Largest answer read from the metering API.
const MAX_BODY: usize = 64 * 1024;

/// What a check answered.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CheckAnswer {
    Allowed {
        reservation_id: String,
    },
    /// A refusal with its `error_code` and details.
    Refused {
        code: String,
        detail: Detail,
    },
    /// No usable answer: unreachable, timed out, 5xx or an unexpected body.
    Failed(String),
    /// The API answered, but with nothing we can use (an unexpected 4xx, a 200 without a
    /// reservation): treated like [`CheckAnswer::Failed`] for this call, but the API is up, so
    /// it must not open the breaker for everyone (one student's expired token would).
    Unusable(String),
}

/// The `detail` of a refusal.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(super) struct Detail {
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub balance: Option<f64>,
    pub available_balance: Option<f64>,
    pub required: Option<f64>,
    pub is_expired: Option<bool>,
}

/// Why a deduct or release was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SendError {
    /// Worth retrying: unreachable, timed out, 408, 429, 5xx.
    Retry(String),
    /// The API refused it for good (another 4xx): kept for the operator, not retried.
    Permanent(String),
}

/// A client of one metering API.
#[derive(Debug, Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub(super) fn new(base: &str, timeout: Duration, outbound: &Outbound) -> Self {
        let http = outbound
            .client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "metering client builder failed; using defaults");
                reqwest::Client::new()
            });
        Self {
            http,
            base: base.to_owned(),
        }
    }

    fn post(&self, call: &str, user_id: &str, bearer: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(format!("{}/api/v1/metering/{call}", self.base))
            .header("X-User-ID", user_id);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req
    }

    /// `POST /check` with `body`.
    pub(super) async fn check(
        &self,
        user_id: &str,
        bearer: Option<&SecretString>,
        body: &Value,
    ) -> CheckAnswer {
        let bearer = bearer.map(|b| b.expose_secret().to_owned());
        let sent = self
            .post("check", user_id, bearer.as_deref())
            .json(body)
            .send();
        let resp = match sent.await {
            Ok(r) => r,
            Err(e) => return CheckAnswer::Failed(describe(&e)),
        };
        let status = resp.status().as_u16();
        let value = match read(resp).await {
            Ok(v) => v,
            Err(e) => return CheckAnswer::Failed(e),
        };
        check_answer(status, &value)
    }

    /// `POST /deduct` or `/release` with the stored `body`; the answer's JSON when 2xx.
    pub(super) async fn send(
        &self,
        call: &str,
        user_id: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> Result<Value, SendError> {
        let sent = self
            .post(call, user_id, bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send();
        let resp = sent.await.map_err(|e| SendError::Retry(describe(&e)))?;
        let status = resp.status();
        let value = read(resp).await.map_err(SendError::Retry)?;
        if status.is_success() {
            return Ok(value);
        }
        let why = format!("HTTP {}: {}", status.as_u16(), truncate(&value.to_string()));
        let code = status.as_u16();
        if code == 408 || code == 429 || status.is_server_error() {
            Err(SendError::Retry(why))
        } else {
            Err(SendError::Permanent(why))
        }
    }
}

/// The check's answer from its status and body.
fn check_answer(status: u16, value: &Value) -> CheckAnswer {
    if status == 200 && value["allowed"] == Value::Bool(true) {
        return match value["reservation_id"].as_str() {
            Some(r) if !r.is_empty() => CheckAnswer::Allowed {
                reservation_id: r.to_owned(),
            },
            _ => CheckAnswer::Unusable("an allowed check without a reservation_id".into()),
        };
    }
    // Refusals come as `{"detail": {...}}` (FastAPI's HTTPException); a 200 with
    // `allowed: false` carries the same fields at the top level.
    let detail_value = if value["detail"].is_object() {
        &value["detail"]
    } else {
        value
    };
    let detail: Detail = serde_json::from_value(detail_value.clone()).unwrap_or_default();
    match (&detail.error_code, status) {
        (Some(code), 200 | 400..=499) => CheckAnswer::Refused {
            code: code.clone(),
            detail,
        },
        _ if status < 500 => {
            CheckAnswer::Unusable(format!("HTTP {status}: {}", truncate(&value.to_string())))
        }
        _ => CheckAnswer::Failed(format!("HTTP {status}: {}", truncate(&value.to_string()))),
    }
}

/// The body as JSON (an empty or non-JSON body is `null`), at most [`MAX_BODY`] bytes.
async fn read(resp: reqwest::Response) -> Result<Value, String> {
    let bytes = resp.bytes().await.map_err(|e| describe(&e))?;
    if bytes.len() > MAX_BODY {
        return Err("the metering API's answer is too large".into());
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the metering API did not answer in time".into();
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_allowed_check_gives_its_reservation() {
        let v = json!({"allowed": true, "reservation_id": "res_1", "reserved_credits": 5, "expires_at": "x"});
        assert_eq!(
            check_answer(200, &v),
            CheckAnswer::Allowed {
                reservation_id: "res_1".into()
            }
        );
    }

    #[test]
    fn refusals_are_read_from_their_detail_server_errors_are_failures_and_other_answers_unusable() {
        let v = json!({"detail": {"allowed": false, "error_code": "INSUFFICIENT_BALANCE",
            "message": "low", "balance": 10, "available_balance": 10, "required": 500, "is_expired": false}});
        let CheckAnswer::Refused { code, detail } = check_answer(402, &v) else {
            panic!("refused expected");
        };
        assert_eq!(code, "INSUFFICIENT_BALANCE");
        assert_eq!(detail.required, Some(500.0));
        assert!(matches!(
            check_answer(500, &json!({"detail": {"error_code": "X"}})),
            CheckAnswer::Failed(_)
        ));
        assert!(matches!(
            check_answer(503, &Value::Null),
            CheckAnswer::Failed(_)
        ));
        // The API answered: unusable for this call, but it is up.
        assert!(matches!(
            check_answer(200, &json!({"allowed": true})),
            CheckAnswer::Unusable(_)
        ));
        assert!(matches!(
            check_answer(401, &Value::Null),
            CheckAnswer::Unusable(_)
        ));
    }
}
