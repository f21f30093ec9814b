//! SIGTERM during a burst: every request gets an answer or is refused at
//! the door, and every acknowledged write is in the database.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::helpers::{TestDb, start_process, wait_until};

#[actix_web::test]
async fn sigterm_during_a_burst_loses_no_acknowledged_write() {
    // Arrange
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    // A grace long enough for accepted connections to reach a worker even on a loaded
    // machine: what is tested is that none is dropped, not how fast they get there.
    let mut service = start_process(
        &db,
        &[
            ("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "10"),
            ("APP_SERVER__DRAIN_GRACE_MS", "1500"),
        ],
    )
    .await;
    // A fresh connection per request: a reused keep-alive connection closed
    // by the server at shutdown is a client-side race, not what we test.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // The signal is sent as request 100 starts, whatever the scheduler does
    // to the timers: requests before it are accepted, the ones right after
    // race with the door, and the last hundred start once a probe saw the
    // door refuse a connection (a wall-clock wait lost that race on a loaded
    // CI machine).
    let (signalled, signal_seen) = tokio::sync::watch::channel(None::<Instant>);
    let (door_closed, door_closed_seen) = tokio::sync::watch::channel(false);
    let service_ref = &service;
    let requests = (0..400u64).map(|i| {
        let (http, token, address) = (&http, &token, &service_ref.url);
        let (signalled, mut signal_seen) = (&signalled, signal_seen.clone());
        let mut door_closed_seen = door_closed_seen.clone();
        async move {
            actix_web::rt::time::sleep(Duration::from_micros(i * 500)).await;
            if i == 100 {
                service_ref.signal("TERM").unwrap();
                signalled.send_replace(Some(Instant::now()));
            } else if i > 100 {
                signal_seen.wait_for(Option::is_some).await.unwrap();
                if i >= 300 {
                    door_closed_seen.wait_for(|closed| *closed).await.unwrap();
                }
            }
            let result = http
                .put(format!("{address}/api/email/update/drain-{i}"))
                .bearer_auth(token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("to=r{i}@x.com,s{i}@x.com&subject=S{i}"))
                .send()
                .await;
            if let Err(error) = &result
                && !error.is_connect()
            {
                eprintln!("drain-{i}: {error:?}");
            }
            (i, result.map(|r| r.status().as_u16()))
        }
    });

    let probe = async {
        let mut signal_seen = signal_seen.clone();
        signal_seen.wait_for(Option::is_some).await.unwrap();
        let door = service_ref.url.trim_start_matches("http://");
        wait_until("the door to refuse connections", || async {
            tokio::net::TcpStream::connect(door).await.is_err()
        })
        .await;
        door_closed.send_replace(true);
    };

    // Act: stop the service a quarter of the way into the burst.
    let (results, ()) = futures_util::join!(join_all(requests), probe);
    let signalled_at = signalled.borrow().expect("request 100 sent the signal");
    let exit = service.wait(Duration::from_secs(15)).await.unwrap();
    let drain_time = signalled_at.elapsed();

    // Assert
    let exit = exit.expect("the service exits within its shutdown timeout");
    assert!(exit.success(), "clean exit, got {exit:?}");
    let (mut acknowledged, mut refused, mut other) = (0, 0, 0);
    for (i, result) in &results {
        let stored = db.stored(&token, &format!("drain-{i}")).await;
        match result {
            Ok(status) if (200..300).contains(status) => {
                acknowledged += 1;
                let stored = stored.unwrap_or_else(|| panic!("acknowledged drain-{i} is missing"));
                assert_eq!(
                    stored.recipients,
                    [format!("r{i}@x.com"), format!("s{i}@x.com")]
                );
            }
            Ok(status) => panic!("drain-{i} got {status}"),
            Err(error) => {
                if error.is_connect() {
                    refused += 1;
                } else {
                    other += 1;
                }
                // Not acknowledged: absent, or stored whole, never partial.
                if let Some(stored) = stored {
                    assert_eq!(stored.recipients.len(), 2);
                }
            }
        }
    }
    let persisted = db
        .client()
        .await
        .query_one("SELECT count(*) FROM email_sessions", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    eprintln!(
        "drain figures: requests=400 acknowledged={acknowledged} refused={refused} \
         other_transport_errors={other} persisted={persisted} drain_time={drain_time:?}"
    );
    assert!(
        acknowledged > 0 && refused > 0,
        "the signal landed mid-burst"
    );
    assert_eq!(
        other, 0,
        "no accepted request was dropped without an answer"
    );
    assert!(persisted >= acknowledged as i64);
}
