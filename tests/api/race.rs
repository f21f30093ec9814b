//! First touch with different contents: concurrent PUTs to a session that
//! does not exist yet. One row, no 5xx, versions gapless from 1, and the
//! stored content is the one answered with the highest version.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb, emails, spawn_app, status_and_json};

/// Fires `count` different updates at `session_id`, spread over `apps`, and
/// checks the race invariants in the database.
pub async fn assert_first_touch_race_is_clean(
    apps: &[&TestApp],
    db: &TestDb,
    token: &str,
    session_id: &str,
    count: usize,
) {
    // Overlapping lists (shared addresses in different orders) are what a
    // missing row lock turns into duplicate-key errors or mixed lists.
    let bodies: Vec<String> = (0..count)
        .map(|i| match i % 2 {
            0 => format!("to=shared1@x.com,shared2@x.com,own{i}@x.com&subject=S{i}"),
            _ => format!("to=own{i}@x.com,SHARED2@x.com,shared1@x.com&subject=S{i}"),
        })
        .collect();
    let responses =
        join_all((0..count).map(|i| apps[i % apps.len()].put_form(token, session_id, &bodies[i])))
            .await;

    let mut by_version: BTreeMap<i64, Value> = BTreeMap::new();
    for response in responses {
        let (status, session) = status_and_json(response).await;
        assert!(status == 200 || status == 201, "status {status}: {session}");
        let version = session["version"].as_i64().unwrap();
        if let Some(seen) = by_version.get(&version) {
            assert_eq!(seen, &session, "two answers with version {version} differ");
        }
        by_version.insert(version, session);
    }
    let versions: Vec<i64> = by_version.keys().copied().collect();
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, expected, "versions seen are gapless from 1");
    assert_eq!(db.session_rows(session_id).await, 1);
    let (&highest, last) = by_version.last_key_value().unwrap();
    let stored = db.stored(token, session_id).await.unwrap();
    assert_eq!(stored.version, highest);
    assert_eq!(stored.recipients, emails(last));
    assert_eq!(stored.subject.as_deref(), last["subject"].as_str());
}

#[actix_web::test]
async fn concurrent_first_touches_with_different_contents() {
    let (app, db, token) = spawn_app().await;
    assert_first_touch_race_is_clean(&[&app], &db, &token, "race", 100).await;
}
