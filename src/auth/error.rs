//! Why a presented token did not authenticate its caller, in this layer's terms. The HTTP edge
//! (`crate::error`) turns each kind into a status and a wire code; which kinds count against the
//! caller's address (in the failure log) is decided here, on the kind, never on how it will look on the wire.

use crate::storage::StorageError;

#[derive(Debug)]
pub enum AuthError {
    /// The token was shown to be bad: unknown, malformed, revoked, expired, or an identity
    /// token that failed a check. The message names which, for the caller.
    InvalidToken(String),
    /// An identity token names a signing key that is not cached, and its issuer cannot be
    /// reached to fetch it.
    IdentityProviderUnavailable,
    /// The database could not say whether the token is valid.
    Storage(StorageError),
}

impl AuthError {
    pub(super) fn invalid_token(message: impl Into<String>) -> AuthError {
        AuthError::InvalidToken(message.into())
    }

    /// Whether this failure counts against the caller's address (in the log and the failure
    /// count). Only a token shown to be bad does: an outage of ours or of the issuer is not the
    /// caller's doing.
    pub(super) fn counts_against_caller(&self) -> bool {
        matches!(self, AuthError::InvalidToken(_))
    }
}

impl From<StorageError> for AuthError {
    fn from(error: StorageError) -> AuthError {
        AuthError::Storage(error)
    }
}
