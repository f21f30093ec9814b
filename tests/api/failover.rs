//! A primary and its streaming standby (`pg_basebackup -R`, synchronous replication): the primary
//! dies under writes and the standby is promoted. The instance, configured with both hosts and
//! `target_session_attrs=read-write`, answers 503 meanwhile (never 500, never a hang), writes
//! again within 5 s of the promotion without a restart, and no acknowledged write is lost.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pg_embedded::EmbeddedPostgres;
use tokio_postgres::config::{Host, TargetSessionAttrs};

use crate::helpers::{TestApp, TestDb};

/// One PUT: its session, subject, status (0: no answer), answered version, when it ended, and
/// how long it took.
struct Put {
    session: String,
    subject: String,
    status: u16,
    version: Option<i64>,
    ended: Instant,
    took: Duration,
}

#[actix_web::test]
async fn a_promoted_standby_takes_the_writes_within_seconds_and_loses_none() {
    // Arrange: a primary that waits for its standby on every commit.
    // Roots directly under the target's tmp/, where `.ci/run` stops whatever is left running.
    let run = hex::encode(rand::random::<[u8; 4]>());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let primary = EmbeddedPostgres::start(&tmp.join(format!("failover-{run}-primary")))
        .await
        .unwrap();
    let admin: tokio_postgres::Config = primary.admin_url().parse().unwrap();
    let db = TestDb::create_on(&admin).await;
    let standby = primary
        .start_standby(&tmp.join(format!("failover-{run}-standby")))
        .await
        .unwrap();
    let (primary_admin, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    actix_web::rt::spawn(connection);
    let commit_time = async |client: &tokio_postgres::Client| {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS commits (n int)")
            .await
            .unwrap();
        let started = Instant::now();
        for n in 0..200 {
            client
                .execute("INSERT INTO commits VALUES ($1)", &[&n])
                .await
                .unwrap();
        }
        started.elapsed() / 200
    };
    let asynchronous_commit = commit_time(&primary_admin).await;
    for statement in [
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
        "SELECT pg_reload_conf()",
    ] {
        primary_admin.batch_execute(statement).await.unwrap();
    }
    let mut synchronous = false;
    for _ in 0..100 {
        let row = primary_admin
            .query_opt(
                "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'",
                &[],
            )
            .await
            .unwrap();
        if row.is_some() {
            synchronous = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synchronous, "the standby replicates synchronously");
    // A figure for the README, not a bound: this machine is shared.
    let synchronous_commit = commit_time(&primary_admin).await;
    eprintln!(
        "one commit: {asynchronous_commit:?} without the standby's flush, {synchronous_commit:?} with it"
    );
    drop(primary_admin);
    let token = Arc::new(db.create_user("alice").await);
    // What operators put into DATABASE_URL: both hosts, and only a read-write one will do.
    let mut both = db.config.clone();
    let standby_config: tokio_postgres::Config = standby.admin_url().parse().unwrap();
    for host in standby_config.get_hosts() {
        if let Host::Unix(path) = host {
            both.host_path(path);
        }
    }
    both.target_session_attrs(TargetSessionAttrs::ReadWrite);
    let app = Arc::new(
        TestApp::spawn_on_config(&both, |settings| {
            settings.database.connect_timeout = Duration::from_millis(500);
            settings.database.pool_wait_timeout = Duration::from_millis(500);
        })
        .await,
    );
    let writing = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (app, token, writing) = (app.clone(), token.clone(), writing.clone());
            actix_web::rt::spawn(async move {
                let mut puts = Vec::new();
                let mut round = 0;
                while writing.load(Ordering::Relaxed) {
                    let session = format!("ha-{}", (writer + round) % 8);
                    let subject = format!("w{writer}-r{round}");
                    let started = Instant::now();
                    let response = app
                        .put_form(
                            &token,
                            &session,
                            &format!("to={subject}@x.com&subject={subject}"),
                        )
                        .await;
                    let status = response.status().as_u16();
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    puts.push(Put {
                        session,
                        subject,
                        status,
                        version: body["version"].as_i64(),
                        ended: Instant::now(),
                        took: started.elapsed(),
                    });
                    round += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                puts
            })
        })
        .collect();

    // Act: the primary dies, the standby is promoted 2 s later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    primary.crash().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let promoting = Instant::now();
    standby.promote().await.unwrap();
    let promoted = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    writing.store(false, Ordering::Relaxed);
    let puts: Vec<Put> = join_all(writers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();

    // Assert
    let unexpected: Vec<(u16, &str)> = puts
        .iter()
        .filter(|put| ![200, 201, 503].contains(&put.status))
        .map(|put| (put.status, put.session.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 200, 201 and 503: {unexpected:?}"
    );
    let slowest = puts.iter().map(|put| put.took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "a write hung for {slowest:?}"
    );
    let outage: Vec<&Put> = puts.iter().filter(|put| put.status == 503).collect();
    assert!(
        !outage.is_empty(),
        "writes were refused while there was no primary"
    );
    let resumed = puts
        .iter()
        .filter(|put| put.status != 503 && put.ended > promoting)
        .map(|put| put.ended)
        .min()
        .expect("writes resumed");
    let resumed_after = resumed.saturating_duration_since(promoted);
    eprintln!(
        "failover: {} writes refused with 503, first write {resumed_after:?} after the promotion",
        outage.len()
    );
    assert!(resumed_after < Duration::from_secs(5), "{resumed_after:?}");
    let last_second = puts
        .iter()
        .filter(|put| put.ended > promoted + Duration::from_secs(5));
    assert!(
        last_second.clone().count() > 10 && last_second.clone().all(|put| put.status < 300),
        "once resumed, no connection to a dead or read-only server is left to fail a write"
    );
    let mut last: BTreeMap<&str, (i64, Vec<&str>)> = BTreeMap::new();
    for put in puts.iter().filter(|put| put.status < 300) {
        let version = put.version.unwrap();
        let entry = last.entry(&put.session).or_insert((version, Vec::new()));
        if version > entry.0 {
            *entry = (version, Vec::new());
        }
        if version == entry.0 {
            entry.1.push(&put.subject);
        }
    }
    // The test database, reached through whichever host is the primary now.
    let promoted_db = TestDb {
        config: both.clone(),
    };
    for (session, (version, subjects)) in last {
        let stored = promoted_db.stored(&token, session).await.unwrap();
        assert_eq!(
            stored.version, version,
            "{session}: an acknowledged version was lost"
        );
        assert!(subjects.contains(&stored.subject.as_deref().unwrap_or_default()));
    }
    standby.stop().await.unwrap();
}
