//! Bearer tokens: refusals, and `user create` printing a working token.

use std::process::Command;

use sha2::Digest;

use crate::helpers::{TestApp, TestDb, spawn_app, status_and_json};
use crate::oidc_issuer::{SigningKey, TestIssuer};

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
    // The secret is 64 hex digits; the 16 after it are the tag, which is not stored.
    let (_, secret_and_tag) = token.split_once('.').unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&secret_and_tag.as_bytes()[..64]).into();
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

/// Bad tokens of every kind, `rounds` of each, naming the next token ID, random IDs and `real`'s
/// ID with a wrong secret or tag; their statuses.
async fn flood_of_bad_tokens(app: &TestApp, db: &TestDb, real: &str, rounds: usize) -> Vec<u16> {
    let next_id = next_token_id(db).await;
    let (real_id, real_secret) = real.split_once('.').unwrap();
    let other_hex = |length: usize| hex::encode(rand::random::<[u8; 40]>())[..length].to_owned();
    let mut statuses = Vec::new();
    for round in 0..rounds {
        let random_id = 1_000_000 + round;
        for bad in [
            format!("{next_id}.junk"),
            format!("{next_id}.{}", other_hex(64)),
            format!("{next_id}.{}", other_hex(80)),
            format!("{random_id}.{}", other_hex(80)),
            format!("{real_id}.{}", other_hex(80)),
            format!("{real_id}.{}{}", &real_secret[..64], other_hex(16)),
        ] {
            statuses.push(app.mint(&bad).await.status().as_u16());
        }
    }
    statuses
}

/// The ID the next `token create` will get.
async fn next_token_id(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one("SELECT last_value + 1 FROM api_tokens_id_seq", &[])
        .await
        .unwrap()
        .get(0)
}

#[actix_web::test]
async fn a_flood_of_bad_tokens_costs_no_lookup_and_locks_no_valid_token_out() {
    // Arrange: an identity provider beside the API tokens; one address (127.0.0.1) for all.
    let key = SigningKey::rsa(0, "k");
    let issuer = TestIssuer::start(&[&key]).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| issuer.configure(settings)).await;
    let real = db.create_user("alice").await;
    let lookups_before = app.stats.snapshot().token_lookups;

    // Act: 300 bad tokens (50 rounds of six kinds) and 15 bad identity tokens, then tokens
    // nobody presented before, from the same address.
    let statuses = flood_of_bad_tokens(&app, &db, &real, 50).await;
    let mut identity_statuses = Vec::new();
    for i in 0..15 {
        let forged = SigningKey::rsa(1, "k").sign(&issuer.claims(&format!("mallory-{i}")));
        identity_statuses.push(app.mint(&forged).await.status().as_u16());
    }
    let lookups = app.stats.snapshot().token_lookups - lookups_before;
    let fresh_api_token = db.create_user("bob").await;
    let fresh_api_token_status = app.mint(&fresh_api_token).await.status().as_u16();
    let fresh_identity_token = key.sign(&issuer.claims("carol"));
    let fresh_identity_status = app.mint(&fresh_identity_token).await.status().as_u16();

    // Assert
    assert!(statuses.iter().all(|&status| status == 401), "{statuses:?}");
    assert_eq!(identity_statuses, [401; 15]);
    assert!(
        lookups * 10 <= statuses.len() as u64,
        "{lookups} lookups for {} bad tokens",
        statuses.len()
    );
    assert_eq!(fresh_api_token_status, 201, "a new API token works at once");
    assert_eq!(
        fresh_identity_status, 201,
        "a new identity token works at once"
    );
    assert_eq!(app.mint(&real).await.status().as_u16(), 201);
}

#[actix_web::test]
async fn a_token_whose_id_was_presented_before_it_existed_works_once_created() {
    // Arrange
    let (app, db, real) = spawn_app().await;
    flood_of_bad_tokens(&app, &db, &real, 3).await;

    // Act: the next token is created, by the command line, after its ID was presented.
    let output = crate::helpers::cli(&db, &["token", "create", "alice", "--name", "second"]);
    let created = crate::helpers::stdout_of(&output);
    let status = app.mint(created.trim()).await.status().as_u16();

    // Assert
    assert_eq!(status, 201);
}

#[actix_web::test]
async fn tokens_issued_before_tags_keep_working_and_forgeries_of_them_cost_no_lookup() {
    // Arrange: a token of the previous format (`<id>.<64 hex digits>`), issued before the
    // scheme's legacy bound, as an upgraded database has them.
    let db = TestDb::create().await;
    db.create_user("alice").await;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
    let client = db.client().await;
    let id: i64 = client
        .query_one(
            "INSERT INTO api_tokens (user_id, name, secret_hash)
             SELECT id, 'old', $1 FROM users WHERE name = 'alice' RETURNING id",
            &[&hash.as_slice()],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute("UPDATE api_token_scheme SET legacy_max_id = $1", &[&id])
        .await
        .unwrap();
    let app = TestApp::spawn_on(&db, |_| {}).await;

    // Act
    let old = app.mint(&format!("{id}.{secret}")).await.status().as_u16();
    let lookups_before = app.stats.snapshot().token_lookups;
    let mut forged = Vec::new();
    for _ in 0..20 {
        let other = hex::encode(rand::random::<[u8; 32]>());
        forged.push(app.mint(&format!("{id}.{other}")).await.status().as_u16());
    }
    let lookups = app.stats.snapshot().token_lookups - lookups_before;

    // Assert
    assert_eq!(old, 201);
    assert_eq!(forged, [401; 20]);
    assert_eq!(lookups, 0);
}
