//! The database goes away and comes back: readiness follows it, writes
//! during the outage get a quick 503, and the service recovers by itself.

use std::path::Path;
use std::time::{Duration, Instant};

use pg_embedded::EmbeddedPostgres;

use crate::helpers::{TestApp, TestDb, status_and_json};

#[actix_web::test]
async fn readiness_and_writes_follow_the_database_down_and_back_up() {
    // Arrange: a cluster of this test's own, since it will be stopped.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("outage-{}", hex::encode(rand::random::<[u8; 4]>())));
    let cluster = EmbeddedPostgres::start(&root)
        .await
        .expect("starting a cluster");
    let admin = cluster.admin_url().parse().unwrap();
    let db = TestDb::create_on(&admin).await;
    let token = db.create_user("alice").await;
    let app = TestApp::spawn_on(&db, |s| {
        s.database.connect_timeout = Duration::from_millis(500);
        s.database.pool_wait_timeout = Duration::from_millis(500);
    })
    .await;
    let (status, _) = status_and_json(
        app.put_form(&token, "kept", "to=a@x.com&subject=Before")
            .await,
    )
    .await;
    assert_eq!(status, 201);

    // Act 1: the database stops.
    EmbeddedPostgres::stop_at(&root)
        .await
        .expect("stopping the cluster");
    let readyz_down = app.get("/readyz").await.status().as_u16();
    let started = Instant::now();
    let response = app.put_form(&token, "kept", "to=b@x.com").await;
    let outage_answer_time = started.elapsed();
    let retry_after = response.headers().get("retry-after").cloned();
    let (outage_status, outage_body) = status_and_json(response).await;

    // Act 2: it comes back.
    let restarted = EmbeddedPostgres::start(&root)
        .await
        .expect("restarting the cluster");
    let back_at = Instant::now();
    let mut recovered = None;
    while back_at.elapsed() < Duration::from_secs(20) {
        let response = app.put_form(&token, "after", "to=c@x.com").await;
        if response.status().is_success() {
            recovered = Some(back_at.elapsed());
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let readyz_up = app.get("/readyz").await.status().as_u16();
    eprintln!(
        "outage figures: write answered in {outage_answer_time:?} while down; \
         first successful write {recovered:?} after the restart"
    );

    // Assert
    assert_eq!(readyz_down, 503);
    assert_eq!(outage_status, 503, "{outage_body}");
    assert_eq!(outage_body["error"]["code"], "database_unavailable");
    assert!(retry_after.is_some());
    assert!(
        outage_answer_time < Duration::from_secs(5),
        "{outage_answer_time:?}"
    );
    assert!(
        recovered.is_some(),
        "writes succeed again without a restart"
    );
    assert_eq!(readyz_up, 200);
    let kept = db.stored(&token, "kept").await.unwrap();
    assert_eq!(
        (kept.recipients, kept.subject.as_deref()),
        (vec!["a@x.com".to_owned()], Some("Before"))
    );

    restarted.stop().await.unwrap();
    let _ = cluster.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
