//! Session identifiers.
//!
//! Session IDs come from clients (URL paths, JSON bodies) and end up in logs,
//! database keys and URLs, so they are restricted to a short, URL- and
//! log-safe alphabet. IDs the service hands out are random and long enough that
//! knowing one session's ID says nothing about another's.

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;

/// Number of characters in a generated ID: 26 draws from 62 symbols is about
/// 154 bits, comfortably beyond guessing, and well under `MAX_LEN`.
const GENERATED_LEN: usize = 26;

/// A parsed session ID: 1 to [`SessionId::MAX_LEN`] characters of `[A-Za-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Longest accepted session ID, in characters (which are all ASCII, so also bytes).
    pub const MAX_LEN: usize = 64;

    /// Parses a session ID exactly as received; surrounding whitespace is an
    /// error rather than being trimmed, so one ID never has two spellings.
    pub fn parse(raw: &str) -> Result<SessionId, InvalidSessionId> {
        // Every allowed character is one byte, so the byte length check is
        // also the character length check for any input that can pass.
        let well_formed = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if well_formed {
            Ok(SessionId(raw.to_owned()))
        } else {
            Err(InvalidSessionId {
                received: super::echo(raw),
            })
        }
    }

    /// Generates a fresh, unguessable ID from the OS-seeded, cryptographically
    /// secure thread RNG.
    pub fn generate() -> SessionId {
        SessionId(Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LEN))
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a session ID; the message is meant for the API client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "session ID must be 1 to {max} characters of A-Z, a-z, 0-9, '_' or '-'; received {received}",
    max = SessionId::MAX_LEN
)]
pub struct InvalidSessionId {
    /// Already escaped and truncated, so a huge input is not kept alive by its error.
    received: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_single_character() {
        assert_eq!(SessionId::parse("a").unwrap().as_str(), "a");
    }

    #[test]
    fn accepts_full_alphabet() {
        let raw = "AZaz09_-";
        assert_eq!(SessionId::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn accepts_max_len() {
        let raw = "a".repeat(SessionId::MAX_LEN);
        assert_eq!(SessionId::parse(&raw).unwrap().as_str(), raw);
    }

    #[test]
    fn rejects_one_over_max_len() {
        assert!(SessionId::parse(&"a".repeat(SessionId::MAX_LEN + 1)).is_err());
    }

    #[test]
    fn rejects_empty() {
        assert!(SessionId::parse("").is_err());
    }

    #[test]
    fn does_not_trim() {
        assert!(SessionId::parse(" abc").is_err());
        assert!(SessionId::parse("abc\n").is_err());
    }

    #[test]
    fn rejects_punctuation_and_non_ascii() {
        for raw in ["a.b", "a/b", "a b", "../x", "é", "a\0"] {
            assert!(SessionId::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn error_message_explains_rule_and_echoes_input() {
        let err = SessionId::parse("bad id\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "session ID must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'; \
             received \"bad id\\n\""
        );
    }

    #[test]
    fn error_message_truncates_long_input() {
        let err = SessionId::parse(&"x".repeat(10_000)).unwrap_err();
        let message = err.to_string();
        assert!(message.len() < 300, "message too long: {message}");
        assert!(message.ends_with("(10000 characters in total)"));
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_eq!(a.as_str().len(), GENERATED_LEN);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, b);
    }

    #[test]
    fn display_as_ref_and_serialize_are_the_bare_string() {
        let id = SessionId::parse("abc-123").unwrap();
        assert_eq!(id.to_string(), "abc-123");
        assert_eq!(id.as_ref(), "abc-123");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""abc-123""#);
    }

    proptest! {
        #[test]
        fn any_allowed_string_round_trips(raw in "[A-Za-z0-9_-]{1,64}") {
            let id = SessionId::parse(&raw).unwrap();
            prop_assert_eq!(id.as_str(), raw.as_str());
            prop_assert_eq!(id.to_string(), raw);
        }

        #[test]
        fn any_disallowed_char_is_rejected(
            prefix in "[A-Za-z0-9_-]{0,31}",
            bad in any::<char>().prop_filter("outside the alphabet", |c| {
                !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            }),
            suffix in "[A-Za-z0-9_-]{0,32}",
        ) {
            let raw = format!("{prefix}{bad}{suffix}");
            prop_assert!(SessionId::parse(&raw).is_err());
        }

        #[test]
        fn too_long_is_rejected(raw in "[A-Za-z0-9_-]{65,200}") {
            prop_assert!(SessionId::parse(&raw).is_err());
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = SessionId::parse(&raw);
        }
    }
}
