//! Push notifications through a durable outbox.
//!
//! `add_message` writes outbox rows in the transaction that stores the message (see
//! `store::push_outbox`) and pokes [`PushQueue`]; the [`worker`] claims due rows, hands each to the
//! [`PushSender`] of its platform and settles it from the [`SendOutcome`]. The socket.io reply
//! never waits for a provider, and a crash loses nothing: rows are durable and a lease that runs
//! out makes a claimed row due again. What a push says is written with its row (see
//! [`crate::push_content`]).
//! - [`backoff`]: when to try again;
//! - [`worker`]: the claim–send–settle loop;
//! - [`fcm`], [`apns`]: the providers; [`LogSender`] stands in for one that is not configured.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use entity::push_outbox;
use tokio::sync::Notify;

pub mod apns;
pub mod backoff;
pub mod fcm;
pub mod worker;
#[cfg(test)]
mod worker_tests;

use crate::config::PushArgs;

/// The push services a token can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Fcm,
    Apns,
}

impl Platform {
    /// The stored name (`fcm` or `apns`); anything else is taken as FCM, the default platform.
    pub fn from_stored(name: &str) -> Self {
        if name == "apns" {
            Self::Apns
        } else {
            Self::Fcm
        }
    }

    /// The name stored and counted.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fcm => "fcm",
            Self::Apns => "apns",
        }
    }
}

/// One notification for one device, as a sender sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub token: String,
    pub platform: Platform,
    /// Also the collapse key (FCM) and the thread and collapse id (APNs).
    pub room_id: String,
    pub title: String,
    pub body: String,
    /// String values only: `roomId`, `messageId`, `type`.
    pub data: BTreeMap<String, String>,
}

impl From<&push_outbox::Model> for Push {
    fn from(row: &push_outbox::Model) -> Self {
        Self {
            token: row.token.clone(),
            platform: Platform::from_stored(&row.platform),
            room_id: row.room_id.clone(),
            title: row.title.clone(),
            body: row.body.clone(),
            data: serde_json::from_str(&row.data).unwrap_or_default(),
        }
    }
}

/// What became of one attempt to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// A transient failure (rate limit, provider or network trouble); `after` is the provider's
    /// `Retry-After`, if it gave one.
    Retry {
        after: Option<Duration>,
    },
    /// The provider says the token names no device: the token is forgotten.
    InvalidToken,
    /// A permanent failure for this push; the reason is logged and stored.
    Failed(String),
}

/// Sends pushes to one provider. Implementations never panic on what the network returns and
/// bound every request with a timeout shorter than the worker's lease.
#[async_trait]
pub trait PushSender: Send + Sync {
    async fn send(&self, push: &Push) -> SendOutcome;
}

/// Stands in for a provider with no credentials: logs what would have been sent and reports it
/// sent, so that development setups see their pushes and the outbox does not fill up.
#[derive(Debug, Clone, Copy)]
pub struct LogSender(pub Platform);

#[async_trait]
impl PushSender for LogSender {
    async fn send(&self, push: &Push) -> SendOutcome {
        // What people write stays out of the log unless asked for.
        let body = if crate::telemetry::message_text() {
            push.body.as_str()
        } else {
            "(not shown)"
        };
        tracing::info!(
            platform = ?self.0,
            token = %worker::token_prefix(&push.token),
            title = %push.title,
            body,
            "push (no provider configured, not sent)"
        );
        SendOutcome::Sent
    }
}

/// One sender per platform.
#[derive(Clone)]
pub struct Senders {
    pub fcm: Arc<dyn PushSender>,
    pub apns: Arc<dyn PushSender>,
}

impl Senders {
    /// The real providers for those configured, a [`LogSender`] for the others. Fails on
    /// credentials that are given but unusable, so a misconfigured server does not start.
    pub fn from_config(args: &PushArgs) -> anyhow::Result<Self> {
        let fcm: Arc<dyn PushSender> = match &args.fcm_service_account {
            Some(file) => Arc::new(fcm::FcmSender::new(file, &args.fcm_endpoint)?),
            None => Arc::new(LogSender(Platform::Fcm)),
        };
        let apns: Arc<dyn PushSender> = match apns::ApnsConfig::from_args(args)? {
            Some(config) => Arc::new(apns::ApnsSender::new(config)?),
            None => Arc::new(LogSender(Platform::Apns)),
        };
        Ok(Self { fcm, apns })
    }

    pub fn for_platform(&self, platform: Platform) -> &Arc<dyn PushSender> {
        match platform {
            Platform::Fcm => &self.fcm,
            Platform::Apns => &self.apns,
        }
    }
}

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct PushMetrics {
    /// Outbox rows written or updated by new messages.
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    /// Attempts that failed transiently and were put back.
    pub retried: AtomicU64,
    /// Pushes given up on (permanent failure, invalid token or past the deadline).
    pub failed: AtomicU64,
    /// Tokens removed because their provider reported them invalid.
    pub pruned: AtomicU64,
}

impl PushMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot, `(queued, sent, retried, failed, pruned)`.
    pub fn snapshot(&self) -> [u64; 5] {
        [
            &self.queued,
            &self.sent,
            &self.retried,
            &self.failed,
            &self.pruned,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// What the socket handlers share with the worker: a bell to ring when rows were queued, and the
/// counters.
#[derive(Debug, Default)]
pub struct PushQueue {
    wake: Notify,
    pub metrics: PushMetrics,
}

impl PushQueue {
    /// Records `n` rows queued and, if any, wakes the worker. A wake while the worker is busy is
    /// kept for its next wait, so none is lost.
    pub fn queued(&self, n: u64) {
        if n > 0 {
            PushMetrics::add(&self.metrics.queued, n);
            self.wake.notify_one();
        }
    }

    /// Resolves at the next [`queued`](Self::queued) (or at once if one came since the last wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PushArgs {
        PushArgs {
            fcm_service_account: None,
            fcm_endpoint: "https://fcm.googleapis.com".into(),
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_sandbox: false,
            push_collapse_ms: 1000,
        }
    }

    #[tokio::test]
    async fn unconfigured_providers_log_and_report_sent() {
        let senders = Senders::from_config(&args()).unwrap();
        let push = Push {
            token: "0123456789abcdef".into(),
            platform: Platform::Apns,
            room_id: "r".into(),
            title: "t".into(),
            body: "b".into(),
            data: BTreeMap::new(),
        };
        for platform in [Platform::Fcm, Platform::Apns] {
            let outcome = senders.for_platform(platform).send(&push).await;
            assert_eq!(outcome, SendOutcome::Sent);
        }
    }

    #[test]
    fn partly_configured_apns_is_refused() {
        let partial = PushArgs {
            apns_key_id: Some("ABC123DEFG".into()),
            ..args()
        };
        assert!(Senders::from_config(&partial).is_err());
        let missing_key = PushArgs {
            apns_key_file: Some("/nonexistent/AuthKey.p8".into()),
            apns_key_id: Some("ABC123DEFG".into()),
            apns_team_id: Some("TEAM123456".into()),
            apns_topic: Some("org.example.bubble".into()),
            ..args()
        };
        assert!(Senders::from_config(&missing_key).is_err());
        let missing_account = PushArgs {
            fcm_service_account: Some("/nonexistent/sa.json".into()),
            ..args()
        };
        assert!(Senders::from_config(&missing_account).is_err());
    }

    #[test]
    fn outbox_rows_become_pushes() {
        let row = push_outbox::Model {
            id: 1,
            token: "tok".into(),
            platform: "apns".into(),
            bubble_id: "b".into(),
            room_id: "r".into(),
            message_id: 9,
            kind: "message".into(),
            title: "New message in R".into(),
            body: "hi".into(),
            data: r#"{"roomId":"r","messageId":"9","type":"message"}"#.into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: 0,
            claimed_until: None,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        };
        let push = Push::from(&row);
        assert_eq!(push.platform, Platform::Apns);
        assert_eq!(push.data["messageId"], "9");
        assert_eq!(Platform::from_stored("fcm"), Platform::Fcm);
        let garbled = push_outbox::Model {
            data: "not json".into(),
            ..row
        };
        assert!(Push::from(&garbled).data.is_empty());
    }
}
