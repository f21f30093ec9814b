//! No personal data in the log: a real `serve` process, at the most verbose log level, gets
//! valid and invalid recipient lists (whose error messages quote the bad address back to the
//! client) and sends their webhooks to a receiver that fails some of them; its whole log is then
//! searched for every address, for the token and for the webhook secret.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestDb, status_and_json};
use crate::webhook_receiver::{Answer, TestReceiver};

#[actix_web::test]
async fn recipient_addresses_and_tokens_never_reach_the_log() {
    // Arrange: a service whose stderr (the log) goes to a file.
    let receiver = TestReceiver::start(Answer::FailEvery(2)).await;
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let log_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "service-{}.log",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_email-sessions"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "trace")
        .env("APP_WEBHOOKS__URL", &receiver.url)
        .env("APP_WEBHOOKS__SECRET", &receiver.secret)
        .env(
            "APP_WEBHOOKS__RETRY_DELAYS_MS",
            "20,20,20,20,20,20,20,20,20,20",
        )
        .stdout(Stdio::piped())
        .stderr(File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut announced = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut announced)
        .unwrap();
    let address = format!(
        "http://{}",
        announced.trim().trim_start_matches("listening on ")
    );
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if http
            .get(format!("{address}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the service did not become ready");
    let long_address = "toolong".repeat(40) + "@private.example";
    let secret_addresses = [
        "valid.person@private.example",
        "\"Jane Private\" <jane.private@hidden.example>",
        "broken@@private.example",
        "no-at-sign-private",
        long_address.as_str(),
    ];

    // Act: valid and invalid lists, as a form and as JSON.
    let mut statuses = Vec::new();
    for (i, recipient) in secret_addresses.iter().enumerate() {
        let form = http
            .put(format!("{address}/api/email/update/log-{i}"))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([("to", *recipient), ("subject", "Private subject")])
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        statuses.push(status_and_json(form).await.0);
        let json = http
            .put(format!("{address}/api/email/update/log-json-{i}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"to": [recipient]}))
            .send()
            .await
            .unwrap();
        statuses.push(status_and_json(json).await.0);
    }
    // An address where a session ID belongs: refused, and not logged as sent.
    let address_as_id = http
        .put(format!(
            "{address}/api/email/update/path.person@private.example"
        ))
        .bearer_auth(&token)
        .body("to=a@x.com")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    // A burst of bad tokens from this address: logged once, not once each.
    for i in 0..15 {
        http.post(format!("{address}/api/email/sessions"))
            .bearer_auth(format!("{}.wrong-secret-{i}", 900 + i))
            .send()
            .await
            .unwrap();
    }
    let delivered = receiver.wait_for(20, |accepted| accepted.len() >= 4).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    // Assert
    assert!(delivered, "the webhooks were sent");
    assert_eq!(address_as_id, 400);
    assert_eq!(statuses, [201, 201, 201, 201, 400, 400, 400, 400, 400, 400]);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("log-4"), "the requests were logged at all");
    assert_eq!(
        log.matches("\"failed authentication").count(),
        1,
        "failed authentications are logged once per address per window"
    );
    for i in 0..15 {
        assert!(
            !log.contains(&format!("wrong-secret-{i}")),
            "a bad token reached the log"
        );
    }
    for needle in [
        "valid.person",
        "path.person",
        "jane.private",
        "Jane Private",
        "broken@@",
        "no-at-sign-private",
        "toolongtoolong",
        "private.example",
        token.as_str(),
        token.split_once('.').unwrap().1,
        receiver.secret.as_str(),
        receiver.secret.trim_start_matches("whsec_"),
    ] {
        assert!(!log.contains(needle), "the log contains {needle:?}");
    }
}
