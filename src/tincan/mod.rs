//! The TinCan protocol on the `/tincan` namespace: accounts over HTTP, then groups,
//! conversations, messages and typing over socket.io.
//!
//! A socket proves who it is in the connect middleware (a token from `auth.token`, an
//! `Authorization: Bearer` header, or the query `token=`), which also puts it in the rooms of its
//! user, groups and conversations (`rooms`) before the client hears it is connected. Its events
//! then go through the shared [`inbox`](crate::socket::inbox), so they take effect in arrival order.
//!
//! Each event is decoded into [`Fields`], validated, applied through the store, and answered:
//! the requester gets the success event (with its `requestId`) and an acknowledgement
//! `{ ok: true, ... }`, the others concerned get the same event through the rooms; a failure goes
//! to the requester only, as the request's `-failed` event (or its `-response` with `ok: false`)
//! and `{ ok: false, code, message }` on the acknowledgement.
//!
//! Modules, one per family: `accounts` (HTTP register/login/logout), `groups`,
//! `conversations`, `messages`, `typing`; with `payload` (lenient decoding), `views`
//! (wire shapes), `rooms` (who hears what), `error` (codes).
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide_core::adapter::DefinedAdapter;

use crate::AppState;
use crate::config::TinCanArgs;
use crate::socket::wire;
use crate::socket::{
    self, Ack, Handled, Job, Protocol, Refusal, Refused, Served, Sock, SockRef, sio,
};
use crate::store::Store;

mod accounts;
mod conversations;
mod error;
mod groups;
mod messages;
mod payload;
mod rooms;
mod typing;
mod views;

pub use accounts::routes;
pub use error::TinCanError;
pub use payload::Fields;

/// The namespace path.
pub const NS: &str = "/tincan";

/// TinCan's shared state: settings, sign-in limits and typing timers.
pub struct TinCan {
    pub token_ttl: Duration,
    limits: crate::auth::rate_limit::LoginLimits,
    typing: typing::Typing,
}

impl TinCan {
    pub fn new(args: &TinCanArgs) -> Self {
        Self {
            token_ttl: args.token_ttl,
            limits: crate::auth::rate_limit::LoginLimits::new(
                args.login_per_ip,
                args.login_per_user,
            ),
            typing: typing::Typing::new(Duration::from_millis(args.typing_timeout_ms)),
        }
    }
}

/// Who is behind a socket, kept in its extensions. The token's hash tells which sockets to drop
/// when that token is revoked.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub token_hash: String,
}

/// Registers the `/tincan` namespace.
pub fn register<A: Adapter + DefinedAdapter>(app: &Arc<AppState>, io: &SocketIo<A>) -> A::InitRes {
    socket::register(app, io, NS, TinCanProtocol)
}

/// The TinCan protocol on `/tincan`.
struct TinCanProtocol;

impl Protocol for TinCanProtocol {
    type Served = Connected;

    /// Finds the user of the token (from `auth.token`, an `Authorization: Bearer` header or the
    /// query `token=`, the first that signs someone in) and puts the socket in its rooms.
    async fn accept<A: Adapter>(
        &self,
        app: &Arc<AppState>,
        s: &SocketRef<A>,
        auth: Option<Value>,
    ) -> Result<Connected, Refused> {
        let parts = s.req_parts();
        let from_auth = socket::auth_token(auth.as_ref());
        let from_header = crate::auth::bearer_token(&parts.headers);
        let from_query = parts
            .uri
            .query()
            .and_then(|q| socket::query_param(q, "token"));
        let mut signed_in = None;
        for token in [from_auth, from_header, from_query].into_iter().flatten() {
            let token = token.trim();
            if token.is_empty() {
                continue;
            }
            if let Some(found) = app.store.tincan_user_for_token(token).await? {
                signed_in = Some(found);
                break;
            }
        }
        let signed_in = signed_in.ok_or(Refused::Unauthorized)?;
        let rooms = rooms::of_user(&app.store, &signed_in.user.id).await?;
        s.join(rooms);
        // Revoking the token disconnects its sockets on every node through this room.
        s.join(token_room(&signed_in.token_hash));
        let me = Arc::new(Identity {
            user_id: signed_in.user.id,
            username: signed_in.user.username,
            display_name: signed_in.user.display_name,
            token_hash: signed_in.token_hash,
        });
        Ok(Connected {
            app: app.clone(),
            me,
        })
    }
}

/// Answers a request with a failure: the request's failure event (its `-failed` event, or its
/// `-response` with `ok: false`), then `{ ok: false, code, message, field?, requestId? }` on the
/// acknowledgement. Unknown events get the acknowledgement only.
fn refuse(s: &dyn Sock, event: &str, error: &TinCanError, request_id: Option<String>, ack: Ack) {
    let body = failed(&error.wire(), request_id);
    match kind(event).map(|k| k.failure) {
        Some(Failure::Event(name)) => {
            let mut body = body.clone();
            body.remove("ok");
            socket::emit(s, name, &body);
        }
        Some(Failure::Response(name)) => socket::emit(s, name, &body),
        Some(Failure::Silent) | None => {}
    }
    ack.send(&wire::json(&body));
}

/// What `/tincan` keeps about a connected socket: who is behind it.
struct Connected {
    app: Arc<AppState>,
    me: Arc<Identity>,
}

impl Served for Connected {
    /// The socket's requests, in order.
    fn handle(&self, socket: SockRef, job: Job) -> Handled<'_> {
        Box::pin(async move {
            if let Job::Event { event, data, ack } = job {
                let ctx = Ctx {
                    app: self.app.clone(),
                    socket,
                    me: self.me.clone(),
                };
                handle(&ctx, &event, data, ack).await;
            }
        })
    }

    /// Refused before its payload was read: without its `requestId`.
    fn refuse(&self, socket: &dyn Sock, event: &str, why: Refusal, ack: Ack) {
        let error = match why {
            Refusal::Overloaded => TinCanError::RateLimited,
            Refusal::Panicked => TinCanError::Internal(anyhow::anyhow!("the handler panicked")),
        };
        refuse(socket, event, &error, None, ack);
    }
}

/// How a request's failure reaches the requester.
#[derive(Clone, Copy)]
enum Failure {
    /// Its own `-failed` event.
    Event(&'static str),
    /// Its `-response` event with `ok: false`.
    Response(&'static str),
    /// Only the acknowledgement (typing).
    Silent,
}

#[derive(Clone, Copy)]
struct Kind {
    /// The requester's success event, if any.
    success: Option<&'static str>,
    failure: Failure,
}

/// The answers of each client message of the protocol; `None` for unknown events.
fn kind(event: &str) -> Option<Kind> {
    let (success, failure) = match event {
        "auth/logout" => (None, Failure::Silent),
        "group/create" => (Some("group/created"), Failure::Event("group/create-failed")),
        "group/edit" => (Some("group/edited"), Failure::Event("group/edit-failed")),
        "group/list" => (
            Some("group/list-response"),
            Failure::Response("group/list-response"),
        ),
        "group/view" => (
            Some("group/view-response"),
            Failure::Response("group/view-response"),
        ),
        "group/join" => (Some("group/joined"), Failure::Event("group/join-failed")),
        "group/leave" => (Some("group/left"), Failure::Event("group/leave-failed")),
        "group/remove" => (Some("group/removed"), Failure::Event("group/remove-failed")),
        "conversation/create" => (
            Some("conversation/created"),
            Failure::Event("conversation/create-failed"),
        ),
        "conversation/edit" => (
            Some("conversation/edited"),
            Failure::Event("conversation/edit-failed"),
        ),
        "conversation/list" => (
            Some("conversation/list-response"),
            Failure::Response("conversation/list-response"),
        ),
        "conversation/remove" => (
            Some("conversation/removed"),
            Failure::Event("conversation/remove-failed"),
        ),
        "conversation/type-start" | "conversation/type-end" => (None, Failure::Silent),
        "message/create" => (
            Some("message/created"),
            Failure::Event("message/create-failed"),
        ),
        "message/edit" => (
            Some("message/edited"),
            Failure::Event("message/edit-failed"),
        ),
        "message/remove" => (
            Some("message/removed"),
            Failure::Event("message/remove-failed"),
        ),
        "message/list" => (
            Some("message/list-response"),
            Failure::Event("message/list-failed"),
        ),
        _ => return None,
    };
    Some(Kind { success, failure })
}

/// A handled request.
pub enum Answer {
    /// The requester's success payload (a JSON object).
    Reply(Value),
    /// Nothing but `{ ok: true }` on the acknowledgement.
    Quiet,
    /// Signed out: acknowledge, then drop every socket of the token with this hash.
    SignedOut(String),
}

impl Answer {
    pub fn reply(payload: impl Serialize) -> Self {
        Self::Reply(serde_json::to_value(payload).unwrap_or(Value::Null))
    }
}

pub type Outcome = Result<Answer, TinCanError>;

async fn dispatch(ctx: &Ctx, event: &str, f: &Fields) -> Outcome {
    match event {
        "auth/logout" => accounts::socket_logout(ctx).await,
        "group/create" => groups::create(ctx, f).await,
        "group/edit" => groups::edit(ctx, f).await,
        "group/list" => groups::list(ctx, f).await,
        "group/view" => groups::view(ctx, f).await,
        "group/join" => groups::join(ctx, f).await,
        "group/leave" => groups::leave(ctx, f).await,
        "group/remove" => groups::remove(ctx, f).await,
        "conversation/create" => conversations::create(ctx, f).await,
        "conversation/edit" => conversations::edit(ctx, f).await,
        "conversation/list" => conversations::list(ctx, f).await,
        "conversation/remove" => conversations::remove(ctx, f).await,
        "conversation/type-start" => typing::start(ctx, f).await,
        "conversation/type-end" => typing::end(ctx, f).await,
        "message/create" => messages::create(ctx, f).await,
        "message/edit" => messages::edit(ctx, f).await,
        "message/remove" => messages::remove(ctx, f).await,
        "message/list" => messages::list(ctx, f).await,
        _ => Ok(Answer::Quiet),
    }
}

async fn handle(ctx: &Ctx, event: &str, data: Value, ack: Ack) {
    let sid = ctx.socket.id();
    let Some(kind) = kind(event) else {
        tracing::debug!(%sid, event, "unknown tincan event ignored");
        return;
    };
    tracing::trace!(%sid, event, "handling");
    let fields = Fields::try_from(data);
    // The requestId is echoed whenever it can be read, even when something else is wrong.
    let request_id = fields
        .as_ref()
        .ok()
        .and_then(|f| f.request_id().ok().flatten());
    let outcome = match fields {
        // Signing out needs nothing from the payload: a malformed one must not keep anyone in.
        _ if event == "auth/logout" => accounts::socket_logout(ctx).await,
        Ok(f) => match f.request_id() {
            Ok(_) => dispatch(ctx, event, &f).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Answer::Reply(payload)) => {
            let mut payload = match payload {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            // Every `-response` says whether it answers a success.
            if kind.success.is_some_and(|s| s.ends_with("-response")) {
                payload.insert("ok".into(), Value::Bool(true));
            }
            if let Some(id) = &request_id {
                payload.insert("requestId".into(), Value::String(id.clone()));
            }
            if let Some(success) = kind.success {
                socket::emit(&*ctx.socket, success, &payload);
            }
            payload.insert("ok".into(), Value::Bool(true));
            ack.send(&wire::json(&payload));
        }
        Ok(Answer::Quiet) => ack.send(&wire::json(&ok(request_id))),
        Ok(Answer::SignedOut(token_hash)) => {
            ack.send(&wire::json(&ok(request_id)));
            disconnect_token(&ctx.app, &token_hash).await;
        }
        Err(error) => {
            error.log(event);
            refuse(&*ctx.socket, event, &error, request_id, ack);
        }
    }
}

fn ok(request_id: Option<String>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("ok".into(), Value::Bool(true));
    if let Some(id) = request_id {
        body.insert("requestId".into(), Value::String(id));
    }
    body
}

/// `{ ok: false, code, message, field?, requestId? }`.
fn failed(error: &crate::socket::WireError, request_id: Option<String>) -> Map<String, Value> {
    let mut body = match json!(error) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("ok".into(), Value::Bool(false));
    if let Some(id) = request_id {
        body.insert("requestId".into(), Value::String(id));
    }
    body
}

/// The socket.io room of the sockets signed in with one token.
fn token_room(token_hash: &str) -> String {
    format!("token:{token_hash}")
}

/// Disconnects every socket signed in with one token (it was revoked), on every node.
pub async fn disconnect_token(app: &AppState, token_hash: &str) {
    app.io.disconnect(NS, vec![token_room(token_hash)]).await;
}

/// Everything a handler needs about the socket it serves.
pub struct Ctx {
    pub app: Arc<AppState>,
    pub socket: SockRef,
    pub me: Arc<Identity>,
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    pub fn me(&self) -> &str {
        &self.me.user_id
    }

    /// Sends to every socket in any of `to`, except this one (which gets its own answer) and
    /// those in any of `except`. Nothing is sent when `to` is empty.
    pub async fn broadcast(
        &self,
        to: Vec<String>,
        except: Vec<String>,
        event: &str,
        payload: &impl Serialize,
    ) {
        let mut except = except;
        except.push(sio::own_room(self.socket.id()));
        let payload = wire::json(payload);
        self.app.io.emit(NS, to, except, event, &payload).await;
    }

    /// Every socket in any of `of` joins `rooms`.
    pub async fn join(&self, of: Vec<String>, rooms: Vec<String>) {
        self.app.io.join(NS, of, rooms).await;
    }

    /// Every socket in any of `of` (but none in any of `except`) leaves `rooms`.
    pub async fn leave(&self, of: Vec<String>, except: Vec<String>, rooms: Vec<String>) {
        self.app.io.leave(NS, of, except, rooms).await;
    }
}
