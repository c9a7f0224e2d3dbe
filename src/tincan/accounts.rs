//! TinCan accounts over HTTP: `POST /tincan/register`, `/tincan/login`, `/tincan/logout`, and
//! `auth/logout` on the socket.
//!
//! Sign-in answers the same, after about the same work, whatever is wrong: an unknown or
//! malformed username costs one lookup and one Argon2 verification (of a dummy hash) like a
//! known one. Attempts are limited per client address and per username. Both are the one
//! sign-in counsellors use too ([`crate::auth::sign_in`]), with limits of TinCan's own.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::views::UserView;
use super::{Answer, Ctx, Fields, Outcome, TinCanError};
use crate::AppState;
use crate::auth::{self, password, username};
use crate::clock::Iso;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

pub fn routes(state: &Arc<AppState>) -> Router {
    Router::new()
        .route("/tincan/register", post(register))
        .route("/tincan/login", post(login))
        .route("/tincan/logout", post(logout))
        .with_state(state.clone())
}

#[derive(Serialize)]
struct Registered {
    user: UserView,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoggedIn {
    token: String,
    expires_at: Iso,
    user: UserView,
}

/// The JSON body as request fields: not JSON, or not an object, is `invalid_payload`; a body over
/// the size limit is `payload_too_large`.
fn body_fields(body: Result<Json<Value>, JsonRejection>) -> Result<Fields, TinCanError> {
    let Json(body) = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => TinCanError::PayloadTooLarge,
        _ => TinCanError::invalid("body", e.body_text()),
    })?;
    if !body.is_object() {
        return Err(TinCanError::invalid(
            "body",
            "The body must be a JSON object.",
        ));
    }
    Fields::try_from(body)
}

/// A required string field, as sent.
fn string(f: &Fields, key: &'static str) -> Result<String, TinCanError> {
    f.optional_string(key, usize::MAX)?
        .ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
}

/// `{ username, password, displayName? }` → `201 { user }`.
async fn register(
    State(app): State<Arc<AppState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Registered>), TinCanError> {
    let f = body_fields(body)?;
    let name = username::normalize(&string(&f, "username")?)
        .map_err(|e| TinCanError::invalid("username", e.to_string()))?;
    let given = string(&f, "password")?;
    password::check_new(&given).map_err(|e| TinCanError::invalid("password", e.to_string()))?;
    let display_name = f
        .optional_text("displayName", 1, MAX_DISPLAY_NAME)?
        .unwrap_or_else(|| name.clone());
    // Checked first only to spare a hash; the unique index decides.
    if app
        .store
        .tincan()
        .accounts()
        .by_username(&name)
        .await?
        .is_some()
    {
        return Err(TinCanError::Conflict("That username is taken."));
    }
    let hash = password::hash(given).await?;
    let user = app
        .store
        .tincan()
        .accounts()
        .create(&name, &display_name, &hash)
        .await?
        .ok_or(TinCanError::Conflict("That username is taken."))?;
    tracing::info!(username = %user.username, "tincan user registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user: UserView::from(&user),
        }),
    ))
}

/// `{ username, password }` → `200 { token, expiresAt, user }`, or `401` whatever is wrong.
async fn login(
    State(app): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<LoggedIn>, TinCanError> {
    let f = body_fields(body)?;
    let typed = string(&f, "username")?;
    let given = string(&f, "password")?;
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let accounts = app.store.tincan().accounts();
    let user = auth::sign_in::attempt(accounts, &app.tincan.limits, ip, &typed, given).await?;
    let ttl_ms = i64::try_from(app.tincan.token_ttl.as_millis()).unwrap_or(i64::MAX);
    let issued = app
        .store
        .tincan()
        .accounts()
        .create_token(&user.id, ttl_ms)
        .await?;
    Ok(Json(LoggedIn {
        token: issued.token,
        expires_at: Iso(issued.expires_at),
        user: UserView::from(&user),
    }))
}

/// `Authorization: Bearer <token>` → `204`: the token is revoked and its sockets dropped. A
/// missing, unknown or expired token is `401`.
async fn logout(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<StatusCode, TinCanError> {
    let token = auth::bearer_token(&headers).ok_or(TinCanError::Unauthorized)?;
    let signed_in = app
        .store
        .tincan()
        .accounts()
        .for_token(token)
        .await?
        .ok_or(TinCanError::Unauthorized)?;
    app.store
        .tincan()
        .accounts()
        .revoke_token(&signed_in.token_hash)
        .await?;
    super::disconnect_token(&app, &signed_in.token_hash).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `auth/logout`: revokes the socket's token; every socket using it is then disconnected.
pub async fn socket_logout(ctx: &Ctx) -> Outcome {
    ctx.store()
        .tincan()
        .accounts()
        .revoke_token(&ctx.me.token_hash)
        .await?;
    Ok(Answer::SignedOut(ctx.me.token_hash.clone()))
}
