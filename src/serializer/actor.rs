//! The actor that owns one session's writes in this instance.

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::domain::content::Change;
use crate::domain::identity::SessionKey;
use crate::domain::precondition::Precondition;
use crate::serializer::batch::{self, Segment, SegmentResult, write_segment};
use crate::serializer::registry::RegistryLink;
use crate::serializer::{Bound, UpdateError, UpdateOutcome};
use crate::stats::Stats;
use crate::storage::{SessionState, StorageError, Store};

/// The reply channel of one update request.
type Reply = oneshot::Sender<Result<UpdateOutcome, UpdateError>>;

/// One update request for this actor's session.
///
/// If the actor drops the message unanswered (it was stopping), `reply`
/// closes and the sender re-routes the request to a fresh actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Update {
    /// The requested change.
    pub(super) change: Change,
    /// What the request expects of the stored session.
    pub(super) precondition: Precondition,
    /// Where the result goes.
    pub(super) reply: Reply,
}

/// What every actor of one registry shares.
pub(super) struct ActorSettings {
    /// Where batches are written.
    pub(super) store: Store,
    /// This instance's counters.
    pub(super) stats: Stats,
    /// The way out of the registry when idle.
    pub(super) registry: RegistryLink,
    /// Each batch holds a token of this until it is answered; the drain waits for them.
    pub(super) batches: TaskTracker,
    /// Idle time after which the actor stops.
    pub(super) idle_timeout: Duration,
    /// Bound on the queue, which also holds changes of clients that hung up.
    pub(super) max_queued: usize,
}

/// Serialises one session's updates within this instance.
///
/// Invariant: at most one batch is in flight; requests arriving meanwhile
/// queue and become the next batch. Unconditional requests in it fold in
/// arrival order into one transaction, conditional ones are judged one by
/// one in that order, and every request is answered with the state as of the
/// commit that included it. The actor only stops when idle (nothing queued,
/// nothing in flight), so stopping never drops an accepted request.
pub(super) struct SessionActor {
    key: SessionKey,
    actor_id: u64,
    settings: ActorSettings,
    queue: Vec<(Change, Precondition, Reply)>,
    writing: bool,
    retiring: bool,
    // The state as of our last commit or confirmed read; `None` after a
    // failure, when we no longer know what is stored.
    known: Option<Arc<SessionState>>,
    last_active: Instant,
}

impl SessionActor {
    /// A new actor for `key`, registered in the registry under `actor_id`.
    pub(super) fn new(key: SessionKey, actor_id: u64, settings: ActorSettings) -> SessionActor {
        SessionActor {
            key,
            actor_id,
            settings,
            queue: Vec::new(),
            writing: false,
            retiring: false,
            known: None,
            last_active: Instant::now(),
        }
    }

    fn start_batch(&mut self, ctx: &mut Context<Self>) {
        let segments = batch::plan(mem::take(&mut self.queue));
        self.writing = true;
        // Held until every request of the batch is answered (and the next
        // batch, if any, holds its own), so a drain cannot end in between.
        let in_flight = self.settings.batches.token();
        let store = self.settings.store.clone();
        let key = self.key.clone();
        let mut known = self.known.clone();
        let write = async move {
            let mut written = Vec::with_capacity(segments.len());
            let mut segments = segments.into_iter();
            while let Some(segment) = segments.next() {
                let result = write_segment(
                    &store,
                    &key,
                    &segment.change,
                    &segment.precondition,
                    known.as_ref(),
                )
                .await;
                match result {
                    Ok(result) => {
                        match &result {
                            SegmentResult::Unchanged(session)
                            | SegmentResult::Written { session, .. } => {
                                known = Some(session.clone());
                            }
                            SegmentResult::PreconditionFailed | SegmentResult::QuotaExceeded => {}
                        }
                        written.push((segment, result));
                    }
                    // The rest of the batch is not tried: the database just failed after
                    // its retries, and the clients are better told at once.
                    Err(error) => {
                        let unanswered = std::iter::once(segment).chain(segments).collect();
                        return BatchReport {
                            written,
                            failed: Some((error, unanswered)),
                        };
                    }
                }
            }
            BatchReport {
                written,
                failed: None,
            }
        };
        // Spawned on the actor's own context, not the request's: a client
        // that disconnects cannot cancel a write halfway.
        ctx.spawn(write.into_actor(self).map(move |report, actor, ctx| {
            actor.finish_batch(report, ctx);
            drop(in_flight);
        }));
    }

    fn finish_batch(&mut self, report: BatchReport, ctx: &mut Context<Self>) {
        self.writing = false;
        self.last_active = Instant::now();
        let stats = &self.settings.stats;
        for (segment, result) in report.written {
            let size = segment.requests.len();
            let answer = match result {
                SegmentResult::Unchanged(session) => {
                    stats.record_noop_read(size);
                    self.known = Some(session.clone());
                    Ok(UpdateOutcome {
                        session,
                        created: false,
                    })
                }
                SegmentResult::Written {
                    session,
                    created,
                    applied,
                } => {
                    stats.record_write(size, applied);
                    self.known = Some(session.clone());
                    Ok(UpdateOutcome { session, created })
                }
                SegmentResult::PreconditionFailed => {
                    stats.record_write(size, false);
                    Err(UpdateError::PreconditionFailed)
                }
                SegmentResult::QuotaExceeded => {
                    stats.record_write(size, false);
                    Err(UpdateError::QuotaExceeded)
                }
            };
            answer_all(segment.requests, &answer);
        }
        if let Some((error, unanswered)) = report.failed {
            self.known = None;
            let requests: Vec<Reply> = unanswered
                .into_iter()
                .flat_map(|segment| segment.requests)
                .collect();
            let answer = Err(UpdateError::from_failed_write(
                error,
                &self.key,
                requests.len(),
            ));
            answer_all(requests, &answer);
        }
        if !self.queue.is_empty() {
            self.start_batch(ctx);
        }
    }

    fn retire_if_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = !self.writing
            && self.queue.is_empty()
            && self.last_active.elapsed() >= self.settings.idle_timeout;
        // Leave the registry first, so new requests find a fresh actor; a
        // request that still slips a message in sees it dropped and re-routes.
        if idle && self.settings.registry.retire(&self.key, self.actor_id) {
            self.retiring = true;
            ctx.stop();
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let check_every = self.settings.idle_timeout.max(Duration::from_millis(1));
        ctx.run_interval(check_every, Self::retire_if_idle);
    }
}

impl Handler<Update> for SessionActor {
    type Result = ();

    fn handle(&mut self, update: Update, ctx: &mut Context<Self>) {
        if self.retiring {
            // Dropping the reply tells the sender to re-route.
            return;
        }
        self.last_active = Instant::now();
        // The registry bounds requests whose clients still wait; this bounds
        // the queue itself, which also holds the changes of clients that hung
        // up (their writes still happen).
        if self.queue.len() >= self.settings.max_queued {
            let bound = Bound::WaitingPerSession;
            self.settings.stats.record_rejected(bound.label());
            let _ = update.reply.send(Err(UpdateError::Overloaded(bound)));
            return;
        }
        self.queue
            .push((update.change, update.precondition, update.reply));
        if !self.writing {
            self.start_batch(ctx);
        }
    }
}

/// What a batch's writes came to: the segments written (in order), and the first failure with
/// the segments it left unanswered.
struct BatchReport {
    written: Vec<(Segment<Reply>, SegmentResult)>,
    failed: Option<(StorageError, Vec<Segment<Reply>>)>,
}

fn answer_all(replies: Vec<Reply>, answer: &Result<UpdateOutcome, UpdateError>) {
    for reply in replies {
        // A closed receiver is a client that went away; the write stands.
        let _ = reply.send(answer.clone());
    }
}
