//! Several users reuse the same session ID strings at the same time; each
//! must see and store only their own recipients.

use futures_util::future::join_all;

use crate::helpers::{emails, spawn_app, status_and_json};

#[actix_web::test]
async fn users_sharing_session_ids_never_see_each_others_recipients() {
    // Arrange
    let (app, db, _) = spawn_app().await;
    let mut tokens = Vec::new();
    for u in 0..5 {
        tokens.push(db.create_user(&format!("user{u}")).await);
    }
    let ids: Vec<String> = (0..4).map(|s| format!("shared-{s}")).collect();

    // Act: every user bursts every shared ID with their own address.
    let requests = (0..5 * 4 * 10).map(|n| {
        let (u, s) = (n % 5, (n / 5) % 4);
        let body = format!("to=user{u}@x.com&subject=From+{u}");
        let (app, token, id) = (&app, &tokens[u], &ids[s]);
        async move { app.put_form(token, id, &body).await }
    });
    let responses = join_all(requests).await;

    // Assert
    assert!(responses.iter().all(|r| r.status().is_success()));
    for (u, token) in tokens.iter().enumerate() {
        for id in &ids {
            let stored = db.stored(token, id).await.unwrap();
            assert_eq!(stored.recipients, [format!("user{u}@x.com")]);
            assert_eq!(stored.version, 1);
            let (status, session) = status_and_json(app.get_session(token, id).await).await;
            assert_eq!(status, 200);
            assert_eq!(emails(&session), [format!("user{u}@x.com")]);
        }
    }
    for id in &ids {
        assert_eq!(db.session_rows(id).await, 5, "one row per user for {id}");
    }
}
