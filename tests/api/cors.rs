//! A page on an allowed origin can call the API from a browser: preflights are answered without
//! a token or the database, and every answer (errors included) carries the CORS headers. A page
//! on any other origin gets no `Access-Control-Allow-Origin`, so its browser hides every answer.

use std::time::Duration;

use email_sessions::Phase;
use reqwest::{Method, Response};

use crate::helpers::{TestApp, TestDb, spawn_app_with, start_process};

const PLUGIN: &str = "https://plugin.example";
const STRANGER: &str = "https://evil.example";

fn allow_plugin(settings: &mut email_sessions::Settings) {
    settings.cors.allowed_origins = vec![PLUGIN.to_owned()];
}

async fn preflight(app: &TestApp, origin: &str, path: &str, method: &str) -> Response {
    app.http
        .request(Method::OPTIONS, format!("{}{path}", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, if-match, if-none-match",
        )
        .send()
        .await
        .expect("OPTIONS failed")
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn listed(response: &Response, name: &str) -> Vec<String> {
    header(response, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

#[actix_web::test]
async fn a_preflight_from_an_allowed_origin_needs_no_token_and_no_database() {
    // Arrange: an instance whose database does not answer at all.
    let db = TestDb::create().await;
    let mut unreachable = db.config.clone();
    unreachable.host("127.0.0.1").port(1);
    let app = TestApp::spawn_on_config(&unreachable, |s| {
        allow_plugin(s);
        s.database.connect_timeout = Duration::from_millis(200);
    })
    .await;

    for (path, method) in [
        ("/api/email/update/s1", "PUT"),
        ("/api/email/sessions", "POST"),
        ("/api/email/sessions/s1", "GET"),
    ] {
        // Act
        let response = preflight(&app, PLUGIN, path, method).await;

        // Assert
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(PLUGIN)
        );
        let methods = listed(&response, "access-control-allow-methods");
        for expected in ["get", "post", "put", "delete"] {
            assert!(methods.contains(&expected.to_owned()), "{methods:?}");
        }
        let headers = listed(&response, "access-control-allow-headers");
        for expected in ["authorization", "content-type", "if-match", "if-none-match"] {
            assert!(headers.contains(&expected.to_owned()), "{headers:?}");
        }
        assert_eq!(header(&response, "access-control-max-age"), Some("7200"));
        assert!(listed(&response, "vary").contains(&"origin".to_owned()));
    }
}

#[actix_web::test]
async fn every_answer_to_an_allowed_origin_is_readable_errors_included() {
    // Arrange
    let (app, _db, token) = spawn_app_with(allow_plugin).await;
    let put = |token: Option<&str>| {
        let mut request = app
            .http
            .put(format!("{}/api/email/update/s1", app.address))
            .header("Origin", PLUGIN)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("to=a@x.com&subject=Hi");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // Act
    let created = put(Some(&token)).await.unwrap();
    let unauthorized = put(None).await.unwrap();
    let stale = app
        .http
        .put(format!("{}/api/email/update/s1", app.address))
        .header("Origin", PLUGIN)
        .header("If-Match", "\"0\"")
        .bearer_auth(&token)
        .body("subject=Stale")
        .send()
        .await
        .unwrap();

    // Assert
    for (response, status) in [(&created, 201), (&unauthorized, 401), (&stale, 412)] {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            header(response, "access-control-allow-origin"),
            Some(PLUGIN)
        );
        let exposed = listed(response, "access-control-expose-headers");
        for expected in ["etag", "x-request-id", "retry-after", "location"] {
            assert!(exposed.contains(&expected.to_owned()), "{exposed:?}");
        }
        assert!(listed(response, "vary").contains(&"origin".to_owned()));
    }
}

#[actix_web::test]
async fn a_starting_instances_503_is_readable_cross_origin() {
    // Arrange
    let db = TestDb::create().await;
    let app = TestApp::spawn_in_phase(&db, Phase::Starting, allow_plugin).await;

    // Act
    let response = app
        .http
        .post(format!("{}/api/email/sessions", app.address))
        .header("Origin", PLUGIN)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some(PLUGIN)
    );
    assert!(listed(&response, "access-control-expose-headers").contains(&"retry-after".into()));
}

#[actix_web::test]
async fn other_origins_get_no_cors_headers() {
    // Arrange: one instance allowing the plugin, one allowing nobody (the default).
    let (allowing, db, token) = spawn_app_with(allow_plugin).await;
    let closed = TestApp::spawn_on(&db, |_| {}).await;

    for (app, origin) in [
        (&allowing, STRANGER),
        (&closed, PLUGIN),
        (&closed, STRANGER),
    ] {
        // Act
        let preflight = preflight(app, origin, "/api/email/update/s1", "PUT").await;
        let get = app
            .http
            .get(format!("{}/api/email/sessions/s1", app.address))
            .header("Origin", origin)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();

        // Assert
        assert!(
            !preflight.status().is_success(),
            "{origin}: preflight allowed"
        );
        assert_eq!(header(&preflight, "access-control-allow-origin"), None);
        assert_eq!(
            header(&get, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
}

#[actix_web::test]
async fn allowed_origins_come_from_a_comma_separated_environment_variable() {
    // Arrange
    let db = TestDb::create().await;
    let service = start_process(
        &db,
        &[(
            "APP_CORS__ALLOWED_ORIGINS",
            "https://a.example,https://plugin.example",
        )],
    )
    .await;
    let http = reqwest::Client::new();

    for (origin, allowed) in [
        ("https://a.example", true),
        (PLUGIN, true),
        (STRANGER, false),
    ] {
        // Act
        let response = http
            .request(
                Method::OPTIONS,
                format!("{}/api/email/sessions", service.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();

        // Assert
        let echoed = header(&response, "access-control-allow-origin");
        assert_eq!(echoed, allowed.then_some(origin), "{origin}");
    }
}
