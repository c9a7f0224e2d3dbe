//! Presence shared by several nodes: which node is alive, which socket of which person is
//! connected to it, which rooms each socket is in, and which counsellors are online. Only read
//! and written when nodes are linked by an adapter; a single node keeps presence in memory.
//!
//! Every row names its node, so that the rows of a node that died can be removed at once.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PresenceNode::Table)
                .col(string(PresenceNode::Id).primary_key())
                .col(big_integer(PresenceNode::SeenAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PresenceSocket::Table)
                .col(string(PresenceSocket::Ns))
                .col(string(PresenceSocket::Sid))
                .col(string(PresenceSocket::NodeId))
                .col(string(PresenceSocket::BubbleId))
                .primary_key(
                    Index::create()
                        .col(PresenceSocket::Ns)
                        .col(PresenceSocket::Sid),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PresenceRoom::Table)
                // The join order, for `participants`.
                .col(big_pk_auto(PresenceRoom::Id))
                .col(string(PresenceRoom::RoomId))
                .col(string(PresenceRoom::RoomName))
                .col(string(PresenceRoom::Ns))
                .col(string(PresenceRoom::Sid))
                .col(string(PresenceRoom::NodeId))
                .col(string(PresenceRoom::BubbleId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PresenceCounsellor::Table)
                .col(string(PresenceCounsellor::Ns))
                .col(string(PresenceCounsellor::Sid))
                .col(string(PresenceCounsellor::NodeId))
                .col(string(PresenceCounsellor::CounsellorId))
                .col(string(PresenceCounsellor::Name))
                // Matches claimed but not yet attached to a room.
                .col(integer(PresenceCounsellor::Pending).default(0))
                .col(big_integer(PresenceCounsellor::IdleSince))
                .primary_key(
                    Index::create()
                        .col(PresenceCounsellor::Ns)
                        .col(PresenceCounsellor::Sid),
                )
                .to_owned(),
        )
        .await?;
        // The counsellor rooms a counsellor's socket was matched into: its load.
        m.create_table(
            Table::create()
                .table(PresenceMatch::Table)
                .col(string(PresenceMatch::Ns))
                .col(string(PresenceMatch::Sid))
                .col(string(PresenceMatch::RoomId))
                .col(string(PresenceMatch::NodeId))
                .primary_key(
                    Index::create()
                        .col(PresenceMatch::Ns)
                        .col(PresenceMatch::Sid)
                        .col(PresenceMatch::RoomId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_presence_room_socket")
                .table(PresenceRoom::Table)
                .col(PresenceRoom::RoomId)
                .col(PresenceRoom::Ns)
                .col(PresenceRoom::Sid)
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_presence_room_of", PresenceRoom::Sid),
            ("ix_presence_room_node", PresenceRoom::NodeId),
        ] {
            let index = Index::create()
                .name(name)
                .table(PresenceRoom::Table)
                .col(col)
                .to_owned();
            m.create_index(index).await?;
        }
        for (name, col) in [
            ("ix_presence_socket_sid", PresenceSocket::Sid),
            ("ix_presence_socket_node", PresenceSocket::NodeId),
        ] {
            let index = Index::create()
                .name(name)
                .table(PresenceSocket::Table)
                .col(col)
                .to_owned();
            m.create_index(index).await?;
        }
        let index = Index::create()
            .name("ix_presence_counsellor_node")
            .table(PresenceCounsellor::Table)
            .col(PresenceCounsellor::NodeId)
            .to_owned();
        m.create_index(index).await?;
        let index = Index::create()
            .name("ix_presence_match_node")
            .table(PresenceMatch::Table)
            .col(PresenceMatch::NodeId)
            .to_owned();
        m.create_index(index).await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PresenceNode {
    Table,
    Id,
    SeenAt,
}

#[derive(DeriveIden)]
enum PresenceSocket {
    Table,
    Ns,
    Sid,
    NodeId,
    BubbleId,
}

#[derive(DeriveIden)]
enum PresenceRoom {
    Table,
    Id,
    RoomId,
    RoomName,
    Ns,
    Sid,
    NodeId,
    BubbleId,
}

#[derive(DeriveIden)]
enum PresenceCounsellor {
    Table,
    Ns,
    Sid,
    NodeId,
    CounsellorId,
    Name,
    Pending,
    IdleSince,
}

#[derive(DeriveIden)]
enum PresenceMatch {
    Table,
    Ns,
    Sid,
    RoomId,
    NodeId,
}
