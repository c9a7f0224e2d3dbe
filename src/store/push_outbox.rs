//! The push outbox: rows written with the message that causes them, claimed and settled by the
//! push worker.
//!
//! The upsert and the claim are written as SQL: the first is one `INSERT … SELECT … ON CONFLICT`
//! against a partial unique index, the second needs `FOR UPDATE SKIP LOCKED` on PostgreSQL. Both
//! run unchanged on SQLite and PostgreSQL apart from placeholders and that lock clause.
use std::borrow::Cow;
use std::sync::Arc;

use entity::{push_outbox, push_token};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};

use super::Store;
use crate::push_content::{self, Kind};

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// What [`Messages::add`](super::Messages::add) needs to queue pushes for a new message: the
/// people who must not get one because they are in the room now, and how long a new push waits
/// for more messages to the same device and room before it is sent (they collapse into it).
#[derive(Debug, Clone, Copy)]
pub struct PushFanout<'a> {
    pub present: &'a [Arc<str>],
    pub collapse_ms: i64,
    /// The author's display name, said in a reaction's push.
    pub author_name: Option<&'a str>,
}

/// Nobody present and a minute's collapse, for tests.
#[cfg(test)]
impl PushFanout<'static> {
    pub(crate) const NOBODY_HERE: Self = PushFanout {
        present: &[],
        collapse_ms: 60_000,
        author_name: None,
    };
}

/// Placeholders in the backend's syntax: `?` for SQLite, `$1`, `$2`, … for PostgreSQL. Each
/// placeholder is used once, in the order bound (SQLite's `?` are positional).
pub(super) struct Params {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl Params {
    pub(super) fn new(backend: DatabaseBackend) -> Self {
        Self::with_capacity(backend, 0)
    }

    pub(super) fn with_capacity(backend: DatabaseBackend, values: usize) -> Self {
        Self {
            backend,
            values: Vec::with_capacity(values),
        }
    }

    pub(super) fn bind(&mut self, value: impl Into<Value>) -> Cow<'static, str> {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => Cow::Owned(format!("${}", self.values.len())),
            _ => Cow::Borrowed("?"),
        }
    }

    pub(super) fn into_values(self) -> Vec<Value> {
        self.values
    }

    pub(super) fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

/// Queues, inside the transaction that stores `message`, one push per member of the room who is
/// not its author, not present and has a device token, in one statement. A device that already
/// has a pending push for this room gets that row updated to this message instead (its due time
/// stays, so a steady stream of messages still pushes once per collapse window). Returns the
/// number of rows written or updated.
pub(super) async fn enqueue_for_message<C: ConnectionTrait>(
    txn: &C,
    room_name: &str,
    message: &entity::message::Model,
    fanout: &PushFanout<'_>,
) -> Result<u64, DbErr> {
    let mut p = Params::new(txn.get_database_backend());
    let sql = enqueue_statement(&mut p, room_name, message, fanout);
    let done = txn.execute_raw(p.statement(sql)).await?;
    Ok(done.rows_affected())
}

/// The statement of [`enqueue_for_message`], its values bound to `p`; it returns the
/// `message_id` of every row it writes or updates, one row per push queued.
pub(super) fn enqueue_statement(
    p: &mut Params,
    room_name: &str,
    message: &entity::message::Model,
    fanout: &PushFanout<'_>,
) -> String {
    let kind = Kind::of_message_type(&message.message_type);
    let c = push_content::for_message(
        kind,
        &message.room_id,
        room_name,
        message.id,
        &message.content,
        fanout.author_name,
    );
    let now = Ord::max(message.created_at, crate::clock::now_ms());
    let room = p.bind(message.room_id.as_str());
    let message_id = p.bind(message.id);
    let kind = p.bind(kind.as_str());
    let title = p.bind(c.title);
    let body = p.bind(c.body);
    let data = p.bind(c.data);
    let due = p.bind(now + Ord::max(fanout.collapse_ms, 0));
    let created = p.bind(now);
    let updated = p.bind(now);
    let member_room = p.bind(message.room_id.as_str());
    let mut absent = vec![p.bind(message.bubble_id.as_str())];
    absent.extend(fanout.present.iter().map(|b| p.bind(&**b)));
    let absent = absent.join(", ");
    format!(
        "INSERT INTO push_outbox (token, platform, bubble_id, room_id, message_id, kind, title, \
         body, data, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT t.token, t.platform, t.bubble_id, {room}, {message_id}, {kind}, {title}, {body}, \
         {data}, '{PENDING}', 0, {due}, {created}, {updated} \
         FROM room_member m JOIN push_token t ON t.bubble_id = m.bubble_id \
         WHERE m.room_id = {member_room} AND m.bubble_id NOT IN ({absent}) \
         ON CONFLICT (token, room_id) WHERE status = '{PENDING}' DO UPDATE SET \
         bubble_id = excluded.bubble_id, platform = excluded.platform, \
         message_id = excluded.message_id, kind = excluded.kind, title = excluded.title, \
         body = excluded.body, data = excluded.data, updated_at = excluded.updated_at \
         RETURNING message_id AS queued_for"
    )
}

/// Device tokens and the push outbox; see [`Store::push`].
#[derive(Clone, Copy, Debug)]
pub struct Push<'a> {
    pub(super) store: &'a Store,
}

impl Push<'_> {
    /// Claims up to `batch` due pending rows for `lease_ms`: until then no other worker (in this
    /// process or another) takes them. A row whose lease ran out, because its worker died, is due
    /// again. On PostgreSQL concurrent claimers skip each other's locked rows; SQLite runs one
    /// writer at a time, so the `UPDATE … RETURNING` alone is atomic.
    pub async fn claim(
        &self,
        now: i64,
        lease_ms: i64,
        batch: u64,
    ) -> Result<Vec<push_outbox::Model>, DbErr> {
        let backend = self.store.db.get_database_backend();
        let mut p = Params::new(backend);
        let until = p.bind(now + lease_ms);
        let due = p.bind(now);
        let free = p.bind(now);
        let limit = p.bind(batch as i64);
        let lock = match backend {
            DatabaseBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE push_outbox SET claimed_until = {until} WHERE id IN (\
             SELECT id FROM push_outbox WHERE status = '{PENDING}' AND next_attempt_at <= {due} \
             AND (claimed_until IS NULL OR claimed_until <= {free}) \
             ORDER BY next_attempt_at, id LIMIT {limit}{lock}) \
             RETURNING *"
        );
        push_outbox::Entity::find()
            .from_raw_sql(p.statement(sql))
            .all(&self.store.db)
            .await
    }

    /// When the worker next has something to do: the earliest time a pending row is due and not
    /// leased. `None` when nothing is pending.
    pub async fn next_due(&self) -> Result<Option<i64>, DbErr> {
        let sql = format!(
            "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until \
             ELSE next_attempt_at END) AS due FROM push_outbox WHERE status = '{PENDING}'"
        );
        let stmt = Statement::from_string(self.store.db.get_database_backend(), sql);
        match self.store.db.query_one_raw(stmt).await? {
            Some(row) => row.try_get::<Option<i64>>("", "due"),
            None => Ok(None),
        }
    }

    /// Marks a claimed row sent. When a newer message collapsed into the row while it was being
    /// sent (its `message_id` moved on), the row is released instead, due now, so that the newer
    /// text goes out too. Returns whether the row is done.
    pub async fn sent(&self, row: &push_outbox::Model, now: i64) -> Result<bool, DbErr> {
        let sent = push_outbox::Entity::update_many()
            .col_expr(push_outbox::Column::Status, Expr::value(SENT))
            .col_expr(
                push_outbox::Column::Attempts,
                Expr::col(push_outbox::Column::Attempts).add(1),
            )
            .col_expr(push_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(push_outbox::Column::LastError, Expr::value(None::<String>))
            .col_expr(push_outbox::Column::UpdatedAt, Expr::value(now))
            .filter(push_outbox::Column::Id.eq(row.id))
            .filter(push_outbox::Column::MessageId.eq(row.message_id))
            .filter(push_outbox::Column::Status.eq(PENDING))
            .exec(&self.store.db)
            .await?;
        if sent.rows_affected > 0 {
            return Ok(true);
        }
        self.retry_at(row, now, now, None).await?;
        Ok(false)
    }

    /// Puts a claimed row back to be tried again at `at`.
    pub async fn retry_at(
        &self,
        row: &push_outbox::Model,
        at: i64,
        now: i64,
        error: Option<&str>,
    ) -> Result<(), DbErr> {
        let mut update = push_outbox::Entity::update_many()
            .col_expr(
                push_outbox::Column::Attempts,
                Expr::col(push_outbox::Column::Attempts).add(1),
            )
            .col_expr(push_outbox::Column::NextAttemptAt, Expr::value(at))
            .col_expr(push_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(push_outbox::Column::UpdatedAt, Expr::value(now));
        if let Some(error) = error {
            update = update.col_expr(push_outbox::Column::LastError, Expr::value(error));
        }
        update
            .filter(push_outbox::Column::Id.eq(row.id))
            .filter(push_outbox::Column::Status.eq(PENDING))
            .exec(&self.store.db)
            .await?;
        Ok(())
    }

    /// Gives up on a row for good.
    pub async fn failed(
        &self,
        row: &push_outbox::Model,
        now: i64,
        error: &str,
    ) -> Result<(), DbErr> {
        push_outbox::Entity::update_many()
            .col_expr(push_outbox::Column::Status, Expr::value(FAILED))
            .col_expr(
                push_outbox::Column::Attempts,
                Expr::col(push_outbox::Column::Attempts).add(1),
            )
            .col_expr(push_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(push_outbox::Column::LastError, Expr::value(error))
            .col_expr(push_outbox::Column::UpdatedAt, Expr::value(now))
            .filter(push_outbox::Column::Id.eq(row.id))
            .filter(push_outbox::Column::Status.eq(PENDING))
            .exec(&self.store.db)
            .await?;
        Ok(())
    }

    /// The provider says `token` names no device any more: forgets the token and gives up on
    /// every push still pending for it. Returns whether a token was removed.
    pub async fn token_invalid(&self, token: &str, now: i64) -> Result<bool, DbErr> {
        let txn = self.store.db.begin().await?;
        let removed = push_token::Entity::delete_many()
            .filter(push_token::Column::Token.eq(token))
            .exec(&txn)
            .await?;
        push_outbox::Entity::update_many()
            .col_expr(push_outbox::Column::Status, Expr::value(FAILED))
            .col_expr(push_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(push_outbox::Column::LastError, Expr::value("invalid token"))
            .col_expr(push_outbox::Column::UpdatedAt, Expr::value(now))
            .filter(push_outbox::Column::Token.eq(token))
            .filter(push_outbox::Column::Status.eq(PENDING))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(removed.rows_affected > 0)
    }

    /// Deletes sent and failed rows last touched before `before`: they are kept a while only to
    /// be looked at.
    pub async fn prune(&self, before: i64) -> Result<u64, DbErr> {
        let done = push_outbox::Entity::delete_many()
            .filter(push_outbox::Column::Status.is_in([SENT, FAILED]))
            .filter(push_outbox::Column::UpdatedAt.lt(before))
            .exec(&self.store.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// Every outbox row, oldest first; for tests and diagnostics.
    pub async fn outbox_rows(&self) -> Result<Vec<push_outbox::Model>, DbErr> {
        use sea_orm::QueryOrder;
        push_outbox::Entity::find()
            .order_by_asc(push_outbox::Column::Id)
            .all(&self.store.db)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::{NewMessage, NewRoom, temp_store};

    /// What queueing pushes adds to `add_message`: run with
    /// `cargo test --release --lib add_message_cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn add_message_cost() {
        const MESSAGES: usize = 2000;
        const MEMBERS: usize = 20;
        for tokens in [0, MEMBERS] {
            let (_dir, store) = temp_store().await;
            let members: Vec<String> = (0..MEMBERS).map(|i| format!("m{i}")).collect();
            let mut all: Vec<&str> = members.iter().map(String::as_str).collect();
            all.push("author");
            let room = store
                .rooms()
                .create(NewRoom::by_author("Bench", 100), &all, None)
                .await
                .unwrap();
            for m in members.iter().take(tokens) {
                store
                    .push()
                    .register_token(&format!("tok-{m}"), m, "fcm")
                    .await
                    .unwrap();
            }
            let present: Vec<Arc<str>> = vec!["author".into()];
            let fanout = PushFanout {
                present: &present,
                collapse_ms: 60_000,
                author_name: None,
            };
            let started = Instant::now();
            for i in 0..MESSAGES {
                let new = NewMessage {
                    room_id: room.id.clone(),
                    user_id: "sid".into(),
                    bubble_id: "author".into(),
                    message_type: "MESSAGE",
                    content: format!("message {i}"),
                    target_user: None,
                    target_user_bubble_id: None,
                };
                store.messages().add(new, &fanout).await.unwrap().unwrap();
            }
            let per = started.elapsed() / MESSAGES as u32;
            eprintln!(
                "add_message with {tokens} of {MEMBERS} absent members holding tokens: {per:?}"
            );
        }
    }
}
