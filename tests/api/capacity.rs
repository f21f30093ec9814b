//! A refused request holds no capacity, and one user reaches only its own bound: a user far
//! past its quota, flooding new sessions, never makes another user's new session or update
//! answer 503.

use futures_util::future::join_all;

use crate::helpers::{TestApp, TestDb, status_and_json};

/// Statuses of `count` first PUTs of new sessions `<prefix>-<i>` by `token`, `at_once` at a time.
async fn flood(app: &TestApp, token: &str, prefix: &str, count: usize, at_once: usize) -> Vec<u16> {
    flood_with(app, token, prefix, count, at_once, None).await
}

/// Like [`flood`], each request carrying `If-None-Match: <if_none_match>` when given.
async fn flood_with(
    app: &TestApp,
    token: &str,
    prefix: &str,
    count: usize,
    at_once: usize,
    if_none_match: Option<&str>,
) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(count);
    for wave in (0..count).collect::<Vec<_>>().chunks(at_once) {
        let answers = join_all(wave.iter().map(|i| async move {
            let mut request = app
                .http
                .put(format!("{}/api/email/update/{prefix}-{i}", app.address))
                .bearer_auth(token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("to=a@x.com");
            if let Some(tag) = if_none_match {
                request = request.header("If-None-Match", tag);
            }
            request.send().await.expect("PUT failed").status().as_u16()
        }))
        .await;
        statuses.extend(answers);
    }
    statuses
}

async fn sessions_of(db: &TestDb, token: &str) -> i64 {
    let user_id = db.user_of(token).await;
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM email_sessions WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[actix_web::test]
async fn first_touches_refused_by_the_quota_leave_no_actor_behind() {
    // Arrange: 300 live actors in all and no tighter bound per user, so only the refusals
    // holding nothing keeps room for others; the flooder's quota is used up first.
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |s| {
        s.quotas.new_sessions_per_day = 50;
        s.sessions.max_live_actors = 300;
        s.sessions.max_live_actors_per_user = 300;
    })
    .await;
    let flooder = db.create_user("flooder").await;
    let other = db.create_user("other").await;
    let used_up = flood(&app, &flooder, "quota", 50, 50).await;
    assert!(used_up.iter().all(|&status| status == 201), "{used_up:?}");
    let first_refusal = flood(&app, &flooder, "first", 1, 1).await;
    assert_eq!(first_refusal, [429]);
    let started_before = app.stats.snapshot().actors_started;

    // Act: 700 more new sessions, 100 at a time, then the other user's new session and update.
    let refused = flood(&app, &flooder, "past", 700, 100).await;
    let started_by_refusals = app.stats.snapshot().actors_started - started_before;
    let created = app.put_form(&other, "mine", "to=b@x.com").await;
    let (created, created_body) = status_and_json(created).await;
    let updated = app
        .put_form(&other, "mine", "subject=Still mine")
        .await
        .status()
        .as_u16();
    let existing = app
        .put_form(&flooder, "quota-0", "subject=An update is never refused")
        .await
        .status()
        .as_u16();

    // Assert
    assert!(refused.iter().all(|&status| status == 429), "{refused:?}");
    assert_eq!((created, updated), (201, 200), "{created_body}");
    assert_eq!(existing, 200);
    assert_eq!(sessions_of(&db, &flooder).await, 50);
    assert_eq!(
        started_by_refusals, 0,
        "once the quota refused the user, its refused first touches start no actor"
    );
}

#[actix_web::test]
async fn one_users_flood_reaches_only_its_own_bound_while_others_create_and_update() {
    // Arrange: the flooder's refusals would fill the instance's 300 places, but one user may
    // hold only 100 of them.
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |s| {
        s.quotas.new_sessions_per_day = 50;
        s.sessions.max_live_actors = 300;
        s.sessions.max_live_actors_per_user = 100;
    })
    .await;
    let flooder = db.create_user("flooder").await;
    let other = db.create_user("other").await;
    assert_eq!(
        app.put_form(&other, "old", "to=b@x.com").await.status(),
        201
    );

    // Act: 700 new sessions at once, while the other user creates and updates.
    let (flooded, others) =
        futures_util::join!(flood(&app, &flooder, "at-once", 700, 700), async {
            let mut statuses = Vec::new();
            for i in 0..10 {
                let session_id = format!("new-{i}");
                statuses.push(
                    app.put_form(&other, &session_id, "to=c@x.com")
                        .await
                        .status()
                        .as_u16(),
                );
                statuses.push(
                    app.put_form(&other, "old", &format!("subject=Edit {i}"))
                        .await
                        .status()
                        .as_u16(),
                );
            }
            statuses
        });

    // Assert
    assert_eq!(
        others,
        [201, 200].repeat(10),
        "the other user is never refused"
    );
    assert!(
        flooded
            .iter()
            .all(|status| [201, 429, 503].contains(status)),
        "{flooded:?}"
    );
    assert_eq!(flooded.iter().filter(|&&status| status == 201).count(), 50);
    assert_eq!(sessions_of(&db, &flooder).await, 50);
}

#[actix_web::test]
async fn an_actor_whose_first_write_was_refused_stops_at_once() {
    // Arrange: conditional first touches always reach an actor (it judges the precondition),
    // so only the actor stopping right after its refusal keeps the 300 places free.
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |s| {
        s.quotas.new_sessions_per_day = 1;
        s.sessions.max_live_actors = 300;
        s.sessions.max_live_actors_per_user = 300;
    })
    .await;
    let flooder = db.create_user("flooder").await;
    let other = db.create_user("other").await;
    assert_eq!(flood(&app, &flooder, "only", 1, 1).await, [201]);

    // Act: 700 conditional creations past the quota, 100 at a time, then the other user.
    let refused = flood_with(&app, &flooder, "past", 700, 100, Some("*")).await;
    let created = app
        .put_form(&other, "mine", "to=b@x.com")
        .await
        .status()
        .as_u16();

    // Assert
    assert!(refused.iter().all(|&status| status == 429), "{refused:?}");
    assert_eq!(created, 201);
}
