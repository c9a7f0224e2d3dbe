//! `idle`: many connections that do nothing but keep alive, each with its own `bubble=<uuid>`
//! token (so the server resolves a stored person for each). The server's resident memory is read
//! before and after; the difference over the count is the cost of one idle connection.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::report::{Better, Report};
use crate::server::Server;
use crate::sio::{Client, Eio};

#[derive(clap::Args, Debug, Clone)]
pub struct IdleArgs {
    /// Idle connections to open (each needs a file descriptor here and one in the server: see
    /// `ulimit -n`).
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to wait once all are open before reading the server's memory.
    #[arg(long, default_value_t = 5)]
    pub settle: u64,
}

pub async fn run(server: &Server, eio: Eio, args: &IdleArgs) -> anyhow::Result<Report> {
    // One connection first, so that what is allocated once (pools, caches) is not counted.
    let warm = Client::connect(&server.url, eio, Some(&uuid::Uuid::new_v4().to_string())).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.sample();
    let (stop_tx, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let failed = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut opening = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (url, limit, failed, dropped) = (
            server.url.clone(),
            limit.clone(),
            failed.clone(),
            dropped.clone(),
        );
        let mut stop = stop_rx.clone();
        opening.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await;
            let token = uuid::Uuid::new_v4().to_string();
            let Ok(mut client) = Client::connect(&url, eio, Some(&token)).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            drop(permit);
            // Stay connected, answering pings, until told to stop.
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        got = client.recv() => if got.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                client.close().await;
            });
        }));
    }
    for o in opening {
        let _ = o.await;
    }
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = server.sample();
    let _ = stop_tx.send(true);
    warm.close().await;
    let failed = failed.load(Ordering::Relaxed);
    let open = args.connections as u64 - failed - dropped.load(Ordering::Relaxed);
    let mut report = Report::new(format!("idle: {} connections", args.connections));
    report.add("connected", open as f64, "", Better::Higher);
    report.add("failed to connect", failed as f64, "", Better::Lower);
    report.add(
        "connections opened/s",
        args.connections as f64 / open_secs,
        "",
        Better::Higher,
    );
    let (rss0, rss1) = (
        before.map_or(f64::NAN, |s| s.rss_kib as f64),
        after.map_or(f64::NAN, |s| s.rss_kib as f64),
    );
    report.add("server RSS before", rss0 / 1024.0, "MiB", Better::Lower);
    report.add("server RSS after", rss1 / 1024.0, "MiB", Better::Lower);
    report.add(
        "RSS per connection",
        (rss1 - rss0) / open.max(1) as f64,
        "KiB",
        Better::Lower,
    );
    // Give the server a moment to see the connections go before the next run.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(report)
}
