//! Webhooks: a signed event for every applied version of a session and every deletion, sent
//! from the transactional outbox (`webhook_events`) by whichever instance claims it.
//!
//! The write decides, under the session's row lock and in its own transaction, that an event
//! exists (`enqueue_webhook_event`); nothing here decides that again. This module only delivers:
//! `delivery` claims due events with a lease (`FOR UPDATE SKIP LOCKED`), `body` renders an
//! event's JSON, `signing` signs it the Standard Webhooks way, and `schedule` says when a failed
//! attempt is tried again. Delivery is at least once per event ID, in order per session: a
//! receiver de-duplicates by `webhook-id`.

mod body;
mod delivery;
mod schedule;
mod signing;

pub use delivery::Outbox;
pub(crate) use signing::signing_key;
