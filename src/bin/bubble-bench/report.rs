//! Figures: latency histograms and the lines a scenario reports.
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

/// Microseconds since the bench started: the clock embedded in messages.
pub fn now_us(epoch: tokio::time::Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A latency histogram shared by every client task, in microseconds (1 µs to 5 min, 3
/// significant digits). Tasks record into a small local buffer ([`Recorder`]) and merge in
/// batches, so the lock is taken rarely.
#[derive(Clone)]
pub struct Latencies(Arc<Mutex<Histogram<u64>>>);

impl Default for Latencies {
    fn default() -> Self {
        let h = Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid bounds");
        Self(Arc::new(Mutex::new(h)))
    }
}

impl Latencies {
    pub fn recorder(&self) -> Recorder {
        Recorder {
            to: self.clone(),
            buf: Vec::with_capacity(BATCH),
        }
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.0.lock().expect("histogram lock").clone()
    }
}

const BATCH: usize = 256;

/// One task's buffer of latencies; flushed when full and when dropped.
pub struct Recorder {
    to: Latencies,
    buf: Vec<u64>,
}

impl Recorder {
    pub fn record(&mut self, us: u64) {
        self.buf.push(us.max(1));
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut h = self.to.0.lock().expect("histogram lock");
        for us in self.buf.drain(..) {
            h.saturating_record(us);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Whether more of a figure is better, for the ratio column of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

/// One figure of a run.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub better: Better,
}

/// What a scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: String,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            figures: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &str, value: f64, unit: &'static str, better: Better) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value,
            unit,
            better,
        });
    }

    /// p50, p99 and p99.9 (and the maximum) of a latency histogram, in milliseconds.
    pub fn add_latency(&mut self, what: &str, h: &Histogram<u64>) {
        for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            let ms = if h.is_empty() {
                f64::NAN
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            };
            self.add(&format!("{what} {label}"), ms, "ms", Better::Lower);
        }
        let max = if h.is_empty() {
            f64::NAN
        } else {
            h.max() as f64 / 1000.0
        };
        self.add(&format!("{what} max"), max, "ms", Better::Lower);
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }

    pub fn print(&self) {
        println!("{}", self.scenario);
        for f in &self.figures {
            println!("  {:<28} {:>14} {}", f.name, fmt(f.value), f.unit);
        }
    }
}

/// A figure for a table: thousands separated, two decimals below 100.
pub fn fmt(v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    if v.abs() >= 100.0 {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 {
            out.insert(0, '-');
        }
        out
    } else {
        format!("{v:.2}")
    }
}
