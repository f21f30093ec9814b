//! Recipient lists.
//!
//! Clients send recipients the way people type them into a To: field
//! (`"Smith, Jane" <jane@x.com>, k@y.org`) or as a JSON array of such strings.
//! Splitting on commas by hand gets quoted names and groups wrong, so the text
//! goes through a real RFC 5322 address-list parser (`mailparse`), and every
//! address is then checked on its own (`email_address`) because `mailparse`
//! only insists on an '@'. The result is de-duplicated and capped so one
//! request cannot turn into thousands of deliveries.
//!
//! Here are the types and the rules on a whole list (de-duplication, the cap); `parse` reads
//! and checks one source text, and `scan` finds what in it is quoted, commented or a group,
//! which the parser's input and its error messages need before and beside mailparse.

mod parse;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::echo;
use parse::parse_one_source;

/// One recipient: an address that passed validation, plus an optional display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// The address exactly as given (case preserved: local parts may be case-sensitive).
    pub email: String,
    /// Trimmed display name; `None` when absent or blank.
    pub name: Option<String>,
}

impl fmt::Display for Recipient {
    /// Renders the recipient in To:-field syntax that [`RecipientList::parse`]
    /// reads back to the same value: `addr`, `Name <addr>` or `"Quoted, Name" <addr>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None if self.email.starts_with('"') => {
                // mailparse reads a leading quote as a display name, so a
                // quoted local part only survives inside angle brackets.
                write!(f, "<{}>", self.email)
            }
            None => f.write_str(&self.email),
            Some(name) if name.chars().all(is_bare_name_char) => {
                write!(f, "{name} <{}>", self.email)
            }
            Some(name) => {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{escaped}\" <{}>", self.email)
            }
        }
    }
}

/// Characters a display name may contain without quoting: RFC 5322 `atext`
/// plus the space between words. Anything else is quoted, which is always safe.
fn is_bare_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// A parsed, de-duplicated list of at most [`RecipientList::MAX_RECIPIENTS`] recipients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct RecipientList(Vec<Recipient>);

impl RecipientList {
    /// Most unique recipients one list may hold.
    pub const MAX_RECIPIENTS: usize = 500;

    /// Longest accepted address, in bytes: the RFC 5321 path limit (256) minus the angle brackets.
    pub const MAX_ADDRESS_LEN: usize = 254;

    /// Parses an RFC 5322 address list such as `"Smith, Jane" <jane@x.com>, k@y.org`.
    ///
    /// Groups (`Team: a@x.com, b@y.com;`) are flattened into their members,
    /// addresses are de-duplicated case-insensitively keeping the first
    /// occurrence, and blank input gives an empty list, leaving it to the
    /// caller to decide whether "no recipients" is acceptable.
    pub fn parse(raw: &str) -> Result<RecipientList, InvalidRecipients> {
        Self::parse_sources([raw])
    }

    /// Parses each item (e.g. of a JSON array) as an address list and
    /// concatenates them, with the same de-duplication and limits as [`RecipientList::parse`].
    pub fn parse_each(items: &[impl AsRef<str>]) -> Result<RecipientList, InvalidRecipients> {
        Self::parse_sources(items.iter().map(AsRef::as_ref))
    }

    /// Wraps recipients loaded from the database, which were parsed before
    /// being stored, without checking them again.
    pub fn from_stored(recipients: Vec<Recipient>) -> RecipientList {
        RecipientList(recipients)
    }

    /// The recipients in order.
    pub fn as_slice(&self) -> &[Recipient] {
        &self.0
    }

    /// Number of recipients.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list has no recipients.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the recipients in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Recipient> {
        self.0.iter()
    }

    /// The one place the rules live, so single-string and array input cannot drift apart.
    fn parse_sources<'a>(
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Result<RecipientList, InvalidRecipients> {
        let mut seen = HashSet::new();
        let mut recipients = Vec::new();
        for raw in sources {
            for recipient in parse_one_source(raw)? {
                // Lower-casing the whole address is stricter than SMTP (local
                // parts may be case-sensitive) but matches what users mean by
                // "the same address". ASCII folding only, because the
                // database's unique index folds exactly that way
                // (`lower(email COLLATE "C")`): a Unicode fold here would
                // disagree with it on letters like 'İ' or final sigma, and the
                // index would turn the difference into a 500.
                if seen.insert(recipient.email.to_ascii_lowercase()) {
                    recipients.push(recipient);
                }
            }
        }
        if recipients.len() > Self::MAX_RECIPIENTS {
            return Err(InvalidRecipients::TooMany {
                count: recipients.len(),
                max: Self::MAX_RECIPIENTS,
            });
        }
        Ok(RecipientList(recipients))
    }
}

impl fmt::Display for RecipientList {
    /// Renders the list as a To: field (recipients joined by ", ") that parses back to this list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, recipient) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{recipient}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a RecipientList {
    type Item = &'a Recipient;
    type IntoIter = std::slice::Iter<'a, Recipient>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why recipient input was rejected; messages are meant for the API client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecipients {
    /// One entry is not a usable email address.
    #[error("invalid recipient address {}: {reason}", echo(.address))]
    InvalidAddress {
        /// The offending address (or entry, when no address could be extracted from it).
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A display name contains a line break or other control character, which
    /// could inject headers when the name is written into the message.
    #[error(
        "display name for recipient {} must not contain line breaks or other control characters",
        echo(.address)
    )]
    ControlCharacterInName {
        /// The address the name belongs to.
        address: String,
    },
    /// More unique addresses than one list may hold.
    #[error("too many recipients: {count} unique addresses given; the maximum is {max}")]
    TooMany {
        /// Number of unique addresses received.
        count: usize,
        /// The limit, [`RecipientList::MAX_RECIPIENTS`].
        max: usize,
    },
    /// The text is not an address list at all (unbalanced quotes, stray separators, ...).
    #[error("could not read recipient list: {reason}")]
    Malformed {
        /// What is wrong, including an excerpt of the input.
        reason: String,
    },
}
