//! A per-socket ordered inbox, shared by every namespace.
//!
//! socketioxide runs every event handler as a task of its own, so two events of one socket could
//! take effect out of order. Instead, the [`Queued`] extractor of a catch-all handler puts each
//! event on its socket's inbox while the packet is being decoded, that is in arrival order, and
//! the socket's [`Served`] handles them one after the other.
//!
//! The inbox is opened in the connect middleware ([`open`]), before the client hears it is
//! connected, so no event can slip past it; its first job is [`Job::Connected`]. Nothing is
//! handled before the connect handler says the socket is connected ([`hand_over`]). Jobs are
//! handled by a task that exists only while there is something to do: it is started by the job
//! that finds the inbox idle and ends when the inbox is empty, so an idle socket holds no task
//! of its own, only its inbox and what its namespace keeps about it.
//!
//! Every event is counted on its way in and out ([`crate::ops::record`]): received, its handling
//! time, and its answer's outcome.
//!
//! A job that panics is logged and ends there; the socket's later jobs are handled as usual. An
//! event whose handler panicked before answering is answered by [`Served::refuse`] (the
//! protocol's `internal_error`), so its client is not left waiting.
//!
//! A request that waits on something slow once it is checked (`add_message` waiting for its
//! commit) may let the socket's next requests start meanwhile ([`Served::overlaps`]): its handler
//! returns the rest of it ([`Rest::Later`]), which finishes (answers) only after every earlier
//! request of the socket has finished, so what the client hears keeps its order. A request that
//! does not overlap starts only once everything before it has finished. At most `limit`
//! requests of a socket are unfinished that way.
//!
//! A request whose answer makes the answer to an earlier one still waiting out of date
//! (`list_rooms`) takes that one's place, and its acknowledgement, so that a socket that is
//! behind is not answered the same many times over ([`Served::answer_key`]).
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::{DisconnectReason, Socket};
use socketioxide::{ProtocolVersion, TransportType};
use tokio::task::JoinHandle;

use super::sio::{self, Ack, Sock, SockRef};
use super::wire;

/// Why an event is answered by [`Served::refuse`] instead of its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The socket already has too many events waiting: the protocol's `rate_limited`.
    Overloaded,
    /// Its handler panicked before it answered: the protocol's `internal_error`.
    Panicked,
}

/// What a socket's inbox holds, in order.
pub enum Job {
    /// The socket is connected: the first job, before any event.
    Connected,
    Event {
        event: String,
        /// The payload, `Null` when there was none.
        data: Value,
        ack: Ack,
    },
    /// The socket is gone: the last job.
    Disconnect,
}

/// A handler's future.
pub type Handled<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The future a [`Served`] returns for a job: what is left of the job once it returns.
pub type Turn<'a> = Pin<Box<dyn Future<Output = Rest> + Send + 'a>>;

/// What is left of a job when its turn is over.
pub enum Rest {
    Done,
    /// The rest of a request that overlaps ([`Served::overlaps`]): a future that waits for what
    /// is slow (a commit) and gives the last step, [`Finish`], run once every earlier request of
    /// the socket has finished. Nothing may be sent to the client before that last step.
    Later(Pin<Box<dyn Future<Output = Finish> + Send>>),
}

/// The last step of a request that overlapped: its answer.
pub type Finish = Box<dyn FnOnce() -> Handled<'static> + Send>;

/// What a namespace keeps about one of its sockets, and how it handles the socket's jobs. It
/// must not hold the socket itself (the inbox lives in the socket's extensions): the socket is
/// passed with every job.
pub trait Served: Send + Sync + 'static {
    fn handle(&self, socket: SockRef, job: Job) -> Turn<'_>;
    /// Answers an event its handler never answered (see [`Refusal`]) the way the protocol answers
    /// any failure: as an event and on the acknowledgement.
    fn refuse(&self, socket: &dyn Sock, event: &str, why: Refusal, ack: Ack);

    /// What a request's answer is, for requests whose answer makes any earlier answer to the
    /// same request out of date (`list_rooms`): two requests with the same key are answered
    /// once (the inbox supersedes the earlier one). `None` (the default) for every other request.
    fn answer_key(&self, _event: &str, _data: &Value) -> Option<String> {
        None
    }

    /// Whether a request may start while earlier requests of the socket are still unfinished
    /// ([`Rest::Later`]). Its handler must then send nothing itself: it answers in its
    /// [`Finish`]. `false` (the default): it starts once every earlier one has finished.
    fn overlaps(&self, _event: &str) -> bool {
        false
    }
}

/// A socket's inbox, kept in its extensions.
#[derive(Clone)]
struct Inbox(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    served: Arc<dyn Served>,
    limit: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Events among `jobs`.
    events: usize,
    /// Set by [`hand_over`]: jobs may be handled.
    connected: bool,
    /// A task is handling the jobs.
    running: bool,
    /// Requests that returned [`Rest::Later`] and have not finished.
    later: usize,
    /// The task finishing the last of them; each finishes after the one before.
    last: Option<JoinHandle<()>>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a job; starts the task that handles them if the socket is connected and none runs.
    fn push<A: Adapter>(&self, s: &SocketRef<A>, job: Job) {
        let mut state = self.lock();
        let job = self.supersede(&mut state, job);
        if let Job::Event { .. } = job {
            state.events += 1;
        }
        state.jobs.push_back(job);
        self.start(s, &mut state);
    }

    /// Takes out of the inbox a waiting request that `job` makes out of date (one with the same
    /// [`Served::answer_key`]), and gives its acknowledgement to `job`: a socket that asks again
    /// before it was answered is answered once, with what is true when `job` is handled, and
    /// every acknowledgement it asked for is still called. At most one such request waits.
    fn supersede(&self, state: &mut State, job: Job) -> Job {
        let Job::Event { event, data, ack } = job else {
            return job;
        };
        let served = &self.0.served;
        let Some(key) = served.answer_key(&event, &data) else {
            return Job::Event { event, data, ack };
        };
        let earlier = state.jobs.iter().position(|waiting| match waiting {
            Job::Event { event, data, .. } => {
                served.answer_key(event, data).as_deref() == Some(key.as_str())
            }
            _ => false,
        });
        let ack = match earlier.and_then(|i| state.jobs.remove(i)) {
            Some(Job::Event { ack: first, .. }) => {
                state.events -= 1;
                first.and(ack)
            }
            _ => ack,
        };
        Job::Event { event, data, ack }
    }

    fn start<A: Adapter>(&self, s: &SocketRef<A>, state: &mut State) {
        if state.connected && !state.running && !state.jobs.is_empty() {
            state.running = true;
            let socket: SockRef = Arc::new(s.clone());
            tokio::spawn(self.clone().handle_all(socket));
        }
    }

    /// Handles jobs until there are none left. A job starts once every earlier one has
    /// finished, unless it overlaps (and fewer than `limit` are unfinished).
    async fn handle_all(self, socket: SockRef) {
        loop {
            let (job, unfinished) = {
                let mut state = self.lock();
                let Some(job) = state.jobs.pop_front() else {
                    state.running = false;
                    // An idle socket keeps no room for jobs.
                    state.jobs = VecDeque::new();
                    return;
                };
                let overlaps = match &job {
                    Job::Event { event, .. } => {
                        state.events -= 1;
                        self.0.served.overlaps(event) && state.later < self.0.limit
                    }
                    _ => false,
                };
                let unfinished = if overlaps { None } else { state.last.take() };
                (job, unfinished)
            };
            if let Some(unfinished) = unfinished {
                // A panic in it was dealt with there.
                let _ = unfinished.await;
            }
            self.handle_one(&socket, job).await;
        }
    }

    /// Handles one job; a panic in it is logged, and answered if the job is an event whose
    /// acknowledgement was not used yet. The rest of a request that overlaps is left to a task
    /// of its own (see [`Inbox::finish_later`]).
    async fn handle_one(&self, socket: &SockRef, job: Job) {
        let (job, unanswered) = match job {
            Job::Event { event, data, ack } => {
                let held = Arc::new(Mutex::new(Some(ack)));
                let theirs = held.clone();
                let ack = Ack::from_fn(move |payload| {
                    if let Some(ack) = take(&theirs) {
                        crate::ops::record::answered(payload);
                        ack.send(payload);
                    }
                });
                let unanswered = Some(Unanswered {
                    event: event.clone(),
                    held,
                });
                (Job::Event { event, data, ack }, unanswered)
            }
            job => (job, None),
        };
        if unanswered.is_some() {
            crate::ops::record::handling();
        }
        let began = std::time::Instant::now();
        let handled = AssertUnwindSafe(self.0.served.handle(socket.clone(), job))
            .catch_unwind()
            .await;
        match handled {
            Ok(Rest::Later(rest)) => self.finish_later(socket, rest, unanswered, began),
            Ok(Rest::Done) => self.handled(socket, unanswered, began, None),
            Err(panic) => self.handled(socket, unanswered, began, Some(panic)),
        }
    }

    /// Finishes the rest of a request on a task of its own: it waits for what it waits for,
    /// then for the request before it to finish, then answers.
    fn finish_later(
        &self,
        socket: &SockRef,
        rest: Pin<Box<dyn Future<Output = Finish> + Send>>,
        unanswered: Option<Unanswered>,
        began: std::time::Instant,
    ) {
        let mut state = self.lock();
        let before = state.last.take();
        state.later += 1;
        let (inbox, socket) = (self.clone(), socket.clone());
        state.last = Some(tokio::spawn(async move {
            let finish = AssertUnwindSafe(rest).catch_unwind().await;
            if let Some(before) = before {
                let _ = before.await;
            }
            let finished = match finish {
                Ok(finish) => AssertUnwindSafe(finish()).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            inbox.handled(&socket, unanswered, began, finished.err());
            inbox.lock().later -= 1;
        }));
    }

    /// Records a job's handling; a panic in it is logged, and answered if the job is an event
    /// whose acknowledgement was not used yet.
    fn handled(
        &self,
        socket: &SockRef,
        unanswered: Option<Unanswered>,
        began: std::time::Instant,
        panic: Option<Box<dyn std::any::Any + Send>>,
    ) {
        if let Some(Unanswered { event, .. }) = &unanswered {
            crate::ops::record::handled(event, began.elapsed());
        }
        let Some(panic) = panic else {
            return;
        };
        let panic = crate::telemetry::panic_message(&*panic);
        let Some(Unanswered { event, held }) = unanswered else {
            tracing::error!(sid = %socket.id(), panic, "handling a connection or departure panicked");
            return;
        };
        tracing::error!(sid = %socket.id(), event, panic, "request failed: its handler panicked");
        if let Some(ack) = take(&held) {
            crate::ops::record::answer("internal_error");
            self.0
                .served
                .refuse(&**socket, &event, Refusal::Panicked, ack);
        }
    }
}

/// An event's name and its acknowledgement until it is used.
struct Unanswered {
    event: String,
    held: Arc<Mutex<Option<Ack>>>,
}

/// The acknowledgement in `held`, once.
fn take(held: &Mutex<Option<Ack>>) -> Option<Ack> {
    held.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
}

/// Opens a socket's inbox from its connect middleware: every event of the socket goes to it (at
/// most `limit` waiting; more are refused as [`Refusal::Overloaded`]), and so does its
/// disconnection, all handled by `served` once the socket is connected. The socket also joins the room of its own
/// id, by which any node can address it.
pub fn open<A: Adapter>(s: &SocketRef<A>, limit: usize, served: Arc<dyn Served>) {
    let state = State {
        jobs: VecDeque::from([Job::Connected]),
        ..State::default()
    };
    let inbox = Inbox(Arc::new(Shared {
        state: Mutex::new(state),
        served,
        limit,
    }));
    s.extensions.insert(inbox);
    s.join(sio::own_room(s.id));
    s.on_fallback(async |_: Queued| {});
    s.on_disconnect(async |s: SocketRef<A>, reason: DisconnectReason| {
        crate::admin::feed::disconnected(&s, reason);
        crate::ops::record::disconnected(&s);
        if let Some(inbox) = s.extensions.get::<Inbox>() {
            inbox.push(&s, Job::Disconnect);
        }
    });
}

/// Called by the connect handler: the socket's jobs may be handled.
pub fn hand_over<A: Adapter>(s: &SocketRef<A>) {
    if let Some(inbox) = s.extensions.get::<Inbox>() {
        let mut state = inbox.lock();
        state.connected = true;
        inbox.start(s, &mut state);
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
        let bytes = match v {
            socketioxide_core::Value::Str(packet, _) => packet.len(),
            socketioxide_core::Value::Bytes(packet) => packet.len(),
        };
        let Ok(Event(event)) = Event::from_message_parts(s, v, ack_id) else {
            return Ok(Queued);
        };
        let Some(inbox) = s.extensions.get::<Inbox>() else {
            return Ok(Queued);
        };
        crate::ops::record::received(&event);
        let Ok(ack) = AckSender::from_message_parts(s, v, ack_id);
        let socket = SocketRef::from(s.clone());
        let ack = Ack::new(socket.clone(), ack, *ack_id);
        if inbox.lock().events >= inbox.0.limit {
            crate::ops::record::rate_limited();
            let why = Refusal::Overloaded;
            inbox.0.served.refuse(&socket, &event, why, ack);
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
        crate::admin::feed::received(s, &event, &data, bytes);
        inbox.push(&socket, Job::Event { event, data, ack });
        Ok(Queued)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use socketioxide::extensions::Extensions;
    use socketioxide::socket::Sid;

    use super::wire::{self, Json};
    use super::*;

    /// A socket that records what it is sent.
    struct FakeSock {
        id: Sid,
        extensions: Extensions,
        sent: Mutex<Vec<String>>,
    }

    impl Sock for FakeSock {
        fn id(&self) -> Sid {
            self.id
        }

        fn send(&self, event: &str, payload: &Json) {
            let sent = format!("{event} {}", payload.text());
            self.sent.lock().unwrap().push(sent);
        }

        fn join_room(&self, _room: String) {}

        fn leave_room(&self, _room: String) {}

        fn extensions(&self) -> &Extensions {
            &self.extensions
        }
    }

    /// An event named `name` whose acknowledgement records its payload in `acks`.
    fn recorded(name: &str, acks: &Arc<Mutex<Vec<String>>>) -> Job {
        let acks = acks.clone();
        Job::Event {
            event: name.to_owned(),
            data: Value::Null,
            ack: Ack::from_fn(move |payload| acks.lock().unwrap().push(payload.text())),
        }
    }

    /// Answers every event with `ok`, after an await, as a real handler would; panics on events
    /// named `boom`, before answering, and on `late boom`, after; and when the socket leaves.
    struct Panicky;

    impl Served for Panicky {
        fn handle(&self, socket: SockRef, job: Job) -> Turn<'_> {
            Box::pin(async move {
                tokio::task::yield_now().await;
                let Job::Event { event, ack, .. } = job else {
                    panic!("departure failed");
                };
                if event == "boom" {
                    panic!("the handler of {event} failed");
                }
                sio::emit(&*socket, &event, &json!("ok"));
                ack.send(&wire::json(&json!({ "ok": event })));
                if event == "late boom" {
                    panic!("the handler of {event} failed after answering");
                }
                Rest::Done
            })
        }

        fn refuse(&self, socket: &dyn Sock, event: &str, why: Refusal, ack: Ack) {
            assert_eq!(why, Refusal::Panicked);
            sio::emit(socket, "failed", &json!(event));
            ack.send(&wire::json(&json!({ "failed": event })));
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_answered_and_the_socket_served_on() {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let event = |name: &str| recorded(name, &acks);
        let jobs = VecDeque::from([
            event("first"),
            event("boom"),
            event("late boom"),
            Job::Disconnect,
            event("last"),
        ]);
        let inbox = Inbox(Arc::new(Shared {
            state: Mutex::new(State {
                jobs,
                events: 4,
                connected: true,
                running: true,
                ..State::default()
            }),
            served: Arc::new(Panicky),
            limit: 16,
        }));
        let socket = Arc::new(FakeSock {
            id: Sid::new(),
            extensions: Extensions::new(),
            sent: Mutex::default(),
        });
        let handled = inbox.clone().handle_all(socket.clone());
        tokio::time::timeout(std::time::Duration::from_secs(10), handled)
            .await
            .expect("every job handled");

        assert_eq!(
            *acks.lock().unwrap(),
            [
                r#"{"ok":"first"}"#,
                r#"{"failed":"boom"}"#,
                r#"{"ok":"late boom"}"#,
                r#"{"ok":"last"}"#,
            ]
        );
        assert_eq!(
            *socket.sent.lock().unwrap(),
            [
                r#"first "ok""#,
                r#"failed "boom""#,
                r#"late boom "ok""#,
                r#"last "ok""#,
            ]
        );
        let state = inbox.lock();
        assert!(!state.running && state.jobs.is_empty() && state.events == 0);
    }

    /// `slow N` overlaps: it waits N milliseconds (its "commit"), then answers; `wait` does not
    /// overlap. Every event's start is recorded.
    struct Overlapping {
        started: Arc<Mutex<Vec<String>>>,
    }

    impl Served for Overlapping {
        fn handle(&self, socket: SockRef, job: Job) -> Turn<'_> {
            Box::pin(async move {
                let Job::Event { event, ack, .. } = job else {
                    return Rest::Done;
                };
                self.started.lock().unwrap().push(event.clone());
                let Some(ms) = event.strip_prefix("slow ") else {
                    ack.send(&wire::json(&json!(event)));
                    return Rest::Done;
                };
                let ms: u64 = ms.parse().unwrap();
                Rest::Later(Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    if ms == 0 {
                        panic!("a slow event failed");
                    }
                    Box::new(move || {
                        Box::pin(async move {
                            sio::emit(&*socket, &event, &json!("done"));
                            ack.send(&wire::json(&json!(event)));
                        }) as Handled<'static>
                    }) as Finish
                }))
            })
        }

        fn refuse(&self, socket: &dyn Sock, event: &str, why: Refusal, ack: Ack) {
            assert_eq!(why, Refusal::Panicked);
            sio::emit(socket, "failed", &json!(event));
            ack.send(&wire::json(&json!({ "failed": event })));
        }

        fn overlaps(&self, event: &str) -> bool {
            event.starts_with("slow")
        }
    }

    #[tokio::test]
    async fn overlapping_requests_start_together_and_are_answered_in_order() {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let event = |name: &str| recorded(name, &acks);
        let names = [
            "slow 300", "slow 100", "slow 0", "slow 1", "wait", "slow 50",
        ];
        let started = Arc::new(Mutex::new(Vec::new()));
        let inbox = Inbox(Arc::new(Shared {
            state: Mutex::new(State {
                jobs: names.iter().map(|name| event(name)).collect(),
                events: names.len(),
                connected: true,
                running: true,
                ..State::default()
            }),
            served: Arc::new(Overlapping {
                started: started.clone(),
            }),
            limit: 16,
        }));
        let socket = Arc::new(FakeSock {
            id: Sid::new(),
            extensions: Extensions::new(),
            sent: Mutex::default(),
        });
        let began = std::time::Instant::now();
        let handled = inbox.clone().handle_all(socket.clone());
        let wait = std::time::Duration::from_secs(10);
        tokio::time::timeout(wait, handled)
            .await
            .expect("every job started");
        // The first four started at once, before the first of them was answered.
        assert_eq!(
            started.lock().unwrap()[..4],
            ["slow 300", "slow 100", "slow 0", "slow 1"]
        );
        let last = inbox.lock().last.take().expect("the last one is finishing");
        tokio::time::timeout(wait, last).await.unwrap().unwrap();
        // The sum of the waits would be 451 ms; overlapped, the first one's 300 plus the last's 50.
        assert!(began.elapsed() < std::time::Duration::from_millis(440));
        assert_eq!(
            *acks.lock().unwrap(),
            [
                r#""slow 300""#,
                r#""slow 100""#,
                r#"{"failed":"slow 0"}"#,
                r#""slow 1""#,
                r#""wait""#,
                r#""slow 50""#,
            ]
        );
        assert_eq!(
            *socket.sent.lock().unwrap(),
            [
                r#"slow 300 "done""#,
                r#"slow 100 "done""#,
                r#"failed "slow 0""#,
                r#"slow 1 "done""#,
                r#"slow 50 "done""#,
            ]
        );
        let state = inbox.lock();
        assert!(state.later == 0 && state.jobs.is_empty() && !state.running);
    }
}
