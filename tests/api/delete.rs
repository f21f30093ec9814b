//! The owner deletes a session: 204, then 404 for everyone, its recipients gone, and a later
//! PUT creates it afresh at version 1; deletes racing with writes give no 5xx and no 412; an If-Match
//! is judged on the stored version.

use futures_util::future::join_all;
use reqwest::Response;

use crate::helpers::{TestApp, spawn_app, status_and_json};

async fn delete(app: &TestApp, token: &str, session_id: &str) -> Response {
    app.http
        .delete(format!("{}/api/email/sessions/{session_id}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE failed")
}

#[actix_web::test]
async fn the_owner_deletes_a_session_and_a_later_put_starts_afresh() {
    // Arrange
    let (app, db, alice) = spawn_app().await;
    let bob = db.create_user("bob").await;
    app.put_form(&alice, "s1", "to=a@x.com,b@x.com&subject=One")
        .await;
    app.put_form(&alice, "s1", "subject=Two").await;

    // Act
    let by_other = delete(&app, &bob, "s1").await.status().as_u16();
    let by_owner = delete(&app, &alice, "s1").await;
    let by_owner_status = by_owner.status().as_u16();
    let by_owner_body = by_owner.bytes().await.unwrap();
    let again = delete(&app, &alice, "s1").await.status().as_u16();
    let (read_status, read) = status_and_json(app.get_session(&alice, "s1").await).await;
    let recipients_left: i64 = db
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(cardinality(emails)), 0)::bigint FROM email_sessions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (recreated_status, recreated) =
        status_and_json(app.put_form(&alice, "s1", "to=c@x.com").await).await;

    // Assert
    assert_eq!(by_other, 404, "only the owner may delete");
    assert_eq!((by_owner_status, by_owner_body.len()), (204, 0));
    assert_eq!(again, 404);
    assert_eq!(
        (read_status, &read["error"]["code"]),
        (404, &"session_not_found".into())
    );
    assert_eq!(recipients_left, 0);
    assert_eq!(recreated_status, 201);
    assert_eq!(recreated["version"], 1);
    assert_eq!(recreated["subject"], serde_json::Value::Null);
}

#[actix_web::test]
async fn deletes_racing_with_writes_give_no_server_error_and_no_412() {
    // Arrange
    let (app, db, token) = spawn_app().await;

    for round in 0..5 {
        let session_id = format!("churn-{round}");
        // Act: writes and deletes of one session, all at once.
        let writes = (0..30).map(|i| {
            let (app, token, session_id) = (&app, &token, &session_id);
            async move {
                if i % 3 == 0 {
                    delete(app, token, session_id).await.status().as_u16()
                } else {
                    let body = format!("to=r{i}@x.com&subject=S{i}");
                    app.put_form(token, session_id, &body)
                        .await
                        .status()
                        .as_u16()
                }
            }
        });
        let statuses = join_all(writes).await;

        // Assert
        for status in &statuses {
            assert!(
                matches!(status, 200 | 201 | 204 | 404),
                "round {round}: {statuses:?}"
            );
        }
        if let Some(stored) = db.stored(&token, &session_id).await {
            assert_eq!(stored.recipients.len(), 1, "{stored:?}");
        }
    }
}

#[actix_web::test]
async fn a_write_that_finds_its_row_deleted_under_it_creates_the_session_again() {
    // Arrange: the write finds the row (so does not insert), then waits for its lock, which
    // another transaction holds and uses to delete the row.
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "to=old@x.com").await;
    let other = db.client().await;
    other
        .batch_execute("BEGIN; SELECT 1 FROM email_sessions WHERE session_id = 's1' FOR UPDATE")
        .await
        .unwrap();

    // Act
    let write = {
        let request = app
            .http
            .put(format!("{}/api/email/update/s1", app.address))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("to=new@x.com");
        actix_web::rt::spawn(request.send())
    };
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    other
        .batch_execute("DELETE FROM email_sessions WHERE session_id = 's1'; COMMIT")
        .await
        .unwrap();
    let (status, session) = status_and_json(write.await.unwrap().unwrap()).await;

    // Assert: an unconditional write is never a failed precondition.
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["version"], 1);
    let stored = db.stored(&token, "s1").await.unwrap();
    assert_eq!(
        (stored.version, stored.recipients),
        (1, vec!["new@x.com".to_owned()])
    );
}

#[actix_web::test]
async fn delete_honours_if_match_judged_on_the_stored_version() {
    // Arrange: a session at version 2.
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "cond", "to=a@x.com").await;
    app.put_form(&token, "cond", "to=b@x.com").await;
    let delete_if = async |session: &str, tag: &str| {
        let response = app
            .http
            .delete(format!("{}/api/email/sessions/{session}", app.address))
            .bearer_auth(&token)
            .header("If-Match", tag)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };

    // Act
    let stale = delete_if("cond", "\"1\"").await;
    let kept = db.stored(&token, "cond").await.map(|stored| stored.version);
    let current = delete_if("cond", "\"2\"").await;
    let absent = delete_if("cond", "*").await;

    // Assert
    assert_eq!(stale, (412, "precondition_failed".to_owned()));
    assert_eq!(kept, Some(2), "a stale If-Match deletes nothing");
    assert_eq!(current.0, 204);
    assert_eq!(absent, (412, "precondition_failed".to_owned()));
    assert!(db.stored(&token, "cond").await.is_none());
}
