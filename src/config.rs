//! Every setting is a flag with an environment twin; the defaults run with no setup at all.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

    /// Most bytes of answers and broadcasts one websocket connection may have waiting to be
    /// written; a socket with more is disconnected (its client reconnects and catches up).
    #[arg(long, env = "BUBBLE_MAX_SOCKET_BUFFER", default_value_t = 4 * 1024 * 1024)]
    pub max_socket_buffer: u64,

    /// Let the old apps go online as counsellors on `/` with `counsellor_online`, unauthenticated.
    #[arg(long, env = "BUBBLE_ROOT_COUNSELLORS", default_value_t = true, action = ArgAction::Set)]
    pub root_counsellors: bool,

    #[command(flatten)]
    pub tincan: TinCanArgs,

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

    /// Counsellor sign-in attempts (`POST /auth`) allowed per client address per minute.
    #[arg(long, env = "BUBBLE_AUTH_LOGIN_PER_IP", default_value_t = 10)]
    pub auth_login_per_ip: u32,

    /// Counsellor sign-in attempts (`POST /auth`) allowed per username per minute.
    #[arg(long, env = "BUBBLE_AUTH_LOGIN_PER_USER", default_value_t = 5)]
    pub auth_login_per_user: u32,

    /// Let the log show what clients send: message text in our own lines, and the debug and
    /// trace lines of socket.io, engine.io and the websocket library, which print every packet,
    /// tokens included. For debugging on a machine of one's own; off by default.
    #[arg(
        long,
        env = "BUBBLE_LOG_MESSAGE_TEXT",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub log_message_text: bool,

    /// Log lines as text, or as JSON objects, one per line, for a log collector.
    #[arg(long, env = "BUBBLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long shutdown (on SIGTERM or SIGINT) may take: leaving the cluster, closing the
    /// sockets, finishing open requests and the pushes in flight. Past it the process exits
    /// anyway (status 1), logging what was cut short. Seconds (`10`) or a duration (`1m`).
    #[arg(
        long,
        env = "BUBBLE_SHUTDOWN_TIMEOUT",
        default_value = "10s",
        value_parser = parse_wait
    )]
    pub shutdown_timeout: Duration,

    /// Serve metrics (Prometheus text format, `GET /metrics`) and readiness (`GET /ready`) on
    /// this address, e.g. `127.0.0.1:9464`; never on the public one. Off when not given.
    #[arg(long, env = "BUBBLE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    #[command(flatten)]
    pub push: PushArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The socket.io Admin UI (`@socket.io/admin-ui`) on the namespace `/admin`, which exists only
/// when a user and a password hash are both given.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Admin UI: the username to sign in with. Needs `--admin-password-hash`.
    #[arg(long, env = "BUBBLE_ADMIN_USER", requires = "admin_password_hash")]
    pub admin_user: Option<String>,

    /// Admin UI: the bcrypt hash of the password (`bubble admin-hash` makes one).
    /// Needs `--admin-user`.
    #[arg(
        long,
        env = "BUBBLE_ADMIN_PASSWORD_HASH",
        requires = "admin_user",
        hide_env_values = true
    )]
    pub admin_password_hash: Option<String>,

    /// Admin UI: watch only; joining, leaving and disconnecting sockets are refused.
    #[arg(
        long,
        env = "BUBBLE_ADMIN_READONLY",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub admin_readonly: bool,

    /// Admin UI: `development` shows every socket, its rooms and its events as they happen;
    /// `production` only the server's figures.
    #[arg(
        long,
        env = "BUBBLE_ADMIN_MODE",
        value_enum,
        default_value_t = AdminMode::Development
    )]
    pub admin_mode: AdminMode,
}

/// What the Admin UI is shown, as `@socket.io/admin-ui` names its modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminMode {
    /// Sockets, rooms and events, as they happen, besides the server's figures.
    Development,
    /// The server's figures only (`server_stats`).
    Production,
}

/// Several nodes behind one load balancer, sharing one PostgreSQL database.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Link the nodes through this Redis (7 or newer), e.g. `redis://127.0.0.1:6379`.
    #[arg(long, env = "REDIS_URL", conflicts_with = "adapter")]
    pub redis_url: Option<String>,

    /// Link the nodes through the PostgreSQL database itself (LISTEN/NOTIFY) instead of Redis.
    #[arg(long, env = "BUBBLE_ADAPTER", value_enum)]
    pub adapter: Option<AdapterKind>,

    /// Prefix of the adapter's channels: nodes talk only to nodes with the same prefix.
    #[arg(long, env = "BUBBLE_ADAPTER_PREFIX", default_value = "bubble")]
    pub adapter_prefix: String,

    /// How often a node records that it is alive, in milliseconds.
    #[arg(long, env = "BUBBLE_NODE_HEARTBEAT_MS", default_value_t = 5_000)]
    pub node_heartbeat_ms: u64,

    /// After how long without a heartbeat a node counts as dead, in milliseconds: its sockets'
    /// presence is then removed, as if they had disconnected.
    #[arg(long, env = "BUBBLE_NODE_TIMEOUT_MS", default_value_t = 20_000)]
    pub node_timeout_ms: u64,
}

/// The adapters other than Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdapterKind {
    Postgres,
}

impl ClusterArgs {
    /// Whether this node is one of several.
    pub fn linked(&self) -> bool {
        self.redis_url.is_some() || self.adapter.is_some()
    }
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields (`sid`, `ns`, `event`, `code`, …) at the top level, with the spans it ran in.
    Json,
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

/// TinCan accounts and sockets.
#[derive(Debug, Clone, Args)]
pub struct TinCanArgs {
    /// How long a TinCan sign-in token stays valid: a number of days (`30`) or a duration
    /// (`12h`, `1d12h`, `90m`, `2w`).
    #[arg(
        long = "tincan-token-ttl",
        env = "BUBBLE_TINCAN_TOKEN_TTL",
        default_value = "30",
        value_parser = parse_ttl
    )]
    pub token_ttl: Duration,

    /// Sign-in attempts allowed per client address per minute on `POST /tincan/login`.
    #[arg(
        long = "tincan-login-per-ip",
        env = "BUBBLE_TINCAN_LOGIN_PER_IP",
        default_value_t = 10
    )]
    pub login_per_ip: u32,

    /// Sign-in attempts allowed per username per minute on `POST /tincan/login`.
    #[arg(
        long = "tincan-login-per-user",
        env = "BUBBLE_TINCAN_LOGIN_PER_USER",
        default_value_t = 5
    )]
    pub login_per_user: u32,

    /// After how long without a `type-start` the server ends a user's typing by itself, in
    /// milliseconds. Only tests change it.
    #[arg(
        long = "tincan-typing-timeout-ms",
        env = "BUBBLE_TINCAN_TYPING_TIMEOUT_MS",
        default_value_t = 10_000,
        hide = true
    )]
    pub typing_timeout_ms: u64,
}

/// A token lifetime: a whole number of days, or a duration made of numbers with the units
/// `s`, `m`, `h`, `d` and `w` (`1d12h`, `90m`). Zero is refused.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a number of days or a duration like 12h, 1d12h, 90m");
    if let Ok(days) = s.parse::<u64>() {
        return days
            .checked_mul(86_400)
            .filter(|&secs| secs > 0)
            .map(Duration::from_secs)
            .ok_or_else(bad);
    }
    duration_secs(s).map(Duration::from_secs).ok_or_else(bad)
}

/// A wait: a whole number of seconds, or a duration like [`parse_ttl`]'s (`90s`, `2m`). Zero is
/// refused.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a number of seconds or a duration like 10s, 2m");
    if let Ok(secs) = s.parse::<u64>() {
        return (secs > 0)
            .then(|| Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    duration_secs(s).map(Duration::from_secs).ok_or_else(bad)
}

/// The seconds of a duration made of numbers with the units `s`, `m`, `h`, `d` and `w`; `None`
/// for anything else, or zero.
fn duration_secs(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))?;
    }
    (number.is_empty() && total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes() {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        assert_eq!(parse_ttl("30"), Ok(days(30)));
        assert_eq!(parse_ttl("7d"), Ok(days(7)));
        assert_eq!(parse_ttl("2w"), Ok(days(14)));
        assert_eq!(parse_ttl("1d 12h"), Ok(Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_ttl("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "0", "0s", "d", "1x", "1.5d", "-1", "h12", "12h5"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn waits() {
        assert_eq!(parse_wait("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_wait("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_wait("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_wait("1m30s"), Ok(Duration::from_secs(90)));
        for bad in ["", "0", "0s", "s", "1x", "1.5", "-1", "10ms"] {
            assert!(parse_wait(bad).is_err(), "{bad:?}");
        }
    }
}
