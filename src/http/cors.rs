//! Cross-origin access for the plugin's page (an Outlook task pane, a Gmail content script, an
//! extension's service worker), with actix-cors. Preflights are answered here, before
//! authentication and without the database; every other answer to an allowed origin, errors
//! included, carries the headers the page needs to read it.

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::http::header::{
    AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderName, IF_MATCH, IF_NONE_MATCH, LOCATION, RETRY_AFTER,
    WWW_AUTHENTICATE,
};

use crate::configuration::CorsSettings;
use crate::http::middleware::REQUEST_ID;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 7200;

/// The CORS middleware for `settings`: exact origins only, no credentials (the token travels
/// in `Authorization`, not in cookies), and requests from other origins served without
/// `Access-Control-Allow-Origin`, so a browser hides the answer while other clients are
/// unaffected (actix-cors still adds `Access-Control-Expose-Headers` and `Vary` to every answer,
/// which grant nothing without it).
pub(crate) fn cors(settings: &CorsSettings) -> Cors {
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
    ];
    let exposed: [HeaderName; 5] = [ETAG, REQUEST_ID, RETRY_AFTER, LOCATION, WWW_AUTHENTICATE];
    settings.allowed_origins.iter().fold(
        Cors::default()
            .allowed_methods(methods)
            .allowed_headers([AUTHORIZATION, CONTENT_TYPE, IF_MATCH, IF_NONE_MATCH])
            .expose_headers(exposed)
            .max_age(PREFLIGHT_MAX_AGE_SECS),
        |cors, origin| cors.allowed_origin(origin),
    )
}
