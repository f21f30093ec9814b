//! email-sessions: turns a noisy email plugin's duplicate reports into clean, exactly-once
//! session data.
//!
//! Request path: `http` parses the wire into `domain` types, `auth` names the caller,
//! `serializer` collapses duplicates per (user, session ID) in one actor each, and `storage`
//! writes each collapsed batch in one locked transaction. `error` is the one place failures
//! become HTTP answers. `database` finds or starts PostgreSQL, `startup` wires the application
//! together, and `cli` is the command line.
//!
//! Everything is private except what the binary and the tests need.

mod admin;
mod auth;
mod cli;
mod configuration;
mod database;
mod domain;
mod error;
mod http;
mod lifecycle;
mod metric_names;
mod retention;
mod serializer;
mod startup;
mod stats;
mod storage;
mod telemetry;
mod webhooks;

pub use admin::create_user;
pub use cli::main;

/// Entry points for the cargo-fuzz targets in `fuzz/` (built with `--cfg fuzzing` only).
#[cfg(fuzzing)]
pub mod fuzzing {
    /// Parses a `to` value as the update handler does.
    pub fn parse_recipients(raw: &str) {
        let _ = crate::domain::RecipientList::parse(raw);
    }
}
pub use configuration::{OidcIssuerSettings, Settings};
pub use lifecycle::{Lifecycle, Phase};
pub use startup::Application;
pub use stats::{Stats, StatsSnapshot};
pub use storage::migrations::run_migrations;
pub use telemetry::init_tracing;
