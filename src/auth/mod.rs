//! Counsellor authentication: passwords, usernames, and who is behind a request or handshake.
//!
//! A counsellor proves who they are with a session cookie (the web app, after `POST /auth`) or
//! with an API token (native apps), either as `Authorization: Bearer <token>` or, on socket.io
//! 3+, as `auth: { token }`. The functions here turn those into an account and are shared by the
//! HTTP routes and the `/counsellor` handshake, so both accept exactly the same credentials.
use ::http::HeaderMap;
use ::http::header::AUTHORIZATION;
use ::http::request::Parts;
use entity::counsellor_account;
use sea_orm::DbErr;
use tower_sessions::Session;

use crate::AppState;
use crate::store::SESSION_ACCOUNT_KEY;

pub mod accounts;
pub mod password;
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
    app: &AppState,
    token: &str,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    app.store.account_for_token(token).await
}

/// The account a session is signed in as, if it still exists.
pub async fn counsellor_for_session(
    app: &AppState,
    session: &Session,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    let account_id = session
        .get::<String>(SESSION_ACCOUNT_KEY)
        .await
        .map_err(|e| DbErr::Custom(format!("session: {e}")))?;
    match account_id {
        Some(id) => app.store.account(&id).await,
        None => Ok(None),
    }
}

/// The counsellor behind a `/counsellor` handshake, from the first of these that names a valid
/// account: `auth_token` (socket.io-client 3+ `auth: { token }`), an `Authorization: Bearer`
/// header, then the session cookie (the session layer runs outside socket.io, so the handshake
/// request carries the [`Session`]). A stale token does not hide a good cookie.
pub async fn counsellor_for_handshake(
    app: &AppState,
    parts: &Parts,
    auth_token: Option<&str>,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    if let Some(token) = auth_token.map(str::trim).filter(|t| !t.is_empty())
        && let Some(account) = counsellor_for_token(app, token).await?
    {
        return Ok(Some(account));
    }
    counsellor_for_request(app, &parts.headers, parts.extensions.get::<Session>()).await
}

/// The counsellor behind an HTTP request: a bearer token first, then the session.
pub async fn counsellor_for_request(
    app: &AppState,
    headers: &HeaderMap,
    session: Option<&Session>,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    if let Some(token) = bearer_token(headers)
        && let Some(account) = counsellor_for_token(app, token).await?
    {
        return Ok(Some(account));
    }
    match session {
        Some(session) => counsellor_for_session(app, session).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use ::http::HeaderValue;

    use super::*;

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
