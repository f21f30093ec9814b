//! Bearer tokens: refusals, and `user create` printing a working token.

use std::process::Command;
use std::time::Duration;

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
    for (header, code) in [
        ("Bearer nope", "invalid_token"),
        ("Bearer 1.nope", "invalid_token"),
        ("Basic abc", "unauthorized"),
        ("Bearer", "unauthorized"),
        ("bearer  ", "unauthorized"),
    ] {
        let response = app
            .http
            .get(format!("{}/api/email/sessions/s1", app.address))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 401, "{header}");
        assert_eq!(body["error"]["code"], code, "{header}");
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
        .query_one(
            "SELECT secret_hash FROM api_tokens JOIN users ON users.id = user_id
             WHERE users.name = 'carol'",
            &[],
        )
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

#[actix_web::test]
async fn a_flood_of_bad_tokens_costs_few_lookups_and_throttles_only_its_address() {
    // Arrange: a low limit, so the flood is short.
    let (app, _db, token) = crate::helpers::spawn_app_with(|s| {
        s.auth.failures_before_throttle = 10;
        s.auth.throttle_window = Duration::from_secs(60);
    })
    .await;
    let lookups_before = app.stats.snapshot().token_lookups;

    // Act: 200 bad tokens, half naming one unknown user ID, half random IDs.
    let mut statuses = Vec::new();
    for i in 0..200u64 {
        let bad = if i % 2 == 0 {
            "999999.not-a-secret".to_owned()
        } else {
            format!("{}.not-a-secret", 1_000_000 + i)
        };
        statuses.push(app.mint(&bad).await.status().as_u16());
    }
    let lookups = app.stats.snapshot().token_lookups - lookups_before;
    let throttled = app.mint(&token).await;
    let retry_after = throttled.headers().get("retry-after").cloned();
    let (throttled_status, throttled_body) = status_and_json(throttled).await;

    // Assert: the first ten failures are 401, then 429 without lookups.
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(lookups <= 20, "{lookups} lookups for 200 attempts");
    // A token this address never verified is refused with the rest of its traffic...
    assert_eq!(throttled_status, 429);
    assert_eq!(
        throttled_body["error"]["code"],
        "too_many_failed_authentications"
    );
    let wait: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((55..=61).contains(&wait), "Retry-After {wait}");
}

#[actix_web::test]
async fn a_throttled_address_does_not_affect_valid_tokens_it_verified_or_other_addresses() {
    // Arrange: one token verified before the flood, one never seen; the flood from 127.0.0.1.
    let (app, db, token) = crate::helpers::spawn_app().await;
    let fresh = db.create_user("bob").await;
    assert_eq!(app.mint(&token).await.status().as_u16(), 201);
    for i in 0..20 {
        app.mint(&format!("{}.bad", 5_000 + i)).await;
    }
    // Linux routes all of 127.0.0.0/8 to loopback: 127.0.0.2 is another client address.
    let neighbour = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();

    // Act
    let flooder_fresh = app.mint(&fresh).await.status().as_u16();
    let flooder_cached = app.mint(&token).await.status().as_u16();
    let neighbour_fresh = neighbour
        .post(format!("{}/api/email/sessions", app.address))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();

    // Assert
    assert_eq!(flooder_fresh, 429, "the flooding address is throttled");
    assert_eq!(
        flooder_cached, 201,
        "a token verified moments ago is answered from the cache"
    );
    assert_eq!(neighbour_fresh, 201, "other addresses are unaffected");
}
