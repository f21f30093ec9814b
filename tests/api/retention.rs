//! The data lifecycle: sessions not updated for `retention.days` are swept away in batches, by
//! one instance at a time, with their recipients; newer ones stay.

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, TestDb};

/// The advisory lock every sweeping instance takes (src/storage/sessions.rs).
const RETENTION_LOCK_KEY: i64 = 0x7265_7465_6e74_696f;

#[actix_web::test]
async fn old_sessions_are_swept_in_batches_by_one_instance_at_a_time() {
    // Arrange: 5 sessions last updated two days ago, 3 fresh ones.
    let db = TestDb::create().await;
    let writer = TestApp::spawn_on(&db, |_| {}).await;
    let token = db.create_user("alice").await;
    for i in 0..5 {
        writer
            .put_form(&token, &format!("old-{i}"), "to=a@x.com,b@x.com")
            .await;
    }
    for i in 0..3 {
        writer
            .put_form(&token, &format!("new-{i}"), "to=a@x.com")
            .await;
    }
    let admin = db.client().await;
    admin
        .execute(
            "UPDATE email_sessions SET updated_at = now() - interval '2 days' WHERE session_id LIKE 'old-%'",
            &[],
        )
        .await
        .unwrap();
    // Someone else holds the sweep's lock, as a sweeping instance would.
    let holder = db.client().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({RETENTION_LOCK_KEY})"
        ))
        .await
        .unwrap();
    let sweeping = |s: &mut email_sessions::Settings| {
        s.retention.days = 1;
        s.retention.sweep_interval = Duration::from_millis(50);
        s.retention.batch_size = 2;
    };
    let first = TestApp::spawn_on(&db, sweeping).await;
    let second = TestApp::spawn_on(&db, sweeping).await;
    let count = |pattern: &'static str| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    "SELECT count(*) FROM email_sessions WHERE session_id LIKE $1",
                    &[&pattern],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };

    // Act 1: while the lock is held elsewhere, nobody sweeps.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let old_while_locked = count("old-%").await;
    holder.batch_execute("COMMIT").await.unwrap();

    // Act 2: once it is free, the instances sweep.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count("old-%").await > 0 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert
    assert_eq!(
        old_while_locked, 5,
        "swept while another instance held the lock"
    );
    assert_eq!(count("old-%").await, 0);
    assert_eq!(count("new-%").await, 3);
    let recipients: i64 = admin
        .query_one(
            "SELECT coalesce(sum(cardinality(emails)), 0)::bigint FROM email_sessions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recipients, 3, "the old sessions' recipients went with them");
    let deleted =
        first.stats.snapshot().retention_deleted + second.stats.snapshot().retention_deleted;
    assert_eq!(deleted, 5);
}
