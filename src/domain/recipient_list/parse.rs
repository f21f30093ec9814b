//! From text to [`Recipient`]s: `mailparse` reads each piece of the list that the group cut in
//! `scan` hands it, and `email_address` then checks every address on its own, because mailparse
//! only insists on an '@'. mailparse's terse errors are reworded here for the API client, and
//! point at the bad entry where the scan can find it.

use email_address::{EmailAddress, Options};
use mailparse::{MailAddr, MailParseError, SingleInfo};

use super::scan::{rough_entries, split_after_groups};
use super::{InvalidRecipients, Recipient, RecipientList};
use crate::domain::echo;

/// Parses one address list and validates each address, without de-duplication.
pub(super) fn parse_one_source(raw: &str) -> Result<Vec<Recipient>, InvalidRecipients> {
    let mut recipients = Vec::new();
    for piece in split_after_groups(raw)? {
        let parsed =
            mailparse::addrparse(piece).map_err(|err| describe_mailparse_error(raw, &err))?;
        for single in parsed.iter().flat_map(|entry| match entry {
            MailAddr::Single(single) => std::slice::from_ref(single),
            MailAddr::Group(group) => group.addrs.as_slice(),
        }) {
            recipients.push(validate(raw, single)?);
        }
    }
    Ok(recipients)
}

/// Turns one mailbox from `mailparse` into a [`Recipient`], applying the
/// checks `mailparse` leaves out.
fn validate(raw: &str, single: &SingleInfo) -> Result<Recipient, InvalidRecipients> {
    // Lenient on `< a@x.com >`: spaces inside the brackets are never part of the address.
    let email = single.addr.trim();
    if email.starts_with(',') {
        // mailparse glues the second comma of ",," onto the next address
        // instead of reporting an empty entry.
        return Err(empty_entry(raw));
    }
    let invalid = |reason: String| InvalidRecipients::InvalidAddress {
        address: email.to_owned(),
        reason,
    };
    if email.len() > RecipientList::MAX_ADDRESS_LEN {
        return Err(invalid(format!(
            "it is {} bytes long; the maximum is {}",
            email.len(),
            RecipientList::MAX_ADDRESS_LEN
        )));
    }
    // Same rules as `EmailAddress::is_valid`, but keeping the error for the
    // message, and refusing "Name <addr>" forms: by now this must be a bare address.
    EmailAddress::parse_with_options(email, Options::default().without_display_text())
        .map_err(|err| invalid(describe_address_error(&err)))?;

    let name = single
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    if name.is_some_and(|name| name.chars().any(|c| c.is_control() && c != '\t')) {
        return Err(InvalidRecipients::ControlCharacterInName {
            address: email.to_owned(),
        });
    }
    Ok(Recipient {
        email: email.to_owned(),
        name: name.map(str::to_owned),
    })
}

/// Rewords `email_address`'s terse errors for people typing addresses.
fn describe_address_error(err: &email_address::Error) -> String {
    use email_address::Error as E;
    let reason = match err {
        E::MissingSeparator => "missing '@'",
        E::InvalidCharacter => "contains a character that is not allowed there, or a misplaced '.'",
        E::LocalPartEmpty => "nothing before the '@'",
        E::LocalPartTooLong => "the part before the '@' is longer than 64 bytes",
        E::DomainEmpty => "nothing after the '@'",
        E::SubDomainEmpty => "the domain has an empty part (a leading, trailing or doubled '.')",
        E::SubDomainTooLong => "a part of the domain is longer than 63 bytes",
        E::UnbalancedQuotes => "unbalanced quotes before the '@'",
        // The library's own wording is clear enough for the rare remaining cases.
        other => return other.to_string().trim_end_matches('.').to_owned(),
    };
    reason.to_owned()
}

/// Explains a `mailparse` failure, naming the bad entry when it can be found.
fn describe_mailparse_error(raw: &str, err: &MailParseError) -> InvalidRecipients {
    let MailParseError::Generic(message) = err else {
        return malformed(&err.to_string(), raw);
    };
    // mailparse's messages are fixed strings; anything unrecognised (say,
    // after an upgrade) is passed through rather than hidden.
    let reason = match *message {
        "Invalid address found: must contain a '@' symbol" => {
            return entry_without_at(raw)
                .unwrap_or_else(|| malformed("an entry is empty or has no '@'", raw));
        }
        "Unexpected group terminator found in initial list" => {
            "';' outside a group (separate addresses with ',')"
        }
        "Found unterminated group address" => {
            "a group (\"Team: a@x.com, b@y.com;\") is missing its closing ';'"
        }
        "Found unexpected nested group" => "groups cannot be nested",
        "Address string unexpectedly terminated" => {
            "the input ends inside a quoted name, comment or <address>; \
             check for an unclosed '\"', '(' or '<' (a quoted local part must be written inside <...>)"
        }
        "Unexpected char found after bracketed address" => {
            "unexpected text after '>' (separate addresses with ',')"
        }
        other => other,
    };
    malformed(reason, raw)
}

fn malformed(reason: &str, raw: &str) -> InvalidRecipients {
    InvalidRecipients::Malformed {
        reason: format!("{reason}, in {}", echo(raw)),
    }
}

fn empty_entry(raw: &str) -> InvalidRecipients {
    malformed("empty entry (two commas in a row, or a leading comma)", raw)
}

/// mailparse reports a missing '@' without saying where; a rough split is
/// good enough to point at the entry, since it only shapes the error message.
fn entry_without_at(raw: &str) -> Option<InvalidRecipients> {
    let entries = rough_entries(raw);
    if let Some(entry) = entries.iter().find(|e| !e.is_empty() && !e.contains('@')) {
        return Some(InvalidRecipients::InvalidAddress {
            address: (*entry).to_owned(),
            reason: "missing '@'".to_owned(),
        });
    }
    entries
        .iter()
        .any(|e| e.is_empty())
        .then(|| empty_entry(raw))
}
