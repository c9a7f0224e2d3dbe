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

use super::events::Handle;
use super::request::{Decode, LogIn, LogOut, Register};
use super::views::UserView;
use super::{Ctx, TinCanError, payload};
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

/// The JSON body as a request: not JSON, or not an object, is `invalid_payload`; a body over
/// the size limit is `payload_too_large`.
fn decode<R: Decode>(body: Result<Json<Value>, JsonRejection>) -> Result<R, TinCanError> {
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
    R::decode(&payload::object(body)?)
}

/// `{ username, password, displayName? }` → `201 { user }`.
async fn register(
    State(app): State<Arc<AppState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Registered>), TinCanError> {
    let request: Register = decode(body)?;
    let name = username::normalize(&request.username?)
        .map_err(|e| TinCanError::invalid("username", e.to_string()))?;
    let given = request.password?;
    password::check_new(&given).map_err(|e| TinCanError::invalid("password", e.to_string()))?;
    let display_name = request.display_name?.unwrap_or_else(|| name.clone());
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
    let LogIn {
        username: typed,
        password: given,
    } = decode(body)?;
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

/// Signed out: nothing but `{ ok: true }` on the acknowledgement, then every socket of the token
/// with this hash is dropped.
#[derive(Serialize)]
pub struct SignedOut {
    #[serde(skip)]
    token_hash: String,
}

/// `auth/logout`: revokes the socket's token; every socket using it is then disconnected, once
/// the requester has its answer.
impl Handle for LogOut {
    type Reply = SignedOut;

    async fn handle(self, ctx: &Ctx) -> Result<SignedOut, TinCanError> {
        ctx.store()
            .tincan()
            .accounts()
            .revoke_token(&ctx.me.token_hash)
            .await?;
        Ok(SignedOut {
            token_hash: ctx.me.token_hash.clone(),
        })
    }

    async fn after(reply: &SignedOut, ctx: &Ctx) {
        super::disconnect_token(&ctx.app, &reply.token_hash).await;
    }
}
