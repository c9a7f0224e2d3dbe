use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use bubble_server::auth::{accounts, username};
use bubble_server::config::{Config, DatabaseArgs};
use bubble_server::store::Store;
use bubble_server::telemetry::{LogFormat, Logging};

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
    /// Copy a SQLite database to a new file, consistently, also while a server is using it
    /// (for PostgreSQL, use `pg_dump`). Restore by serving the copy.
    Backup {
        /// The new file; an existing file is never overwritten.
        file: std::path::PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Print the bcrypt hash of a password read from standard input, for
    /// `--admin-password-hash`.
    AdminHash,
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
    ignore_file_size_signal();
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.serve).await,
        Some(Command::Serve(config)) => run(*config).await,
        Some(Command::Migrate(db)) => {
            let _log = bubble_server::telemetry::init(&db.log, LogFormat::Text, false);
            bubble_server::store::Store::connect(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Counsellor(command)) => {
            // A one-line message for a person at a terminal, not a debug report.
            if let Err(e) = counsellor(command).await {
                let _ = writeln!(std::io::stderr(), "error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::AdminHash) => {
            let hash = bubble_server::admin::hash_password(&read_password()?)?;
            writeln!(std::io::stdout(), "{hash}")?;
            Ok(())
        }
        Some(Command::Backup { file, db }) => {
            let url = db.database_url;
            let copied = tokio::task::spawn_blocking(move || {
                bubble_server::store::backup::sqlite(&url, &file).map(|size| (file, size))
            })
            .await?;
            match copied {
                Ok((file, size)) => {
                    writeln!(
                        std::io::stdout(),
                        "backed up to {} ({size} bytes)",
                        file.display()
                    )?;
                    Ok(())
                }
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

/// Output goes to standard output; a closed one (`| head`) ends the command with an error.
async fn counsellor(command: CounsellorCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match command {
        CounsellorCommand::Add { username, name, db } => {
            username::normalize(&username)?;
            let (store, _log) = open(&db).await?;
            let password = read_password()?;
            let account = accounts::add(&store, &username, &name, &password).await?;
            writeln!(
                out,
                "added counsellor {} ({})",
                account.username, account.name
            )?;
        }
        CounsellorCommand::List { db } => {
            let (store, _log) = open(&db).await?;
            writeln!(out, "username\tname\tcreated")?;
            for a in store.accounts().list().await? {
                let created = chrono::DateTime::from_timestamp_millis(a.created_at)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                writeln!(out, "{}\t{}\t{created}", a.username, a.name)?;
            }
        }
        CounsellorCommand::Remove(UserArgs { username, db }) => {
            let (store, _log) = open(&db).await?;
            let account = accounts::remove(&store, &username).await?;
            writeln!(out, "removed counsellor {}", account.username)?;
        }
        CounsellorCommand::Passwd(UserArgs { username, db }) => {
            username::normalize(&username)?;
            let (store, _log) = open(&db).await?;
            let password = read_password()?;
            let account = accounts::set_password(&store, &username, &password).await?;
            writeln!(
                out,
                "password changed for {}; its API tokens and sessions are revoked",
                account.username
            )?;
        }
    }
    Ok(())
}

/// The store, and the log, which lasts as long as what it returns is kept.
async fn open(db: &DatabaseArgs) -> anyhow::Result<(Store, Logging)> {
    // Migration progress is noise next to a command's own output.
    let log = bubble_server::telemetry::init(
        &format!("{},sea_orm_migration=warn", db.log),
        LogFormat::Text,
        false,
    );
    let store = Store::connect(db)
        .await
        .with_context(|| format!("opening the database {}", db.database_url))?;
    Ok((store, log))
}

/// One line of standard input without its line ending. Prompts (on standard error) only when a
/// person is typing; the echo is not hidden.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let mut prompt = std::io::stderr();
        write!(prompt, "password: ")?;
        prompt.flush()?;
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
    let log =
        bubble_server::telemetry::init(&config.db.log, config.log_format, config.log_message_text);
    keep_large_buffers();
    match bubble_server::serve(config).await? {
        bubble_server::Stopped::Drained => Ok(()),
        // Returning would drop the runtime, which waits for every blocking task to end. The
        // log's lines still queued (what was cut short) are written out first.
        bubble_server::Stopped::CutShort => {
            drop(log);
            std::process::exit(1)
        }
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

/// A write past the process's file size limit (`ulimit -f`, RLIMIT_FSIZE) would kill the server
/// with SIGXFSZ; ignored, the write fails with EFBIG instead, like a full disk: the transaction
/// it belongs to fails and is answered `internal_error`, and the server carries on once the file
/// may grow again.
#[cfg(unix)]
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler and touches no memory.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(not(unix))]
fn ignore_file_size_signal() {}
