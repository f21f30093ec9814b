//! Client addresses behind a load balancer: `X-Forwarded-For` is believed from trusted proxies
//! only, so the failure log names the client that failed, and no client can make itself
//! somebody else by writing the header.

use std::fs::File;
use std::path::{Path, PathBuf};

use loadtest::instance::Instance;

use crate::helpers::TestDb;

/// A `serve` process on `db` with extra settings, logging at `warn` to a fresh file.
async fn logging_instance(db: &TestDb, settings: &[(&str, &str)]) -> (Instance, PathBuf) {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "proxies-{}.log",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let mut environment = vec![("RUST_LOG", "warn")];
    environment.extend_from_slice(settings);
    let instance = Instance::start_logging_to(
        Path::new(env!("CARGO_BIN_EXE_email-sessions")),
        &db.url(),
        &environment,
        "127.0.0.1:0",
        File::create(&log).unwrap(),
    )
    .await
    .expect("starting email-sessions serve");
    (instance, log)
}

/// A mint with a bad token, claiming `forwarded_for`; its status.
async fn bad_mint(instance: &Instance, forwarded_for: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/email/sessions", instance.url))
        .bearer_auth("900000.bad-secret")
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The log's failed-authentication lines.
fn failure_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.contains("failed authentication"))
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_failure_log_names_each_client() {
    // Arrange: this test is the proxy (127.0.0.1), forwarding for two clients.
    let db = TestDb::create().await;
    let (instance, log) =
        logging_instance(&db, &[("APP_SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;

    // Act: each client fails; a client writing an address of its own before the proxy's entry
    // is still itself.
    let statuses = [
        bad_mint(&instance, "203.0.113.7").await,
        bad_mint(&instance, "198.51.100.2").await,
        bad_mint(&instance, "192.0.2.99, 203.0.113.7").await,
    ];
    drop(instance);

    // Assert: one line per client and window, naming the client, never the claimed address.
    assert_eq!(statuses, [401; 3]);
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("203.0.113.7"), "{lines:?}");
    assert!(lines[1].contains("198.51.100.2"), "{lines:?}");
    assert!(
        !lines.iter().any(|line| line.contains("192.0.2.99")),
        "{lines:?}"
    );
}

#[actix_web::test]
async fn from_an_untrusted_peer_x_forwarded_for_is_ignored() {
    // Arrange: no trusted proxies (the default); the test's client writes the header itself.
    let db = TestDb::create().await;
    let (instance, log) = logging_instance(&db, &[]).await;

    // Act: two failures claiming two addresses.
    bad_mint(&instance, "203.0.113.7").await;
    bad_mint(&instance, "198.51.100.2").await;
    drop(instance);

    // Assert: both are the peer 127.0.0.1, logged once.
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("127.0.0.1"), "{lines:?}");
    assert!(!lines[0].contains("203.0.113.7"), "{lines:?}");
}
