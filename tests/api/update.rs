//! The update endpoint one request at a time: form and JSON bodies, the
//! plugin's exact request, versions, blank fields, de-duplication (the
//! service's, and the database's refusal of a list that skipped it).

use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::helpers::{emails, spawn_app, status_and_json};

#[actix_web::test]
async fn the_plugins_exact_request_creates_the_session() {
    // Arrange
    let (app, db, token) = spawn_app().await;

    // Act: what `curl -X PUT .../update/<id> -d "to=...&subject=Hello"` sends.
    let (status, session) = status_and_json(
        app.put_form(
            &token,
            "AbC-123_x",
            "to=a1@example.com,a2@example.com&subject=Hello",
        )
        .await,
    )
    .await;

    // Assert
    assert_eq!(status, 201);
    assert_eq!(session["version"], 1);
    assert_eq!(emails(&session), ["a1@example.com", "a2@example.com"]);
    let stored = db.stored(&token, "AbC-123_x").await.unwrap();
    assert_eq!(stored.recipients, ["a1@example.com", "a2@example.com"]);
    assert_eq!(stored.subject.as_deref(), Some("Hello"));
    assert_eq!(stored.version, 1);
}

#[actix_web::test]
async fn a_repeated_update_is_200_and_does_not_bump_the_version() {
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=Hi").await;

    let (status, session) =
        status_and_json(app.put_form(&token, "s1", "to=a@x.com&subject=Hi").await).await;

    assert_eq!(status, 200);
    assert_eq!(session["version"], 1);
}

#[actix_web::test]
async fn each_change_bumps_the_version_by_one() {
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=Hi").await;
    app.put_form(&token, "s1", "subject=Changed").await;
    let (_, session) = status_and_json(app.put_form(&token, "s1", "to=b@x.com").await).await;

    assert_eq!(session["version"], 3);
    assert_eq!(session["subject"], "Changed");
    assert_eq!(emails(&session), ["b@x.com"]);
    assert_eq!(db.stored(&token, "s1").await.unwrap().version, 3);
}

#[actix_web::test]
async fn blank_or_absent_fields_leave_stored_values_alone() {
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com&subject=Hi").await;

    let (_, after_blank) =
        status_and_json(app.put_form(&token, "s1", "to=&subject=Hi").await).await;
    let (_, after_absent) = status_and_json(app.put_form(&token, "s1", "").await).await;

    for session in [after_blank, after_absent] {
        assert_eq!(session["version"], 1);
        assert_eq!(emails(&session), ["a@x.com"]);
        assert_eq!(session["subject"], "Hi");
    }
}

#[actix_web::test]
async fn an_empty_subject_is_a_change() {
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "s1", "subject=Hi").await;
    let (_, session) = status_and_json(app.put_form(&token, "s1", "subject=").await).await;
    assert_eq!(session["subject"], "");
    assert_eq!(session["version"], 2);
}

#[actix_web::test]
async fn cm_to_is_an_alias_of_to() {
    let (app, _db, token) = spawn_app().await;
    let (status, session) =
        status_and_json(app.put_form(&token, "s1", "cm_to=a@x.com").await).await;
    assert_eq!(status, 201);
    assert_eq!(emails(&session), ["a@x.com"]);
}

#[actix_web::test]
async fn json_bodies_take_a_string_or_a_list() {
    let (app, _db, token) = spawn_app().await;

    let (_, joined) = status_and_json(
        app.put_json(
            &token,
            "s1",
            &json!({"to": "a@x.com, b@y.org", "subject": "S"}),
        )
        .await,
    )
    .await;
    let (_, listed) = status_and_json(
        app.put_json(&token, "s2", &json!({"to": ["Ann <a@x.com>", "b@y.org"]}))
            .await,
    )
    .await;

    assert_eq!(emails(&joined), ["a@x.com", "b@y.org"]);
    assert_eq!(joined["subject"], "S");
    assert_eq!(emails(&listed), ["a@x.com", "b@y.org"]);
    assert_eq!(listed["recipients"][0]["name"], "Ann");
}

#[actix_web::test]
async fn addresses_are_deduplicated_case_insensitively_keeping_the_first() {
    let (app, db, token) = spawn_app().await;
    let (_, session) = status_and_json(
        app.put_form(&token, "s1", "to=B@x.com,a@x.com,b@X.COM,A@x.com,c@x.com")
            .await,
    )
    .await;
    assert_eq!(emails(&session), ["B@x.com", "a@x.com", "c@x.com"]);
    assert_eq!(
        db.stored(&token, "s1").await.unwrap().recipients,
        ["B@x.com", "a@x.com", "c@x.com"]
    );
}

#[actix_web::test]
async fn the_database_itself_refuses_a_list_naming_an_address_twice() {
    // Arrange: writers that skip the service's de-duplication: the write function called
    // directly, for a new session and for a stored one, and a hand-written UPDATE.
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "stored", "to=a@x.com").await;
    let user_id = db.user_of(&token).await;
    let client = db.client().await;
    let write = |session_id: &'static str| {
        let client = &client;
        async move {
            client
                .execute(
                    "SELECT version FROM apply_email_session_change(
                         p_user_id => $1, p_session_id => $2,
                         p_set_subject => false, p_subject => NULL,
                         p_set_recipients => true, p_emails => ARRAY['b@x.com', 'c@x.com', 'B@X.com'],
                         p_names => ARRAY[NULL, NULL, NULL]::text[],
                         p_if_match => NULL, p_if_match_any => false, p_if_none_match => NULL,
                         p_if_none_match_any => false, p_quota => 0, p_webhooks => false)",
                    &[&user_id, &session_id],
                )
                .await
        }
    };

    // Act
    let first_touch = write("new").await;
    let change = write("stored").await;
    let by_hand = client
        .execute(
            "UPDATE email_sessions SET emails = ARRAY['a@x.com', 'A@x.com'], names = '{NULL,NULL}'
             WHERE session_id = 'stored'",
            &[],
        )
        .await;

    // Assert
    for (what, result) in [
        ("a first touch", first_touch),
        ("a change", change),
        ("an UPDATE", by_hand),
    ] {
        let error = result.expect_err(what);
        assert_eq!(
            error.code(),
            Some(&SqlState::CHECK_VIOLATION),
            "{what}: {error}"
        );
    }
    assert_eq!(db.session_rows("new").await, 0);
    assert_eq!(
        db.stored(&token, "stored").await.unwrap().recipients,
        ["a@x.com"]
    );
}

#[actix_web::test]
async fn non_ascii_addresses_that_only_unicode_folds_alike_are_both_kept() {
    let (app, db, token) = spawn_app().await;
    let (status, session) = status_and_json(
        app.put_form(&token, "s1", "to=%C4%B0nfo@x.com,info@x.com")
            .await,
    )
    .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(db.stored(&token, "s1").await.unwrap().recipients.len(), 2);
}

#[actix_web::test]
async fn a_blank_to_does_not_hide_cm_to() {
    let (app, _db, token) = spawn_app().await;
    let (_, session) = status_and_json(app.put_form(&token, "s1", "to=&cm_to=a@x.com").await).await;
    assert_eq!(emails(&session), ["a@x.com"]);
}
