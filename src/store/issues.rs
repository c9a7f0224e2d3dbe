//! Issues for counsellors, and user reports (which raise issues).
use entity::{issue, report};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use super::Store;
use crate::clock::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Someone asked for a counsellor while none was online.
    UserMissed,
    /// Someone was matched with a counsellor.
    UserRequested,
    /// Someone was reported.
    UserFlagged,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserMissed => "USER_MISSED",
            Self::UserRequested => "USER_REQUESTED",
            Self::UserFlagged => "USER_FLAGGED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewIssue {
    pub issue_type: IssueType,
    pub user_id: String,
    pub bubble_id: String,
    pub counsellor_id: Option<String>,
    pub room_id: Option<String>,
    pub reason: Option<String>,
}

/// A report of `reported_user_id` in a room.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub room_id: String,
    pub reporter_user_id: String,
    pub reporter_bubble_id: String,
    pub reported_user_id: String,
    pub reported_bubble_id: String,
    pub reason: String,
}

/// Issues and reports; see [`Store::issues`].
#[derive(Clone, Copy, Debug)]
pub struct Issues<'a> {
    pub(super) store: &'a Store,
}

/// Stores an issue on `db`, which may be a transaction that writes more.
pub(super) async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewIssue,
) -> Result<issue::Model, DbErr> {
    let now = now_ms();
    let row = issue::ActiveModel {
        issue_type: Set(new.issue_type.as_str().to_owned()),
        user_id: Set(new.user_id),
        bubble_id: Set(new.bubble_id),
        counsellor_id: Set(new.counsellor_id),
        room_id: Set(new.room_id),
        reason: Set(new.reason),
        resolved_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    issue::Entity::insert(row).exec_with_returning(db).await
}

impl Issues<'_> {
    pub async fn add(&self, new: NewIssue) -> Result<issue::Model, DbErr> {
        insert(&self.store.db, new).await
    }

    /// Stores a report and the `USER_FLAGGED` issue it raises, together.
    pub async fn add_report(&self, new: NewReport) -> Result<(), DbErr> {
        let txn = self.store.db.begin().await?;
        let row = report::ActiveModel {
            room_id: Set(new.room_id.clone()),
            reporter_user_id: Set(new.reporter_user_id.clone()),
            reporter_bubble_id: Set(new.reporter_bubble_id),
            reported_user_id: Set(new.reported_user_id.clone()),
            reported_bubble_id: Set(new.reported_bubble_id.clone()),
            reason: Set(new.reason.clone()),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        report::Entity::insert(row)
            .exec_without_returning(&txn)
            .await?;
        let issue = NewIssue {
            issue_type: IssueType::UserFlagged,
            user_id: new.reported_user_id,
            bubble_id: new.reported_bubble_id,
            counsellor_id: None,
            room_id: Some(new.room_id),
            reason: Some(new.reason),
        };
        insert(&txn, issue).await?;
        txn.commit().await
    }

    /// Marks an issue handled. Returns it, `None` if there is no such issue.
    pub async fn resolve(&self, id: i64) -> Result<Option<issue::Model>, DbErr> {
        let now = now_ms();
        let updated = issue::Entity::update_many()
            .col_expr(issue::Column::ResolvedAt, now.into())
            .col_expr(issue::Column::UpdatedAt, now.into())
            .filter(issue::Column::Id.eq(id))
            .exec_with_returning(&self.store.db)
            .await?;
        Ok(updated.into_iter().next())
    }

    /// Open issues a counsellor sees: every missed request and flagged user, and the requests
    /// matched to that counsellor. Oldest first.
    pub async fn open(&self, counsellor_id: Option<&str>) -> Result<Vec<issue::Model>, DbErr> {
        let mut visible = Condition::any().add(issue::Column::IssueType.is_in([
            IssueType::UserMissed.as_str(),
            IssueType::UserFlagged.as_str(),
        ]));
        if let Some(counsellor_id) = counsellor_id {
            visible = visible.add(
                Condition::all()
                    .add(issue::Column::IssueType.eq(IssueType::UserRequested.as_str()))
                    .add(issue::Column::CounsellorId.eq(counsellor_id)),
            );
        }
        issue::Entity::find()
            .filter(issue::Column::ResolvedAt.is_null())
            .filter(visible)
            .order_by_asc(issue::Column::Id)
            .all(&self.store.db)
            .await
    }
}
