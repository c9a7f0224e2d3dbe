//! Counsellor sign-in: `POST /auth`, `GET /auth/me`, `POST /auth/logout`.
//!
//! Signing in sets the session cookie (for the web app) and also returns an API token (for
//! native apps, which send it as `Authorization: Bearer` or socket.io `auth: { token }`).
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use entity::counsellor_account;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower_sessions::Session;

use super::error::HttpError;
use crate::AppState;
use crate::auth;
use crate::store::SESSION_ACCOUNT_KEY;

pub fn routes(state: &Arc<AppState>) -> Router {
    Router::new()
        .route("/auth", post(sign_in))
        .route("/auth/me", get(me))
        .route("/auth/logout", post(logout))
        .with_state(state.clone())
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

/// A counsellor as the HTTP API shows it: never the password hash.
#[derive(Serialize)]
struct Counsellor {
    id: String,
    username: String,
    name: String,
}

impl From<counsellor_account::Model> for Counsellor {
    fn from(a: counsellor_account::Model) -> Self {
        Self {
            id: a.id,
            username: a.username,
            name: a.name,
        }
    }
}

#[derive(Serialize)]
struct SignedIn {
    counsellor: Counsellor,
    token: String,
}

#[derive(Serialize)]
struct Me {
    counsellor: Counsellor,
}

/// Checks the password (see [`crate::auth::sign_in`]) and signs the session in under a fresh id
/// (so that an id planted before sign-in is worth nothing). An unknown or malformed username
/// costs one lookup and one verification like a known one, and fails with the same answer.
async fn sign_in(
    State(app): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    session: Session,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Json<SignedIn>, HttpError> {
    // Through a map: serde would also take a struct from an array like `["alice", "pw"]`.
    let Json(body) = body?;
    let SignIn {
        username: typed,
        password: given,
    } = serde_json::from_value(Value::Object(body)).map_err(|e| {
        HttpError::InvalidPayload(format!("Expected {{ username, password }}: {e}"))
    })?;
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let account =
        auth::sign_in::attempt(app.store.accounts(), &app.sign_in_limits, ip, &typed, given)
            .await?;
    session.cycle_id().await?;
    session.insert(SESSION_ACCOUNT_KEY, &account.id).await?;
    let token = app.store.accounts().create_token(&account.id).await?;
    tracing::info!(username = %account.username, "counsellor signed in");
    Ok(Json(SignedIn {
        counsellor: account.into(),
        token,
    }))
}

/// Who the bearer token or session cookie belongs to. A session answered here is renewed
/// (stored expiry and cookie): sessions expire after a week without a call to `/auth/me` or a
/// sign-in, since socket.io traffic alone does not save the session.
async fn me(
    State(app): State<Arc<AppState>>,
    session: Session,
    headers: HeaderMap,
) -> Result<Json<Me>, HttpError> {
    if let Some(token) = auth::bearer_token(&headers)
        && let Some(account) = auth::counsellor_for_token(&app.store, token).await?
    {
        return Ok(Json(Me {
            counsellor: account.into(),
        }));
    }
    let account = auth::counsellor_for_session(&app.store, &session)
        .await?
        .ok_or(HttpError::Unauthorized)?;
    session.set_expiry(session.expiry());
    Ok(Json(Me {
        counsellor: account.into(),
    }))
}

/// Ends the session and revokes the bearer token presented, whichever there are, then drops the
/// signed-in counsellor's sockets. Answers 204 even when nothing was signed in: the caller is
/// signed out either way.
async fn logout(
    State(app): State<Arc<AppState>>,
    session: Session,
    headers: HeaderMap,
) -> Result<StatusCode, HttpError> {
    let mut signed_out = Vec::new();
    if let Some(token) = auth::bearer_token(&headers) {
        if let Some(account) = auth::counsellor_for_token(&app.store, token).await? {
            signed_out.push(account.id);
        }
        app.store.accounts().revoke_token(token).await?;
    }
    if session.id().is_some() {
        if let Some(account) = auth::counsellor_for_session(&app.store, &session).await? {
            signed_out.push(account.id);
        }
        session.flush().await?;
    }
    signed_out.dedup();
    for account_id in &signed_out {
        crate::bubble::disconnect_counsellor(&app, account_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
