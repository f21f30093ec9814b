//! Domain types for the email-sessions service.
//!
//! "Parse, don't validate": raw strings from the wire become these types at the
//! edge (HTTP handlers, database rows), so handlers and the session actor only
//! ever see parsed values. A value of one of these types is proof that its
//! rules were checked, which keeps re-validation and "did anyone check this?"
//! questions out of the rest of the code.

pub mod content;
pub mod identity;
pub mod page;
pub mod precondition;
mod recipient_list;
pub mod session;
mod session_id;
mod subject;

pub use recipient_list::{InvalidRecipients, Recipient, RecipientList};
pub use session_id::SessionId;
pub use subject::Subject;

/// Longest prefix of rejected input echoed back in an error message.
const ECHO_MAX_CHARS: usize = 80;

/// Quotes and escapes rejected input for an error message, cut to
/// `ECHO_MAX_CHARS` so a hostile or accidental megabyte does not end up in
/// responses and logs, and escaped so control characters cannot forge log lines.
fn echo(raw: &str) -> String {
    match raw.char_indices().nth(ECHO_MAX_CHARS) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!(
            "{:?}... ({} characters in total)",
            &raw[..cut],
            raw.chars().count()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_quotes_and_escapes() {
        assert_eq!(echo("a\"b\nc"), r#""a\"b\nc""#);
    }

    #[test]
    fn echo_keeps_exactly_the_limit() {
        let raw = "x".repeat(ECHO_MAX_CHARS);
        assert_eq!(echo(&raw), format!("\"{raw}\""));
    }

    #[test]
    fn echo_truncates_long_input_on_a_char_boundary() {
        let raw = "é".repeat(ECHO_MAX_CHARS + 5);
        let echoed = echo(&raw);
        assert!(echoed.starts_with(&format!("\"{}\"...", "é".repeat(ECHO_MAX_CHARS))));
        assert!(echoed.ends_with("(85 characters in total)"));
    }
}
