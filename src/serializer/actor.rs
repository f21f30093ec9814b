//! The actor that owns one session's writes in this instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio_util::task::TaskTracker;

use crate::domain::content::Change;
use crate::domain::identity::SessionKey;
use crate::domain::precondition::Precondition;
use crate::domain::session::{ChangeResult, Session};
use crate::serializer::UpdateError;
use crate::serializer::batch::{self, Segment, write_segment};
use crate::serializer::inbox::Inbox;
use crate::serializer::registry::{RegistryLink, UserPlace};
use crate::serializer::version_reads::VersionReads;
use crate::stats::Stats;
use crate::storage::{StorageError, Store};

/// What an update request is answered with.
pub(super) type Answer = Result<ChangeResult, UpdateError>;

/// Where one request's answer goes, and its place among the requests waiting for this session
/// (`sessions.max_waiting_per_session`). The place travels with the request and is given back
/// when it is answered, so a request whose client hung up still holds one while its change
/// waits to be written: the registry's count is the queue's length, and the one check of the
/// bound is the registry's.
pub(super) struct Waiter {
    reply: oneshot::Sender<Answer>,
    _place: OwnedSemaphorePermit,
}

impl Waiter {
    pub(super) fn new(reply: oneshot::Sender<Answer>, place: OwnedSemaphorePermit) -> Waiter {
        Waiter {
            reply,
            _place: place,
        }
    }

    fn answer(self, answer: Answer) {
        // A closed receiver is a client that went away; the write stands.
        let _ = self.reply.send(answer);
    }
}

/// An actor's places among `sessions.max_live_actors` and its user's
/// `sessions.max_live_actors_per_user`, given back when the actor is dropped.
pub(super) struct ActorPlaces {
    _live: OwnedSemaphorePermit,
    _user: UserPlace,
}

impl ActorPlaces {
    pub(super) fn new(live: OwnedSemaphorePermit, user: UserPlace) -> ActorPlaces {
        ActorPlaces {
            _live: live,
            _user: user,
        }
    }
}

/// One update request for this actor's session, posted to its [`Inbox`].
///
/// If the actor drops it unanswered (it was stopping), the reply closes and
/// the sender re-routes the request to a fresh actor.
pub(super) struct Update {
    /// The requested change.
    pub(super) change: Change,
    /// What the request expects of the stored session.
    pub(super) precondition: Precondition,
    /// Who waits for the answer.
    pub(super) waiter: Waiter,
}

/// Wakes an actor that sleeps: requests were posted to its [`Inbox`].
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Wake;

/// What every actor of one registry shares.
pub(super) struct ActorSettings {
    /// Where batches are written.
    pub(super) store: Store,
    /// Where no-op batches confirm the stored version.
    pub(super) version_reads: VersionReads,
    /// This instance's counters.
    pub(super) stats: Stats,
    /// The way out of the registry when idle.
    pub(super) registry: RegistryLink,
    /// Each batch holds a token of this until it is answered; the drain waits for them.
    pub(super) batches: TaskTracker,
    /// Idle time after which the actor stops.
    pub(super) idle_timeout: Duration,
}

/// Serialises one session's updates within this instance.
///
/// Invariant: at most one batch is in flight; requests arriving meanwhile
/// wait in its inbox and become the next batch. Unconditional requests in it fold in
/// arrival order into one transaction, conditional ones are judged one by
/// one in that order, and every request is answered with the result of the
/// write that included it. The actor only stops when idle (nothing queued,
/// nothing in flight), so stopping never drops an accepted request.
pub(super) struct SessionActor {
    key: SessionKey,
    actor_id: u64,
    settings: ActorSettings,
    /// Where requests wait to be taken into a batch, shared with the registry.
    inbox: Arc<Inbox>,
    writing: bool,
    retiring: bool,
    // The state as of our last commit or confirmed read; `None` after a
    // failure, when we no longer know what is stored.
    known: Option<Arc<Session>>,
    last_active: Instant,
    _places: ActorPlaces,
}

impl SessionActor {
    /// A new actor for `key`, registered in the registry under `actor_id`, holding `places`,
    /// taking its requests from `inbox`.
    pub(super) fn new(
        key: SessionKey,
        actor_id: u64,
        settings: ActorSettings,
        places: ActorPlaces,
        inbox: Arc<Inbox>,
    ) -> SessionActor {
        SessionActor {
            key,
            actor_id,
            settings,
            inbox,
            writing: false,
            retiring: false,
            known: None,
            last_active: Instant::now(),
            _places: places,
        }
    }

    /// Writes what was posted to the inbox as one batch, if anything was; otherwise the actor
    /// sleeps until woken.
    fn start_batch(&mut self, ctx: &mut Context<Self>) {
        let posted = self.inbox.take();
        if posted.is_empty() {
            return;
        }
        self.last_active = Instant::now();
        let segments = batch::plan(
            posted
                .into_iter()
                .map(|update| (update.change, update.precondition, update.waiter)),
        );
        self.writing = true;
        // Held until every request of the batch is answered (and the next
        // batch, if any, holds its own), so a drain cannot end in between.
        let in_flight = self.settings.batches.token();
        let store = self.settings.store.clone();
        let version_reads = self.settings.version_reads.clone();
        let stats = self.settings.stats.clone();
        let key = self.key.clone();
        let mut known = self.known.clone();
        let write = async move {
            let mut written = Vec::with_capacity(segments.len());
            let mut segments = segments.into_iter();
            while let Some(segment) = segments.next() {
                match write_segment(
                    &store,
                    &version_reads,
                    &stats,
                    &key,
                    &segment,
                    known.as_ref(),
                )
                .await
                {
                    Ok(result) => {
                        if let ChangeResult::Stored(stored) = &result {
                            known = Some(stored.session.clone());
                        }
                        written.push((segment, result));
                    }
                    // The rest of the batch is not tried: the database just failed after
                    // its retries, and the clients are better told at once.
                    Err(error) => {
                        let unanswered = std::iter::once(segment).chain(segments).collect();
                        return BatchReport {
                            written,
                            known,
                            failed: Some((error, unanswered)),
                        };
                    }
                }
            }
            BatchReport {
                written,
                known,
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
        for (segment, result) in report.written {
            for waiter in segment.requests {
                waiter.answer(Ok(result.clone()));
            }
        }
        self.known = report.known;
        if let Some((error, unanswered)) = report.failed {
            self.known = None;
            let waiters: Vec<Waiter> = unanswered
                .into_iter()
                .flat_map(|segment| segment.requests)
                .collect();
            let failure = UpdateError::from_failed_write(error, &self.key, waiters.len());
            for waiter in waiters {
                waiter.answer(Err(failure));
            }
        }
        self.start_batch(ctx);
        if !self.writing && self.known.is_none() {
            // Nothing stored that we know of (refused by the quota or a precondition, or the
            // write failed): nothing worth keeping a place for, so a flood of refused first
            // touches holds no capacity beyond its writes.
            self.retire(ctx);
        }
    }

    fn retire_if_idle(&mut self, ctx: &mut Context<Self>) {
        if self.last_active.elapsed() >= self.settings.idle_timeout {
            self.retire(ctx);
        }
    }

    /// Stops, if nothing is being written and no request is on its way in.
    fn retire(&mut self, ctx: &mut Context<Self>) {
        // Leave the registry first, so new requests find a fresh actor; a
        // request that still slips into the inbox sees it dropped and re-routes.
        if !self.writing && self.settings.registry.retire(&self.key, self.actor_id) {
            self.retiring = true;
            self.inbox.close();
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

impl Handler<Wake> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        // Retiring, the inbox is closed and what was in it re-routes; writing, the end of the
        // write takes what was posted.
        if !self.retiring && !self.writing {
            self.start_batch(ctx);
        }
    }
}

impl Drop for SessionActor {
    fn drop(&mut self) {
        // Stopped, or its arbiter was: whoever still waits in the inbox re-routes.
        self.inbox.close();
    }
}

/// What a batch's writes came to: the segments written (in order), the state the last of them
/// left, and the first failure with the segments it left unanswered.
struct BatchReport {
    written: Vec<(Segment<Waiter>, ChangeResult)>,
    known: Option<Arc<Session>>,
    failed: Option<(StorageError, Vec<Segment<Waiter>>)>,
}
