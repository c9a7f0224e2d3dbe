//! A per-socket ordered inbox, shared by every namespace.
//!
//! socketioxide runs every event handler as a task of its own, so two events of one socket could
//! take effect out of order. Instead, the [`Queued`] extractor of a catch-all handler puts each
//! event on its socket's inbox while the packet is being decoded, that is in arrival order, and
//! one task per socket takes them off with [`Mailbox::next`] and handles them one after the other.
//!
//! The inbox is opened in the connect middleware ([`open`]), before the client hears it is
//! connected, so no event can slip past it; the connect handler then hands the socket to the task
//! ([`hand_over`]), which waits for it with [`Mailbox::connected`].
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide::{ProtocolVersion, TransportType};
use tokio::sync::{mpsc, oneshot};

use crate::sio::{self, Ack, Sock, SockRef};
use crate::wire;

/// Answers an event refused because the socket already has too many waiting: the protocol's own
/// `rate_limited` failure, as an event and on the acknowledgement.
pub type Overflow = fn(socket: &dyn Sock, event: &str, ack: Ack);

/// What the socket's task takes off its inbox.
pub enum Job {
    Event {
        event: String,
        /// The payload, `Null` when there was none.
        data: Value,
        ack: Ack,
    },
    Disconnect,
}

/// The sending side, kept in the socket's extensions.
#[derive(Clone)]
struct Inbox {
    /// Boxed: a channel allocates room for 32 items at once, and most sockets stay idle.
    tx: mpsc::UnboundedSender<Box<Job>>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    overflow: Overflow,
}

/// Hands the connected socket to its task.
#[derive(Clone)]
struct Ready(Arc<Mutex<Option<oneshot::Sender<SockRef>>>>);

/// The receiving side, owned by the socket's task.
pub struct Mailbox {
    rx: mpsc::UnboundedReceiver<Box<Job>>,
    queued: Arc<AtomicUsize>,
    ready: Option<oneshot::Receiver<SockRef>>,
}

impl Mailbox {
    /// The socket once it is connected; `None` if it never connects (a later middleware refused
    /// it, or the client left first).
    pub async fn connected(&mut self) -> Option<SockRef> {
        self.ready.take()?.await.ok()
    }

    /// The next event or the disconnect, in arrival order; `None` once the socket is gone.
    pub async fn next(&mut self) -> Option<Job> {
        let job = self.rx.recv().await?;
        if let Job::Event { .. } = *job {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        Some(*job)
    }
}

/// Opens a socket's inbox from its connect middleware: every event of the socket goes to it (at
/// most `limit` waiting; more are answered by `overflow`), and so does its disconnection. The
/// socket also joins the room of its own id, by which any node can address it.
pub fn open<A: Adapter>(s: &SocketRef<A>, limit: usize, overflow: Overflow) -> Mailbox {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    s.extensions.insert(Inbox {
        tx,
        queued: queued.clone(),
        limit,
        overflow,
    });
    s.extensions
        .insert(Ready(Arc::new(Mutex::new(Some(ready_tx)))));
    s.join(sio::own_room(s.id));
    s.on_fallback(async |_: Queued| {});
    s.on_disconnect(async |s: SocketRef<A>| {
        if let Some(inbox) = s.extensions.get::<Inbox>() {
            let _ = inbox.tx.send(Box::new(Job::Disconnect));
        }
    });
    Mailbox {
        rx,
        queued,
        ready: Some(ready_rx),
    }
}

/// Called by the connect handler: the socket's task may start.
pub fn hand_over<A: Adapter>(s: &SocketRef<A>) {
    if let Some(ready) = s.extensions.remove::<Ready>()
        && let Some(tx) = ready.0.lock().ok().and_then(|mut tx| tx.take())
    {
        let _ = tx.send(Arc::new(s.clone()));
    }
}

/// Why a connection was refused; the client sees the code as its connect error.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("unauthorized")]
    Unauthorized,
    #[error("internal_error")]
    Internal(#[from] sea_orm::DbErr),
}

/// Extractor that puts the event on its socket's inbox while the packet is decoded, that is in
/// arrival order. The handler it belongs to does nothing.
pub struct Queued;

impl<A: Adapter> FromMessageParts<A> for Queued {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let Ok(Event(event)) = Event::from_message_parts(s, v, ack_id) else {
            return Ok(Queued);
        };
        let Some(inbox) = s.extensions.get::<Inbox>() else {
            return Ok(Queued);
        };
        let Ok(ack) = AckSender::from_message_parts(s, v, ack_id);
        let ack = Ack::new(ack);
        if inbox.queued.fetch_add(1, Ordering::AcqRel) >= inbox.limit {
            inbox.queued.fetch_sub(1, Ordering::AcqRel);
            (inbox.overflow)(&SocketRef::from(s.clone()), &event, ack);
            return Ok(Queued);
        }
        let Ok(TryData(data)) = TryData::<Value>::from_message_parts(s, v, ack_id);
        let data = data.ok().or_else(|| match v {
            socketioxide_core::Value::Str(packet, _) => wire::first_arg_lossy(packet.as_str()),
            socketioxide_core::Value::Bytes(_) => None,
        });
        let mut data = data.unwrap_or(Value::Null);
        if s.protocol() == ProtocolVersion::V4 && s.transport_type() == TransportType::Polling {
            wire::repair_double_utf8(&mut data);
        }
        let _ = inbox.tx.send(Box::new(Job::Event { event, data, ack }));
        Ok(Queued)
    }
}
