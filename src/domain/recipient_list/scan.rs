//! The lexical scan of an address list: which of its ',', ':', ';' and '@' stand outside quoted
//! strings, comments and angle brackets, and so give the list its structure.
//!
//! Two things need that structure without parsing the list: the group cut, which hands
//! mailparse one piece per group and refuses an entry mailparse would spend quadratic time on,
//! and the rough split into entries that points an error message at the bad one. Both read the
//! same [`separators`], so they cannot disagree on what is quoted or commented, and each stays
//! linear in the input.

use super::InvalidRecipients;

/// A character outside quoted strings, comments and angle brackets that structures the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Separator {
    /// ',' between two entries.
    Comma,
    /// ':' before any '@' of its entry: the end of a group's name (`Team:`).
    GroupOpen,
    /// ':' after its entry's '@', which no address has (see [`split_after_groups`]).
    ColonAfterAt,
    /// ';' closing a group.
    GroupEnd,
    /// ';' outside a group, which mailparse tolerates after an address as it does ','.
    Semicolon,
}

impl Separator {
    /// Whether the next entry starts after this separator.
    fn ends_entry(self) -> bool {
        matches!(
            self,
            Separator::Comma | Separator::GroupEnd | Separator::Semicolon
        )
    }
}

/// The [`Separator`]s of `raw` with their byte offsets, in order, in one pass.
fn separators(raw: &str) -> impl Iterator<Item = (usize, Separator)> + '_ {
    let mut lexer = Lexer::default();
    let mut structure = Structure::default();
    raw.char_indices()
        .filter(move |&(_, c)| lexer.is_top_level(c))
        .filter_map(move |(i, c)| Some((i, structure.classify(c)?)))
}

/// Where the scan stands in RFC 5322's nesting: a quoted string, comments (which nest), an
/// angle-bracketed address, or just after a backslash, which escapes the next character in
/// the first two.
#[derive(Default)]
struct Lexer {
    in_quotes: bool,
    comment_depth: u32,
    in_angle: bool,
    escaped: bool,
}

impl Lexer {
    /// Takes the next character; true when it stands outside all nesting and opens none.
    fn is_top_level(&mut self, c: char) -> bool {
        if self.escaped {
            self.escaped = false;
            return false;
        }
        let top_level = !self.in_quotes && self.comment_depth == 0 && !self.in_angle;
        match c {
            '\\' if self.in_quotes || self.comment_depth > 0 => self.escaped = true,
            '"' if self.comment_depth == 0 && !self.in_angle => self.in_quotes = !self.in_quotes,
            '(' if !self.in_quotes && !self.in_angle => self.comment_depth += 1,
            ')' if self.comment_depth > 0 => self.comment_depth -= 1,
            '<' if top_level => self.in_angle = true,
            '>' if self.in_angle => self.in_angle = false,
            _ => return top_level,
        }
        false
    }
}

/// What the top-level characters so far say about the current entry and group.
#[derive(Default)]
struct Structure {
    at_in_entry: bool,
    in_group: bool,
}

impl Structure {
    /// Takes the next top-level character; the [`Separator`] it is, if any.
    fn classify(&mut self, c: char) -> Option<Separator> {
        let separator = match c {
            '@' => {
                self.at_in_entry = true;
                return None;
            }
            ':' if self.at_in_entry => Separator::ColonAfterAt,
            ':' => {
                self.in_group = true;
                Separator::GroupOpen
            }
            ',' => Separator::Comma,
            ';' if self.in_group => {
                self.in_group = false;
                Separator::GroupEnd
            }
            ';' => Separator::Semicolon,
            _ => return None,
        };
        if separator.ends_entry() {
            self.at_in_entry = false;
        }
        Some(separator)
    }
}

/// Cuts the list after each group (`Team: a@x.com, b@y.com;`), dropping the one ',' that
/// separates the group from the next entry, so each piece can go to `mailparse` on its own:
/// after a group's ';' mailparse glues that ',' onto the next entry (and mangles a quoted name
/// there), which made valid lists such as `Team: a@x.com;, c@z.com` unreadable. The cut is
/// lexical; the parsing stays mailparse's.
///
/// The same pass keeps mailparse's cost linear: for every ':' after an address's '@' it
/// re-scans the address so far for the '@', so `aaa…@:::…` (64 KiB) cost 100 ms of CPU. Such
/// an entry is no address at all, and is refused here before mailparse sees it.
pub(super) fn split_after_groups(raw: &str) -> Result<Vec<&str>, InvalidRecipients> {
    let mut pieces = Vec::new();
    let (mut piece_start, mut entry_start) = (0, 0);
    for (i, separator) in separators(raw) {
        match separator {
            Separator::ColonAfterAt => return Err(colon_after_at(&raw[entry_start..])),
            Separator::GroupEnd => {
                pieces.push(&raw[piece_start..=i]);
                piece_start = start_after_group(raw, i);
                entry_start = i + 1;
            }
            Separator::Comma | Separator::Semicolon => entry_start = i + 1,
            Separator::GroupOpen => {}
        }
    }
    pieces.push(&raw[piece_start..]);
    pieces.retain(|piece| !piece.trim().is_empty());
    Ok(pieces)
}

/// Where the piece after the group ending at `semicolon` starts: past the white space and the
/// one ',' that may separate the group from the next entry.
fn start_after_group(raw: &str, semicolon: usize) -> usize {
    let next = raw[semicolon + 1..].trim_start();
    let start = raw.len() - next.len();
    if next.starts_with(',') {
        start + 1
    } else {
        start
    }
}

/// Refuses the entry that `from_entry` starts with (up to the next ','), which has a ':' after
/// its '@'.
fn colon_after_at(from_entry: &str) -> InvalidRecipients {
    let entry = from_entry.split(',').next().unwrap_or_default();
    InvalidRecipients::InvalidAddress {
        address: entry.trim().to_owned(),
        reason: "contains ':' after the '@'".to_owned(),
    }
}

/// Splits on ',' and ';' outside quotes, comments and angle brackets, and
/// drops group labels (`Team:`), yielding trimmed entries.
pub(super) fn rough_entries(raw: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut start = 0;
    for (i, separator) in separators(raw) {
        match separator {
            Separator::GroupOpen => start = i + 1,
            Separator::Comma | Separator::GroupEnd | Separator::Semicolon => {
                entries.push(raw[start..i].trim());
                start = i + 1;
            }
            // Never met here: the group cut refuses such a list before mailparse, whose error
            // is what asks for this split, ever sees it.
            Separator::ColonAfterAt => {}
        }
    }
    entries.push(raw[start..].trim());
    entries
}
