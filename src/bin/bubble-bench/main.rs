//! `bubble-bench`: a load generator for the Bubble server, and a comparison with two references:
//! the Node.js server in `bench/node-reference/` and a minimal fan-out server of its own
//! ([`floor`]).
//!
//! Every simulated client is one raw websocket speaking socket.io itself ([`sio`]), driven by
//! one task, so that tens of thousands fit in this process. Latencies go to HDR histograms
//! ([`report`]); the server's CPU and memory are read from `/proc` ([`server`]). One module per
//! scenario: [`fanout`] (and `step`), [`cost`], [`single`], [`ingest`], [`idle`], [`list`];
//! [`compare`] runs them against bubble and the references.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod compare;
mod cost;
mod fanout;
mod floor;
mod idle;
mod ingest;
mod list;
mod report;
mod server;
mod single;
mod sio;

use server::{Kind, Server};
use sio::Eio;

/// Load generator for the Bubble socket.io server.
///
/// By default each run starts its own server: the `bubble` binary next to this one (or
/// `--server`) on 127.0.0.1, a free port and a fresh SQLite file, stopped afterwards (`--start`
/// starts a reference instead). With `--url` it drives a server that is already running instead
/// (give `--pid` for its CPU and memory). Traffic only ever goes to the server's address; every
/// run is bounded in time.
#[derive(Parser)]
#[command(name = "bubble-bench", version)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Drive the server already running at this URL (e.g. http://127.0.0.1:3000) instead of
    /// starting one.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Process id of the server at `--url`, for its CPU time and memory from /proc.
    #[arg(long, global = true, requires = "url")]
    pid: Option<u32>,
    /// The `bubble` binary to start [default: `bubble` next to this executable].
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Database of a started `bubble` [default: a fresh SQLite file in a temporary directory].
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Engine.IO generation of the simulated clients: 4 (socket.io-client 3+) or 3 (1.x/2.x).
    #[arg(long, global = true, value_enum, default_value = "4")]
    eio: Eio,
    /// The server a scenario starts (not `compare`, which starts them all). `floor` knows only
    /// `create_room`, `join_room` and `add_message`: fit for fanout, step, cost and single.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "bubble",
        conflicts_with = "url"
    )]
    start: Kind,
    /// The Node.js reference's directory (with `npm ci` done).
    #[arg(long, global = true, default_value = "bench/node-reference")]
    node_dir: PathBuf,
}

impl Target {
    fn bubble_binary(&self) -> PathBuf {
        self.server.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join("bubble")))
                .unwrap_or_else(|| PathBuf::from("bubble"))
        })
    }

    /// The server to drive: the one at `--url`, or a fresh one of `--start`.
    fn server(&self) -> anyhow::Result<Server> {
        match &self.url {
            Some(url) => Ok(Server::existing(url, self.pid)),
            None => self.start(self.start),
        }
    }

    /// Starts a fresh server of `kind`.
    fn start(&self, kind: Kind) -> anyhow::Result<Server> {
        match kind {
            Kind::Bubble => {
                Server::start_bubble(&self.bubble_binary(), self.database_url.as_deref())
            }
            Kind::Node => Server::start_node(&self.node_dir),
            Kind::Floor => Server::start_floor(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Rooms of members sending at a set rate: deliveries/s, send-to-receive latency, errors,
    /// server CPU, CPU per delivery and peak RSS.
    Fanout(fanout::FanoutArgs),
    /// Fan-out at a fixed moderate load (20 rooms x 50 members, one sender per room at 10/s):
    /// server CPU time per delivery.
    Cost(cost::CostArgs),
    /// One sender: K messages in flight alone in a room (acks/s, ack latency), or with `--rate`
    /// an open loop into a room of `--members` (delivery latency).
    Single(single::SingleArgs),
    /// Senders alone in their rooms, each sending as fast as acknowledged: stored messages/s.
    Ingest(ingest::IngestArgs),
    /// Idle connections with `bubble=<uuid>` tokens: server RSS per connection.
    Idle(idle::IdleArgs),
    /// Rooms full of messages, clients polling `list_rooms`: answer latency and server CPU.
    List(list::ListArgs),
    /// Fan-out stepped up until the server saturates: the highest delivery rate, the last step
    /// whose p99 was under a threshold, and the latency at half the highest rate.
    Step(fanout::StepArgs),
    /// The scenarios against `bubble` and the references (`--against`), alternating, as a table.
    Compare(compare::CompareArgs),
    /// The floor reference server, until killed (started by `--start floor` and `compare`).
    #[command(hide = true)]
    FloorServer(floor::FloorArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let t = &cli.target;
        let report = match &cli.command {
            Command::Fanout(a) => fanout::run(&t.server()?, t.eio, a).await?,
            Command::Cost(a) => cost::run(&t.server()?, t.eio, a).await?,
            Command::Single(a) => single::run(&t.server()?, t.eio, a).await?,
            Command::Ingest(a) => ingest::run(&t.server()?, t.eio, a).await?,
            Command::Idle(a) => idle::run(&t.server()?, t.eio, a).await?,
            Command::List(a) => list::run(&t.server()?, t.eio, a).await?,
            Command::Step(a) => fanout::step(&t.server()?, t.eio, a).await?,
            Command::Compare(a) => {
                compare::run(t, a).await?;
                return Ok(());
            }
            Command::FloorServer(a) => {
                floor::serve(a).await?;
                return Ok(());
            }
        };
        report.print();
        anyhow::Ok(())
    })
}
