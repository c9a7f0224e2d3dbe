//! What the handlers need of socket.io, whichever adapter links the nodes.
//!
//! socketioxide makes sockets and the server generic over the adapter: the local one for a single
//! node, Redis or PostgreSQL for several. Only registration and the inbox are generic; everything
//! else sees the socket it serves as a [`Sock`] and the server as an [`Io`], both built once per
//! adapter from the generic implementations below. Payloads are already serialized
//! ([`wire::Json`]), so nothing here needs to be generic over them.
//!
//! Joins and leaves made here, and what sockets are sent, are told to the Admin UI's feed
//! ([`feed`]) when one is watching.
//!
//! Every socket is in a room named by its own id (see [`inbox::open`](super::inbox::open)), which
//! is how one socket on any node is addressed.
use std::sync::Arc;

use async_trait::async_trait;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extensions::Extensions;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;

use super::outflow::{self, Sent};
use super::wire::{self, Json};
use crate::admin::feed;

/// The socket a handler serves, on this node.
pub trait Sock: Send + Sync {
    fn id(&self) -> Sid;
    /// Sends to this socket only, or disconnects it when it is too far behind to take it (see
    /// [`outflow::deliver`]); a socket that is gone is not an error.
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
        feed::sent(self, event, payload);
        outflow::deliver(self, event.len() + payload.text_len(), Sent::Event, || {
            socketioxide::socket::Socket::emit(self, event, payload)
        });
    }

    fn join_room(&self, room: String) {
        feed::joined(self, &room);
        socketioxide::socket::Socket::join(self, room);
    }

    fn leave_room(&self, room: String) {
        feed::left(self, &room);
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
    /// No rooms, no one. Each socket of this node that is too far behind to take it is
    /// disconnected, as by [`Sock::send`].
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

/// Whether `A` is the adapter of a single node, with no other node to reach.
fn is_local<A: Adapter>() -> bool {
    std::any::TypeId::of::<A>() == std::any::TypeId::of::<socketioxide::adapter::LocalAdapter>()
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
        // Each socket of this node is sent its copy on its own, so that one whose output is
        // behind is known and disconnected (a broadcast's errors do not say whose they are).
        let here = op.clone().local().sockets();
        for socket in &here {
            socket.send(event, payload);
        }
        if is_local::<A>() {
            return;
        }
        let elsewhere = op.except(here.iter().map(|s| own_room(s.id)).collect::<Vec<_>>());
        if let Err(e) = elsewhere.emit(event, payload).await {
            crate::ops::record::adapter_error("broadcast");
            tracing::warn!(ns, event, error = %e, "broadcast failed");
        }
    }

    async fn join(&self, ns: &str, of: Vec<String>, rooms: Vec<String>) {
        let Some(op) = select(self, ns, of, Vec::new()) else {
            return;
        };
        if feed::watched() {
            for s in op.clone().local().sockets() {
                rooms.iter().for_each(|room| feed::joined(&s, room));
            }
        }
        if !rooms.is_empty()
            && let Err(e) = op.join(rooms).await
        {
            crate::ops::record::adapter_error("join");
            tracing::warn!(ns, error = %e, "joining rooms failed");
        }
    }

    async fn leave(&self, ns: &str, of: Vec<String>, except: Vec<String>, rooms: Vec<String>) {
        let Some(op) = select(self, ns, of, except) else {
            return;
        };
        // Which sockets of this node leave which rooms, told once they have.
        let leaving: Vec<_> = if feed::watched() {
            op.clone()
                .local()
                .sockets()
                .into_iter()
                .map(|s| {
                    let were_in = s.rooms();
                    (s, were_in)
                })
                .collect()
        } else {
            Vec::new()
        };
        if !rooms.is_empty()
            && let Err(e) = op.leave(rooms.clone()).await
        {
            crate::ops::record::adapter_error("leave");
            tracing::warn!(ns, error = %e, "leaving rooms failed");
        }
        for (s, were_in) in leaving {
            for room in rooms
                .iter()
                .filter(|room| were_in.iter().any(|r| r == *room))
            {
                feed::left(&s, room);
            }
        }
    }

    async fn disconnect(&self, ns: &str, of: Vec<String>) {
        let Some(op) = select(self, ns, of, Vec::new()) else {
            return;
        };
        if let Err(e) = op.disconnect().await {
            crate::ops::record::adapter_error("disconnect");
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

/// An event's acknowledgement, if the client asked for one; or the acknowledgements of several
/// requests answered at once (see [`Ack::and`]).
pub struct Ack(Box<dyn FnOnce(&Json) + Send>);

impl Ack {
    /// The acknowledgement of socket `s`'s event, when it asked for one (`ack_id`).
    pub fn new<A: Adapter>(s: SocketRef<A>, ack: AckSender<A>, ack_id: Option<i64>) -> Self {
        if ack_id.is_none() {
            return Self::none();
        }
        Self(Box::new(move |payload| {
            outflow::deliver(&s, payload.text_len(), Sent::Ack, || ack.send(payload));
        }))
    }

    /// No acknowledgement: the client did not ask for one.
    pub fn none() -> Self {
        Self(Box::new(|_| {}))
    }

    /// Both acknowledgements, `self`'s first, with the same payload.
    pub fn and(self, then: Ack) -> Self {
        Self(Box::new(move |payload| {
            (self.0)(payload);
            (then.0)(payload);
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

/// Sends an event to one socket, its payload made into JSON here; a socket that is gone is not an
/// error.
pub fn emit<T: serde::Serialize + ?Sized>(socket: &dyn Sock, event: &str, payload: &T) {
    socket.send(event, &wire::json(payload));
}

/// The room of one socket, on whichever node it is.
pub fn own_room(sid: Sid) -> String {
    sid.to_string()
}

/// A shared handle on a socket of this node.
pub type SockRef = Arc<dyn Sock>;
