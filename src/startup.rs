//! Startup and shutdown.
//!
//! [`build`] makes the application from a [`Config`]: the store (connected and migrated), presence
//! (this node's own, or shared with the cluster it joins), socket.io over the adapter that links
//! the nodes (none, Redis or PostgreSQL: one generic path), the protocols' namespaces and
//! the HTTP side ([`http::app`]). [`serve`] binds it, runs the background tasks beside it (the
//! sweeps of expired sessions and tokens, the push worker, the cluster's liveness, the metrics
//! listener) and, on SIGINT or SIGTERM, shuts it all down within `--shutdown-timeout`, in the
//! order [`serve`] gives.
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use sea_orm::DbErr;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::{SocketIo, SocketIoBuilder};
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide_postgres::drivers::sqlx::SqlxDriver;
use socketioxide_postgres::drivers::sqlx::sqlx_client::postgres::PgPoolOptions;
use socketioxide_postgres::{PostgresAdapterConfig, PostgresAdapterCtr, SqlxAdapter};
use socketioxide_redis::drivers::redis::{RedisDriver, redis_client};
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::presence::Presence;
use crate::store::{Departed, Store};
use crate::{AppState, Config, auth, bubble, cluster, http, ops, outflow, push, tincan};

/// Outgoing packets a socket may have waiting before emits to it fail.
const SOCKET_BUFFER_PACKETS: usize = 1024;

/// Initial read buffer of a websocket, in bytes. The apps' frames are small; a bigger frame grows
/// the buffer to its size. Every idle connection holds one.
const WS_READ_BUFFER: usize = 256;

/// How often expired sessions and API tokens are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);

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
        let timeout_ms = i64::try_from(config.cluster.node_timeout_ms).unwrap_or(i64::MAX);
        let shared = store.shared_presence(&node, timeout_ms)?;
        shared.heartbeat().await?;
        tracing::info!(node, "joined the cluster");
        Presence::Shared(shared)
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
    let redis_url = config.cluster.redis_url.clone();
    let postgres = config.cluster.adapter.is_some();
    let parts = Parts {
        config,
        store,
        presence,
    };
    if let Some(url) = redis_url {
        let client = redis_client::Client::open(resp3(&url))?;
        let adapter = RedisAdapterConfig::new().with_prefix(prefix);
        let ctr = RedisAdapterCtr::new_with_redis_config(&client, adapter).await?;
        return on::<RedisAdapter<_>>(parts, builder, ctr).await;
    }
    if postgres {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&parts.config.db.database_url)
            .await?;
        let adapter = PostgresAdapterConfig::new()
            .with_prefix(prefix.clone())
            .with_table_name(format!("{prefix}_socket_io_attachments"));
        let ctr = PostgresAdapterCtr::new_with_sqlx_config(pool, adapter);
        return on::<SqlxAdapter<_>>(parts, builder, ctr).await;
    }
    on::<LocalAdapter>(parts, builder, ()).await
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

/// The application over socket.io with adapter `A` (whose shared state is `adapter`), once the
/// namespaces' adapters are ready.
async fn on<A>(parts: Parts, builder: SocketIoBuilder, adapter: A::State) -> anyhow::Result<App>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: Ready,
{
    let (layer, io) = builder.with_adapter::<A>(adapter).build_layer();
    let Parts {
        config,
        store,
        presence,
    } = parts;
    let tin_can = tincan::TinCan::new(&config.tincan);
    let sign_in_limits =
        auth::rate_limit::LoginLimits::new(config.auth_login_per_ip, config.auth_login_per_user);
    let lines = outflow::Lines::new(config.max_socket_buffer);
    let admin = crate::admin::Admin::from_config(&config)?;
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
        ops: ops::Ops::default(),
    });
    let mut inits = bubble::register(&state, &io);
    inits.push(tincan::register(&state, &io));
    if let Some(admin) = &state.admin {
        inits.push(crate::admin::register(admin, &io));
    }
    let router = http::app(&state, layer)?;
    for init in inits {
        init.ready().await?;
    }
    Ok(App { router, state })
}

/// A namespace's adapter getting ready: the local one is at once, Redis's and PostgreSQL's once
/// they listen to the other nodes.
trait Ready {
    fn ready(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl Ready for () {
    async fn ready(self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl Ready for socketioxide_redis::InitRes<RedisDriver> {
    async fn ready(self) -> anyhow::Result<()> {
        Ok(self.await?)
    }
}

impl Ready for socketioxide_postgres::InitRes<SqlxDriver> {
    async fn ready(self) -> anyhow::Result<()> {
        Ok(self.await?)
    }
}

/// Deletes expired sessions and API tokens every [`SWEEP_EVERY`]; they are already ignored when
/// read, this only keeps the tables small.
async fn sweep_expired(store: Store) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        swept("sessions", store.sessions().delete_expired().await);
        swept("API tokens", store.accounts().delete_expired_tokens().await);
        swept(
            "TinCan tokens",
            store.tincan().accounts().delete_expired_tokens().await,
        );
    }
}

/// Logs what one sweep of expired `what` deleted, or why it failed.
fn swept(what: &str, deleted: Result<u64, DbErr>) {
    match deleted {
        Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired {what} deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "deleting expired {what} failed"),
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

/// The push worker running, and how to stop it.
struct Pushing {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Pushing {
    fn start(worker: push::worker::Worker) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker.run(stopped));
        Self { task, stop }
    }

    /// Lets the pushes in flight finish, so that a restart does not send them again; false when
    /// they are still going at `deadline`.
    async fn stop(self, deadline: tokio::time::Instant) -> bool {
        let _ = self.stop.send(true);
        tokio::time::timeout_at(deadline, self.task).await.is_ok()
    }
}

/// This node's part in the cluster's liveness (see [`cluster`]), when it is linked to others.
struct Liveness {
    task: Option<JoinHandle<()>>,
    leave: watch::Sender<bool>,
}

impl Liveness {
    fn start(state: &Arc<AppState>) -> Self {
        let (leave, stop) = watch::channel(false);
        let task = match &state.presence {
            Presence::Shared(shared) => {
                let cluster = &state.config.cluster;
                Some(tokio::spawn(cluster::run(
                    Rooms(state.clone()),
                    shared.clone(),
                    Duration::from_millis(cluster.node_heartbeat_ms.max(1)),
                    Duration::from_millis(cluster.node_timeout_ms),
                    stop,
                )))
            }
            Presence::Local(_) => None,
        };
        Self { task, leave }
    }

    /// Takes this node out of the shared presence, telling the rooms of its sockets.
    async fn leave(self) {
        let _ = self.leave.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// What the cluster's comings and goings mean to this node's sockets and to the Bubble rooms.
struct Rooms(Arc<AppState>);

impl cluster::Membership for Rooms {
    async fn taken_for_dead(&self) {
        self.0.io.disconnect_local().await;
    }

    async fn departed(&self, departed: Departed) {
        bubble::announce_departures(&self.0, departed).await;
    }

    fn alive(&self) {
        self.0.ops.heartbeat();
    }
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

/// Serves until SIGINT or SIGTERM. Prints `listening on ADDR` on standard output once bound,
/// after `metrics on ADDR` when `--metrics-addr` serves metrics and readiness (see [`ops`]).
///
/// Shutdown, in order: `/ready` answers 503 and the public port stops accepting connections; this
/// node leaves the cluster; the events being handled finish and the message writer commits what
/// it was handed; the push worker settles the pushes it is sending; then the sockets are closed
/// (their clients reconnect, to another node behind the load balancer) and open HTTP connections
/// end. All within `--shutdown-timeout` of the signal, whatever the peers, clients or databases
/// do: past it, [`Stopped::CutShort`]. The metrics listener answers until the end.
pub async fn serve(config: Config) -> anyhow::Result<Stopped> {
    let addr = config.addr;
    let shutdown_timeout = config.shutdown_timeout;
    let metrics = match config.metrics_addr {
        Some(addr) => Some((ops::install()?, tokio::net::TcpListener::bind(addr).await?)),
        None => None,
    };
    let app = build(config).await?;
    let worker = push_worker(&app.state)?;
    let listener = app
        .state
        .lines
        .listener(tokio::net::TcpListener::bind(addr).await?);
    // Caught from before the address is announced, so that whoever starts this process may stop
    // it gracefully as soon as it is listening.
    let signalled = shutdown_signal()?;
    let operating = match metrics {
        Some((handle, metrics)) => {
            let _ = writeln!(std::io::stdout(), "metrics on {}", metrics.local_addr()?);
            tracing::info!(addr = %metrics.local_addr()?, "serving metrics");
            let routes = ops::routes(&app.state, handle);
            Some(tokio::spawn(axum::serve(metrics, routes).into_future()))
        }
        None => None,
    };
    // Standard output may be a pipe nobody reads any more: the line is for whoever is there.
    let _ = writeln!(std::io::stdout(), "listening on {}", listener.local_addr()?);
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let io = app.state.io.clone();
    let sweeper = tokio::spawn(sweep_expired(app.state.store.clone()));
    let pushing = Pushing::start(worker);
    let liveness = Liveness::start(&app.state);
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
    let (stop_accepting, mut accepting) = watch::channel(false);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = accepting.wait_for(|stop| *stop).await;
        })
        .into_future();
    let mut served = std::pin::pin!(served);
    tokio::select! {
        served = &mut served => {
            served?;
            return Ok(Stopped::Drained);
        }
        () = signalled => {}
    }
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    tracing::info!("shutting down");
    app.state.ops.stopping();
    let _ = stop_accepting.send(true);
    // What shutdown is waiting for.
    let (waiting_for, stage) = watch::channel("leaving the cluster");
    // Settling what is in flight may take half the time: the sockets are closed all the same.
    let settle_by = deadline - shutdown_timeout / 2;
    let state = app.state.clone();
    let drain = async move {
        // Leave the cluster first, while the adapter still links the nodes: the rooms of this
        // node's sockets hear them go.
        liveness.leave().await;
        waiting_for.send_replace("the events being handled and the message writer");
        let _ = tokio::time::timeout_at(settle_by, settled(&state)).await;
        waiting_for.send_replace("the pushes in flight");
        let pushed = pushing.stop(settle_by).await;
        if !pushed {
            tracing::warn!(
                timeout = ?shutdown_timeout,
                "shutdown cut short: push worker still sending; its pushes go out after the restart"
            );
        }
        waiting_for.send_replace("closing the sockets");
        io.close().await;
        waiting_for.send_replace("open HTTP connections to end");
        pushed
    };
    let stopped = tokio::time::timeout_at(deadline, async {
        let (pushed, served) = tokio::join!(drain, &mut served);
        served.map(|()| pushed)
    })
    .await;
    sweeper.abort();
    if let Some(operating) = operating {
        operating.abort();
    }
    match stopped {
        Ok(Ok(true)) => Ok(Stopped::Drained),
        Ok(Ok(false)) => Ok(Stopped::CutShort),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            tracing::warn!(
                timeout = ?shutdown_timeout,
                waiting_for = *stage.borrow(),
                "shutdown cut short: exiting without waiting any longer"
            );
            Ok(Stopped::CutShort)
        }
    }
}

/// Resolves once no event is being handled and the message writer has nothing waiting.
async fn settled(state: &AppState) {
    let mut every = tokio::time::interval(Duration::from_millis(10));
    loop {
        every.tick().await;
        if ops::record::in_flight() == 0 && state.store.writer_queue_depth().unwrap_or(0) == 0 {
            return;
        }
    }
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
