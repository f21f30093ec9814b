//! The actor that owns one session's writes in this instance.

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::domain::content::Change;
use crate::domain::identity::SessionKey;
use crate::sessions::registry::RegistryLink;
use crate::sessions::writer::{BatchResult, SessionWriter};
use crate::sessions::{UpdateError, UpdateOutcome};
use crate::stats::Stats;
use crate::storage::StorageError;
use crate::storage::sessions::SessionState;

/// The reply channel of one update request.
pub type Reply = oneshot::Sender<Result<UpdateOutcome, UpdateError>>;

/// One update request for this actor's session.
///
/// If the actor drops the message unanswered (it was stopping), `reply`
/// closes and the sender re-routes the request to a fresh actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Update {
    /// The requested change.
    pub change: Change,
    /// Where the result goes.
    pub reply: Reply,
}

/// Serialises one session's updates within this instance.
///
/// Invariant: at most one write is in flight; requests arriving meanwhile
/// queue and become the next batch, folded in arrival order and written in
/// one transaction, and every request is answered with the state as of the
/// commit that included it. The actor only stops when idle (nothing queued,
/// nothing in flight), so stopping never drops an accepted request.
pub struct SessionActor {
    key: SessionKey,
    writer: SessionWriter,
    stats: Stats,
    registry: RegistryLink,
    actor_id: u64,
    idle_timeout: Duration,
    max_queued: usize,
    queue: Vec<(Change, Reply)>,
    writing: bool,
    retiring: bool,
    // The state as of our last commit or confirmed read; `None` after a
    // failure, when we no longer know what is stored.
    known: Option<Arc<SessionState>>,
    last_active: Instant,
}

impl SessionActor {
    /// A new actor for `key`, registered in the registry under `actor_id`.
    pub fn new(
        key: SessionKey,
        writer: SessionWriter,
        stats: Stats,
        registry: RegistryLink,
        actor_id: u64,
        idle_timeout: Duration,
        max_queued: usize,
    ) -> SessionActor {
        SessionActor {
            key,
            writer,
            stats,
            registry,
            actor_id,
            idle_timeout,
            max_queued,
            queue: Vec::new(),
            writing: false,
            retiring: false,
            known: None,
            last_active: Instant::now(),
        }
    }

    fn start_batch(&mut self, ctx: &mut Context<Self>) {
        let (changes, replies): (Vec<Change>, Vec<Reply>) =
            mem::take(&mut self.queue).into_iter().unzip();
        let change = Change::fold(changes);
        self.writing = true;
        self.registry.batch_started();
        let writer = self.writer.clone();
        let key = self.key.clone();
        let known = self.known.clone();
        let write = async move { writer.write_batch(&key, &change, known).await };
        // Spawned on the actor's own context, not the request's: a client
        // that disconnects cannot cancel a write halfway.
        ctx.spawn(
            write
                .into_actor(self)
                .map(move |result, actor, ctx| actor.finish_batch(replies, result, ctx)),
        );
    }

    fn finish_batch(
        &mut self,
        replies: Vec<Reply>,
        result: Result<BatchResult, StorageError>,
        ctx: &mut Context<Self>,
    ) {
        self.writing = false;
        self.last_active = Instant::now();
        let answer = match result {
            Ok(BatchResult::Unchanged(session)) => {
                self.stats.record_noop_read(replies.len());
                Ok(UpdateOutcome {
                    session,
                    created: false,
                })
            }
            Ok(BatchResult::Written(outcome)) => {
                self.stats.record_write(replies.len(), outcome.applied);
                let session = Arc::new(outcome.session);
                self.known = Some(session.clone());
                Ok(UpdateOutcome {
                    session,
                    created: outcome.created,
                })
            }
            Err(error) => {
                self.known = None;
                Err(UpdateError::log_storage_failure(
                    error,
                    &self.key,
                    replies.len(),
                ))
            }
        };
        for reply in replies {
            // A closed receiver is a client that went away; the write stands.
            let _ = reply.send(answer.clone());
        }
        if !self.queue.is_empty() {
            self.start_batch(ctx);
        }
        // Only now: a drain polling the count must never see zero between
        // this batch and the next one.
        self.registry.batch_finished();
    }

    fn retire_if_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = !self.writing
            && self.queue.is_empty()
            && self.last_active.elapsed() >= self.idle_timeout;
        // Leave the registry first, so new requests find a fresh actor; a
        // request that still slips a message in sees it dropped and re-routes.
        if idle && self.registry.retire(&self.key, self.actor_id) {
            self.retiring = true;
            ctx.stop();
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let check_every = self.idle_timeout.max(Duration::from_millis(1));
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
        if self.queue.len() >= self.max_queued {
            self.stats.record_rejected("waiting_per_session");
            let _ = update
                .reply
                .send(Err(UpdateError::Overloaded("waiting_per_session")));
            return;
        }
        self.queue.push((update.change, update.reply));
        if !self.writing {
            self.start_batch(ctx);
        }
    }
}
