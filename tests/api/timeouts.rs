//! A body that trickles in is cut off: 408 and the connection closed once
//! `server.body_read_timeout_ms` has passed, a place among the in-flight updates held meanwhile,
//! and a drain that waits for it no longer than that.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestDb, spawn_app_with, start_process, status_and_json};

/// Opens a connection and sends a PUT whose body announces 100 bytes but brings 4.
async fn start_slow_put(base_url: &str, token: &str, session_id: &str) -> TcpStream {
    let host = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.unwrap();
    let head = format!(
        "PUT /api/email/update/{session_id} HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\nto=a"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection (or 10 s pass).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}

#[actix_web::test]
async fn a_trickling_body_gets_408_holds_its_place_and_is_closed() {
    // Arrange
    let (app, db, token) = spawn_app_with(|s| {
        s.server.body_read_timeout = Duration::from_millis(300);
        s.sessions.max_in_flight_updates = 2;
    })
    .await;
    let started = Instant::now();
    let mut first = start_slow_put(&app.address, &token, "slow-1").await;
    let mut second = start_slow_put(&app.address, &token, "slow-2").await;
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;

    // Act
    let (crowded_status, crowded) =
        status_and_json(app.put_form(&token, "fast", "subject=Hi").await).await;
    let first_answer = read_until_closed(&mut first).await;
    let cut_after = started.elapsed();
    let second_answer = read_until_closed(&mut second).await;
    let (later_status, _) = status_and_json(app.put_form(&token, "fast", "subject=Hi").await).await;

    // Assert
    assert_eq!(
        crowded_status, 503,
        "the slow bodies hold the in-flight places: {crowded}"
    );
    assert!(
        crowded["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in_flight_updates")
    );
    for answer in [&first_answer, &second_answer] {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    assert!(
        cut_after < Duration::from_secs(3),
        "cut after {cut_after:?}"
    );
    assert_eq!(later_status, 201, "the places were given back");
    assert_eq!(db.session_rows("slow-1").await, 0);
}

#[actix_web::test]
async fn a_drain_waits_for_a_trickling_body_no_longer_than_its_timeout() {
    // Arrange: a shutdown timeout far longer than the body timeout.
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let mut service = start_process(
        &db,
        &[
            ("APP_SERVER__BODY_READ_TIMEOUT_MS", "500"),
            ("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "30"),
        ],
    )
    .await;
    let mut slow = start_slow_put(&service.url, &token, "slow").await;
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;

    // Act
    let signalled = Instant::now();
    service.signal("TERM").unwrap();
    let answer = read_until_closed(&mut slow).await;
    let exit = service.wait(Duration::from_secs(20)).await.unwrap();
    let drain_time = signalled.elapsed();

    // Assert
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    assert!(
        drain_time < Duration::from_secs(5),
        "the drain took {drain_time:?}"
    );
}
