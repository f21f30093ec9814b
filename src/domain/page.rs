//! Pages of one user's sessions, newest first by creation (`created_at`, then `session_id`, both
//! descending): how many a page holds, and the cursor that says where the next page starts.
//!
//! The cursor names the last session of the previous page by its sort key, not by its position,
//! so sessions created or deleted while a client walks the pages cannot shift the rest: every
//! session that existed when the walk began is listed exactly once. A session's sort key never
//! changes (updates leave `created_at` alone). The cursor is opaque to clients; it carries
//! nothing they could not read from the session itself, and it only ever selects among the
//! caller's own sessions.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::SessionId;
use super::session::Session;

/// One page: its sessions in order, and where the next page starts (`None` on the last).
#[derive(Debug)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    pub next: Option<PageCursor>,
}

/// How many sessions a page holds: 1 to [`PageLimit::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 100;
    pub const DEFAULT: PageLimit = PageLimit(50);

    pub fn parse(raw: &str) -> Result<PageLimit, InvalidLimit> {
        match raw.parse::<u32>() {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(PageLimit(limit)),
            _ => Err(InvalidLimit {
                received: super::echo(raw),
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// `limit` is not a whole number from 1 to [`PageLimit::MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLimit {
    received: String,
}

impl fmt::Display for InvalidLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "limit must be a whole number from 1 to {}, got {}",
            PageLimit::MAX,
            self.received
        )
    }
}

/// Where the next page starts: after the session with this sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: OffsetDateTime,
    pub session_id: SessionId,
}

impl PageCursor {
    /// The cursor of a page that ends with `last`.
    pub fn after(last: &Session) -> PageCursor {
        PageCursor {
            created_at: last.created_at,
            session_id: last.session_id.clone(),
        }
    }

    /// `<microseconds since the epoch>.<session ID>`, in unpadded base64url. PostgreSQL keeps
    /// microseconds, so the timestamp survives the round trip exactly; a session ID has no
    /// '.', so the split is unambiguous.
    pub fn encode(&self) -> String {
        let micros = self.created_at.unix_timestamp_nanos() / 1_000;
        URL_SAFE_NO_PAD.encode(format!("{micros}.{}", self.session_id.as_str()))
    }

    pub fn parse(raw: &str) -> Result<PageCursor, InvalidCursor> {
        let invalid = || InvalidCursor {
            received: super::echo(raw),
        };
        let decoded = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&decoded).map_err(|_| invalid())?;
        let (micros, session_id) = text.split_once('.').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
            .map_err(|_| invalid())?;
        let session_id = SessionId::parse(session_id).map_err(|_| invalid())?;
        Ok(PageCursor {
            created_at,
            session_id,
        })
    }
}

/// A `cursor` that no page of this service handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCursor {
    received: String,
}

impl fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cursor {} is not one this service handed out; pass a page's next_cursor as it is",
            self.received
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_to_the_microsecond() {
        let cursor = PageCursor {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_880_000_123_456_000)
                .unwrap(),
            session_id: SessionId::parse("Qm3-x_9").unwrap(),
        };
        assert_eq!(PageCursor::parse(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn anything_else_is_an_invalid_cursor() {
        let no_separator = URL_SAFE_NO_PAD.encode("12345");
        let bad_id = URL_SAFE_NO_PAD.encode("12345.a b");
        let bad_time = URL_SAFE_NO_PAD.encode("x.abc");
        for raw in ["", "!!!", &no_separator, &bad_id, &bad_time] {
            assert!(PageCursor::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_limit_is_one_to_a_hundred() {
        assert_eq!(PageLimit::parse("1").map(PageLimit::get), Ok(1));
        assert_eq!(PageLimit::parse("100").map(PageLimit::get), Ok(100));
        for raw in ["0", "101", "-1", "abc", "", " 5", "5.0"] {
            assert!(PageLimit::parse(raw).is_err(), "{raw:?}");
        }
    }
}
