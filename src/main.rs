use clap::{Parser, Subcommand};

use bubble::config::{Config, DatabaseArgs};

/// Socket.io server for the Bubble peer-support apps and TinCan group chat.
#[derive(Parser)]
#[command(
    name = "bubble",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the apps (the default when no command is given).
    Serve(Config),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.serve).await,
        Some(Command::Serve(config)) => run(config).await,
        Some(Command::Migrate(db)) => {
            bubble::telemetry::init(&db.log);
            bubble::store::Store::connect(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    bubble::telemetry::init(&config.db.log);
    bubble::serve(config).await
}
