//! A database the previous release migrated upgrades when this release starts: the migrations
//! whose texts lost their functions to `sql/functions/` are accepted, every function is
//! re-created from its one file, and what was stored before reads, compares and changes as
//! before.

use serde_json::json;

use crate::helpers::{TestApp, TestDb, cli, emails, status_and_json, stdout_of};

/// The previous release's database: see the fixture's header.
const PREVIOUS_RELEASE: &str = include_str!("../fixtures/v7-database.sql");

#[actix_web::test]
async fn a_database_of_the_previous_release_upgrades_on_start() {
    // Arrange
    let db = TestDb::create_empty().await;
    db.client()
        .await
        .batch_execute(PREVIOUS_RELEASE)
        .await
        .expect("restoring the previous release's database");

    // Act: this release's migrate, up to the previous release's last version and then again
    // (every start runs it), then an instance.
    let first = cli(&db, &["migrate", "--target", "7"]);
    let second = cli(&db, &["migrate"]);
    let token = stdout_of(&cli(&db, &["token", "create", "fixture-user"]))
        .trim_end()
        .to_owned();
    let app = TestApp::spawn_on(&db, |_| {}).await;
    let (read_status, read) =
        status_and_json(app.get_session(&token, "before-upgrade").await).await;
    let (same_status, same) = status_and_json(
        app.put_json(
            &token,
            "before-upgrade",
            &json!({"to": "Ann <ann@x.com>, bob@y.org", "subject": "Written by V7"}),
        )
        .await,
    )
    .await;
    let (changed_status, changed) = status_and_json(
        app.put_form(&token, "before-upgrade", "to=carol@z.net&subject=After")
            .await,
    )
    .await;
    // The previous release's read, as its instances still run it during a rolling upgrade.
    let read_by_previous_release: Vec<String> = db
        .client()
        .await
        .query_one(
            "SELECT coalesce(array_agg(r.email ORDER BY r.position)
                             FILTER (WHERE r.email IS NOT NULL), '{}')
             FROM email_sessions s
             LEFT JOIN email_session_recipients r ON r.session_row_id = s.id
             WHERE s.session_id = 'before-upgrade'
             GROUP BY s.id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (minted_status, minted) = status_and_json(
        app.put_form(&token, "minted-before-upgrade", "to=dan@z.net")
            .await,
    )
    .await;
    let mint_status = app.mint(&token).await.status().as_u16();
    let provisioned: i64 = db
        .client()
        .await
        .query_one(
            "SELECT provision_identity(p_issuer => 'https://issuer.example', p_subject => 'person-1')",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // Assert
    stdout_of(&first);
    stdout_of(&second);
    assert_eq!(read_status, 200, "{read}");
    assert_eq!(
        (read["version"].as_i64(), read["subject"].as_str()),
        (Some(1), Some("Written by V7"))
    );
    assert_eq!(emails(&read), ["ann@x.com", "bob@y.org"]);
    assert_eq!(
        (same_status, same["version"].as_i64()),
        (200, Some(1)),
        "the same content still compares equal: {same}"
    );
    assert_eq!(
        (changed_status, changed["version"].as_i64()),
        (200, Some(2))
    );
    assert_eq!(emails(&changed), ["carol@z.net"]);
    assert_eq!(read_by_previous_release, ["carol@z.net"]);
    assert_eq!(
        (minted_status, minted["version"].as_i64()),
        (200, Some(1)),
        "{minted}"
    );
    assert_eq!(
        mint_status, 201,
        "minting takes today's quota through the new functions"
    );
    assert_eq!(
        provisioned, 2,
        "the identity provisioned before keeps its user"
    );
}

#[actix_web::test]
async fn migrating_to_the_latest_version_by_number_creates_the_functions() {
    // Arrange: the latest version's number, as a fully migrated database records it.
    let latest: i32 = TestDb::create()
        .await
        .client()
        .await
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    let db = TestDb::create_empty().await;

    // Act
    let migrated = cli(&db, &["migrate", "--target", &latest.to_string()]);
    let functions: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE proname = ANY($1)",
            &[&[
                "take_new_session_quota",
                "give_back_new_session_quota",
                "mint_email_session",
                "apply_email_session_change",
                "provision_identity",
            ]
            .as_slice()],
        )
        .await
        .unwrap()
        .get(0);

    // Assert
    stdout_of(&migrated);
    assert_eq!(functions, 5, "every function of sql/functions/");
}
