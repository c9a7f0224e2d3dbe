//! Managing counsellor accounts (the `bubble counsellor` commands): the rules on usernames,
//! names and passwords are checked here, once, before anything is stored.
use entity::counsellor_account;
use sea_orm::DbErr;

use super::password::{self, PasswordError, WeakPassword};
use super::username::{self, InvalidUsername};
use crate::store::Store;

/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    InvalidUsername(#[from] InvalidUsername),
    #[error("the name must be 1 to {MAX_NAME_LEN} characters")]
    InvalidName,
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error("the username `{0}` is taken")]
    UsernameTaken(String),
    #[error("no counsellor with the username `{0}`")]
    UnknownUser(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Creates an account. The username is stored lowercase, the name trimmed.
pub async fn add(
    store: &Store,
    username: &str,
    name: &str,
    new_password: &str,
) -> Result<counsellor_account::Model, AccountError> {
    let username = username::normalize(username)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(AccountError::InvalidName);
    }
    password::check_new(new_password)?;
    // Checked first only to spare a hash; the unique index decides.
    if store.accounts().by_username(&username).await?.is_some() {
        return Err(AccountError::UsernameTaken(username));
    }
    let hash = password::hash(new_password.to_owned()).await?;
    store
        .accounts()
        .create(&username, name, &hash)
        .await?
        .ok_or(AccountError::UsernameTaken(username))
}

/// Sets a new password, which signs the account out everywhere (API tokens and sessions).
pub async fn set_password(
    store: &Store,
    username: &str,
    new_password: &str,
) -> Result<counsellor_account::Model, AccountError> {
    let username = username::normalize(username)?;
    password::check_new(new_password)?;
    let hash = password::hash(new_password.to_owned()).await?;
    store
        .accounts()
        .set_password(&username, &hash)
        .await?
        .ok_or(AccountError::UnknownUser(username))
}

/// Removes an account with its API tokens and sessions.
pub async fn remove(
    store: &Store,
    username: &str,
) -> Result<counsellor_account::Model, AccountError> {
    let username = username::normalize(username)?;
    store
        .accounts()
        .remove(&username)
        .await?
        .ok_or(AccountError::UnknownUser(username))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        crate::store::temp_store().await
    }

    #[tokio::test]
    async fn add_checks_and_normalises() {
        let (_dir, store) = store().await;
        let a = add(&store, " Alice ", " Alice A. ", "password1")
            .await
            .unwrap();
        assert_eq!(
            (a.username.as_str(), a.name.as_str()),
            ("alice", "Alice A.")
        );
        assert!(
            password::verify("password1".into(), Some(a.password_hash))
                .await
                .unwrap()
        );

        let taken = add(&store, "ALICE", "Other", "password1").await;
        assert!(matches!(taken, Err(AccountError::UsernameTaken(u)) if u == "alice"));
        let bad = add(&store, "a", "A", "password1").await;
        assert!(matches!(bad, Err(AccountError::InvalidUsername(_))));
        let short = add(&store, "bob", "Bob", "short").await;
        assert!(matches!(
            short,
            Err(AccountError::WeakPassword(WeakPassword::TooShort))
        ));
        let unnamed = add(&store, "bob", "  ", "password1").await;
        assert!(matches!(unnamed, Err(AccountError::InvalidName)));
        assert_eq!(store.accounts().list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn passwd_and_remove_need_a_known_user() {
        let (_dir, store) = store().await;
        add(&store, "alice", "Alice", "password1").await.unwrap();
        let a = set_password(&store, "Alice", "password2").await.unwrap();
        let a = store.accounts().get(&a.id).await.unwrap().unwrap();
        assert!(
            password::verify("password2".into(), Some(a.password_hash))
                .await
                .unwrap()
        );
        let unknown = set_password(&store, "bob", "password2").await;
        assert!(matches!(unknown, Err(AccountError::UnknownUser(u)) if u == "bob"));

        assert_eq!(remove(&store, "ALICE").await.unwrap().id, a.id);
        assert!(matches!(
            remove(&store, "alice").await,
            Err(AccountError::UnknownUser(_))
        ));
    }
}
