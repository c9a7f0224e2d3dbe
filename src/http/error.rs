//! Every way an HTTP request can fail: a status and a `{ code, message }` JSON body.
//!
//! Handlers return `Result<_, HttpError>` and use `?`; internal failures are logged here with
//! their detail, and the client only ever sees `internal_error`. So does a request whose handling
//! panicked ([`panicked`]).
use std::any::Any;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::auth::password::PasswordError;
use crate::auth::sign_in::SignInError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The body is not the JSON the route takes; the message says why.
    #[error("{0}")]
    InvalidPayload(String),
    /// No valid credentials. One message for every cause, so that it reveals nothing.
    #[error("Wrong username or password, or not signed in.")]
    Unauthorized,
    /// The body is larger than the route takes.
    #[error("The request body is too large.")]
    PayloadTooLarge,
    /// A socket.io request from a web origin `--cors-origins` does not list.
    #[error("Requests from this origin are not allowed.")]
    ForbiddenOrigin,
    /// Too many sign-in attempts from this address or for this username; try again in a minute.
    #[error("Too many sign-in attempts; try again in a minute.")]
    RateLimited,
    #[error("Something went wrong on the server.")]
    Internal(#[source] anyhow::Error),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidPayload(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::Unauthorized => "unauthorized",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::RateLimited => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let body = json!({ "code": self.code(), "message": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

/// The answer to a request whose handling panicked (the panic itself is logged by the panic
/// hook): `500 internal_error`, as for any internal failure.
pub fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = crate::telemetry::panic_message(&*panic);
    HttpError::Internal(anyhow::anyhow!("the handler panicked: {what}")).into_response()
}

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        Self::InvalidPayload(rejection.body_text())
    }
}

impl From<sea_orm::DbErr> for HttpError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<PasswordError> for HttpError {
    fn from(e: PasswordError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<SignInError> for HttpError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::RateLimited => Self::RateLimited,
            SignInError::Unauthorized => Self::Unauthorized,
            SignInError::Password(e) => e.into(),
            SignInError::Db(e) => e.into(),
        }
    }
}

impl From<tower_sessions::session::Error> for HttpError {
    fn from(e: tower_sessions::session::Error) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    #[tokio::test]
    async fn a_panicking_route_answers_internal_error() {
        async fn broken() -> &'static str {
            panic!("the handler failed")
        }
        let app = Router::new()
            .route("/broken", get(broken))
            .layer(CatchPanicLayer::custom(panicked));
        let request = Request::get("/broken").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({ "code": "internal_error", "message": "Something went wrong on the server." })
        );
    }
}
