//! The per-user quota of new sessions per UTC day, exact under bursts and across instances:
//! requests taking "the last place" at once line up in the database, and only one gets it.

use futures_util::future::join_all;

use crate::helpers::{TestApp, TestDb, status_and_json};

#[actix_web::test]
async fn the_quota_is_exact_across_three_instances() {
    // Arrange: quota 50, three instances on one database.
    let db = TestDb::create().await;
    let quota = |s: &mut email_sessions::Settings| s.quotas.new_sessions_per_day = 50;
    let apps = [
        TestApp::spawn_on(&db, quota).await,
        TestApp::spawn_on(&db, quota).await,
        TestApp::spawn_on(&db, quota).await,
    ];
    let token = db.create_user("alice").await;
    let other = db.create_user("bob").await;

    // Act: 120 first PUTs of new sessions, released together over the instances.
    let responses = join_all((0..120).map(|i| {
        let app = &apps[i % 3];
        let token = &token;
        async move { app.put_form(token, &format!("q-{i}"), "to=a@x.com").await }
    }))
    .await;
    let mut created = 0;
    let mut refused = 0;
    for response in responses {
        let retry_after = response.headers().get("retry-after").cloned();
        let (status, body) = status_and_json(response).await;
        match status {
            201 => created += 1,
            429 => {
                refused += 1;
                assert_eq!(body["error"]["code"], "quota_exceeded");
                let wait: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
                assert!((1..=86_401).contains(&wait), "Retry-After {wait}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM email_sessions WHERE session_id LIKE 'q-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let existing: String = db
        .client()
        .await
        .query_one(
            "SELECT session_id FROM email_sessions WHERE session_id LIKE 'q-%' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let update_existing = apps[1]
        .put_form(&token, &existing, "subject=Still fine")
        .await
        .status()
        .as_u16();
    let mint = apps[2].mint(&token).await.status().as_u16();
    let other_user = apps[2].mint(&other).await.status().as_u16();

    // Assert
    assert_eq!((created, refused, stored), (50, 70, 50));
    assert_eq!(
        update_existing, 200,
        "updates of existing sessions are never refused"
    );
    assert_eq!(mint, 429, "minting counts too");
    assert_eq!(other_user, 201, "the quota is per user");
}

#[actix_web::test]
async fn duplicates_of_the_request_taking_the_last_place_are_never_refused() {
    // Arrange: one place left; five instances, so at least five transactions (each instance's
    // first batch) look for the session before its creator has committed.
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 5, |s| {
        s.quotas.new_sessions_per_day = 1;
    })
    .await;
    let token = db.create_user("alice").await;

    // Act
    let statuses: Vec<u16> = join_all(
        (0..20).map(|n| apps[n % 5].put_form(&token, "last-place", "to=a@x.com&subject=Hi")),
    )
    .await
    .into_iter()
    .map(|response| response.status().as_u16())
    .collect();

    // Assert: one creation, nineteen updates (duplicates), no 429.
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
}
