//! Minting and reading sessions: ownership, the session JSON and its ETag.

use crate::helpers::{emails, spawn_app, status_and_json};

#[actix_web::test]
async fn mint_returns_a_fresh_empty_session_owned_by_the_caller() {
    // Arrange
    let (app, db, alice) = spawn_app().await;
    let bob = db.create_user("bob").await;

    // Act
    let (status, minted) = status_and_json(app.mint(&alice).await).await;
    let (_, other) = status_and_json(app.mint(&alice).await).await;

    // Assert
    assert_eq!(status, 201);
    let id = minted["session_id"].as_str().unwrap();
    assert!(
        id.len() >= 20 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_ne!(id, other["session_id"].as_str().unwrap());
    assert_eq!(minted["version"], 0);
    assert_eq!(minted["subject"], serde_json::Value::Null);
    assert_eq!(app.get_session(&alice, id).await.status().as_u16(), 200);
    assert_eq!(app.get_session(&bob, id).await.status().as_u16(), 404);
}

#[actix_web::test]
async fn an_update_to_a_minted_session_is_200_and_version_1() {
    let (app, _db, token) = spawn_app().await;
    let (_, minted) = status_and_json(app.mint(&token).await).await;
    let id = minted["session_id"].as_str().unwrap();

    let (status, session) =
        status_and_json(app.put_form(&token, id, "to=a@x.com&subject=Hi").await).await;

    assert_eq!(status, 200);
    assert_eq!(session["version"], 1);
    assert_eq!(emails(&session), ["a@x.com"]);
}

#[actix_web::test]
async fn get_returns_the_session_json_with_an_etag() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    app.put_form(
        &token,
        "s1",
        "to=%22Smith%2C+Jane%22+%3Cjane%40x.com%3E%2C+k%40y.org&subject=Hello",
    )
    .await;

    // Act
    let response = app.get_session(&token, "s1").await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let (status, session) = status_and_json(response).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(etag, "\"1\"");
    assert_eq!(session["session_id"], "s1");
    assert_eq!(session["subject"], "Hello");
    assert_eq!(session["recipients"][0]["email"], "jane@x.com");
    assert_eq!(session["recipients"][0]["name"], "Smith, Jane");
    assert_eq!(session["recipients"][1]["name"], serde_json::Value::Null);
    for field in ["created_at", "updated_at"] {
        let stamp = session[field].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{field}: {stamp}"
        );
    }
}

#[actix_web::test]
async fn get_of_an_absent_session_is_404_json() {
    let (app, _db, token) = spawn_app().await;
    let (status, body) = status_and_json(app.get_session(&token, "nope").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "session_not_found");
}
