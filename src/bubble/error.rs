//! Every way a Bubble request can fail, and its wire code.
use crate::socket::WireError;

/// A failed request: sent to the requesting socket only, as `bubble_error { code, message }`.
#[derive(Debug, thiserror::Error)]
pub enum BubbleError {
    #[error("No message specified.")]
    NoMessage,
    #[error("No reaction specified.")]
    NoReaction,
    #[error("No name specified.")]
    NoName,
    #[error("No room id specified.")]
    NoRoomId,
    #[error("No room name specified.")]
    NoRoomName,
    #[error("The room is full.")]
    RoomFull,
    #[error("No room with that id.")]
    RoomIdNotFound,
    #[error("You are not in that room.")]
    UserNotInRoom,
    #[error("No counsellor is online right now.")]
    CounsellorUnavailable,
    #[error("No such user in that room to report.")]
    NoUserToReport,
    #[error("The room is closed.")]
    RoomClosed,
    #[error("No target user specified.")]
    NoTargetUser,
    #[error("The room id must be a UUID string.")]
    InvalidRoomId,
    #[error("The name must be a string of at most 100 characters.")]
    InvalidNewName,
    #[error(
        "The room name must be a string of at most 200 characters, the description at most 1000."
    )]
    InvalidRoomName,
    #[error("The user limit must be a whole number from 2 to 100.")]
    InvalidUserLimit,
    #[error("The message must be a string of at most 3000 characters.")]
    InvalidMessage,
    #[error(
        "Categories must be an array of: Rant, Funny, Nostalgia, Relationship, Advice, School."
    )]
    InvalidCategories,
    #[error("The push token must be a non-empty string of at most 4096 characters.")]
    InvalidPushToken,
    #[error("The platform must be one of fcm, android, apns, ios.")]
    InvalidPlatform,
    #[error("The reaction must be a string of at most 50 characters.")]
    InvalidReaction,
    #[error("The target user must be a string.")]
    InvalidTargetUser,
    #[error("The reason must be a string of at most 1000 characters.")]
    InvalidReason,
    #[error("The counsellor id and name must be strings of at most 100 characters.")]
    InvalidCounsellor,
    #[error("The room type must be HOT or PUBLIC, and a private room keeps its type.")]
    InvalidRoomType,
    #[error("No issue id specified.")]
    NoIssueId,
    #[error("The issue id must be a number.")]
    InvalidIssueId,
    #[error("No issue with that id.")]
    IssueNotFound,
    #[error("Only signed-in counsellors may do that.")]
    Unauthorized,
    #[error("Too many requests waiting; slow down.")]
    RateLimited,
    #[error("Something went wrong on the server.")]
    Internal(#[from] sea_orm::DbErr),
}

impl BubbleError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoMessage => "no_message",
            Self::NoReaction => "no_reaction",
            Self::NoName => "no_name",
            Self::NoRoomId => "no_room_id",
            Self::NoRoomName => "no_room_name",
            Self::RoomFull => "room_full",
            Self::RoomIdNotFound => "room_id_not_found",
            Self::UserNotInRoom => "user_not_in_room",
            Self::CounsellorUnavailable => "counsellor_unavailable",
            Self::NoUserToReport => "no_user_to_report",
            Self::RoomClosed => "room_closed",
            Self::NoTargetUser => "no_target_user",
            Self::InvalidRoomId => "invalid_room_id",
            Self::InvalidNewName => "invalid_new_name",
            Self::InvalidRoomName => "invalid_room_name",
            Self::InvalidUserLimit => "invalid_user_limit",
            Self::InvalidMessage => "invalid_message",
            Self::InvalidCategories => "invalid_categories",
            Self::InvalidPushToken => "invalid_push_token",
            Self::InvalidPlatform => "invalid_platform",
            Self::InvalidReaction => "invalid_reaction",
            Self::InvalidTargetUser => "invalid_target_user",
            Self::InvalidReason => "invalid_reason",
            Self::InvalidCounsellor => "invalid_counsellor",
            Self::InvalidRoomType => "invalid_room_type",
            Self::NoIssueId => "no_issue_id",
            Self::InvalidIssueId => "invalid_issue_id",
            Self::IssueNotFound => "issue_not_found",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The `{ code, message }` body; internal details never leave the server.
    pub fn wire(&self) -> WireError {
        WireError {
            code: self.code(),
            message: self.to_string(),
            field: None,
        }
    }
}
