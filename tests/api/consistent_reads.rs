//! Every GET answer comes from one snapshot: its version, subject and recipients belong to the
//! same commit, even while writers change the session as fast as they can.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;

use crate::helpers::{TestApp, TestDb, emails, status_and_json};

#[actix_web::test]
async fn reads_never_mix_two_versions_under_concurrent_writes() {
    // Arrange: each writer on an instance of its own, waiting for each answer before the next
    // request, so nothing collapses: writes commit back to back, lined up by the row lock.
    let db = TestDb::create().await;
    let apps = TestApp::spawn_several(&db, 4, |_| {}).await;
    let token = db.create_user("alice").await;
    let app = &apps[0];
    app.put_form(&token, "hot", "to=k0-a@x.com,k0-b@x.com&subject=k0")
        .await;
    let writing = Arc::new(AtomicBool::new(true));

    // Act: writers give each write a key found in both its subject and its recipients;
    // readers read until the writers are done.
    let writers = (0..4).map(|w| {
        let (app, token) = (&apps[w], &token);
        async move {
            let mut answered = Vec::new();
            for n in 0..150 {
                let k = format!("k{w}x{n}");
                let body = format!("to={k}-a@x.com,{k}-b@x.com&subject={k}");
                let (status, session) =
                    status_and_json(app.put_form(token, "hot", &body).await).await;
                assert_eq!(status, 200, "{session}");
                answered.push((session["version"].as_i64().unwrap(), k));
            }
            answered
        }
    });
    let readers = (0..4).map(|r| {
        let (app, token, writing) = (&apps[r], &token, writing.clone());
        async move {
            let mut seen = Vec::new();
            while writing.load(Ordering::Relaxed) {
                let (status, session) = status_and_json(app.get_session(token, "hot").await).await;
                assert_eq!(status, 200);
                seen.push(session);
            }
            seen
        }
    });
    let writes = async {
        let answered = join_all(writers).await;
        writing.store(false, Ordering::Relaxed);
        answered
    };
    let (answered, seen) = futures_util::future::join(writes, join_all(readers)).await;

    // Assert
    let by_version: HashMap<i64, String> = answered.into_iter().flatten().collect();
    let reads: Vec<_> = seen.into_iter().flatten().collect();
    assert!(
        reads.len() > 100,
        "only {} reads overlapped the writes",
        reads.len()
    );
    let mut mixed = 0;
    for session in &reads {
        let k = session["subject"].as_str().unwrap().to_owned();
        let consistent = emails(session) == [format!("{k}-a@x.com"), format!("{k}-b@x.com")]
            && by_version
                .get(&session["version"].as_i64().unwrap())
                .is_none_or(|written| *written == k);
        if !consistent {
            mixed += 1;
        }
    }
    assert_eq!(
        mixed,
        0,
        "{mixed} of {} reads mixed two versions",
        reads.len()
    );
}
