//! The update body: a form (what the plugin sends) or JSON, read with a size
//! limit and parsed into a [`Change`] at the edge.

use std::time::Duration;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap};
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, mime};
use percent_encoding::percent_decode;
use serde::Deserialize;

use crate::domain::content::Change;
use crate::domain::{InvalidRecipients, RecipientList, Subject};
use crate::error::{ApiError, ErrorCode};

/// How much body a request may send, and how slowly: from configuration.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest accepted body, in bytes.
    pub max_bytes: usize,
    /// Longest time the whole body may take to arrive.
    pub read_timeout: Duration,
}

/// Reads the whole body: 413 once it exceeds the size limit, 408 (and the connection closed)
/// when it has not fully arrived within the read timeout, so a client trickling bytes can hold
/// neither a worker nor a drain for longer than that.
pub async fn read_limited(payload: web::Payload, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(
        limits.read_timeout,
        payload.to_bytes_limited(limits.max_bytes),
    );
    match read.await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(error))) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("could not read the body: {error}"),
        )),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {} bytes", limits.max_bytes),
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the body did not arrive within {} ms",
                limits.read_timeout.as_millis()
            ),
        )),
    }
}

/// 413 when `headers` declare a body longer than `max_bytes`: known before a byte is read.
pub fn declared_length_within(headers: &HeaderMap, max_bytes: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max_bytes as u64 => Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {max_bytes} bytes (Content-Length: {length})"),
        )),
        _ => Ok(()),
    }
}

/// The plugin's form body: `to=a@x.com,b@y.com&subject=Hello`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct FormUpdate {
    /// The recipients as an RFC 5322 address list; absent or blank leaves them as stored.
    to: Option<String>,
    /// Alias of `to`, used when `to` is absent or blank.
    cm_to: Option<String>,
    /// The subject; absent leaves it as stored, empty sets it to "".
    subject: Option<String>,
}

/// Recipients as one address list, or as a list of entries (each itself an address list).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum JsonRecipients {
    /// `"a@x.com, \"Smith, Jane\" <jane@y.com>"`
    Joined(String),
    /// `["a@x.com", "\"Smith, Jane\" <jane@y.com>"]`
    Each(Vec<String>),
}

/// The JSON body: the same fields as the form.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct JsonUpdate {
    /// The recipients; absent, null or blank leaves them as stored.
    to: Option<JsonRecipients>,
    /// Alias of `to`, used when `to` is absent or blank.
    cm_to: Option<JsonRecipients>,
    /// The subject; absent or null leaves it as stored.
    subject: Option<String>,
}

/// How an update body is written, read from the headers before the body itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded` (also when no Content-Type is given, which is what
    /// `curl -d` and the plugin send).
    Form,
    /// `application/json`.
    Json,
}

/// The body's kind, or 415 for what this service cannot read as the client meant it: a
/// `Content-Encoding` other than `identity` (bodies are not decompressed, and reading gzip as a
/// form would store an empty session), a charset other than UTF-8, or a media type other than
/// a form or JSON. Checked before the body is read.
pub fn body_kind(request: &HttpRequest) -> Result<BodyKind, ApiError> {
    for encoding in request.headers().get_all(CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("?").trim();
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedEncoding,
                format!(
                    "Content-Encoding {encoding:?} is not supported; send the body uncompressed"
                ),
            ));
        }
    }
    let mime = request.mime_type().map_err(|_| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the Content-Type header cannot be read",
        )
    })?;
    let Some(mime) = mime else {
        return Ok(BodyKind::Form);
    };
    if let Some(charset) = mime.get_param(mime::CHARSET)
        && !charset.as_str().eq_ignore_ascii_case("utf-8")
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "charset {:?} is not supported; send UTF-8",
                charset.as_str()
            ),
        ));
    }
    match mime.essence_str() {
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        "application/json" => Ok(BodyKind::Json),
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "content type {other:?} is not supported; send application/x-www-form-urlencoded or application/json"
            ),
        )),
    }
}

/// Parses an update body of the given kind. Text must be valid UTF-8 throughout, percent-encoded
/// form values included: nothing is silently replaced with U+FFFD and stored.
pub fn parse_update(kind: BodyKind, body: &[u8]) -> Result<Change, ApiError> {
    match kind {
        BodyKind::Form => {
            check_form_is_utf8(body)?;
            let form: FormUpdate = serde_urlencoded::from_bytes(body).map_err(|error| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("invalid form body: {error}"),
                )
            })?;
            change_from(
                first_given(
                    form.to.map(JsonRecipients::Joined),
                    form.cm_to.map(JsonRecipients::Joined),
                ),
                form.subject,
            )
        }
        BodyKind::Json => {
            // serde_json refuses invalid UTF-8 itself.
            let json: JsonUpdate = serde_json::from_slice(body).map_err(|error| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!(
                        "invalid JSON body: {error}; expected {{\"to\": \"a@x, b@y\" or [\"a@x\"], \"subject\": \"...\"}}"
                    ),
                )
            })?;
            change_from(first_given(json.to, json.cm_to), json.subject)
        }
    }
}

/// serde_urlencoded decodes lossily; every name and value must decode to UTF-8 as sent.
fn check_form_is_utf8(body: &[u8]) -> Result<(), ApiError> {
    let invalid = body
        .split(|byte| matches!(byte, b'&' | b'='))
        .any(|piece| percent_decode(piece).decode_utf8().is_err());
    if invalid {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "invalid form body: a name or value is not UTF-8 (after percent-decoding)",
        ));
    }
    Ok(())
}

impl JsonRecipients {
    fn is_blank(&self) -> bool {
        match self {
            JsonRecipients::Joined(raw) => raw.trim().is_empty(),
            JsonRecipients::Each(items) => items.iter().all(|item| item.trim().is_empty()),
        }
    }
}

/// `to`, or its alias `cm_to` when `to` is absent or blank. Blank counts as
/// absent ("leave recipients alone"): the plugin sometimes reports before it
/// knows the recipients.
fn first_given(
    to: Option<JsonRecipients>,
    cm_to: Option<JsonRecipients>,
) -> Option<JsonRecipients> {
    [to, cm_to]
        .into_iter()
        .flatten()
        .find(|given| !given.is_blank())
}

fn change_from(to: Option<JsonRecipients>, subject: Option<String>) -> Result<Change, ApiError> {
    let recipients = match to {
        Some(JsonRecipients::Joined(raw)) => Some(RecipientList::parse(&raw)),
        Some(JsonRecipients::Each(items)) => Some(RecipientList::parse_each(&items)),
        None => None,
    }
    .transpose()
    .map_err(invalid_recipients)?;
    let subject = subject
        .map(|raw| Subject::parse(&raw))
        .transpose()
        .map_err(|error| ApiError::new(ErrorCode::InvalidSubject, error.to_string()))?;
    Ok(Change {
        recipients,
        subject,
    })
}

fn invalid_recipients(error: InvalidRecipients) -> ApiError {
    ApiError::new(ErrorCode::InvalidRecipients, error.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn parse_time(kind: BodyKind, body: &[u8]) -> Duration {
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let _ = std::hint::black_box(parse_update(kind, std::hint::black_box(body)));
                started.elapsed()
            })
            .min()
            .unwrap()
    }

    #[test]
    fn no_form_or_json_body_costs_more_than_five_times_an_ordinary_one() {
        // Arrange: a body limit's worth of an ordinary update, and hostile shapes of both kinds.
        const SIZE: usize = 64 * 1024 - 16;
        let fit = |unit: &str| unit.repeat(SIZE / unit.len()).into_bytes();
        let ordinary_list = "someone.else@example.com,".repeat(SIZE / 26);
        let ordinary = format!("to={ordinary_list}").into_bytes();
        let hostile: [(BodyKind, Vec<u8>); 8] = [
            (BodyKind::Form, fit("&")),
            (BodyKind::Form, fit("=")),
            (BodyKind::Form, fit("%")),
            (
                BodyKind::Form,
                format!("subject={}", "%41".repeat(SIZE / 3 - 3)).into_bytes(),
            ),
            (BodyKind::Form, fit("to=a&")),
            (BodyKind::Json, fit("[")),
            (
                BodyKind::Json,
                format!("{{\"subject\": \"{}\"}}", "\\u0041".repeat(SIZE / 6 - 4)).into_bytes(),
            ),
            (
                BodyKind::Json,
                format!(
                    "{{\"to\": [{}\"a@b.c\"]}}",
                    "\"a@b.c\",".repeat(SIZE / 8 - 3)
                )
                .into_bytes(),
            ),
        ];
        let baseline = parse_time(BodyKind::Form, &ordinary);

        for (kind, body) in &hostile {
            // Act
            let took = parse_time(*kind, body);

            // Assert
            let ratio = took.as_secs_f64() / baseline.as_secs_f64();
            assert!(
                ratio <= 5.0,
                "{kind:?} {:?}... took {took:?}, {ratio:.1}x an ordinary body ({baseline:?})",
                String::from_utf8_lossy(&body[..20])
            );
        }
    }
}
