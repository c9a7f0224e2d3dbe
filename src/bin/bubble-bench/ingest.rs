//! `ingest`: many senders, each alone in its own room, each sending `add_message` as fast as the
//! server acknowledges (one at a time per sender). The server acknowledges once the message is
//! committed, so acknowledged messages per second is stored messages per second.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::fanout::{add_usage, measure_window};
use crate::report::{Better, Latencies, Report};
use crate::server::Server;
use crate::sio::{Client, Eio, Incoming, first_arg};

#[derive(clap::Args, Debug, Clone)]
pub struct IngestArgs {
    /// Concurrent senders, each with a room of its own.
    #[arg(long, default_value_t = 200)]
    pub senders: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Characters of message text.
    #[arg(long, default_value_t = 64)]
    pub message_bytes: usize,
}

/// Connects a client and gives it a room of its own.
pub async fn client_with_room(url: &str, eio: Eio, name: &str) -> anyhow::Result<(Client, String)> {
    let mut c = Client::connect(url, eio, None).await?;
    let ack = c
        .call("create_room", &format!(r#"{{"roomName":"{name}"}}"#))
        .await?;
    let room_id = first_arg(&ack)
        .and_then(|v| v["roomId"].as_str().map(str::to_owned))
        .with_context(|| format!("create_room answered {ack}"))?;
    Ok((c, room_id))
}

pub async fn run(server: &Server, eio: Eio, args: &IngestArgs) -> anyhow::Result<Report> {
    let limit = Arc::new(Semaphore::new(16));
    let mut setups = Vec::new();
    for i in 0..args.senders {
        let (url, limit) = (server.url.clone(), limit.clone());
        setups.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            client_with_room(&url, eio, &format!("ingest {i}")).await
        }));
    }
    let mut senders = Vec::new();
    for s in setups {
        senders.push(s.await??);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    let stored = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Latencies::default();
    let text = "x".repeat(args.message_bytes);
    let mut tasks = Vec::new();
    for (mut client, room_id) in senders {
        let (stored, errors) = (stored.clone(), errors.clone());
        let mut rec = latencies.recorder();
        let data = format!(r#"{{"roomId":"{room_id}","message":"{text}"}}"#);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            while Instant::now() < measure_to {
                let sent = Instant::now();
                let Ok(id) = client.emit_ack("add_message", &data).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let ack = loop {
                    match client.recv().await {
                        Ok(Incoming::Ack(got, packet)) if got == id => break Some(packet),
                        Ok(_) => {}
                        Err(_) => break None,
                    }
                };
                let Some(ack) = ack else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let now = Instant::now();
                if sent >= measure_from && now <= measure_to {
                    if ack.contains("\"error\"") {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stored.fetch_add(1, Ordering::Relaxed);
                        rec.record(now.duration_since(sent).as_micros() as u64);
                    }
                }
            }
            rec.flush();
            client.close().await;
        }));
    }
    let (cpu, peak, bench) = measure_window(server, measure_from, measure_to).await;
    for t in tasks {
        let _ = t.await;
    }
    let mut report = Report::new(format!("ingest: {} senders, one room each", args.senders));
    let secs = args.duration as f64;
    report.add(
        "stored messages/s",
        stored.load(Ordering::Relaxed) as f64 / secs,
        "",
        Better::Higher,
    );
    report.add_latency("ack latency", &latencies.snapshot());
    report.add(
        "errors",
        errors.load(Ordering::Relaxed) as f64,
        "",
        Better::Lower,
    );
    add_usage(&mut report, cpu, peak, bench);
    Ok(report)
}
