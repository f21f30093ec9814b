//! Conditional requests (RFC 9110 §13): a request may say which stored version it expects. The
//! entity tag of a session is its version, so a precondition is a set of versions.
//!
//! The precondition travels with its change to the database, where it is judged on the row
//! read under its lock: that is what makes it exact across service instances.

/// The versions an `If-Match` or `If-None-Match` header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    /// `*`: any stored version (that is, the session exists).
    Any,
    /// These versions (an empty list matches nothing).
    Listed(Vec<i64>),
}

impl Versions {
    /// Whether `version` is among them.
    pub fn contains(&self, version: i64) -> bool {
        match self {
            Versions::Any => true,
            Versions::Listed(versions) => versions.contains(&version),
        }
    }
}

/// What a write expects of the stored session; the default expects nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Precondition {
    /// Apply only if the session exists at one of these versions (never creates).
    pub if_match: Option<Versions>,
    /// Apply only if the session is absent, or at none of these versions.
    pub if_none_match: Option<Versions>,
}

impl Precondition {
    /// Whether the write is unconditional (and so may be folded with others).
    pub fn is_unconditional(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule the SQL function applies under the row lock, as a model to test against.
    trait HoldsFor {
        fn holds_for(&self, stored: Option<i64>) -> bool;
    }

    impl HoldsFor for Precondition {
        fn holds_for(&self, stored: Option<i64>) -> bool {
            let if_match = match (&self.if_match, stored) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(versions), Some(version)) => versions.contains(version),
            };
            let if_none_match = match (&self.if_none_match, stored) {
                (None, _) | (Some(_), None) => true,
                (Some(versions), Some(version)) => !versions.contains(version),
            };
            if_match && if_none_match
        }
    }

    fn if_match(versions: Versions) -> Precondition {
        Precondition {
            if_match: Some(versions),
            if_none_match: None,
        }
    }

    fn if_none_match(versions: Versions) -> Precondition {
        Precondition {
            if_match: None,
            if_none_match: Some(versions),
        }
    }

    #[test]
    fn no_precondition_always_holds() {
        assert!(Precondition::default().holds_for(None));
        assert!(Precondition::default().holds_for(Some(3)));
        assert!(Precondition::default().is_unconditional());
    }

    #[test]
    fn if_match_needs_the_session_at_a_listed_version() {
        let stale = if_match(Versions::Listed(vec![2, 3]));
        assert!(stale.holds_for(Some(3)));
        assert!(!stale.holds_for(Some(4)));
        assert!(!stale.holds_for(None), "If-Match never creates");
        assert!(if_match(Versions::Any).holds_for(Some(0)));
        assert!(!if_match(Versions::Any).holds_for(None));
        assert!(!if_match(Versions::Listed(vec![])).holds_for(Some(1)));
    }

    #[test]
    fn if_none_match_star_only_creates() {
        assert!(if_none_match(Versions::Any).holds_for(None));
        assert!(!if_none_match(Versions::Any).holds_for(Some(1)));
        assert!(if_none_match(Versions::Listed(vec![1])).holds_for(Some(2)));
        assert!(!if_none_match(Versions::Listed(vec![1])).holds_for(Some(1)));
    }
}
