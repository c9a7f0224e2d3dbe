//! Counsellor accounts, their API tokens, and HTTP sessions.
//!
//! The `counsellor` table of the first migration stays as it is: it records the old apps'
//! unauthenticated counsellors, who have no account.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CounsellorAccount::Table)
                .col(string(CounsellorAccount::Id).primary_key())
                .col(string(CounsellorAccount::Username).unique_key())
                .col(text(CounsellorAccount::Name))
                .col(text(CounsellorAccount::PasswordHash))
                .col(big_integer(CounsellorAccount::CreatedAt))
                .col(big_integer(CounsellorAccount::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CounsellorToken::Table)
                .col(string(CounsellorToken::TokenHash).primary_key())
                .col(string(CounsellorToken::AccountId))
                .col(big_integer(CounsellorToken::CreatedAt))
                .col(big_integer(CounsellorToken::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(CounsellorToken::Table, CounsellorToken::AccountId)
                        .to(CounsellorAccount::Table, CounsellorAccount::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_counsellor_token_account")
                .table(CounsellorToken::Table)
                .col(CounsellorToken::AccountId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Session::Table)
                .col(string(Session::Id).primary_key())
                .col(text(Session::Data))
                .col(big_integer(Session::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_session_expires_at")
                .table(Session::Table)
                .col(Session::ExpiresAt)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum CounsellorAccount {
    Table,
    Id,
    Username,
    Name,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CounsellorToken {
    Table,
    TokenHash,
    AccountId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Session {
    Table,
    Id,
    Data,
    ExpiresAt,
}
