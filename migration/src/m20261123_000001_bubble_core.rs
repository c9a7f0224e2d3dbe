//! Rooms, members, messages, people, issues, reports, counsellors and push tokens.
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
                .table(Person::Table)
                .col(string(Person::BubbleId).primary_key())
                .col(string_null(Person::TokenHash).unique_key())
                .col(text_null(Person::Name))
                .col(big_integer(Person::CreatedAt))
                .col(big_integer(Person::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Room::Table)
                .col(string(Room::Id).primary_key())
                .col(text(Room::Name))
                .col(text(Room::Description))
                .col(string(Room::RoomType))
                .col(integer(Room::UserLimit))
                .col(text(Room::Categories))
                .col(boolean(Room::IsOpen))
                .col(string(Room::CreatedBy))
                .col(string(Room::CreatedByBubbleId))
                .col(big_integer(Room::LastActive))
                .col(big_integer(Room::CreatedAt))
                .col(big_integer(Room::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_room_open_last_active")
                .table(Room::Table)
                .col(Room::IsOpen)
                .col(Room::LastActive)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RoomMember::Table)
                .col(string(RoomMember::RoomId))
                .col(string(RoomMember::BubbleId))
                .col(big_integer(RoomMember::JoinedAt))
                .primary_key(
                    Index::create()
                        .col(RoomMember::RoomId)
                        .col(RoomMember::BubbleId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(RoomMember::Table, RoomMember::RoomId)
                        .to(Room::Table, Room::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_room_member_bubble")
                .table(RoomMember::Table)
                .col(RoomMember::BubbleId)
                .col(RoomMember::JoinedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Message::Table)
                .col(big_pk_auto(Message::Id))
                .col(string(Message::RoomId))
                .col(string(Message::UserId))
                .col(string(Message::BubbleId))
                .col(string(Message::MessageType))
                .col(text(Message::Content))
                .col(string_null(Message::TargetUser))
                .col(string_null(Message::TargetUserBubbleId))
                .col(big_integer(Message::CreatedAt))
                .col(big_integer(Message::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Message::Table, Message::RoomId)
                        .to(Room::Table, Room::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_message_room_created")
                .table(Message::Table)
                .col(Message::RoomId)
                .col(Message::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Issue::Table)
                .col(big_pk_auto(Issue::Id))
                .col(string(Issue::IssueType))
                .col(string(Issue::UserId))
                .col(string(Issue::BubbleId))
                .col(string_null(Issue::CounsellorId))
                .col(string_null(Issue::RoomId))
                .col(text_null(Issue::Reason))
                .col(big_integer_null(Issue::ResolvedAt))
                .col(big_integer(Issue::CreatedAt))
                .col(big_integer(Issue::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Report::Table)
                .col(big_pk_auto(Report::Id))
                .col(string(Report::RoomId))
                .col(string(Report::ReporterUserId))
                .col(string(Report::ReporterBubbleId))
                .col(string(Report::ReportedUserId))
                .col(string(Report::ReportedBubbleId))
                .col(text(Report::Reason))
                .col(big_integer(Report::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Counsellor::Table)
                .col(string(Counsellor::Id).primary_key())
                .col(text(Counsellor::Name))
                .col(big_integer(Counsellor::CreatedAt))
                .col(big_integer(Counsellor::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PushToken::Table)
                .col(string(PushToken::Token).primary_key())
                .col(string(PushToken::BubbleId))
                .col(string(PushToken::Platform))
                .col(big_integer(PushToken::CreatedAt))
                .col(big_integer(PushToken::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_push_token_bubble")
                .table(PushToken::Table)
                .col(PushToken::BubbleId)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Person {
    Table,
    BubbleId,
    TokenHash,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Room {
    Table,
    Id,
    Name,
    Description,
    RoomType,
    UserLimit,
    Categories,
    IsOpen,
    CreatedBy,
    CreatedByBubbleId,
    LastActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RoomMember {
    Table,
    RoomId,
    BubbleId,
    JoinedAt,
}

#[derive(DeriveIden)]
enum Message {
    Table,
    Id,
    RoomId,
    UserId,
    BubbleId,
    MessageType,
    Content,
    TargetUser,
    TargetUserBubbleId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Issue {
    Table,
    Id,
    IssueType,
    UserId,
    BubbleId,
    CounsellorId,
    RoomId,
    Reason,
    ResolvedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Report {
    Table,
    Id,
    RoomId,
    ReporterUserId,
    ReporterBubbleId,
    ReportedUserId,
    ReportedBubbleId,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Counsellor {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PushToken {
    Table,
    Token,
    BubbleId,
    Platform,
    CreatedAt,
    UpdatedAt,
}
