//! `If-Match` and `If-None-Match` (RFC 9110 §13.1), read into a [`Precondition`]. A session's
//! entity tag is its version, `"<version>"`; a tag that is not a version matches nothing.

use actix_web::HttpRequest;
use actix_web::http::header::{
    EntityTag, Header, HeaderName, IF_MATCH, IF_NONE_MATCH, IfMatch, IfNoneMatch,
};

use crate::domain::precondition::{Precondition, Versions};
use crate::error::{ApiError, ErrorCode};

/// The request's preconditions; 400 when a header is present but unreadable (guessing could
/// overwrite what the client meant to protect).
pub(crate) fn precondition(request: &HttpRequest) -> Result<Precondition, ApiError> {
    let if_match = if request.headers().contains_key(IF_MATCH) {
        Some(
            match IfMatch::parse(request).map_err(|_| unreadable(&IF_MATCH))? {
                IfMatch::Any => Versions::Any,
                // If-Match compares strongly: a weak tag never matches.
                IfMatch::Items(tags) => versions(request, &IF_MATCH, &tags, false)?,
            },
        )
    } else {
        None
    };
    Ok(Precondition {
        if_match,
        if_none_match: if_none_match(request)?,
    })
}

/// The versions `If-None-Match` names, compared weakly (`W/"3"` names version 3).
pub(crate) fn if_none_match(request: &HttpRequest) -> Result<Option<Versions>, ApiError> {
    if !request.headers().contains_key(IF_NONE_MATCH) {
        return Ok(None);
    }
    let parsed = IfNoneMatch::parse(request).map_err(|_| unreadable(&IF_NONE_MATCH))?;
    Ok(Some(match parsed {
        IfNoneMatch::Any => Versions::Any,
        IfNoneMatch::Items(tags) => versions(request, &IF_NONE_MATCH, &tags, true)?,
    }))
}

fn versions(
    request: &HttpRequest,
    header: &HeaderName,
    tags: &[EntityTag],
    weak_matches: bool,
) -> Result<Versions, ApiError> {
    // actix drops list items it cannot parse; a dropped item would silently change what the
    // client asked for, so every item sent must have been read.
    let sent = request
        .headers()
        .get_all(header)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter(|item| !item.trim().is_empty())
        .count();
    if sent != tags.len() {
        return Err(unreadable(header));
    }
    Ok(Versions::Listed(
        tags.iter()
            .filter(|tag| weak_matches || !tag.weak)
            .filter_map(|tag| version_of(tag.tag()))
            .collect(),
    ))
}

/// The version a tag names: only the exact text of one (RFC 9110's comparison is of the opaque
/// tag, so `"04"` and `"+4"` are no spelling of version 4; they match nothing).
fn version_of(tag: &str) -> Option<i64> {
    tag.parse::<i64>()
        .ok()
        .filter(|version| version.to_string() == tag)
}

fn unreadable(header: &HeaderName) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPrecondition,
        format!("{header} must be `*` or a list of quoted entity tags such as \"3\", \"4\""),
    )
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn a_tag_names_a_version_only_in_its_exact_spelling() {
        assert_eq!(version_of("4"), Some(4));
        assert_eq!(version_of("0"), Some(0));
        for other in ["04", "+4", "4 ", " 4", "4.0", "-0", "x"] {
            assert_eq!(version_of(other), None, "{other:?}");
        }
    }
}
