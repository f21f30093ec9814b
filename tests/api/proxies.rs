//! Client addresses behind a load balancer: `X-Forwarded-For` is believed from trusted proxies
//! only, so the throttle counts a client's failures against the client, and no client can make
//! itself somebody else by writing the header.

use crate::helpers::{TestApp, spawn_app_with};

/// `count` mints with a bad token, each claiming `forwarded_for`; their statuses.
async fn bad_mints(app: &TestApp, forwarded_for: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..count {
        let response = app
            .http
            .post(format!("{}/api/email/sessions", app.address))
            .bearer_auth(format!("{}.bad-secret", 900_000 + n))
            .header("X-Forwarded-For", forwarded_for)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// A valid token's mint, claiming `forwarded_for`.
async fn mint_from(app: &TestApp, token: &str, forwarded_for: &str) -> u16 {
    app.http
        .post(format!("{}/api/email/sessions", app.address))
        .bearer_auth(token)
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_throttle_counts_each_client_apart() {
    // Arrange: this test is the proxy (127.0.0.1), forwarding for two clients.
    let (app, db, token) = spawn_app_with(|settings| {
        settings.server.trusted_proxies = vec!["127.0.0.1".to_owned()];
        settings.auth.failures_before_throttle = 3;
    })
    .await;
    // Tokens verified moments ago are answered before the throttle is asked: the flooder's
    // valid tokens are ones nobody presented yet.
    let flooders_token = db.create_user("flooder").await;
    let flooders_other_token = db.create_user("flooder-2").await;

    // Act
    let flooder = bad_mints(&app, "203.0.113.7", 4).await;
    let bystander = mint_from(&app, &token, "198.51.100.2").await;
    let flooder_valid = mint_from(&app, &flooders_token, "203.0.113.7").await;
    // A client writing an address of its own before the proxy's entry gains nothing.
    let disguised = mint_from(&app, &flooders_other_token, "198.51.100.2, 203.0.113.7").await;

    // Assert
    assert_eq!(flooder, [401, 401, 401, 429]);
    assert_eq!(
        bystander, 201,
        "another client behind the same proxy is not throttled"
    );
    assert_eq!(flooder_valid, 429);
    assert_eq!(disguised, 429);
}

#[actix_web::test]
async fn from_an_untrusted_peer_x_forwarded_for_is_ignored() {
    // Arrange: no trusted proxies (the default); the test's client writes the header itself.
    let (app, _db, token) = spawn_app_with(|settings| {
        settings.auth.failures_before_throttle = 3;
    })
    .await;

    // Act: a flood claiming one address, then a fresh claimed address.
    let flooder = bad_mints(&app, "203.0.113.7", 4).await;
    let spoofed = mint_from(&app, &token, "198.51.100.2").await;

    // Assert: both are the peer 127.0.0.1, which is throttled.
    assert_eq!(flooder, [401, 401, 401, 429]);
    assert_eq!(
        spoofed, 429,
        "a spoofed X-Forwarded-For escaped the throttle"
    );
}
