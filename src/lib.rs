//! Bubble server: socket.io for the Bubble peer-support apps, over a SQL store.
//!
//! [`build`] makes the whole application from a [`Config`]; [`serve`] binds it and runs until a
//! shutdown signal. The modules:
//! - [`auth`]: counsellor accounts' passwords and sign-in checks;
//! - [`bubble`]: the Bubble protocol on `/` (events, payloads, error codes);
//! - [`store`]: the only code that talks to the database;
//! - [`presence`]: who is connected where, in memory;
//! - [`http`]: plain HTTP routes;
//! - [`config`], [`telemetry`], [`clock`]: settings, logging, time.
use std::sync::Arc;

use ::http::{HeaderValue, Method};
use axum::Router;
use socketioxide::SocketIo;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub mod auth;
pub mod bubble;
pub mod clock;
pub mod config;
pub mod http;
pub mod presence;
pub mod store;
pub mod telemetry;

pub use config::Config;
use presence::Presence;
use store::Store;

/// Outgoing packets a socket may have waiting before emits to it fail.
const SOCKET_BUFFER_PACKETS: usize = 1024;

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub presence: Presence,
    pub io: SocketIo,
}

/// The application, ready to be served.
pub struct App {
    pub router: Router,
    pub state: Arc<AppState>,
}

/// Connects (and migrates) the store and assembles socket.io and HTTP.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let store = Store::connect(&config.db).await?;
    let (layer, io) = SocketIo::builder()
        .max_payload(config.max_payload as u64)
        .ws_max_message_size(config.max_payload)
        .ws_max_frame_size(config.max_payload)
        .max_buffer_size(SOCKET_BUFFER_PACKETS)
        .build_layer();
    let cors = cors(&config.cors_origins)?;
    let state = Arc::new(AppState {
        config,
        store,
        presence: Presence::default(),
        io,
    });
    bubble::register(&state);
    let router = http::router(&state)
        .layer(layer)
        .layer(cors)
        .layer(TraceLayer::new_for_http());
    Ok(App { router, state })
}

/// Echoes the request's origin (all, or those listed) and allows credentials: the web app polls
/// from another origin with cookies.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow = if origins.is_empty() {
        AllowOrigin::mirror_request()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request()))
}

/// Serves until SIGINT or SIGTERM. Prints `listening on ADDR` on standard output once bound.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.addr;
    let app = build(config).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let io = app.state.io.clone();
    axum::serve(listener, app.router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            io.close().await;
        })
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
