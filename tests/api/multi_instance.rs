//! Two service instances, each with its own registry, on one database: the
//! only thing keeping them honest is the database (constraint, row lock).

use futures_util::future::join_all;

use crate::helpers::{TestApp, TestDb, emails, status_and_json};
use crate::race::assert_first_touch_race_is_clean;

async fn two_instances() -> (TestApp, TestApp, TestDb, String) {
    let db = TestDb::create().await;
    let first = TestApp::spawn_on(&db, |_| {}).await;
    let second = TestApp::spawn_on(&db, |_| {}).await;
    let token = db.create_user("alice").await;
    (first, second, db, token)
}

#[actix_web::test]
async fn a_burst_split_across_instances_is_stored_once() {
    // Arrange
    let (first, second, db, token) = two_instances().await;
    let apps = [&first, &second];
    let body = "to=a@x.com,b@x.com&subject=Split";

    // Act
    let ids: Vec<String> = (0..3).map(|s| format!("split-{s}")).collect();
    let responses =
        join_all((0..300).map(|n| apps[n % 2].put_form(&token, &ids[n % 3], body))).await;

    // Assert
    for response in responses {
        let (status, session) = status_and_json(response).await;
        assert!(status == 200 || status == 201, "status {status}: {session}");
        assert_eq!(emails(&session), ["a@x.com", "b@x.com"]);
        assert_eq!(session["version"], 1);
    }
    for s in 0..3 {
        let id = format!("split-{s}");
        assert_eq!(db.session_rows(&id).await, 1);
        let stored = db.stored(&token, &id).await.unwrap();
        assert_eq!((stored.version, stored.recipients.len()), (1, 2));
    }
    let applied = first.stats.snapshot().writes_applied + second.stats.snapshot().writes_applied;
    assert_eq!(
        applied, 3,
        "one applied change per session across both instances"
    );
}

#[actix_web::test]
async fn a_first_touch_race_split_across_instances_is_clean() {
    let (first, second, db, token) = two_instances().await;
    for round in 0..3 {
        assert_first_touch_race_is_clean(
            &[&first, &second],
            &db,
            &token,
            &format!("race-{round}"),
            100,
        )
        .await;
    }
}

#[actix_web::test]
async fn many_concurrent_writers_on_one_row_stay_clean() {
    // Arrange: eight instances, so each round at least eight transactions (every instance's
    // first batch, then its collapsed second one) race on one row: the database's constraint
    // and row lock are all that stand between them and a mixed recipient list.
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 8, |_| {}).await;
    let apps: Vec<&TestApp> = apps.iter().collect();
    let token = db.create_user("alice").await;

    // Act + Assert
    for round in 0..3 {
        assert_first_touch_race_is_clean(&apps, &db, &token, &format!("many-{round}"), 100).await;
    }
}

#[actix_web::test]
async fn a_repeat_after_another_instance_wrote_is_never_answered_from_memory() {
    // Arrange: the first instance's actor knows X at version 1; the second then writes Y.
    let (first, second, db, token) = two_instances().await;
    let x = "to=x@x.com&subject=X";
    first.put_form(&token, "s1", x).await;
    second.put_form(&token, "s1", "to=y@x.com&subject=Y").await;
    let reads_before = first.stats.snapshot().noop_reads;

    // Act: X again on the first instance, whose memory says it changes nothing.
    let (status, session) = status_and_json(first.put_form(&token, "s1", x).await).await;

    // Assert: the read showed the row had moved on, so X was written again.
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        (session["version"].as_i64(), session["subject"].as_str()),
        (Some(3), Some("X"))
    );
    let stored = db.stored(&token, "s1").await.unwrap();
    assert_eq!((stored.version, stored.subject.as_deref()), (3, Some("X")));
    assert_eq!(
        first.stats.snapshot().noop_reads - reads_before,
        1,
        "one version read"
    );
}

#[actix_web::test]
async fn a_confirmation_riding_on_another_sessions_write_still_sees_another_instances_change() {
    // Arrange: the first instance knows A at version 1; the second then writes A. A write of
    // "held" on the first instance waits for a row lock this test holds, so a write is under
    // way there and a confirmation must wait for the next write to start.
    let (first, second, db, token) = two_instances().await;
    let a = "to=a@x.com&subject=A";
    first.put_form(&token, "a", a).await;
    first.put_form(&token, "held", "subject=Before").await;
    second
        .put_form(&token, "a", "subject=Changed elsewhere")
        .await;
    let lock = db.lock_session("held").await;
    let reads_before = first.stats.snapshot().noop_reads;

    // Act: the held write, A's repeat (its actor knows it changes nothing), then another
    // session's first write, which takes A's confirmation along.
    let held = actix_web::rt::spawn({
        let (address, token) = (first.address.clone(), token.clone());
        async move {
            reqwest::Client::new()
                .put(format!("{address}/api/email/update/held"))
                .bearer_auth(token)
                .body("subject=After")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    let repeat = first.put_form(&token, "a", a);
    let other = async {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        first.put_form(&token, "b", "to=b@x.com").await
    };
    let (repeat, other) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        futures_util::future::join(repeat, other),
    )
    .await
    .expect("answered while the held write still waits");
    let reads = first.stats.snapshot().noop_reads - reads_before;
    lock.batch_execute("ROLLBACK").await.unwrap();

    // Assert: the confirmation saw version 2, so A was written again, without a read of its own.
    let (status, session) = status_and_json(repeat).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        (session["version"].as_i64(), session["subject"].as_str()),
        (Some(3), Some("A"))
    );
    assert_eq!(other.status().as_u16(), 201);
    assert_eq!(reads, 0, "the confirmation rode on the other write");
    assert_eq!(held.await.unwrap(), 200);
}
