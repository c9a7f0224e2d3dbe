//! HTTP routes beside socket.io (which the socket.io layer serves at `/socket.io/`).
//!
//! - `auth`: counsellor sign-in, `me` and sign-out, over the session cookie or an API token;
//! - TinCan accounts (`/tincan/register`, `/tincan/login`, `/tincan/logout`) live with their
//!   protocol in [`crate::tincan`];
//! - `error`: the one error type of every route, as status and `{ code, message }`;
//! - [`origin`]: which web origins may call, CORS, and the origin check of socket.io requests.
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

mod auth;
mod error;
pub mod origin;

pub use error::{HttpError, panicked};

pub fn router(state: &Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats).with_state(state.clone()))
        .merge(auth::routes(state))
        .merge(crate::tincan::routes(state))
}

/// Liveness for load balancers and tests.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Counters for operators: sockets disconnected because their output fell behind.
async fn stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "socketsFellBehind": state.lines.fell_behind() }))
}
