//! Every way a TinCan request can fail, and its wire code.
//!
//! On a socket a failure goes to the requester only, as the request's `-failed` event (or its
//! `-response` with `ok: false`) and on its acknowledgement; over HTTP it is a status and the
//! same `{ code, message }` body. Internal failures are logged with their detail and show only
//! `internal_error`.
use socketioxide::socket::Sid;

use crate::socket::WireError;
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::auth::password::PasswordError;
use crate::auth::sign_in::SignInError;

#[derive(Debug, thiserror::Error)]
pub enum TinCanError {
    /// A field is missing, of the wrong type or out of range; `field` names it.
    #[error("{message}")]
    InvalidPayload {
        field: &'static str,
        message: String,
    },
    /// An HTTP body larger than the route takes.
    #[error("The request body is too large.")]
    PayloadTooLarge,
    /// No valid token, or wrong credentials: one message for every cause.
    #[error("Wrong username or password, or not signed in.")]
    Unauthorized,
    /// The thing does not exist, or the user may not see it.
    #[error("No {0} with that id.")]
    NotFound(&'static str),
    /// The user sees the thing but may not do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("You are already a member of that group.")]
    AlreadyMember,
    #[error("You are not a member of that group.")]
    NotMember,
    #[error("The owner cannot leave their group; remove it instead.")]
    OwnerCannotLeave,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("Too many attempts; try again in a minute.")]
    RateLimited,
    #[error("Something went wrong on the server.")]
    Internal(#[source] anyhow::Error),
}

impl TinCanError {
    /// A missing or ill-typed field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidPayload {
            field,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::AlreadyMember => "already_member",
            Self::NotMember => "not_member",
            Self::OwnerCannotLeave => "owner_cannot_leave",
            Self::Conflict(_) => "conflict",
            Self::RateLimited => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidPayload { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::AlreadyMember | Self::NotMember | Self::OwnerCannotLeave | Self::Conflict(_) => {
                StatusCode::CONFLICT
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `{ code, message, field? }` body; internal details never leave the server.
    pub fn wire(&self) -> WireError {
        WireError {
            code: self.code(),
            message: self.to_string(),
            field: match self {
                Self::InvalidPayload { field, .. } => Some(field),
                _ => None,
            },
        }
    }

    /// Logs a failed request of socket `sid`: an internal failure with its detail as an error,
    /// others (the client's business) at debug.
    pub fn log(&self, sid: Sid, event: &str) {
        let (ns, code) = (super::NS, self.code());
        match self {
            Self::Internal(e) => {
                let error = format!("{e:#}");
                tracing::error!(%sid, ns, event, code, error, "request failed");
            }
            _ => tracing::debug!(%sid, ns, event, code, "request refused"),
        }
    }

    /// Logs a failed HTTP request: an internal failure with its detail.
    fn log_http(&self) {
        if let Self::Internal(e) = self {
            let (code, error) = (self.code(), format!("{e:#}"));
            tracing::error!(code, error, "tincan http request failed");
        }
    }
}

impl IntoResponse for TinCanError {
    fn into_response(self) -> Response {
        self.log_http();
        (self.status(), Json(self.wire())).into_response()
    }
}

impl From<sea_orm::DbErr> for TinCanError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl From<SignInError> for TinCanError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::RateLimited => Self::RateLimited,
            SignInError::Unauthorized => Self::Unauthorized,
            SignInError::Password(e) => e.into(),
            SignInError::Db(e) => e.into(),
        }
    }
}

impl From<PasswordError> for TinCanError {
    fn from(e: PasswordError) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_fields() {
        let invalid = TinCanError::invalid("name", "name is required.");
        let wire = serde_json::to_value(invalid.wire()).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({ "code": "invalid_payload", "message": "name is required.", "field": "name" })
        );
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
        let hidden = TinCanError::NotFound("group");
        assert_eq!(
            serde_json::to_value(hidden.wire()).unwrap(),
            serde_json::json!({ "code": "not_found", "message": "No group with that id." })
        );
        for (e, code, status) in [
            (TinCanError::PayloadTooLarge, "payload_too_large", 413),
            (TinCanError::Unauthorized, "unauthorized", 401),
            (TinCanError::Forbidden("no"), "forbidden", 403),
            (TinCanError::Conflict("taken"), "conflict", 409),
            (TinCanError::RateLimited, "rate_limited", 429),
            (TinCanError::OwnerCannotLeave, "owner_cannot_leave", 409),
        ] {
            assert_eq!((e.code(), e.status().as_u16()), (code, status));
        }
        let internal = TinCanError::from(sea_orm::DbErr::Custom("secret detail".into()));
        assert_eq!(internal.code(), "internal_error");
        assert!(!internal.wire().message.contains("secret"));
    }
}
