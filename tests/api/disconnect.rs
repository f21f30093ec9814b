//! A client that hangs up mid-request does not abort the write it started:
//! the write belongs to the session's actor, not to the request.

use std::time::Duration;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_client_that_disconnects_does_not_abort_its_write() {
    // Arrange: hold the session's row lock so the write has to wait.
    let (app, db, token) = spawn_app().await;
    app.put_form(&token, "s1", "subject=before").await;
    let lock = db.lock_session("s1").await;

    // Act: the client gives up while the write is blocked, then the lock goes.
    let impatient = app
        .http
        .put(format!("{}/api/email/update/s1", app.address))
        .bearer_auth(&token)
        .body("subject=after")
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    drop(lock);

    // Assert
    assert!(impatient.is_err_and(|error| error.is_timeout()));
    let mut stored = db.stored(&token, "s1").await.unwrap();
    for _ in 0..100 {
        if stored.version == 2 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        stored = db.stored(&token, "s1").await.unwrap();
    }
    assert_eq!(
        (stored.version, stored.subject.as_deref()),
        (2, Some("after"))
    );
}
