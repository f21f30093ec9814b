//! Connections as an attacker or a careless client uses them: a stalled second request head on
//! a keep-alive connection is cut, a client past its share of connections is refused at once
//! while others are served, a body too large is refused before it is sent (no `100 Continue`
//! before authentication), and `/metrics` can live off the API's listener.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{TestApp, TestDb, spawn_app_with};

fn host_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// A connection to `app` from the local address `from`.
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(host_of(app).parse().unwrap()).await.unwrap()
}

/// Reads one response (head and a `Content-Length` body) or, for an interim response, its
/// head alone; `None` when the connection closed first.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => received.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&received).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

/// Whether the peer has closed `stream` (or reset it) by `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn status_of(response: &str) -> u16 {
    response[9..12].parse().unwrap()
}

const HEALTH_CHECK: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

#[actix_web::test]
async fn stalled_second_heads_on_keep_alive_connections_are_cut_within_the_timeout() {
    // Arrange: heads must arrive within 1 s (actix's keep-alive timer stops at the first byte
    // of the next head, so only the head deadline can cut what follows).
    let timeout = Duration::from_secs(1);
    let (app, _db, _) = spawn_app_with(|s| s.server.request_head_timeout = timeout).await;
    let mut stalled = join_all((0..200).map(|_| async {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        stream.write_all(HEALTH_CHECK).await.unwrap();
        let first = read_response(&mut stream).await.expect("a first answer");
        assert_eq!(status_of(&first), 200);
        // One byte of the next head, then silence.
        stream.write_all(b"G").await.unwrap();
        stream
    }))
    .await;
    let stalled_at = Instant::now();

    // Act: another client is served meanwhile; then every stalled connection is watched.
    let served = app.get("/healthz").await.status().as_u16();
    let closed = join_all(
        stalled
            .iter_mut()
            .map(|stream| closed_within(stream, timeout * 3)),
    )
    .await;
    let waited = stalled_at.elapsed();

    // Assert
    assert_eq!(served, 200);
    assert!(
        closed.iter().all(|&closed| closed),
        "{} of 200 still open after {waited:?}",
        closed.iter().filter(|c| !**c).count()
    );
    assert!(waited < timeout * 3, "closed only after {waited:?}");
}

#[actix_web::test]
async fn a_head_that_keeps_coming_is_not_cut_and_a_slow_handler_is_not_either() {
    // Arrange: what must still work under the head deadline: a head arriving in pieces within
    // it, and a keep-alive connection idle between two requests for longer than the deadline
    // (within actix's 5 s keep-alive).
    let timeout = Duration::from_millis(800);
    let (app, _db, _) = spawn_app_with(|s| s.server.request_head_timeout = timeout).await;
    let mut stream = connect_from(&app, "127.0.0.1").await;

    // Act
    let mut statuses = Vec::new();
    for round in 0..3 {
        for piece in HEALTH_CHECK.chunks(12) {
            stream.write_all(piece).await.unwrap();
            tokio::time::sleep(timeout / 8).await;
        }
        statuses.push(status_of(
            &read_response(&mut stream).await.expect("an answer"),
        ));
        if round == 0 {
            tokio::time::sleep(timeout * 2).await;
        }
    }

    // Assert
    assert_eq!(statuses, [200, 200, 200]);
}

#[actix_web::test]
async fn past_its_connections_a_client_is_refused_at_once_and_others_are_not() {
    // Arrange: five connections per address, eight in all.
    let (app, _db, _) = spawn_app_with(|s| {
        s.server.max_connections_per_address = 5;
        s.server.max_connections = 8;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(&app, "127.0.0.1").await);
    }
    // Let the instance count them before the next arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Act
    let started = Instant::now();
    let mut sixth = connect_from(&app, "127.0.0.1").await;
    let refused = read_response(&mut sixth).await;
    let refused_after = started.elapsed();
    let mut neighbour = connect_from(&app, "127.0.0.2").await;
    neighbour.write_all(HEALTH_CHECK).await.unwrap();
    let neighbour_status = status_of(&read_response(&mut neighbour).await.unwrap());
    let mut more = Vec::new();
    for _ in 0..2 {
        more.push(connect_from(&app, "127.0.0.3").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut past_total = connect_from(&app, "127.0.0.4").await;
    let past_total = read_response(&mut past_total).await;
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(&app, "127.0.0.1").await;
    again.write_all(HEALTH_CHECK).await.unwrap();
    let again_status = read_response(&mut again).await.map(|r| status_of(&r));

    // Assert
    let refused = refused.expect("a 503 before the close");
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(refused.contains(r#""code":"overloaded""#), "{refused}");
    assert!(closed_within(&mut sixth, Duration::from_secs(1)).await);
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
    assert_eq!(neighbour_status, 200, "another address is served");
    assert_eq!(
        past_total.map(|r| status_of(&r)),
        Some(503),
        "the total bounds everyone"
    );
    assert_eq!(
        again_status,
        Some(200),
        "a closed connection gives its place back"
    );
}

/// A PUT head declaring `length` bytes of body, with `Expect: 100-continue`, and `token` if any.
fn expecting_put(token: Option<&str>, length: usize) -> String {
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    format!(
        "PUT /api/email/update/expecting HTTP/1.1\r\nHost: test\r\n{authorization}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n"
    )
}

#[actix_web::test]
async fn a_body_too_large_or_unauthenticated_is_refused_before_it_is_sent() {
    // Arrange
    let (app, db, token) = spawn_app_with(|_| {}).await;
    let body = "to=a@x.com";

    // Act: a length above the limit (with a valid token), no token, a bad token, and a good
    // request; then a length above the limit without Expect, its body never sent.
    let mut answers = Vec::new();
    for head in [
        expecting_put(Some(&token), 10_000_000),
        expecting_put(None, body.len()),
        expecting_put(Some("1.not-a-token"), body.len()),
    ] {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        stream.write_all(head.as_bytes()).await.unwrap();
        answers.push(read_response(&mut stream).await.expect("an answer"));
    }
    let mut welcome = connect_from(&app, "127.0.0.1").await;
    welcome
        .write_all(expecting_put(Some(&token), body.len()).as_bytes())
        .await
        .unwrap();
    let interim = read_response(&mut welcome)
        .await
        .expect("an interim answer");
    welcome.write_all(body.as_bytes()).await.unwrap();
    let stored = read_response(&mut welcome).await.expect("a final answer");
    let mut unannounced = connect_from(&app, "127.0.0.1").await;
    let head = format!(
        "PUT /api/email/update/large HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 10000000\r\n\r\n"
    );
    unannounced.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let unannounced =
        tokio::time::timeout(Duration::from_secs(5), read_response(&mut unannounced)).await;

    // Assert
    let statuses: Vec<u16> = answers.iter().map(|answer| status_of(answer)).collect();
    assert_eq!(statuses, [413, 401, 401], "{answers:?}");
    assert!(answers[0].contains("payload_too_large"), "{}", answers[0]);
    assert!(!answers.iter().any(|answer| answer.contains("100 Continue")));
    assert_eq!(status_of(&interim), 100);
    assert_eq!(status_of(&stored), 201, "{stored}");
    let unannounced = unannounced
        .expect("answered before the body")
        .expect("an answer");
    assert_eq!(status_of(&unannounced), 413, "{unannounced}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(db.stored(&token, "large").await.is_none());
}

#[actix_web::test]
async fn metrics_on_a_listener_of_their_own_are_not_on_the_apis() {
    // Arrange
    let metrics_address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |s| s.server.metrics_bind = Some(metrics_address)).await;

    // Act
    let on_api = app.get("/metrics").await.status().as_u16();
    let apart = reqwest::get(format!("http://{metrics_address}/metrics"))
        .await
        .unwrap();
    let apart_status = apart.status().as_u16();
    let text = apart.text().await.unwrap();
    let health = app.get("/healthz").await.status().as_u16();

    // Assert
    assert_eq!(on_api, 404);
    assert_eq!(apart_status, 200);
    assert!(text.contains("email_sessions_"), "{text}");
    assert_eq!(health, 200);
}
