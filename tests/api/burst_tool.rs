//! The load tool against the real service: every mode passes its own
//! verification. (Its counter deltas are not checked here: in-process
//! instances share one metrics recorder with every other test.)

use std::num::NonZeroUsize;

use email_sessions::burst::{self, BurstArgs, Mode};

use crate::helpers::{TestApp, TestDb};

fn args(urls: Vec<String>, mode: Mode, users: usize) -> BurstArgs {
    BurstArgs {
        urls,
        sessions: NonZeroUsize::new(20).unwrap(),
        duplicates: NonZeroUsize::new(10).unwrap(),
        users: NonZeroUsize::new(users).unwrap(),
        connections: NonZeroUsize::new(32).unwrap(),
        mode,
        tokens: Vec::new(),
        json: true,
        ceiling: false,
        run_id: None,
        timeout_secs: 30,
    }
}

#[actix_web::test]
async fn every_mode_verifies_clean_against_two_instances() {
    // Arrange
    let db = TestDb::create().await;
    let first = TestApp::spawn_on(&db, |_| {}).await;
    let second = TestApp::spawn_on(&db, |_| {}).await;
    let mut tokens = Vec::new();
    for u in 0..3 {
        tokens.push(db.create_user(&format!("load{u}")).await);
    }
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
