//! What every request goes through before its route or socket.io: the session cookie, a head of
//! its own for a socket.io request, and its span in the log.
use ::http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header};
use tower_sessions::cookie::{SameSite, time};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::config::{self, Config};
use crate::store::{SessionStore, Store};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "bubble_session";
/// A session ends after this long without being renewed (by sign-in or `GET /auth/me`).
const SESSION_INACTIVITY: time::Duration = time::Duration::days(7);

/// Session cookies for signed-in counsellors. The layer sits outside socket.io, so a
/// `/counsellor` handshake carries the [`Session`] of its cookie.
pub(super) fn sessions(config: &Config, store: &Store) -> SessionManagerLayer<SessionStore> {
    let same_site = match config.session_same_site {
        config::SameSite::Strict => SameSite::Strict,
        config::SameSite::Lax => SameSite::Lax,
        config::SameSite::None => SameSite::None,
    };
    if same_site == SameSite::None && !config.session_secure {
        tracing::warn!("SameSite=None without --session-secure: browsers will refuse the cookie");
    }
    SessionManagerLayer::new(store.sessions())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_path("/")
        .with_same_site(same_site)
        .with_secure(config.session_secure)
        .with_expiry(Expiry::OnInactivity(SESSION_INACTIVITY))
}

/// The span of an HTTP request: its method and path. Not its query, which may carry a token
/// (`bubble=`, `token=`), nor its headers.
pub(super) fn request_span<B>(req: &Request<B>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
}

/// The headers of a socket.io request read after the handshake: a bearer token (TinCan and
/// counsellors), and what engine.io itself reads.
const KEPT_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::SEC_WEBSOCKET_KEY,
];

/// Gives a socket.io request a small head of its own. engine.io keeps the head of the request
/// that opened a session for the session's lifetime, and every idle connection pays for it:
/// - hyper parses headers and the URI as slices of the connection's read buffer (16 KiB), so
///   without copies every websocket would hold that buffer for as long as it stays open;
/// - of the headers only those read later are kept ([`KEPT_HEADERS`]);
/// - the session of a request without a session cookie is empty and signs nobody in: it is
///   dropped (a counsellor signing in on `/counsellor` later in the same engine.io session
///   needs the cookie to have been there from the start, as it always is for a browser).
pub(super) fn detach_head<B>(mut req: Request<B>) -> Request<B> {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    let session_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .any(|cookie| {
            cookie
                .trim_start()
                .starts_with(&format!("{SESSION_COOKIE}="))
        });
    if !session_cookie {
        req.extensions_mut().remove::<Session>();
    }
    let mut headers = HeaderMap::with_capacity(KEPT_HEADERS.len());
    for name in KEPT_HEADERS {
        for value in req.headers().get_all(&name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name.clone(), value);
            }
        }
    }
    *req.headers_mut() = headers;
    let uri = req.uri().to_string();
    if let Ok(owned) = Uri::from_maybe_shared(bytes::Bytes::from(uri)) {
        // The router keeps a copy of the URI too.
        if let Some(original) = req.extensions_mut().get_mut::<axum::extract::OriginalUri>() {
            original.0 = owned.clone();
        }
        *req.uri_mut() = owned;
    }
    req
}
