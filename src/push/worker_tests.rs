//! The outbox and the worker against a real SQLite store, with a scripted fake sender.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tempfile::TempDir;

use super::backoff::Backoff;
use super::worker::{Worker, WorkerConfig};
use super::{Push, PushQueue, PushSender, SendOutcome, Senders};
use crate::clock::now_ms;
use crate::store::{NewMessage, NewRoom, PushFanout, Store, temp_store};

/// Answers with the scripted outcomes in order, then `Sent`; records every push it is handed.
/// Its first `panics` sends panic instead.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<SendOutcome>>,
    seen: Mutex<Vec<Push>>,
    delay: Duration,
    panics: AtomicU32,
}

impl Scripted {
    fn new(script: impl IntoIterator<Item = SendOutcome>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into_iter().collect()),
            ..Default::default()
        })
    }

    fn seen(&self) -> Vec<Push> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl PushSender for Scripted {
    async fn send(&self, push: &Push) -> SendOutcome {
        self.seen.lock().unwrap().push(push.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let panics = self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if panics.is_ok() {
            panic!("the provider's answer made no sense");
        }
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(SendOutcome::Sent)
    }
}

fn fast() -> WorkerConfig {
    WorkerConfig {
        batch: 8,
        lease: Duration::from_secs(10),
        poll: Duration::from_millis(50),
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(40),
        },
        give_up_after: Duration::from_secs(60),
        keep_done: Duration::from_secs(60),
    }
}

fn new_worker(
    store: &Store,
    sender: Arc<Scripted>,
    config: WorkerConfig,
) -> (Worker, Arc<PushQueue>) {
    let queue = Arc::new(PushQueue::default());
    let senders = Senders {
        fcm: sender.clone(),
        apns: sender,
    };
    (
        Worker::new(store.clone(), senders, queue.clone(), config),
        queue,
    )
}

/// A room "Night owls" with members `author`, `away` (token `tok-away`), `here` (token
/// `tok-here`, present) and `tokenless`.
async fn room() -> (TempDir, Store, String) {
    let (dir, store) = temp_store().await;
    let room = store
        .rooms()
        .create(
            NewRoom::by_author("Night owls", 10),
            &["author", "away", "here", "tokenless"],
            None,
        )
        .await
        .unwrap();
    store
        .push()
        .register_token("tok-away", "away", "fcm")
        .await
        .unwrap();
    store
        .push()
        .register_token("tok-here", "here", "apns")
        .await
        .unwrap();
    store
        .push()
        .register_token("tok-author", "author", "fcm")
        .await
        .unwrap();
    (dir, store, room.id)
}

async fn say(store: &Store, room_id: &str, text: &str, collapse_ms: i64) -> (i64, u64) {
    let present: Vec<Arc<str>> = vec!["author".into(), "here".into()];
    let added = store
        .messages()
        .add(
            NewMessage {
                room_id: room_id.to_owned(),
                user_id: "sid-author".into(),
                bubble_id: "author".into(),
                message_type: "MESSAGE",
                content: text.to_owned(),
                target_user: None,
                target_user_bubble_id: None,
            },
            &PushFanout {
                present: &present,
                collapse_ms,
                author_name: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    (added.message.id, added.pushes)
}

#[tokio::test]
async fn a_message_queues_one_push_per_absent_member_with_a_token() {
    let (_dir, store, room_id) = room().await;
    let (id, pushes) = say(&store, &room_id, "anyone up?", 0).await;
    assert_eq!(pushes, 1);
    let rows = store.push().outbox_rows().await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.token, "tok-away");
    assert_eq!(row.bubble_id, "away");
    assert_eq!(row.platform, "fcm");
    assert_eq!(row.message_id, id);
    assert_eq!(row.kind, "message");
    assert_eq!(row.title, "New message in Night owls");
    assert_eq!(row.body, "anyone up?");
    assert_eq!(row.status, "pending");
    let data: serde_json::Value = serde_json::from_str(&row.data).unwrap();
    assert_eq!(
        data,
        serde_json::json!({ "roomId": room_id, "messageId": id.to_string(), "type": "message" })
    );
}

#[tokio::test]
async fn messages_collapse_into_the_pending_push_and_exits_stop_pushes() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "one", 60_000).await;
    let (last, pushes) = say(&store, &room_id, "two", 60_000).await;
    assert_eq!(pushes, 1, "the pending row is updated");
    let rows = store.push().outbox_rows().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].message_id, last);
    assert_eq!(rows[0].body, "two");

    store.rooms().remove_member(&room_id, "away").await.unwrap();
    let (_, pushes) = say(&store, &room_id, "three", 0).await;
    assert_eq!(pushes, 0, "a member who exited gets nothing");
}

#[tokio::test]
async fn retries_then_delivers_once() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    let sender = Scripted::new([SendOutcome::Retry { after: None }]);
    let (worker, queue) = new_worker(&store, sender.clone(), fast());

    assert_eq!(worker.run_once().await.unwrap(), 1);
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.claimed_until.is_none());
    assert!(
        row.next_attempt_at >= row.updated_at + 10,
        "backoff of at least base/2"
    );
    assert_eq!(worker.run_once().await.unwrap(), 0, "not due yet");

    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
    assert_eq!(sender.seen().len(), 2);
    assert_eq!(sender.seen()[1].body, "hello");
    let [_, sent, retried, failed, pruned] = queue.metrics.snapshot();
    assert_eq!((sent, retried, failed, pruned), (1, 1, 0, 0));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    let after = Some(Duration::from_millis(500));
    let (worker, _) = new_worker(
        &store,
        Scripted::new([SendOutcome::Retry { after }]),
        fast(),
    );
    let before = now_ms();
    worker.run_once().await.unwrap();
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert!(row.next_attempt_at >= before + 500, "{row:?}");
}

#[tokio::test]
async fn an_invalid_token_is_removed() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    let (worker, queue) = new_worker(&store, Scripted::new([SendOutcome::InvalidToken]), fast());
    worker.run_once().await.unwrap();
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert_eq!(row.status, "failed");
    let [_, sent, _, failed, pruned] = queue.metrics.snapshot();
    assert_eq!((sent, failed, pruned), (0, 1, 1));
    let (_, pushes) = say(&store, &room_id, "again", 0).await;
    assert_eq!(pushes, 0, "the token is gone");
}

#[tokio::test]
async fn gives_up_after_the_deadline() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    let always_retry = Scripted::new(std::iter::repeat_n(
        SendOutcome::Retry { after: None },
        1000,
    ));
    let config = WorkerConfig {
        give_up_after: Duration::from_millis(150),
        ..fast()
    };
    let (worker, queue) = new_worker(&store, always_retry.clone(), config);
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        worker.run_once().await.unwrap();
        let row = store.push().outbox_rows().await.unwrap().remove(0);
        if row.status != "pending" {
            assert_eq!(row.status, "failed");
            assert!(row.last_error.unwrap().starts_with("gave up after"));
            break;
        }
        assert!(tokio::time::Instant::now() < end, "never gave up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let [_, sent, retried, failed, _] = queue.metrics.snapshot();
    assert_eq!((sent, failed), (0, 1));
    assert!(retried >= 2, "retried {retried} times");
    assert_eq!(always_retry.seen().len() as u64, retried + 1);
    // A permanent failure is settled at once.
    say(&store, &room_id, "hello again", 0).await;
    let (worker, _) = new_worker(
        &store,
        Scripted::new([SendOutcome::Failed("nope".into())]),
        fast(),
    );
    worker.run_once().await.unwrap();
    let row = store.push().outbox_rows().await.unwrap().pop().unwrap();
    assert_eq!(
        (row.status.as_str(), row.last_error.as_deref()),
        ("failed", Some("nope"))
    );
}

#[tokio::test]
async fn two_workers_never_send_one_row_twice() {
    let (_dir, store, room_id) = room().await;
    let members: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for m in &members {
        store.rooms().add_member(&room_id, m).await.unwrap();
        store
            .push()
            .register_token(&format!("tok-{m}"), m, "fcm")
            .await
            .unwrap();
    }
    say(&store, &room_id, "to everyone", 0).await;
    let sender = Arc::new(Scripted {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let (a, _) = new_worker(&store, sender.clone(), fast());
    let (b, _) = new_worker(&store, sender.clone(), fast());
    let drain = |w: Worker| async move { while w.run_once().await.unwrap() > 0 {} };
    tokio::join!(drain(a), drain(b));
    let mut tokens: Vec<String> = sender.seen().into_iter().map(|p| p.token).collect();
    tokens.sort();
    let mut expected: Vec<String> = members.iter().map(|m| format!("tok-{m}")).collect();
    expected.push("tok-away".into());
    expected.sort();
    assert_eq!(tokens, expected, "each device exactly once");
    let rows = store.push().outbox_rows().await.unwrap();
    assert!(rows.iter().all(|r| r.status == "sent"));
}

#[tokio::test]
async fn a_claim_whose_worker_died_is_sent_after_its_lease() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    // A worker claims the row and dies before settling it.
    let claimed = store.push().claim(now_ms(), 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let sender = Scripted::new([]);
    let (worker, _) = new_worker(&store, sender.clone(), fast());
    assert_eq!(worker.run_once().await.unwrap(), 0, "still leased");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(sender.seen().len(), 1);
    assert_eq!(store.push().outbox_rows().await.unwrap()[0].status, "sent");
}

#[tokio::test]
async fn a_message_collapsing_into_a_push_in_flight_is_sent_too() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "first", 0).await;
    let claimed = store.push().claim(now_ms(), 10_000, 10).await.unwrap();
    let (second, pushes) = say(&store, &room_id, "second", 0).await;
    assert_eq!(pushes, 1, "collapses into the row in flight");
    // The first text was delivered; the row goes back for the second.
    assert!(!store.push().sent(&claimed[0], now_ms()).await.unwrap());
    let sender = Scripted::new([]);
    let (worker, _) = new_worker(&store, sender.clone(), fast());
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(sender.seen()[0].body, "second");
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.message_id), ("sent", second));
}

#[tokio::test]
async fn a_send_that_panics_is_tried_again_and_the_worker_goes_on() {
    let (_dir, store, room_id) = room().await;
    say(&store, &room_id, "hello", 0).await;
    let sender = Arc::new(Scripted {
        panics: AtomicU32::new(1),
        ..Default::default()
    });
    let (worker, queue) = new_worker(&store, sender.clone(), fast());

    assert_eq!(worker.run_once().await.unwrap(), 1);
    let row = &store.push().outbox_rows().await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.claimed_until.is_none(), "put back, not left claimed");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run(stopped));
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.push().outbox_rows().await.unwrap()[0].status != "sent" {
        assert!(tokio::time::Instant::now() < end, "the push was never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the worker stops when told")
        .unwrap();
    assert_eq!(sender.seen().len(), 2);
    let [_, sent, retried, failed, _] = queue.metrics.snapshot();
    assert_eq!((sent, retried, failed), (1, 1, 0));
}

#[tokio::test]
async fn the_running_worker_wakes_when_a_push_is_queued() {
    let (_dir, store, room_id) = room().await;
    let sender = Scripted::new([]);
    let config = WorkerConfig {
        poll: Duration::from_secs(30),
        ..fast()
    };
    let (worker, queue) = new_worker(&store, sender.clone(), config);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run(stopped));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, pushes) = say(&store, &room_id, "wake up", 0).await;
    queue.queued(pushes);
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while sender.seen().is_empty() {
        assert!(
            tokio::time::Instant::now() < end,
            "the worker slept through it"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the worker stops when told")
        .unwrap();
    assert_eq!(queue.metrics.queued.load(Ordering::Relaxed), 1);
    assert_eq!(sender.seen()[0].body, "wake up");
}

/// The claim on PostgreSQL (`FOR UPDATE SKIP LOCKED`), when `BUBBLE_TEST_PG` names a server: two
/// workers drain one outbox and every device gets its push exactly once.
#[tokio::test]
async fn two_workers_on_postgres_never_send_one_row_twice() {
    let Some((_db, store)) = crate::store::temp_pg_store().await else {
        eprintln!("BUBBLE_TEST_PG not set: skipped");
        return;
    };

    let room = store
        .rooms()
        .create(NewRoom::by_author("Night owls", 100), &["author"], None)
        .await
        .unwrap();
    let members: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for m in &members {
        store.rooms().add_member(&room.id, m).await.unwrap();
        store
            .push()
            .register_token(&format!("tok-{m}"), m, "fcm")
            .await
            .unwrap();
    }
    let (_, pushes) = say(&store, &room.id, "to everyone", 0).await;
    assert_eq!(pushes, 40);
    let (_, pushes) = say(&store, &room.id, "again", 0).await;
    assert_eq!(pushes, 40, "collapsed into the pending rows");
    assert_eq!(store.push().outbox_rows().await.unwrap().len(), 40);

    let sender = Arc::new(Scripted {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let small = WorkerConfig { batch: 4, ..fast() };
    let (a, _) = new_worker(&store, sender.clone(), small.clone());
    let (b, _) = new_worker(&store, sender.clone(), small);
    let drain = |w: Worker| async move { while w.run_once().await.unwrap() > 0 {} };
    tokio::join!(drain(a), drain(b));
    let mut tokens: Vec<String> = sender.seen().into_iter().map(|p| p.token).collect();
    tokens.sort();
    let mut expected: Vec<String> = members.iter().map(|m| format!("tok-{m}")).collect();
    expected.sort();
    assert_eq!(tokens, expected, "each device exactly once");
    assert!(sender.seen().iter().all(|p| p.body == "again"));
    let rows = store.push().outbox_rows().await.unwrap();
    assert!(rows.iter().all(|r| r.status == "sent"));
}
