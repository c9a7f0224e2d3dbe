//! The JavaScript integration suite (`tests/js/*.test.mjs`, node's built-in test runner) as one
//! cargo test per file and database: `sqlite::core_flow`, `postgres::core_flow`, ...
//!
//! Each test runs `node --test` on its one file against the `bubble` binary cargo built for this
//! test, with socket.io-client 1.x, 2.x and 4.x; `tests/js/harness.mjs` gives every server it
//! starts a fresh SQLite file or, under `postgres::`, a fresh database on `BUBBLE_TEST_PG`. The
//! files are listed when the suite runs, so a new file is a new test with no Rust to edit. The
//! harness is libtest-mimic's (`harness = false` in Cargo.toml): cargo test's command line
//! (filter, `--skip`, `--exact`, `--list`, `--ignored`, `--test-threads`) and its output, down to
//! the closing `test result:` line.
//!
//! The contract:
//! - A file passes when node exits with success. Node's output (its spec reporter: every subtest,
//!   then each failure with its error, and the server log tails the harness prints for a failed
//!   subtest) is kept and shown under the file's name in `failures:`; with `--nocapture` it goes
//!   straight through as it comes instead.
//! - `postgres::` tests are ignored, saying why, unless `BUBBLE_TEST_PG` is set.
//! - A file in which nothing ran, every test having skipped itself (the cluster tests on SQLite),
//!   is reported ignored with node's reason, not passed.
//! - Two files run at a time, as `node --test --test-concurrency=2` did: each starts servers of
//!   its own, and the machines have few cores. `--test-threads` or `RUST_TEST_THREADS` overrides.
//! - Node.js 20+ and npm are needed: their absence fails every test instead of skipping it. `npm
//!   ci` runs once, before the first file, when the packages are not installed or
//!   `package-lock.json` changed since they were.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Files run at once unless `--test-threads` or `RUST_TEST_THREADS` says otherwise.
const DEFAULT_THREADS: usize = 2;

/// Where the suite's files are, relative to the package root.
const SUITE_DIR: &str = "tests/js";

#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// The first part of a test's name.
    fn prefix(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        let from_env = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n: &usize| n > 0);
        args.test_threads = Some(from_env.unwrap_or(DEFAULT_THREADS));
    }
    let nocapture = args.nocapture;
    let postgres = std::env::var("BUBBLE_TEST_PG")
        .ok()
        .filter(|url| !url.is_empty());

    let trials = match suite_files() {
        Ok(files) => [Db::Sqlite, Db::Postgres]
            .into_iter()
            .flat_map(|db| {
                let postgres = postgres.clone();
                files.iter().map(move |(name, file)| {
                    let file = file.clone();
                    let postgres = postgres.clone();
                    Trial::ignorable_test(format!("{}::{name}", db.prefix()), move || {
                        run_file(&file, db, postgres.as_deref(), nocapture)
                    })
                })
            })
            .collect(),
        Err(e) => vec![Trial::test("list_files", move || Err(e.into()))],
    };
    libtest_mimic::run(&args, trials).exit();
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The suite's files, `(name, path relative to the package root)`, in name order: `core_flow`
/// for `tests/js/core_flow.test.mjs`.
fn suite_files() -> Result<Vec<(String, PathBuf)>, String> {
    let dir = root().join(SUITE_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|f| f.strip_suffix(".test.mjs")) else {
            continue;
        };
        files.push((name.to_owned(), Path::new(SUITE_DIR).join(&file_name)));
    }
    files.sort();
    Ok(files)
}

/// Checks Node.js and installs the clients, once for the whole run; every test gets the answer.
fn prepared() -> Result<(), Failed> {
    static PREPARED: OnceLock<Result<(), String>> = OnceLock::new();
    PREPARED.get_or_init(prepare).clone().map_err(Failed::from)
}

/// Whether `node_modules` holds what `package-lock.json` lists: npm writes its own copy of the
/// lock there on install, so one older than the lock (or none) means the lock changed since.
fn installed_as_locked() -> bool {
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = modified(root().join("package-lock.json"));
    let installed = modified(root().join("node_modules").join(".package-lock.json"));
    matches!((lock, installed), (Some(lock), Some(installed)) if installed >= lock)
}

fn prepare() -> Result<(), String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node is required for the integration suite: {e}"))?;
    let version = String::from_utf8_lossy(&node.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "Node.js 20 or newer is required, found {version:?}"
        ));
    }
    if !installed_as_locked() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root())
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("could not run `npm ci` (npm is needed for this suite): {e}"))?;
        if !status.success() {
            return Err(format!("npm ci failed: {status}"));
        }
    }
    Ok(())
}

/// Runs one file on one database: node's stdout and stderr in one pipe, kept in order.
fn run_file(
    file: &Path,
    db: Db,
    postgres: Option<&str>,
    nocapture: bool,
) -> Result<Completion, Failed> {
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => match postgres {
            Some(url) => Some(url),
            None => return Ok(Completion::ignored_with("BUBBLE_TEST_PG is not set")),
        },
    };
    prepared()?;

    let command = format!("node --test {}", file.display());
    let (mut reader, writer) =
        std::io::pipe().map_err(|e| format!("could not make a pipe for `{command}`: {e}"))?;
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec"])
        .arg(file)
        .current_dir(root())
        .env("BUBBLE_BIN", env!("CARGO_BIN_EXE_bubble"))
        .stdin(Stdio::null())
        .stdout(
            writer
                .try_clone()
                .map_err(|e| format!("could not make a pipe for `{command}`: {e}"))?,
        )
        .stderr(writer);
    // The servers log at `warn` unless BUBBLE_LOG says otherwise (see tests/js/harness.mjs).
    match pg {
        Some(url) => cmd.env("BUBBLE_TEST_PG", url),
        None => cmd.env_remove("BUBBLE_TEST_PG"),
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not run `{command}`: {e}"))?;
    // The pipe ends when node and everything it started have let go of its writing end; the
    // command holds copies of it until dropped.
    drop(cmd);

    let mut output = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                output.extend_from_slice(&chunk[..n]);
                if nocapture {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&chunk[..n]);
                    let _ = out.flush();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the output of `{command}`: {e}").into()),
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{command}`: {e}"))?;
    let output = String::from_utf8_lossy(&output);

    if !status.success() {
        let verdict = format!("`{command}` failed on {}: {status}", db.name());
        // Under --nocapture the output went through already.
        return Err(if nocapture {
            verdict
        } else {
            format!("{}\n{verdict}", output.trim_end())
        }
        .into());
    }
    Ok(match nothing_ran(&output) {
        Some(reason) => Completion::ignored_with(reason),
        None => Completion::Completed,
    })
}

/// Why nothing ran, when node's closing summary counts no test passed, failed or cancelled: the
/// reason the first skipped test or suite gave, or a plain statement when it gave none.
fn nothing_ran(output: &str) -> Option<String> {
    let count = |label: &str| {
        output.lines().rev().find_map(|line| {
            line.trim_start()
                .strip_prefix("ℹ ")?
                .strip_prefix(label)?
                .strip_prefix(' ')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    let ran = ["pass", "fail", "cancelled"].map(count);
    if ran.iter().any(|n| n != &Some(0)) {
        return None;
    }
    let reason = output
        .lines()
        .filter(|line| line.trim_start().starts_with('﹣'))
        .find_map(|line| line.split_once(" # ").map(|(_, why)| why.trim().to_owned()));
    Some(reason.unwrap_or_else(|| "every test in the file skipped itself".to_owned()))
}
