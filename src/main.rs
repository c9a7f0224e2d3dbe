use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use bubble::auth::{accounts, username};
use bubble::config::{Config, DatabaseArgs};
use bubble::store::Store;

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
    Serve(Box<Config>),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage counsellor accounts (who may sign in on `/counsellor`).
    #[command(subcommand)]
    Counsellor(CounsellorCommand),
}

/// Passwords are read from standard input, one line, never from the command line (where other
/// users of the machine could see them in the process list).
#[derive(Subcommand)]
enum CounsellorCommand {
    /// Create an account; the password is read from standard input.
    Add {
        /// 3 to 32 of a-z 0-9 _ . - (case-insensitive).
        username: String,
        /// Display name shown to users.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List accounts: username, name, created.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove an account, its API tokens and sessions.
    Remove(UserArgs),
    /// Set a new password (read from standard input); signs the account out everywhere.
    Passwd(UserArgs),
}

#[derive(Args)]
struct UserArgs {
    username: String,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.serve).await,
        Some(Command::Serve(config)) => run(*config).await,
        Some(Command::Migrate(db)) => {
            bubble::telemetry::init(&db.log);
            bubble::store::Store::connect(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Counsellor(command)) => {
            // A one-line message for a person at a terminal, not a debug report.
            if let Err(e) = counsellor(command).await {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn counsellor(command: CounsellorCommand) -> anyhow::Result<()> {
    match command {
        CounsellorCommand::Add { username, name, db } => {
            username::normalize(&username)?;
            let store = open(&db).await?;
            let password = read_password()?;
            let account = accounts::add(&store, &username, &name, &password).await?;
            println!("added counsellor {} ({})", account.username, account.name);
        }
        CounsellorCommand::List { db } => {
            let store = open(&db).await?;
            println!("username\tname\tcreated");
            for a in store.list_accounts().await? {
                let created = chrono::DateTime::from_timestamp_millis(a.created_at)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                println!("{}\t{}\t{created}", a.username, a.name);
            }
        }
        CounsellorCommand::Remove(UserArgs { username, db }) => {
            let store = open(&db).await?;
            let account = accounts::remove(&store, &username).await?;
            println!("removed counsellor {}", account.username);
        }
        CounsellorCommand::Passwd(UserArgs { username, db }) => {
            username::normalize(&username)?;
            let store = open(&db).await?;
            let password = read_password()?;
            let account = accounts::set_password(&store, &username, &password).await?;
            println!(
                "password changed for {}; its API tokens and sessions are revoked",
                account.username
            );
        }
    }
    Ok(())
}

async fn open(db: &DatabaseArgs) -> anyhow::Result<Store> {
    // Migration progress is noise next to a command's own output.
    bubble::telemetry::init(&format!("{},sea_orm_migration=warn", db.log));
    Store::connect(db)
        .await
        .with_context(|| format!("opening the database {}", db.database_url))
}

/// One line of standard input without its line ending. Prompts (on standard error) only when a
/// person is typing; the echo is not hidden.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    if stdin.lock().read_line(&mut line)? == 0 {
        bail!("no password on standard input");
    }
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}

async fn run(config: Config) -> anyhow::Result<()> {
    bubble::telemetry::init(&config.db.log);
    keep_large_buffers();
    match bubble::serve(config).await? {
        bubble::Stopped::Drained => Ok(()),
        // Returning would drop the runtime, which waits for every blocking task to end.
        bubble::Stopped::CutShort => std::process::exit(1),
    }
}

/// Large answers (a `list_rooms` of 1,000 rooms with 100 messages each is 35 MiB, copied three
/// times on its way to the socket) would each be mapped fresh and unmapped again, a page fault
/// every 4 KiB on every poll: glibc serves them from its heaps instead, and keeps up to 128 MiB
/// free there before giving memory back. `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` in the
/// environment leave glibc as they set it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_buffers() {
    if std::env::var_os("MALLOC_MMAP_MAX_").is_some()
        || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
    {
        return;
    }
    // SAFETY: mallopt only sets allocator parameters, both to values glibc accepts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_buffers() {}
