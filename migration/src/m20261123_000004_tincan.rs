//! TinCan: accounts and their tokens, groups and their members, conversations and their
//! participants, and messages.
//!
//! Everything below a group goes with it (`ON DELETE CASCADE`); the store also deletes
//! explicitly, inside the same transaction, so that a connection without foreign keys enforced
//! leaves nothing behind either.
// Column identifiers follow the column names, some of which repeat their table's name.
#![allow(clippy::enum_variant_names)]
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TincanUser::Table)
                .col(string(TincanUser::Id).primary_key())
                .col(string(TincanUser::Username).unique_key())
                .col(text(TincanUser::DisplayName))
                .col(text(TincanUser::PasswordHash))
                .col(big_integer(TincanUser::CreatedAt))
                .col(big_integer(TincanUser::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanToken::Table)
                .col(string(TincanToken::TokenHash).primary_key())
                .col(string(TincanToken::UserId))
                .col(big_integer(TincanToken::CreatedAt))
                .col(big_integer(TincanToken::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanToken::Table, TincanToken::UserId)
                        .to(TincanUser::Table, TincanUser::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tincan_token_user")
                .table(TincanToken::Table)
                .col(TincanToken::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanGroup::Table)
                .col(string(TincanGroup::Id).primary_key())
                .col(text(TincanGroup::Name))
                .col(text(TincanGroup::Description))
                .col(string(TincanGroup::Visibility))
                .col(string(TincanGroup::OwnerId))
                .col(big_integer(TincanGroup::CreatedAt))
                .col(big_integer(TincanGroup::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanGroup::Table, TincanGroup::OwnerId)
                        .to(TincanUser::Table, TincanUser::Id),
                )
                .to_owned(),
        )
        .await?;
        // `group/list` pages by (name, id).
        m.create_index(
            Index::create()
                .name("idx_tincan_group_name_id")
                .table(TincanGroup::Table)
                .col(TincanGroup::Name)
                .col(TincanGroup::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanMember::Table)
                .col(string(TincanMember::GroupId))
                .col(string(TincanMember::UserId))
                .col(string(TincanMember::Status))
                .col(big_integer(TincanMember::JoinedAt))
                .primary_key(
                    Index::create()
                        .col(TincanMember::GroupId)
                        .col(TincanMember::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanMember::Table, TincanMember::GroupId)
                        .to(TincanGroup::Table, TincanGroup::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanMember::Table, TincanMember::UserId)
                        .to(TincanUser::Table, TincanUser::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tincan_member_user")
                .table(TincanMember::Table)
                .col(TincanMember::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanConversation::Table)
                .col(string(TincanConversation::Id).primary_key())
                .col(string(TincanConversation::GroupId))
                .col(text(TincanConversation::Name))
                .col(string(TincanConversation::OwnerId))
                .col(boolean(TincanConversation::AllMembers))
                .col(big_integer(TincanConversation::CreatedAt))
                .col(big_integer(TincanConversation::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanConversation::Table, TincanConversation::GroupId)
                        .to(TincanGroup::Table, TincanGroup::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tincan_conversation_group")
                .table(TincanConversation::Table)
                .col(TincanConversation::GroupId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanParticipant::Table)
                .col(string(TincanParticipant::ConversationId))
                .col(string(TincanParticipant::UserId))
                .primary_key(
                    Index::create()
                        .col(TincanParticipant::ConversationId)
                        .col(TincanParticipant::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanParticipant::Table, TincanParticipant::ConversationId)
                        .to(TincanConversation::Table, TincanConversation::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tincan_participant_user")
                .table(TincanParticipant::Table)
                .col(TincanParticipant::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TincanMessage::Table)
                .col(string(TincanMessage::Id).primary_key())
                .col(string(TincanMessage::ConversationId))
                .col(string(TincanMessage::AuthorId))
                .col(text(TincanMessage::Content))
                .col(string_null(TincanMessage::ClientId))
                .col(big_integer(TincanMessage::CreatedAt))
                .col(big_integer_null(TincanMessage::EditedAt))
                .col(big_integer_null(TincanMessage::RemovedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(TincanMessage::Table, TincanMessage::ConversationId)
                        .to(TincanConversation::Table, TincanConversation::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // `message/list` pages newest first by (createdAt, id) within a conversation.
        m.create_index(
            Index::create()
                .name("idx_tincan_message_conversation_created")
                .table(TincanMessage::Table)
                .col(TincanMessage::ConversationId)
                .col(TincanMessage::CreatedAt)
                .col(TincanMessage::Id)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum TincanUser {
    Table,
    Id,
    Username,
    DisplayName,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TincanToken {
    Table,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum TincanGroup {
    Table,
    Id,
    Name,
    Description,
    Visibility,
    OwnerId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TincanMember {
    Table,
    GroupId,
    UserId,
    Status,
    JoinedAt,
}

#[derive(DeriveIden)]
enum TincanConversation {
    Table,
    Id,
    GroupId,
    Name,
    OwnerId,
    AllMembers,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TincanParticipant {
    Table,
    ConversationId,
    UserId,
}

#[derive(DeriveIden)]
enum TincanMessage {
    Table,
    Id,
    ConversationId,
    AuthorId,
    Content,
    ClientId,
    CreatedAt,
    EditedAt,
    RemovedAt,
}
