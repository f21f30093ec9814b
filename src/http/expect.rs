//! `Expect: 100-continue`: the interim `100 Continue` invites the client to send its body, so it
//! is sent only to a request whose body would be read: a declared length within
//! `server.max_body_bytes`, and under `/api/` a bearer token that verifies. Any other such
//! request gets its final answer (413, 401, ...) at once, before a byte of its body is sent.

use std::rc::Rc;

use actix_http::Request;
use actix_web::HttpMessage;

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::http::body::declared_length_within;
use crate::http::caller::bearer_token;
use crate::http::client_address::TrustedProxies;

/// What the check needs, shared by one worker's connections.
pub struct ExpectGate {
    pub authenticator: Authenticator,
    pub trusted_proxies: TrustedProxies,
    pub max_body_bytes: usize,
}

impl ExpectGate {
    /// `request` back when its body is welcome, or the answer it gets instead.
    pub async fn check(self: Rc<Self>, request: Request) -> Result<Request, actix_web::Error> {
        declared_length_within(request.headers(), self.max_body_bytes)?;
        if request.path().starts_with("/api/") {
            let peer = self
                .trusted_proxies
                .client_of(request.peer_addr(), request.headers());
            let token = bearer_token(request.headers())?;
            self.authenticator
                .authenticate(&token, peer)
                .await
                .map_err(ApiError::from)?;
        }
        Ok(request)
    }
}
