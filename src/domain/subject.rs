//! Email subjects.
//!
//! The subject is written into a message header, so it must never contain a
//! line break (which would let a client inject extra headers) or any other
//! control character, and it must fit on one RFC 5322 header line. Otherwise
//! it is the user's text and is kept exactly as given.

use serde::Serialize;

/// A parsed subject: at most [`Subject::MAX_CHARS`] characters and no control
/// characters other than TAB. The empty subject is valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    /// RFC 5322's line length limit, counted in characters rather than octets
    /// so the limit users hit does not depend on their script.
    pub const MAX_CHARS: usize = 998;

    /// Parses a subject without trimming: what the user typed is what gets sent,
    /// and an empty string means "set the subject to empty".
    pub fn parse(raw: &str) -> Result<Subject, InvalidSubject> {
        // Control characters are checked first: they are the security-relevant
        // rule, and their message is the more useful one when both apply.
        if raw.chars().any(|c| c.is_control() && c != '\t') {
            return Err(InvalidSubject::ControlCharacter);
        }
        let chars = raw.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(InvalidSubject::TooLong {
                chars,
                max: Self::MAX_CHARS,
            });
        }
        Ok(Subject(raw.to_owned()))
    }

    /// The subject as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a valid subject; messages are meant for the API client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSubject {
    /// Longer than an email header line allows.
    #[error("subject is {chars} characters long; the maximum is {max}")]
    TooLong {
        /// Length of the rejected subject, in characters.
        chars: usize,
        /// The limit, [`Subject::MAX_CHARS`].
        max: usize,
    },
    /// Contains a line break, NUL or other control character.
    #[error("subject must not contain line breaks or other control characters (tab is allowed)")]
    ControlCharacter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_is_valid() {
        assert_eq!(Subject::parse("").unwrap().as_str(), "");
    }

    #[test]
    fn keeps_text_exactly() {
        let raw = "  Re: hello\tworld  ";
        assert_eq!(Subject::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn accepts_max_chars() {
        let raw = "a".repeat(Subject::MAX_CHARS);
        assert_eq!(Subject::parse(&raw).unwrap().as_str(), raw);
    }

    #[test]
    fn rejects_one_over_max_chars() {
        let err = Subject::parse(&"a".repeat(Subject::MAX_CHARS + 1)).unwrap_err();
        assert_eq!(
            err,
            InvalidSubject::TooLong {
                chars: 999,
                max: 998
            }
        );
        assert_eq!(
            err.to_string(),
            "subject is 999 characters long; the maximum is 998"
        );
    }

    #[test]
    fn limit_counts_chars_not_bytes() {
        // 998 two-byte characters is 1996 bytes but still within the limit.
        assert!(Subject::parse(&"é".repeat(Subject::MAX_CHARS)).is_ok());
        assert!(Subject::parse(&"é".repeat(Subject::MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn rejects_header_injection_and_other_controls() {
        for raw in [
            "hi\r\nBcc: x@y.z",
            "line\nbreak",
            "cr\r",
            "nul\0",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_eq!(
                Subject::parse(raw),
                Err(InvalidSubject::ControlCharacter),
                "{raw:?} should be rejected"
            );
        }
    }

    #[test]
    fn control_character_message_is_human() {
        assert_eq!(
            InvalidSubject::ControlCharacter.to_string(),
            "subject must not contain line breaks or other control characters (tab is allowed)"
        );
    }

    #[test]
    fn serializes_as_bare_string() {
        let subject = Subject::parse("Hi").unwrap();
        assert_eq!(serde_json::to_string(&subject).unwrap(), r#""Hi""#);
    }

    proptest! {
        #[test]
        fn text_without_controls_round_trips(raw in "[^\\p{Cc}]{0,998}|[\\t a-z]{0,50}") {
            let subject = Subject::parse(&raw).unwrap();
            prop_assert_eq!(subject.as_str(), raw);
        }

        #[test]
        fn any_control_except_tab_is_rejected(
            prefix in "[^\\p{Cc}]{0,20}",
            bad in "[\\x00-\\x08\\x0A-\\x1F\\x7F-\\x9F]",
            suffix in "[^\\p{Cc}]{0,20}",
        ) {
            let raw = format!("{prefix}{bad}{suffix}");
            prop_assert_eq!(Subject::parse(&raw), Err(InvalidSubject::ControlCharacter));
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = Subject::parse(&raw);
        }
    }
}
