//! Logging, set up once per process, to standard error; it never stands in the way of serving.
//!
//! - Nothing waits for the log: lines go to a queue that a thread of its own writes out
//!   (tracing-appender's non-blocking writer, lossy). A reader that stalls fills the pipe and then
//!   the queue, and lines are dropped instead of blocking the handlers that log them.
//! - Nothing panics for the log: a write that fails (a reader that is gone) drops the line.
//!   tracing-subscriber's own report of such a failure is an `eprintln!`, which panics on a closed
//!   standard error, so it is off. A panic anywhere is logged like any other line, not written
//!   to standard error directly.
//! - Dropped lines are counted ([`dropped_lines`]); once a line can be written again, it is
//!   preceded by one that says how many were lost.
//! - Text (colours only on a terminal, and not with `NO_COLOR`), or with `--log-format json` one
//!   JSON object per line, the event's fields (`sid`, `ns`, `event`, `code`, …) at its top level.
//! - What clients send stays out of the log: socket.io and engine.io log every packet (message
//!   text, handshake tokens) at debug, and the websocket library every frame at trace, so they
//!   are held at `info` whatever the filter asks for; our HTTP request spans name the path
//!   without its query (which may carry `bubble=` or `token=`). `--log-message-text` lifts this,
//!   for debugging on a machine of one's own.
use std::io::{self, IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Level, Metadata};

pub use crate::config::LogFormat;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Lines queued at most; more are dropped until the writer catches up.
const QUEUED_LINES: usize = 16_384;

/// Crates that log what clients send at debug or trace, held at `info`.
const PACKET_TARGETS: [&str; 8] = [
    "socketioxide",
    "socketioxide_core",
    "socketioxide_parser_common",
    "socketioxide_redis",
    "socketioxide_postgres",
    "engineioxide",
    "tungstenite",
    "tokio_tungstenite",
];

/// Writes that failed since the process started.
static FAILED_WRITES: AtomicU64 = AtomicU64::new(0);
/// Lines dropped because the queue was full.
static QUEUE: OnceLock<ErrorCounter> = OnceLock::new();
/// Whether `--log-message-text` was given.
static MESSAGE_TEXT: OnceLock<bool> = OnceLock::new();

/// Keeps the log writer running; dropping it writes out what is queued (waiting a second at
/// most). Hold it until the process ends.
#[must_use = "the log stops when this is dropped"]
pub struct Logging(Option<WorkerGuard>);

impl Drop for Logging {
    fn drop(&mut self) {
        // tracing-appender prints (and so may panic) when the writer cannot be told to stop.
        let guard = self.0.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(guard)));
    }
}

/// Sets up logging with `default_filter` (tracing `EnvFilter` syntax) unless `RUST_LOG` is set,
/// in `format`. `message_text`: let through what clients send (`--log-message-text`). A second
/// call (tests, embedding) keeps the first set-up.
pub fn init(default_filter: &str, format: LogFormat, message_text: bool) -> Logging {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("bubble-log")
        .finish(Counting::new(io::stderr()));
    let colour =
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer.clone())
        .log_internal_errors(false);
    let lines = match format {
        LogFormat::Text => lines.with_ansi(colour).boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed(),
    };
    let lines = lines.with_filter(FilterFn::new(move |meta| {
        message_text || quiet_enough(meta)
    }));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init()
        .is_ok();
    if !installed {
        return Logging(None);
    }
    let _ = QUEUE.set(writer.error_counter());
    let _ = MESSAGE_TEXT.set(message_text);
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!("{info}\n{backtrace}");
        } else {
            tracing::error!("{info}");
        }
    }));
    Logging(Some(guard))
}

/// Whether a line may be logged without `--log-message-text`: one of [`PACKET_TARGETS`] only
/// at `info` or above, whichever of their modules it comes from.
fn quiet_enough(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO
        || !PACKET_TARGETS.iter().any(|crate_name| {
            meta.target()
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// Whether our own log lines may show what people write (`--log-message-text`).
pub fn message_text() -> bool {
    MESSAGE_TEXT.get().copied().unwrap_or(false)
}

/// The message a panic was raised with, when it is text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(not text)"
    }
}

/// Log lines lost since the process started: the queue was full or the write failed.
pub fn dropped_lines() -> u64 {
    let queue = QUEUE.get().map_or(0, |q| q.dropped_lines() as u64);
    FAILED_WRITES.load(Ordering::Relaxed).saturating_add(queue)
}

/// The log's destination as the writer thread sees it: a failed write is counted and reported
/// done, so the line is dropped and nothing upstream reacts. The first line written after some
/// were lost is preceded by a line saying how many.
struct Counting<W> {
    inner: W,
    /// Lost lines already reported.
    reported: u64,
}

impl<W: Write> Counting<W> {
    fn new(inner: W) -> Self {
        Self { inner, reported: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let lost = dropped_lines();
        if lost > self.reported {
            let note = format!(
                "{} WARN bubble_server::telemetry: {} log lines lost (standard error full or closed)\n",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                lost - self.reported,
            );
            if self.inner.write_all(note.as_bytes()).is_ok() {
                self.reported = lost;
            }
        }
        if self.inner.write_all(buf).is_err() {
            FAILED_WRITES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Fails while `broken` is set; keeps what it was given otherwise.
    #[derive(Clone, Default)]
    struct Pipe {
        broken: Arc<Mutex<bool>>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if *self.broken.lock().unwrap() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            if *self.broken.lock().unwrap() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            Ok(())
        }
    }

    #[test]
    fn failed_writes_are_dropped_counted_and_reported_later() {
        let pipe = Pipe::default();
        let mut log = Counting::new(pipe.clone());
        log.write_all(b"one\n").unwrap();
        let before = dropped_lines();
        *pipe.broken.lock().unwrap() = true;
        log.write_all(b"two\n").unwrap();
        log.write_all(b"three\n").unwrap();
        log.flush().unwrap();
        assert!(dropped_lines() >= before + 2);
        *pipe.broken.lock().unwrap() = false;
        log.write_all(b"four\n").unwrap();
        let got = String::from_utf8(pipe.got.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 3, "{got}");
        assert_eq!(lines[0], "one");
        assert!(lines[1].ends_with("log lines lost (standard error full or closed)"));
        assert_eq!(lines[2], "four");
    }
}
