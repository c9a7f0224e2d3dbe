//! On SQLite, new messages are stored by the writer, a thread with a connection of its own.
//! `add_message` hands it the message and waits; the writer takes everything that is waiting (up
//! to [`BATCH`] messages) and stores it in one transaction (see [`super::batch`]). Every caller
//! is answered after that commit, so an acknowledged message is a stored one, as without the
//! writer.
//!
//! Being the only one that stores messages, the writer also keeps the cache of rooms' newest
//! messages exact (see [`crate::store::recent`]): it reads rooms into it when asked, between
//! batches, and adds each stored message to it before the message's caller is answered.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tokio::sync::{mpsc, oneshot};

use super::batch;
use super::checkpoint::Committed;
use crate::store::messages::{Added, NewMessage};
use crate::store::push_outbox::PushFanout;
use crate::store::recent::{self, Recent, RecentCache};

/// Most messages in one transaction.
pub(super) const BATCH: usize = 256;
/// Most messages waiting for the writer before `add_message` waits to hand its own over.
pub(super) const QUEUE: usize = 4 * BATCH;

/// The writer's answer to one message.
pub(in crate::store) type Answer = Result<Option<Added>, DbErr>;

/// The sending end of the writer's queue; the writer stops when every clone is dropped.
#[derive(Clone, Debug)]
pub(in crate::store) struct Writer {
    pub(super) queue: mpsc::Sender<Job>,
}

/// What the writer does, in the order asked.
pub(super) enum Job {
    Add(Request),
    /// Reads rooms' newest messages into the cache.
    Read {
        room_ids: Vec<String>,
        answer: oneshot::Sender<Result<HashMap<String, Recent>, DbErr>>,
    },
}

/// One `add_message` call waiting for the writer.
pub(super) struct Request {
    pub(super) new: NewMessage,
    pub(super) fanout: OwnedFanout,
    pub(super) answer: oneshot::Sender<Answer>,
}

/// A [`PushFanout`] the request owns.
pub(super) struct OwnedFanout {
    present: Vec<Arc<str>>,
    collapse_ms: i64,
    author_name: Option<String>,
}

impl OwnedFanout {
    fn new(fanout: &PushFanout<'_>) -> Self {
        Self {
            present: fanout.present.to_vec(),
            collapse_ms: fanout.collapse_ms,
            author_name: fanout.author_name.map(str::to_owned),
        }
    }

    pub(super) fn borrow(&self) -> PushFanout<'_> {
        PushFanout {
            present: &self.present,
            collapse_ms: self.collapse_ms,
            author_name: self.author_name.as_deref(),
        }
    }
}

impl Request {
    pub(super) fn new(
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> (Self, oneshot::Receiver<Answer>) {
        let (answer, answered) = oneshot::channel();
        let request = Self {
            new,
            fanout: OwnedFanout::new(fanout),
            answer,
        };
        (request, answered)
    }

    pub(super) fn answer(self, answer: Answer) {
        // The caller may have gone (its socket closed); the message is stored all the same.
        let _ = self.answer.send(answer);
    }
}

impl Writer {
    /// Starts the writer on a thread of its own, with its connection to the database file `file`
    /// (see [`super::open`]) and, for reading rooms into the cache, a pool of one connection opened there
    /// from `reads`. (On the server's runtime, the writer would wait behind every ready socket
    /// task, and hold up one of the runtime's threads while SQLite works.)
    pub(in crate::store) async fn start(
        file: PathBuf,
        reads: ConnectOptions,
        cache: Arc<RecentCache>,
        committed: Committed,
    ) -> Result<Self, DbErr> {
        let (queue, queued) = mpsc::channel(QUEUE);
        let (ready, started) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("message-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(DbErr::Custom(format!("message writer: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let opened = match super::open(&file) {
                        Ok(connection) => Database::connect(reads).await.map(|db| (connection, db)),
                        Err(e) => Err(e),
                    };
                    match opened {
                        Ok((connection, db)) => {
                            if ready.send(Ok(())).is_ok() {
                                run(connection, db, &cache, &committed, queued).await;
                            }
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            });
        thread.map_err(|e| DbErr::Custom(format!("message writer thread: {e}")))?;
        match started.await {
            Ok(started) => started.map(|()| Self { queue }),
            Err(_) => Err(DbErr::Custom("the message writer did not start".into())),
        }
    }

    /// Queues `new` for the writer's next batch, in order; what it returns is answered after
    /// the message's commit. Hands the message back when the writer has stopped.
    pub(in crate::store) async fn queue(
        &self,
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> Result<oneshot::Receiver<Answer>, NewMessage> {
        let Ok(permit) = self.queue.reserve().await else {
            return Err(new);
        };
        let (request, answered) = Request::new(new, fanout);
        permit.send(Job::Add(request));
        Ok(answered)
    }

    /// Reads the newest messages of rooms into the cache, after the messages already waiting are
    /// stored; returns what was read. Hands the rooms back when the writer has stopped.
    pub(in crate::store) async fn read(
        &self,
        room_ids: Vec<String>,
    ) -> Result<Result<HashMap<String, Recent>, DbErr>, Vec<String>> {
        let Ok(permit) = self.queue.reserve().await else {
            return Err(room_ids);
        };
        let (answer, answered) = oneshot::channel();
        permit.send(Job::Read { room_ids, answer });
        Ok(answered.await.unwrap_or_else(|_| Err(stopped())))
    }
}

impl Writer {
    /// Whether the writer still takes jobs (its thread has not ended).
    pub(in crate::store) fn running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Jobs waiting for the writer.
    pub(in crate::store) fn waiting(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Reads rooms into the cache when the writer gets to it, without waiting for it; nothing is
    /// read when the queue is full (the rooms are then read when first asked for).
    pub(in crate::store) fn read_later(&self, room_ids: Vec<String>) {
        let (answer, _) = oneshot::channel();
        let _ = self.queue.try_send(Job::Read { room_ids, answer });
    }
}

pub(in crate::store) fn stopped() -> DbErr {
    DbErr::Custom("the message writer stopped before answering".into())
}

/// Takes jobs off the queue until every sender is gone: messages are stored a batch at a time,
/// rooms read into the cache after the messages asked for before them are stored.
async fn run(
    mut connection: Connection,
    db: DatabaseConnection,
    cache: &RecentCache,
    committed: &Committed,
    mut queued: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut jobs, BATCH).await > 0 {
        for job in jobs.drain(..) {
            match job {
                Job::Add(request) => batch.push(request),
                Job::Read { room_ids, answer } => {
                    // The messages asked for before are stored first.
                    write(&mut connection, cache, &mut batch);
                    let ids: Vec<&str> = room_ids.iter().map(String::as_str).collect();
                    let read = recent::read(&db, &ids).await;
                    if let Ok(found) = &read {
                        for (room_id, recent) in found {
                            cache.put(room_id, recent.clone());
                        }
                    }
                    let _ = answer.send(read);
                }
            }
        }
        write(&mut connection, cache, &mut batch);
        committed.notify();
    }
}

/// [`batch::write`], its size and time recorded.
fn write(connection: &mut Connection, cache: &RecentCache, requests: &mut Vec<Request>) {
    if requests.is_empty() {
        return;
    }
    let messages = requests.len();
    let began = std::time::Instant::now();
    batch::write(connection, cache, requests);
    crate::ops::record::batch_committed(messages, began.elapsed());
}
