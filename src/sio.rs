//! What the handlers need of socket.io, whichever adapter links the nodes.
//!
//! socketioxide makes sockets and the server generic over the adapter: the local one for a single
//! node, Redis or PostgreSQL for several. Only registration and the inbox are generic; everything
//! else sees the socket it serves as a [`Sock`] and the server as an [`Io`], both built once per
//! adapter from the generic implementations below. Payloads are already serialized
//! ([`wire::Json`](crate::wire::Json)), so nothing here needs to be generic over them.
//!
//! Every socket is in a room named by its own id (see [`inbox::open`](crate::inbox::open)), which
//! is how one socket on any node is addressed.
use std::sync::Arc;

use async_trait::async_trait;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extensions::Extensions;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;

use crate::wire::Json;

/// The socket a handler serves, on this node.
pub trait Sock: Send + Sync {
    fn id(&self) -> Sid;
    /// Sends to this socket only; a socket that is gone is not an error.
    fn send(&self, event: &str, payload: &Json);
    fn join_room(&self, room: String);
    fn leave_room(&self, room: String);
    fn extensions(&self) -> &Extensions;
}

impl<A: Adapter> Sock for SocketRef<A> {
    fn id(&self) -> Sid {
        self.id
    }

    fn send(&self, event: &str, payload: &Json) {
        if let Err(e) = socketioxide::socket::Socket::emit(self, event, payload) {
            tracing::debug!(sid = %self.id, event, error = %e, "emit failed");
        }
    }

    fn join_room(&self, room: String) {
        socketioxide::socket::Socket::join(self, room);
    }

    fn leave_room(&self, room: String) {
        socketioxide::socket::Socket::leave(self, room);
    }

    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

/// The whole server, every node of it. Failures are logged, not returned: a broadcast that
/// fails has nobody to report to.
#[async_trait]
pub trait Io: Send + Sync {
    /// Sends to every socket of namespace `ns` in any of `rooms`, but none in any of `except`.
    /// No rooms, no one.
    async fn emit(
        &self,
        ns: &str,
        rooms: Vec<String>,
        except: Vec<String>,
        event: &str,
        payload: &Json,
    );
    /// Every socket of `ns` in any of `of` joins `rooms`.
    async fn join(&self, ns: &str, of: Vec<String>, rooms: Vec<String>);
    /// Every socket of `ns` in any of `of`, but none in any of `except`, leaves `rooms`.
    async fn leave(&self, ns: &str, of: Vec<String>, except: Vec<String>, rooms: Vec<String>);
    /// Disconnects every socket of `ns` in any of `of`.
    async fn disconnect(&self, ns: &str, of: Vec<String>);
    /// Disconnects every socket of this node, on every namespace.
    async fn disconnect_local(&self);
    /// Closes every socket of this node, for shutdown.
    async fn close(&self);
}

/// The sockets of `ns` in any of `to` but none of `except`, on every node; `None` for no rooms
/// (which would otherwise mean the whole namespace) or an unknown namespace.
fn select<A: Adapter>(
    io: &SocketIo<A>,
    ns: &str,
    to: Vec<String>,
    except: Vec<String>,
) -> Option<BroadcastOperators<A>> {
    if to.is_empty() {
        return None;
    }
    let op = io.of(ns)?.to(to);
    Some(if except.is_empty() {
        op
    } else {
        op.except(except)
    })
}

#[async_trait]
impl<A: Adapter> Io for SocketIo<A> {
    async fn emit(
        &self,
        ns: &str,
        rooms: Vec<String>,
        except: Vec<String>,
        event: &str,
        payload: &Json,
    ) {
        let Some(op) = select(self, ns, rooms, except) else {
            return;
        };
        if let Err(e) = op.emit(event, payload).await {
            tracing::warn!(ns, event, error = %e, "broadcast failed");
        }
    }

    async fn join(&self, ns: &str, of: Vec<String>, rooms: Vec<String>) {
        let Some(op) = select(self, ns, of, Vec::new()) else {
            return;
        };
        if !rooms.is_empty()
            && let Err(e) = op.join(rooms).await
        {
            tracing::warn!(ns, error = %e, "joining rooms failed");
        }
    }

    async fn leave(&self, ns: &str, of: Vec<String>, except: Vec<String>, rooms: Vec<String>) {
        let Some(op) = select(self, ns, of, except) else {
            return;
        };
        if !rooms.is_empty()
            && let Err(e) = op.leave(rooms).await
        {
            tracing::warn!(ns, error = %e, "leaving rooms failed");
        }
    }

    async fn disconnect(&self, ns: &str, of: Vec<String>) {
        let Some(op) = select(self, ns, of, Vec::new()) else {
            return;
        };
        if let Err(e) = op.disconnect().await {
            tracing::warn!(ns, error = %e, "disconnecting sockets failed");
        }
    }

    async fn disconnect_local(&self) {
        for ns in self.nsps() {
            for socket in ns.sockets() {
                let _ = socket.disconnect();
            }
        }
    }

    async fn close(&self) {
        SocketIo::close(self).await;
    }
}

/// An event's acknowledgement, if the client asked for one.
pub struct Ack(Box<dyn FnOnce(&Json) + Send>);

impl Ack {
    pub fn new<A: Adapter>(ack: AckSender<A>) -> Self {
        Self(Box::new(move |payload| {
            let _ = ack.send(payload);
        }))
    }

    /// An acknowledgement that calls `f`, for wrappers and tests.
    pub fn from_fn(f: impl FnOnce(&Json) + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    pub fn send(self, payload: &Json) {
        (self.0)(payload)
    }
}

/// The room of one socket, on whichever node it is.
pub fn own_room(sid: Sid) -> String {
    sid.to_string()
}

/// A shared handle on a socket of this node.
pub type SockRef = Arc<dyn Sock>;
