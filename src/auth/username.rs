//! Usernames of counsellor accounts: 3 to 32 of `a-z 0-9 _ . -`, case-insensitive, stored
//! lowercase so that `Alice` and `alice` are one account.

/// Shortest username, in characters.
pub const MIN_LEN: usize = 3;
/// Longest username, in characters.
pub const MAX_LEN: usize = 32;

/// Why a username is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a username is {MIN_LEN} to {MAX_LEN} characters among letters a-z, digits 0-9, `_`, `.` and `-`"
)]
pub struct InvalidUsername;

/// The stored form of a username as typed: lowercased, surrounding spaces removed, then checked.
pub fn normalize(username: &str) -> Result<String, InvalidUsername> {
    let lower = username.trim().to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if (MIN_LEN..=MAX_LEN).contains(&lower.len()) && lower.chars().all(allowed) {
        Ok(lower)
    } else {
        Err(InvalidUsername)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_trims() {
        assert_eq!(normalize("Alice").unwrap(), "alice");
        assert_eq!(normalize("  bob.smith_2-x ").unwrap(), "bob.smith_2-x");
    }

    #[test]
    fn length_bounds() {
        assert_eq!(normalize("ab"), Err(InvalidUsername));
        assert_eq!(normalize("abc").unwrap(), "abc");
        assert_eq!(normalize(&"a".repeat(32)).unwrap(), "a".repeat(32));
        assert_eq!(normalize(&"a".repeat(33)), Err(InvalidUsername));
        assert_eq!(normalize(""), Err(InvalidUsername));
    }

    #[test]
    fn refuses_other_characters() {
        for bad in [
            "al ice", "alice!", "al/ice", "ålice", "alice@x", "a\u{0}bc", "ALİCE",
        ] {
            assert_eq!(normalize(bad), Err(InvalidUsername), "{bad:?}");
        }
    }
}
