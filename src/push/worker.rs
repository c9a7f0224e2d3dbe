//! The push worker: claims due outbox rows, sends them, and settles each from its outcome.
//!
//! Several workers (in one process or several) may run against one database: a claim leases
//! rows (`claimed_until`), so each row is sent by one worker at a time, and a row whose worker
//! died becomes due again when its lease runs out. The normal path therefore sends each push
//! once; only a crash between a provider's answer and the row's update can send one twice.
//!
//! A send that panics counts as a transient failure: its row is put back with a backoff, like
//! any other, and given up on at the same deadline; the worker goes on.
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use entity::push_outbox;
use futures_util::FutureExt;
use sea_orm::DbErr;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::backoff::Backoff;
use super::{Platform, Push, PushMetrics, PushQueue, SendOutcome, Senders};
use crate::clock::now_ms;
use crate::store::Store;

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Rows claimed (and sent concurrently) at a time.
    pub batch: u64,
    /// How long a claim keeps other workers off a row; longer than any send may take.
    pub lease: Duration,
    /// Longest sleep between looks at the outbox when nobody wakes the worker.
    pub poll: Duration,
    pub backoff: Backoff,
    /// A push not delivered this long after it was queued is given up on.
    pub give_up_after: Duration,
    /// Sent and failed rows are deleted this long after they were settled.
    pub keep_done: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(5),
            backoff: Backoff::default(),
            give_up_after: Duration::from_secs(60 * 60),
            keep_done: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Never sleep less than this between looks, so a row another worker holds cannot spin us.
const MIN_SLEEP: Duration = Duration::from_millis(10);
/// How often old sent and failed rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

pub struct Worker {
    store: Store,
    senders: Senders,
    queue: Arc<PushQueue>,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(
        store: Store,
        senders: Senders,
        queue: Arc<PushQueue>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            store,
            senders,
            queue,
            config,
        }
    }

    fn metrics(&self) -> &PushMetrics {
        &self.queue.metrics
    }

    /// Runs until `stop` turns true (or its sender is dropped): sends whatever is due, then
    /// sleeps until the next row is due, a new row is queued, or [`WorkerConfig::poll`] passes.
    /// A batch being sent when `stop` turns is finished and settled first. Database errors are
    /// logged and waited out.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "push worker: claiming failed");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => continue,
                        _ = stop.changed() => return,
                    }
                }
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                self.prune().await;
            }
            let wait = match self.store.push().next_due().await {
                Ok(Some(due)) => {
                    let ms = u64::try_from(due - now_ms()).unwrap_or(0);
                    Duration::from_millis(ms).clamp(MIN_SLEEP, self.config.poll.max(MIN_SLEEP))
                }
                Ok(None) => self.config.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "push worker: reading the outbox failed");
                    self.config.poll
                }
            };
            tokio::select! {
                _ = self.queue.woken() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Claims one batch of due rows, sends them concurrently and settles each. Returns how many
    /// rows it claimed.
    pub async fn run_once(&self) -> Result<usize, DbErr> {
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let rows = self
            .store
            .push()
            .claim(now_ms(), lease_ms, self.config.batch)
            .await?;
        let claimed = rows.len();
        // A send may take no longer than half the lease, so the row is settled before another
        // worker could claim it again.
        let limit = self.config.lease / 2;
        let mut sends = JoinSet::new();
        for row in rows {
            let push = Push::from(&row);
            let sender = self.senders.for_platform(push.platform).clone();
            sends.spawn(async move {
                let send = AssertUnwindSafe(tokio::time::timeout(limit, sender.send(&push)));
                let outcome = match send.catch_unwind().await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => SendOutcome::Retry { after: None },
                    Err(panic) => {
                        let panic = crate::telemetry::panic_message(&*panic);
                        tracing::error!(id = row.id, panic, "push worker: a send panicked");
                        SendOutcome::Retry { after: None }
                    }
                };
                (row, outcome)
            });
        }
        while let Some(done) = sends.join_next().await {
            match done {
                Ok((row, outcome)) => {
                    if let Err(e) = self.settle(&row, outcome).await {
                        // The lease runs out and the row is tried again.
                        tracing::warn!(error = %e, id = row.id, "push worker: settling failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "push worker: a send panicked"),
            }
        }
        Ok(claimed)
    }

    /// Records what became of one attempt.
    async fn settle(&self, row: &push_outbox::Model, outcome: SendOutcome) -> Result<(), DbErr> {
        let now = now_ms();
        let m = self.metrics();
        let provider = Platform::from_stored(&row.platform).name();
        let counted = |result| crate::ops::record::push(provider, result);
        match outcome {
            SendOutcome::Sent => {
                self.store.push().sent(row, now).await?;
                PushMetrics::add(&m.sent, 1);
                counted("sent");
            }
            SendOutcome::Retry { after } => {
                let failures = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
                let delay = self.config.backoff.delay(failures, after);
                let at = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                let deadline = row.created_at.saturating_add(
                    i64::try_from(self.config.give_up_after.as_millis()).unwrap_or(i64::MAX),
                );
                if at > deadline {
                    let reason = format!("gave up after {failures} attempts");
                    tracing::warn!(
                        id = row.id,
                        token = %token_prefix(&row.token),
                        room_id = %row.room_id,
                        "push failed: {reason}"
                    );
                    self.store.push().failed(row, now, &reason).await?;
                    PushMetrics::add(&m.failed, 1);
                    counted("failed");
                } else {
                    self.store
                        .push()
                        .retry_at(row, at, now, Some("transient failure"))
                        .await?;
                    PushMetrics::add(&m.retried, 1);
                    counted("retried");
                }
            }
            SendOutcome::InvalidToken => {
                tracing::info!(
                    token = %token_prefix(&row.token),
                    "push token reported invalid by its provider; removed"
                );
                if self.store.push().token_invalid(&row.token, now).await? {
                    PushMetrics::add(&m.pruned, 1);
                    counted("pruned");
                }
                PushMetrics::add(&m.failed, 1);
                counted("failed");
            }
            SendOutcome::Failed(reason) => {
                tracing::warn!(
                    id = row.id,
                    token = %token_prefix(&row.token),
                    room_id = %row.room_id,
                    "push failed: {reason}"
                );
                self.store.push().failed(row, now, &reason).await?;
                PushMetrics::add(&m.failed, 1);
                counted("failed");
            }
        }
        Ok(())
    }

    async fn prune(&self) {
        let keep = i64::try_from(self.config.keep_done.as_millis()).unwrap_or(i64::MAX);
        match self.store.push().prune(now_ms().saturating_sub(keep)).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "old push outbox rows deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting old push outbox rows failed"),
        }
    }
}

/// Enough of a token to tell devices apart in a log, not enough to push to them.
pub fn token_prefix(token: &str) -> String {
    let head: String = token.chars().take(8).collect();
    format!("{head}…")
}
