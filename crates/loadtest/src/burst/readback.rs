//! After the burst: every session is read back through `GET` with its
//! owner's token, and, when there are several users, probed with the next
//! user's token, which must get 404 unless that user owns an ID of the same
//! name. Reads go to the first instance only: what one instance committed
//! every instance must show, since the database is the single truth.

use std::collections::HashSet;

use super::plan::Plan;
use super::progress::Progress;
use super::runner::{Targets, exchange, run_bounded};
use super::tally::Ending;
use super::verify::{ObservedSession, ReadResult, SessionSnapshot};
use super::wire;

/// One GET to make: `reader` asks for plan session `session`'s ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Index of the user whose token is used.
    pub reader: usize,
    /// Index into [`Plan::sessions`].
    pub session: usize,
}

/// The reads verification needs: one by each owner, plus one probe per
/// session by the next user when that user owns no ID of the same name
/// (with one user, the "next" user is the owner, so there are no probes).
pub fn reads_for(plan: &Plan, users: usize) -> Vec<Read> {
    let owned: HashSet<(usize, &str)> = plan
        .sessions
        .iter()
        .map(|s| (s.owner, s.session_id.as_str()))
        .collect();
    let by_owners = plan
        .sessions
        .iter()
        .enumerate()
        .map(|(session, expected)| Read {
            reader: expected.owner,
            session,
        });
    let probes = plan
        .sessions
        .iter()
        .enumerate()
        .map(|(session, expected)| Read {
            reader: (expected.owner + 1) % users,
            session,
        })
        .filter(|read| {
            !owned.contains(&(read.reader, plan.sessions[read.session].session_id.as_str()))
        });
    by_owners.chain(probes).collect()
}

/// Makes the reads and pairs each with the PUT answers its reader got for
/// that session (`answered` is indexed like [`Plan::sessions`]).
pub async fn read_back(
    targets: &Targets,
    plan: &Plan,
    mut answered: Vec<Vec<SessionSnapshot>>,
) -> anyhow::Result<Vec<ObservedSession>> {
    let reads = reads_for(plan, targets.tokens.len());
    let base_url = &targets.base_urls[0];
    let mut progress = Progress::start("verify", reads.len(), targets.allow_bar);
    let mut results = run_bounded(
        reads,
        targets.concurrency,
        |read| {
            let session_id = &plan.sessions[read.session].session_id;
            let get = targets
                .client
                .get(format!("{base_url}/api/email/sessions/{session_id}"))
                .bearer_auth(&targets.tokens[read.reader]);
            async move {
                (
                    read,
                    read_result(exchange(get, wire::session_snapshot).await.ending),
                )
            }
        },
        |(_, result)| progress.advance(!matches!(result, ReadResult::Failed(_))),
    )
    .await?;
    progress.finish();
    // Back to plan order, so failures are listed the same way every run.
    results.sort_unstable_by_key(|(read, _)| (read.session, read.reader));
    Ok(results
        .into_iter()
        .map(|(read, result)| {
            let expected = &plan.sessions[read.session];
            let answers = if read.reader == expected.owner {
                std::mem::take(&mut answered[read.session])
            } else {
                Vec::new()
            };
            ObservedSession {
                reader: read.reader,
                session_id: expected.session_id.clone(),
                read: result,
                answered: answers,
            }
        })
        .collect())
}

fn read_result(ending: Ending<SessionSnapshot>) -> ReadResult {
    match ending {
        Ending::Success { value, .. } => ReadResult::Found(value),
        Ending::Refused { status: 404, .. } => ReadResult::NotFound,
        Ending::Refused { status, message } => {
            ReadResult::Failed(format!("HTTP {status}: {message}"))
        }
        Ending::Lost { message } => ReadResult::Failed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::burst::args::Mode;
    use crate::burst::plan::{Shape, build};

    fn plan(mode: Mode, users: usize) -> Plan {
        build(Shape {
            run_id: "r",
            mode,
            sessions: 3,
            duplicates: 2,
            users,
        })
        .unwrap()
    }

    #[test]
    fn one_user_reads_each_session_once() {
        let plan = plan(Mode::Identical, 1);
        let reads = reads_for(&plan, 1);
        assert_eq!(reads.len(), 3);
        assert!(
            reads
                .iter()
                .all(|r| r.reader == plan.sessions[r.session].owner)
        );
    }

    #[test]
    fn with_several_users_the_next_user_probes_each_session() {
        let plan = plan(Mode::Distinct, 3);
        let reads = reads_for(&plan, 3);
        assert_eq!(reads.len(), 9 + 9);
        let probes: Vec<&Read> = reads
            .iter()
            .filter(|r| r.reader != plan.sessions[r.session].owner)
            .collect();
        assert_eq!(probes.len(), 9);
        for probe in probes {
            assert_eq!(probe.reader, (plan.sessions[probe.session].owner + 1) % 3);
        }
    }

    #[test]
    fn cross_user_mode_needs_no_probe_since_every_user_owns_every_id() {
        let plan = plan(Mode::CrossUser, 2);
        let reads = reads_for(&plan, 2);
        assert_eq!(reads.len(), 6);
        assert!(
            reads
                .iter()
                .all(|r| r.reader == plan.sessions[r.session].owner)
        );
    }
}
