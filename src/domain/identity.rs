//! Who owns what. Every session belongs to one user, and every read and write
//! is addressed by the pair (user, session ID): that pair is the registry's
//! key, the database's unique key, and the reason one user's recipients can
//! never land in another user's session.

use std::fmt;

use crate::domain::SessionId;

/// The database ID of an API user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The database ID of an API token (the part of `<id>.<secret>` before the dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub i64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A person as an OpenID Connect issuer knows them: `sub` is unique and stable only within its
/// issuer, so the pair is the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The issuer's exact `iss`.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
}

/// A session as its owner names it: the key of everything session-shaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The owner.
    pub user_id: UserId,
    /// The owner's name for the session.
    pub session_id: SessionId,
}
