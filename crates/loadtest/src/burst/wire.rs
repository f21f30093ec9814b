//! How the service's answers read: the session JSON, turned into the plain
//! [`SessionSnapshot`] verification compares, and the JSON error body, turned
//! into a line for a human.

use serde::Deserialize;

use super::verify::SessionSnapshot;

/// Longest error text kept from an unexpected body.
const MAX_ERROR_TEXT: usize = 200;

#[derive(Deserialize)]
struct SessionJson {
    subject: Option<String>,
    recipients: Vec<RecipientJson>,
    version: i64,
}

#[derive(Deserialize)]
struct RecipientJson {
    email: String,
}

#[derive(Deserialize)]
struct ErrorJson {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Reads a session JSON body.
pub fn session_snapshot(body: &[u8]) -> Result<SessionSnapshot, String> {
    let session: SessionJson = serde_json::from_slice(body)
        .map_err(|error| format!("not a session JSON ({error}): {}", excerpt(body)))?;
    Ok(SessionSnapshot {
        subject: session.subject,
        emails: session.recipients.into_iter().map(|r| r.email).collect(),
        version: session.version,
    })
}

/// `code: message` of a JSON error body, or the start of any other body.
pub fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorJson>(body) {
        Ok(ErrorJson { error }) => format!("{}: {}", error.code, error.message),
        Err(_) => excerpt(body),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_body_becomes_a_snapshot() {
        let body = br#"{"session_id":"s","subject":null,"recipients":[{"email":"a@x.example","name":"A"},{"email":"b@x.example","name":null}],"version":3,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            session_snapshot(body).unwrap(),
            SessionSnapshot {
                subject: None,
                emails: vec!["a@x.example".to_owned(), "b@x.example".to_owned()],
                version: 3,
            }
        );
    }

    #[test]
    fn error_bodies_read_as_code_and_message() {
        let body = br#"{"error":{"code":"overloaded","message":"try again"}}"#;
        assert_eq!(error_message(body), "overloaded: try again");
        assert_eq!(error_message(b"plain text"), "plain text");
        assert!(session_snapshot(b"<html>").is_err());
    }
}
