//! Every way an HTTP request can fail: a status and a `{ code, message }` JSON body.
//!
//! Handlers return `Result<_, HttpError>` and use `?`; internal failures are logged here with
//! their detail, and the client only ever sees `internal_error`.
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::auth::password::PasswordError;

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

impl From<tower_sessions::session::Error> for HttpError {
    fn from(e: tower_sessions::session::Error) -> Self {
        Self::Internal(e.into())
    }
}
