//! The registry: which actor serves which (user, session ID), the bounds
//! that keep the whole thing from growing without limit, and the drain.
//!
//! Each bound is a [`Semaphore`] whose owned permits are the places: an update request holds
//! one of `max_in_flight_updates` from before its body is read until it is answered
//! ([`Admission`]); a request sent to an actor holds one of its session's
//! `max_waiting_per_session` until the actor answers it; an actor holds one of
//! `max_live_actors`, and one of its user's `max_live_actors_per_user`, until it stops. Each is
//! checked here, once, with `try_acquire`, rather than left to actix mailbox capacities,
//! because every cloned `Addr` may push one message past a full mailbox.
//!
//! A refused request holds no capacity: a user whose quota of new sessions is used up (as the
//! database last said) gets its first touch of a session checked with one plain read before any
//! actor starts, and a session that does not exist is refused there; an actor whose writes left
//! no session behind stops at once instead of idling (`SessionActor`).
//!
//! Draining is structural: every batch an actor writes holds a token of the
//! registry's [`TaskTracker`] until it is answered, so the drain waits for
//! the last token rather than polling counters kept by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::{Actor, Addr, ArbiterHandle};
use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::task::TaskTracker;

use crate::configuration::SessionSettings;
use crate::domain::content::Change;
use crate::domain::identity::{SessionKey, UserId};
use crate::domain::precondition::Precondition;
use crate::domain::session::ChangeResult;
use crate::serializer::actor::{
    ActorPlaces, ActorSettings, Answer, SessionActor, Update, Waiter, Wake,
};
use crate::serializer::inbox::{Inbox, Posted};
use crate::serializer::version_reads::VersionReads;
use crate::serializer::{Bound, UpdateError};
use crate::stats::Stats;
use crate::storage::Store;

/// A request whose actor stopped under it is re-routed this many times; one
/// is enough unless idle timeouts are absurdly short.
const MAX_ROUTING_ATTEMPTS: usize = 8;

/// How long a user refused by the quota is taken to still be past it. The quota only frees at
/// the next UTC day, so this is short only to notice that day soon, on any clock.
const OVER_QUOTA_MEMORY: Duration = Duration::from_secs(60);

/// A cheap handle to the session registry of this instance.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

/// What an actor holds to leave the registry, without keeping it alive.
#[derive(Clone)]
pub(super) struct RegistryLink(Weak<RegistryInner>);

struct RegistryInner {
    // DashMap: every update looks its session up, from every worker thread;
    // sharded locks keep unrelated sessions from contending. A guard is never
    // held across an `.await`.
    actors: DashMap<SessionKey, SessionHandle>,
    store: Store,
    version_reads: VersionReads,
    stats: Stats,
    settings: SessionSettings,
    // All actors run on one dedicated arbiter, so their lifetime is the
    // application's, not an HTTP worker's: a worker that stops first cannot
    // take actors (and the writes in them) down with it.
    arbiter: ArbiterHandle,
    next_actor_id: AtomicU64,
    in_flight: Arc<Semaphore>,
    live: Arc<Semaphore>,
    /// Live actors per user, for `max_live_actors_per_user`; a user without actors has no entry.
    live_per_user: DashMap<UserId, usize>,
    max_live_per_user: usize,
    /// Users the quota refused lately, and until when that is taken to hold.
    over_quota: DashMap<UserId, Instant>,
    /// Each session's places for waiting requests.
    waiting_per_session: usize,
    // Batches being written, each holding a token until answered. The drain
    // waits for all of them, because a batch whose clients all hung up is
    // still a write we started and must finish.
    batches: TaskTracker,
}

#[derive(Clone)]
struct SessionHandle {
    actor_id: u64,
    addr: Addr<SessionActor>,
    /// The session's places for waiting requests.
    waiting: Arc<Semaphore>,
    /// Where requests wait for the actor to take them.
    inbox: Arc<Inbox>,
}

/// As many places as `limit`, or as a semaphore can hold if that is less.
fn places(limit: usize) -> usize {
    limit.min(Semaphore::MAX_PERMITS)
}

impl Registry {
    /// An empty registry writing through `store`, its actors on `arbiter`.
    pub fn new(
        store: Store,
        stats: Stats,
        settings: SessionSettings,
        arbiter: ArbiterHandle,
    ) -> Registry {
        Registry {
            inner: Arc::new(RegistryInner {
                actors: DashMap::new(),
                version_reads: VersionReads::new(store.clone(), stats.clone()),
                store,
                stats,
                in_flight: Arc::new(Semaphore::new(places(settings.max_in_flight_updates))),
                live: Arc::new(Semaphore::new(places(settings.max_live_actors))),
                live_per_user: DashMap::new(),
                max_live_per_user: settings.max_live_actors_per_user,
                over_quota: DashMap::new(),
                waiting_per_session: places(settings.max_waiting_per_session),
                settings,
                arbiter,
                next_actor_id: AtomicU64::new(0),
                batches: TaskTracker::new(),
            }),
        }
    }

    /// Live actors in this instance.
    pub fn live_actors(&self) -> usize {
        self.inner.actors.len()
    }

    /// Update requests waiting in actors right now (for the gauge; it walks every actor).
    pub fn waiting_updates(&self) -> usize {
        self.inner
            .actors
            .iter()
            .map(|handle| self.inner.waiting_in(&handle))
            .sum()
    }

    /// Waits (up to `timeout`) until every batch started so far, and every
    /// batch those start in turn, has been written and answered. `false` when
    /// the timeout came first. Call after the HTTP server has stopped, so no
    /// new update can arrive; the actors stop with their arbiter.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.inner.batches.close();
        tokio::time::timeout(timeout, self.inner.batches.wait())
            .await
            .is_ok()
    }

    /// Takes one of the `max_in_flight_updates` places for an update request, from before its
    /// body is read (a body that trickles in holds its place) until it is answered.
    pub fn admit(&self) -> Result<Admission, UpdateError> {
        self.inner
            .in_flight
            .clone()
            .try_acquire_owned()
            .map(|place| Admission { _place: place })
            .map_err(|_| self.reject(Bound::InFlightUpdates))
    }

    /// Applies `change` to the session `key` if `precondition` holds, and
    /// answers with the result of the write that included it.
    pub async fn update(
        &self,
        _admission: Admission,
        key: SessionKey,
        change: Change,
        precondition: Precondition,
    ) -> Answer {
        self.inner.stats.record_received();
        for _ in 0..MAX_ROUTING_ATTEMPTS {
            if self.refused_before_any_actor(&key, &precondition).await? {
                return Ok(ChangeResult::QuotaExceeded);
            }
            let handle = self.handle_for(&key)?;
            let place = handle
                .waiting
                .clone()
                .try_acquire_owned()
                .map_err(|_| self.reject(Bound::WaitingPerSession))?;
            let (reply, answer) = oneshot::channel();
            let update = Update {
                change: change.clone(),
                precondition: precondition.clone(),
                waiter: Waiter::new(reply, place),
            };
            match handle.inbox.post(update) {
                // At most one wake-up is on its way to an actor, so its mailbox is never full
                // (and `do_send` would ignore that anyway). An actor that is gone, or was never
                // built because its arbiter had stopped, never takes what waits in its inbox:
                // closing it makes those requests, this one among them, re-route.
                Posted::WakeTheActor => match handle.addr.try_send(Wake) {
                    Ok(()) => {}
                    Err(SendError::Full(wake)) => handle.addr.do_send(wake),
                    Err(SendError::Closed(_)) => handle.inbox.close(),
                },
                Posted::Kept | Posted::Closed => {}
            }
            match answer.await {
                Ok(result) => {
                    if let Ok(ChangeResult::QuotaExceeded) = result {
                        self.inner
                            .over_quota
                            .insert(key.user_id, Instant::now() + OVER_QUOTA_MEMORY);
                    }
                    return result;
                }
                Err(_) => {
                    self.inner.stats.record_reroute();
                    self.forget(&key, handle.actor_id);
                }
            }
        }
        tracing::error!(session_id = %key.session_id, "no actor took the update");
        Err(UpdateError::Unrouted)
    }

    /// Whether a request that would create `key` is refused by the quota without starting an
    /// actor: only for a user the quota refused lately, whose session has no actor here, and
    /// only once a plain read shows the session does not exist (an update of an existing
    /// session is never refused by the quota). A conditional request goes to its actor, which
    /// judges the precondition first.
    async fn refused_before_any_actor(
        &self,
        key: &SessionKey,
        precondition: &Precondition,
    ) -> Result<bool, UpdateError> {
        // Read-only for users the quota never refused: every update passes here.
        let Some(until) = self.inner.over_quota.get(&key.user_id).map(|until| *until) else {
            return Ok(false);
        };
        if until <= Instant::now() {
            self.inner
                .over_quota
                .remove_if(&key.user_id, |_, until| *until <= Instant::now());
            return Ok(false);
        }
        if !precondition.is_unconditional() || self.inner.actors.contains_key(key) {
            return Ok(false);
        }
        let version = self
            .inner
            .store
            .current_version(key)
            .await
            .map_err(|error| UpdateError::from_failed_write(error, key, 1))?;
        Ok(version.is_none())
    }

    fn handle_for(&self, key: &SessionKey) -> Result<SessionHandle, UpdateError> {
        if let Some(handle) = self.inner.actors.get(key) {
            return Ok(handle.clone());
        }
        // The user's bound first: one user at its bound must not take places of the others'.
        let user = self.user_place(key.user_id)?;
        let live = self
            .inner
            .live
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.reject(Bound::LiveActors))?;
        // A concurrent first touch may have spawned the actor meanwhile: then the places are
        // dropped unused, and go back.
        let handle = self
            .inner
            .actors
            .entry(key.clone())
            .or_insert_with(|| self.spawn(key.clone(), ActorPlaces::new(live, user)))
            .clone();
        Ok(handle)
    }

    /// One of `user_id`'s places among `max_live_actors_per_user`.
    fn user_place(&self, user_id: UserId) -> Result<UserPlace, UpdateError> {
        let mut live = self.inner.live_per_user.entry(user_id).or_insert(0);
        if *live >= self.inner.max_live_per_user {
            drop(live);
            self.inner
                .live_per_user
                .remove_if(&user_id, |_, live| *live == 0);
            return Err(self.reject(Bound::LiveActorsPerUser));
        }
        *live += 1;
        Ok(UserPlace {
            registry: RegistryLink(Arc::downgrade(&self.inner)),
            user_id,
        })
    }

    fn spawn(&self, key: SessionKey, places: ActorPlaces) -> SessionHandle {
        let actor_id = self.inner.next_actor_id.fetch_add(1, Ordering::Relaxed);
        self.inner.stats.record_actor_started();
        let settings = ActorSettings {
            store: self.inner.store.clone(),
            version_reads: self.inner.version_reads.clone(),
            stats: self.inner.stats.clone(),
            registry: RegistryLink(Arc::downgrade(&self.inner)),
            batches: self.inner.batches.clone(),
            idle_timeout: self.inner.settings.idle_timeout,
        };
        let inbox = Arc::new(Inbox::default());
        let actor_inbox = inbox.clone();
        let addr = SessionActor::start_in_arbiter(&self.inner.arbiter, move |_| {
            SessionActor::new(key, actor_id, settings, places, actor_inbox)
        });
        SessionHandle {
            actor_id,
            addr,
            waiting: Arc::new(Semaphore::new(self.inner.waiting_per_session)),
            inbox,
        }
    }

    fn forget(&self, key: &SessionKey, actor_id: u64) {
        self.inner
            .actors
            .remove_if(key, |_, handle| handle.actor_id == actor_id);
    }

    fn reject(&self, bound: Bound) -> UpdateError {
        self.inner.stats.record_rejected(bound.label());
        UpdateError::Overloaded(bound)
    }
}

impl RegistryInner {
    /// Requests sent to `handle`'s actor and not answered yet.
    fn waiting_in(&self, handle: &SessionHandle) -> usize {
        self.waiting_per_session - handle.waiting.available_permits()
    }
}

impl RegistryLink {
    /// Lets actor `actor_id` leave the registry, unless a request holds a place in it right now
    /// (it is about to send, or its message is on the way); returns whether the actor may stop.
    /// Refusing then keeps re-routes (and the reordering they could cause) rare. An entry that
    /// already points at a fresh actor is left alone, and the old actor may stop.
    pub(super) fn retire(&self, key: &SessionKey, actor_id: u64) -> bool {
        let Some(inner) = self.0.upgrade() else {
            return true;
        };
        let removed = inner
            .actors
            .remove_if(key, |_, handle| {
                handle.actor_id == actor_id && inner.waiting_in(handle) == 0
            })
            .is_some();
        removed
            || inner
                .actors
                .get(key)
                .is_none_or(|handle| handle.actor_id != actor_id)
    }
}

/// An actor's place among its user's `max_live_actors_per_user`, given back when dropped.
pub(super) struct UserPlace {
    registry: RegistryLink,
    user_id: UserId,
}

impl Drop for UserPlace {
    fn drop(&mut self) {
        let Some(inner) = self.registry.0.upgrade() else {
            return;
        };
        if let Some(mut live) = inner.live_per_user.get_mut(&self.user_id) {
            *live = live.saturating_sub(1);
        }
        inner
            .live_per_user
            .remove_if(&self.user_id, |_, live| *live == 0);
    }
}

/// An update request's place among those in flight, given back when dropped.
pub struct Admission {
    _place: OwnedSemaphorePermit,
}
