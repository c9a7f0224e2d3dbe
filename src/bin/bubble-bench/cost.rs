//! `cost`: what a delivery costs the server at a fixed, moderate load that every server keeps up
//! with: 20 rooms of 50 members, one sender per room at 10 messages/s (10,000 deliveries/s),
//! 20 s measured. It is [`fanout`] with these defaults; the figure to read is the
//! server's CPU time per delivery, which (unlike deliveries/s at saturation) does not depend on
//! how much of the shared cores the load generator leaves to the server.
use crate::fanout::{self, FanoutArgs};
use crate::report::Report;
use crate::server::Server;
use crate::sio::Eio;

#[derive(clap::Args, Debug, Clone)]
pub struct CostArgs {
    /// Number of rooms.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Members per room (1 to 100), every one of whom receives every message.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Members of each room who send.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub senders_per_room: u16,
    /// Messages each sender sends per second (open loop).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Characters of message text.
    #[arg(long, default_value_t = 64)]
    pub message_bytes: usize,
}

impl CostArgs {
    pub fn fanout(&self) -> FanoutArgs {
        FanoutArgs {
            rooms: self.rooms,
            members: self.members,
            senders_per_room: Some(self.senders_per_room),
            rate: self.rate,
            duration: self.duration,
            warmup: self.warmup,
            message_bytes: self.message_bytes,
        }
    }
}

pub async fn run(server: &Server, eio: Eio, args: &CostArgs) -> anyhow::Result<Report> {
    let fanout = args.fanout();
    let mut report = fanout::run(server, eio, &fanout).await?;
    report.scenario = format!("cost: {}", fanout.describe());
    Ok(report)
}
