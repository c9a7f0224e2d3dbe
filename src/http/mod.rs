//! HTTP routes beside socket.io (which the socket.io layer serves at `/socket.io/`).
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn router(_state: &Arc<AppState>) -> Router {
    Router::new().route("/health", get(health))
}

/// Liveness for load balancers and tests.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
