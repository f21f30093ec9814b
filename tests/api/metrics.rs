//! After a known burst, a process's own /metrics adds up: every received
//! update either paid for a write transaction or was collapsed.

use futures_util::future::join_all;

use crate::helpers::{TestDb, start_process};

fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn counters_add_up_after_a_known_burst() {
    // Arrange
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let service = start_process(&db, &[]).await;
    let http = reqwest::Client::new();

    // Act: 5 sessions x 40 identical updates.
    let requests = (0..200).map(|n| {
        http.put(format!("{}/api/email/update/m-{}", service.url, n % 5))
            .bearer_auth(&token)
            .body("to=a@x.com,b@x.com&subject=M")
            .send()
    });
    for response in join_all(requests).await {
        assert!(response.unwrap().status().is_success());
    }
    let text = http
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Assert
    let received = counter(&text, "email_sessions_updates_received_total");
    let collapsed = counter(&text, "email_sessions_updates_collapsed_total");
    let writes = counter(&text, "email_sessions_write_transactions_total");
    assert_eq!(received, 200.0, "{text}");
    assert_eq!(writes, 5.0, "one write per session: {text}");
    assert_eq!(received, collapsed + writes, "{text}");
    assert!(
        text.contains("email_sessions_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("email_sessions_pool_connections"), "{text}");
    assert!(
        text.contains("route=\"/api/email/update/{session_id}\""),
        "{text}"
    );
}
