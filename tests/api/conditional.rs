//! Conditional requests (RFC 9110), ETag = version: 304 for a matching `If-None-Match` on GET;
//! `If-Match` and `If-None-Match: *` on PUT, exact under concurrency on one instance and on
//! several, and judged request by request inside a collapsed batch.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Response;

use crate::helpers::{TestApp, TestDb, spawn_app, status_and_json, wait_until};

async fn put_if(
    app: &TestApp,
    token: &str,
    session_id: &str,
    header: (&str, &str),
    body: &str,
) -> Response {
    app.http
        .put(format!("{}/api/email/update/{session_id}", app.address))
        .bearer_auth(token)
        .header(header.0, header.1)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("PUT failed")
}

async fn get_if_none_match(app: &TestApp, token: &str, session_id: &str, tags: &str) -> Response {
    app.http
        .get(format!("{}/api/email/sessions/{session_id}", app.address))
        .bearer_auth(token)
        .header("If-None-Match", tags)
        .send()
        .await
        .expect("GET failed")
}

#[actix_web::test]
async fn get_with_a_matching_if_none_match_is_304_with_the_etag_and_no_body() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=One").await;

    for (tags, expected) in [
        ("\"1\"", 304),
        ("W/\"1\"", 304),
        ("\"0\", \"1\"", 304),
        ("*", 304),
        ("\"2\"", 200),
        ("\"other\"", 200),
    ] {
        // Act
        let response = get_if_none_match(&app, &token, "s1", tags).await;

        // Assert
        assert_eq!(
            response.status().as_u16(),
            expected,
            "If-None-Match: {tags}"
        );
        assert_eq!(response.headers()["etag"], "\"1\"", "If-None-Match: {tags}");
        let body = response.bytes().await.unwrap();
        assert_eq!(body.is_empty(), expected == 304, "If-None-Match: {tags}");
    }
}

#[actix_web::test]
async fn put_if_match_applies_only_at_the_named_version() {
    // Arrange
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=One").await;

    // Act
    let stale = put_if(&app, &token, "s1", ("If-Match", "\"0\""), "subject=Stale").await;
    let (stale_status, stale_body) = status_and_json(stale).await;
    let weak = put_if(&app, &token, "s1", ("If-Match", "W/\"1\""), "subject=Weak").await;
    let weak_status = weak.status().as_u16();
    let fresh = put_if(
        &app,
        &token,
        "s1",
        ("If-Match", "\"5\", \"1\""),
        "subject=Two",
    )
    .await;
    let fresh_etag = fresh.headers()["etag"].clone();
    let (fresh_status, fresh_body) = status_and_json(fresh).await;
    let star = put_if(&app, &token, "s1", ("If-Match", "*"), "subject=Three").await;
    let star_status = star.status().as_u16();

    // Assert
    assert_eq!(stale_status, 412);
    assert_eq!(stale_body["error"]["code"], "precondition_failed");
    assert_eq!(weak_status, 412, "If-Match compares strongly");
    assert_eq!((fresh_status, &fresh_body["version"]), (200, &2.into()));
    assert_eq!(fresh_etag, "\"2\"");
    assert_eq!(star_status, 200);
    let stored = db.stored(&token, "s1").await.unwrap();
    assert_eq!(
        (stored.version, stored.subject.as_deref()),
        (3, Some("Three"))
    );
    assert_eq!(stored.recipients, ["a@x.com"]);
}

#[actix_web::test]
async fn if_match_never_creates_and_if_none_match_star_only_creates() {
    // Arrange
    let (app, db, token) = spawn_app().await;

    // Act
    let star_absent = put_if(&app, &token, "new", ("If-Match", "*"), "subject=X").await;
    let listed_absent = put_if(&app, &token, "new", ("If-Match", "\"0\""), "subject=X").await;
    let rows_after_if_match = db.session_rows("new").await;
    let create = put_if(
        &app,
        &token,
        "new",
        ("If-None-Match", "*"),
        "subject=Created",
    )
    .await;
    let create_again = put_if(&app, &token, "new", ("If-None-Match", "*"), "subject=Again").await;
    let (again_status, again_body) = status_and_json(create_again).await;

    // Assert
    assert_eq!(star_absent.status().as_u16(), 412);
    assert_eq!(listed_absent.status().as_u16(), 412);
    assert_eq!(rows_after_if_match, 0, "If-Match created a session");
    assert_eq!(create.status().as_u16(), 201);
    assert_eq!(again_status, 412);
    assert_eq!(again_body["error"]["code"], "precondition_failed");
    let stored = db.stored(&token, "new").await.unwrap();
    assert_eq!(
        (stored.version, stored.subject.as_deref()),
        (1, Some("Created"))
    );
}

#[actix_web::test]
async fn an_unreadable_precondition_is_400_and_changes_nothing() {
    // Arrange
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "subject=One").await;

    // Act
    let response = put_if(&app, &token, "s1", ("If-Match", "1, 2"), "subject=Two").await;
    let (status, body) = status_and_json(response).await;

    // Assert
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_precondition");
    assert_eq!(db.stored(&token, "s1").await.unwrap().version, 1);
}

/// `writers` PUTs that all read version 1 race with `If-Match: "1"` over `apps`: exactly one
/// is applied, every other one is 412, and the database holds the winner's content at 2.
async fn assert_exactly_one_optimistic_writer_wins(
    apps: &[&TestApp],
    db: &TestDb,
    token: &str,
    session_id: &str,
    writers: usize,
) {
    apps[0]
        .put_form(token, session_id, "to=base@x.com&subject=Base")
        .await;
    let responses = join_all((0..writers).map(|i| {
        let app = apps[i % apps.len()];
        let body = format!("to=w{i}@x.com&subject=W{i}");
        async move { put_if(app, token, session_id, ("If-Match", "\"1\""), &body).await }
    }))
    .await;

    let mut winners = Vec::new();
    let mut refused = 0;
    for (i, response) in responses.into_iter().enumerate() {
        let (status, body) = status_and_json(response).await;
        match status {
            200 => winners.push((i, body)),
            412 => refused += 1,
            other => panic!("writer {i} got {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer applies: {winners:?}");
    assert_eq!(refused, writers - 1);
    let (winner, body) = &winners[0];
    assert_eq!(body["version"], 2);
    let stored = db.stored(token, session_id).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.subject, Some(format!("W{winner}")));
    assert_eq!(stored.recipients, [format!("w{winner}@x.com")]);
}

#[actix_web::test]
async fn concurrent_if_match_writers_on_one_instance_exactly_one_wins() {
    let (app, db, token) = spawn_app().await;
    for round in 0..3 {
        assert_exactly_one_optimistic_writer_wins(
            &[&app],
            &db,
            &token,
            &format!("opt-{round}"),
            20,
        )
        .await;
    }
}

#[actix_web::test]
async fn concurrent_if_match_writers_on_two_instances_exactly_one_wins() {
    // Arrange: three instances, where only the database lines the writers up.
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 3, |_| {}).await;
    let token = db.create_user("alice").await;

    // Act + Assert
    for round in 0..3 {
        assert_exactly_one_optimistic_writer_wins(
            &[&apps[0], &apps[1], &apps[2]],
            &db,
            &token,
            &format!("multi-{round}"),
            40,
        )
        .await;
    }
}

#[actix_web::test]
async fn if_match_writers_queued_on_one_row_lock_are_judged_on_what_they_find_under_it() {
    // Arrange: three instances, the session at version 1, and its row locked by this test, so
    // each instance's writer is sure to be waiting when the lock goes (the race above only
    // overlaps when timing lets it).
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 3, |_| {}).await;
    let token = db.create_user("alice").await;
    apps[0].put_form(&token, "queued", "subject=Base").await;
    let lock = db.lock_session("queued").await;

    // Act: one If-Match: "1" writer per instance; the lock goes once all three wait on it.
    let writers = join_all(apps.iter().enumerate().map(|(i, app)| {
        let (token, body) = (&token, format!("subject=W{i}"));
        async move { put_if(app, token, "queued", ("If-Match", "\"1\""), &body).await }
    }));
    let release = async {
        wait_until("the three writers to queue on the lock", || async {
            db.lock_waiters().await >= 3
        })
        .await;
        lock.batch_execute("ROLLBACK").await.unwrap();
    };
    let (responses, ()) = futures_util::future::join(writers, release).await;

    // Assert: the first through the lock found version 1; the others found 2 and were refused.
    let mut statuses = Vec::new();
    for response in responses {
        statuses.push(status_and_json(response).await.0);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412]);
    assert_eq!(db.stored(&token, "queued").await.unwrap().version, 2);
}

#[actix_web::test]
async fn inside_one_batch_each_precondition_is_judged_in_arrival_order() {
    // Arrange: session at version 1; its row locked from outside, so the first request's write
    // waits and the next ones queue in the actor as one batch.
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=One").await;
    let lock = db.lock_session("s1").await;
    let requests: [(&str, &str, &str); 6] = [
        ("", "", "subject=One"),                // the blocked write: changes nothing
        ("", "", "subject=A"),                  // v2
        ("If-Match", "\"2\"", "subject=B"),     // holds only after A: v3
        ("If-Match", "\"2\"", "subject=Stale"), // stale after B: 412
        ("If-Match", "\"3\"", "subject=D"),     // holds after B: v4
        ("If-None-Match", "*", "subject=Gone"), // the session exists: 412
    ];

    // Act: send them one after another, each given time to reach the actor.
    let mut pending = Vec::new();
    for (header, value, body) in requests {
        let mut request = app
            .http
            .put(format!("{}/api/email/update/s1", app.address))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if !header.is_empty() {
            request = request.header(header, value);
        }
        pending.push(actix_web::rt::spawn(request.send()));
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    lock.batch_execute("COMMIT").await.unwrap();
    let mut answers = Vec::new();
    for request in pending {
        let (status, body) = status_and_json(request.await.unwrap().unwrap()).await;
        answers.push((status, body["version"].as_i64()));
    }

    // Assert
    assert_eq!(
        answers,
        [
            (200, Some(1)),
            (200, Some(2)),
            (200, Some(3)),
            (412, None),
            (200, Some(4)),
            (412, None),
        ]
    );
    let stored = db.stored(&token, "s1").await.unwrap();
    assert_eq!((stored.version, stored.subject.as_deref()), (4, Some("D")));
}

#[actix_web::test]
async fn an_entity_tag_matches_only_in_its_exact_spelling() {
    // Arrange: a session at version 4.
    let (app, db, token) = spawn_app().await;
    for n in 1..=4 {
        app.put_form(&token, "exact", &format!("to=a@x.com&subject=v{n}"))
            .await;
    }

    // Act
    let mut if_match = Vec::new();
    for tag in ["\"04\"", "\"+4\"", "\"4.0\""] {
        let response = put_if(&app, &token, "exact", ("If-Match", tag), "subject=changed").await;
        if_match.push((tag, response.status().as_u16()));
    }
    let not_modified = get_if_none_match(&app, &token, "exact", "\"004\"")
        .await
        .status()
        .as_u16();
    let exact = put_if(&app, &token, "exact", ("If-Match", "\"4\""), "subject=five")
        .await
        .status()
        .as_u16();

    // Assert: RFC 9110 compares the opaque tag; only "4" is version 4's.
    assert_eq!(
        if_match,
        [("\"04\"", 412), ("\"+4\"", 412), ("\"4.0\"", 412)]
    );
    assert_eq!(not_modified, 200);
    assert_eq!(exact, 200);
    assert_eq!(db.stored(&token, "exact").await.unwrap().version, 5);
}
