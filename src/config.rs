//! Every setting is a flag with an environment twin; the defaults run with no setup at all.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};

/// Settings of `bubble serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (HTTP and socket.io share it). Port 0 picks a free port.
    #[arg(long, env = "BUBBLE_ADDR", default_value = "0.0.0.0:3000")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Origins allowed to make credentialed cross-origin requests, comma separated.
    /// Empty (the default) allows every origin, echoing it back.
    #[arg(
        long = "cors-origins",
        env = "BUBBLE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Largest socket.io packet accepted, in bytes, on both websocket and long-polling.
    #[arg(long, env = "BUBBLE_MAX_PAYLOAD", default_value_t = 2 * 1024 * 1024)]
    pub max_payload: usize,

    /// Most events one socket may have waiting to be handled; more are refused with
    /// `rate_limited`.
    #[arg(long, env = "BUBBLE_MAX_QUEUED_EVENTS", default_value_t = 256)]
    pub max_queued_events: usize,

    /// Let the old apps go online as counsellors on `/` with `counsellor_online`, unauthenticated.
    #[arg(long, env = "BUBBLE_ROOT_COUNSELLORS", default_value_t = true, action = ArgAction::Set)]
    pub root_counsellors: bool,

    /// SameSite attribute of the session cookie. A web app on another site that sends
    /// credentials needs `none` (with `--session-secure`).
    #[arg(
        long,
        env = "BUBBLE_SESSION_SAME_SITE",
        value_enum,
        default_value_t = SameSite::Lax
    )]
    pub session_same_site: SameSite,

    /// Mark the session cookie Secure: set true behind TLS; SameSite=None requires it.
    #[arg(
        long,
        env = "BUBBLE_SESSION_SECURE",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub session_secure: bool,

    #[command(flatten)]
    pub push: PushArgs,
}

/// The SameSite attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// Where the data lives, and how much to log.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded, the default) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://bubble.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most pooled database connections.
    #[arg(long, env = "BUBBLE_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,

    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
    #[arg(long, env = "BUBBLE_LOG", default_value = "info")]
    pub log: String,
}

/// Push providers. A provider left unconfigured has its pushes logged instead of sent.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// FCM: the service account JSON file of the Firebase project (its `project_id`,
    /// `client_email`, `private_key` and `token_uri` are used).
    #[arg(long, env = "BUBBLE_FCM_SERVICE_ACCOUNT")]
    pub fcm_service_account: Option<PathBuf>,

    /// FCM: base URL of the HTTP v1 API.
    #[arg(
        long,
        env = "BUBBLE_FCM_ENDPOINT",
        default_value = "https://fcm.googleapis.com"
    )]
    pub fcm_endpoint: String,

    /// APNs: the token signing key (`AuthKey_XXXXXXXXXX.p8`).
    #[arg(long, env = "BUBBLE_APNS_KEY_FILE")]
    pub apns_key_file: Option<PathBuf>,

    /// APNs: the key's id (10 characters).
    #[arg(long, env = "BUBBLE_APNS_KEY_ID")]
    pub apns_key_id: Option<String>,

    /// APNs: the Apple developer team id.
    #[arg(long, env = "BUBBLE_APNS_TEAM_ID")]
    pub apns_team_id: Option<String>,

    /// APNs: the app's bundle id (the `apns-topic`).
    #[arg(long, env = "BUBBLE_APNS_TOPIC")]
    pub apns_topic: Option<String>,

    /// APNs: use the sandbox (development) environment instead of production.
    #[arg(
        long,
        env = "BUBBLE_APNS_SANDBOX",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub apns_sandbox: bool,

    /// How long a new push waits, in milliseconds, for more messages to the same device and room
    /// to collapse into it before it is sent.
    #[arg(long, env = "BUBBLE_PUSH_COLLAPSE_MS", default_value_t = 1000)]
    pub push_collapse_ms: u64,
}
