//! The changes parsed from recent update bodies, per HTTP worker thread. The plugin sends the same
//! body several times a second, and parsing it (the form, the RFC 5322 list, each address's
//! checks and folding) was a tenth of a duplicate's CPU. An entry is found by the body's exact
//! bytes and kind, and parsing is a pure function of them, so a hit is the change the same bytes
//! would parse to. Only small bodies are kept (the plugin's are), so the memory stays bounded:
//! at most `CAPACITY` bodies of at most `MAX_KEPT_BODY_BYTES` per worker.

use std::cell::RefCell;
use std::num::NonZeroUsize;

use actix_web::web::Bytes;
use lru::LruCache;

use crate::domain::content::Change;
use crate::error::ApiError;
use crate::http::body::{BodyKind, parse_update};

const CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).expect("not zero");
const MAX_KEPT_BODY_BYTES: usize = 2048;

thread_local! {
    static RECENT: RefCell<LruCache<(BodyKind, Bytes), Change>> = RefCell::new(LruCache::new(CAPACITY));
}

/// [`parse_update`], remembered for recent small bodies. Refusals are not remembered: a bad
/// body costs its parse every time, as before.
pub fn parse_update_remembered(kind: BodyKind, body: &Bytes) -> Result<Change, ApiError> {
    if body.len() > MAX_KEPT_BODY_BYTES {
        return parse_update(kind, body);
    }
    let key = (kind, body.clone());
    if let Some(change) = RECENT.with_borrow_mut(|recent| recent.get(&key).cloned()) {
        return Ok(change);
    }
    let change = parse_update(kind, body)?;
    // A copy, so the entry does not keep the request's whole read buffer alive.
    let key = (kind, Bytes::copy_from_slice(body));
    RECENT.with_borrow_mut(|recent| recent.put(key, change.clone()));
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_change_is_the_parse_of_the_same_bytes() {
        let body = Bytes::from_static(b"to=a@x.com,B@y.com&subject=Hi");
        let first = parse_update_remembered(BodyKind::Form, &body).unwrap();
        let again = parse_update_remembered(BodyKind::Form, &body).unwrap();
        assert_eq!(first, again);
        assert_eq!(first, parse_update(BodyKind::Form, &body).unwrap());
        let as_json = parse_update_remembered(BodyKind::Json, &body);
        assert!(as_json.is_err(), "the kind is part of the key");
    }
}
