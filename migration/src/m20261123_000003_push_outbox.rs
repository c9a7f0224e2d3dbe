//! The push outbox: notifications waiting for (or done with) a push provider.
//!
//! A row is written in the same transaction as the message that causes it, so a push is never
//! lost to a crash between the two, and a worker sends it later. While a row for a device and a
//! room is still `pending`, newer messages to that room update it instead of adding rows: the
//! partial unique index on `(token, room_id) WHERE status = 'pending'` is the conflict target of
//! that upsert. SQLite and PostgreSQL both support partial indexes, so it is written as SQL.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PushOutbox::Table)
                .col(big_pk_auto(PushOutbox::Id))
                .col(string(PushOutbox::Token))
                .col(string(PushOutbox::Platform))
                .col(string(PushOutbox::BubbleId))
                .col(string(PushOutbox::RoomId))
                .col(big_integer(PushOutbox::MessageId))
                .col(string(PushOutbox::Kind))
                .col(text(PushOutbox::Title))
                .col(text(PushOutbox::Body))
                .col(text(PushOutbox::Data))
                .col(string(PushOutbox::Status))
                .col(integer(PushOutbox::Attempts).default(0))
                .col(big_integer(PushOutbox::NextAttemptAt))
                .col(big_integer_null(PushOutbox::ClaimedUntil))
                .col(text_null(PushOutbox::LastError))
                .col(big_integer(PushOutbox::CreatedAt))
                .col(big_integer(PushOutbox::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // What the worker claims: pending rows, the earliest due first.
        m.create_index(
            Index::create()
                .name("idx_push_outbox_status_next")
                .table(PushOutbox::Table)
                .col(PushOutbox::Status)
                .col(PushOutbox::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_push_outbox_pending \
                 ON push_outbox (token, room_id) WHERE status = 'pending'",
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PushOutbox {
    Table,
    Id,
    Token,
    Platform,
    BubbleId,
    RoomId,
    MessageId,
    Kind,
    Title,
    Body,
    Data,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}
