//! A person's sockets are looked up by their bubbleId: an exit from a room is told to every
//! socket of that person, on every node.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let index = Index::create()
            .name("ix_presence_socket_bubble")
            .table(PresenceSocket::Table)
            .col(PresenceSocket::BubbleId)
            .to_owned();
        m.create_index(index).await
    }
}

#[derive(DeriveIden)]
enum PresenceSocket {
    Table,
    BubbleId,
}
