//! Bubble server: socket.io for the Bubble peer-support apps, over a SQL store.
//!
//! [`build`] makes the whole application from a [`Config`]; [`serve`] binds it and runs until a
//! shutdown signal. The modules:
//! - [`admin`]: the socket.io Admin UI's namespace `/admin`, when configured;
//! - [`auth`]: counsellor accounts' passwords and sign-in checks;
//! - [`bubble`]: the Bubble protocol on `/` (events, payloads, error codes);
//! - [`socket`]: what every namespace shares: accepting a socket, its ordered inbox, its
//!   bounded output, emitting and the JSON every client reads;
//! - [`tincan`]: the TinCan protocol on `/tincan` and its accounts over HTTP;
//! - [`store`]: the only code that talks to the database;
//! - [`presence`]: who is connected where, in memory or shared by the nodes of a cluster;
//! - [`cluster`]: liveness of the nodes of a cluster;
//! - [`push`]: push notifications, from the outbox to APNs and FCM;
//! - [`http`]: plain HTTP routes, counsellor sign-in among them;
//! - [`config`], [`telemetry`], [`clock`]: settings, logging, time.
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use ::http::HeaderValue;
use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide_postgres::drivers::sqlx::sqlx_client::postgres::PgPoolOptions;
use socketioxide_postgres::{PostgresAdapterConfig, PostgresAdapterCtr, SqlxAdapter};
use socketioxide_redis::drivers::redis::redis_client;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::{SameSite, time};
use tower_sessions::{Expiry, SessionManagerLayer};

pub mod admin;
pub mod auth;
pub mod bubble;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod http;
pub mod presence;
pub mod push;
pub mod socket;
pub mod store;
pub mod telemetry;
pub mod tincan;

pub use config::Config;
use presence::Presence;
use socket::{outflow, sio};
use store::Store;

/// Outgoing packets a socket may have waiting before emits to it fail.
const SOCKET_BUFFER_PACKETS: usize = 1024;

/// Initial read buffer of a websocket, in bytes. The apps' frames are small; a bigger frame grows
/// the buffer to its size. Every idle connection holds one.
const WS_READ_BUFFER: usize = 256;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "bubble_session";
/// A session ends after this long without being renewed (by sign-in or `GET /auth/me`).
const SESSION_INACTIVITY: time::Duration = time::Duration::days(7);
/// How often expired sessions and API tokens are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub presence: Presence,
    /// The rooms `list_rooms` shows, as sent.
    pub listed: bubble::ListedRooms,
    /// Counsellor sign-in attempts, per address and per username.
    pub sign_in_limits: auth::rate_limit::LoginLimits,
    /// socket.io on every node.
    pub io: Arc<dyn sio::Io>,
    pub tincan: tincan::TinCan,
    /// Rings the push worker when messages queue pushes; holds the push counters.
    pub push: Arc<push::PushQueue>,
    /// The connections the server accepted, and what each has waiting to be written.
    pub lines: outflow::Lines,
    /// The Admin UI, when `--admin-user` and `--admin-password-hash` are set.
    pub admin: Option<Arc<admin::Admin>>,
}

/// The application, ready to be served.
pub struct App {
    pub router: Router,
    pub state: Arc<AppState>,
}

/// Everything [`build`] assembles before socket.io.
struct Parts {
    config: Config,
    store: Store,
    presence: Presence,
}

/// Connects (and migrates) the store and assembles socket.io and HTTP. With an adapter, this
/// node joins the cluster: it records itself alive in the shared presence and links to the
/// other nodes through Redis or PostgreSQL.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let cluster = &config.cluster;
    anyhow::ensure!(
        !cluster.linked()
            || (cluster.node_heartbeat_ms > 0
                && cluster.node_timeout_ms >= cluster.node_heartbeat_ms.saturating_mul(2)),
        "--node-timeout-ms must be at least twice --node-heartbeat-ms, \
         or live nodes would be taken for dead"
    );
    let store = Store::connect(&config.db).await?;
    let presence = if config.cluster.linked() {
        let node = uuid::Uuid::new_v4().to_string();
        let shared = store.shared_presence(&node)?;
        shared.heartbeat().await?;
        tracing::info!(node, "joined the cluster");
        Presence::Shared {
            shared,
            node_timeout_ms: i64::try_from(config.cluster.node_timeout_ms).unwrap_or(i64::MAX),
        }
    } else {
        Presence::default()
    };
    let builder = SocketIo::builder()
        .max_payload(config.max_payload as u64)
        .ws_max_message_size(config.max_payload)
        .ws_max_frame_size(config.max_payload)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_buffer_size(SOCKET_BUFFER_PACKETS);
    let prefix = config.cluster.adapter_prefix.clone();
    let parts = Parts {
        config,
        store,
        presence,
    };
    if let Some(url) = parts.config.cluster.redis_url.clone() {
        let client = redis_client::Client::open(resp3(&url))?;
        let adapter = RedisAdapterConfig::new().with_prefix(prefix);
        let ctr = RedisAdapterCtr::new_with_redis_config(&client, adapter).await?;
        let (layer, io) = builder.with_adapter::<RedisAdapter<_>>(ctr).build_layer();
        let (app, inits) = assemble(parts, layer, io)?;
        for init in inits {
            init.await?;
        }
        return Ok(app);
    }
    if parts.config.cluster.adapter.is_some() {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&parts.config.db.database_url)
            .await?;
        let adapter = PostgresAdapterConfig::new()
            .with_prefix(prefix.clone())
            .with_table_name(format!("{prefix}_socket_io_attachments"));
        let ctr = PostgresAdapterCtr::new_with_sqlx_config(pool, adapter);
        let (layer, io) = builder.with_adapter::<SqlxAdapter<_>>(ctr).build_layer();
        let (app, inits) = assemble(parts, layer, io)?;
        for init in inits {
            init.await?;
        }
        return Ok(app);
    }
    let (layer, io) = builder.build_layer();
    let (app, _) = assemble(parts, layer, io)?;
    Ok(app)
}

/// The Redis URL asking for RESP3, which the adapter needs (its pub/sub pushes), unless it says
/// which protocol to use.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

/// The application over socket.io with adapter `A`; what is left to do is wait for the
/// namespaces' adapters to be ready (the returned futures, for the remote adapters).
fn assemble<A: Adapter + DefinedAdapter>(
    parts: Parts,
    layer: SocketIoLayer<A>,
    io: SocketIo<A>,
) -> anyhow::Result<(App, Vec<A::InitRes>)> {
    let Parts {
        config,
        store,
        presence,
    } = parts;
    let origins = Arc::new(http::origin::Origins::new(&config.cors_origins)?);
    let sessions = session_layer(&config, &store);
    let tin_can = tincan::TinCan::new(&config.tincan);
    let sign_in_limits =
        auth::rate_limit::LoginLimits::new(config.auth_login_per_ip, config.auth_login_per_user);
    let lines = outflow::Lines::new(config.max_socket_buffer);
    let admin = admin::Admin::from_config(&config)?;
    let upgrades = lines.clone();
    let state = Arc::new(AppState {
        config,
        store,
        presence,
        listed: bubble::ListedRooms::default(),
        sign_in_limits,
        io: Arc::new(io.clone()),
        tincan: tin_can,
        push: Arc::default(),
        lines,
        admin,
    });
    let mut inits = bubble::register(&state, &io);
    inits.push(tincan::register(&state, &io));
    if let Some(admin) = &state.admin {
        inits.push(admin::register(admin, &io));
    }
    let router = http::router(&state)
        .layer(layer)
        .layer(tower::util::MapRequestLayer::new(
            move |req: ::http::Request<axum::body::Body>| {
                upgrades.note_upgrade(&req);
                req
            },
        ))
        .layer(tower::util::MapRequestLayer::new(detach_head))
        .layer(axum::middleware::from_fn_with_state(
            origins.clone(),
            http::origin::guard,
        ))
        .layer(sessions)
        .layer(CatchPanicLayer::custom(http::panicked))
        .layer(origins.cors())
        .layer(TraceLayer::new_for_http().make_span_with(request_span));
    Ok((App { router, state }, inits))
}

/// The span of an HTTP request: its method and path. Not its query, which may carry a token
/// (`bubble=`, `token=`), nor its headers.
fn request_span<B>(req: &::http::Request<B>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
}

/// The headers of a socket.io request read after the handshake: a bearer token (TinCan and
/// counsellors), and what engine.io itself reads.
const KEPT_HEADERS: [::http::HeaderName; 3] = [
    ::http::header::AUTHORIZATION,
    ::http::header::CONTENT_TYPE,
    ::http::header::SEC_WEBSOCKET_KEY,
];

/// Gives a socket.io request a small head of its own. engine.io keeps the head of the request
/// that opened a session for the session's lifetime, and every idle connection pays for it:
/// - hyper parses headers and the URI as slices of the connection's read buffer (16 KiB), so
///   without copies every websocket would hold that buffer for as long as it stays open;
/// - of the headers only those read later are kept ([`KEPT_HEADERS`]);
/// - the session of a request without a session cookie is empty and signs nobody in: it is
///   dropped (a counsellor signing in on `/counsellor` later in the same engine.io session
///   needs the cookie to have been there from the start, as it always is for a browser).
fn detach_head<B>(mut req: ::http::Request<B>) -> ::http::Request<B> {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    let session_cookie = req
        .headers()
        .get_all(::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .any(|cookie| {
            cookie
                .trim_start()
                .starts_with(&format!("{SESSION_COOKIE}="))
        });
    if !session_cookie {
        req.extensions_mut().remove::<tower_sessions::Session>();
    }
    let mut headers = ::http::HeaderMap::with_capacity(KEPT_HEADERS.len());
    for name in KEPT_HEADERS {
        for value in req.headers().get_all(&name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name.clone(), value);
            }
        }
    }
    *req.headers_mut() = headers;
    let uri = req.uri().to_string();
    if let Ok(owned) = ::http::Uri::from_maybe_shared(bytes::Bytes::from(uri)) {
        // The router keeps a copy of the URI too.
        if let Some(original) = req.extensions_mut().get_mut::<axum::extract::OriginalUri>() {
            original.0 = owned.clone();
        }
        *req.uri_mut() = owned;
    }
    req
}

/// Session cookies for signed-in counsellors. The layer sits outside socket.io, so a
/// `/counsellor` handshake carries the [`tower_sessions::Session`] of its cookie.
fn session_layer(config: &Config, store: &Store) -> SessionManagerLayer<store::SessionStore> {
    let same_site = match config.session_same_site {
        config::SameSite::Strict => SameSite::Strict,
        config::SameSite::Lax => SameSite::Lax,
        config::SameSite::None => SameSite::None,
    };
    if same_site == SameSite::None && !config.session_secure {
        tracing::warn!("SameSite=None without --session-secure: browsers will refuse the cookie");
    }
    SessionManagerLayer::new(store.session_store())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_path("/")
        .with_same_site(same_site)
        .with_secure(config.session_secure)
        .with_expiry(Expiry::OnInactivity(SESSION_INACTIVITY))
}

/// Deletes expired sessions and API tokens every [`SWEEP_EVERY`]; they are already ignored when
/// read, this only keeps the tables small.
async fn sweep_expired(store: Store) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match store.delete_expired_sessions().await {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "expired sessions deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting expired sessions failed"),
        }
        match store.delete_expired_tokens().await {
            Ok(n) if n > 0 => tracing::debug!(tokens = n, "expired API tokens deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting expired API tokens failed"),
        }
        match store.tincan_delete_expired_tokens().await {
            Ok(n) if n > 0 => tracing::debug!(tokens = n, "expired TinCan tokens deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting expired TinCan tokens failed"),
        }
    }
}

/// The push worker for the configured providers. A claimed row whose send is cut short by
/// shutdown is sent again once its lease runs out.
fn push_worker(state: &AppState) -> anyhow::Result<push::worker::Worker> {
    let senders = push::Senders::from_config(&state.config.push)?;
    Ok(push::worker::Worker::new(
        state.store.clone(),
        senders,
        state.push.clone(),
        push::worker::WorkerConfig::default(),
    ))
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Shutdown finished within `--shutdown-timeout`.
    Drained,
    /// `--shutdown-timeout` ran out (logged with what was still going on). Tasks may be left
    /// running, blocking ones among them: the process should exit without waiting for them.
    CutShort,
}

/// Serves until SIGINT or SIGTERM. Prints `listening on ADDR` on standard output once bound.
///
/// Shutdown leaves the cluster, closes the sockets, waits for open HTTP connections to end and
/// lets the push worker settle what it is sending, all within `--shutdown-timeout` of the
/// signal, whatever the peers, clients or databases do: past it, [`Stopped::CutShort`].
pub async fn serve(config: Config) -> anyhow::Result<Stopped> {
    let addr = config.addr;
    let shutdown_timeout = config.shutdown_timeout;
    let app = build(config).await?;
    let worker = push_worker(&app.state)?;
    let listener = app
        .state
        .lines
        .listener(tokio::net::TcpListener::bind(addr).await?);
    // Caught from before the address is announced, so that whoever starts this process may stop
    // it gracefully as soon as it is listening.
    let signalled = shutdown_signal()?;
    // Standard output may be a pipe nobody reads any more: the line is for whoever is there.
    let _ = writeln!(std::io::stdout(), "listening on {}", listener.local_addr()?);
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let io = app.state.io.clone();
    let sweeper = tokio::spawn(sweep_expired(app.state.store.clone()));
    let (stop_pushing, stop) = tokio::sync::watch::channel(false);
    let pusher = tokio::spawn(worker.run(stop));
    let (leave_cluster, leave) = tokio::sync::watch::channel(false);
    let liveness = match &app.state.presence {
        Presence::Shared { shared, .. } => {
            let cluster = &app.state.config.cluster;
            Some(tokio::spawn(cluster::run(
                app.state.clone(),
                shared.clone(),
                Duration::from_millis(cluster.node_heartbeat_ms.max(1)),
                Duration::from_millis(cluster.node_timeout_ms),
                leave,
            )))
        }
        Presence::Local(_) => None,
    };
    // The peer address feeds the per-address limit on TinCan sign-ins.
    let router = app
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Small frames go out at once: without TCP_NODELAY a frame written while the previous one
    // is unacknowledged waits for the peer's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.stream().set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    // What shutdown is waiting for; empty until it begins.
    let (waiting_for, mut stage) = tokio::sync::watch::channel("");
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            signalled.await;
            tracing::info!("shutting down");
            // Leave the cluster first, while the adapter still links the nodes: the rooms of
            // this node's sockets hear them go.
            waiting_for.send_replace("leaving the cluster");
            let _ = leave_cluster.send(true);
            if let Some(liveness) = liveness {
                let _ = liveness.await;
            }
            waiting_for.send_replace("closing the sockets");
            io.close().await;
            waiting_for.send_replace("open HTTP connections to end");
        })
        .into_future();
    let mut served = std::pin::pin!(served);
    let began = tokio::select! {
        served = &mut served => {
            served?;
            None
        }
        _ = stage.wait_for(|stage| !stage.is_empty()) => Some(tokio::time::Instant::now()),
    };
    let deadline = began.unwrap_or_else(tokio::time::Instant::now) + shutdown_timeout;
    if began.is_some() {
        match tokio::time::timeout_at(deadline, &mut served).await {
            Ok(served) => served?,
            Err(_) => {
                tracing::warn!(
                    timeout = ?shutdown_timeout,
                    waiting_for = *stage.borrow(),
                    "shutdown cut short: exiting without waiting any longer"
                );
                return Ok(Stopped::CutShort);
            }
        }
    }
    sweeper.abort();
    // Let the pushes in flight finish, so that a restart does not send them again.
    let _ = stop_pushing.send(true);
    if tokio::time::timeout_at(deadline, pusher).await.is_err() {
        tracing::warn!(
            timeout = ?shutdown_timeout,
            "shutdown cut short: push worker still sending; its pushes go out after the restart"
        );
        return Ok(Stopped::CutShort);
    }
    Ok(Stopped::Drained)
}

/// SIGINT and SIGTERM, caught from this call on (until then they end the process at once); the
/// future resolves at the first of them.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
