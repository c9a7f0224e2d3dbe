//! Operating the server: metrics in the Prometheus text format, readiness, and the listener that
//! serves them apart from the apps.
//!
//! - [`record`]: what the server counts as it goes (connections, events, answers, the message
//!   writer, pushes, the adapter), through the `metrics` facade; nothing is recorded unless
//!   `--metrics-addr` installs the recorder ([`install`]);
//! - [`readiness`]: whether this node should be sent traffic: `GET /ready`, on the public port
//!   and the metrics listener alike;
//! - [`routes`]: the metrics listener's `GET /metrics` (what is read at scrape time, the process's
//!   memory and files among them, is read then: see `process`) and `GET /ready`.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::AppState;

mod process;
pub mod record;

/// How long `/ready` waits for the database's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// What readiness and the metrics keep about this process.
#[derive(Debug)]
pub struct Ops {
    started: Instant,
    /// Set when shutdown begins: not ready any more.
    stopping: AtomicBool,
    /// When this node last recorded itself alive in the cluster, in milliseconds after
    /// `started`.
    heartbeat_ms: AtomicU64,
}

impl Default for Ops {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(0),
        }
    }
}

impl Ops {
    /// Shutdown began: `/ready` answers 503 from now on.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// This node recorded itself alive in the cluster.
    pub fn heartbeat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since this node last recorded itself alive (or since it started, which it
    /// does having done so).
    fn heartbeat_age(&self) -> Duration {
        let at = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(at)
    }
}

/// Why this node is not ready, or `Ok`: shutdown has not begun, the message writer runs, this
/// node's heartbeat is fresh (when linked to others) and the database answers a `SELECT 1`
/// within 2 seconds.
pub async fn readiness(state: &AppState) -> Result<(), &'static str> {
    if state.ops.stopping.load(Ordering::Relaxed) {
        return Err("shutting down");
    }
    if !state.store.writer_running() {
        return Err("the message writer stopped");
    }
    let cluster = &state.config.cluster;
    if cluster.linked()
        && state.ops.heartbeat_age() > Duration::from_millis(cluster.node_timeout_ms)
    {
        return Err("this node's heartbeat is stale");
    }
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "not ready: the database did not answer");
            Err("the database is unreachable")
        }
        Err(_) => Err("the database did not answer in time"),
    }
}

/// `GET /ready`: 200 `{ "ready": true }`, or 503 `{ "ready": false, "reason": "…" }`.
pub async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        ),
    }
}

/// Installs the process's metrics recorder (histograms with buckets, the metrics described);
/// its handle renders them. Once per process.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        2.5, 5.0, 10.0,
    ];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full("bubble_writer_batch_size".into()), &sizes)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// The metrics' help lines.
fn describe() {
    describe_gauge!("bubble_connections", "Sockets connected now.");
    describe_counter!("bubble_connections_opened_total", "Sockets accepted.");
    describe_counter!("bubble_connections_closed_total", "Sockets gone.");
    describe_counter!(
        "bubble_events_received_total",
        "Events received, by name (other: a name no protocol knows)."
    );
    describe_counter!(
        "bubble_answers_total",
        "Events answered, by outcome: ok or the error code."
    );
    describe_histogram!(
        "bubble_event_handling_seconds",
        Unit::Seconds,
        "Time handling an event, by family, from the start of its handler to its end."
    );
    describe_counter!(
        "bubble_events_rate_limited_total",
        "Events refused because their socket had too many waiting."
    );
    describe_counter!(
        "bubble_slow_reader_disconnects_total",
        "Sockets disconnected because their output fell behind."
    );
    describe_histogram!(
        "bubble_writer_batch_size",
        "Messages in one transaction of the SQLite message writer."
    );
    describe_histogram!(
        "bubble_writer_commit_seconds",
        Unit::Seconds,
        "Time storing one batch of the SQLite message writer."
    );
    describe_gauge!(
        "bubble_writer_queue_depth",
        "Jobs waiting for the SQLite message writer."
    );
    describe_counter!(
        "bubble_database_errors_total",
        "Failures on the database: requests answered internal_error, writer batches, connects."
    );
    describe_gauge!(
        "bubble_db_pool_connections",
        "Connections of the database pool, in use or idle."
    );
    describe_gauge!(
        "bubble_push_outbox_depth",
        "Pushes in the outbox still to be sent."
    );
    describe_counter!(
        "bubble_pushes_total",
        "Push attempts by provider and result: sent, retried, failed, pruned (token removed)."
    );
    describe_gauge!(
        "bubble_node_heartbeat_age_seconds",
        Unit::Seconds,
        "Time since this node last recorded itself alive in the cluster (linked nodes only)."
    );
    describe_counter!(
        "bubble_adapter_errors_total",
        "Operations of the adapter linking the nodes that failed, by operation."
    );
    describe_gauge!(
        "bubble_process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the process."
    );
    describe_gauge!(
        "bubble_process_open_fds",
        "Open file descriptors of the process."
    );
    describe_gauge!(
        "bubble_process_uptime_seconds",
        Unit::Seconds,
        "Time since the process started serving."
    );
}

/// The metrics listener's routes: `GET /metrics`, `GET /ready` and `GET /health`.
pub fn routes(state: &Arc<AppState>, handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(scrape).with_state((state.clone(), handle)))
        .route("/ready", get(ready).with_state(state.clone()))
        .route("/health", get(async || Json(json!({ "status": "ok" }))))
}

/// `GET /metrics`: the gauges read now, then everything rendered.
async fn scrape(
    State((state, handle)): State<(Arc<AppState>, PrometheusHandle)>,
) -> impl IntoResponse {
    read_gauges(&state).await;
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// Sets what is read rather than counted as it happens.
async fn read_gauges(state: &AppState) {
    gauge!("bubble_process_uptime_seconds").set(state.ops.started.elapsed().as_secs_f64());
    if let Some(bytes) = process::resident_bytes() {
        gauge!("bubble_process_resident_memory_bytes").set(bytes as f64);
    }
    if let Some(fds) = process::open_fds() {
        gauge!("bubble_process_open_fds").set(fds as f64);
    }
    counter!("bubble_slow_reader_disconnects_total").absolute(state.lines.fell_behind());
    if let Some(waiting) = state.store.writer_queue_depth() {
        gauge!("bubble_writer_queue_depth").set(waiting as f64);
    }
    let pool = state.store.pool_connections();
    let in_use = pool
        .open
        .saturating_sub(u32::try_from(pool.idle).unwrap_or(u32::MAX));
    gauge!("bubble_db_pool_connections", "state" => "in_use").set(f64::from(in_use));
    gauge!("bubble_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    match state.store.push_outbox_depth().await {
        Ok(depth) => gauge!("bubble_push_outbox_depth").set(depth as f64),
        Err(e) => tracing::debug!(error = %e, "reading the push outbox's depth failed"),
    }
    if state.config.cluster.linked() {
        gauge!("bubble_node_heartbeat_age_seconds").set(state.ops.heartbeat_age().as_secs_f64());
    }
}
