//! `single`: one sender, to see what one message costs without the crowd.
//!
//! By default (closed loop) the socket is alone in its room and keeps `--in-flight` `add_message`
//! events waiting for their acknowledgements, sending the next one as soon as one is answered
//! (`--in-flight 1`: each after the last one's ack). Measures acknowledged messages per second,
//! the time from each send to its ack, and the server's CPU time per message.
//!
//! With `--rate` (open loop) the sender is in a room of `--members` members and sends on a fixed
//! schedule; this is [`fanout`] with one room and one sender: deliveries per
//! second and the latency from each message being due to its arrival at every member (the
//! sender's own copy included).
use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::fanout::{self, FanoutArgs, add_usage, cpu_us_per, measure_window};
use crate::ingest::client_with_room;
use crate::report::{Better, Latencies, Report};
use crate::server::Server;
use crate::sio::{Eio, Incoming};

#[derive(clap::Args, Debug, Clone)]
pub struct SingleArgs {
    /// Closed loop: `add_message` events waiting for their acks at any moment.
    #[arg(long, default_value_t = 32, conflicts_with = "rate",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// Open loop instead: messages the sender sends per second, whatever the server does.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: members of the sender's room, the sender included (1 to 100).
    #[arg(long, default_value_t = 50, requires = "rate")]
    pub members: usize,
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

pub async fn run(server: &Server, eio: Eio, args: &SingleArgs) -> anyhow::Result<Report> {
    match args.rate {
        Some(rate) => open_loop(server, eio, args, rate).await,
        None => closed_loop(server, eio, args).await,
    }
}

async fn open_loop(
    server: &Server,
    eio: Eio,
    args: &SingleArgs,
    rate: f64,
) -> anyhow::Result<Report> {
    let fanout = FanoutArgs {
        rooms: 1,
        members: args.members,
        senders_per_room: Some(1),
        rate,
        duration: args.duration,
        warmup: args.warmup,
        message_bytes: args.message_bytes,
    };
    let mut report = fanout::run(server, eio, &fanout).await?;
    report.scenario = format!(
        "single: one sender in a room of {} members, {rate}/s open loop",
        args.members
    );
    Ok(report)
}

async fn closed_loop(server: &Server, eio: Eio, args: &SingleArgs) -> anyhow::Result<Report> {
    let (mut client, room_id) = client_with_room(&server.url, eio, "single").await?;
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    // Acks still outstanding then are waited for this long, so the socket closes cleanly.
    let end = measure_to + Duration::from_secs(3);
    let sampler = measure_window(server, measure_from, measure_to);
    let latencies = Latencies::default();
    let mut rec = latencies.recorder();
    let data = format!(
        r#"{{"roomId":"{room_id}","message":"{}"}}"#,
        "x".repeat(args.message_bytes)
    );
    let (mut acked, mut errors, mut dropped) = (0u64, 0u64, false);
    let looping = async {
        tokio::time::sleep_until(start).await;
        // Ack id to the moment it was sent.
        let mut waiting: HashMap<u64, Instant> = HashMap::new();
        loop {
            while waiting.len() < usize::from(args.in_flight) && Instant::now() < measure_to {
                let Ok(id) = client.emit_ack("add_message", &data).await else {
                    dropped = true;
                    return;
                };
                waiting.insert(id, Instant::now());
            }
            if waiting.is_empty() {
                return;
            }
            let got = match tokio::time::timeout_at(end, client.recv()).await {
                Ok(Ok(got)) => got,
                // No answer in time: the rest count as errors.
                Err(_) => {
                    errors += waiting.len() as u64;
                    return;
                }
                Ok(Err(_)) => {
                    dropped = true;
                    return;
                }
            };
            match got {
                Incoming::Ack(id, packet) => {
                    let Some(sent) = waiting.remove(&id) else {
                        continue;
                    };
                    let now = Instant::now();
                    if sent < measure_from || now > measure_to {
                        continue;
                    }
                    if packet.contains("\"error\"") {
                        errors += 1;
                    } else {
                        acked += 1;
                        rec.record(now.duration_since(sent).as_micros() as u64);
                    }
                }
                // The sender's own copy of each message comes as an event too.
                Incoming::Event(_) => {}
            }
        }
    };
    let ((cpu, peak, bench), ()) = tokio::join!(sampler, looping);
    rec.flush();
    client.close().await;
    let secs = args.duration as f64;
    let mut report = Report::new(format!(
        "single: one socket alone in its room, {} add_message in flight",
        args.in_flight
    ));
    report.add("acked messages/s", acked as f64 / secs, "", Better::Higher);
    report.add_latency("ack latency", &latencies.snapshot());
    report.add("errors", errors as f64, "", Better::Lower);
    report.add(
        "clients dropped",
        f64::from(u8::from(dropped)),
        "",
        Better::Lower,
    );
    add_usage(&mut report, cpu, peak, bench);
    report.add(
        "server CPU per message",
        cpu_us_per(cpu, acked as f64 / secs),
        "µs",
        Better::Lower,
    );
    Ok(report)
}
