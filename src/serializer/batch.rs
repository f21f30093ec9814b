//! Turns a batch of queued requests into as few write transactions as their preconditions
//! allow, and each of those into at most one write.
//!
//! Unconditional requests that queue up together fold into one change (later fields win), so a
//! burst of duplicates costs one write. A conditional request (`If-Match`, `If-None-Match`) is
//! judged on its own, in arrival order, against the state as the batch has left it, so a stale
//! request fails without spoiling the requests around it; the database judges it under the row
//! lock. And a segment whose result equals the stored state costs no write transaction: when
//! the actor's last known state already has the content, a read of `version` confirms no other
//! instance changed the row meanwhile: riding along on another session's write, or one read
//! shared by every session waiting (`version_reads`).
//!
//! [`write_segment`] is the one place a segment reaches the database, so it is also where what it
//! cost is counted ([`Stats`]).

use std::sync::Arc;

use crate::domain::content::Change;
use crate::domain::identity::SessionKey;
use crate::domain::precondition::Precondition;
use crate::domain::session::{ChangeResult, Session, StoredChange};
use crate::serializer::version_reads::VersionReads;
use crate::stats::Stats;
use crate::storage::{StorageError, Store};

/// One write of a batch, with whatever the requests it answers carry along (their replies).
pub(super) struct Segment<R> {
    /// The change to write.
    pub(super) change: Change,
    /// Its precondition; unconditional for a folded run.
    pub(super) precondition: Precondition,
    /// One per request the segment answers, in arrival order.
    pub(super) requests: Vec<R>,
}

/// Splits requests, in arrival order, into segments: each run of unconditional requests folds
/// into one, and each conditional request stands alone.
pub(super) fn plan<R>(
    requests: impl IntoIterator<Item = (Change, Precondition, R)>,
) -> Vec<Segment<R>> {
    let mut segments: Vec<Segment<R>> = Vec::new();
    for (change, precondition, request) in requests {
        match segments.last_mut() {
            Some(open)
                if precondition.is_unconditional() && open.precondition.is_unconditional() =>
            {
                open.change = std::mem::take(&mut open.change).then(change);
                open.requests.push(request);
            }
            _ => segments.push(Segment {
                change,
                precondition,
                requests: vec![request],
            }),
        }
    }
    segments
}

/// Writes `segment`, unless it is unconditional, `known` shows it changes nothing, and the
/// database confirms `known` is current; counts what it cost either way.
pub(super) async fn write_segment<R>(
    store: &Store,
    version_reads: &VersionReads,
    stats: &Stats,
    key: &SessionKey,
    segment: &Segment<R>,
    known: Option<&Arc<Session>>,
) -> Result<ChangeResult, StorageError> {
    let requests = segment.requests.len();
    if let Some(known) = known
        && segment.precondition.is_unconditional()
        && segment.change.is_noop_for(&known.content)
        && version_reads.current(key.clone()).await? == Some(known.version)
    {
        stats.record_noop_answer(requests);
        return Ok(ChangeResult::Stored(StoredChange {
            session: known.clone(),
            created: false,
            applied: false,
        }));
    }
    // Confirmations waiting for a read of their own come along in this write's statement.
    let riders = version_reads.write_starting();
    let written = store
        .apply_change(key, &segment.change, &segment.precondition, riders.keys())
        .await;
    let result = match written {
        Ok((result, riders_versions)) => {
            riders.answer(Ok(riders_versions));
            result
        }
        Err(error) => {
            riders.answer(Err(error.failure()));
            return Err(error);
        }
    };
    let applied = matches!(&result, ChangeResult::Stored(stored) if stored.applied);
    stats.record_write(requests, applied);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Subject;
    use crate::domain::precondition::Versions;

    fn subject(text: &str) -> Change {
        Change {
            recipients: None,
            subject: Some(Subject::parse(text).unwrap()),
        }
    }

    fn if_match(version: i64) -> Precondition {
        Precondition {
            if_match: Some(Versions::Listed(vec![version])),
            if_none_match: None,
        }
    }

    #[test]
    fn unconditional_runs_fold_and_conditional_requests_stand_alone() {
        // Arrange
        let requests = vec![
            (subject("a"), Precondition::default(), 0),
            (subject("b"), Precondition::default(), 1),
            (subject("c"), if_match(1), 2),
            (subject("d"), if_match(1), 3),
            (subject("e"), Precondition::default(), 4),
        ];

        // Act
        let segments = plan(requests);

        // Assert
        let shapes: Vec<(Option<&str>, bool, Vec<i32>)> = segments
            .iter()
            .map(|s| {
                (
                    s.change.subject.as_ref().map(Subject::as_str),
                    s.precondition.is_unconditional(),
                    s.requests.clone(),
                )
            })
            .collect();
        assert_eq!(
            shapes,
            [
                (Some("b"), true, vec![0, 1]),
                (Some("c"), false, vec![2]),
                (Some("d"), false, vec![3]),
                (Some("e"), true, vec![4]),
            ]
        );
    }
}
