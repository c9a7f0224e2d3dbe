//! `compare`: the same scenarios against `bubble` and the Node.js reference, each run on a fresh
//! server, the two alternating (and swapping who goes first every round) so that neither always
//! gets the warmer machine. Prints a Markdown table.
use crate::fanout::FanoutArgs;
use crate::idle::IdleArgs;
use crate::ingest::IngestArgs;
use crate::list::ListArgs;
use crate::report::{Better, Report, fmt};
use crate::server::{Kind, Server};
use crate::{Target, fanout, idle, ingest, list};

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Scenarios to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "fanout,ingest,idle,list")]
    pub scenarios: Vec<Scenario>,
    /// Rounds; figures are averaged over them.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Seconds measured per run (fanout, ingest, list).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// fanout: rooms.
    #[arg(long, default_value_t = 20)]
    pub fanout_rooms: usize,
    /// fanout: members per room.
    #[arg(long, default_value_t = 50)]
    pub fanout_members: usize,
    /// fanout: messages per member per second. The default offers 400,000 deliveries/s, more
    /// than either server delivers here, so deliveries/s is each one's maximum.
    #[arg(long, default_value_t = 8.0)]
    pub fanout_rate: f64,
    /// ingest: concurrent senders.
    #[arg(long, default_value_t = 200)]
    pub ingest_senders: usize,
    /// idle: connections.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    /// list: rooms (each with `--list-messages` messages).
    #[arg(long, default_value_t = 1000)]
    pub list_rooms: usize,
    /// list: messages per room.
    #[arg(long, default_value_t = 100)]
    pub list_messages: usize,
    /// list: polling clients.
    #[arg(long, default_value_t = 10)]
    pub list_clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Fanout,
    Ingest,
    Idle,
    List,
}

async fn run_one(
    server: &Server,
    target: &Target,
    scenario: Scenario,
    a: &CompareArgs,
) -> anyhow::Result<Report> {
    let eio = target.eio;
    match scenario {
        Scenario::Fanout => {
            let args = FanoutArgs {
                rooms: a.fanout_rooms,
                members: a.fanout_members,
                senders_per_room: None,
                rate: a.fanout_rate,
                duration: a.duration,
                warmup: 2,
                message_bytes: 64,
            };
            fanout::run(server, eio, &args).await
        }
        Scenario::Ingest => {
            let args = IngestArgs {
                senders: a.ingest_senders,
                duration: a.duration,
                warmup: 2,
                message_bytes: 64,
            };
            ingest::run(server, eio, &args).await
        }
        Scenario::Idle => {
            let args = IdleArgs {
                connections: a.idle_connections,
                concurrency: 64,
                settle: 5,
            };
            idle::run(server, eio, &args).await
        }
        Scenario::List => {
            let args = ListArgs {
                rooms: a.list_rooms,
                messages: a.list_messages,
                clients: a.list_clients,
                interval: 2.0,
                duration: a.duration.max(10),
                message_bytes: 64,
            };
            list::run(server, eio, &args).await
        }
    }
}

pub async fn run(target: &Target, a: &CompareArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        target.url.is_none(),
        "compare starts both servers itself: no --url"
    );
    let kinds = [Kind::Bubble, Kind::Node];
    // results[scenario][kind] = reports of every round
    let mut results: Vec<[Vec<Report>; 2]> = vec![[Vec::new(), Vec::new()]; a.scenarios.len()];
    for round in 0..a.rounds {
        for (s, &scenario) in a.scenarios.iter().enumerate() {
            for k in 0..2 {
                let k = (k + round) % 2;
                let kind = kinds[k];
                let server = target.start(kind)?;
                eprintln!("round {} {:?} on {}", round + 1, scenario, kind.name());
                let report = run_one(&server, target, scenario, a).await?;
                report.print();
                results[s][k].push(report);
                drop(server);
            }
        }
    }
    println!();
    println!("| scenario | figure | bubble | node | bubble / node |");
    println!("|---|---|---:|---:|---:|");
    for (s, per_kind) in results.iter().enumerate() {
        let [ours, theirs] = [average(&per_kind[0]), average(&per_kind[1])];
        let name = format!("{:?}", a.scenarios[s]).to_lowercase();
        for f in &ours.figures {
            if f.better == Better::Neither && f.name != "offered deliveries/s" {
                continue;
            }
            let other = theirs.get(&f.name).unwrap_or(f64::NAN);
            let ratio = if other != 0.0 && other.is_finite() && f.value.is_finite() {
                format!("{:.2}", f.value / other)
            } else {
                "-".into()
            };
            let unit = if f.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", f.unit)
            };
            println!(
                "| {name} | {}{unit} | {} | {} | {ratio} |",
                f.name,
                fmt(f.value),
                fmt(other)
            );
        }
    }
    Ok(())
}

/// Figures averaged over rounds.
fn average(reports: &[Report]) -> Report {
    let Some(first) = reports.first() else {
        return Report::default();
    };
    let mut out = first.clone();
    for f in &mut out.figures {
        let values: Vec<f64> = reports.iter().filter_map(|r| r.get(&f.name)).collect();
        f.value = values.iter().sum::<f64>() / values.len() as f64;
    }
    out
}
