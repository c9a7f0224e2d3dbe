//! Who may open the Admin UI: one user, whose password is checked against a bcrypt hash, as the
//! reference server's `auth: { type: "basic" }` does.
//!
//! A client that signed in is given a session id (the `session` event), which the UI sends
//! instead of the password when it reconnects or reloads (`auth: { sessionId }`). Sessions live
//! in this process's memory: a restart, or another node, asks for the password again.
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use rand::RngCore;
use serde_json::Value;

use crate::auth::rate_limit::LoginLimits;

/// Sign-in attempts allowed per client address per minute, and per username.
const PER_IP: u32 = 10;
const PER_USER: u32 = 10;

/// bcrypt's cost for `bubble admin-hash`.
pub const COST: u32 = 10;

/// Why a connection to `/admin` is refused; the UI shows this message.
#[derive(Debug, thiserror::Error)]
#[error("invalid credentials")]
pub struct InvalidCredentials;

/// The user of the Admin UI and the sessions it opened.
pub struct Credentials {
    user: String,
    hash: String,
    sessions: Mutex<HashSet<String>>,
    limits: LoginLimits,
}

/// How a client proved who it is.
#[derive(Debug, PartialEq, Eq)]
pub enum SignedIn {
    /// With the password: it is given this new session.
    Password(String),
    /// With a session it was given earlier.
    Session,
}

impl Credentials {
    /// The user and the bcrypt hash of its password (`$2a$`, `$2b$` or `$2y$`); a hash bcrypt
    /// cannot read is refused here rather than at every sign-in.
    pub fn new(user: String, hash: String) -> anyhow::Result<Self> {
        anyhow::ensure!(!user.is_empty(), "--admin-user is empty");
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| anyhow::anyhow!("--admin-password-hash is not a bcrypt hash: {e}"))?;
        Ok(Credentials {
            user,
            hash,
            sessions: Mutex::default(),
            limits: LoginLimits::new(PER_IP, PER_USER),
        })
    }

    /// Checks a handshake's `auth` object: `{ sessionId }` or `{ username, password }`. The hash
    /// is compared on a blocking thread (it takes a while, on purpose).
    pub async fn check(
        &self,
        auth: Option<&Value>,
        ip: Option<IpAddr>,
    ) -> Result<SignedIn, InvalidCredentials> {
        let field = |name: &str| auth.and_then(|a| a.get(name)).and_then(Value::as_str);
        if let Some(session) = field("sessionId")
            && self.lock().contains(session)
        {
            return Ok(SignedIn::Session);
        }
        let (Some(user), Some(password)) = (field("username"), field("password")) else {
            return Err(InvalidCredentials);
        };
        if !self.limits.allow(ip, user) || user != self.user {
            return Err(InvalidCredentials);
        }
        let hash = self.hash.clone();
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !matches {
            return Err(InvalidCredentials);
        }
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let session = hex::encode(id);
        self.lock().insert(session.clone());
        Ok(SignedIn::Password(session))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bcrypt hash of `password`, for `--admin-password-hash`.
pub fn hash(password: &str) -> anyhow::Result<String> {
    Ok(bcrypt::hash(password, COST)?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn credentials() -> Credentials {
        // Cost 4 keeps the test fast; the cost is read from the hash.
        let hash = bcrypt::hash("pw", 4).unwrap();
        Credentials::new("admin".into(), hash).unwrap()
    }

    #[tokio::test]
    async fn the_password_opens_a_session_that_opens_the_next_connection() {
        let c = credentials();
        let auth = json!({ "username": "admin", "password": "pw" });
        let Ok(SignedIn::Password(session)) = c.check(Some(&auth), None).await else {
            panic!("refused");
        };
        let again = json!({ "sessionId": session });
        assert_eq!(
            c.check(Some(&again), None).await.ok(),
            Some(SignedIn::Session)
        );
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        let c = credentials();
        for auth in [
            json!({ "username": "admin", "password": "wrong" }),
            json!({ "username": "other", "password": "pw" }),
            json!({ "username": "admin" }),
            json!({ "sessionId": "made-up" }),
            json!({ "username": "admin", "password": 5 }),
            json!("pw"),
        ] {
            assert!(c.check(Some(&auth), None).await.is_err(), "{auth}");
        }
        assert!(c.check(None, None).await.is_err());
    }

    #[test]
    fn hashes_bcrypt_cannot_read_are_refused_at_start() {
        assert!(Credentials::new("admin".into(), "plain".into()).is_err());
        assert!(Credentials::new(String::new(), bcrypt::hash("pw", 4).unwrap()).is_err());
    }

    #[tokio::test]
    async fn apache_hashes_are_read_too() {
        // `htpasswd -bnBC 10 "" pw` writes `$2y$` hashes, which are `$2b$` ones renamed.
        let hash = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let c = Credentials::new("admin".into(), hash).unwrap();
        let auth = json!({ "username": "admin", "password": "pw" });
        assert!(c.check(Some(&auth), None).await.is_ok());
    }
}
