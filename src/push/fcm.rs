//! Firebase Cloud Messaging over the HTTP v1 API.
//!
//! `POST {endpoint}/v1/projects/{project}/messages:send` with an OAuth2 access token that
//! `gcp_auth` gets (and caches) from the service account's `token_uri`. The endpoint and the
//! `token_uri` are both configurable, so tests run against a fake of each on loopback.
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use gcp_auth::{CustomServiceAccount, TokenProvider};
use serde_json::{Value, json};

use super::backoff::parse_retry_after;
use super::{Push, PushSender, SendOutcome};

/// The scope FCM sends need.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Longest wait for FCM's answer to one send.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of an error body is kept for the log and the outbox row.
const MAX_REASON_CHARS: usize = 300;

pub struct FcmSender {
    http: reqwest::Client,
    auth: CustomServiceAccount,
    url: String,
}

impl FcmSender {
    /// Reads the service account JSON (`project_id`, `client_email`, `private_key`, `token_uri`)
    /// and prepares a client for `endpoint` (`https://fcm.googleapis.com` in production).
    pub fn new(service_account: &Path, endpoint: &str) -> anyhow::Result<Self> {
        install_crypto_provider();
        let auth = CustomServiceAccount::from_file(service_account).with_context(|| {
            format!(
                "reading the FCM service account {}",
                service_account.display()
            )
        })?;
        let project = auth
            .project_id()
            .context("the FCM service account has no project_id")?;
        let url = format!(
            "{}/v1/projects/{project}/messages:send",
            endpoint.trim_end_matches('/')
        );
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the FCM HTTP client")?;
        Ok(Self { http, auth, url })
    }
}

/// reqwest is built without a default crypto provider (to avoid aws-lc's C build); ring is the
/// one the rest of the stack uses. Installing it twice is harmless.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The request body for one push: a notification, the data (string values), and the room as
/// Android's collapse key so that a newer push for a room replaces an older one on the device.
pub fn message_body(push: &Push) -> Value {
    json!({
        "message": {
            "token": push.token,
            "notification": { "title": push.title, "body": push.body },
            "data": push.data,
            "android": { "collapse_key": push.room_id },
        }
    })
}

#[async_trait]
impl PushSender for FcmSender {
    async fn send(&self, push: &Push) -> SendOutcome {
        let token = match self.auth.token(&[SCOPE]).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "FCM: no access token");
                return SendOutcome::Retry { after: None };
            }
        };
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token.as_str())
            .json(&message_body(push))
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "FCM: request failed");
                return SendOutcome::Retry { after: None };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = response.text().await.unwrap_or_default();
        classify(status, retry_after, &body)
    }
}

/// What an FCM answer means: 200 sent; `UNREGISTERED`, or `INVALID_ARGUMENT` about the token, an
/// invalid token; 429 and 5xx worth retrying (after `Retry-After`); any other status a permanent
/// failure of this push.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> SendOutcome {
    if (200..300).contains(&status) {
        return SendOutcome::Sent;
    }
    if status == 429 || status >= 500 {
        return SendOutcome::Retry { after: retry_after };
    }
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .unwrap_or(Value::Null);
    let details = error
        .get("details")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let codes: Vec<&str> = details
        .iter()
        .filter_map(|d| d.get("errorCode").and_then(Value::as_str))
        .collect();
    let grpc_status = error.get("status").and_then(Value::as_str).unwrap_or("");
    if codes.contains(&"UNREGISTERED") {
        return SendOutcome::InvalidToken;
    }
    let invalid_argument = codes.contains(&"INVALID_ARGUMENT") || grpc_status == "INVALID_ARGUMENT";
    if status == 400 && invalid_argument && about_the_token(&error, &details) {
        return SendOutcome::InvalidToken;
    }
    let reason: String = format!("FCM {status}: {body}")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    SendOutcome::Failed(reason)
}

/// Whether an `INVALID_ARGUMENT` error names the registration token: by a field violation on
/// `message.token`, or in its message.
fn about_the_token(error: &Value, details: &[Value]) -> bool {
    let field_is_token = details.iter().any(|d| {
        d.get("fieldViolations")
            .and_then(Value::as_array)
            .is_some_and(|violations| {
                violations.iter().any(|v| {
                    v.get("field")
                        .and_then(Value::as_str)
                        .is_some_and(|f| f.ends_with("token"))
                })
            })
    });
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    field_is_token || message.contains("registration token")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::push::Platform;

    fn error_body(code: u16, status: &str, message: &str, details: Value) -> String {
        json!({ "error": { "code": code, "status": status, "message": message, "details": details } })
            .to_string()
    }

    #[test]
    fn success_is_sent() {
        assert_eq!(
            classify(200, None, r#"{"name":"projects/p/messages/1"}"#),
            SendOutcome::Sent
        );
    }

    #[test]
    fn unregistered_is_an_invalid_token() {
        let body = error_body(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
            json!([{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                     "errorCode": "UNREGISTERED" }]),
        );
        assert_eq!(classify(404, None, &body), SendOutcome::InvalidToken);
    }

    #[test]
    fn invalid_argument_about_the_token_is_an_invalid_token() {
        let body = error_body(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            json!([{ "errorCode": "INVALID_ARGUMENT" }]),
        );
        assert_eq!(classify(400, None, &body), SendOutcome::InvalidToken);
        let body = error_body(
            400,
            "INVALID_ARGUMENT",
            "Invalid value",
            json!([{ "fieldViolations": [{ "field": "message.token" }] }]),
        );
        assert_eq!(classify(400, None, &body), SendOutcome::InvalidToken);
    }

    #[test]
    fn other_invalid_arguments_fail_without_touching_the_token() {
        let body = error_body(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            json!([{ "fieldViolations": [{ "field": "message.data" }] }]),
        );
        assert!(matches!(classify(400, None, &body), SendOutcome::Failed(_)));
        assert!(matches!(
            classify(403, None, "forbidden"),
            SendOutcome::Failed(_)
        ));
        assert!(matches!(
            classify(404, None, "not json"),
            SendOutcome::Failed(_)
        ));
    }

    #[test]
    fn rate_limits_and_server_errors_are_retried() {
        let after = Some(Duration::from_secs(7));
        assert_eq!(classify(429, after, ""), SendOutcome::Retry { after });
        assert_eq!(classify(503, None, ""), SendOutcome::Retry { after: None });
        assert_eq!(classify(500, after, "oops"), SendOutcome::Retry { after });
    }

    #[test]
    fn body_carries_notification_data_and_collapse_key() {
        let push = Push {
            token: "tok".into(),
            platform: Platform::Fcm,
            room_id: "room-1".into(),
            title: "New message in R".into(),
            body: "hi".into(),
            data: BTreeMap::from([
                ("roomId".to_owned(), "room-1".to_owned()),
                ("messageId".to_owned(), "5".to_owned()),
                ("type".to_owned(), "message".to_owned()),
            ]),
        };
        assert_eq!(
            message_body(&push),
            json!({ "message": {
                "token": "tok",
                "notification": { "title": "New message in R", "body": "hi" },
                "data": { "roomId": "room-1", "messageId": "5", "type": "message" },
                "android": { "collapse_key": "room-1" },
            } })
        );
    }
}
