//! Counsellor authentication: passwords, usernames, and who is behind a request or handshake.
//!
//! A counsellor proves who they are with a session cookie (the web app, after `POST /auth`) or
//! with an API token (native apps), either as `Authorization: Bearer <token>` or, on socket.io
//! 3+, as `auth: { token }`. The functions here turn those into an account and are shared by the
//! HTTP routes and the `/counsellor` handshake, so both accept exactly the same credentials.
//!
//! Passwords, usernames, the limits on attempts and the password sign-in itself
//! ([`sign_in`]) serve TinCan users as well.
use ::http::HeaderMap;
use ::http::header::AUTHORIZATION;
use ::http::request::Parts;
use entity::counsellor_account;
use sea_orm::DbErr;
use tower_sessions::Session;

use crate::store::{SESSION_ACCOUNT_KEY, Store};

pub mod accounts;
pub mod password;
pub mod rate_limit;
pub mod sign_in;
pub mod username;

/// The API token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The account of an unexpired API token.
pub async fn counsellor_for_token(
    store: &Store,
    token: &str,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    store.accounts().for_token(token).await
}

/// The account a session is signed in as, if it still exists.
pub async fn counsellor_for_session(
    store: &Store,
    session: &Session,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    let account_id = session
        .get::<String>(SESSION_ACCOUNT_KEY)
        .await
        .map_err(|e| DbErr::Custom(format!("session: {e}")))?;
    match account_id {
        Some(id) => store.accounts().get(&id).await,
        None => Ok(None),
    }
}

/// The counsellor behind a `/counsellor` handshake, from the first of these that names a valid
/// account: `auth_token` (socket.io-client 3+ `auth: { token }`), an `Authorization: Bearer`
/// header, then the session cookie (the session layer runs outside socket.io, so the handshake
/// request carries the [`Session`], unless it came from an origin that may not use the cookie:
/// see [`crate::http::origin`]). A stale token does not hide a good cookie.
pub async fn counsellor_for_handshake(
    store: &Store,
    parts: &Parts,
    auth_token: Option<&str>,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    if let Some(token) = auth_token.map(str::trim).filter(|t| !t.is_empty())
        && let Some(account) = counsellor_for_token(store, token).await?
    {
        return Ok(Some(account));
    }
    counsellor_for_request(store, &parts.headers, parts.extensions.get::<Session>()).await
}

/// The counsellor behind an HTTP request: a bearer token first, then the session.
pub async fn counsellor_for_request(
    store: &Store,
    headers: &HeaderMap,
    session: Option<&Session>,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    if let Some(token) = bearer_token(headers)
        && let Some(account) = counsellor_for_token(store, token).await?
    {
        return Ok(Some(account));
    }
    match session {
        Some(session) => counsellor_for_session(store, session).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ::http::{HeaderValue, Request};
    use clap::Parser;

    use super::*;
    use crate::{AppState, Config};

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        config: Config,
    }

    async fn app(dir: &tempfile::TempDir) -> Arc<AppState> {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let args = Args::parse_from(["bubble", "--database-url", url.as_str()]);
        crate::build(args.config).await.unwrap().state
    }

    fn parts(authorization: Option<&str>, session: Option<Session>) -> Parts {
        let mut req = Request::builder().uri("/socket.io/?EIO=4&transport=polling");
        if let Some(value) = authorization {
            req = req.header(AUTHORIZATION, value);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        if let Some(session) = session {
            parts.extensions.insert(session);
        }
        parts
    }

    #[tokio::test]
    async fn handshake_accepts_token_header_or_session() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir).await;
        let alice = app
            .store
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        let bob = app
            .store
            .accounts()
            .create("bob", "Bob", "h")
            .await
            .unwrap()
            .unwrap();
        let alice_token = app.store.accounts().create_token(&alice.id).await.unwrap();
        let bob_token = app.store.accounts().create_token(&bob.id).await.unwrap();
        let sessions = Arc::new(app.store.sessions());
        let signed_in = Session::new(None, sessions.clone(), None);
        signed_in
            .insert(SESSION_ACCOUNT_KEY, &bob.id)
            .await
            .unwrap();
        signed_in.save().await.unwrap();
        // As the session layer would make it from the cookie of a later request.
        let session = || Session::new(signed_in.id(), sessions.clone(), None);
        let bearer = |t: &str| format!("Bearer {t}");
        let who = async |parts: &Parts, token: Option<&str>| {
            counsellor_for_handshake(&app.store, parts, token)
                .await
                .unwrap()
                .map(|a| a.username)
        };

        let none = parts(None, None);
        assert_eq!(who(&none, None).await, None);
        assert_eq!(who(&none, Some("")).await, None);
        assert_eq!(who(&none, Some("junk")).await, None);
        assert_eq!(
            who(&none, Some(&alice_token)).await.as_deref(),
            Some("alice")
        );

        let header = parts(Some(&bearer(&alice_token)), None);
        assert_eq!(who(&header, None).await.as_deref(), Some("alice"));
        // The auth token comes first.
        assert_eq!(who(&header, Some(&bob_token)).await.as_deref(), Some("bob"));

        let cookie = parts(None, Some(session()));
        assert_eq!(who(&cookie, None).await.as_deref(), Some("bob"));
        let both = parts(Some(&bearer(&alice_token)), Some(session()));
        assert_eq!(who(&both, None).await.as_deref(), Some("alice"));
        // A stale token does not hide a good session.
        let stale = parts(Some("Bearer revoked"), Some(session()));
        assert_eq!(who(&stale, Some("revoked")).await.as_deref(), Some("bob"));

        // A session whose account is gone signs nobody in.
        app.store.accounts().remove("bob").await.unwrap();
        let orphan = Session::new(None, sessions.clone(), None);
        orphan.insert(SESSION_ACCOUNT_KEY, &bob.id).await.unwrap();
        assert_eq!(who(&parts(None, Some(orphan)), None).await, None);
        let empty = Session::new(None, sessions, None);
        assert_eq!(who(&parts(None, Some(empty)), None).await, None);
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
