//! Webhooks through the transactional outbox, against a real receiver on localhost
//! (`webhook_receiver`): one event per applied version over several instances and none for a
//! duplicate, every body signed and holding the content of its version, per-session order
//! through failures and an absent endpoint, and an instance killed while holding claims.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;

use crate::helpers::{TestApp, TestDb, cli, first_id, start_process, status_and_json, stdout_of};
use crate::webhook_receiver::{Answer, Delivery, TestReceiver};

/// Fast retries, so failures cost the tests little time.
const QUICK_RETRIES: [u64; 8] = [50, 100, 100, 200, 200, 200, 200, 200];

/// `(session, version)` pairs recorded in the outbox, one per row.
async fn outbox_rows(db: &TestDb) -> Vec<(String, i64)> {
    db.client()
        .await
        .query(
            "SELECT session_id, version FROM webhook_events WHERE kind = 'email_session.updated' \
             ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Per session, the versions of its accepted deliveries in arrival order.
fn accepted_versions(deliveries: &[Delivery]) -> BTreeMap<String, Vec<i64>> {
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for delivery in deliveries.iter().filter(|delivery| delivery.accepted) {
        versions
            .entry(delivery.session_id().to_owned())
            .or_default()
            .push(delivery.version());
    }
    versions
}

/// Attempts of a session's version v+1 made before its version v was accepted.
fn order_violations(deliveries: &[Delivery]) -> Vec<String> {
    let mut delivered: BTreeMap<String, i64> = BTreeMap::new();
    let mut violations = Vec::new();
    for delivery in deliveries {
        let session = delivery.session_id().to_owned();
        let done = delivered.get(&session).copied().unwrap_or(0);
        if delivery.version() > done + 1 {
            violations.push(format!(
                "{session} v{} attempted before v{} was delivered",
                delivery.version(),
                done + 1
            ));
        }
        if delivery.accepted {
            delivered.insert(session, done.max(delivery.version()));
        }
    }
    violations
}

#[actix_web::test]
async fn each_applied_version_over_three_instances_is_one_signed_event_with_its_content() {
    // Arrange
    let receiver = TestReceiver::start(Answer::Accept).await;
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 3, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
    })
    .await;
    let token = db.create_user("alice").await;

    // Act: per session, a burst of duplicates of A over the three instances, then of B, then
    // B again (no change); and one first-touch race of six different contents.
    for round in ["A", "B", "B"] {
        let puts = (0..10).flat_map(|session| (0..6).map(move |copy| (session, copy)));
        join_all(puts.map(|(session, copy)| {
            let app = &apps[copy % apps.len()];
            let body = format!("to={round}{session}@x.com&subject={round}{session}");
            let (token, id) = (&token, format!("s{session}"));
            async move { app.put_form(token, &id, &body).await.status().as_u16() }
        }))
        .await;
    }
    join_all((0..6).map(|writer| {
        let app = &apps[writer % apps.len()];
        let body = format!("to=w{writer}@x.com&subject=W{writer}");
        let token = &token;
        async move { app.put_form(token, "race", &body).await.status().as_u16() }
    }))
    .await;
    let (_, race) = status_and_json(apps[0].get_session(&token, "race").await).await;
    let race_versions = race["version"].as_i64().unwrap();
    let expected = 10 * 2 + race_versions as usize;
    let all_in = receiver
        .wait_for(20, |accepted| {
            accepted
                .iter()
                .map(|d| d.id.clone())
                .collect::<BTreeSet<_>>()
                .len()
                >= expected
        })
        .await;

    // Assert: the outbox holds exactly the applied versions.
    let rows = outbox_rows(&db).await;
    let mut want: Vec<(String, i64)> = (0..10)
        .flat_map(|session| [(format!("s{session}"), 1), (format!("s{session}"), 2)])
        .chain((1..=race_versions).map(|version| ("race".to_owned(), version)))
        .collect();
    want.sort();
    let mut got = rows.clone();
    got.sort();
    assert_eq!(
        got, want,
        "one event per applied version, none for duplicates"
    );
    assert!(all_in, "delivered: {}", receiver.accepted().len());
    let deliveries = receiver.deliveries();
    assert!(
        deliveries.iter().all(|d| d.verified),
        "every delivery is signed"
    );
    let versions = accepted_versions(&deliveries);
    for session in 0..10 {
        assert_eq!(versions[&format!("s{session}")], [1, 2], "s{session}");
    }
    assert_eq!(
        versions["race"],
        (1..=race_versions).collect::<Vec<_>>(),
        "the race's versions, in order"
    );
    for delivery in &deliveries {
        let data = &delivery.body["data"];
        assert_eq!(delivery.body["type"], "email_session.updated");
        assert!(delivery.body["timestamp"].is_string());
        assert!(data["user_id"].is_i64());
        if let Some(session) = delivery.session_id().strip_prefix('s') {
            let round = if delivery.version() == 1 { "A" } else { "B" };
            assert_eq!(data["subject"], format!("{round}{session}"), "{data}");
            assert_eq!(
                data["recipients"][0]["email"],
                format!("{round}{session}@x.com")
            );
        }
    }
    let last_race = deliveries
        .iter()
        .find(|d| d.session_id() == "race" && d.version() == race_versions)
        .unwrap();
    assert_eq!(last_race.body["data"]["subject"], race["subject"]);
    let ids: BTreeSet<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), expected, "one webhook-id per version");
    assert_eq!(
        deliveries.len(),
        expected,
        "with every attempt accepted, each event is attempted once, by one instance"
    );
}

#[actix_web::test]
async fn through_failures_and_an_absent_endpoint_every_version_arrives_in_order() {
    // Arrange: a third of the attempts fail.
    let receiver = TestReceiver::start(Answer::FailEvery(3)).await;
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 2, |settings| {
        receiver.configure(settings, &[50; 40]);
    })
    .await;
    let token = db.create_user("alice").await;

    // Act: three versions of ten sessions, the endpoint away in the middle of them.
    for version in 1..=3 {
        if version == 2 {
            receiver.stop().await;
        }
        join_all((0..10).map(|session| {
            let app = &apps[session % apps.len()];
            let body = format!("to=v{version}@x.com&subject=v{version}");
            let token = &token;
            async move {
                app.put_form(token, &format!("s{session}"), &body)
                    .await
                    .status()
                    .as_u16()
            }
        }))
        .await;
        if version == 2 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            receiver.restart();
        }
    }
    let all_in = receiver
        .wait_for(30, |accepted| {
            accepted_versions(accepted)
                .values()
                .filter(|versions| versions.contains(&3))
                .count()
                == 10
        })
        .await;

    // Assert
    assert!(
        all_in,
        "delivered: {:?}",
        accepted_versions(&receiver.deliveries())
    );
    let deliveries = receiver.deliveries();
    assert!(
        deliveries.iter().any(|d| !d.accepted),
        "the endpoint did fail some attempts"
    );
    assert_eq!(order_violations(&deliveries), Vec::<String>::new());
    for (session, versions) in accepted_versions(&deliveries) {
        let distinct: BTreeSet<i64> = versions.iter().copied().collect();
        assert_eq!(distinct, BTreeSet::from([1, 2, 3]), "{session}");
    }
}

#[actix_web::test]
async fn the_events_a_killed_instance_held_are_delivered_by_another() {
    // Arrange: the receiver takes every request and never answers, so the process holds its
    // claims when it is killed.
    let receiver = TestReceiver::start(Answer::Stall).await;
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let doomed = start_process(&db, &process_webhooks(&receiver, "1000")).await;
    let http = reqwest::Client::new();
    for session in 0..5 {
        let response = http
            .put(format!("{}/api/email/update/k{session}", doomed.url))
            .bearer_auth(&token)
            .body(format!("to=k{session}@x.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let held = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE lease_token IS NOT NULL",
        10,
        |held| held == 5,
    )
    .await;
    assert_eq!(held, 5, "the instance claimed its events");

    // Act
    doomed.signal("KILL").unwrap();
    drop(doomed);
    receiver.answer(Answer::Accept);
    let _heir = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
    })
    .await;
    let all_in = receiver.wait_for(20, |accepted| accepted.len() >= 5).await;

    // Assert
    assert!(all_in, "delivered: {}", receiver.accepted().len());
    let sessions: BTreeSet<String> = receiver
        .accepted()
        .iter()
        .map(|d| d.session_id().to_owned())
        .collect();
    assert_eq!(sessions.len(), 5);
    let undelivered = async || -> i64 {
        db.client()
            .await
            .query_one(
                "SELECT count(*) FROM webhook_events WHERE delivered_at IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    };
    // The receiver records a delivery before it answers, and the instance records the answer.
    let mut undelivered_now = undelivered().await;
    for _ in 0..100 {
        if undelivered_now == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        undelivered_now = undelivered().await;
    }
    assert_eq!(undelivered_now, 0);
}

#[actix_web::test]
async fn a_version_can_hold_one_event_only() {
    // Arrange
    let db = TestDb::create().await;
    let client = db.client().await;
    let user: i64 = client
        .query_one("INSERT INTO users (name, token_hash) VALUES ('u', decode(repeat('ab', 32), 'hex')) RETURNING id", &[])
        .await
        .unwrap()
        .get(0);

    // Act: the same version enqueued twice, as a retried or duplicated write would.
    for _ in 0..2 {
        client
            .execute(
                "SELECT enqueue_webhook_event(p_session_row_id => 1, p_user_id => $1, \
                 p_session_id => 's', p_kind => 'email_session.updated', p_version => 1, \
                 p_subject => NULL, p_emails => '{}', p_names => '{}', \
                 p_session_created_at => now(), p_session_updated_at => now())",
                &[&user],
            )
            .await
            .unwrap();
    }

    // Assert
    let events: i64 = client
        .query_one("SELECT count(*) FROM webhook_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1);
}

/// Waits (up to `seconds`) until `done` holds for the database's answer to `sql` (one count).
async fn wait_for_count(db: &TestDb, sql: &str, seconds: u64, done: impl Fn(i64) -> bool) -> i64 {
    let client = db.client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let count: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
        if done(count) || std::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_410_pauses_delivery_until_an_operator_resumes_it() {
    // Arrange
    let receiver = TestReceiver::start(Answer::Status(410)).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
    })
    .await;
    let token = db.create_user("alice").await;

    // Act
    app.put_form(&token, "gone", "to=a@x.com").await;
    app.put_form(&token, "other", "to=b@x.com").await;
    let paused = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_endpoint WHERE paused_at IS NOT NULL",
        10,
        |paused| paused == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts_while_paused = receiver.deliveries().len();
    let listed = stdout_of(&cli(&db, &["webhook", "list"]));
    receiver.answer(Answer::Accept);
    let resumed = stdout_of(&cli(&db, &["webhook", "resume"]));
    let all_in = receiver.wait_for(10, |accepted| accepted.len() == 2).await;

    // Assert
    assert_eq!(paused, 1);
    assert!(
        attempts_while_paused <= 2,
        "nothing is attempted while paused: {attempts_while_paused}"
    );
    assert_eq!(
        listed.lines().count(),
        3,
        "a header and two pending events: {listed}"
    );
    assert!(
        listed.lines().all(|line| !line.contains("dead")),
        "{listed}"
    );
    assert_eq!(resumed.trim(), "webhook delivery resumed");
    assert!(all_in, "delivered: {:?}", receiver.accepted());
}

#[actix_web::test]
async fn a_dead_event_is_listed_and_sent_again_from_the_command_line() {
    // Arrange: the endpoint fails every attempt, and the schedule allows two retries.
    let receiver = TestReceiver::start(Answer::Status(500)).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &[50, 50]);
    })
    .await;
    let token = db.create_user("alice").await;
    app.put_form(&token, "doomed", "to=a@x.com").await;

    // Act
    let dead = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE dead_at IS NOT NULL",
        10,
        |dead| dead == 1,
    )
    .await;
    let listed = stdout_of(&cli(&db, &["webhook", "list", "--dead"]));
    let id = first_id(&listed);
    let unknown = cli(&db, &["webhook", "retry", "999999"]);
    receiver.answer(Answer::Accept);
    let retried = stdout_of(&cli(&db, &["webhook", "retry", &id]));
    let all_in = receiver.wait_for(10, |accepted| accepted.len() == 1).await;
    let none_left = stdout_of(&cli(&db, &["webhook", "retry", "--all-dead"]));

    // Assert
    assert_eq!(dead, 1);
    assert_eq!(
        receiver.deliveries().iter().filter(|d| !d.accepted).count(),
        3,
        "the first attempt and two retries"
    );
    let row: Vec<&str> = listed
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(
        (row.get(1), row.get(3), row.get(4), row.get(6), row.get(7)),
        (
            Some(&"email_session.updated"),
            Some(&"doomed"),
            Some(&"1"),
            Some(&"3"),
            Some(&"dead")
        ),
        "{listed}"
    );
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("there is no dead webhook event 999999")
    );
    assert_eq!(retried.trim(), format!("webhook event {id} is due again"));
    assert!(all_in);
    assert_eq!(none_left.trim(), "0 dead webhook events are due again");
}

#[actix_web::test]
async fn a_deletion_is_an_event_after_the_versions_and_an_identity_user_is_named() {
    // Arrange: a user provisioned from an identity provider, with an API token of its own.
    let receiver = TestReceiver::start(Answer::Accept).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
    })
    .await;
    let user: i64 = db
        .client()
        .await
        .query_one(
            "SELECT provision_identity(p_issuer => 'https://login.example', p_subject => 'person-7')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let token = stdout_of(&cli(
        &db,
        &["token", "create", "--user-id", &user.to_string()],
    ))
    .trim()
    .to_owned();

    // Act: two versions, the deletion, and the session written afresh.
    app.put_form(&token, "d", "to=a@x.com&subject=one").await;
    app.put_form(&token, "d", "to=a@x.com&subject=two").await;
    let deleted = app
        .http
        .delete(format!("{}/api/email/sessions/d", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    app.put_form(&token, "d", "to=b@x.com&subject=again").await;
    let all_in = receiver.wait_for(10, |accepted| accepted.len() == 4).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();

    // Assert
    for metric in [
        "email_sessions_webhook_attempts_total{outcome=\"delivered\"}",
        "email_sessions_webhook_attempt_duration_seconds_bucket",
        "email_sessions_webhook_events_pending",
        "email_sessions_webhook_oldest_pending_age_seconds",
    ] {
        assert!(metrics.contains(metric), "{metric} is not in /metrics");
    }
    assert_eq!(deleted, 204);
    assert!(all_in, "delivered: {:?}", receiver.accepted());
    let seen: Vec<(String, i64, String)> = receiver
        .accepted()
        .iter()
        .map(|d| {
            (
                d.body["type"].as_str().unwrap().to_owned(),
                d.version(),
                d.body["data"]["subject"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("email_session.updated", 1, "one"),
        ("email_session.updated", 2, "two"),
        ("email_session.deleted", 2, "-"),
        ("email_session.updated", 1, "again"),
    ]
    .map(|(kind, version, subject)| (kind.to_owned(), version, subject.to_owned()));
    assert_eq!(seen, expected);
    for delivery in receiver.accepted() {
        let data = &delivery.body["data"];
        assert_eq!(data["session_id"], "d");
        assert_eq!(data["user_id"], user);
        assert_eq!(data["identity"]["issuer"], "https://login.example");
        assert_eq!(data["identity"]["subject"], "person-7");
    }
}

#[actix_web::test]
async fn the_readme_receiver_example_takes_each_version_once_and_refuses_forgeries() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    // Arrange: examples/webhook-receiver/receiver.py on a free port, with a secret of its own.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        )
    };
    let mut receiver = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/webhook-receiver/receiver.py"
        ))
        .arg(format!("127.0.0.1:{port}"))
        .env("WEBHOOK_SECRET", &secret)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the example receiver");
    let (lines, printed) = std::sync::mpsc::channel::<String>();
    let stdout = receiver.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let url = format!("http://127.0.0.1:{port}/hooks");
    let http = reqwest::Client::new();
    let mut listening = false;
    for _ in 0..100 {
        if http.post(&url).body("{}").send().await.is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        settings.webhooks.url = url.clone();
        settings.webhooks.secret = Some(secret.clone().into());
        settings.webhooks.poll_interval = Duration::from_millis(50);
    })
    .await;
    let token = db.create_user("alice").await;

    // Act
    app.put_form(&token, "ex", "to=a@x.com&subject=one").await;
    app.put_form(&token, "ex", "to=a@x.com&subject=two").await;
    let forged = http
        .post(&url)
        .header("webhook-id", "evt_1")
        .header(
            "webhook-timestamp",
            time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
        )
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body(r#"{"type":"email_session.updated","data":{}}"#)
        .send()
        .await
        .unwrap()
        .status();
    // The delivery loop runs on this very thread: wait without blocking it.
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 2 && std::time::Instant::now() < deadline {
        match printed.try_recv() {
            Ok(line) => events.push(serde_json::from_str::<serde_json::Value>(&line).unwrap()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let _ = receiver.kill();
    let _ = receiver.wait();

    // Assert
    assert!(listening);
    assert_eq!(forged, 401);
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2], "{events:?}");
}

#[test]
fn webhook_settings_are_refused_before_anything_starts_without_quoting_the_secret() {
    let short_secret = "whsec_c2hvcnQtc2VjcmV0";
    let good_secret = format!("whsec_{}", "QUFB".repeat(8));
    for (url, secret, named) in [
        ("http://127.0.0.1:9/hooks", None, "APP_WEBHOOKS__SECRET"),
        (
            "http://127.0.0.1:9/hooks",
            Some(short_secret),
            "webhooks.secret",
        ),
        (
            "http://hooks.example/in",
            Some(good_secret.as_str()),
            "https",
        ),
    ] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_email-sessions"));
        command
            .arg("migrate")
            .env("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nothing")
            .env("APP_WEBHOOKS__URL", url)
            .env_remove("APP_WEBHOOKS__SECRET");
        if let Some(secret) = secret {
            command.env("APP_WEBHOOKS__SECRET", secret);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} {secret:?}");
        assert!(stderr.contains(named), "{named}: {stderr}");
        if let Some(secret) = secret {
            assert!(
                !stderr.contains(secret.trim_start_matches("whsec_")),
                "{stderr}"
            );
        }
    }
}

/// Settings of a `serve` process delivering to `receiver`, its attempts lasting up to
/// `timeout_ms`.
fn process_webhooks<'a>(
    receiver: &'a TestReceiver,
    timeout_ms: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("APP_WEBHOOKS__URL", receiver.url.as_str()),
        ("APP_WEBHOOKS__SECRET", receiver.secret.as_str()),
        ("APP_WEBHOOKS__TIMEOUT_MS", timeout_ms),
        ("APP_WEBHOOKS__POLL_INTERVAL_MS", "50"),
        ("APP_WEBHOOKS__RETRY_DELAYS_MS", "50,50,50,50,50,50,50,50"),
    ]
}

#[actix_web::test]
async fn a_graceful_stop_gives_back_the_claims_it_could_not_finish() {
    // Arrange: attempts that would hang for 20 s, a shutdown timeout of 1 s.
    let receiver = TestReceiver::start(Answer::Stall).await;
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    let mut settings = process_webhooks(&receiver, "20000");
    settings.push(("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "1"));
    let mut stopping = start_process(&db, &settings).await;
    let http = reqwest::Client::new();
    for session in 0..3 {
        http.put(format!("{}/api/email/update/g{session}", stopping.url))
            .bearer_auth(&token)
            .body("to=g@x.com")
            .send()
            .await
            .unwrap();
    }
    let held = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE lease_token IS NOT NULL",
        10,
        |held| held == 3,
    )
    .await;

    // Act
    stopping.signal("TERM").unwrap();
    let exited = stopping.wait(Duration::from_secs(15)).await.unwrap();
    let released: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM webhook_events WHERE lease_token IS NULL AND attempts = 0 \
             AND next_attempt_at <= now()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    receiver.answer(Answer::Accept);
    let _heir = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
    })
    .await;
    // Well within the 40 s lease the claims would otherwise have held.
    let all_in = receiver.wait_for(5, |accepted| accepted.len() >= 3).await;

    // Assert
    assert_eq!(held, 3);
    assert!(exited.is_some_and(|status| status.success()), "{exited:?}");
    assert_eq!(
        released, 3,
        "each claim given back, its attempt not counted"
    );
    assert!(all_in, "delivered: {}", receiver.accepted().len());
}

#[actix_web::test]
async fn a_database_outage_during_delivery_loses_no_event() {
    // Arrange: a cluster of this test's own, since it will be stopped; attempts in flight when
    // it stops, which can then not be recorded.
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "webhook-outage-{}",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let _cluster = pg_embedded::EmbeddedPostgres::start(&root).await.unwrap();
    let admin = _cluster.admin_url().parse().unwrap();
    let db = TestDb::create_on(&admin).await;
    let receiver = TestReceiver::start(Answer::Stall).await;
    let app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
        settings.webhooks.timeout = Duration::from_millis(700);
        settings.database.connect_timeout = Duration::from_millis(300);
        settings.database.pool_wait_timeout = Duration::from_millis(300);
    })
    .await;
    let token = db.create_user("alice").await;
    for session in 0..4 {
        let status = app
            .put_form(&token, &format!("o{session}"), "to=o@x.com")
            .await
            .status();
        assert_eq!(status, 201);
    }
    let held = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE lease_token IS NOT NULL",
        10,
        |held| held == 4,
    )
    .await;

    // Act: the database stops while the attempts hang, and comes back after they timed out.
    pg_embedded::EmbeddedPostgres::stop_at(&root).await.unwrap();
    receiver.answer(Answer::Accept);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _restarted = pg_embedded::EmbeddedPostgres::start(&root).await.unwrap();
    let all_in = receiver
        .wait_for(20, |accepted| {
            accepted
                .iter()
                .map(Delivery::session_id)
                .collect::<BTreeSet<_>>()
                .len()
                == 4
        })
        .await;
    let undelivered = wait_for_count(
        &db,
        "SELECT count(*) FROM webhook_events WHERE delivered_at IS NULL",
        10,
        |undelivered| undelivered == 0,
    )
    .await;

    // Assert
    assert_eq!(held, 4);
    assert!(all_in, "delivered: {:?}", receiver.accepted());
    assert_eq!(undelivered, 0);
}

#[actix_web::test]
async fn a_failing_session_holds_back_only_itself_and_retry_after_is_honoured() {
    // Arrange: one session's events always fail; the others' are delivered.
    let receiver = TestReceiver::start(Answer::FailSession("stuck")).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &[50; 100]);
    })
    .await;
    let token = db.create_user("alice").await;

    // Act 1
    for version in 1..=2 {
        for session in ["stuck", "free-1", "free-2"] {
            let body = format!("to=v{version}@x.com&subject=v{version}");
            app.put_form(&token, session, &body).await;
        }
    }
    let others_in = receiver
        .wait_for(10, |accepted| {
            accepted
                .iter()
                .filter(|d| d.session_id().starts_with("free"))
                .count()
                == 4
        })
        .await;
    // Time for the failing session's retries, which could let its v2 slip through.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stuck_attempts: Vec<i64> = receiver
        .deliveries()
        .iter()
        .filter(|d| d.session_id() == "stuck")
        .map(Delivery::version)
        .collect();

    // Act 2: the endpoint asks for 2 s of quiet.
    receiver.answer(Answer::Unavailable {
        retry_after_secs: 2,
    });
    let asked_at = receiver.deliveries().len();
    let asked = receiver
        .wait_for(5, |_| receiver.deliveries().len() > asked_at)
        .await;
    receiver.answer(Answer::Accept);
    let asked_delivery = receiver.deliveries()[asked_at].clone();
    let stuck_in = receiver
        .wait_for(10, |accepted| {
            accepted
                .iter()
                .filter(|d| d.session_id() == "stuck")
                .count()
                == 2
        })
        .await;
    let retried = receiver
        .deliveries()
        .into_iter()
        .skip(asked_at + 1)
        .find(|d| d.id == asked_delivery.id)
        .expect("the refused event was attempted again");

    // Assert
    assert!(others_in, "the other sessions' versions were delivered");
    assert!(stuck_attempts.len() > 2, "{stuck_attempts:?}");
    assert!(
        stuck_attempts.iter().all(|&version| version == 1),
        "the failing session's v2 waits behind its v1: {stuck_attempts:?}"
    );
    assert!(asked);
    assert!(stuck_in);
    let waited = retried.at - asked_delivery.at;
    assert!(
        waited >= Duration::from_secs(2),
        "Retry-After: 2 was honoured: {waited:?}"
    );
}

#[actix_web::test]
async fn delivered_events_are_deleted_after_the_days_they_are_kept() {
    // Arrange: one event delivered eight days ago, one yesterday, one dead long ago.
    let receiver = TestReceiver::start(Answer::Accept).await;
    let db = TestDb::create().await;
    let user = db.create_user("alice").await;
    let user_id = db.user_of(&user).await;
    db.client()
        .await
        .execute(
            "INSERT INTO webhook_events (session_row_id, user_id, session_id, kind, version,
                                         delivered_at, dead_at)
             VALUES (1, $1, 'old', 'email_session.deleted', 1, now() - interval '8 days', NULL),
                    (2, $1, 'recent', 'email_session.deleted', 1, now() - interval '1 day', NULL),
                    (3, $1, 'dead', 'email_session.deleted', 1, NULL, now() - interval '30 days')",
            &[&user_id],
        )
        .await
        .unwrap();

    // Act: an instance's first housekeeping runs as its delivery loop starts.
    let _app = TestApp::spawn_on(&db, |settings| {
        receiver.configure(settings, &QUICK_RETRIES);
        settings.webhooks.keep_delivered_days = 7;
    })
    .await;
    let left = wait_for_count(&db, "SELECT count(*) FROM webhook_events", 5, |left| {
        left == 2
    })
    .await;

    // Assert
    assert_eq!(left, 2);
    let kept: Vec<String> = db
        .client()
        .await
        .query("SELECT session_id FROM webhook_events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(kept, ["recent", "dead"]);
}
