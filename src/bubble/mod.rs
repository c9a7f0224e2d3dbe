//! The Bubble protocol on the `/` namespace.
//!
//! Every socket gets an [`inbox`](crate::socket::inbox): its events are handled one after the other, in
//! arrival order, by one task per socket. The first thing that task does, once the socket is
//! connected, is put a returning person back into their rooms, so no event of theirs can run
//! before that.
//!
//! Each event is found in one table (`events!` below), which says who may send it and which
//! handler serves it; its payload is decoded into the handler's [`request`] type, validated in the
//! spec's order, applied through the store and presence, and answered through [`Reply`]: the
//! sender gets the reply as an event and, if it asked, as its acknowledgement; a failure goes out
//! as `bubble_error`. Adding an event is one request type, one handler and one row.
//!
//! - [`request`]: one type per event, decoded leniently, field by field;
//! - `kinds`: room types, message kinds, push platforms;
//! - `rooms`, `messages`, `people`, `counsellor`, `moderation`: the handlers, by family;
//! - `views`: the shapes the apps read; `listed`: `list_rooms`'s answer, kept as sent;
//! - `error`: every failure and its wire code ([`BubbleError`]).
use std::sync::Arc;

use entity::room;
use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide_core::adapter::DefinedAdapter;
use uuid::Uuid;

use crate::AppState;
use crate::ids::{BubbleId, Conn, Ns};
use crate::socket::payload::Object;
use crate::socket::wire::{self, Json};
use crate::socket::{
    self, Ack, Finish, Handled, Job, Protocol, Refusal, Refused, Rest, Served, Sock, SockRef, Turn,
    WireError, sio,
};

mod counsellor;
mod error;
mod kinds;
mod listed;
mod messages;
mod moderation;
mod people;
pub mod request;
mod rooms;
#[cfg(test)]
mod tests;
mod views;

pub use error::BubbleError;
pub use listed::ListedRooms;
pub use rooms::announce_departures;

/// The namespace path.
pub const NS: &str = "/";
/// The namespace of signed-in counsellors.
pub const COUNSELLOR_NS: &str = "/counsellor";

/// Registers the `/` and `/counsellor` namespaces; returns what readies their adapters.
pub fn register<A: Adapter + DefinedAdapter>(
    app: &Arc<AppState>,
    io: &SocketIo<A>,
) -> Vec<A::InitRes> {
    [Ns::Root, Ns::Counsellor]
        .into_iter()
        .map(|ns| socket::register(app, io, ns.path(), Bubble { ns }))
        .collect()
}

/// The Bubble protocol on one of its namespaces.
struct Bubble {
    ns: Ns,
}

impl Protocol for Bubble {
    type Served = Connected;

    /// On `/`, the person of the `bubble` query token (a returning person) or a new one; on
    /// `/counsellor`, the signed-in account (session cookie or `auth.token`), or refused.
    async fn accept<A: Adapter>(
        &self,
        app: &Arc<AppState>,
        s: &SocketRef<A>,
        auth: Option<Value>,
    ) -> Result<Connected, Refused> {
        let mut counsellor = None;
        let query = s.req_parts().uri.query().unwrap_or("");
        let (bubble_id, name): (BubbleId, Option<String>) = match self.ns {
            Ns::Root => match socket::query_param(query, "bubble").and_then(bubble_token) {
                Some(token) => {
                    let person = app.store.people().for_token(token).await?;
                    (person.bubble_id.into(), person.name)
                }
                None => (Uuid::new_v4().to_string().into(), None),
            },
            Ns::Counsellor => {
                let token = socket::auth_token(auth.as_ref());
                let account =
                    crate::auth::counsellor_for_handshake(&app.store, s.req_parts(), token)
                        .await?
                        .ok_or(Refused::Unauthorized)?;
                // Signing out disconnects the account's sockets on every node through this room.
                s.join(account_room(&account.id));
                counsellor = Some(Arc::new(CounsellorIdentity {
                    account_id: account.id.clone(),
                    username: account.username,
                    name: account.name.clone(),
                }));
                (account.id.into(), Some(account.name))
            }
        };
        Ok(Connected {
            app: app.clone(),
            conn: Conn {
                ns: self.ns,
                sid: s.id,
            },
            bubble_id,
            counsellor,
            name: Arc::new(std::sync::Mutex::new(name)),
        })
    }
}

/// The `bubble` query parameter, when it is a UUID.
fn bubble_token(value: &str) -> Option<Uuid> {
    Uuid::try_parse(value).ok()
}

/// `{ error: { code, message } }`: the acknowledgement of a failed request.
#[derive(Serialize)]
struct Failed<'a> {
    error: &'a WireError,
}

/// Answers a request with a failure: `bubble_error` and the acknowledgement.
fn refuse(s: &dyn Sock, error: &BubbleError, ack: Ack) {
    let error = error.wire();
    socket::emit(s, "bubble_error", &error);
    ack.send(&wire::json(&Failed { error: &error }));
}

/// What `/` and `/counsellor` keep about a connected socket, for as long as it is connected.
struct Connected {
    app: Arc<AppState>,
    conn: Conn,
    bubble_id: BubbleId,
    counsellor: Option<Arc<CounsellorIdentity>>,
    name: Arc<std::sync::Mutex<Option<String>>>,
}

impl Connected {
    fn ctx(&self, socket: SockRef) -> Ctx {
        Ctx {
            app: self.app.clone(),
            socket,
            conn: self.conn,
            sid: self.conn.sid,
            bubble_id: self.bubble_id.clone(),
            counsellor: self.counsellor.clone(),
            name: self.name.clone(),
        }
    }
}

impl Served for Connected {
    /// Once connected, the socket's person is recorded present and put back into their rooms
    /// before any of its events; then its events in order, and its departure.
    fn handle(&self, socket: SockRef, job: Job) -> Turn<'_> {
        Box::pin(async move {
            let ctx = self.ctx(socket);
            match job {
                Job::Connected => {
                    let presence = &ctx.app.presence;
                    if let Err(e) = presence.connect(ctx.conn, ctx.bubble_id.clone()).await {
                        tracing::error!(sid = %ctx.sid, error = %e, "recording presence failed");
                    }
                    if let Err(e) = rooms::rejoin(&ctx).await {
                        tracing::error!(sid = %ctx.sid, error = %e, "restoring rooms failed");
                    }
                    socket::emit(&*ctx.socket, "my_id", &*ctx.bubble_id);
                }
                Job::Event { event, data, ack } => {
                    let overlaps = overlaps(&event);
                    return start(ctx, event, request::fields(data), ack, overlaps).await;
                }
                Job::Disconnect => rooms::disconnected(&ctx).await,
            }
            Rest::Done
        })
    }

    fn refuse(&self, socket: &dyn Sock, _event: &str, why: Refusal, ack: Ack) {
        let error = match why {
            Refusal::Overloaded => BubbleError::RateLimited,
            Refusal::Panicked => {
                BubbleError::Internal(sea_orm::DbErr::Custom("the handler panicked".into()))
            }
        };
        refuse(socket, &error, ack);
    }

    /// `list_rooms` and `my_rooms` take no arguments and `view_room` only its room: a later
    /// request of the same makes the answer to an earlier one out of date.
    fn answer_key(&self, event: &str, data: &Value) -> Option<String> {
        match event {
            "list_rooms" | "my_rooms" => Some(event.to_owned()),
            "view_room" => {
                let room = data.get("roomId").map(Value::to_string).unwrap_or_default();
                Some(format!("view_room {room}"))
            }
            _ => None,
        }
    }

    fn overlaps(&self, event: &str) -> bool {
        overlaps(event)
    }
}

/// Whether the event is a message or reaction, which waits for its commit while the socket's
/// next requests start (its handler returns [`messages::Storing`]).
fn overlaps(event: &str) -> bool {
    matches!(event, "add_message" | "add_reaction")
}

/// What the sender gets back on success: an event, also used as the acknowledgement.
pub struct Reply {
    pub event: &'static str,
    /// Serialized once, for the event and the acknowledgement alike.
    pub payload: Json,
}

impl Reply {
    pub fn new(event: &'static str, payload: impl Serialize) -> Self {
        let payload = wire::json(&payload);
        Self { event, payload }
    }
}

/// A handled request: `Ok(None)` when the sender gets no event (its ack then gets `{}`).
pub type Outcome = Result<Option<Reply>, BubbleError>;

/// What a handler returns: its outcome, or a message handed to the store, to be delivered and
/// answered once committed.
enum Routed {
    Now(Outcome),
    Storing(Result<messages::Storing, BubbleError>),
}

impl From<Outcome> for Routed {
    fn from(outcome: Outcome) -> Self {
        Routed::Now(outcome)
    }
}

impl From<Result<messages::Storing, BubbleError>> for Routed {
    fn from(storing: Result<messages::Storing, BubbleError>) -> Self {
        Routed::Storing(storing)
    }
}

/// Who may send an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Anyone, on `/` and `/counsellor`.
    Anyone,
    /// People on `/`; on `/counsellor` the event is unknown, and ignored.
    User,
    /// Signed-in counsellors on `/counsellor`; on `/` it is refused as `unauthorized`.
    Counsellor,
}

/// What becomes of an event on a namespace, by who may send it.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Handled,
    Unauthorized,
    Unknown,
}

impl Who {
    fn admits(self, ns: Ns) -> Admission {
        match (self, ns) {
            (Who::Anyone, _) | (Who::User, Ns::Root) | (Who::Counsellor, Ns::Counsellor) => {
                Admission::Handled
            }
            (Who::User, Ns::Counsellor) => Admission::Unknown,
            (Who::Counsellor, Ns::Root) => Admission::Unauthorized,
        }
    }
}

/// The table of events: `"name" | "alias" => who may send it, handler;`. A handler is
/// `async fn(&Ctx, R) -> Outcome` where `R` is the event's [`Request`](request::Request) type,
/// decoded from the payload only once the sender is admitted (or, for a message, one returning
/// what it handed to the store: [`Routed`]). Makes [`route`].
macro_rules! events {
    ($($($event:literal)|+ => $who:ident, $handler:path;)+) => {
        /// Serves `event` by the table: `None` when it is unknown on the socket's namespace.
        async fn route(ctx: &Ctx, event: &str, fields: Object) -> Option<Routed> {
            use request::Request;
            match event {
                $($($event)|+ => match Who::$who.admits(ctx.conn.ns) {
                    Admission::Handled => Some($handler(ctx, Request::decode(fields)).await.into()),
                    Admission::Unauthorized => Some(Routed::Now(Err(BubbleError::Unauthorized))),
                    Admission::Unknown => None,
                },)+
                _ => None,
            }
        }

        /// Who may send `event`, if it is one of the table's.
        #[cfg(test)]
        fn who(event: &str) -> Option<Who> {
            match event {
                $($($event)|+ => Some(Who::$who),)+
                _ => None,
            }
        }
    };
}

events! {
    "join_room" => Anyone, rooms::join_room;
    "exit_room" => Anyone, rooms::exit_room;
    "list_rooms" => Anyone, rooms::list_rooms;
    "view_room" => Anyone, rooms::view_room;
    "my_rooms" => Anyone, rooms::my_rooms;
    "typing" => Anyone, rooms::typing;
    "stop_typing" => Anyone, rooms::stop_typing;
    "add_message" => Anyone, messages::add_message;
    "add_reaction" => Anyone, messages::add_reaction;
    "my_id" => Anyone, people::my_id;
    "counsellor_online" => Anyone, counsellor::counsellor_online;
    "counsellor_offline" => Anyone, counsellor::counsellor_offline;
    "list_issues" => Anyone, counsellor::list_issues;
    "create_room" => User, rooms::create_room;
    "set_user_name" => User, people::set_user_name;
    "register_push" | "registerPush" => User, people::register_push;
    "report_user" => User, counsellor::report_user;
    "find_counsellor" => User, counsellor::find_counsellor;
    "resolve_issue" => Counsellor, counsellor::resolve_issue;
    "close_room" => Counsellor, moderation::close_room;
    "set_room_type" => Counsellor, moderation::set_room_type;
}

/// Handles an event by the table. An event that `overlaps` answers nothing before its
/// [`Rest::Later`]: a message is answered there once committed, anything else right away.
async fn start(ctx: Ctx, event: String, fields: Object, ack: Ack, overlaps: bool) -> Rest {
    tracing::trace!(sid = %ctx.sid, event, "handling");
    let Some(routed) = route(&ctx, &event, fields).await else {
        tracing::debug!(sid = %ctx.sid, event, "unknown event ignored");
        return Rest::Done;
    };
    match routed {
        Routed::Now(outcome) if !overlaps => {
            answer(&ctx, &event, outcome, ack);
            Rest::Done
        }
        Routed::Now(outcome) => Rest::Later(Box::pin(async move {
            Box::new(move || -> Handled<'static> {
                Box::pin(async move { answer(&ctx, &event, outcome, ack) })
            }) as Finish
        })),
        Routed::Storing(storing) => Rest::Later(Box::pin(async move {
            let stored = match storing {
                Ok(storing) => storing.stored(&ctx.app).await,
                Err(e) => Err(e),
            };
            Box::new(move || -> Handled<'static> {
                Box::pin(async move {
                    let outcome = match stored {
                        Ok(stored) => stored.deliver(&ctx).await,
                        Err(e) => Err(e),
                    };
                    answer(&ctx, &event, outcome, ack);
                })
            }) as Finish
        })),
    }
}

/// Answers a request: its reply as an event and on the acknowledgement, or its failure.
fn answer(ctx: &Ctx, event: &str, outcome: Outcome, ack: Ack) {
    match outcome {
        Ok(Some(reply)) => {
            ctx.socket.send(reply.event, &reply.payload);
            ack.send(&reply.payload);
        }
        Ok(None) => {
            ack.send(&wire::json(&views::Empty {}));
        }
        Err(error) => {
            let (sid, ns, code) = (&ctx.sid, ctx.conn.ns.path(), error.code());
            match &error {
                BubbleError::Internal(e) => {
                    tracing::error!(%sid, ns, event, code, error = %e, "request failed");
                }
                _ => tracing::debug!(%sid, ns, event, code, "request refused"),
            }
            refuse(&*ctx.socket, &error, ack);
        }
    }
}

/// Everything a handler needs about the socket it serves.
#[derive(Clone)]
pub struct Ctx {
    pub app: Arc<AppState>,
    pub socket: SockRef,
    pub conn: Conn,
    pub sid: Sid,
    pub bubble_id: BubbleId,
    /// The signed-in counsellor, on `/counsellor`.
    pub counsellor: Option<Arc<CounsellorIdentity>>,
    /// The person's display name, once they chose one (or the counsellor's).
    pub name: Arc<std::sync::Mutex<Option<String>>>,
}

impl Ctx {
    /// The room with that id, or `room_id_not_found`.
    pub async fn room(&self, room_id: &str) -> Result<room::Model, BubbleError> {
        self.app
            .store
            .rooms()
            .get(room_id)
            .await?
            .ok_or(BubbleError::RoomIdNotFound)
    }

    /// The person's display name, if they chose one.
    pub fn name(&self) -> Option<String> {
        self.name.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Sends to every other socket in the room, on both namespaces.
    pub async fn to_others(&self, room_id: &str, event: &str, payload: &impl Serialize) {
        self.to_others_in(vec![room_id.to_owned()], event, payload)
            .await;
    }

    /// Sends once to every other socket in any of the rooms, on both namespaces. No rooms, no
    /// one (an empty list would otherwise address the whole namespace).
    pub async fn to_others_in(&self, rooms: Vec<String>, event: &str, payload: &impl Serialize) {
        self.to_others_json(rooms, event, &wire::json(payload))
            .await;
    }

    /// [`Ctx::to_others_in`] with the payload already made.
    pub async fn to_others_json(&self, rooms: Vec<String>, event: &str, payload: &Json) {
        let me = vec![sio::own_room(self.sid)];
        let io = &self.app.io;
        let there = self.conn.ns.other().path();
        io.emit(self.conn.ns.path(), rooms.clone(), me, event, payload)
            .await;
        io.emit(there, rooms, Vec::new(), event, payload).await;
    }

    /// Sends to every socket in the room, on both namespaces, on every node.
    pub async fn to_room(&self, room_id: &str, event: &str, payload: &impl Serialize) {
        to_room(&self.app, room_id, event, payload).await;
    }

    /// Sends to one socket, on whichever node it is.
    pub async fn emit_to(&self, conn: Conn, event: &str, payload: &impl Serialize) {
        let to = vec![sio::own_room(conn.sid)];
        let payload = wire::json(payload);
        let io = &self.app.io;
        io.emit(conn.ns.path(), to, Vec::new(), event, &payload)
            .await;
    }

    /// Puts one socket, on whichever node it is, in a socket.io room (presence is apart).
    pub async fn join_socket(&self, conn: Conn, room_id: &str) {
        if conn == self.conn {
            self.socket.join_room(room_id.to_owned());
            return;
        }
        let of = vec![sio::own_room(conn.sid)];
        let io = &self.app.io;
        io.join(conn.ns.path(), of, vec![room_id.to_owned()]).await;
    }

    /// Takes one socket, on whichever node it is, out of a socket.io room (presence is apart).
    pub async fn leave_socket(&self, conn: Conn, room_id: &str) {
        if conn == self.conn {
            self.socket.leave_room(room_id.to_owned());
            return;
        }
        let of = vec![sio::own_room(conn.sid)];
        let io = &self.app.io;
        io.leave(conn.ns.path(), of, Vec::new(), vec![room_id.to_owned()])
            .await;
    }
}

/// Sends to every socket in the room, on both namespaces, on every node.
pub async fn to_room(app: &AppState, room_id: &str, event: &str, payload: &impl Serialize) {
    let payload = wire::json(payload);
    for ns in [Ns::Root, Ns::Counsellor] {
        let rooms = vec![room_id.to_owned()];
        app.io
            .emit(ns.path(), rooms, Vec::new(), event, &payload)
            .await;
    }
}

/// The signed-in counsellor behind a socket on `/counsellor`, kept in its extensions.
#[derive(Debug, Clone)]
pub struct CounsellorIdentity {
    pub account_id: String,
    pub username: String,
    pub name: String,
}

/// The socket.io room of a counsellor account's sockets on `/counsellor`.
fn account_room(account_id: &str) -> String {
    format!("account:{account_id}")
}

/// Disconnects every socket of a counsellor account (on sign-out), on every node.
pub async fn disconnect_counsellor(app: &AppState, account_id: &str) {
    let of = vec![account_room(account_id)];
    app.io.disconnect(COUNSELLOR_NS, of).await;
}
