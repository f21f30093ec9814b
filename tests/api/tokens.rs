//! API tokens' lifecycle from the operator's command line: several named tokens per user,
//! expiry, last use, and revocation seen by every instance within the token cache period.

use std::process::Output;
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::helpers::{TestApp, TestDb, cli, status_and_json, stdout_of};

/// The one line a token command prints.
fn token_from(output: &Output) -> String {
    let stdout = stdout_of(output);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout holds the token alone: {stdout:?}"
    );
    stdout.trim_end().to_owned()
}

fn token_id(token: &str) -> &str {
    token.split_once('.').unwrap().0
}

/// Token `id` with a wrong secret but a valid tag, made with the database's tag key: what only
/// somebody holding the key could present, and the one way to make an instance look a token up
/// without presenting the token.
async fn tagged_with_wrong_secret(db: &TestDb, id: &str) -> String {
    use hmac::{KeyInit, Mac};
    let key: Vec<u8> = db
        .client()
        .await
        .query_one("SELECT tag_key FROM api_token_scheme", &[])
        .await
        .unwrap()
        .get(0);
    let secret = "0".repeat(64);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{secret}").as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{id}.{secret}{}", hex::encode(&tag[..8]))
}

#[actix_web::test]
async fn tokens_are_created_named_listed_and_revoked_from_the_command_line() {
    // Arrange
    let db = TestDb::create().await;
    let first = token_from(&cli(&db, &["user", "create", "dana"]));
    let ci = token_from(&cli(
        &db,
        &[
            "token",
            "create",
            "dana",
            "--name",
            "ci",
            "--expires-in",
            "30",
        ],
    ));
    let unnamed = token_from(&cli(&db, &["token", "create", "dana"]));
    let app = TestApp::spawn_on(&db, |_| {}).await;

    // Act
    let statuses = [
        app.put_form(&first, "s1", "to=a@x.com")
            .await
            .status()
            .as_u16(),
        app.get_session(&ci, "s1").await.status().as_u16(),
        app.get_session(&unnamed, "s1").await.status().as_u16(),
    ];
    let taken_name = cli(&db, &["token", "create", "dana", "--name", "ci"]);
    let no_such_user = cli(&db, &["token", "create", "nobody"]);
    let revoked = stdout_of(&cli(&db, &["token", "revoke", token_id(&ci)]));
    let revoked_again = stdout_of(&cli(&db, &["token", "revoke", token_id(&ci)]));
    let no_such_token = cli(&db, &["token", "revoke", "999999"]);
    let name_free_again = cli(&db, &["token", "create", "dana", "--name", "ci"]);
    let user_id = db.user_of(&first).await.to_string();
    let by_id = token_from(&cli(&db, &["token", "create", "--user-id", &user_id]));
    let by_id_reads = app.get_session(&by_id, "s1").await.status().as_u16();
    let fresh_instance = TestApp::spawn_on(&db, |_| {}).await;
    let (revoked_status, revoked_body) =
        status_and_json(fresh_instance.get_session(&ci, "s1").await).await;
    let list = stdout_of(&cli(&db, &["token", "list", "dana"]));

    // Assert
    assert_eq!(statuses, [201, 200, 200], "three tokens of one user");
    assert!(!taken_name.status.success());
    assert!(String::from_utf8_lossy(&taken_name.stderr).contains("live token named \"ci\""));
    assert!(!no_such_user.status.success());
    assert!(String::from_utf8_lossy(&no_such_user.stderr).contains("no user named \"nobody\""));
    assert!(
        revoked.starts_with(&format!("revoked token {}", token_id(&ci))),
        "{revoked}"
    );
    assert!(revoked_again.contains("already revoked"), "{revoked_again}");
    assert!(!no_such_token.status.success());
    assert!(
        name_free_again.status.success(),
        "a revoked token's name may be used again"
    );
    assert_eq!(
        by_id_reads, 200,
        "a user given by ID (as identity users are)"
    );
    assert_eq!(revoked_status, 401);
    assert_eq!(revoked_body["error"]["code"], "invalid_token");
    assert!(
        revoked_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 6, "a header and five tokens:\n{list}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("LAST USED"),
        "{list}"
    );
    let row_of = |id: &str| {
        *lines
            .iter()
            .find(|line| line.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for token {id}:\n{list}"))
    };
    assert!(row_of(token_id(&first)).contains("first token"));
    assert!(row_of(token_id(&first)).ends_with("active"));
    assert!(row_of(token_id(&ci)).ends_with("revoked"));
    assert!(row_of(token_id(&unnamed)).contains(&format!("token {}", token_id(&unnamed))));
    for token in [&first, &ci, &unnamed] {
        let secret = token.split_once('.').unwrap().1;
        assert!(!list.contains(secret), "the list shows no secret");
    }
}

#[actix_web::test]
async fn a_token_s_last_use_and_expiry_are_kept() {
    // Arrange
    let db = TestDb::create().await;
    let token = db.create_user("erin").await;
    let app = TestApp::spawn_on(&db, |_| {}).await;
    let client = db.client().await;

    // Act
    assert_eq!(app.mint(&token).await.status(), 201);
    let mut last_used = None;
    for _ in 0..100 {
        let row = client
            .query_one(
                "SELECT last_used_at IS NOT NULL FROM api_tokens WHERE id = $1::TEXT::BIGINT",
                &[&token_id(&token)],
            )
            .await
            .unwrap();
        if row.get::<_, bool>(0) {
            last_used = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second'
             WHERE id = $1::TEXT::BIGINT",
            &[&token_id(&token)],
        )
        .await
        .unwrap();
    let uncached = TestApp::spawn_on(&db, |_| {}).await;
    let (status, body) = status_and_json(uncached.mint(&token).await).await;

    // Assert
    assert!(last_used.is_some(), "last use was noted");
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[actix_web::test]
async fn revocation_is_seen_by_every_instance_within_the_token_cache_period() {
    // Arrange: two instances that both verified (and cached) the token.
    let db = TestDb::create().await;
    let token = db.create_user("frank").await;
    let ttl = Duration::from_millis(1000);
    let cache = |settings: &mut email_sessions::Settings| {
        settings.auth.token_cache_ttl = ttl;
    };
    let instances = [
        TestApp::spawn_on(&db, cache).await,
        TestApp::spawn_on(&db, cache).await,
    ];
    for app in &instances {
        assert_eq!(app.mint(&token).await.status(), 201);
    }

    // Act
    stdout_of(&cli(&db, &["token", "revoke", token_id(&token)]));
    let revoked_at = Instant::now();
    let mut refused_after = Vec::new();
    for app in &instances {
        loop {
            if app.mint(&token).await.status() == 401 {
                refused_after.push(revoked_at.elapsed());
                break;
            }
            if revoked_at.elapsed() > ttl * 10 {
                panic!("still accepted {:?} after revocation", revoked_at.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Assert: each cache entry was made before the revocation, so it is gone a TTL after it at
    // the latest; the slack covers the polling and a loaded machine.
    for after in &refused_after {
        assert!(
            *after <= ttl + Duration::from_millis(1500),
            "refused only {refused_after:?} after revocation"
        );
    }
}

#[actix_web::test]
async fn tokens_issued_before_tokens_had_ids_keep_working_after_the_migration() {
    // Arrange: the schema as it was (V6), with users whose tokens were `<user id>.<secret>`.
    let db = TestDb::create_empty().await;
    stdout_of(&cli(&db, &["migrate", "--target", "6"]));
    let client = db.client().await;
    let mut legacy_tokens = Vec::new();
    for name in ["legacy-1", "legacy-2"] {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        let row = client
            .query_one(
                "INSERT INTO users (name, token_hash) VALUES ($1, $2) RETURNING id",
                &[&name, &hash.as_slice()],
            )
            .await
            .unwrap();
        legacy_tokens.push(format!("{}.{secret}", row.get::<_, i64>(0)));
    }

    // Act
    stdout_of(&cli(&db, &["migrate"]));
    let new_token = token_from(&cli(&db, &["token", "create", "legacy-2"]));
    let app = TestApp::spawn_on(&db, |_| {}).await;
    let mut statuses = Vec::new();
    for token in legacy_tokens.iter().chain([&new_token]) {
        statuses.push(app.mint(token).await.status().as_u16());
    }
    let list = stdout_of(&cli(&db, &["token", "list", "legacy-2"]));
    stdout_of(&cli(&db, &["token", "revoke", token_id(&legacy_tokens[0])]));
    // What an instance of the previous release would compare the old token with.
    let legacy_hashes: Vec<Vec<u8>> = client
        .query("SELECT token_hash FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();

    // Assert
    assert_eq!(statuses, [201, 201, 201]);
    let legacy_ids: Vec<i64> = legacy_tokens
        .iter()
        .map(|token| token_id(token).parse().unwrap())
        .collect();
    let new_id: i64 = token_id(&new_token).parse().unwrap();
    assert!(
        legacy_ids.iter().all(|&id| id < new_id),
        "new IDs come after the old ones"
    );
    assert!(list.contains("first token"), "{list}");
    assert_eq!(list.lines().count(), 3, "{list}");
    assert_eq!(legacy_hashes.len(), 2);
    assert_eq!(
        legacy_hashes[0],
        vec![0; 32],
        "revoked for old instances too"
    );
    assert_ne!(
        legacy_hashes[1],
        vec![0; 32],
        "the other legacy token still works there"
    );
}

#[actix_web::test]
async fn a_verification_built_on_a_remembered_lookup_does_not_outlive_it() {
    // Arrange: a bad secret makes the instance remember the token's row at t0; the right
    // secret, later, is verified from that memory.
    let db = TestDb::create().await;
    let token = db.create_user("gina").await;
    let ttl = Duration::from_millis(3000);
    let app = TestApp::spawn_on(&db, |settings| {
        settings.auth.token_cache_ttl = ttl;
    })
    .await;
    let remembered_at = Instant::now();
    let wrong_secret = tagged_with_wrong_secret(&db, token_id(&token)).await;
    assert_eq!(app.mint(&wrong_secret).await.status(), 401);
    tokio::time::sleep(ttl * 5 / 6).await;
    assert_eq!(app.mint(&token).await.status(), 201);

    // Act
    stdout_of(&cli(&db, &["token", "revoke", token_id(&token)]));
    let refused_after = loop {
        if app.mint(&token).await.status() == 401 {
            break remembered_at.elapsed();
        }
        assert!(remembered_at.elapsed() < ttl * 3, "never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert: refused once the row's memory expired (t0 + TTL), not a whole TTL after the
    // verification that relied on it (t0 + 11/6 TTL).
    assert!(
        refused_after < ttl + ttl / 3,
        "refused only {refused_after:?} after the row was remembered (TTL {ttl:?})"
    );
}
