use crate::helpers::spawn_app;

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
