//! The ids that name people and sockets, shared by the store, presence and both protocols.
//!
//! A socket id is only unique within a namespace, so a socket is named by both: a [`Conn`].
//! The shared presence writes these as text (a namespace's path, a socket id's string) and reads
//! them back with [`Conn::parse`].
use std::sync::Arc;

use socketioxide::socket::Sid;

/// A person's stable id, shared by all their sockets.
pub type BubbleId = Arc<str>;

/// The namespaces whose sockets can be in rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ns {
    /// `/`: users, and counsellors of the old apps.
    Root,
    /// `/counsellor`: signed-in counsellors.
    Counsellor,
}

impl Ns {
    pub fn path(self) -> &'static str {
        match self {
            Self::Root => "/",
            Self::Counsellor => "/counsellor",
        }
    }

    /// The namespace of a path written by [`Ns::path`].
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "/" => Some(Self::Root),
            "/counsellor" => Some(Self::Counsellor),
            _ => None,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Root => Self::Counsellor,
            Self::Counsellor => Self::Root,
        }
    }
}

/// One socket: its id is only unique within a namespace (a client multiplexing `/` and
/// `/counsellor` over one connection has the same id on both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conn {
    pub ns: Ns,
    pub sid: Sid,
}

impl Conn {
    /// A socket from a namespace's path and a socket id's string; `None` if either is not one.
    pub fn parse(ns: &str, sid: &str) -> Option<Self> {
        Some(Self {
            ns: Ns::from_path(ns)?,
            sid: sid.parse().ok()?,
        })
    }
}
