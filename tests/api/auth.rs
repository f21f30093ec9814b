//! Bearer tokens: refusals, and `user create` printing a working token.

use std::process::Command;

use sha2::Digest;

use crate::helpers::{TestApp, TestDb, spawn_app, status_and_json};

#[actix_web::test]
async fn a_request_without_a_token_is_401_json() {
    let (app, _db, _) = spawn_app().await;
    let response = app
        .http
        .put(format!("{}/api/email/update/s1", app.address))
        .body("to=a@x.com")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[actix_web::test]
async fn even_unknown_api_paths_want_a_token_first() {
    let (app, _db, token) = spawn_app().await;
    let (status, _) = status_and_json(app.get("/api/nope").await).await;
    assert_eq!(status, 401);
    let response = app
        .http
        .get(format!("{}/api/nope", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[actix_web::test]
async fn an_unknown_or_malformed_token_is_401() {
    let (app, _db, _) = spawn_app().await;
    for header in ["Bearer nope", "Basic abc", "Bearer", "bearer  "] {
        let response = app
            .http
            .get(format!("{}/api/email/sessions/s1", app.address))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 401, "{header}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[actix_web::test]
async fn user_create_prints_a_working_token_and_stores_only_its_hash() {
    // Arrange
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |_| {}).await;
    // Act
    let output = Command::new(env!("CARGO_BIN_EXE_email-sessions"))
        .args(["user", "create", "carol"])
        .env("DATABASE_URL", db.url())
        .output()
        .expect("running email-sessions user create");

    // Assert
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.trim_end_matches('\n');
    assert_eq!(stdout.lines().count(), 1, "stdout holds the token alone");
    assert_eq!(
        app.put_form(token, "s1", "to=a@x.com")
            .await
            .status()
            .as_u16(),
        201
    );
    let stored: Vec<u8> = db
        .client()
        .await
        .query_one("SELECT token_hash FROM users WHERE name = 'carol'", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(stored, token.as_bytes());
    let (_, secret) = token.split_once('.').unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
    assert_eq!(stored, digest);
}

#[actix_web::test]
async fn two_authorization_headers_are_400_and_token_ids_have_one_spelling() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    let (id, secret) = token.split_once('.').unwrap();

    // Act
    let doubled = app
        .http
        .post(format!("{}/api/email/sessions", app.address))
        .header("Authorization", format!("Bearer {token}"))
        .header("Authorization", "Bearer 1.other")
        .send()
        .await
        .unwrap();
    let (doubled_status, doubled_body) = status_and_json(doubled).await;
    let mut respelled = Vec::new();
    for other in [format!("+{id}"), format!("0{id}"), format!("00{id}")] {
        let response = app.mint(&format!("{other}.{secret}")).await;
        respelled.push(response.status().as_u16());
    }

    // Assert
    assert_eq!(doubled_status, 400);
    assert_eq!(doubled_body["error"]["code"], "invalid_authorization");
    assert_eq!(respelled, [401, 401, 401]);
    assert_eq!(app.mint(&token).await.status().as_u16(), 201);
}
