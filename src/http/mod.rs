//! HTTP routes beside socket.io (which the socket.io layer serves at `/socket.io/`), and the
//! layers every request goes through: [`app`] puts them together.
//!
//! - `GET /health` (liveness), `GET /ready` (readiness, see [`crate::ops`]), `GET /stats`;
//! - `auth`: counsellor sign-in, `me` and sign-out, over the session cookie or an API token;
//! - TinCan accounts (`/tincan/register`, `/tincan/login`, `/tincan/logout`) live with their
//!   protocol in [`crate::tincan`];
//! - `error`: the one error type of every route, as status and `{ code, message }`;
//! - [`origin`]: which web origins may call, CORS, and the origin check of socket.io requests;
//! - `layers`: the session cookie, a small head of its own for every socket.io request, and
//!   each request's span in the log.
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

mod auth;
mod error;
mod layers;
pub mod origin;

pub use error::{HttpError, panicked};
pub use layers::SESSION_COOKIE;

/// The whole HTTP side: the routes and socket.io (`socket_io`), behind, from the outside in:
/// the request's span, CORS, a caught panic's answer, the session cookie, the origin check of
/// socket.io requests, a head of its own for each of them, and the count of websocket upgrades.
pub fn app<A: Adapter>(
    state: &Arc<AppState>,
    socket_io: SocketIoLayer<A>,
) -> anyhow::Result<Router> {
    let origins = Arc::new(origin::Origins::new(&state.config.cors_origins)?);
    let sessions = layers::sessions(&state.config, &state.store);
    let upgrades = state.lines.clone();
    Ok(router(state)
        .layer(socket_io)
        .layer(MapRequestLayer::new(
            move |req: ::http::Request<axum::body::Body>| {
                upgrades.note_upgrade(&req);
                req
            },
        ))
        .layer(MapRequestLayer::new(layers::detach_head))
        .layer(axum::middleware::from_fn_with_state(
            origins.clone(),
            origin::guard,
        ))
        .layer(sessions)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(origins.cors())
        .layer(TraceLayer::new_for_http().make_span_with(layers::request_span)))
}

/// The routes beside socket.io.
fn router(state: &Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats).with_state(state.clone()))
        .route("/ready", get(crate::ops::ready).with_state(state.clone()))
        .merge(auth::routes(state))
        .merge(crate::tincan::routes(state))
}

/// Liveness for load balancers and tests; readiness is `/ready` (see [`crate::ops`]).
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Counters for operators: sockets disconnected because their output fell behind.
async fn stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "socketsFellBehind": state.lines.fell_behind() }))
}
