//! Bubble server: socket.io for the Bubble peer-support apps, over a SQL store.
//!
//! [`build`] makes the whole application from a [`Config`]; [`serve`] binds it and runs until a
//! shutdown signal (both in [`startup`]). What every handler shares is the [`AppState`]. The
//! modules:
//! - [`admin`]: the socket.io Admin UI's namespace `/admin`, when configured;
//! - [`auth`]: counsellor accounts' passwords and sign-in checks;
//! - [`bubble`]: the Bubble protocol on `/` (events, payloads, error codes);
//! - [`socket`]: what every namespace shares: accepting a socket, its ordered inbox, its
//!   bounded output, emitting and the JSON every client reads;
//! - [`tincan`]: the TinCan protocol on `/tincan` and its accounts over HTTP;
//! - [`store`]: the only code that talks to the database;
//! - [`ids`]: the ids of people and sockets, shared by store, presence and protocols;
//! - [`presence`]: who is connected where, in memory or shared by the nodes of a cluster;
//! - [`cluster`]: liveness of the nodes of a cluster;
//! - [`push`]: push notifications, from the outbox to APNs and FCM; [`push_content`]: what a
//!   push says, written into the outbox with its message;
//! - [`http`]: plain HTTP routes, counsellor sign-in among them, and the layers in front of
//!   them and socket.io (sessions, CORS, the origin check);
//! - [`ops`]: metrics, readiness and the listener that serves them;
//! - [`config`], [`telemetry`], [`clock`]: settings, logging, time.
use std::sync::Arc;

pub mod admin;
pub mod auth;
pub mod bubble;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod http;
pub mod ids;
pub mod ops;
pub mod presence;
pub mod push;
pub mod push_content;
pub mod socket;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tincan;

pub use config::Config;
use presence::Presence;
use socket::{outflow, sio};
pub use startup::{App, Stopped, build, serve};
use store::Store;

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
    /// Readiness and what the metrics read about this process.
    pub ops: ops::Ops,
}

#[cfg(test)]
impl AppState {
    /// The state [`build`] would make from the default settings (changed by `configure`), on
    /// `store`, with `io` standing in for socket.io: for handlers' unit tests.
    pub(crate) fn for_tests(
        store: Store,
        io: Arc<dyn sio::Io>,
        configure: impl FnOnce(&mut Config),
    ) -> Arc<Self> {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Defaults as clap::Parser>::parse_from(["bubble"]).config;
        configure(&mut config);
        Arc::new(Self {
            store,
            presence: Presence::default(),
            listed: bubble::ListedRooms::default(),
            sign_in_limits: auth::rate_limit::LoginLimits::new(
                config.auth_login_per_ip,
                config.auth_login_per_user,
            ),
            io,
            tincan: tincan::TinCan::new(&config.tincan),
            push: Arc::default(),
            lines: outflow::Lines::new(config.max_socket_buffer),
            admin: None,
            ops: ops::Ops::default(),
            config,
        })
    }
}
