//! What one connection has waiting to be sent, bounded in bytes; a socket that falls behind is
//! disconnected, never silently skipped.
//!
//! socketioxide queues every packet for a socket in a channel bounded in packets
//! (`max_buffer_size`), whatever their size, and tells nobody when the transport takes one; a
//! send to a full channel fails (the packet is not sent). So:
//! - every send of ours to a socket goes through [`deliver`], which counts the bytes it hands
//!   to the socket's connection against [`Lines::budget`] and turns any failed send into a
//!   disconnection (`Outflow::fall_behind`): the client reconnects and resynchronises, it is
//!   never left with a gap it cannot see;
//! - the bytes the transport has taken are read where it writes them: [`Listener`] wraps every
//!   TCP connection the server accepts and counts what is written to it ([`Meter`]). A socket
//!   whose websocket runs on a metered connection (one opened as a websocket, or upgraded to
//!   one) knows how much of what it was handed has not been written yet. A packet that finds
//!   more than the budget waiting disconnects the socket instead; an acknowledgement may find
//!   its answer's event waiting too ([`Sent`]). So what waits is at most the budget and one
//!   answer (an event and an acknowledgement), plus the framing of the packets waiting (under
//!   32 bytes each) and the library's own packets (pings, the connect packet);
//! - a socket on HTTP long-polling is bounded by the channel's packet count alone; a client
//!   that stops polling is closed by the engine.io heartbeat;
//! - packets that another node broadcasts through the adapter to a socket of this node are
//!   queued by socketioxide itself, which drops them silently when the channel is full (its
//!   broadcast errors do not say whose they are); engine.io's heartbeat then closes that
//!   socket if its channel is still full at the next ping (Engine.IO 4) or pong (Engine.IO 3).
//!
//! A socket that fell behind is closed at its transport: its TCP connection is shut, which the
//! client sees as a transport error (it reconnects by itself, which a socket.io disconnect
//! would not make it do). Without a metered connection it is disconnected from its namespace
//! as soon as its channel has room for that packet. Either way nothing more is sent to it.
//!
//! glibc keeps large freed buffers in its heaps (see `main.rs`), so the allocator is asked to
//! give free memory back a second after a socket fell behind, and after a connection that read
//! a large packet closed.
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::ConnectInfo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError, TransportType};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How often a socket that fell behind on a connection we cannot shut (long-polling) is asked
/// again to disconnect, until its channel has room for the packet.
const DISCONNECT_RETRY: Duration = Duration::from_millis(100);

/// How long after a socket fell behind the allocator is asked to give free memory back: time
/// for the socket's queued packets to be dropped.
const TRIM_AFTER: Duration = Duration::from_secs(1);

/// A connection that read this much in all may have grown a large read buffer: when it closes,
/// the allocator is asked to give free memory back.
const LARGE_READ: u64 = 256 * 1024;

/// Every metered connection of one server, by the client's address (unique among open TCP
/// connections to one listener), and the bound on what each may have waiting.
#[derive(Clone)]
pub struct Lines {
    /// Most bytes of payload one connection may have handed to it and not yet written.
    pub budget: u64,
    open: Arc<Mutex<Open>>,
    fell_behind: Arc<AtomicU64>,
}

#[derive(Default)]
struct Open {
    by_peer: HashMap<SocketAddr, Weak<Meter>>,
    /// Connections upgraded to a websocket, by the engine.io session they carry.
    by_session: HashMap<String, Weak<Meter>>,
}

impl Lines {
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            open: Arc::default(),
            fell_behind: Arc::default(),
        }
    }

    /// Sockets disconnected because they fell behind, since the start.
    pub fn fell_behind(&self) -> u64 {
        self.fell_behind.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wraps `listener`: every connection it accepts is metered and known here until it closes.
    pub fn listener(&self, listener: TcpListener) -> Listener {
        Listener {
            inner: listener,
            lines: self.clone(),
        }
    }

    fn by_peer(&self, peer: &SocketAddr) -> Option<Arc<Meter>> {
        self.lock().by_peer.get(peer).and_then(Weak::upgrade)
    }

    fn by_session(&self, sid: &str) -> Option<Arc<Meter>> {
        self.lock().by_session.get(sid).and_then(Weak::upgrade)
    }

    /// Notes which connection carries the engine.io session of a websocket upgrade request (a
    /// socket.io request with `transport=websocket` and `sid=`), before engine.io sees it.
    pub fn note_upgrade<B>(&self, req: &http::Request<B>) {
        let Some(query) = req.uri().query() else {
            return;
        };
        let mut websocket = false;
        let mut sid = None;
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            match key {
                "transport" => websocket = value == "websocket",
                "sid" => sid = Some(value),
                _ => {}
            }
        }
        let (true, Some(sid)) = (websocket, sid) else {
            return;
        };
        let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return;
        };
        let mut open = self.lock();
        let Some(meter) = open.by_peer.get(peer).and_then(Weak::upgrade) else {
            return;
        };
        // One session per connection is known: a connection that asks again (a refused
        // upgrade, say) replaces the one it named before.
        if let Some(before) = meter.lock_session().replace(sid.to_owned()) {
            open.by_session.remove(&before);
        }
        open.by_session
            .insert(sid.to_owned(), Arc::downgrade(&meter));
    }
}

/// One TCP connection: what was written to it, and a way to shut it from anywhere.
pub struct Meter {
    peer: SocketAddr,
    written: AtomicU64,
    read: AtomicU64,
    shut: AtomicBool,
    /// The tasks waiting to read or write, woken when the connection is shut.
    waiting: Mutex<[Option<Waker>; 2]>,
    /// Bytes handed to the connection and not yet known to be written, and how much had been
    /// written when that was last worked out.
    pending: Mutex<Pending>,
    /// The engine.io session it carries, if it was upgraded to a websocket.
    session: Mutex<Option<String>>,
}

#[derive(Default)]
struct Pending {
    bytes: u64,
    written: u64,
}

const READER: usize = 0;
const WRITER: usize = 1;

impl Meter {
    fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
            shut: AtomicBool::new(false),
            waiting: Mutex::new([None, None]),
            pending: Mutex::default(),
            session: Mutex::new(None),
        }
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<String>> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `bytes` more handed to the connection, unless more than `budget` bytes (not
    /// counting `slack` of them) are already waiting: then nothing is counted and `false`
    /// returned.
    ///
    /// The packets' framing is not counted here but is in what is written, so what is pending
    /// can only be underestimated, by the framing of the packets still queued; it never drifts,
    /// since it cannot go below zero.
    fn take(&self, bytes: u64, slack: u64, budget: u64) -> bool {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let written = self.written.load(Ordering::Acquire);
        let newly = written.saturating_sub(pending.written);
        pending.written = written;
        pending.bytes = pending.bytes.saturating_sub(newly);
        if pending.bytes.saturating_sub(slack) > budget {
            return false;
        }
        pending.bytes += bytes;
        true
    }

    /// Shuts the connection: whoever reads or writes it gets an error from now on.
    fn shut(&self) {
        self.shut.store(true, Ordering::SeqCst);
        let waiting = std::mem::take(
            &mut *self
                .waiting
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for waker in waiting.into_iter().flatten() {
            waker.wake();
        }
    }

    /// Whether the connection was shut; if not, `cx` is woken when it is.
    fn is_shut(&self, cx: &Context<'_>, side: usize) -> bool {
        {
            let mut waiting = self
                .waiting
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match &mut waiting[side] {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
        }
        self.shut.load(Ordering::SeqCst)
    }
}

fn shut_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "socket fell behind")
}

/// The server's listener: [`axum::serve::Listener`] over TCP, every connection metered.
pub struct Listener {
    inner: TcpListener,
    lines: Lines,
}

impl Listener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Metered;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Metered, SocketAddr) {
        let (stream, peer) = axum::serve::Listener::accept(&mut self.inner).await;
        let meter = Arc::new(Meter::new(peer));
        self.lines
            .lock()
            .by_peer
            .insert(peer, Arc::downgrade(&meter));
        let io = Metered {
            stream,
            meter,
            lines: self.lines.clone(),
        };
        (io, peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counting what is written to it.
pub struct Metered {
    stream: TcpStream,
    meter: Arc<Meter>,
    lines: Lines,
}

impl Metered {
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        let session = self.meter.lock_session().take();
        {
            let mut open = self.lines.lock();
            open.by_peer.remove(&self.meter.peer);
            if let Some(sid) = session {
                open.by_session.remove(&sid);
            }
        }
        // Its read buffer may have grown to a large packet's size (up to --max-payload), and
        // a client that stalls inside one holds it until the heartbeat closes the connection.
        if self.meter.read.load(Ordering::Relaxed) >= LARGE_READ {
            trim_soon();
        }
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.meter.is_shut(cx, READER) {
            return Poll::Ready(Err(shut_error()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            let n = buf.filled().len().saturating_sub(before);
            self.meter.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        read
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.meter.is_shut(cx, WRITER) {
            return Poll::Ready(Err(shut_error()));
        }
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.meter.written.fetch_add(n as u64, Ordering::Release);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.meter.is_shut(cx, WRITER) {
            return Poll::Ready(Err(shut_error()));
        }
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            self.meter.written.fetch_add(n as u64, Ordering::Release);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.meter.is_shut(cx, WRITER) {
            return Poll::Ready(Err(shut_error()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What a socket knows of its output, kept in its extensions.
pub struct Outflow {
    lines: Lines,
    /// The metered connection of its websocket, once it has one.
    meter: OnceLock<Arc<Meter>>,
    behind: AtomicBool,
}

/// Gives a socket its [`Outflow`], from its connect middleware: a socket opened as a websocket
/// finds its connection now, one upgraded later finds it on its first send after the upgrade.
pub fn attach<A: Adapter>(s: &SocketRef<A>, lines: &Lines) {
    let outflow = Outflow {
        lines: lines.clone(),
        meter: OnceLock::new(),
        behind: AtomicBool::new(false),
    };
    if s.transport_type() == TransportType::Websocket
        && let Some(ConnectInfo(peer)) = s.req_parts().extensions.get::<ConnectInfo<SocketAddr>>()
        && let Some(meter) = lines.by_peer(peer)
    {
        let _ = outflow.meter.set(meter);
    }
    s.extensions.insert(Arc::new(outflow));
}

impl Outflow {
    fn meter<A: Adapter>(&self, s: &SocketRef<A>) -> Option<&Arc<Meter>> {
        if let Some(meter) = self.meter.get() {
            return Some(meter);
        }
        if s.transport_type() != TransportType::Websocket {
            return None;
        }
        let meter = self.lines.by_session(&s.id.to_string())?;
        Some(self.meter.get_or_init(|| meter))
    }

    /// Disconnects the socket, once: its output is behind and nothing more is sent to it.
    fn fall_behind<A: Adapter>(&self, s: &SocketRef<A>, reason: &'static str) {
        if self.behind.swap(true, Ordering::SeqCst) {
            return;
        }
        self.lines.fell_behind.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(sid = %s.id, ns = s.ns(), reason, "socket disconnected: its output fell behind");
        match self.meter(s) {
            Some(meter) => meter.shut(),
            None => {
                let s = s.clone();
                tokio::spawn(async move {
                    while s.connected() {
                        match s.clone().disconnect() {
                            Err(SocketError::InternalChannelFull) => {
                                tokio::time::sleep(DISCONNECT_RETRY).await;
                            }
                            _ => break,
                        }
                    }
                });
            }
        }
        trim_soon();
    }
}

/// How much a packet may find waiting before it.
#[derive(Debug, Clone, Copy)]
pub enum Sent {
    /// An event: no more than the budget.
    Event,
    /// An acknowledgement: no more than the budget and the acknowledgement's own size, so that
    /// the acknowledgement of an answer goes out after the answer's event (which is as large):
    /// one answer, event and acknowledgement, may exceed the budget, a second one may not.
    Ack,
}

/// Sends `bytes` of payload to socket `s` with `send`, or disconnects it: when its connection
/// already has more than its budget waiting (see [`Sent`]), or when the send fails for a full
/// channel. A socket that is gone is not an error, and one that fell behind gets nothing more.
///
/// So what a metered connection has waiting never exceeds the budget by more than one answer
/// (an event and an acknowledgement as large) and the framing of the packets waiting.
pub fn deliver<A: Adapter>(
    s: &SocketRef<A>,
    bytes: usize,
    sent: Sent,
    send: impl FnOnce() -> Result<(), SendError>,
) {
    let Some(outflow) = s.extensions.get::<Arc<Outflow>>() else {
        report(s, send());
        return;
    };
    if outflow.behind.load(Ordering::SeqCst) {
        return;
    }
    let slack = match sent {
        Sent::Event => 0,
        Sent::Ack => bytes as u64,
    };
    if let Some(meter) = outflow.meter(s)
        && !meter.take(bytes as u64, slack, outflow.lines.budget)
    {
        outflow.fall_behind(s, "more than --max-socket-buffer waiting");
        return;
    }
    if let Err(SendError::Socket(SocketError::InternalChannelFull)) = send() {
        outflow.fall_behind(s, "its packet queue is full");
    }
}

/// A send to a socket without an [`Outflow`] (one refused before its connect middleware
/// finished).
fn report<A: Adapter>(s: &SocketRef<A>, sent: Result<(), SendError>) {
    if let Err(e) = sent {
        tracing::debug!(sid = %s.id, error = %e, "emit failed");
    }
}

/// Asks the allocator, a little later, to give back the memory that the packets of sockets
/// that fell behind held (glibc keeps large freed buffers in its heaps otherwise); one request
/// at a time.
fn trim_soon() {
    static PLANNED: AtomicBool = AtomicBool::new(false);
    if PLANNED.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(TRIM_AFTER).await;
        PLANNED.store(false, Ordering::SeqCst);
        // It walks every heap: not on a worker thread.
        let _ = tokio::task::spawn_blocking(trim).await;
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free memory of glibc's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Meter {
        Meter::new(SocketAddr::from(([127, 0, 0, 1], 1)))
    }

    fn wrote(meter: &Meter, bytes: u64) {
        meter.written.fetch_add(bytes, Ordering::Release);
    }

    #[test]
    fn an_answer_may_go_past_the_budget_a_second_may_not() {
        let meter = meter();
        // An answer three times the budget: its event finds nothing waiting, its
        // acknowledgement only the event.
        assert!(meter.take(300, 0, 100));
        assert!(meter.take(300, 300, 100));
        // The next event or acknowledgement finds 600 bytes waiting.
        assert!(!meter.take(10, 0, 100));
        assert!(!meter.take(300, 300, 100));
        // Once the transport wrote all but 100 of them, there is room again.
        wrote(&meter, 500);
        assert!(meter.take(10, 0, 100));
        assert!(!meter.take(10, 0, 100));
    }

    #[test]
    fn a_connection_is_known_by_the_one_session_it_upgraded_last() {
        let lines = Lines::new(100);
        let meter = Arc::new(meter());
        lines
            .lock()
            .by_peer
            .insert(meter.peer, Arc::downgrade(&meter));
        let upgrade = |query: &str| {
            let mut req = http::Request::get(format!("/socket.io/?{query}"))
                .body(())
                .unwrap();
            req.extensions_mut().insert(ConnectInfo(meter.peer));
            lines.note_upgrade(&req);
        };
        upgrade("EIO=4&transport=polling&sid=a");
        assert!(lines.by_session("a").is_none());
        upgrade("EIO=4&transport=websocket&sid=a");
        upgrade("EIO=4&transport=websocket&sid=b");
        assert!(lines.by_session("a").is_none());
        assert!(Arc::ptr_eq(&lines.by_session("b").unwrap(), &meter));
        assert_eq!(lines.lock().by_session.len(), 1);
    }

    #[test]
    fn framing_and_the_librarys_own_packets_never_leave_credit() {
        let meter = meter();
        assert!(meter.take(100, 0, 100));
        // Written: the 100 bytes, their framing and a ping, more than was counted.
        wrote(&meter, 150);
        assert!(meter.take(100, 0, 100));
        // What was pending cannot go below nothing: 100 bytes wait now, not 50.
        assert!(!meter.take(1, 0, 99));
        assert!(meter.take(1, 0, 100));
    }
}
