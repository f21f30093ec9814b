//! The load tool against the real service: every mode passes its own verification, with users
//! created the way the tool creates them, through `email-sessions user create`. (Its counter
//! deltas are not checked here: in-process instances share one metrics recorder with every
//! other test.)

use std::num::NonZeroUsize;
use std::path::Path;

use loadtest::burst::{self, BurstArgs, Mode};
use loadtest::service_cli;

use crate::helpers::{TestApp, TestDb};

fn args(urls: Vec<String>, mode: Mode, users: usize) -> BurstArgs {
    BurstArgs {
        urls,
        sessions: NonZeroUsize::new(20).unwrap(),
        duplicates: NonZeroUsize::new(10).unwrap(),
        users: NonZeroUsize::new(users).unwrap(),
        connections: NonZeroUsize::new(32).unwrap(),
        mode,
        json: true,
        ceiling: false,
        run_id: None,
        timeout_secs: 30,
        service_pid: None,
    }
}

#[actix_web::test]
async fn every_mode_verifies_clean_against_two_instances() {
    // Arrange
    let db = TestDb::create().await;
    let first = TestApp::spawn_on(&db, |_| {}).await;
    let second = TestApp::spawn_on(&db, |_| {}).await;
    let url = db.url();
    let names: Vec<String> = (0..3).map(|u| format!("load{u}")).collect();
    let tokens = service_cli::create_users(
        Path::new(env!("CARGO_BIN_EXE_email-sessions")),
        &[("DATABASE_URL", url.as_str()), ("RUST_LOG", "warn")],
        &names,
    )
    .await
    .expect("the service's CLI creates users");
    let urls = vec![first.address.clone(), second.address.clone()];

    for (mode, users) in [
        (Mode::Identical, 1),
        (Mode::Distinct, 2),
        (Mode::CrossUser, 3),
    ] {
        // Act
        let report = burst::run(&args(urls.clone(), mode, users), tokens.clone())
            .await
            .expect("the burst runs");

        // Assert
        assert!(report.passed(), "{mode:?}: {}", report.render_text());
        assert_eq!(report.burst.requests, 20 * 10 * users as u64);
        assert_eq!(report.verification.sessions, 20 * users);
    }
}
