//! Signing in with a username and a password, once for both kinds of account: counsellors
//! (`POST /auth`) and TinCan users (`POST /tincan/login`). Each route decodes its own body and
//! answers in its own shape; what lies between is here, in this order:
//!
//! 1. the attempt is counted against the route's [`LoginLimits`] (per address and per username
//!    as typed, trimmed), and refused over them;
//! 2. the username is normalised (see [`username::normalize`]); a malformed one becomes the empty
//!    name, which no account has;
//! 3. the account is looked up;
//! 4. the password is verified with Argon2, against a dummy hash when there is no account (see
//!    [`password::verify`]).
//!
//! So the answer is the same, after about the same work, whatever is wrong: an unknown or
//! malformed username costs one lookup and one verification like a known one.
use std::future::Future;
use std::net::IpAddr;

use entity::{counsellor_account, tincan_user};
use sea_orm::DbErr;

use super::password::{self, PasswordError};
use super::rate_limit::LoginLimits;
use super::username;
use crate::store;

/// Where accounts that sign in with a password are found.
pub trait Directory {
    type Account;

    /// The account with this (normalised) username.
    fn by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<Self::Account>, DbErr>> + Send;

    /// The account's stored Argon2 hash.
    fn password_hash(account: &Self::Account) -> &str;
}

impl Directory for store::Accounts<'_> {
    type Account = counsellor_account::Model;

    fn by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<Self::Account>, DbErr>> + Send {
        store::Accounts::by_username(self, username)
    }

    fn password_hash(account: &Self::Account) -> &str {
        &account.password_hash
    }
}

impl Directory for store::tincan::Accounts<'_> {
    type Account = tincan_user::Model;

    fn by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<Self::Account>, DbErr>> + Send {
        store::tincan::Accounts::by_username(self, username)
    }

    fn password_hash(account: &Self::Account) -> &str {
        &account.password_hash
    }
}

/// Why a sign-in failed. Each route maps these to its own answer.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Over the limits on attempts.
    #[error("too many sign-in attempts")]
    RateLimited,
    /// Unknown username or wrong password, indistinguishably.
    #[error("wrong username or password")]
    Unauthorized,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// The account of `directory` that `typed` names, if `given` is its password; see the module
/// doc for the steps. `ip` is the client's address, when known.
pub async fn attempt<D: Directory>(
    directory: D,
    limits: &LoginLimits,
    ip: Option<IpAddr>,
    typed: &str,
    given: String,
) -> Result<D::Account, SignInError> {
    if !limits.allow(ip, typed.trim()) {
        return Err(SignInError::RateLimited);
    }
    let name = username::normalize(typed).unwrap_or_default();
    let account = directory.by_username(&name).await?;
    let stored = account.as_ref().map(|a| D::password_hash(a).to_owned());
    match (password::verify(given, stored).await?, account) {
        (true, Some(account)) => Ok(account),
        _ => Err(SignInError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_answer_for_unknown_users_and_wrong_passwords() {
        let (_dir, store) = store::temp_store().await;
        let hash = password::hash("password1".into()).await.unwrap();
        store
            .accounts()
            .create("alice", "Alice", &hash)
            .await
            .unwrap()
            .unwrap();
        store
            .tincan()
            .accounts()
            .create("bob", "Bob", &hash)
            .await
            .unwrap()
            .unwrap();
        let limits = LoginLimits::new(100, 100);
        let alice = attempt(
            store.accounts(),
            &limits,
            None,
            " Alice ",
            "password1".into(),
        )
        .await
        .unwrap();
        assert_eq!(alice.username, "alice");
        let bob = attempt(
            store.tincan().accounts(),
            &limits,
            None,
            "bob",
            "password1".into(),
        )
        .await
        .unwrap();
        assert_eq!(bob.username, "bob");
        for (typed, given) in [("alice", "wrong"), ("bob", "password1"), ("a", "password1")] {
            let failed = attempt(store.accounts(), &limits, None, typed, given.into()).await;
            assert!(matches!(failed, Err(SignInError::Unauthorized)), "{typed}");
        }
    }

    #[tokio::test]
    async fn attempts_over_the_limit_are_refused_before_any_check() {
        let (_dir, store) = store::temp_store().await;
        let limits = LoginLimits::new(100, 1);
        let first = attempt(store.accounts(), &limits, None, "carol", "x".into()).await;
        assert!(matches!(first, Err(SignInError::Unauthorized)));
        let second = attempt(store.accounts(), &limits, None, " CAROL", "x".into()).await;
        assert!(matches!(second, Err(SignInError::RateLimited)));
    }
}
