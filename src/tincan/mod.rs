//! The TinCan protocol on the `/tincan` namespace: accounts over HTTP, then groups,
//! conversations, messages and typing over socket.io.
//!
//! A socket proves who it is in the connect middleware (a token from `auth.token`, an
//! `Authorization: Bearer` header, or the query `token=`), which also puts it in the rooms of its
//! user, groups and conversations (`rooms`) before the client hears it is connected. Its events
//! then go through the shared [`inbox`](crate::socket::inbox), so they take effect in arrival order.
//!
//! Each event has a row in one table (`events::ROUTES`): its request type, decoded once from
//! the payload (`request`), whose handler applies it through the store; the event its success
//! is answered with; how its failure reaches the requester. The requester gets the success event
//! (with its `requestId`) and an acknowledgement `{ ok: true, ... }`, the others concerned get
//! the same event through the rooms; a failure goes to the requester only, as the request's
//! `-failed` event (or its `-response` with `ok: false`) and `{ ok: false, code, message }` on
//! the acknowledgement.
//!
//! Modules: `events` (the table, and answering), `request` (one type per client event),
//! `payload` (lenient decoding of one field at a time); the handlers, one module per family:
//! `accounts` (HTTP register/login/logout, and `auth/logout`), `groups`, `conversations`,
//! `messages`, `typing`; with `views` (wire shapes), `rooms` (who hears what), `error` (codes).
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide_core::adapter::DefinedAdapter;

use crate::AppState;
use crate::config::TinCanArgs;
use crate::socket::wire;
use crate::socket::{
    self, Ack, Job, Protocol, Refusal, Refused, Rest, Served, Sock, SockRef, Turn, sio,
};
use crate::store::Store;

mod accounts;
mod conversations;
mod error;
mod events;
mod groups;
mod messages;
mod payload;
mod request;
mod rooms;
#[cfg(test)]
mod tests;
mod typing;
mod views;

pub use accounts::routes;
pub use error::TinCanError;

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
            if let Some(found) = app.store.tincan().accounts().for_token(token).await? {
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

/// What `/tincan` keeps about a connected socket: who is behind it.
struct Connected {
    app: Arc<AppState>,
    me: Arc<Identity>,
}

impl Served for Connected {
    /// The socket's requests, in order.
    fn handle(&self, socket: SockRef, job: Job) -> Turn<'_> {
        Box::pin(async move {
            if let Job::Event { event, data, ack } = job {
                let ctx = Ctx {
                    app: self.app.clone(),
                    socket,
                    me: self.me.clone(),
                };
                let Some(route) = events::route(&event) else {
                    tracing::debug!(sid = %ctx.socket.id(), event, "unknown tincan event ignored");
                    return Rest::Done;
                };
                tracing::trace!(sid = %ctx.socket.id(), event, "handling");
                events::handle(&ctx, route, data, ack).await;
            }
            Rest::Done
        })
    }

    /// Refused before its payload was read: without its `requestId`.
    fn refuse(&self, socket: &dyn Sock, event: &str, why: Refusal, ack: Ack) {
        let error = match why {
            Refusal::Overloaded => TinCanError::RateLimited,
            Refusal::Panicked => TinCanError::Internal(anyhow::anyhow!("the handler panicked")),
        };
        let failure = events::route(event).map(|r| r.failure);
        events::refuse(socket, failure, &error, None, ack);
    }
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
        let payload = wire::json(&events::sorted(payload));
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
