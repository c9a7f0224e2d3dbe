//! The server side of the socket.io Admin UI (`@socket.io/admin-ui`), on the namespace
//! [`NS`], which exists only when `--admin-user` and `--admin-password-hash` are both set.
//!
//! The protocol is the reference server's (`instrument()` of the npm package):
//! - a client signs in with `auth: { username, password }` or a session it was given earlier
//!   ([`auth`]); anything else is refused with `invalid credentials`;
//! - once connected it is sent `session` (after a password), `config { supportedFeatures }`,
//!   `all_sockets` (`development` mode) and `server_stats`, then `server_stats` every
//!   [`STATS_EVERY`] ([`stats`]);
//! - in `development` mode it hears the sockets of every namespace connect and disconnect, join
//!   and leave rooms, and the events they receive and are sent ([`feed`], whose hooks the
//!   socket layer calls; [`sockets`] says how a socket is shown);
//! - unless `--admin-readonly`, it may make sockets join or leave a room or disconnect them
//!   ([`ops`]). `emit` (sending an event of one's own to clients) is not offered.
//!
//! Linked nodes: every node serves `/admin` and reports as a server of its own (its `serverId`
//! is `hostname#pid`), and the notices and stats of every node reach every Admin UI through the
//! adapter, as with the reference server. `all_sockets` and the operations are those of the node
//! the UI is connected to; the other nodes' sockets appear as they connect.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::socket::sio;

pub mod auth;
pub mod feed;
pub mod ops;
pub mod sockets;
pub mod stats;

use auth::{Credentials, InvalidCredentials, SignedIn};
use feed::{ADMINS, Feed, Notice};

/// The namespace of the Admin UI.
pub const NS: &str = "/admin";

/// How often `server_stats` is sent.
pub const STATS_EVERY: Duration = Duration::from_secs(2);

/// The Admin UI of one server.
pub struct Admin {
    credentials: Credentials,
    readonly: bool,
    pub feed: Arc<Feed>,
    who: stats::Identity,
    /// The namespaces served, in the order they were registered.
    namespaces: Mutex<Vec<&'static str>>,
    /// The feed's queue, until [`register`] hands it to the task that sends it.
    queue: Mutex<Option<mpsc::Receiver<Notice>>>,
}

/// A session given to a client that signed in with the password, sent once it is connected.
#[derive(Clone)]
struct NewSession(String);

impl Admin {
    /// The Admin UI the configuration asks for, if any.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<Self>>> {
        let args = &config.admin;
        let (Some(user), Some(hash)) = (&args.admin_user, &args.admin_password_hash) else {
            return Ok(None);
        };
        let credentials = Credentials::new(user.clone(), hash.clone())?;
        let (feed, queue) = Feed::new(args.admin_mode);
        Ok(Some(Arc::new(Admin {
            credentials,
            readonly: args.admin_readonly,
            feed,
            who: stats::Identity::this_process(config.cluster.linked()),
            namespaces: Mutex::new(vec![NS]),
            queue: Mutex::new(Some(queue)),
        })))
    }

    /// Notes a namespace the server serves, for the stats and `all_sockets`.
    pub fn serves(&self, path: &'static str) {
        let mut namespaces = self.lock_namespaces();
        if !namespaces.contains(&path) {
            namespaces.push(path);
        }
    }

    fn namespaces(&self) -> Vec<&'static str> {
        self.lock_namespaces().clone()
    }

    fn lock_namespaces(&self) -> std::sync::MutexGuard<'_, Vec<&'static str>> {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `supportedFeatures`, as the reference server lists them for a socket.io 4 server,
    /// without `EMIT`.
    pub fn features(&self) -> Vec<&'static str> {
        let mut features = if self.readonly {
            Vec::new()
        } else {
            vec![
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]
        };
        features.push("AGGREGATED_EVENTS");
        if self.feed.verbose() {
            features.push("ALL_EVENTS");
        }
        features
    }

    fn stats<A: Adapter>(&self, io: &SocketIo<A>, aggregated: Vec<Value>) -> stats::ServerStats {
        stats::compute(io, &self.who, &self.namespaces(), aggregated)
    }
}

/// Serves the Admin UI on [`NS`]; returns what readies its adapter.
pub fn register<A: Adapter + DefinedAdapter>(admin: &Arc<Admin>, io: &SocketIo<A>) -> A::InitRes {
    let queue = admin
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(queue) = queue {
        tokio::spawn(feed::forward(io.clone(), NS, queue));
    }
    tokio::spawn(report(admin.clone(), io.clone()));
    let sign_in = {
        let admin = admin.clone();
        move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
            let admin = admin.clone();
            async move {
                let ip = s
                    .req_parts()
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|info| info.0.ip());
                let signed_in = admin.credentials.check(auth.ok().as_ref(), ip).await;
                let Ok(signed_in) = signed_in else {
                    tracing::warn!(ip = ?ip, "admin sign-in refused");
                    return Err(InvalidCredentials);
                };
                if let SignedIn::Password(session) = signed_in {
                    s.extensions.insert(NewSession(session));
                }
                feed::attach(Some(&admin.feed), &s);
                Ok(())
            }
        }
    };
    let on_connect = {
        let admin = admin.clone();
        move |s: SocketRef<A>, io: SocketIo<A>| {
            let admin = admin.clone();
            async move { connected(&admin, &s, &io) }
        }
    };
    io.ns(NS, on_connect.with(sign_in))
}

/// A signed-in Admin UI is connected: it is told how things stand and may act.
fn connected<A: Adapter>(admin: &Arc<Admin>, s: &SocketRef<A>, io: &SocketIo<A>) {
    tracing::info!(sid = %s.id, "admin connected");
    admin.feed.watch(true);
    s.join([sio::own_room(s.id), ADMINS.to_owned()]);
    if let Some(NewSession(session)) = s.extensions.remove::<NewSession>() {
        let _ = s.emit("session", &session);
    }
    let _ = s.emit("config", &json!({ "supportedFeatures": admin.features() }));
    feed::connected(s);
    if admin.feed.verbose() {
        let _ = s.emit("all_sockets", &sockets::all(io, &admin.namespaces()));
    }
    let _ = s.emit("server_stats", &admin.stats(io, Vec::new()));
    if !admin.readonly {
        for event in ops::EVENTS {
            let io = io.clone();
            s.on(
                event,
                async move |Event(event): Event, TryData(args): TryData<ops::Arguments>| {
                    let ops::Arguments(args) = args.unwrap_or_default();
                    match ops::Operation::decode(&event, &args) {
                        Some(op) => op.apply(&io),
                        None => tracing::debug!(event, "admin operation unreadable"),
                    }
                },
            );
        }
    }
    s.on_disconnect(async |s: SocketRef<A>, reason: DisconnectReason| {
        tracing::info!(sid = %s.id, %reason, "admin disconnected");
        feed::disconnected(&s, reason);
    });
}

/// Sends `server_stats` every [`STATS_EVERY`] while an Admin UI is connected to any node, and
/// keeps the feed's hooks working exactly as long as one is.
async fn report<A: Adapter>(admin: Arc<Admin>, io: SocketIo<A>) {
    let mut every = tokio::time::interval(STATS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(ns) = io.of(NS) else {
            continue;
        };
        let watching = match ns.clone().to(ADMINS).fetch_sockets().await {
            Ok(admins) => !admins.is_empty(),
            Err(e) => {
                tracing::debug!(error = %e, "counting the admins of other nodes failed");
                !ns.clone().local().to(ADMINS).sockets().is_empty()
            }
        };
        admin.feed.watch(watching);
        if !watching {
            continue;
        }
        let stats = admin.stats(&io, admin.feed.take_counts());
        if let Err(e) = ns.to(ADMINS).emit("server_stats", &stats).await {
            tracing::debug!(error = %e, "server_stats not sent");
        }
    }
}

/// The password read from standard input, as `--admin-password-hash` takes it.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    auth::hash(password)
}
