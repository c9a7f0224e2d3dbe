//! `fanout`: rooms full of members who talk at a set rate (all of them, or the first
//! `--senders-per-room` of each room); every message reaches every member (the others and the
//! sender's own copy). Measures deliveries per second, the time from the moment a message was due
//! to be sent to its arrival at each member, and the server's CPU time per delivery.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use crate::report::{Better, Latencies, Report, now_us};
use crate::server::{ProcSample, Server};
use crate::sio::{Client, Eio, Incoming, first_arg};

#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Number of rooms.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Members per room (1 to 100; the room's userLimit, at least 2). Every message is
    /// delivered to all of them, the sender's own copy included.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Only the first N members of each room send; all of them still receive [default: every
    /// member sends].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub senders_per_room: Option<u16>,
    /// `add_message` events each sender sends per second (open loop: sends are due on a fixed
    /// schedule whatever the server does, and latency counts from the due time).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Characters of message text (a send timestamp, then padding).
    #[arg(long, default_value_t = 64)]
    pub message_bytes: usize,
}

impl FanoutArgs {
    /// Members of each room who send.
    pub fn senders(&self) -> usize {
        self.senders_per_room
            .map_or(self.members, |n| usize::from(n).min(self.members))
    }

    /// Deliveries per second the schedule asks for.
    pub fn offered(&self) -> f64 {
        (self.rooms * self.senders() * self.members) as f64 * self.rate
    }

    /// What the run is, for its report's title.
    pub fn describe(&self) -> String {
        let senders = match self.senders() {
            n if n == self.members => "each member".to_owned(),
            1 => "1 sender per room".to_owned(),
            n => format!("{n} senders per room"),
        };
        format!(
            "{} rooms x {} members, {senders} at {}/s",
            self.rooms, self.members, self.rate
        )
    }
}

/// Rooms set up: each with its members connected and in it.
async fn setup(
    server: &Server,
    eio: Eio,
    rooms: usize,
    members: usize,
) -> anyhow::Result<Vec<(String, Vec<Client>)>> {
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = Vec::new();
    for r in 0..rooms {
        let url = server.url.clone();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let mut owner = Client::connect(&url, eio, None).await?;
            let limit = members.max(2);
            let payload = format!(r#"{{"roomName":"bench room {r}","userLimit":{limit}}}"#);
            let ack = owner.call("create_room", &payload).await?;
            let room_id = first_arg(&ack)
                .and_then(|v| v["roomId"].as_str().map(str::to_owned))
                .with_context(|| format!("create_room answered {ack}"))?;
            let mut clients = vec![owner];
            for _ in 1..members {
                let mut c = Client::connect(&url, eio, None).await?;
                let ack = c
                    .call("join_room", &format!(r#"{{"roomId":"{room_id}"}}"#))
                    .await?;
                if ack.contains("\"error\"") {
                    anyhow::bail!("join_room answered {ack}");
                }
                clients.push(c);
            }
            anyhow::Ok((room_id, clients))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// The send timestamp in a delivered `add_message`: the digits after `"content":"t`.
fn sent_at(packet: &str) -> Option<u64> {
    let i = packet.find("\"content\":\"t")? + "\"content\":\"t".len();
    let digits = packet[i..].bytes().take_while(u8::is_ascii_digit);
    Some(digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    failed_clients: AtomicU64,
}

pub async fn run(server: &Server, eio: Eio, args: &FanoutArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (1..=100).contains(&args.members),
        "--members must be 1 to 100"
    );
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let rooms = setup(server, eio, args.rooms, args.members).await?;
    let epoch = Instant::now();
    let start = epoch + Duration::from_millis(500);
    let measure_from = start + Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    // Stragglers still count if they arrive within this.
    let end = measure_to + Duration::from_secs(3);
    let (from_us, to_us) = (
        measure_from.duration_since(epoch).as_micros() as u64,
        measure_to.duration_since(epoch).as_micros() as u64,
    );
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let latencies = Latencies::default();
    let counters = Arc::new(Counters::default());
    let senders = args.rooms * args.senders();
    let mut tasks = Vec::with_capacity(args.rooms * args.members);
    let mut i = 0usize;
    for (room_id, members) in rooms {
        for (m, mut client) in members.into_iter().enumerate() {
            let sender = m < args.senders();
            // Spread the senders' schedules evenly over one period.
            let offset = period.mul_f64(i as f64 / senders as f64);
            i += usize::from(sender);
            let room_id = room_id.clone();
            let counters = counters.clone();
            let mut rec = latencies.recorder();
            let pad = args.message_bytes.saturating_sub(14);
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(start + offset, period);
                tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                let mut sending = sender;
                let stop = tokio::time::sleep_until(end);
                tokio::pin!(stop);
                let x = "x".repeat(pad);
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        due = tick.tick(), if sending => {
                            let ts = due.duration_since(epoch).as_micros() as u64;
                            if due >= measure_to {
                                sending = false;
                                continue;
                            }
                            let data = format!(r#"{{"roomId":"{room_id}","message":"t{ts:012} {x}"}}"#);
                            if client.emit("add_message", &data).await.is_err() {
                                counters.failed_clients.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            if ts >= from_us {
                                counters.sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        got = client.recv() => match got {
                            Ok(m @ Incoming::Event(_)) if m.is_event("add_message") => {
                                let Incoming::Event(packet) = m else { continue };
                                if let Some(ts) = sent_at(&packet)
                                    && (from_us..to_us).contains(&ts)
                                {
                                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                                    rec.record(now_us(epoch).saturating_sub(ts));
                                }
                            }
                            Ok(m) if m.is_event("bubble_error") => {
                                counters.errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(_) => {
                                counters.failed_clients.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }
                rec.flush();
                client.close().await;
            }));
        }
    }
    let sampler = measure_window(server, measure_from, measure_to);
    let (server_cpu, peak_kib, bench_cpu) = sampler.await;
    for t in tasks {
        let _ = t.await;
    }
    let secs = args.duration as f64;
    let sent = counters.sent.load(Ordering::Relaxed);
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let expected = sent * args.members as u64;
    let mut report = Report::new(format!("fanout: {}", args.describe()));
    report.add("offered deliveries/s", args.offered(), "", Better::Neither);
    report.add("messages sent/s", sent as f64 / secs, "", Better::Neither);
    report.add("deliveries/s", delivered as f64 / secs, "", Better::Higher);
    report.add_latency("latency", &latencies.snapshot());
    report.add(
        "missing deliveries",
        expected.saturating_sub(delivered) as f64,
        "",
        Better::Lower,
    );
    report.add(
        "errors",
        counters.errors.load(Ordering::Relaxed) as f64,
        "",
        Better::Lower,
    );
    report.add(
        "clients dropped",
        counters.failed_clients.load(Ordering::Relaxed) as f64,
        "",
        Better::Lower,
    );
    add_usage(&mut report, server_cpu, peak_kib, bench_cpu);
    report.add(
        "server CPU per delivery",
        cpu_us_per(server_cpu, delivered as f64 / secs),
        "µs",
        Better::Lower,
    );
    Ok(report)
}

/// Server CPU time per unit of work, in microseconds: its CPU over the window (percent of one
/// core) spread over what it did per second. The work counted is what was sent inside the window
/// and arrived, which in a steady run is what the server did inside it.
pub fn cpu_us_per(cpu_percent: Option<f64>, per_sec: f64) -> f64 {
    match cpu_percent {
        Some(cpu) if per_sec > 0.0 => cpu / 100.0 * 1e6 / per_sec,
        _ => f64::NAN,
    }
}

/// Server CPU over a window (percent of one core), the server's peak RSS (KiB) since the window
/// opened, and the bench's own CPU over the window.
pub async fn measure_window(
    server: &Server,
    from: Instant,
    to: Instant,
) -> (Option<f64>, Option<u64>, Option<f64>) {
    tokio::time::sleep_until(from).await;
    server.reset_peak();
    let me = std::process::id();
    let (s0, b0) = (server.sample(), ProcSample::read(me));
    tokio::time::sleep_until(to).await;
    let (s1, b1) = (server.sample(), ProcSample::read(me));
    let cpu = s0.zip(s1).map(|(a, b)| b.cpu_percent_since(&a));
    let bench = b0.zip(b1).map(|(a, b)| b.cpu_percent_since(&a));
    (cpu, s1.map(|s| s.peak_kib), bench)
}

pub fn add_usage(report: &mut Report, cpu: Option<f64>, peak_kib: Option<u64>, bench: Option<f64>) {
    report.add(
        "server CPU",
        cpu.unwrap_or(f64::NAN),
        "% of a core",
        Better::Lower,
    );
    report.add(
        "server peak RSS",
        peak_kib.map_or(f64::NAN, |k| k as f64 / 1024.0),
        "MiB",
        Better::Lower,
    );
    report.add(
        "bench CPU",
        bench.unwrap_or(f64::NAN),
        "% of a core",
        Better::Neither,
    );
}

#[derive(clap::Args, Debug, Clone)]
pub struct StepArgs {
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// Each step multiplies the per-sender rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// At most this many steps.
    #[arg(long, default_value_t = 10)]
    pub max_steps: usize,
    /// A step is good while its delivery p99 stays under this many milliseconds (and it delivers
    /// at least 95% of what was offered, without errors). Stepping goes on past it until the
    /// server saturates, to find the highest delivery rate.
    #[arg(long, default_value_t = 10.0)]
    pub p99_ms: f64,
    /// Do not finish with a run at half the highest delivery rate reached.
    #[arg(long)]
    pub no_half: bool,
}

/// Steps the fan-out rate up (starting at `--rate`) until the server saturates (delivers less
/// than 95% of what is offered, or errors); the last good step is the last one whose p99 was
/// under the threshold. Then runs once at half the highest delivery rate seen.
pub async fn step(server: &Server, eio: Eio, args: &StepArgs) -> anyhow::Result<Report> {
    let mut rate = args.fanout.rate;
    let mut last_good: Option<Report> = None;
    let mut max_delivered = 0.0f64;
    println!(
        "{:>10} {:>12} {:>12} {:>9} {:>7} {:>9} {:>12}",
        "rate/s", "offered/s", "delivered/s", "p99 ms", "errors", "server %", "µs/delivery"
    );
    for _ in 0..args.max_steps {
        let run_args = FanoutArgs {
            rate,
            ..args.fanout.clone()
        };
        let r = run(server, eio, &run_args).await?;
        let delivered = r.get("deliveries/s").unwrap_or(0.0);
        let p99 = r.get("latency p99").unwrap_or(f64::INFINITY);
        let errors = r.get("errors").unwrap_or(0.0) + r.get("clients dropped").unwrap_or(0.0);
        println!(
            "{:>10.2} {:>12.0} {:>12.0} {:>9.2} {:>7} {:>9.0} {:>12.2}",
            rate,
            run_args.offered(),
            delivered,
            p99,
            errors,
            r.get("server CPU").unwrap_or(f64::NAN),
            r.get("server CPU per delivery").unwrap_or(f64::NAN)
        );
        max_delivered = max_delivered.max(delivered);
        let keeping_up = delivered >= 0.95 * run_args.offered();
        if p99 <= args.p99_ms && keeping_up && errors == 0.0 {
            last_good = Some(r);
        } else if !keeping_up || errors > 0.0 {
            // Saturated: going on would only grow the server's queues.
            break;
        }
        rate *= args.factor;
    }
    let mut report = Report::new(format!(
        "step: {} rooms x {} members ({} sending), p99 threshold {} ms",
        args.fanout.rooms,
        args.fanout.members,
        args.fanout.senders(),
        args.p99_ms
    ));
    report.add("max deliveries/s", max_delivered, "", Better::Higher);
    match &last_good {
        Some(good) => {
            report.add(
                "last good deliveries/s",
                good.get("deliveries/s").unwrap_or(f64::NAN),
                "",
                Better::Higher,
            );
            report.add(
                "last good p99",
                good.get("latency p99").unwrap_or(f64::NAN),
                "ms",
                Better::Lower,
            );
        }
        None => report.add("last good deliveries/s", 0.0, "", Better::Higher),
    }
    if !args.no_half && max_delivered > 0.0 {
        let per_sender = (max_delivered / 2.0) / (args.fanout.offered() / args.fanout.rate);
        let half = FanoutArgs {
            rate: per_sender,
            ..args.fanout.clone()
        };
        let r = run(server, eio, &half).await?;
        report.add(
            "half-max deliveries/s",
            r.get("deliveries/s").unwrap_or(f64::NAN),
            "",
            Better::Higher,
        );
        for q in ["p50", "p99", "p99.9"] {
            let v = r.get(&format!("latency {q}")).unwrap_or(f64::NAN);
            report.add(&format!("half-max {q}"), v, "ms", Better::Lower);
        }
    }
    Ok(report)
}
