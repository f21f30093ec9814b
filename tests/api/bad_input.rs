//! Every bad input of the contract: the right status, a JSON error code, and
//! nothing already stored changed.

use crate::helpers::{StoredSession, TestApp, TestDb, spawn_app, status_and_json};

async fn with_stored_session() -> (TestApp, TestDb, String, StoredSession) {
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=a@x.com,b@x.com&subject=Keep")
        .await;
    let before = db.stored(&token, "s1").await.unwrap();
    (app, db, token, before)
}

#[actix_web::test]
async fn invalid_update_bodies_are_400_and_change_nothing() {
    let (app, db, token, before) = with_stored_session().await;
    let too_many: Vec<String> = (0..501).map(|i| format!("r{i}@x.com")).collect();
    let cases = [
        (
            "to=not-an-address",
            "invalid_recipients",
            Some("not-an-address"),
        ),
        ("to=a@x.com,b@@y", "invalid_recipients", Some("b@@y")),
        (
            &*format!("to={}", too_many.join(",")),
            "invalid_recipients",
            None,
        ),
        (
            &*format!("subject={}", "x".repeat(999)),
            "invalid_subject",
            None,
        ),
        ("subject=a%0Ab", "invalid_subject", None),
        // Not UTF-8 once decoded: refused as a body, never repaired into U+FFFD.
        ("to=%FF%FE", "invalid_body", None),
    ];
    for (body, code, named) in cases {
        let (status, error) = status_and_json(app.put_form(&token, "s1", body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["code"], code, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        if let Some(named) = named {
            assert!(message.contains(named), "{message} should name {named}");
        }
    }
    assert_eq!(db.stored(&token, "s1").await.unwrap(), before);
}

#[actix_web::test]
async fn invalid_session_ids_are_400() {
    let (app, _db, token) = spawn_app().await;
    for id in ["", "a.b", "%20x", &"x".repeat(65), "caf%C3%A9"] {
        let (status, error) = status_and_json(app.put_form(&token, id, "to=a@x.com").await).await;
        assert_eq!(status, 400, "{id}");
        assert_eq!(error["error"]["code"], "invalid_session_id", "{id}");
        let (status, _) = status_and_json(app.get_session(&token, id).await).await;
        assert_eq!(status, 400, "{id}");
    }
}

#[actix_web::test]
async fn malformed_json_is_400_and_other_media_types_415() {
    let (app, db, token, before) = with_stored_session().await;
    let url = format!("{}/api/email/update/s1", app.address);

    let json = app
        .http
        .put(&url)
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{\"to\": 5")
        .send()
        .await
        .unwrap();
    let xml = app
        .http
        .put(&url)
        .bearer_auth(&token)
        .header("Content-Type", "text/xml")
        .body("<to/>")
        .send()
        .await
        .unwrap();

    let (status, error) = status_and_json(json).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let (status, error) = status_and_json(xml).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    assert_eq!(db.stored(&token, "s1").await.unwrap(), before);
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let (app, db, token, before) = with_stored_session().await;
    let body = format!("subject={}", "x".repeat(70_000));
    let (status, error) = status_and_json(app.put_form(&token, "s1", &body).await).await;
    assert_eq!(status, 413);
    assert_eq!(error["error"]["code"], "payload_too_large");
    assert_eq!(db.stored(&token, "s1").await.unwrap(), before);
}

#[actix_web::test]
async fn unknown_routes_are_404_and_wrong_methods_405_json() {
    let (app, _db, token) = spawn_app().await;
    let (status, error) = status_and_json(app.get("/nope").await).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let response = app
        .http
        .get(format!("{}/api/email/update/s1", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[actix_web::test]
async fn a_405_says_what_is_allowed_and_get_routes_answer_head() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "s1", "subject=Hi").await;
    let call = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&token)
            .send()
    };

    // Act
    let wrong_on_update = call(reqwest::Method::GET, "/api/email/update/s1")
        .await
        .unwrap();
    let wrong_on_read = call(reqwest::Method::DELETE, "/healthz").await.unwrap();
    let head_read = call(reqwest::Method::HEAD, "/api/email/sessions/s1")
        .await
        .unwrap();
    let head_health = call(reqwest::Method::HEAD, "/healthz").await.unwrap();

    // Assert
    assert_eq!(wrong_on_update.status().as_u16(), 405);
    assert_eq!(wrong_on_update.headers()["allow"], "PUT");
    assert_eq!(wrong_on_read.status().as_u16(), 405);
    assert_eq!(wrong_on_read.headers()["allow"], "GET, HEAD");
    assert_eq!(head_read.status().as_u16(), 200);
    assert_eq!(head_read.headers()["etag"], "\"1\"");
    assert!(head_read.bytes().await.unwrap().is_empty());
    assert_eq!(head_health.status().as_u16(), 200);
}

#[actix_web::test]
async fn bodies_are_decoded_or_refused_never_misread() {
    // Arrange
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=kept@x.com&subject=Kept")
        .await;
    let before = db.stored(&token, "s1").await.unwrap();
    let put = |content_type: &'static str, encoding: Option<&'static str>, body: Vec<u8>| {
        let mut request = app
            .http
            .put(format!("{}/api/email/update/s1", app.address))
            .bearer_auth(&token)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        request.send()
    };
    let form = "application/x-www-form-urlencoded";
    // The gzip magic number and a deflated payload: what a compressing client sends.
    let gzipped = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03+\xc9\xb7M\xb4sH\xd3\x03\x00".to_vec();

    for (content_type, encoding, body, status, code) in [
        (form, Some("gzip"), gzipped, 415, "unsupported_encoding"),
        (
            form,
            Some("br"),
            b"to=b@x.com".to_vec(),
            415,
            "unsupported_encoding",
        ),
        (
            "application/x-www-form-urlencoded; charset=iso-8859-1",
            None,
            b"subject=Caf\xe9".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json; charset=utf-16",
            None,
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (form, None, b"subject=Caf%E9".to_vec(), 400, "invalid_body"),
        (
            form,
            None,
            b"to=a%FF%FE@x.com".to_vec(),
            400,
            "invalid_body",
        ),
        (form, None, b"subject=Caf\xe9".to_vec(), 400, "invalid_body"),
        (
            "application/json",
            None,
            b"{\"subject\": \"Caf\xe9\"}".to_vec(),
            400,
            "invalid_body",
        ),
    ] {
        // Act
        let (got, error) = status_and_json(put(content_type, encoding, body).await.unwrap()).await;

        // Assert
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{content_type} {encoding:?}: {error}"
        );
    }
    assert_eq!(db.stored(&token, "s1").await.unwrap(), before);

    // UTF-8 is fine however it is spelled, and identity is no encoding at all.
    let accepted = put(
        "application/x-www-form-urlencoded; charset=\"UTF-8\"",
        Some("identity"),
        "subject=Caf%C3%A9".as_bytes().to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    assert_eq!(
        db.stored(&token, "s1").await.unwrap().subject.as_deref(),
        Some("Café")
    );
}
