//! `compare`: the same scenarios against `bubble` and each reference (`--against`: the Node.js
//! server, the floor server), each run on a fresh server, taking turns (and rotating who goes
//! first every round) so that none always gets the warmer machine. Prints a Markdown table with
//! the ratio of bubble's figure to each reference's.
use crate::cost::CostArgs;
use crate::fanout::FanoutArgs;
use crate::idle::IdleArgs;
use crate::ingest::IngestArgs;
use crate::list::ListArgs;
use crate::report::{Better, Report, fmt};
use crate::server::{Kind, Server};
use crate::single::SingleArgs;
use crate::{Target, cost, fanout, idle, ingest, list, single};

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// References to compare bubble with, each taking turns with it. The floor server knows only
    /// `create_room`, `join_room` and `add_message`, so it runs fanout, cost and single only.
    #[arg(long, value_delimiter = ',', default_value = "node")]
    pub against: Vec<Kind>,
    /// Scenarios to run, in order (`single` is two runs: K in flight, and open loop).
    #[arg(long, value_delimiter = ',', default_value = "fanout,ingest,idle,list")]
    pub scenarios: Vec<Scenario>,
    /// Rounds; figures are averaged over them.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Seconds measured per run (fanout, single, ingest, list).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// fanout: rooms.
    #[arg(long, default_value_t = 20)]
    pub fanout_rooms: usize,
    /// fanout: members per room.
    #[arg(long, default_value_t = 50)]
    pub fanout_members: usize,
    /// fanout: members of each room who send [default: all].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub fanout_senders_per_room: Option<u16>,
    /// fanout: messages per sender per second. The default offers 400,000 deliveries/s, more
    /// than either server delivers here, so deliveries/s is each one's maximum.
    #[arg(long, default_value_t = 8.0)]
    pub fanout_rate: f64,
    /// cost: seconds measured (its other figures are `cost`'s defaults).
    #[arg(long, default_value_t = 20)]
    pub cost_duration: u64,
    /// single: messages in flight in the closed loop.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub single_in_flight: u16,
    /// single: members of the room in the open loop.
    #[arg(long, default_value_t = 50)]
    pub single_members: usize,
    /// single: messages per second in the open loop.
    #[arg(long, default_value_t = 500.0)]
    pub single_rate: f64,
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
    Cost,
    Single,
    Ingest,
    Idle,
    List,
}

impl Scenario {
    fn cases(self) -> &'static [Case] {
        match self {
            Scenario::Fanout => &[Case::Fanout],
            Scenario::Cost => &[Case::Cost],
            Scenario::Single => &[Case::SingleInFlight, Case::SingleOpen],
            Scenario::Ingest => &[Case::Ingest],
            Scenario::Idle => &[Case::Idle],
            Scenario::List => &[Case::List],
        }
    }
}

/// One run of a scenario, with its arguments from [`CompareArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Fanout,
    Cost,
    SingleInFlight,
    SingleOpen,
    Ingest,
    Idle,
    List,
}

impl Case {
    fn label(self, a: &CompareArgs) -> String {
        match self {
            Case::Fanout => "fanout".into(),
            Case::Cost => "cost".into(),
            Case::SingleInFlight => format!("single, {} in flight", a.single_in_flight),
            Case::SingleOpen => format!(
                "single, {} members at {}/s",
                a.single_members, a.single_rate
            ),
            Case::Ingest => "ingest".into(),
            Case::Idle => "idle".into(),
            Case::List => "list".into(),
        }
    }

    /// Whether `kind` can serve this run.
    fn runs_on(self, kind: Kind) -> bool {
        kind != Kind::Floor
            || matches!(
                self,
                Case::Fanout | Case::Cost | Case::SingleInFlight | Case::SingleOpen
            )
    }
}

async fn run_one(
    server: &Server,
    target: &Target,
    case: Case,
    a: &CompareArgs,
) -> anyhow::Result<Report> {
    let eio = target.eio;
    match case {
        Case::Fanout => {
            let args = FanoutArgs {
                rooms: a.fanout_rooms,
                members: a.fanout_members,
                senders_per_room: a.fanout_senders_per_room,
                rate: a.fanout_rate,
                duration: a.duration,
                warmup: 2,
                message_bytes: 64,
            };
            fanout::run(server, eio, &args).await
        }
        Case::Cost => {
            let args = CostArgs {
                rooms: 20,
                members: 50,
                senders_per_room: 1,
                rate: 10.0,
                duration: a.cost_duration,
                warmup: 2,
                message_bytes: 64,
            };
            cost::run(server, eio, &args).await
        }
        Case::SingleInFlight | Case::SingleOpen => {
            let args = SingleArgs {
                in_flight: a.single_in_flight,
                rate: (case == Case::SingleOpen).then_some(a.single_rate),
                members: a.single_members,
                duration: a.duration,
                warmup: 2,
                message_bytes: 64,
            };
            single::run(server, eio, &args).await
        }
        Case::Ingest => {
            let args = IngestArgs {
                senders: a.ingest_senders,
                duration: a.duration,
                warmup: 2,
                message_bytes: 64,
            };
            ingest::run(server, eio, &args).await
        }
        Case::Idle => {
            let args = IdleArgs {
                connections: a.idle_connections,
                concurrency: 64,
                settle: 5,
            };
            idle::run(server, eio, &args).await
        }
        Case::List => {
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
        "compare starts every server itself: no --url"
    );
    anyhow::ensure!(
        !a.against.contains(&Kind::Bubble),
        "--against names the references: node, floor"
    );
    // The columns: bubble, then each reference once.
    let mut kinds = vec![Kind::Bubble];
    for &k in &a.against {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let cases: Vec<Case> = a
        .scenarios
        .iter()
        .flat_map(|s| s.cases())
        .copied()
        .collect();
    // results[case][column] = the reports of every round
    let mut results = vec![vec![Vec::<Report>::new(); kinds.len()]; cases.len()];
    for round in 0..a.rounds {
        for (c, &case) in cases.iter().enumerate() {
            for i in 0..kinds.len() {
                let column = (i + round) % kinds.len();
                let kind = kinds[column];
                if !case.runs_on(kind) {
                    if round == 0 {
                        eprintln!("{} skipped on {}", case.label(a), kind.name());
                    }
                    continue;
                }
                let server = target.start(kind)?;
                eprintln!("round {} {} on {}", round + 1, case.label(a), kind.name());
                let report = run_one(&server, target, case, a).await?;
                report.print();
                results[c][column].push(report);
                drop(server);
            }
        }
    }
    print_table(a, &cases, &kinds, &results);
    Ok(())
}

/// Bubble's figures (those with a better direction, and the offered rate) next to each
/// reference's, and the ratio bubble / reference for each.
fn print_table(a: &CompareArgs, cases: &[Case], kinds: &[Kind], results: &[Vec<Vec<Report>>]) {
    let references = &kinds[1..];
    let mut header = String::from("| scenario | figure |");
    let mut rule = String::from("|---|---|");
    for k in kinds {
        header += &format!(" {} |", k.name());
        rule += "---:|";
    }
    for k in references {
        header += &format!(" bubble / {} |", k.name());
        rule += "---:|";
    }
    println!();
    println!("{header}");
    println!("{rule}");
    for (case, per_kind) in cases.iter().zip(results) {
        let averages: Vec<Report> = per_kind.iter().map(|r| average(r)).collect();
        let name = case.label(a);
        for f in &averages[0].figures {
            if f.better == Better::Neither && f.name != "offered deliveries/s" {
                continue;
            }
            let unit = if f.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", f.unit)
            };
            let theirs: Vec<f64> = averages[1..]
                .iter()
                .map(|r| r.get(&f.name).unwrap_or(f64::NAN))
                .collect();
            let mut row = format!("| {name} | {}{unit} | {} |", f.name, fmt(f.value));
            for other in &theirs {
                row += &format!(" {} |", fmt(*other));
            }
            for &other in &theirs {
                let ratio = if other != 0.0 && other.is_finite() && f.value.is_finite() {
                    format!("{:.2}", f.value / other)
                } else {
                    "-".into()
                };
                row += &format!(" {ratio} |");
            }
            println!("{row}");
        }
    }
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
