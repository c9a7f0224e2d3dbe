//! The protocol's closed sets of words: room types, message kinds, push platforms. Handlers use
//! these; the store keeps its column strings, and [`RoomType::as_str`] and the like are where one
//! turns into the other.
use std::str::FromStr;

use crate::store::{HOT, PRIVATE, PUBLIC};

/// What kind of room: listed to everyone, featured at the top of `list_rooms`, or for its
/// members only (a counsellor's chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomType {
    Public,
    Hot,
    Private,
}

impl RoomType {
    /// The spelling of the wire and of the `room_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => PUBLIC,
            Self::Hot => HOT,
            Self::Private => PRIVATE,
        }
    }

    /// Whether a stored room (its `room_type` column) is of this type.
    pub fn is(self, column: &str) -> bool {
        column == self.as_str()
    }
}

impl FromStr for RoomType {
    type Err = ();

    /// Exactly as spelled on the wire (upper case).
    fn from_str(s: &str) -> Result<Self, ()> {
        [Self::Public, Self::Hot, Self::Private]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

/// What a stored message is: said in the room, or a reaction to someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Message,
    Reaction,
}

impl MessageKind {
    /// The spelling of the wire (`messageType`) and of the `message_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "MESSAGE",
            Self::Reaction => "REACTION",
        }
    }

    /// Whether a stored message (its `message_type` column) is of this kind.
    pub fn is(self, column: &str) -> bool {
        column == self.as_str()
    }
}

/// Where a device's push token sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Firebase Cloud Messaging (Android, and the default).
    Fcm,
    /// Apple Push Notification service.
    Apns,
}

impl Platform {
    /// The spelling of the push token's `platform` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fcm => "fcm",
            Self::Apns => "apns",
        }
    }
}

impl FromStr for Platform {
    type Err = ();

    /// `fcm` or `android`, `apns` or `ios`, in any case.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "fcm" | "android" => Ok(Self::Fcm),
            "apns" | "ios" => Ok(Self::Apns),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_types_read_as_written() {
        for t in [RoomType::Public, RoomType::Hot, RoomType::Private] {
            assert_eq!(t.as_str().parse(), Ok(t));
            assert!(t.is(t.as_str()));
        }
        assert_eq!("hot".parse::<RoomType>(), Err(()));
    }

    #[test]
    fn platforms_have_their_aliases() {
        assert_eq!("Android".parse(), Ok(Platform::Fcm));
        assert_eq!("IOS".parse(), Ok(Platform::Apns));
        assert_eq!("web".parse::<Platform>(), Err(()));
    }
}
