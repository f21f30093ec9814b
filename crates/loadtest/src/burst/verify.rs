//! What "right" means after a burst, as pure functions over plain data: the
//! sessions the plan expects on one side, what the service answered and
//! what a read-back found on the other. No I/O here, so every rule is
//! unit-tested by planting the fault it looks for.
//!
//! The rules are the service's guarantees: no address twice in a list
//! (case-insensitive), the content sent and nothing else, `version` growing
//! by exactly 1 per applied change (so identical duplicates stay at 1 and
//! the versions answered to different contents have no gaps), and no
//! session visible to a user who does not own it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

/// A session's content as the burst sends it: the subject and the recipient
/// addresses the service must keep, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Content {
    /// The subject sent.
    pub subject: String,
    /// The addresses the stored list must hold, in this order.
    pub emails: Vec<String>,
}

/// What one session must hold after the burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Every request carried this content: it is stored, at version 1, and
    /// every request was answered with it.
    Exactly(Content),
    /// Each request carried a different one of these contents: whichever the
    /// service answered with the highest version is stored, and the versions
    /// answered run from 1 without gaps.
    LastAnswered(Vec<Content>),
}

/// A (user, session ID) the burst writes, and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSession {
    /// Index of the owning user (`tokens[owner]`).
    pub owner: usize,
    /// The session ID string.
    pub session_id: String,
    /// What it must hold.
    pub expectation: Expectation,
}

/// A session as the service showed it, in a PUT answer or a GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSnapshot {
    /// The subject, `None` when unset.
    pub subject: Option<String>,
    /// Recipient addresses in order.
    pub emails: Vec<String>,
    /// The session's version.
    pub version: i64,
}

/// What a read-back GET found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// 200 with this session.
    Found(SessionSnapshot),
    /// 404.
    NotFound,
    /// Anything else (other status, transport error, unreadable body).
    Failed(String),
}

/// One read-back: `reader` asked for `session_id` with their own token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSession {
    /// Index of the user whose token made the GET.
    pub reader: usize,
    /// The session ID asked for.
    pub session_id: String,
    /// What the GET found.
    pub read: ReadResult,
    /// The sessions the service answered the reader's PUTs to this ID with
    /// (empty when the reader sent none, e.g. for a probe by a non-owner).
    pub answered: Vec<SessionSnapshot>,
}

/// The kinds of wrong a verification can find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// The plan expected the session but nothing read it back (a tool bug).
    NotRead,
    /// The owner got 404.
    Missing,
    /// The GET failed for another reason.
    ReadFailed,
    /// The stored list holds an address twice (case-insensitive).
    DuplicateRecipient,
    /// The stored addresses are not the expected ones in the expected order.
    WrongRecipients,
    /// The stored subject is not the expected one.
    WrongSubject,
    /// The stored or answered version is not the one the rules allow.
    WrongVersion,
    /// The versions answered skip a number.
    VersionGap,
    /// One version was answered with two different contents.
    VersionReused,
    /// A PUT was answered with content this user never sent to this session.
    ForeignAnswer,
    /// A user who does not own the session could read it.
    VisibleToNonOwner,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The user whose view is wrong (the reader).
    pub user: usize,
    /// The session ID concerned.
    pub session_id: String,
    /// What is wrong.
    pub kind: FailureKind,
    /// The evidence, for a human.
    pub detail: String,
}

impl FailureKind {
    /// The snake_case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotRead => "not_read",
            FailureKind::Missing => "missing",
            FailureKind::ReadFailed => "read_failed",
            FailureKind::DuplicateRecipient => "duplicate_recipient",
            FailureKind::WrongRecipients => "wrong_recipients",
            FailureKind::WrongSubject => "wrong_subject",
            FailureKind::WrongVersion => "wrong_version",
            FailureKind::VersionGap => "version_gap",
            FailureKind::VersionReused => "version_reused",
            FailureKind::ForeignAnswer => "foreign_answer",
            FailureKind::VisibleToNonOwner => "visible_to_non_owner",
        }
    }
}

/// Serialised by [`FailureKind::as_str`], so text and JSON use one set of names.
impl Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} session {}: {}: {}",
            self.user,
            self.session_id,
            self.kind.as_str(),
            self.detail
        )
    }
}

/// Every failure found comparing what the plan expects with what was observed.
///
/// An observation whose reader owns the ID (per `expected`) is held to that
/// session's expectation; any other observation is a probe by a non-owner and
/// must have found nothing.
pub fn check(expected: &[ExpectedSession], observed: &[ObservedSession]) -> Vec<Failure> {
    let by_owner: HashMap<(usize, &str), &ExpectedSession> = expected
        .iter()
        .map(|session| ((session.owner, session.session_id.as_str()), session))
        .collect();
    let read_by_owner: HashSet<(usize, &str)> = observed
        .iter()
        .map(|o| (o.reader, o.session_id.as_str()))
        .filter(|key| by_owner.contains_key(key))
        .collect();

    let mut failures: Vec<Failure> = expected
        .iter()
        .filter(|s| !read_by_owner.contains(&(s.owner, s.session_id.as_str())))
        .map(|s| Failure {
            user: s.owner,
            session_id: s.session_id.clone(),
            kind: FailureKind::NotRead,
            detail: "the plan expects this session but it was not read back".to_owned(),
        })
        .collect();
    for observation in observed {
        let mut found = Findings {
            failures: &mut failures,
            observation,
        };
        match by_owner.get(&(observation.reader, observation.session_id.as_str())) {
            Some(session) => found.check_owned(&session.expectation),
            None => found.check_not_visible(),
        }
    }
    failures
}

/// Collects the failures of one observation.
struct Findings<'a> {
    failures: &'a mut Vec<Failure>,
    observation: &'a ObservedSession,
}

impl Findings<'_> {
    fn fail(&mut self, kind: FailureKind, detail: String) {
        self.failures.push(Failure {
            user: self.observation.reader,
            session_id: self.observation.session_id.clone(),
            kind,
            detail,
        });
    }

    fn check_not_visible(&mut self) {
        match &self.observation.read {
            ReadResult::NotFound => {}
            ReadResult::Found(seen) => self.fail(
                FailureKind::VisibleToNonOwner,
                format!("a non-owner read it: {}", describe(seen)),
            ),
            ReadResult::Failed(error) => self.fail(FailureKind::ReadFailed, error.clone()),
        }
    }

    fn check_owned(&mut self, expectation: &Expectation) {
        let candidates: &[Content] = match expectation {
            Expectation::Exactly(content) => std::slice::from_ref(content),
            Expectation::LastAnswered(contents) => contents,
        };
        self.check_answers(candidates);
        if let Expectation::Exactly(_) = expectation {
            let bumped: BTreeSet<i64> = self
                .observation
                .answered
                .iter()
                .map(|answer| answer.version)
                .filter(|&version| version != 1)
                .collect();
            if !bumped.is_empty() {
                self.fail(
                    FailureKind::WrongVersion,
                    format!(
                        "identical updates were answered with versions {bumped:?} (expected 1 only)"
                    ),
                );
            }
        }
        let stored = match &self.observation.read {
            ReadResult::Found(stored) => stored,
            ReadResult::NotFound => {
                return self.fail(
                    FailureKind::Missing,
                    "the owner got 404 after the burst".to_owned(),
                );
            }
            ReadResult::Failed(error) => {
                return self.fail(FailureKind::ReadFailed, error.clone());
            }
        };
        self.check_no_duplicates(stored);
        match expectation {
            Expectation::Exactly(content) => {
                self.check_content(stored, Some(&content.subject), &content.emails);
                if stored.version != 1 {
                    self.fail(
                        FailureKind::WrongVersion,
                        format!(
                            "stored version {} after identical updates (expected 1)",
                            stored.version
                        ),
                    );
                }
            }
            Expectation::LastAnswered(contents) => self.check_last_answered(stored, contents),
        }
    }

    /// Rules on the PUT answers alone: each carries content that was sent to
    /// this session, and one version never stands for two contents.
    fn check_answers(&mut self, candidates: &[Content]) {
        let answered = &self.observation.answered;
        let foreign = answered
            .iter()
            .filter(|answer| !candidates.iter().any(|c| holds(answer, c)))
            .count();
        if foreign > 0 {
            let example = answered
                .iter()
                .find(|answer| !candidates.iter().any(|c| holds(answer, c)))
                .map(describe)
                .unwrap_or_default();
            self.fail(
                FailureKind::ForeignAnswer,
                format!(
                    "{foreign} of {} PUT answers carried content not sent here, e.g. {example}",
                    answered.len()
                ),
            );
        }
        let mut first_by_version: BTreeMap<i64, &SessionSnapshot> = BTreeMap::new();
        let mut reused = BTreeSet::new();
        for answer in answered {
            let first = *first_by_version.entry(answer.version).or_insert(answer);
            if first.subject != answer.subject || first.emails != answer.emails {
                reused.insert(answer.version);
            }
        }
        if !reused.is_empty() {
            self.fail(
                FailureKind::VersionReused,
                format!("versions {reused:?} were each answered with different contents"),
            );
        }
        for answer in answered {
            if has_duplicate(&answer.emails).is_some() {
                self.fail(
                    FailureKind::DuplicateRecipient,
                    format!("a PUT was answered with {}", describe(answer)),
                );
                break;
            }
        }
    }

    fn check_no_duplicates(&mut self, stored: &SessionSnapshot) {
        if let Some(duplicate) = has_duplicate(&stored.emails) {
            self.fail(
                FailureKind::DuplicateRecipient,
                format!("{duplicate:?} is stored twice: {:?}", stored.emails),
            );
        }
    }

    fn check_content(
        &mut self,
        stored: &SessionSnapshot,
        subject: Option<&str>,
        emails: &[String],
    ) {
        if stored.emails != emails {
            self.fail(
                FailureKind::WrongRecipients,
                format!("expected {emails:?}, stored {:?}", stored.emails),
            );
        }
        if stored.subject.as_deref() != subject {
            self.fail(
                FailureKind::WrongSubject,
                format!("expected {subject:?}, stored {:?}", stored.subject),
            );
        }
    }

    /// Distinct contents: the answered versions are 1..=max with no gap, at
    /// most one per content sent, and the stored session is the one answered
    /// with the highest version.
    fn check_last_answered(&mut self, stored: &SessionSnapshot, contents: &[Content]) {
        let answered = &self.observation.answered;
        let versions: BTreeSet<i64> = answered.iter().map(|a| a.version).collect();
        let Some(&highest) = versions.last() else {
            // Nothing was answered (every PUT failed); the stored content must
            // still be one that was sent.
            if !contents.iter().any(|c| holds(stored, c)) {
                self.fail(
                    FailureKind::WrongRecipients,
                    format!("stored content was never sent here: {}", describe(stored)),
                );
            }
            return;
        };
        let missing: Vec<i64> = (1..=highest).filter(|v| !versions.contains(v)).collect();
        if !missing.is_empty() || versions.first() != Some(&1) {
            self.fail(
                FailureKind::VersionGap,
                format!("versions answered {versions:?}; missing {missing:?}"),
            );
        }
        if highest > contents.len() as i64 {
            self.fail(
                FailureKind::WrongVersion,
                format!(
                    "version reached {highest} with only {} different contents sent",
                    contents.len()
                ),
            );
        }
        if stored.version != highest {
            self.fail(
                FailureKind::WrongVersion,
                format!(
                    "stored version {}, highest answered {highest}",
                    stored.version
                ),
            );
        }
        let latest = answered
            .iter()
            .find(|a| a.version == highest)
            .expect("the highest version came from an answer");
        self.check_content(stored, latest.subject.as_deref(), &latest.emails);
    }
}

/// Whether `snapshot` shows exactly `content`.
fn holds(snapshot: &SessionSnapshot, content: &Content) -> bool {
    snapshot.subject.as_deref() == Some(content.subject.as_str())
        && snapshot.emails == content.emails
}

/// The first address that appears twice, ignoring case.
fn has_duplicate(emails: &[String]) -> Option<&str> {
    let mut seen = HashSet::new();
    emails
        .iter()
        .find(|email| !seen.insert(email.to_lowercase()))
        .map(String::as_str)
}

fn describe(snapshot: &SessionSnapshot) -> String {
    format!(
        "version {} subject {:?} recipients {:?}",
        snapshot.version, snapshot.subject, snapshot.emails
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(tag: &str) -> Content {
        Content {
            subject: format!("subject {tag}"),
            emails: vec![format!("{tag}-a@x.example"), format!("{tag}-b@x.example")],
        }
    }

    fn snapshot(content: &Content, version: i64) -> SessionSnapshot {
        SessionSnapshot {
            subject: Some(content.subject.clone()),
            emails: content.emails.clone(),
            version,
        }
    }

    fn expect_exactly(owner: usize, id: &str, content: &Content) -> ExpectedSession {
        ExpectedSession {
            owner,
            session_id: id.to_owned(),
            expectation: Expectation::Exactly(content.clone()),
        }
    }

    fn observed(
        reader: usize,
        id: &str,
        read: ReadResult,
        answered: Vec<SessionSnapshot>,
    ) -> ObservedSession {
        ObservedSession {
            reader,
            session_id: id.to_owned(),
            read,
            answered,
        }
    }

    fn kinds(failures: &[Failure]) -> Vec<FailureKind> {
        failures.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_clean_identical_burst_passes() {
        // Arrange
        let c = content("a");
        let expected = [expect_exactly(0, "s1", &c)];
        let observed = [observed(
            0,
            "s1",
            ReadResult::Found(snapshot(&c, 1)),
            vec![snapshot(&c, 1); 20],
        )];

        // Act
        let failures = check(&expected, &observed);

        // Assert
        assert_eq!(failures, []);
    }

    #[test]
    fn a_planted_duplicate_recipient_is_caught() {
        let c = content("a");
        let mut stored = snapshot(&c, 1);
        stored.emails.push("A-A@X.EXAMPLE".to_owned());
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(stored),
                vec![snapshot(&c, 1)],
            )],
        );
        assert!(
            kinds(&failures).contains(&FailureKind::DuplicateRecipient),
            "{failures:?}"
        );
        assert!(failures[0].detail.contains("A-A@X.EXAMPLE"), "{failures:?}");
    }

    #[test]
    fn a_missing_session_is_caught() {
        let c = content("a");
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[observed(
                0,
                "s1",
                ReadResult::NotFound,
                vec![snapshot(&c, 1)],
            )],
        );
        assert_eq!(kinds(&failures), [FailureKind::Missing]);
    }

    #[test]
    fn a_session_never_read_back_is_caught() {
        let c = content("a");
        let failures = check(&[expect_exactly(0, "s1", &c)], &[]);
        assert_eq!(kinds(&failures), [FailureKind::NotRead]);
    }

    #[test]
    fn a_wrong_subject_is_caught() {
        let c = content("a");
        let mut stored = snapshot(&c, 1);
        stored.subject = Some("something else".to_owned());
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[observed(0, "s1", ReadResult::Found(stored), vec![])],
        );
        assert_eq!(kinds(&failures), [FailureKind::WrongSubject]);
    }

    #[test]
    fn wrong_recipient_order_is_caught() {
        let c = content("a");
        let mut stored = snapshot(&c, 1);
        stored.emails.reverse();
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[observed(0, "s1", ReadResult::Found(stored), vec![])],
        );
        assert_eq!(kinds(&failures), [FailureKind::WrongRecipients]);
    }

    #[test]
    fn identical_duplicates_that_bumped_the_version_are_caught() {
        let c = content("a");
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(snapshot(&c, 2)),
                vec![snapshot(&c, 1), snapshot(&c, 2)],
            )],
        );
        assert_eq!(
            kinds(&failures),
            [FailureKind::WrongVersion, FailureKind::WrongVersion]
        );
    }

    fn distinct(owner: usize, id: &str, contents: &[Content]) -> ExpectedSession {
        ExpectedSession {
            owner,
            session_id: id.to_owned(),
            expectation: Expectation::LastAnswered(contents.to_vec()),
        }
    }

    #[test]
    fn a_clean_distinct_burst_passes() {
        let contents = [content("v0"), content("v1"), content("v2")];
        // Three requests, two batches: v0 alone, then v1+v2 folded into v2.
        let answered = vec![
            snapshot(&contents[0], 1),
            snapshot(&contents[2], 2),
            snapshot(&contents[2], 2),
        ];
        let failures = check(
            &[distinct(0, "s1", &contents)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(snapshot(&contents[2], 2)),
                answered,
            )],
        );
        assert_eq!(failures, []);
    }

    #[test]
    fn a_version_gap_is_caught() {
        let contents = [content("v0"), content("v1"), content("v2")];
        let answered = vec![snapshot(&contents[0], 1), snapshot(&contents[2], 3)];
        let failures = check(
            &[distinct(0, "s1", &contents)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(snapshot(&contents[2], 3)),
                answered,
            )],
        );
        assert_eq!(kinds(&failures), [FailureKind::VersionGap]);
        assert!(failures[0].detail.contains("missing [2]"), "{failures:?}");
    }

    #[test]
    fn a_final_state_older_than_the_latest_answer_is_caught() {
        let contents = [content("v0"), content("v1")];
        let answered = vec![snapshot(&contents[0], 1), snapshot(&contents[1], 2)];
        let failures = check(
            &[distinct(0, "s1", &contents)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(snapshot(&contents[0], 1)),
                answered,
            )],
        );
        assert_eq!(
            kinds(&failures),
            [
                FailureKind::WrongVersion,
                FailureKind::WrongRecipients,
                FailureKind::WrongSubject
            ]
        );
    }

    #[test]
    fn more_versions_than_contents_sent_is_caught() {
        let contents = [content("v0"), content("v1")];
        let answered = vec![
            snapshot(&contents[0], 1),
            snapshot(&contents[1], 2),
            snapshot(&contents[0], 3),
        ];
        let failures = check(
            &[distinct(0, "s1", &contents)],
            &[observed(
                0,
                "s1",
                ReadResult::Found(snapshot(&contents[0], 3)),
                answered,
            )],
        );
        assert_eq!(kinds(&failures), [FailureKind::WrongVersion]);
    }

    #[test]
    fn a_session_visible_to_a_non_owner_is_caught() {
        // Arrange: user 0 owns s1; user 1 owns nothing by that name.
        let c = content("a");
        let expected = [expect_exactly(0, "s1", &c)];
        let observed = [
            observed(0, "s1", ReadResult::Found(snapshot(&c, 1)), vec![]),
            observed(1, "s1", ReadResult::Found(snapshot(&c, 1)), vec![]),
        ];

        // Act
        let failures = check(&expected, &observed);

        // Assert
        assert_eq!(kinds(&failures), [FailureKind::VisibleToNonOwner]);
        assert_eq!(failures[0].user, 1);
    }

    #[test]
    fn a_non_owner_getting_404_passes() {
        let c = content("a");
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[
                observed(0, "s1", ReadResult::Found(snapshot(&c, 1)), vec![]),
                observed(1, "s1", ReadResult::NotFound, vec![]),
            ],
        );
        assert_eq!(failures, []);
    }

    #[test]
    fn cross_user_content_under_a_shared_id_is_caught() {
        // Both users own "shared"; user 1's read shows user 0's content, and
        // one of user 1's PUTs was answered with it too.
        let mine = content("user0");
        let theirs = content("user1");
        let expected = [
            expect_exactly(0, "shared", &mine),
            expect_exactly(1, "shared", &theirs),
        ];
        let observed = [
            observed(
                0,
                "shared",
                ReadResult::Found(snapshot(&mine, 1)),
                vec![snapshot(&mine, 1)],
            ),
            observed(
                1,
                "shared",
                ReadResult::Found(snapshot(&mine, 1)),
                vec![snapshot(&theirs, 1), snapshot(&mine, 1)],
            ),
        ];
        let failures = check(&expected, &observed);
        assert_eq!(
            kinds(&failures),
            [
                FailureKind::ForeignAnswer,
                FailureKind::VersionReused,
                FailureKind::WrongRecipients,
                FailureKind::WrongSubject
            ]
        );
        assert!(failures.iter().all(|f| f.user == 1));
    }

    #[test]
    fn a_failed_read_is_a_failure_for_owners_and_non_owners() {
        let c = content("a");
        let failures = check(
            &[expect_exactly(0, "s1", &c)],
            &[
                observed(0, "s1", ReadResult::Failed("HTTP 500".to_owned()), vec![]),
                observed(1, "s1", ReadResult::Failed("HTTP 500".to_owned()), vec![]),
            ],
        );
        assert_eq!(
            kinds(&failures),
            [FailureKind::ReadFailed, FailureKind::ReadFailed]
        );
    }
}
