//! Which web origins may use the server, and with the counsellor's session cookie.
//!
//! A browser sends the session cookie with every request to this server that its `SameSite`
//! allows: under `SameSite=None` (a web app on another site needs it) that includes a websocket
//! opened by any page on any site, which CORS does not guard. Without a check of the `Origin`,
//! such a page could connect to `/counsellor` as the signed-in counsellor. So the request's
//! origin decides, on every socket.io request (both protocol generations, polling and websocket):
//! - with `--cors-origins` set, a request from an origin not listed is refused with
//!   `403 forbidden_origin` before engine.io sees it; a listed origin is served, cookie and all;
//! - with every origin allowed (the default), any origin is served, but a request from an origin
//!   other than the server's own (the `Origin` whose host and port are the request's `Host`)
//!   carries no session: its cookie signs nobody in, and `/counsellor` takes only a token there;
//! - a request without `Origin` is no browser's cross-origin request (native apps,
//!   socket.io-client in Node, a page's own same-origin polling): it is served, cookie and all.
//!
//! CORS answers name only an allowed origin, and allow credentials only with one.
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN};
use http::uri::{Authority, Uri};
use http::{HeaderValue, Method};
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer};
use tower_sessions::Session;

use super::HttpError;

/// Where socket.io is served (engine.io's default path).
const SOCKET_IO_PATH: &str = "/socket.io";

/// The origins allowed to call with credentials (`--cors-origins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Every origin; the session cookie only from the server's own.
    All,
    /// Only these, as `scheme://host[:port]` in lower case.
    Listed(Vec<String>),
}

/// What becomes of a socket.io request, by its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Served as sent.
    Serve,
    /// Served without its session: the cookie signs nobody in.
    ServeWithoutSession,
    /// Answered `403 forbidden_origin`.
    Refuse,
}

impl Origins {
    /// The configured list; empty means all. Each entry must be an origin, `scheme://host[:port]`
    /// (a trailing `/` is dropped): anything else would never match what a browser sends.
    pub fn new(configured: &[String]) -> anyhow::Result<Self> {
        let mut listed = Vec::new();
        for entry in configured {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let origin = entry
                .strip_suffix('/')
                .unwrap_or(entry)
                .to_ascii_lowercase();
            let uri: Uri = origin
                .parse()
                .with_context(|| format!("--cors-origins: `{entry}` is not an origin"))?;
            let well_formed = matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
                && matches!(uri.path(), "" | "/")
                && uri.query().is_none();
            if !well_formed {
                bail!("--cors-origins: `{entry}` is not an origin like https://app.example:8443");
            }
            listed.push(origin);
        }
        Ok(if listed.is_empty() {
            Self::All
        } else {
            Self::Listed(listed)
        })
    }

    /// Whether `origin` may make credentialed cross-origin requests.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::All => true,
            Self::Listed(listed) => listed
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
        }
    }

    /// The verdict on a socket.io request from `origin` (none: no `Origin` header) to `host`.
    fn verdict(&self, origin: Option<&HeaderValue>, host: Option<&str>) -> Verdict {
        let Some(origin) = origin else {
            return Verdict::Serve;
        };
        match self {
            Self::Listed(_) if self.allows(origin) => Verdict::Serve,
            Self::Listed(_) => Verdict::Refuse,
            Self::All if host.is_some_and(|host| is_own_origin(origin, host)) => Verdict::Serve,
            Self::All => Verdict::ServeWithoutSession,
        }
    }

    /// CORS for these origins: an allowed origin is echoed (never `*`) with credentials allowed;
    /// any other gets neither.
    pub fn cors(self: &Arc<Self>) -> CorsLayer {
        let echo = self.clone();
        let credentials = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| echo.allows(origin)))
            .allow_credentials(AllowCredentials::predicate(move |origin, _| {
                credentials.allows(origin)
            }))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
    }
}

/// Whether `origin` names the host and port of the `Host` header `host`: a page served by this
/// server (or by the proxy in front of it). A `Host` without a port has the origin scheme's.
fn is_own_origin(origin: &HeaderValue, host: &str) -> bool {
    let Some(origin) = origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok()) else {
        return false;
    };
    let default_port = match origin.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    let (Some(origin), Ok(host)) = (origin.authority(), host.parse::<Authority>()) else {
        return false;
    };
    origin.host().eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// Applies [`Origins`] to socket.io requests: refuses those from an origin not allowed, and takes
/// the session off those that may not use it. Sits inside the session layer (which puts the
/// [`Session`] on the request) and outside socket.io; other routes pass untouched.
pub async fn guard(State(origins): State<Arc<Origins>>, mut req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(SOCKET_IO_PATH) {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(Authority::as_str));
    let origin = req.headers().get(ORIGIN);
    match origins.verdict(origin, host) {
        Verdict::Serve => {}
        Verdict::ServeWithoutSession => {
            req.extensions_mut().remove::<Session>();
        }
        Verdict::Refuse => {
            tracing::debug!(origin = ?req.headers().get(ORIGIN), "socket.io request refused: origin not allowed");
            return HttpError::ForbiddenOrigin.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Origins {
        Origins::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn value(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn configured_origins_are_checked_and_normalized() {
        assert_eq!(origins(&[]), Origins::All);
        assert_eq!(origins(&[" ", ""]), Origins::All);
        assert_eq!(
            origins(&[" https://App.Example/", "http://localhost:8080"]),
            Origins::Listed(vec![
                "https://app.example".into(),
                "http://localhost:8080".into()
            ])
        );
        for bad in [
            "*",
            "null",
            "app.example",
            "ftp://app.example",
            "https://app.example/path",
            "https://app.example?x=1",
            "https://user@app.example",
        ] {
            assert!(
                Origins::new(&[bad.to_string()]).is_err(),
                "{bad} is not an origin"
            );
        }
    }

    #[test]
    fn listed_origins_only() {
        let listed = origins(&["http://good.example", "https://app.example:8443"]);
        assert!(listed.allows(&value("http://good.example")));
        assert!(listed.allows(&value("HTTP://GOOD.example")));
        assert!(listed.allows(&value("https://app.example:8443")));
        for other in [
            "http://evil.example",
            "https://good.example",
            "http://good.example:8080",
            "https://app.example",
            "null",
        ] {
            assert!(!listed.allows(&value(other)), "{other}");
            assert_eq!(
                listed.verdict(Some(&value(other)), Some("good.example")),
                Verdict::Refuse,
                "{other}"
            );
        }
        let good = value("http://good.example");
        assert_eq!(listed.verdict(Some(&good), Some("bubble")), Verdict::Serve);
        assert_eq!(listed.verdict(None, Some("bubble")), Verdict::Serve);
        assert_eq!(listed.verdict(None, None), Verdict::Serve);
    }

    #[test]
    fn all_origins_but_the_session_only_from_the_own() {
        let all = Origins::All;
        let evil = value("http://evil.example");
        assert!(all.allows(&evil));
        assert_eq!(
            all.verdict(Some(&evil), Some("bubble.example")),
            Verdict::ServeWithoutSession
        );
        assert_eq!(all.verdict(Some(&evil), None), Verdict::ServeWithoutSession);
        assert_eq!(all.verdict(None, Some("bubble.example")), Verdict::Serve);
        for (origin, host) in [
            ("http://127.0.0.1:3000", "127.0.0.1:3000"),
            ("https://Bubble.example", "bubble.example"),
            ("https://bubble.example", "bubble.example:443"),
            ("http://bubble.example:80", "bubble.example"),
            ("http://[::1]:3000", "[::1]:3000"),
        ] {
            assert_eq!(
                all.verdict(Some(&value(origin)), Some(host)),
                Verdict::Serve,
                "{origin} on {host}"
            );
        }
        for (origin, host) in [
            ("http://127.0.0.1:3001", "127.0.0.1:3000"),
            ("http://127.0.0.1", "127.0.0.1:3000"),
            ("https://bubble.example", "bubble.example:80"),
            ("http://bubble.example.evil", "bubble.example"),
            ("null", "bubble.example"),
            ("http://bubble.example", "not a host"),
        ] {
            assert_eq!(
                all.verdict(Some(&value(origin)), Some(host)),
                Verdict::ServeWithoutSession,
                "{origin} on {host}"
            );
        }
    }
}
