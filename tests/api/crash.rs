//! SIGKILL mid-burst: after a restart, every session holds a recipient list
//! that some request sent, whole, without duplicates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::{TestDb, start_process};

fn list(session: usize, variant: usize) -> Vec<String> {
    (0..5)
        .map(|k| format!("v{variant}-{k}-s{session}@x.com"))
        .collect()
}

#[actix_web::test]
async fn sigkill_mid_burst_leaves_no_partial_recipient_list() {
    // Arrange
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let service = start_process(&db, &[]).await;
    let http = reqwest::Client::new();
    let answered = AtomicUsize::new(0);
    let requests = (0..600).map(|n| {
        let (session, variant) = (n % 30, n / 30 % 4);
        let body = format!("to={}", list(session, variant).join(","));
        let (http, token, address, answered) = (&http, &token, &service.url, &answered);
        async move {
            actix_web::rt::time::sleep(Duration::from_micros(n as u64 * 300)).await;
            let response = http
                .put(format!("{address}/api/email/update/crash-{session}"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await;
            if response.is_ok_and(|r| r.status().is_success()) {
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    // Act: kill once a sixth of the burst is acknowledged.
    let kill = async {
        while answered.load(Ordering::Relaxed) < 100 {
            actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        }
        service.signal("KILL").unwrap();
    };
    futures_util::future::join(join_all(requests), kill).await;
    drop(service);
    let restarted = start_process(&db, &[]).await;

    // Assert
    let mut stored_sessions = 0;
    for session in 0..30 {
        let Some(stored) = db.stored(&token, &format!("crash-{session}")).await else {
            continue;
        };
        stored_sessions += 1;
        assert!(
            (0..4).any(|variant| stored.recipients == list(session, variant)),
            "crash-{session} holds a list nobody sent: {:?}",
            stored.recipients
        );
    }
    assert!(stored_sessions > 0, "some writes landed before the kill");
    let response = http
        .put(format!("{}/api/email/update/after-crash", restarted.url))
        .bearer_auth(&token)
        .body("to=a@x.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}
