//! What a session holds (subject and recipients) and how requests change it.
//!
//! A request carries a [`Change`]: each field is either "set to this" or
//! absent ("leave as stored"). Changes that queue up for one session fold
//! into one ([`Change::then`]) in arrival order, so a batch of duplicates is
//! written once, and the result equals applying them one by one.

use serde::Serialize;

use crate::domain::{RecipientList, Subject};

/// The content of a session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Content {
    /// `None` until a request sets a subject.
    pub subject: Option<String>,
    /// In the order the plugin sent them, de-duplicated.
    pub recipients: RecipientList,
}

/// A requested change; `None` fields leave the stored value alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// Replaces the whole recipient list when present.
    pub recipients: Option<RecipientList>,
    /// Replaces the subject when present.
    pub subject: Option<Subject>,
}

impl Change {
    /// `self` followed by `later`: later fields win, absent ones keep ours.
    pub fn then(self, later: Change) -> Change {
        Change {
            recipients: later.recipients.or(self.recipients),
            subject: later.subject.or(self.subject),
        }
    }

    /// Whether applying this change to `current` would leave it as it is
    /// (later fields replace, absent ones keep), decided without building
    /// the new content.
    pub fn is_noop_for(&self, current: &Content) -> bool {
        let recipients_same = self
            .recipients
            .as_ref()
            .is_none_or(|recipients| *recipients == current.recipients);
        let subject_same = self
            .subject
            .as_ref()
            .is_none_or(|subject| current.subject.as_deref() == Some(subject.as_str()));
        recipients_same && subject_same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference semantics the fold and the no-op check must agree with: the content
    /// after applying `change` to `current`. (The database applies changes in production.)
    trait ApplyTo {
        fn apply_to(&self, current: &Content) -> Content;
    }

    /// Folds changes in arrival order into the one change they amount to, as a batch does.
    fn fold(changes: impl IntoIterator<Item = Change>) -> Change {
        changes.into_iter().fold(Change::default(), Change::then)
    }

    impl ApplyTo for Change {
        fn apply_to(&self, current: &Content) -> Content {
            Content {
                subject: match &self.subject {
                    Some(subject) => Some(subject.as_str().to_owned()),
                    None => current.subject.clone(),
                },
                recipients: self
                    .recipients
                    .clone()
                    .unwrap_or_else(|| current.recipients.clone()),
            }
        }
    }

    fn change(to: Option<&str>, subject: Option<&str>) -> Change {
        Change {
            recipients: to.map(|raw| RecipientList::parse(raw).unwrap()),
            subject: subject.map(|raw| Subject::parse(raw).unwrap()),
        }
    }

    #[test]
    fn later_fields_win_and_absent_fields_keep_earlier_ones() {
        let folded = fold([
            change(Some("a@x.com"), Some("first")),
            change(None, Some("second")),
            change(Some("b@x.com"), None),
        ]);
        assert_eq!(folded, change(Some("b@x.com"), Some("second")));
    }

    #[test]
    fn folding_equals_applying_one_by_one() {
        let changes = [
            change(Some("a@x.com, b@x.com"), None),
            change(None, Some("hello")),
            change(Some("c@x.com"), None),
        ];
        let step_by_step = changes
            .iter()
            .fold(Content::default(), |content, c| c.apply_to(&content));
        let folded = fold(changes.clone()).apply_to(&Content::default());
        assert_eq!(folded, step_by_step);
    }

    #[test]
    fn an_empty_change_leaves_content_alone() {
        let content = change(Some("a@x.com"), Some("s")).apply_to(&Content::default());
        assert_eq!(Change::default().apply_to(&content), content);
    }

    #[test]
    fn is_noop_for_agrees_with_apply_to() {
        let content = change(Some("a@x.com"), Some("s")).apply_to(&Content::default());
        for candidate in [
            change(None, None),
            change(Some("a@x.com"), None),
            change(Some("A@x.com"), None),
            change(None, Some("s")),
            change(None, Some("t")),
            change(Some("a@x.com"), Some("s")),
        ] {
            assert_eq!(
                candidate.is_noop_for(&content),
                candidate.apply_to(&content) == content,
                "{candidate:?}"
            );
        }
    }
}
