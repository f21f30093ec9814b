//! The plan of a burst: every PUT to send, in the order to send it, and what
//! each session must look like afterwards. Building it is pure, so the shape
//! of a burst (counts, which requests travel together, which IDs users share)
//! is tested without a server.
//!
//! All requests aimed at one session ID are adjacent, so with enough
//! connections they are in flight together, which is the point of the burst.

use std::fmt::Write as _;

use super::args::Mode;
use super::verify::{Content, Expectation, ExpectedSession};

/// Longest session ID the service accepts.
const MAX_SESSION_ID_LEN: usize = 64;

/// Recipients each generated content holds (before the planted case duplicate).
const RECIPIENTS_PER_CONTENT: usize = 3;

/// One PUT of the burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Index into [`Plan::sessions`] of the session this request writes.
    pub session: usize,
    /// The form body, encoded once here rather than per send.
    pub body: String,
}

/// Everything a burst sends and expects.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Each (user, session ID) the burst writes, with what it must hold afterwards.
    pub sessions: Vec<ExpectedSession>,
    /// The PUTs, in sending order.
    pub requests: Vec<PlannedRequest>,
}

/// The shape of a burst, as the plan builder needs it.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// Prefix of every session ID.
    pub run_id: &'a str,
    /// Which race the duplicates provoke.
    pub mode: Mode,
    /// Sessions per user.
    pub sessions: usize,
    /// Requests per (user, session).
    pub duplicates: usize,
    /// Users taking part.
    pub users: usize,
}

/// Builds the plan; fails when the run ID makes session IDs too long.
pub fn build(shape: Shape<'_>) -> anyhow::Result<Plan> {
    let longest = session_id(shape, shape.users - 1, shape.sessions - 1);
    anyhow::ensure!(
        longest.len() <= MAX_SESSION_ID_LEN,
        "session IDs would be up to {} characters (e.g. {longest:?}); the service takes at most {MAX_SESSION_ID_LEN}: use a shorter --run-id",
        longest.len()
    );
    let mut sessions = Vec::with_capacity(shape.sessions * shape.users);
    let mut requests = Vec::with_capacity(shape.sessions * shape.users * shape.duplicates);
    // Session-major order: for one session index, every user's duplicates are
    // adjacent, so in cross-user mode users race on the same ID string.
    for session_index in 0..shape.sessions {
        for user in 0..shape.users {
            let variants: Vec<Content> = (0..shape.duplicates)
                .map(|duplicate| {
                    let variant = match shape.mode {
                        Mode::Distinct => duplicate,
                        Mode::Identical | Mode::CrossUser => 0,
                    };
                    content(shape.run_id, user, session_index, variant)
                })
                .collect();
            let slot = sessions.len();
            requests.extend(variants.iter().map(|content| PlannedRequest {
                session: slot,
                body: form_body(content),
            }));
            let expectation = match shape.mode {
                Mode::Distinct => Expectation::LastAnswered(variants),
                Mode::Identical | Mode::CrossUser => Expectation::Exactly(variants[0].clone()),
            };
            sessions.push(ExpectedSession {
                owner: user,
                session_id: session_id(shape, user, session_index),
                expectation,
            });
        }
    }
    Ok(Plan { sessions, requests })
}

/// Cross-user mode shares ID strings between users; the other modes give each
/// user IDs of their own, so a session seen by another user is a leak.
fn session_id(shape: Shape<'_>, user: usize, session_index: usize) -> String {
    match shape.mode {
        Mode::CrossUser => format!("{}-s{session_index}", shape.run_id),
        Mode::Identical | Mode::Distinct => {
            format!("{}-u{user}-s{session_index}", shape.run_id)
        }
    }
}

/// A content unique to (user, session, variant), so content that strays into
/// another session or user is recognisable as such.
fn content(run_id: &str, user: usize, session_index: usize, variant: usize) -> Content {
    let tag = format!("u{user}-s{session_index}-v{variant}");
    Content {
        subject: format!("burst {run_id} {tag}"),
        emails: (0..RECIPIENTS_PER_CONTENT)
            .map(|n| format!("{tag}-r{n}@burst.example"))
            .collect(),
    }
}

/// The `to=...&subject=...` body for `content`. The `to` list is written the
/// way a mail client does: the second address has a quoted display name
/// containing a comma (a naive split on ',' gets it wrong), and the first
/// address comes again in upper case at the end (the service must drop it,
/// de-duplicating case-insensitively and keeping the first).
pub fn form_body(content: &Content) -> String {
    let mut to = String::new();
    for (position, email) in content.emails.iter().enumerate() {
        if position > 0 {
            to.push_str(", ");
        }
        if position == 1 {
            let _ = write!(to, "\"Burst, Recipient\" <{email}>");
        } else {
            to.push_str(email);
        }
    }
    if let Some(first) = content.emails.first() {
        let _ = write!(to, ", {}", first.to_uppercase());
    }
    serde_urlencoded::to_string([("to", to.as_str()), ("subject", content.subject.as_str())])
        .expect("encoding strings as a form cannot fail")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    fn shape(mode: Mode, sessions: usize, duplicates: usize, users: usize) -> Shape<'static> {
        Shape {
            run_id: "run1",
            mode,
            sessions,
            duplicates,
            users,
        }
    }

    /// The indices of each session's requests.
    fn positions_by_session(plan: &Plan) -> HashMap<usize, Vec<usize>> {
        let mut positions: HashMap<usize, Vec<usize>> = HashMap::new();
        for (position, request) in plan.requests.iter().enumerate() {
            positions.entry(request.session).or_default().push(position);
        }
        positions
    }

    fn is_contiguous(positions: &[usize]) -> bool {
        positions.windows(2).all(|pair| pair[1] == pair[0] + 1)
    }

    #[test]
    fn counts_are_sessions_times_users_times_duplicates() {
        for mode in [Mode::Identical, Mode::Distinct, Mode::CrossUser] {
            let plan = build(shape(mode, 7, 5, 3)).unwrap();
            assert_eq!(plan.sessions.len(), 7 * 3, "{mode:?}");
            assert_eq!(plan.requests.len(), 7 * 3 * 5, "{mode:?}");
            for requests in positions_by_session(&plan).values() {
                assert_eq!(requests.len(), 5, "{mode:?}");
            }
        }
    }

    #[test]
    fn duplicates_of_a_session_are_adjacent() {
        for mode in [Mode::Identical, Mode::Distinct, Mode::CrossUser] {
            let plan = build(shape(mode, 4, 6, 2)).unwrap();
            for (session, positions) in positions_by_session(&plan) {
                assert!(is_contiguous(&positions), "{mode:?} session {session}");
            }
        }
    }

    #[test]
    fn identical_mode_sends_one_body_per_session_and_expects_it() {
        let plan = build(shape(Mode::Identical, 3, 4, 1)).unwrap();
        for (session, positions) in positions_by_session(&plan) {
            let bodies: BTreeSet<&str> = positions
                .iter()
                .map(|&p| plan.requests[p].body.as_str())
                .collect();
            assert_eq!(bodies.len(), 1);
            let Expectation::Exactly(content) = &plan.sessions[session].expectation else {
                panic!("identical mode expects exact content");
            };
            assert_eq!(bodies.first().copied(), Some(form_body(content).as_str()));
        }
    }

    #[test]
    fn distinct_mode_sends_a_different_body_every_time() {
        let plan = build(shape(Mode::Distinct, 3, 4, 2)).unwrap();
        let bodies: BTreeSet<&str> = plan.requests.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies.len(), plan.requests.len());
        for expected in &plan.sessions {
            let Expectation::LastAnswered(candidates) = &expected.expectation else {
                panic!("distinct mode expects the last answered content");
            };
            assert_eq!(candidates.len(), 4);
        }
    }

    #[test]
    fn cross_user_mode_reuses_each_id_for_every_user_with_their_own_content() {
        let plan = build(shape(Mode::CrossUser, 3, 2, 4)).unwrap();
        let mut owners_by_id: HashMap<&str, BTreeSet<usize>> = HashMap::new();
        for expected in &plan.sessions {
            owners_by_id
                .entry(&expected.session_id)
                .or_default()
                .insert(expected.owner);
        }
        assert_eq!(owners_by_id.len(), 3);
        for owners in owners_by_id.values() {
            assert_eq!(owners, &(0..4).collect::<BTreeSet<_>>());
        }
        // All users' requests for one ID string are adjacent, so they race.
        let ids: Vec<&str> = plan
            .requests
            .iter()
            .map(|r| plan.sessions[r.session].session_id.as_str())
            .collect();
        let mut runs: Vec<&str> = ids.clone();
        runs.dedup();
        assert_eq!(runs.len(), 3, "each ID forms one run: {ids:?}");
        let contents: BTreeSet<String> = plan
            .sessions
            .iter()
            .map(|s| format!("{:?}", s.expectation))
            .collect();
        assert_eq!(
            contents.len(),
            plan.sessions.len(),
            "content differs per user"
        );
    }

    #[test]
    fn other_modes_give_each_user_ids_of_their_own() {
        let plan = build(shape(Mode::Identical, 3, 2, 2)).unwrap();
        let ids: BTreeSet<&str> = plan
            .sessions
            .iter()
            .map(|s| s.session_id.as_str())
            .collect();
        assert_eq!(ids.len(), 6);
    }

    #[test]
    fn the_form_body_carries_a_quoted_comma_and_a_case_duplicate() {
        let content = content("r", 0, 1, 2);
        let decoded: Vec<(String, String)> =
            serde_urlencoded::from_str(&form_body(&content)).unwrap();
        assert_eq!(
            decoded,
            [
                (
                    "to".to_owned(),
                    "u0-s1-v2-r0@burst.example, \"Burst, Recipient\" <u0-s1-v2-r1@burst.example>, u0-s1-v2-r2@burst.example, U0-S1-V2-R0@BURST.EXAMPLE".to_owned()
                ),
                ("subject".to_owned(), "burst r u0-s1-v2".to_owned()),
            ]
        );
    }

    #[test]
    fn session_ids_that_would_be_too_long_are_refused() {
        let long_run_id = "x".repeat(60);
        let shape = Shape {
            run_id: &long_run_id,
            ..shape(Mode::Identical, 10, 1, 1)
        };
        assert!(build(shape).is_err());
    }
}
