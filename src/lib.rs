//! email-sessions: turns a noisy email plugin's duplicate reports into
//! clean, exactly-once session data.
//!
//! Request path: `routes` parses the wire into `domain` types, `auth` names
//! the caller, `sessions` collapses duplicates per (user, session ID) in one
//! actor each, and `storage` writes each collapsed batch in one locked
//! transaction. `database` finds or starts PostgreSQL; `startup` wires it up.

pub mod auth;
pub mod bench;
pub mod burst;
pub mod configuration;
pub mod database;
pub mod domain;
pub mod embedded;
pub mod error;
pub mod instance;
pub mod lifecycle;
pub mod metric_names;
pub mod middleware;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod stats;
pub mod storage;
pub mod telemetry;
