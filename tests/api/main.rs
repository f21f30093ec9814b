//! The API test suite: one binary, so it builds once. Every test talks to a
//! real PostgreSQL over real connections and to the service over a real
//! socket; race tests check their invariants in the database afterwards.
//! Set `TEST_LOG=1` to see the service's logs.

mod alerts;
mod auth;
mod bad_input;
mod bounds;
mod browser;
mod burst_tool;
mod capacity;
mod conditional;
mod connections;
mod consistent_reads;
mod contract;
mod cors;
mod crash;
mod database_outage;
mod delete;
mod disconnect;
mod drain;
mod duplicate_burst;
mod failover;
mod haproxy;
mod health;
mod helpers;
mod isolation;
mod list;
mod logs;
mod metrics;
mod multi_instance;
mod oidc;
mod oidc_issuer;
mod passivation;
mod production;
mod proxies;
mod quota;
mod race;
mod retention;
mod sessions;
mod timeouts;
mod tokens;
mod update;
mod upgrade;
mod webhook_receiver;
mod webhooks;
