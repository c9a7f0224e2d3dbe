//! SeaORM entities of the Bubble store, one module per table.
//!
//! Every timestamp is an `i64` count of milliseconds since the Unix epoch (UTC): portable across
//! SQLite and PostgreSQL, cheap to compare, and exact for the strictly increasing `createdAt`
//! values the protocol promises within a room. Ids the protocol exposes as UUIDs are stored as
//! their lowercase hyphenated text.

pub mod counsellor;
pub mod counsellor_account;
pub mod counsellor_token;
pub mod issue;
pub mod message;
pub mod person;
pub mod push_outbox;
pub mod push_token;
pub mod report;
pub mod room;
pub mod room_member;
pub mod session;
pub mod tincan_conversation;
pub mod tincan_group;
pub mod tincan_member;
pub mod tincan_message;
pub mod tincan_participant;
pub mod tincan_token;
pub mod tincan_user;
