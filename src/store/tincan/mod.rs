//! Everything TinCan keeps: users and their tokens ([`accounts`]), groups and their members
//! ([`groups`]), conversations ([`conversations`]) and messages ([`messages`]), each reached
//! through a handle from [`TinCan`] (`store.tincan().groups()`, …).
//!
//! Every write runs in one transaction; on SQLite it starts as `BEGIN IMMEDIATE` (see
//! `write`), so a read-then-write transaction takes the write lock up front and waits for
//! another writer instead of failing to upgrade.
use sea_orm::{
    DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use super::Store;

pub mod accounts;
pub mod conversations;
pub mod groups;
pub mod messages;

pub use accounts::{Accounts, SignedIn};
pub use conversations::{ConversationRecord, Conversations};
pub use groups::{EditedGroup, GroupChanges, GroupCursor, Groups, MEMBER, NewGroup, PENDING};
pub use messages::Messages;

/// TinCan's part of the store; see [`Store::tincan`].
#[derive(Clone, Copy, Debug)]
pub struct TinCan<'a> {
    pub(super) store: &'a Store,
}

impl<'a> TinCan<'a> {
    /// Users and their sign-in tokens.
    pub fn accounts(self) -> Accounts<'a> {
        Accounts { store: self.store }
    }

    /// Groups and their members, pending requests included.
    pub fn groups(self) -> Groups<'a> {
        Groups { store: self.store }
    }

    /// Conversations of groups and who takes part.
    pub fn conversations(self) -> Conversations<'a> {
        Conversations { store: self.store }
    }

    /// Messages of conversations.
    pub fn messages(self) -> Messages<'a> {
        Messages { store: self.store }
    }
}

/// A write transaction (`BEGIN IMMEDIATE` on SQLite).
async fn write(store: &Store) -> Result<DatabaseTransaction, DbErr> {
    store
        .db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
}
