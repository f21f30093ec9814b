//! Liveness, readiness (and its phases) and the metrics endpoint.

use email_sessions::Phase;

use crate::helpers::{TestApp, TestDb, spawn_app, status_and_json};

#[actix_web::test]
async fn healthz_is_always_ok() {
    let (app, _db, _) = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
}

#[actix_web::test]
async fn readyz_is_ok_when_the_database_answers() {
    let (app, _db, _) = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
}

#[actix_web::test]
async fn metrics_are_prometheus_text() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "m1", "to=a@x.com").await;

    // Act
    let body = app.get("/metrics").await.text().await.unwrap();

    // Assert
    assert!(
        body.contains("email_sessions_updates_received_total"),
        "{body}"
    );
    assert!(body.contains("# HELP email_sessions_live_actors"), "{body}");
}

#[actix_web::test]
async fn while_starting_readyz_and_the_api_say_503_then_serve() {
    // Arrange: an instance whose migrations are "still running".
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let app = TestApp::spawn_in_phase(&db, Phase::Starting, |_| {}).await;

    // Act
    let (ready_status, ready) = status_and_json(app.get("/readyz").await).await;
    let put = app.put_form(&token, "s1", "to=a@x.com").await;
    let retry_after = put.headers().contains_key("retry-after");
    let (put_status, put_body) = status_and_json(put).await;
    app.lifecycle.enter(Phase::Serving);
    let after = app
        .put_form(&token, "s1", "to=a@x.com")
        .await
        .status()
        .as_u16();

    // Assert
    assert_eq!(
        (ready_status, ready["error"]["code"].as_str()),
        (503, Some("starting"))
    );
    assert_eq!(
        (put_status, put_body["error"]["code"].as_str()),
        (503, Some("starting"))
    );
    assert!(retry_after);
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(after, 201);
}

#[actix_web::test]
async fn while_draining_readyz_says_503() {
    let (app, _db, _) = spawn_app().await;
    app.lifecycle.enter(Phase::Draining);
    let (status, body) = status_and_json(app.get("/readyz").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("draining"))
    );
}
