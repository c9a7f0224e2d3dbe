//! `list`: many rooms with a full page of messages each, and clients polling `list_rooms` every
//! two seconds as the web app does (on a fixed schedule, whether or not the last answer came).
//! Measures the time from each poll being due to its `list_rooms` answer, and the server's CPU.
//! Each client polls once before the measured window, as apps that have been open for a while
//! have; that first answer's latency (the server's first look at the rooms) is reported apart.
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use crate::fanout::{add_usage, measure_window};
use crate::ingest::client_with_room;
use crate::report::{Better, Latencies, Report};
use crate::server::Server;
use crate::sio::{Client, Eio, Incoming};

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Rooms to create.
    #[arg(long, default_value_t = 1000)]
    pub rooms: usize,
    /// Messages stored in each room before polling starts.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Clients polling `list_rooms`.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Seconds between two polls of one client.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Characters of message text.
    #[arg(long, default_value_t = 64)]
    pub message_bytes: usize,
}

/// Fills the server: `rooms` rooms with `messages` messages each, written by 16 clients that keep
/// up to 16 messages in flight; the writers then disconnect (their rooms stay open).
async fn seed(server: &Server, eio: Eio, args: &ListArgs) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let writers = 16.min(args.rooms.max(1));
    let text = "x".repeat(args.message_bytes);
    let limit = Arc::new(Semaphore::new(writers));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (url, limit, text) = (server.url.clone(), limit.clone(), text.clone());
        let (rooms, messages) = (args.rooms, args.messages);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let mut mine = (w..rooms).step_by(writers);
            let Some(first) = mine.next() else {
                return anyhow::Ok(());
            };
            let (mut client, room_id) =
                client_with_room(&url, eio, &format!("list {first}")).await?;
            let mut room_ids = vec![room_id];
            for r in mine {
                let ack = client
                    .call("create_room", &format!(r#"{{"roomName":"list {r}"}}"#))
                    .await?;
                let id = crate::sio::first_arg(&ack)
                    .and_then(|v| v["roomId"].as_str().map(str::to_owned))
                    .ok_or_else(|| anyhow::anyhow!("create_room answered {ack}"))?;
                room_ids.push(id);
            }
            let mut in_flight = 0usize;
            for room_id in &room_ids {
                let data = format!(r#"{{"roomId":"{room_id}","message":"{text}"}}"#);
                for _ in 0..messages {
                    client.emit_ack("add_message", &data).await?;
                    in_flight += 1;
                    while in_flight >= 16 {
                        if let Incoming::Ack(..) = client.recv().await? {
                            in_flight -= 1;
                        }
                    }
                }
            }
            while in_flight > 0 {
                if let Incoming::Ack(..) = client.recv().await? {
                    in_flight -= 1;
                }
            }
            client.close().await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await?
            .with_context(|| format!("seeding, after {:?}", started.elapsed()))?;
    }
    Ok(started.elapsed())
}

pub async fn run(server: &Server, eio: Eio, args: &ListArgs) -> anyhow::Result<Report> {
    let seeding = seed(server, eio, args).await?;
    let mut pollers = Vec::new();
    let mut first_answer = Duration::ZERO;
    for _ in 0..args.clients {
        let mut client = Client::connect(&server.url, eio, None).await?;
        let asked = Instant::now();
        client.emit("list_rooms", "{}").await?;
        while !client.recv().await?.is_event("list_rooms") {}
        first_answer = first_answer.max(asked.elapsed());
        pollers.push(client);
    }
    let interval = Duration::from_secs_f64(args.interval);
    let start = Instant::now() + Duration::from_millis(200);
    let measure_to = start + Duration::from_secs(args.duration);
    let end = measure_to + Duration::from_secs(10);
    let latencies = Latencies::default();
    let (due_polls, answers, bytes, rooms_seen) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for (i, mut client) in pollers.into_iter().enumerate() {
        let offset = interval.mul_f64(i as f64 / args.clients as f64);
        let mut rec = latencies.recorder();
        let (due_polls, answers, bytes, rooms_seen) = (
            due_polls.clone(),
            answers.clone(),
            bytes.clone(),
            rooms_seen.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(start + offset, interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let mut waiting: VecDeque<Instant> = VecDeque::new();
            let mut polling = true;
            let stop = tokio::time::sleep_until(end);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    due = tick.tick(), if polling => {
                        if due >= measure_to {
                            polling = false;
                            continue;
                        }
                        if client.emit("list_rooms", "{}").await.is_err() {
                            return;
                        }
                        due_polls.fetch_add(1, Ordering::Relaxed);
                        waiting.push_back(due);
                    }
                    got = client.recv() => match got {
                        Ok(m) if m.is_event("list_rooms") => {
                            let Incoming::Event(packet) = m else { continue };
                            if let Some(due) = waiting.pop_front() {
                                rec.record(due.elapsed().as_micros() as u64);
                                answers.fetch_add(1, Ordering::Relaxed);
                                bytes.store(packet.len() as u64, Ordering::Relaxed);
                                let n = packet.matches("\"roomDescription\"").count();
                                rooms_seen.store(n as u64, Ordering::Relaxed);
                            }
                            if waiting.is_empty() && Instant::now() >= measure_to {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }
            rec.flush();
            client.close().await;
        }));
    }
    let (cpu, peak, bench) = measure_window(server, start, measure_to).await;
    for t in tasks {
        let _ = t.await;
    }
    let mut report = Report::new(format!(
        "list: {} rooms x {} messages, {} clients polling every {} s",
        args.rooms, args.messages, args.clients, args.interval
    ));
    report.add("seeding", seeding.as_secs_f64(), "s", Better::Lower);
    report.add(
        "first answer (before the window)",
        first_answer.as_secs_f64() * 1000.0,
        "ms",
        Better::Lower,
    );
    report.add(
        "rooms listed",
        rooms_seen.load(Ordering::Relaxed) as f64,
        "",
        Better::Neither,
    );
    report.add(
        "answer size",
        bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
        "MiB",
        Better::Lower,
    );
    let (due, got) = (
        due_polls.load(Ordering::Relaxed),
        answers.load(Ordering::Relaxed),
    );
    report.add("polls", due as f64, "", Better::Neither);
    report.add(
        "unanswered polls",
        due.saturating_sub(got) as f64,
        "",
        Better::Lower,
    );
    report.add_latency("answer latency", &latencies.snapshot());
    add_usage(&mut report, cpu, peak, bench);
    Ok(report)
}
