//! Counsellor authentication: passwords, usernames, and who is behind a request or handshake.
pub mod password;
pub mod username;
