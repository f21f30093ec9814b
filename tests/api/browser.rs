//! The reference plugin (`examples/plugin/index.html`) in a real browser: headless Chromium,
//! driven over WebDriver (chromedriver), loads the page from one origin and calls the API on
//! another. On an allowed origin it mints, sends (form and JSON, several copies at once), reads
//! the ETag and the stored session, reads the 412 of a lost race and lists what was sent; on any
//! other origin it cannot read a single answer. What the page did is checked in the database.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! tests fail, unless `SKIP_BROWSER_TESTS=1` says to skip them.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{TestApp, TestDb};

const PLUGIN_PAGE: &str = include_str!("../../examples/plugin/index.html");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `chromedriver` on a free port, killed when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(format!("{}/status", driver.url)).await
                && response.status().is_success()
            {
                return driver;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    /// A headless Chromium session with a profile of its own.
    async fn browser(&self) -> Client {
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "chromium-{}",
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::rustls()
            .expect("a TLS-capable WebDriver connector")
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("opening a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Whether the browser tests can run; panics with what is missing unless told to skip.
fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var("SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_BROWSER_TESTS=1: skipping the browser test");
        return false;
    }
    panic!(
        "{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver), \
         or set SKIP_BROWSER_TESTS=1"
    );
}

/// Serves the plugin page at `/` on its own port: an origin other than the API's.
fn serve_plugin_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(PLUGIN_PAGE)
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}")
}

struct Page {
    browser: Client,
}

impl Page {
    async fn open(driver: &ChromeDriver, page_url: &str, api_url: &str, token: &str) -> Page {
        let browser = driver.browser().await;
        browser.goto(page_url).await.expect("loading the page");
        let page = Page { browser };
        page.type_into("api-url", api_url).await;
        page.type_into("token", token).await;
        page
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self.browser.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, id: &str) {
        self.browser
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn text(&self, id: &str) -> String {
        self.browser
            .find(Locator::Id(id))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until element `id` shows text other than `previous`, and returns it.
    async fn changed(&self, id: &str, previous: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text(id).await;
            if text != previous {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "#{id} never changed from {previous:?}; #error: {:?}",
                self.text("error").await
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(self) {
        let _ = self.browser.close().await;
    }
}

#[actix_web::test]
async fn the_reference_plugin_works_from_an_allowed_origin() {
    if !browser_available() {
        return;
    }
    // Arrange
    let page_origin = serve_plugin_page();
    let db = TestDb::create().await;
    let api = TestApp::spawn_on(&db, |s| s.cors.allowed_origins = vec![page_origin.clone()]).await;
    let token = db.create_user("plugin-user").await;
    let driver = ChromeDriver::start().await;
    let page = Page::open(&driver, &page_origin, &api.address, &token).await;

    // Act + Assert: mint.
    page.click("mint").await;
    let session_id = page.changed("session-id", "").await;
    assert_eq!(session_id.len(), 26, "{session_id}");
    assert!(page.text("dynamic-link").await.ends_with(&session_id));

    // Send the form five times at once: one creation, four duplicates, all version 1.
    page.click("send").await;
    let answers = page.changed("send-result", "").await;
    assert_eq!(
        answers, "200 v1, 200 v1, 200 v1, 200 v1, 200 v1",
        "{answers}"
    );
    let stored = db.stored(&token, &session_id).await.unwrap();
    assert_eq!(stored.recipients, ["jane@example.com", "k@example.org"]);
    assert_eq!(
        (stored.version, stored.subject.as_deref()),
        (1, Some("Quarterly report"))
    );

    // The same as JSON, with a new subject.
    page.click("as-json").await;
    page.type_into("subject", "Sent as JSON").await;
    page.click("send").await;
    let answers = page.changed("send-result", &answers).await;
    assert_eq!(answers, "200 v2, 200 v2, 200 v2, 200 v2, 200 v2");

    // Read it back, ETag included.
    page.click("show").await;
    assert_eq!(page.changed("etag", "").await, "\"2\"");
    assert!(page.text("stored").await.contains("Sent as JSON"));

    // Two conditional writers on the same ETag: one applied, the other's 412 read in full.
    page.click("race").await;
    let race = page.changed("race-result", "").await;
    assert_eq!(
        race.matches(": 200 applied, ETag \"3\"").count(),
        1,
        "{race}"
    );
    assert_eq!(
        race.matches(": 412 precondition_failed: ").count(),
        1,
        "{race}"
    );
    let stored = db.stored(&token, &session_id).await.unwrap();
    assert_eq!(stored.version, 3);
    assert!(matches!(
        stored.subject.as_deref(),
        Some("Writer A" | "Writer B")
    ));

    // The person's sessions: the one sent, listed with its last subject and recipients.
    page.click("list").await;
    assert_eq!(page.changed("list-result", "").await, "1 shown, last page");
    let sent = page.text("sent").await;
    assert!(
        sent.starts_with(&format!("{session_id}: Writer ")),
        "{sent}"
    );
    assert!(
        sent.ends_with(" to jane@example.com, k@example.org"),
        "{sent}"
    );
    assert_eq!(page.text("error").await, "");
    page.close().await;
}

#[actix_web::test]
async fn a_page_on_another_origin_cannot_read_any_answer() {
    if !browser_available() {
        return;
    }
    // Arrange: the API allows some other origin, not the page's.
    let page_origin = serve_plugin_page();
    let db = TestDb::create().await;
    let api = TestApp::spawn_on(&db, |s| {
        s.cors.allowed_origins = vec!["https://plugin.example".to_owned()];
    })
    .await;
    let token = db.create_user("plugin-user").await;
    let driver = ChromeDriver::start().await;
    let page = Page::open(&driver, &page_origin, &api.address, &token).await;

    // Act
    page.click("mint").await;
    let error = page.changed("error", "").await;

    // Assert: the browser refused the preflight, so the mint never reached the handler.
    assert!(error.contains("could not read the answer"), "{error}");
    assert_eq!(page.text("session-id").await, "");
    let sessions: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM email_sessions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 0);
    page.close().await;
}
