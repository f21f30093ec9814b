//! The contract for plugin developers: `/openapi.json` (OpenAPI 3.1, generated from the code)
//! and `/docs`, a page whose scripts and styles come from the binary itself.

use serde_json::Value;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_openapi_document_describes_the_plugin_api() {
    // Arrange
    let (app, _db, _token) = spawn_app().await;

    // Act
    let response = app.get("/openapi.json").await;
    let status = response.status().as_u16();
    let document: Value = response.json().await.unwrap();

    // Assert
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let update = &document["paths"]["/api/email/update/{session_id}"]["put"];
    let body = &update["requestBody"]["content"];
    assert!(
        body["application/x-www-form-urlencoded"].is_object(),
        "{body}"
    );
    assert!(body["application/json"].is_object(), "{body}");
    let parameters: Vec<&str> = update["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["session_id", "If-Match", "If-None-Match"]);
    for status in ["200", "201", "400", "401", "412", "413", "415", "503"] {
        assert!(
            update["responses"][status].is_object(),
            "PUT lacks {status}"
        );
    }
    assert!(update["responses"]["200"]["headers"]["ETag"].is_object());
    assert!(update["responses"]["503"]["headers"]["Retry-After"].is_object());
    let read = &document["paths"]["/api/email/sessions/{session_id}"]["get"];
    assert!(read["responses"]["304"].is_object());
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, operations) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, operation) in operations.as_object().unwrap() {
            let refused = &operation["responses"]["401"];
            let says = refused["description"].as_str().unwrap_or_default();
            assert!(
                says.contains("unauthorized") && says.contains("invalid_token"),
                "{method} {path}: 401 says {says:?}"
            );
            assert!(
                refused["headers"]["WWW-Authenticate"].is_object(),
                "{method} {path}"
            );
            let unavailable = operation["responses"]["503"]["description"].as_str();
            assert!(
                unavailable.is_some_and(|says| says.contains("identity_provider_unavailable")),
                "{method} {path}: 503 says {unavailable:?}"
            );
        }
    }
    let codes = &document["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(
        codes
            .as_array()
            .unwrap()
            .contains(&"precondition_failed".into()),
        "{codes}"
    );
}

#[actix_web::test]
async fn the_docs_page_is_served_from_the_binary() {
    // Arrange
    let (app, _db, _token) = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Act
    let redirect = no_redirects
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    let page = app.get("/docs/").await;
    let page_type = page.headers()["content-type"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let script = app.get("/docs/swagger-ui-bundle.js").await;
    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();

    // Assert
    assert_eq!(redirect.status().as_u16(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");
    assert!(page_type.starts_with("text/html"), "{page_type}");
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(
        !html.contains("://"),
        "the page loads nothing from another host: {html}"
    );
    assert_eq!(script.status().as_u16(), 200);
    assert!(script.bytes().await.unwrap().len() > 100_000);
    assert!(initializer.contains("/openapi.json"), "{initializer}");
}
