//! The message writer and its batches, on a SQLite file of their own.
use std::sync::Arc;
use std::time::Duration;

use entity::{message, room};
use rusqlite::Connection;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use super::batch::write;
use super::writer::{Answer, Job, QUEUE, Request};
use crate::clock::now_ms;
use crate::store::{NewMessage, NewRoom, PushFanout, Store, one_connection, temp_store};

async fn new_room(store: &Store, name: &str, members: &[&str]) -> String {
    let room = store
        .rooms()
        .create(NewRoom::by_author(name, 100), members, None)
        .await
        .unwrap();
    room.id
}

/// Runs `messages` as one batch on a connection of their own, as the writer would, and
/// returns the answers in order.
async fn batch(
    (one, store): (&mut Connection, &Store),
    messages: Vec<(NewMessage, PushFanout<'_>)>,
) -> Vec<Answer> {
    let mut requests = Vec::new();
    let mut answers = Vec::new();
    for (new, fanout) in messages {
        let (request, answered) = Request::new(new, &fanout);
        requests.push(request);
        answers.push(answered);
    }
    write(one, &store.recent, &mut requests);
    let mut got = Vec::new();
    for answered in answers {
        got.push(answered.await.expect("every request is answered"));
    }
    got
}

async fn stored(store: &Store, room_id: &str) -> Vec<message::Model> {
    message::Entity::find()
        .filter(message::Column::RoomId.eq(room_id))
        .order_by_asc(message::Column::Id)
        .all(store.db())
        .await
        .unwrap()
}

async fn contents(store: &Store, room_id: &str) -> Vec<String> {
    let stored = stored(store, room_id).await;
    stored.into_iter().map(|m| m.content).collect()
}

async fn last_active(store: &Store, room_id: &str) -> i64 {
    room::Entity::find_by_id(room_id.to_owned())
        .one(store.db())
        .await
        .unwrap()
        .expect("room")
        .last_active
}

fn created(answer: &Answer) -> i64 {
    match answer {
        Ok(Some(added)) => added.message.created_at,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_stamps_each_room_strictly_increasing_in_order() {
    let (dir, store) = temp_store().await;
    let mut one = one_connection(&dir);
    let a = new_room(&store, "A", &["author"]).await;
    let b = new_room(&store, "B", &["author"]).await;
    // B was last active in the future (a clock step back): its messages come after that.
    let ahead = now_ms() + 60_000;
    room::Entity::update_many()
        .col_expr(room::Column::LastActive, ahead.into())
        .filter(room::Column::Id.eq(b.as_str()))
        .exec(store.db())
        .await
        .unwrap();

    let before = now_ms();
    let mut messages = Vec::new();
    for i in 0..30 {
        let room = if i % 3 == 0 { &b } else { &a };
        messages.push((
            NewMessage::by_author(room, &format!("m{i}")),
            PushFanout::NOBODY_HERE,
        ));
    }
    let answers = batch((&mut one, &store), messages).await;

    let (mut in_a, mut in_b) = (Vec::new(), Vec::new());
    for (i, answer) in answers.iter().enumerate() {
        let added = answer.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(added.message.content, format!("m{i}"));
        assert_eq!(added.pushes, 0);
        let room = if i % 3 == 0 { &mut in_b } else { &mut in_a };
        room.push(created(answer));
    }
    assert_eq!((in_a.len(), in_b.len()), (20, 10));
    assert!(in_a[0] >= before, "stamped no earlier than the batch");
    assert!(in_a.windows(2).all(|w| w[1] == w[0] + 1), "{in_a:?}");
    assert_eq!(in_b[0], ahead + 1);
    assert!(in_b.windows(2).all(|w| w[1] == w[0] + 1), "{in_b:?}");
    assert_eq!(last_active(&store, &a).await, in_a[19]);
    assert_eq!(last_active(&store, &b).await, in_b[9]);

    // What was answered is what is stored, and the next message comes after the batch.
    let rows: Vec<i64> = stored(&store, &a)
        .await
        .iter()
        .map(|m| m.created_at)
        .collect();
    assert_eq!(rows, in_a);
    let next = store
        .messages()
        .add(NewMessage::by_author(&a, "after"), &PushFanout::NOBODY_HERE)
        .await
        .unwrap()
        .unwrap();
    assert!(next.message.created_at > in_a[19]);
}

#[tokio::test]
async fn concurrent_messages_wait_for_one_batch_and_stay_ordered_per_room() {
    let (_dir, store) = temp_store().await;
    let mut rooms = Vec::new();
    for name in ["A", "B", "C", "D"] {
        rooms.push(new_room(&store, name, &["author"]).await);
    }
    // Hold SQLite's write lock so that the writer's first batch waits and the rest queue.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let lock = store.db().begin_with_options(options).await.unwrap();
    let writer = store.writer.clone().expect("SQLite has a writer");
    let queued = || QUEUE - writer.queue.capacity();
    let wait_for = |n: usize| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while queued() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} queued",
                queued()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    // The first message is taken alone and waits for the lock; the others queue behind it.
    let spawn = |room: &String, content: String| {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move {
            store
                .messages()
                .add(
                    NewMessage::by_author(&room, &content),
                    &PushFanout::NOBODY_HERE,
                )
                .await
        })
    };
    let (first, first_answer) = Request::new(
        NewMessage::by_author(&rooms[0], "first"),
        &PushFanout::NOBODY_HERE,
    );
    assert!(writer.queue.send(Job::Add(first)).await.is_ok());
    wait_for(0).await;
    let mut sends = Vec::new();
    const PER_ROOM: usize = 50;
    for i in 0..PER_ROOM {
        for room in &rooms {
            sends.push(spawn(room, i.to_string()));
        }
    }
    wait_for(PER_ROOM * rooms.len()).await;
    lock.commit().await.unwrap();

    first_answer
        .await
        .unwrap()
        .unwrap()
        .expect("the room exists");
    for send in sends {
        send.await.unwrap().unwrap().expect("the room exists");
    }
    for room in &rooms {
        let times: Vec<i64> = stored(&store, room)
            .await
            .iter()
            .map(|m| m.created_at)
            .collect();
        let first = usize::from(room == &rooms[0]);
        assert_eq!(times.len(), PER_ROOM + first);
        assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
        assert_eq!(last_active(&store, room).await, times[times.len() - 1]);
    }
}

#[tokio::test]
async fn a_missing_room_answers_none_and_the_others_are_stored() {
    let (dir, store) = temp_store().await;
    let mut one = one_connection(&dir);
    let a = new_room(&store, "A", &["author"]).await;
    let answers = batch(
        (&mut one, &store),
        vec![
            (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
            (
                NewMessage::by_author("no such room", "lost"),
                PushFanout::NOBODY_HERE,
            ),
            (NewMessage::by_author(&a, "two"), PushFanout::NOBODY_HERE),
        ],
    )
    .await;
    assert!(matches!(answers[1], Ok(None)), "{:?}", answers[1]);
    assert_eq!(created(&answers[2]), created(&answers[0]) + 1);
    let contents = contents(&store, &a).await;
    assert_eq!(contents, ["one", "two"]);

    // A batch of nothing but missing rooms stores nothing.
    let answers = batch(
        (&mut one, &store),
        vec![(NewMessage::by_author("gone", "x"), PushFanout::NOBODY_HERE)],
    )
    .await;
    assert!(matches!(answers[0], Ok(None)));
    assert_eq!(
        message::Entity::find().all(store.db()).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_failing_message_does_not_lose_the_others() {
    let (dir, store) = temp_store().await;
    let mut one = one_connection(&dir);
    let a = new_room(&store, "A", &["author"]).await;
    let b = new_room(&store, "B", &["author"]).await;
    store
        .db()
        .execute_unprepared(
            "CREATE TRIGGER refuse BEFORE INSERT ON message WHEN NEW.content = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
    let answers = batch(
        (&mut one, &store),
        vec![
            (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
            (
                NewMessage::by_author(&a, "refused"),
                PushFanout::NOBODY_HERE,
            ),
            (NewMessage::by_author(&b, "two"), PushFanout::NOBODY_HERE),
            (NewMessage::by_author(&a, "three"), PushFanout::NOBODY_HERE),
        ],
    )
    .await;
    let error = answers[1].as_ref().expect_err("the refused message fails");
    assert!(error.to_string().contains("refused by the test"), "{error}");
    assert!(created(&answers[3]) > created(&answers[0]));
    let contents = contents(&store, &a).await;
    assert_eq!(contents, ["one", "three"]);
    assert_eq!(last_active(&store, &a).await, created(&answers[3]));
    assert_eq!(stored(&store, &b).await.len(), 1);

    // Alone in its batch, it fails the same way and stores nothing.
    let answers = batch(
        (&mut one, &store),
        vec![(
            NewMessage::by_author(&b, "refused"),
            PushFanout::NOBODY_HERE,
        )],
    )
    .await;
    assert!(answers[0].is_err());
    assert_eq!(stored(&store, &b).await.len(), 1);
    // Through the writer too.
    let through = store
        .messages()
        .add(
            NewMessage::by_author(&b, "refused"),
            &PushFanout::NOBODY_HERE,
        )
        .await;
    assert!(through.is_err());
    let fine = store
        .messages()
        .add(NewMessage::by_author(&b, "fine"), &PushFanout::NOBODY_HERE)
        .await;
    assert!(matches!(fine, Ok(Some(_))), "{fine:?}");
}

#[tokio::test]
async fn a_transaction_left_open_by_a_failed_batch_goes_with_its_connection() {
    let (dir, store) = temp_store().await;
    let mut one = one_connection(&dir);
    let a = new_room(&store, "A", &["author"]).await;
    // As a batch whose COMMIT and then ROLLBACK failed leaves the connection: inside its
    // transaction, holding the write lock.
    one.execute_batch("BEGIN IMMEDIATE; UPDATE room SET name = 'never committed'")
        .unwrap();

    let answers = batch(
        (&mut one, &store),
        vec![(NewMessage::by_author(&a, "next"), PushFanout::NOBODY_HERE)],
    )
    .await;
    assert!(matches!(answers[0], Ok(Some(_))), "{:?}", answers[0]);
    assert!(one.is_autocommit(), "the writer is outside any transaction");
    assert_eq!(contents(&store, &a).await, ["next"], "committed for real");
    let room = store.rooms().get(&a).await.unwrap().expect("room");
    assert_eq!(room.name, "A", "the transaction left open is not committed");
    store
        .db()
        .execute_unprepared("UPDATE room SET name = 'B'")
        .await
        .expect("the write lock is free");
}

#[tokio::test]
async fn pushes_in_a_batch_are_queued_as_one_message_at_a_time_would() {
    let (dir, store) = temp_store().await;
    let mut one = one_connection(&dir);
    let a = new_room(&store, "A", &["author", "away", "here", "tokenless"]).await;
    let quiet = new_room(&store, "Quiet", &["author", "tokenless"]).await;
    for (token, who) in [
        ("tok-away", "away"),
        ("tok-here", "here"),
        ("tok-author", "author"),
    ] {
        store
            .push()
            .register_token(token, who, "fcm")
            .await
            .unwrap();
    }
    let present: Vec<Arc<str>> = vec!["author".into(), "here".into()];
    let with_here = PushFanout {
        present: &present,
        ..PushFanout::NOBODY_HERE
    };
    let answers = batch(
        (&mut one, &store),
        vec![
            // Nobody present: "away" and "here" each get a row.
            (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
            (
                NewMessage::by_author(&quiet, "nobody to push to"),
                PushFanout::NOBODY_HERE,
            ),
            // Both rows collapse into this one.
            (NewMessage::by_author(&a, "two"), PushFanout::NOBODY_HERE),
            // "here" is present now: only the row of "away" moves on.
            (NewMessage::by_author(&a, "three"), with_here),
        ],
    )
    .await;
    let pushes: Vec<u64> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().as_ref().unwrap().pushes)
        .collect();
    assert_eq!(pushes, [2, 0, 2, 1]);
    let id = |i: usize| answers[i].as_ref().unwrap().as_ref().unwrap().message.id;
    let mut rows: Vec<(String, i64)> = store
        .push()
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.token, r.message_id))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("tok-away".to_owned(), id(3)),
            ("tok-here".to_owned(), id(2))
        ]
    );
}

#[tokio::test]
async fn a_database_in_memory_stores_messages_without_the_writer() {
    let args = crate::config::DatabaseArgs {
        database_url: "sqlite::memory:".into(),
        db_connections: 2,
        log: "warn".into(),
    };
    let store = Store::connect(&args).await.unwrap();
    assert!(store.writer.is_none(), "no other connection reaches it");
    let room = new_room(&store, "A", &["author"]).await;
    let first = store
        .messages()
        .add(
            NewMessage::by_author(&room, "one"),
            &PushFanout::NOBODY_HERE,
        )
        .await;
    let second = store
        .messages()
        .add(
            NewMessage::by_author(&room, "two"),
            &PushFanout::NOBODY_HERE,
        )
        .await;
    assert!(created(&second) > created(&first));
    let contents = contents(&store, &room).await;
    assert_eq!(contents, ["one", "two"]);
}

/// What the store alone sustains with many senders, each waiting for its answer before
/// sending again, and what it costs: run with
/// `cargo test --release --lib store_ingest_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn store_ingest_rate() {
    const SENDERS: usize = 200;
    const SECONDS: u64 = 5;
    let (_dir, store) = temp_store().await;
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split(' ').collect();
        // utime and stime, in clock ticks (100 a second), are fields 14 and 15.
        let ticks = |i: usize| fields.get(i - 1).and_then(|f| f.parse::<u64>().ok());
        ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0)
    };
    let mut senders = Vec::new();
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_secs(SECONDS);
    let cpu_before = cpu();
    for i in 0..SENDERS {
        let room = new_room(&store, &format!("room {i}"), &["author"]).await;
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while tokio::time::Instant::now() < until {
                let message = NewMessage::by_author(&room, &"x".repeat(64));
                store
                    .messages()
                    .add(message, &PushFanout::NOBODY_HERE)
                    .await
                    .unwrap()
                    .unwrap();
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for sender in senders {
        sent += sender.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = (cpu() - cpu_before) * 10;
    eprintln!(
        "{SENDERS} senders: {:.0} messages/s, {:.1} µs of CPU per message",
        sent as f64 / elapsed,
        cpu_ms as f64 * 1000.0 / sent as f64
    );
}
