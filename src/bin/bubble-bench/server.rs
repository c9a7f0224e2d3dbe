//! The server under test: one the bench starts (the `bubble` binary or the Node.js reference, on
//! a fresh SQLite file and a free port, or the floor reference, this executable's
//! `floor-server`), or one already running at `--url`. Its CPU time and memory come from `/proc`.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};

/// Which implementation to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The `bubble` binary.
    Bubble,
    /// The Node.js reference in `bench/node-reference/`.
    Node,
    /// The minimal fan-out server in this executable (`floor-server`): no database, no checks.
    Floor,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bubble => "bubble",
            Kind::Node => "node",
            Kind::Floor => "floor",
        }
    }
}

/// A server to drive.
pub struct Server {
    pub url: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Server {
    /// A server that is already running; `pid` enables CPU and memory figures.
    pub fn existing(url: &str, pid: Option<u32>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            pid,
            child: None,
            dir: None,
        }
    }

    /// Starts `bubble serve` on 127.0.0.1 port 0 with a fresh SQLite file (unless
    /// `database_url` is given), and waits for its `listening on` line.
    pub fn start_bubble(binary: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        let dir = fresh_dir()?;
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
        };
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--log", "error"])
            .arg("--database-url")
            .arg(url);
        Self::spawn(cmd, Some(dir)).with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                binary.display()
            )
        })
    }

    /// Starts the Node.js reference (`node DIR/server.js`) on port 0 with a fresh SQLite file.
    pub fn start_node(dir: &Path) -> anyhow::Result<Self> {
        let data = fresh_dir()?;
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("server.js"))
            .args(["--port", "0", "--database"])
            .arg(data.join("reference.db"));
        Self::spawn(cmd, Some(data)).with_context(|| {
            format!(
                "starting the Node.js reference (run npm ci in {})",
                dir.display()
            )
        })
    }

    /// Starts the floor reference: this executable's hidden `floor-server` on 127.0.0.1 port 0.
    pub fn start_floor() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let mut cmd = Command::new(&exe);
        cmd.args(["floor-server", "--port", "0"]);
        Self::spawn(cmd, None).with_context(|| format!("starting {} floor-server", exe.display()))
    }

    /// Starts `cmd` and waits for its `listening on ADDR` line; `dir` is removed when it stops.
    fn spawn(mut cmd: Command, dir: Option<PathBuf>) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        break addr.to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("the server exited before listening");
                }
            }
        };
        // Keep reading its standard output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            url: format!("http://{addr}"),
            pid: Some(child.id()),
            child: Some(child),
            dir,
        })
    }

    /// CPU time and memory now.
    pub fn sample(&self) -> Option<ProcSample> {
        self.pid.and_then(ProcSample::read)
    }

    /// Resets the peak resident size (`VmHWM`) so that the next peak is this run's.
    pub fn reset_peak(&self) {
        if let Some(pid) = self.pid {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn fresh_dir() -> anyhow::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bubble-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A process's CPU time and memory at one moment, from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    at: Instant,
    /// User plus system time, in clock ticks.
    cpu_ticks: u64,
    /// Resident size now, KiB.
    pub rss_kib: u64,
    /// Peak resident size since start or the last [`Server::reset_peak`], KiB.
    pub peak_kib: u64,
}

/// `USER_HZ`: 100 on every Linux architecture this runs on.
const TICKS_PER_SEC: f64 = 100.0;

impl ProcSample {
    pub fn read(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (from 1).
        let cpu_ticks =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(Self {
            at: Instant::now(),
            cpu_ticks,
            rss_kib: kib("VmRSS:"),
            peak_kib: kib("VmHWM:"),
        })
    }

    /// CPU used between two samples, in percent of one core (200 = both cores of this machine).
    pub fn cpu_percent_since(&self, earlier: &ProcSample) -> f64 {
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        let used = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / TICKS_PER_SEC;
        100.0 * used / secs
    }
}
