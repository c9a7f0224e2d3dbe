//! What the Admin UI is told as it happens: sockets connecting and leaving, rooms joined and
//! left, events received and sent (`development` mode), and the counts of each second
//! (`aggregatedEvents` in the next `server_stats`).
//!
//! The hooks below sit on the hot path (every event a socket sends or is sent goes through
//! one), so each starts with one relaxed atomic load, [`watched`], which is false unless some
//! server of this process has an Admin UI watching it: with no admin configured or connected, a
//! hook costs that load and nothing else. Only then does it look for the socket's [`Watched`]
//! (in its extensions: the sockets of a server without an admin have none) and build the notice.
//!
//! Notices are queued ([`Feed::notify`]) and sent to the room of the admins ([`ADMINS`]) by one
//! task ([`forward`]), so a hook never waits. On linked nodes that room spans every node, as the
//! reference server's admin namespace does: every Admin UI hears every node. The queue is
//! bounded; notices that find it full are dropped (the next `all_sockets` is whole again).
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::{SerializeTuple, Serializer};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::{DisconnectReason, Socket};
use tokio::sync::mpsc;

use crate::config::AdminMode;
use crate::socket::wire::Json;

use super::sockets;

/// The room every authenticated Admin UI socket joins, on every node.
pub const ADMINS: &str = "bubble-admins";

/// How many notices may wait to be sent before more are dropped.
const QUEUE: usize = 4096;

/// Servers of this process with an Admin UI watching them (see [`Feed::watch`]).
static WATCHING: AtomicUsize = AtomicUsize::new(0);

/// Whether any server of this process has an Admin UI watching it: the first thing every hook
/// asks, and all it asks when the answer is no.
#[inline]
pub fn watched() -> bool {
    WATCHING.load(Ordering::Relaxed) > 0
}

/// One notice for the Admin UIs: an event and its arguments.
pub struct Notice {
    event: &'static str,
    args: Args,
}

/// Arguments sent as separate socket.io arguments, not as one array.
struct Args(Vec<Value>);

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

/// A count's second (in milliseconds), type and subtype.
type CountKey = (i64, &'static str, Option<&'static str>);

/// The feed of one server.
pub struct Feed {
    mode: AdminMode,
    /// Some Admin UI, on this node or another, is connected.
    watching: AtomicBool,
    queue: mpsc::Sender<Notice>,
    /// Counts by second, type and subtype, until the next `server_stats` takes them.
    counts: Mutex<HashMap<CountKey, u64>>,
}

/// What the feed keeps about one socket, in its extensions.
pub struct Watched {
    pub feed: Arc<Feed>,
    /// When the socket was accepted.
    pub issued: DateTime<Utc>,
}

impl Feed {
    /// A feed and the receiving end of its queue, for [`forward`].
    pub fn new(mode: AdminMode) -> (Arc<Self>, mpsc::Receiver<Notice>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let feed = Feed {
            mode,
            watching: AtomicBool::new(false),
            queue,
            counts: Mutex::default(),
        };
        (Arc::new(feed), receiver)
    }

    /// Says whether an Admin UI is watching; the hooks of this server work only while one is.
    pub fn watch(&self, watching: bool) {
        if self.watching.swap(watching, Ordering::SeqCst) != watching {
            if watching {
                WATCHING.fetch_add(1, Ordering::SeqCst);
            } else {
                WATCHING.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// Whether sockets, rooms and events are told as they happen.
    pub fn verbose(&self) -> bool {
        self.mode == AdminMode::Development
    }

    /// Queues a notice; dropped when the queue is full.
    pub fn notify(&self, event: &'static str, args: Vec<Value>) {
        let _ = self.queue.try_send(Notice {
            event,
            args: Args(args),
        });
    }

    /// Adds `n` to this second's count of `kind`.
    fn count(&self, kind: &'static str, sub: Option<&'static str>, n: u64) {
        let second = Utc::now().timestamp() * 1000;
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((second, kind, sub)).or_default() += n;
    }

    /// The counts since the last call, as `aggregatedEvents`: `{ timestamp, type, subType?,
    /// count }`, the timestamp a whole second in milliseconds.
    pub fn take_counts(&self) -> Vec<Value> {
        let counts =
            std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_unstable();
        counts
            .into_iter()
            .map(|((timestamp, kind, sub), count)| match sub {
                Some(sub) => {
                    json!({ "timestamp": timestamp, "type": kind, "subType": sub, "count": count })
                }
                None => json!({ "timestamp": timestamp, "type": kind, "count": count }),
            })
            .collect()
    }
}

/// Now, as the UI reads dates: ISO 8601 in UTC, to the millisecond.
pub fn now() -> Value {
    Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Sends the queued notices to the Admin UIs, on every node, until the server is gone.
pub async fn forward<A: Adapter>(
    io: SocketIo<A>,
    ns: &'static str,
    mut queue: mpsc::Receiver<Notice>,
) {
    while let Some(notice) = queue.recv().await {
        let Some(admins) = io.of(ns) else {
            continue;
        };
        if let Err(e) = admins.to(ADMINS).emit(notice.event, &notice.args).await {
            tracing::debug!(event = notice.event, error = %e, "admin notice not sent");
        }
    }
}

/// The feed of socket `s`, when an Admin UI is watching its server.
fn of<A: Adapter>(s: &Socket<A>) -> Option<Arc<Watched>> {
    if !watched() {
        return None;
    }
    let watched = s.extensions.get::<Arc<Watched>>()?;
    watched.feed.watching().then_some(watched)
}

/// Gives a socket its [`Watched`] when its server has an Admin UI configured; from the connect
/// middleware, so that the socket is known from its first event on.
pub fn attach<A: Adapter>(feed: Option<&Arc<Feed>>, s: &Socket<A>) {
    if let Some(feed) = feed {
        s.extensions.insert(Arc::new(Watched {
            feed: feed.clone(),
            issued: Utc::now(),
        }));
    }
}

/// Socket `s` is connected, in the rooms it was put in when it was accepted.
pub fn connected<A: Adapter>(s: &Socket<A>) {
    let Some(w) = of(s) else { return };
    w.feed.count("rawConnection", None, 1);
    if w.feed.verbose() {
        let socket = sockets::serialize(s);
        w.feed
            .notify("socket_connected", vec![json!(socket), now()]);
    }
}

/// Socket `s` is gone.
pub fn disconnected<A: Adapter>(s: &Socket<A>, reason: DisconnectReason) {
    let Some(w) = of(s) else { return };
    let reason = reason_name(reason);
    w.feed.count("rawDisconnection", Some(reason), 1);
    if w.feed.verbose() {
        let args = vec![s.ns().into(), s.id.to_string().into(), reason.into(), now()];
        w.feed.notify("socket_disconnected", args);
    }
}

/// Socket `s` of this node joined `room`.
pub fn joined<A: Adapter>(s: &Socket<A>, room: &str) {
    room_notice(s, "room_joined", room);
}

/// Socket `s` of this node left `room`.
pub fn left<A: Adapter>(s: &Socket<A>, room: &str) {
    room_notice(s, "room_left", room);
}

fn room_notice<A: Adapter>(s: &Socket<A>, event: &'static str, room: &str) {
    let Some(w) = of(s) else { return };
    if w.feed.verbose() {
        let args = vec![s.ns().into(), room.into(), s.id.to_string().into(), now()];
        w.feed.notify(event, args);
    }
}

/// Socket `s` sent `event` with `data` (`Null` for none), in a packet of `bytes` bytes.
pub fn received<A: Adapter>(s: &Socket<A>, event: &str, data: &Value, bytes: usize) {
    let Some(w) = of(s) else { return };
    w.feed.count("packetsIn", None, 1);
    w.feed.count("bytesIn", None, bytes as u64);
    if w.feed.verbose() {
        let mut args = vec![Value::from(event)];
        if !data.is_null() {
            args.push(data.clone());
        }
        let args = vec![s.ns().into(), s.id.to_string().into(), args.into(), now()];
        w.feed.notify("event_received", args);
    }
}

/// Socket `s` is sent `event` with `payload`.
pub fn sent<A: Adapter>(s: &Socket<A>, event: &str, payload: &Json) {
    let Some(w) = of(s) else { return };
    w.feed.count("packetsOut", None, 1);
    w.feed
        .count("bytesOut", None, (event.len() + payload.text_len()) as u64);
    if w.feed.verbose() {
        let payload = payload
            .serialize(serde_json::value::Serializer)
            .unwrap_or(Value::Null);
        let args = vec![
            s.ns().into(),
            s.id.to_string().into(),
            json!([event, payload]),
            now(),
        ];
        w.feed.notify("event_sent", args);
    }
}

/// A disconnection's reason as socket.io names it.
fn reason_name(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::TransportError => {
            "transport error"
        }
        DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}
