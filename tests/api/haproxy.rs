//! Three `serve` processes behind a real HAProxy running `deploy/haproxy.cfg` (Debian's haproxy;
//! `.ci/run` installs it): duplicates of a session meet in one instance as they would on a single
//! one, and a rolling restart under load fails no request and loses no acknowledged write.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use loadtest::instance::Instance;

use crate::helpers::{TestDb, start_process_on};

/// A PUT's status and answered version, or why it got no answer.
type Answer = Result<(u16, Option<i64>), String>;

fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// HAProxy with the repository's configuration, in front of `servers`.
struct Haproxy {
    child: Child,
    url: String,
}

impl Haproxy {
    async fn start(servers: &[String; 3]) -> Haproxy {
        let bind = free_address();
        let child = Command::new("haproxy")
            .args([
                "-db",
                "-f",
                concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg"),
            ])
            .env("ES_BIND", &bind)
            .env("ES_SERVER_1", &servers[0])
            .env("ES_SERVER_2", &servers[1])
            .env("ES_SERVER_3", &servers[2])
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy runs (apt-get install haproxy)");
        let haproxy = Haproxy {
            child,
            url: format!("http://{bind}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{}/healthz", haproxy.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return haproxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("haproxy did not start");
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The instance's write transactions so far, from its /metrics.
async fn write_transactions(instance: &Instance) -> f64 {
    let text = reqwest::get(format!("{}/metrics", instance.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("email_sessions_write_transactions_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `duplicates` identical PUTs to each of `sessions` sessions, all at once, through `url`.
async fn duplicate_burst(url: &str, token: &str, prefix: &str, sessions: usize, duplicates: usize) {
    let http = reqwest::Client::new();
    let statuses = join_all((0..sessions * duplicates).map(|n| {
        let (http, session) = (&http, n % sessions);
        async move {
            http.put(format!("{url}/api/email/update/{prefix}-{session}"))
                .bearer_auth(token)
                .body(format!("to=r{session}@x.com&subject=S{session}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }))
    .await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
}

async fn three_instances(db: &TestDb, settings: &[(&str, &str)]) -> ([String; 3], Vec<Instance>) {
    let addresses = [free_address(), free_address(), free_address()];
    let mut instances = Vec::new();
    for address in &addresses {
        instances.push(start_process_on(db, settings, address).await);
    }
    (addresses, instances)
}

#[actix_web::test]
async fn duplicates_through_haproxy_cost_what_they_cost_on_one_instance() {
    // Arrange
    let db = TestDb::create().await;
    let token = db.create_user("alice").await;
    // HAProxy (and this test, on the same loopback address) carries 1,200 connections at once:
    // as a trusted proxy it counts toward the total connections only.
    let (addresses, instances) =
        three_instances(&db, &[("APP_SERVER__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let haproxy = Haproxy::start(&addresses).await;
    let (sessions, duplicates) = (60, 20);

    // Act: the same burst on one instance, then through HAProxy over three.
    let before = write_transactions(&instances[0]).await;
    duplicate_burst(&instances[0].url, &token, "one", sessions, duplicates).await;
    let on_one = write_transactions(&instances[0]).await - before;
    let mut before_all = 0.0;
    for instance in &instances {
        before_all += write_transactions(instance).await;
    }
    duplicate_burst(&haproxy.url, &token, "lb", sessions, duplicates).await;
    let mut after_all = 0.0;
    for instance in &instances {
        after_all += write_transactions(instance).await;
    }
    let through_haproxy = after_all - before_all;

    // Assert
    let requests = (sessions * duplicates) as f64;
    let (one, lb) = (on_one / requests, through_haproxy / requests);
    eprintln!("write transactions per request: one instance {one:.3}, through HAProxy {lb:.3}");
    assert!(
        lb <= 1.2 * one,
        "through HAProxy {lb:.3} write transactions per request, on one instance {one:.3}"
    );
}

#[actix_web::test]
async fn a_rolling_restart_behind_haproxy_fails_no_request_and_loses_no_write() {
    // Arrange: instances that stay in service for 2.5 s after SIGTERM (HAProxy needs 2 s).
    let settings = [("APP_SERVER__DRAIN_READINESS_GRACE_MS", "2500")];
    let db = TestDb::create().await;
    let token = Arc::new(db.create_user("alice").await);
    let (addresses, mut instances) = three_instances(&db, &settings).await;
    let haproxy = Haproxy::start(&addresses).await;
    let loading = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..6)
        .map(|writer| {
            let (url, token, loading) = (haproxy.url.clone(), token.clone(), loading.clone());
            actix_web::rt::spawn(async move {
                let http = reqwest::Client::new();
                let mut answers: Vec<(String, String, Answer)> = Vec::new();
                let mut round = 0;
                while loading.load(Ordering::Relaxed) {
                    let session = format!("roll-{}", (writer * 7 + round) % 30);
                    let subject = format!("w{writer}-r{round}");
                    let answer = http
                        .put(format!("{url}/api/email/update/{session}"))
                        .bearer_auth(token.as_str())
                        .body(format!("to={subject}@x.com&subject={subject}"))
                        .send()
                        .await;
                    let answer = match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let body: serde_json::Value = response.json().await.unwrap_or_default();
                            Ok((status, body["version"].as_i64()))
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    answers.push((session, subject, answer));
                    round += 1;
                }
                answers
            })
        })
        .collect();

    // Act: each instance in turn stopped with SIGTERM and started again on its address.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for index in 0..instances.len() {
        instances[index].signal("TERM").unwrap();
        let exited = instances[index]
            .wait(Duration::from_secs(20))
            .await
            .unwrap();
        assert!(exited.is_some_and(|status| status.success()), "{exited:?}");
        instances[index] = start_process_on(&db, &settings, &addresses[index]).await;
        // HAProxy takes it back after two good checks, a second apart.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    loading.store(false, Ordering::Relaxed);
    let answers: Vec<_> = join_all(writers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();

    // Assert: every request answered 2xx, and each session holds its last acknowledged version.
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, _, answer)| !matches!(answer, Ok((200 | 201, _))))
        .collect();
    assert!(
        answers.len() > 100,
        "the load ran: {} requests",
        answers.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        answers.len()
    );
    // Requests folded into one write are answered with that write's version, whose content is
    // the later request's: the stored content is one of those acknowledged with the last version.
    let mut last: BTreeMap<&str, (i64, Vec<&str>)> = BTreeMap::new();
    for (session, subject, answer) in &answers {
        if let Ok((_, Some(version))) = answer {
            let entry = last.entry(session).or_insert((*version, Vec::new()));
            if *version > entry.0 {
                *entry = (*version, Vec::new());
            }
            if *version == entry.0 {
                entry.1.push(subject);
            }
        }
    }
    for (session, (version, subjects)) in last {
        let stored = db.stored(&token, session).await.unwrap();
        assert_eq!(stored.version, version, "{session}");
        assert!(
            subjects.contains(&stored.subject.as_deref().unwrap_or_default()),
            "{session}: {:?} not among {subjects:?}",
            stored.subject
        );
    }
}
