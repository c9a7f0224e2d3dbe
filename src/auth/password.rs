//! Password hashing with Argon2id (default parameters: 19 MiB, 2 passes, 1 lane).
//!
//! A hash costs tens of milliseconds of CPU and 19 MiB of memory, so it runs on the blocking
//! pool, never on the async workers, and at most [`CONCURRENT_HASHES`] run at once: a burst of
//! sign-ins queues instead of exhausting memory or starving socket traffic.
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashes (or verifications) allowed to run at the same time.
pub const CONCURRENT_HASHES: usize = 4;

/// Shortest password accepted when one is set, in characters.
pub const MIN_LEN: usize = 8;
/// Longest password accepted, in characters. Longer ones are never verified either.
pub const MAX_LEN: usize = 128;

static HASHING: Semaphore = Semaphore::const_new(CONCURRENT_HASHES);

/// A hash with the default parameters of a password nobody knows. Verified in place of a real
/// one when the username does not exist, so that sign-in takes as long and answers the same
/// whether or not the account exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$pKq6dmknblgGKPXyh0gGog$ujWYzQJsOb6srCl/v6oflOcYM1yMU2QnLxFnvJTJvsg";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// A stored hash that does not parse, or a failure inside argon2.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    /// The blocking task panicked or was cancelled.
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The semaphore was closed; it never is.
    #[error("password hashing unavailable")]
    Closed,
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must be at least {MIN_LEN} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_LEN} characters long")]
    TooLong,
}

/// Checks the length of a password about to be set.
pub fn check_new(password: &str) -> Result<(), WeakPassword> {
    match password.chars().count() {
        n if n < MIN_LEN => Err(WeakPassword::TooShort),
        n if n > MAX_LEN => Err(WeakPassword::TooLong),
        _ => Ok(()),
    }
}

/// Hashes a password with a fresh random salt, as a PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    let _permit = HASHING.acquire().await.map_err(|_| PasswordError::Closed)?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(PasswordError::Hash)
    })
    .await?
}

/// Whether `password` matches `stored`. With no stored hash (no such account), or a password too
/// long to ever have been set, a dummy hash is verified instead and the answer is `false`, after
/// the same amount of work.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    let (stored, real) = match stored {
        Some(stored) if password.chars().count() <= MAX_LEN => (stored, true),
        _ => (DUMMY_HASH.to_owned(), false),
    };
    // A too-long password is not hashed as given: its length must not change the cost.
    let password = if real { password } else { String::new() };
    let _permit = HASHING.acquire().await.map_err(|_| PasswordError::Closed)?;
    let matches = tokio::task::spawn_blocking(move || {
        match Argon2::default().verify_password(password.as_bytes(), stored.as_str()) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(PasswordError::Hash(e)),
        }
    })
    .await??;
    Ok(matches && real)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use argon2::Params;
    use argon2::password_hash::phc::PasswordHash;

    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$"));
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("correct hors".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("".into(), Some(stored)).await.unwrap());
    }

    #[tokio::test]
    async fn salts_differ() {
        let a = hash("same password".into()).await.unwrap();
        let b = hash("same password".into()).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn unknown_account_is_false() {
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn too_long_password_is_false_even_if_it_matches() {
        let long = "x".repeat(MAX_LEN + 1);
        let stored = hash(long.clone()).await.unwrap();
        assert!(!verify(long, Some(stored)).await.unwrap());
    }

    #[tokio::test]
    async fn corrupt_hash_is_an_error() {
        let err = verify("password1".into(), Some("not a hash".into())).await;
        assert!(matches!(err, Err(PasswordError::Hash(_))));
    }

    /// The dummy must cost what a real hash costs, or timing tells which usernames exist.
    #[test]
    fn dummy_hash_has_default_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real = Argon2::default().hash_password(b"whatever").unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(
            Params::try_from(&dummy).unwrap(),
            Params::try_from(&real).unwrap()
        );
    }

    #[tokio::test]
    async fn dummy_verification_takes_about_as_long() {
        let stored = hash("timing test".into()).await.unwrap();
        // The fastest of a few runs: other tests share the machine and the hashing permits.
        let time = async |stored: Option<String>| {
            let mut fastest = Duration::MAX;
            for _ in 0..3 {
                let start = Instant::now();
                let _ = verify("wrong password".into(), stored.clone()).await;
                fastest = fastest.min(start.elapsed());
            }
            fastest
        };
        let real = time(Some(stored)).await;
        let dummy = time(None).await;
        let (lo, hi) = if real < dummy {
            (real, dummy)
        } else {
            (dummy, real)
        };
        assert!(
            hi < lo * 3 + Duration::from_millis(20),
            "real {real:?}, dummy {dummy:?}"
        );
    }

    #[test]
    fn new_password_length() {
        assert_eq!(check_new("1234567"), Err(WeakPassword::TooShort));
        assert_eq!(check_new("12345678"), Ok(()));
        assert_eq!(check_new(&"é".repeat(MAX_LEN)), Ok(()));
        assert_eq!(
            check_new(&"é".repeat(MAX_LEN + 1)),
            Err(WeakPassword::TooLong)
        );
    }
}
