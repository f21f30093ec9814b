//! Where one session's requests wait for its actor: a list under a lock, and a wake-up message
//! only when the actor would not otherwise look at it.
//!
//! A request that arrives while its session's batch is being written can only join the next
//! batch, which starts when that write ends: a message per request would wake the actors'
//! thread for nothing but putting it in the queue. So every request is posted here, and the
//! actor is sent a wake-up only when it is asleep (no batch in flight, no wake-up pending); the
//! end of a write takes everything posted meanwhile. In a burst of duplicates, the requests
//! after the first cost no wake-up of the actors' thread.
//!
//! The one lock makes the hand-over exact and keeps arrival order: a request either finds the
//! actor awake, and is taken by the end of its write or by the wake-up on its way, or wakes it.
//! An actor going away closes the inbox first: requests still in it are dropped and later posts
//! are refused, and either way their senders re-route them.

use std::mem;
use std::sync::{Mutex, MutexGuard};

use crate::serializer::actor::Update;

/// One session's requests not yet taken by its actor.
#[derive(Default)]
pub(super) struct Inbox(Mutex<InboxState>);

#[derive(Default)]
struct InboxState {
    /// In arrival order.
    waiting: Vec<Update>,
    /// The actor will take what is here without being woken: it is writing a batch, or a
    /// wake-up is on its way.
    awake: bool,
    /// The actor is gone or going: nothing is taken from here any more.
    closed: bool,
}

/// What became of a posted request.
pub(super) enum Posted {
    /// Taken in; the actor must be woken to see it.
    WakeTheActor,
    /// Taken in; the actor will see it without a wake-up.
    Kept,
    /// Refused and dropped: the actor is gone, so the sender re-routes the request.
    Closed,
}

impl Inbox {
    /// Posts `update` for the actor, in arrival order.
    pub(super) fn post(&self, update: Update) -> Posted {
        let mut state = self.lock();
        if state.closed {
            return Posted::Closed;
        }
        state.waiting.push(update);
        if mem::replace(&mut state.awake, true) {
            Posted::Kept
        } else {
            Posted::WakeTheActor
        }
    }

    /// Everything posted so far, in arrival order. When nothing is, the actor is asleep from
    /// now on, and the next post wakes it; the caller must then start no batch of its own until
    /// woken.
    pub(super) fn take(&self) -> Vec<Update> {
        let mut state = self.lock();
        let posted = mem::take(&mut state.waiting);
        state.awake = !posted.is_empty();
        posted
    }

    /// Closes the inbox whatever is in it: those waiting are dropped, which tells their
    /// senders to re-route, as later posts are refused.
    pub(super) fn close(&self) {
        let dropped = {
            let mut state = self.lock();
            state.closed = true;
            mem::take(&mut state.waiting)
        };
        // Answered outside the lock: dropping a waiter wakes its sender.
        drop(dropped);
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic while holding the lock leaves plain flags and a list, all still valid.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::{Semaphore, oneshot};

    use super::*;
    use crate::domain::Subject;
    use crate::domain::content::Change;
    use crate::domain::precondition::Precondition;
    use crate::serializer::actor::{Answer, Waiter};

    /// An update carrying `subject`, and the receiver of its answer.
    fn update(subject: &str) -> (Update, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        let place = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let change = Change {
            subject: Some(Subject::parse(subject).unwrap()),
            ..Change::default()
        };
        let update = Update {
            change,
            precondition: Precondition::default(),
            waiter: Waiter::new(reply, place),
        };
        (update, answer)
    }

    fn subjects(updates: &[Update]) -> Vec<String> {
        updates
            .iter()
            .map(|update| update.change.subject.as_ref().unwrap().as_str().to_owned())
            .collect()
    }

    #[test]
    fn only_the_post_that_finds_the_actor_asleep_wakes_it() {
        let inbox = Inbox::default();
        assert!(matches!(inbox.post(update("a").0), Posted::WakeTheActor));
        assert!(matches!(inbox.post(update("b").0), Posted::Kept));
        // The wake-up takes both, in arrival order; the actor is writing them.
        assert_eq!(subjects(&inbox.take()), ["a", "b"]);
        assert!(matches!(inbox.post(update("c").0), Posted::Kept));
        // The write's end takes what came meanwhile and writes it; the next end finds nothing,
        // and the actor sleeps.
        assert_eq!(subjects(&inbox.take()), ["c"]);
        assert!(inbox.take().is_empty());
        assert!(matches!(inbox.post(update("d").0), Posted::WakeTheActor));
    }

    #[test]
    fn a_closed_inbox_lets_every_sender_re_route() {
        let inbox = Inbox::default();
        let (waiting, mut waiting_answer) = update("a");
        inbox.post(waiting);
        inbox.close();
        let (late, mut late_answer) = update("b");
        assert!(matches!(inbox.post(late), Posted::Closed));
        // Both replies are closed unanswered: the senders' cue to re-route.
        assert!(matches!(
            waiting_answer.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(matches!(
            late_answer.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }
}
