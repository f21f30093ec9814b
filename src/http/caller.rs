//! Who is calling: the `Authorization: Bearer <token>` header read and its token verified by the
//! [`Authenticator`], for every `/api/` handler that takes an [`AuthenticatedUser`].

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, web};

use crate::auth::Authenticator;
use crate::domain::identity::UserId;
use crate::error::{ApiError, ErrorCode};
use crate::http::client_address::TrustedProxies;

/// The caller, proven by a valid `Authorization: Bearer <token>` header.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedUser(pub UserId);

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthenticatedUser, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = request.app_data::<web::Data<Authenticator>>().cloned();
        let token = bearer_token(request.headers());
        // Behind a load balancer the peer is the balancer; the failure log wants the client.
        let peer = match request.app_data::<web::Data<TrustedProxies>>() {
            Some(trusted) => trusted.client_of(request.peer_addr(), request.headers()),
            None => request.peer_addr().map(|address| address.ip()),
        };
        Box::pin(async move {
            let authenticator = authenticator.ok_or_else(|| {
                ApiError::internal(
                    ErrorCode::Internal,
                    "internal error",
                    anyhow::anyhow!("no Authenticator in app data"),
                )
            })?;
            let token = token?;
            let user_id = authenticator.authenticate(&token, peer).await?;
            Ok(AuthenticatedUser(user_id))
        })
    }
}

/// The token of the one `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let value = values
        .next()
        .ok_or_else(|| unauthorized("missing Authorization header; send `Bearer <token>`"))?;
    if values.next().is_some() {
        // Which one a proxy or a cache would honour is anyone's guess: refuse both.
        return Err(ApiError::new(
            ErrorCode::InvalidAuthorization,
            "more than one Authorization header; send exactly one",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| unauthorized("Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("Authorization header must be `Bearer <token>`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(unauthorized(
            "Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.to_owned())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}
