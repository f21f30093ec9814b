//! The load tool and the benchmark of email-sessions. They treat the service as a black box:
//! HTTP to running instances, and its command line (child processes) to start instances and
//! create users. Nothing here links the service's code.
//!
//! [`burst`] fires the plugin's worst case (many identical PUTs at once) and verifies every
//! session afterwards; [`bench`] runs a fixed matrix of bursts against an actor-path and a
//! direct-path instance and writes `BENCHMARKS.md`; [`instance`] runs `email-sessions serve` as a
//! child process; [`service_cli`] runs its other commands.

pub mod bench;
pub mod burst;
pub mod instance;
pub mod service_cli;
