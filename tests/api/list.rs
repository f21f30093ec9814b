//! `GET /api/email/sessions`: the caller's sessions, newest first, page by page from an opaque
//! cursor; a walk under concurrent writes lists every session that existed when it began
//! exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb, emails, spawn_app, status_and_json};

/// Every page of `token`'s sessions, `limit` at a time, each page's body in order.
async fn walk(app: &TestApp, token: &str, limit: u32, pause: Duration) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            None => format!("limit={limit}"),
            Some(cursor) => format!("limit={limit}&cursor={cursor}"),
        };
        let (status, page) = status_and_json(app.list_sessions(token, &query).await).await;
        assert_eq!(status, 200, "{page}");
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        tokio::time::sleep(pause).await;
    }
}

fn session_ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page["sessions"].as_array().unwrap().iter())
        .map(|session| session["session_id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn pages_list_only_the_callers_sessions_newest_first() {
    // Arrange
    let (app, db, alice) = spawn_app().await;
    let bob = db.create_user("bob").await;
    for n in 0..7 {
        let body = format!("to=a{n}@x.com&subject=S{n}");
        assert_eq!(
            app.put_form(&alice, &format!("s{n}"), &body).await.status(),
            201
        );
    }
    for id in ["s3", "bob-only"] {
        assert_eq!(app.put_form(&bob, id, "to=b@y.org").await.status(), 201);
    }

    // Act
    let pages = walk(&app, &alice, 3, Duration::ZERO).await;
    let (default_status, default_page) = status_and_json(app.list_sessions(&alice, "").await).await;
    let bobs = walk(&app, &bob, 100, Duration::ZERO).await;

    // Assert
    let sizes: Vec<usize> = pages
        .iter()
        .map(|page| page["sessions"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(
        session_ids(&pages),
        ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    );
    let first = &pages[0]["sessions"][0];
    assert_eq!(
        (first["subject"].as_str(), first["version"].as_i64()),
        (Some("S6"), Some(1))
    );
    assert_eq!(emails(first), ["a6@x.com"]);
    assert!(pages[2]["next_cursor"].is_null());
    assert_eq!(default_status, 200);
    assert_eq!(default_page["sessions"].as_array().unwrap().len(), 7);
    assert!(default_page["next_cursor"].is_null());
    assert_eq!(session_ids(&bobs), ["bob-only", "s3"]);
    assert_eq!(emails(&bobs[0]["sessions"][1]), ["b@y.org"]);
}

#[actix_web::test]
async fn bad_limits_and_cursors_are_400_naming_the_parameter() {
    // Arrange
    let (app, _db, token) = spawn_app().await;
    app.put_form(&token, "one", "to=a@x.com").await;

    // Act
    let mut answers = Vec::new();
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=",
        "limit=5&limit=6",
        "cursor=!!!",
        "cursor=eA",
        "cursor=",
    ] {
        let (status, body) = status_and_json(app.list_sessions(&token, query).await).await;
        answers.push((query, status, body["error"]["code"].clone()));
    }
    let anonymous = app
        .http
        .get(format!("{}/api/email/sessions", app.address))
        .send()
        .await
        .unwrap();
    let head = app
        .http
        .head(format!("{}/api/email/sessions", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    // Assert
    for (query, status, code) in answers {
        let expected = if query.starts_with("limit") {
            "invalid_limit"
        } else {
            "invalid_cursor"
        };
        assert_eq!((status, code.as_str()), (400, Some(expected)), "{query}");
    }
    assert_eq!(anonymous.status(), 401);
    assert_eq!(head.status(), 200);
}

#[actix_web::test]
async fn a_walk_under_concurrent_creates_and_updates_lists_every_earlier_session_once() {
    // Arrange: 60 sessions, then writers on three instances creating new sessions (which sort
    // before every page already read) and rewriting old ones while the walk runs.
    let db = TestDb::create().await;
    let apps = Arc::new(TestApp::spawn_several(&db, 3, |_| {}).await);
    let token = Arc::new(db.create_user("alice").await);
    let earlier: Vec<String> = (0..60).map(|n| format!("earlier-{n}")).collect();
    for id in &earlier {
        let body = format!("to={id}-0@x.com&subject={id}-0");
        assert_eq!(apps[0].put_form(&token, id, &body).await.status(), 201);
    }
    let walking = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..3)
        .map(|writer| {
            let (apps, token, walking) = (apps.clone(), token.clone(), walking.clone());
            actix_web::rt::spawn(async move {
                let mut round = 1;
                while walking.load(Ordering::Relaxed) {
                    let app = &apps[writer];
                    let new_id = format!("new-{writer}-{round}");
                    app.put_form(&token, &new_id, "to=n@x.com").await;
                    let old_id = format!("earlier-{}", (round * 7 + writer) % 60);
                    let body = format!("to={old_id}-{round}@x.com&subject={old_id}-{round}");
                    app.put_form(&token, &old_id, &body).await;
                    round += 1;
                }
                round
            })
        })
        .collect();

    // Act
    let pages = walk(&apps[1], &token, 7, Duration::from_millis(15)).await;
    walking.store(false, Ordering::Relaxed);
    let rounds: Vec<usize> = join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // Assert: each earlier session once; each listed session as one commit left it (its
    // subject and its one recipient name the same round).
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in session_ids(&pages) {
        *seen.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(repeated.is_empty(), "listed more than once: {repeated:?}");
    let missing: Vec<_> = earlier
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "never listed: {missing:?}");
    for session in pages
        .iter()
        .flat_map(|page| page["sessions"].as_array().unwrap().iter())
        .filter(|session| {
            session["session_id"]
                .as_str()
                .unwrap()
                .starts_with("earlier-")
        })
    {
        let subject = session["subject"].as_str().unwrap();
        assert_eq!(emails(session), [format!("{subject}@x.com")], "{session}");
    }
    assert!(
        rounds.iter().all(|&round| round > 3),
        "the writers wrote during the walk: {rounds:?}"
    );
}
