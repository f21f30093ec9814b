//! Past each bound the service answers 503 + Retry-After with a JSON error,
//! and keeps serving everything else. The tests hold a session's row lock
//! from outside, so requests pile up deterministically behind it.

use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::{TestApp, spawn_app_with, status_and_json};

async fn statuses_of_blocked_burst(app: &TestApp, token: &str, count: usize) -> Vec<u16> {
    let requests = (0..count).map(|i| async move {
        let response = app
            .put_form(token, "blocked", &format!("subject=change-{i}"))
            .await;
        let retry_after = response.headers().contains_key("retry-after");
        let (status, body) = status_and_json(response).await;
        if status == 503 {
            assert!(retry_after, "503 carries Retry-After");
            assert_eq!(body["error"]["code"], "overloaded");
        }
        status
    });
    join_all(requests).await
}

#[actix_web::test]
async fn too_many_requests_waiting_on_one_session_get_503() {
    // Arrange
    let (app, db, token) = spawn_app_with(|s| s.sessions.max_waiting_per_session = 3).await;
    app.put_form(&token, "blocked", "subject=first").await;
    let lock = db.lock_session("blocked").await;

    // Act
    let burst = statuses_of_blocked_burst(&app, &token, 10);
    let other = async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let status = app
            .put_form(&token, "free", "to=a@x.com")
            .await
            .status()
            .as_u16();
        drop(lock);
        status
    };
    let (statuses, other_status) = futures_util::future::join(burst, other).await;

    // Assert
    assert_eq!(
        statuses.iter().filter(|&&s| s == 503).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(other_status, 201, "other sessions are still served");
}

#[actix_web::test]
async fn too_many_updates_in_flight_get_503() {
    // Arrange
    let (app, db, token) = spawn_app_with(|s| s.sessions.max_in_flight_updates = 4).await;
    app.put_form(&token, "blocked", "subject=first").await;
    let lock = db.lock_session("blocked").await;

    // Act
    let burst = statuses_of_blocked_burst(&app, &token, 6);
    let release = async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        drop(lock);
    };
    let (statuses, ()) = futures_util::future::join(burst, release).await;

    // Assert
    assert_eq!(
        statuses.iter().filter(|&&s| s == 503).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        app.put_form(&token, "free", "to=a@x.com")
            .await
            .status()
            .as_u16(),
        201
    );
}

#[actix_web::test]
async fn too_many_live_actors_get_503_and_known_sessions_keep_working() {
    // Arrange
    let (app, _db, token) = spawn_app_with(|s| s.sessions.max_live_actors = 2).await;
    app.put_form(&token, "one", "to=a@x.com").await;
    app.put_form(&token, "two", "to=a@x.com").await;

    // Act
    let response = app.put_form(&token, "three", "to=a@x.com").await;
    let retry_after = response.headers().contains_key("retry-after");
    let (status, body) = status_and_json(response).await;
    let known = app
        .put_form(&token, "one", "to=b@x.com")
        .await
        .status()
        .as_u16();

    // Assert
    assert_eq!((status, retry_after), (503, true));
    assert_eq!(body["error"]["code"], "overloaded");
    assert_eq!(known, 200);
}
