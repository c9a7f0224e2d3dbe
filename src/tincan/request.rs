//! One type per client event, decoded once from its payload before anything is looked up.
//!
//! Each [`Decode`] reads its fields with the functions of [`payload`] in the order the protocol
//! checks them, so the first field that is wrong is the one a failure names. Checks that need
//! the store (does the group exist, may the user do this) come after, in the handlers.
use super::TinCanError;
use super::accounts::MAX_DISPLAY_NAME;
use super::payload::{self, Visibility};
use crate::socket::payload::Object;
use crate::store::GroupCursor;

/// Longest group or conversation name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest group description, in characters.
pub const MAX_DESCRIPTION: usize = 1000;
/// Longest message, in characters.
pub const MAX_CONTENT: usize = 4000;
/// Longest `clientId` of a message.
const MAX_CLIENT_ID: usize = 100;
/// Longest `query` of `group/list`.
const MAX_QUERY: usize = 100;
/// Longest `cursor` of `group/list`.
const MAX_CURSOR: usize = 1000;

/// A request read from its payload's fields.
pub trait Decode: Sized {
    fn decode(o: &Object) -> Result<Self, TinCanError>;
}

/// `auth/logout`: reads nothing.
pub struct LogOut;

impl Decode for LogOut {
    fn decode(_: &Object) -> Result<Self, TinCanError> {
        Ok(Self)
    }
}

/// `group/create { name, description?, visibility?, members? }`.
pub struct CreateGroup {
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub members: Vec<String>,
}

impl Decode for CreateGroup {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            name: payload::text(o, "name", 1, MAX_NAME)?,
            description: payload::optional_text(o, "description", 0, MAX_DESCRIPTION)?
                .unwrap_or_default(),
            visibility: payload::visibility(o)?.unwrap_or(Visibility::Public),
            members: payload::ids(o, "members")?.unwrap_or_default(),
        })
    }
}

/// `group/edit { groupId, name?, description?, visibility?, addMembers?, removeMembers? }`.
pub struct EditGroup {
    pub group_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl Decode for EditGroup {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            group_id: payload::id(o, "groupId")?,
            name: payload::optional_text(o, "name", 1, MAX_NAME)?,
            description: payload::optional_text(o, "description", 0, MAX_DESCRIPTION)?,
            visibility: payload::visibility(o)?,
            add: payload::ids(o, "addMembers")?.unwrap_or_default(),
            remove: payload::ids(o, "removeMembers")?.unwrap_or_default(),
        })
    }
}

/// `group/list { query?, limit?, cursor? }`.
pub struct ListGroups {
    pub query: Option<String>,
    pub limit: u64,
    pub cursor: Option<GroupCursor>,
}

impl Decode for ListGroups {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        let query = payload::optional_string(o, "query", MAX_QUERY)?;
        let limit = payload::limit(o)?;
        let cursor = match payload::optional_string(o, "cursor", MAX_CURSOR)? {
            None => None,
            Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
                TinCanError::invalid("cursor", "cursor must be a nextCursor from group/list.")
            })?),
        };
        Ok(Self {
            query,
            limit,
            cursor,
        })
    }
}

/// `group/list`'s opaque cursor: the hex of `[name, id]` as JSON.
pub fn encode_cursor(name: &str, id: &str) -> String {
    hex::encode(serde_json::json!([name, id]).to_string())
}

fn decode_cursor(cursor: &str) -> Option<GroupCursor> {
    let bytes = hex::decode(cursor).ok()?;
    let (name, id): (String, String) = serde_json::from_slice(&bytes).ok()?;
    Some(GroupCursor { name, id })
}

/// Requests that carry a single id and nothing else: `$name { $key }`.
macro_rules! by_id {
    ($(#[doc = $doc:literal] $name:ident { $field:ident: $key:literal })*) => {$(
        #[doc = $doc]
        pub struct $name {
            pub $field: String,
        }

        impl Decode for $name {
            fn decode(o: &Object) -> Result<Self, TinCanError> {
                Ok(Self {
                    $field: payload::id(o, $key)?,
                })
            }
        }
    )*};
}

by_id! {
    /// `group/view { groupId }`.
    ViewGroup { group_id: "groupId" }
    /// `group/join { groupId }`.
    JoinGroup { group_id: "groupId" }
    /// `group/leave { groupId }`.
    LeaveGroup { group_id: "groupId" }
    /// `group/remove { groupId }`.
    RemoveGroup { group_id: "groupId" }
    /// `conversation/list { groupId }`.
    ListConversations { group_id: "groupId" }
    /// `conversation/remove { conversationId }`.
    RemoveConversation { conversation_id: "conversationId" }
    /// `conversation/type-start { conversationId }`.
    TypeStart { conversation_id: "conversationId" }
    /// `conversation/type-end { conversationId }`.
    TypeEnd { conversation_id: "conversationId" }
    /// `message/remove { messageId }`.
    RemoveMessage { message_id: "messageId" }
}

/// `conversation/create { groupId, name, participants? }`.
pub struct CreateConversation {
    pub group_id: String,
    pub name: String,
    /// `None` (absent or `null`): every member of the group.
    pub participants: Option<Vec<String>>,
}

impl Decode for CreateConversation {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            group_id: payload::id(o, "groupId")?,
            name: payload::text(o, "name", 1, MAX_NAME)?,
            participants: payload::nullable_ids(o, "participants")?.flatten(),
        })
    }
}

/// `conversation/edit { conversationId, name?, participants? }`.
pub struct EditConversation {
    pub conversation_id: String,
    pub name: Option<String>,
    /// `None`: unchanged; `Some(None)` (`null`): every member of the group.
    pub participants: Option<Option<Vec<String>>>,
}

impl Decode for EditConversation {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            conversation_id: payload::id(o, "conversationId")?,
            name: payload::optional_text(o, "name", 1, MAX_NAME)?,
            participants: payload::nullable_ids(o, "participants")?,
        })
    }
}

/// `message/create { conversationId, content, clientId? }`.
pub struct CreateMessage {
    pub conversation_id: String,
    pub content: String,
    pub client_id: Option<String>,
}

impl Decode for CreateMessage {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            conversation_id: payload::id(o, "conversationId")?,
            content: payload::content(o, "content", MAX_CONTENT)?,
            client_id: payload::optional_string(o, "clientId", MAX_CLIENT_ID)?,
        })
    }
}

/// `message/edit { messageId, content }`.
pub struct EditMessage {
    pub message_id: String,
    pub content: String,
}

impl Decode for EditMessage {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            message_id: payload::id(o, "messageId")?,
            content: payload::content(o, "content", MAX_CONTENT)?,
        })
    }
}

/// `message/list { conversationId, before?, limit? }`.
pub struct ListMessages {
    pub conversation_id: String,
    /// A message id of the conversation (checked against the store by the handler).
    pub before: Option<String>,
    pub limit: u64,
}

impl Decode for ListMessages {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            conversation_id: payload::id(o, "conversationId")?,
            before: payload::optional_id(o, "before")?,
            limit: payload::limit(o)?,
        })
    }
}

/// `POST /tincan/register { username, password, displayName? }`. The username is checked
/// before the password is read, so each field is decoded to its own result for the handler to
/// take in that order.
pub struct Register {
    pub username: Result<String, TinCanError>,
    pub password: Result<String, TinCanError>,
    pub display_name: Result<Option<String>, TinCanError>,
}

impl Decode for Register {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            username: string(o, "username"),
            password: string(o, "password"),
            display_name: payload::optional_text(o, "displayName", 1, MAX_DISPLAY_NAME),
        })
    }
}

/// `POST /tincan/login { username, password }`, as sent.
pub struct LogIn {
    pub username: String,
    pub password: String,
}

impl Decode for LogIn {
    fn decode(o: &Object) -> Result<Self, TinCanError> {
        Ok(Self {
            username: string(o, "username")?,
            password: string(o, "password")?,
        })
    }
}

/// A required string field, as sent.
fn string(o: &Object, key: &'static str) -> Result<String, TinCanError> {
    payload::optional_string(o, key, usize::MAX)?
        .ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = encode_cursor("Name \"quoted\" é", "id-1");
        assert_eq!(
            decode_cursor(&c),
            Some(GroupCursor {
                name: "Name \"quoted\" é".into(),
                id: "id-1".into()
            })
        );
        for junk in ["", "zz", "00", &hex::encode("[1,2]"), &hex::encode("{}")] {
            assert_eq!(decode_cursor(junk), None, "{junk}");
        }
    }
}
