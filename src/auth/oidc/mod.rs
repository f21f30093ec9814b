//! Identity tokens (JWTs) of the configured OpenID Connect issuers: which issuer, which key,
//! and whether every check holds. What a check's failure says names the check, never a key.

mod capped_body;
mod https;
mod jwks;
mod keys;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::configuration::AuthSettings;
use crate::domain::identity::Identity;

pub(crate) use https::require_https_url;
use keys::{FetchPolicy, IssuerKeys, KeyLookup};

/// Only asymmetric algorithms: with an HMAC algorithm anyone holding the (public) key could
/// sign, and `none` signs nothing.
const ACCEPTED_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// Whether `token` has the shape of a JWT (three dot-separated parts) rather than of an API
/// token (`<id>.<secret>`).
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&byte| byte == b'.').count() == 2
}

/// A verified identity token.
#[derive(Debug)]
pub(super) struct VerifiedToken {
    pub(super) identity: Identity,
    /// When the token stops being valid (its `exp` plus the leeway).
    pub(super) valid_for: Duration,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A check failed: 401, with this message.
    Invalid(String),
    /// The key is not cached and its issuer cannot be reached: 503.
    KeysUnavailable,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::Invalid(message.into())
}

/// Verifies tokens of every configured issuer.
pub(super) struct OidcVerifier {
    issuers: Vec<Issuer>,
}

struct Issuer {
    /// The configured `iss`, under which its people are provisioned.
    name: String,
    /// Every `iss` accepted as this issuer: the name and its aliases.
    spellings: Vec<String>,
    required_scope: Option<String>,
    keys: Arc<IssuerKeys>,
    /// Everything but the algorithm, which is the key's.
    validation: Validation,
}

#[derive(Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
}

/// The longest `sub` an identity may have: `identities.subject`'s CHECK (sql/migrations/V7).
const MAX_SUBJECT_CHARS: usize = 1000;

/// `exp` is required by the validation; `sub` and `scp` are checked here.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<u64>,
    /// Delegated scopes, space-separated (Entra ID access tokens).
    scp: Option<String>,
}

impl OidcVerifier {
    pub(super) fn new(settings: &AuthSettings) -> anyhow::Result<OidcVerifier> {
        // A redirect must not lead the key fetch off https.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let url = attempt.url().as_str().to_owned();
            if attempt.previous().len() < 5 && require_https_url("a redirect", &url).is_ok() {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(settings.jwks_fetch_timeout)
            .redirect(redirects)
            .build()
            .context("building the HTTP client for identity providers")?;
        let policy = FetchPolicy {
            refetch_interval: settings.jwks_refetch_interval,
            max_age: settings.jwks_max_age,
            max_bytes: settings.jwks_max_bytes,
            max_keys: settings.jwks_max_keys,
        };
        let issuers = settings
            .oidc
            .iter()
            .map(|oidc| {
                let spellings: Vec<String> = std::iter::once(&oidc.issuer)
                    .chain(&oidc.issuer_aliases)
                    .cloned()
                    .collect();
                let mut validation = Validation::new(Algorithm::RS256);
                validation.leeway = settings.jwt_leeway.as_secs();
                validation.validate_nbf = true;
                validation.set_issuer(&spellings);
                validation.set_audience(&[&oidc.audience]);
                validation.required_spec_claims =
                    HashSet::from(["exp", "iss", "aud", "sub"].map(str::to_owned));
                Issuer {
                    name: oidc.issuer.clone(),
                    spellings,
                    required_scope: oidc.required_scope.clone(),
                    keys: Arc::new(IssuerKeys::new(
                        oidc.issuer.clone(),
                        oidc.jwks_uri.clone(),
                        http.clone(),
                        policy,
                    )),
                    validation,
                }
            })
            .collect();
        Ok(OidcVerifier { issuers })
    }

    /// The identity `token` proves, if every check holds.
    pub(super) async fn verify(&self, token: &str) -> Result<VerifiedToken, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid(
                "token header is unreadable or names an algorithm that is not accepted \
                 (RS256 and ES256 are)",
            )
        })?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
            return Err(invalid(format!(
                "token algorithm {:?} is not accepted (RS256 and ES256 are)",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("token header names no signing key (kid)"))?;
        let claimed: UnverifiedIssuer = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| invalid("token payload is unreadable"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| {
                claimed
                    .iss
                    .as_ref()
                    .is_some_and(|iss| issuer.spellings.contains(iss))
            })
            .ok_or_else(|| invalid("token issuer (iss) is not accepted"))?;
        let key = match issuer.keys.find(&kid).await {
            KeyLookup::Found(key) => key,
            KeyLookup::Unknown => {
                return Err(invalid(
                    "token is signed with a key its issuer does not publish",
                ));
            }
            KeyLookup::Unavailable => return Err(Refusal::KeysUnavailable),
        };
        if key.algorithm != header.alg {
            return Err(invalid("token algorithm does not match its signing key"));
        }
        // jsonwebtoken refuses a validation listing algorithms of another key family than the
        // key's, so it names this key's one algorithm (once per token the cache has not seen).
        let mut validation = issuer.validation.clone();
        validation.algorithms = vec![key.algorithm];
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|error| invalid(failed_check(error.kind())))?
            .claims;
        if let Some(scope) = &issuer.required_scope {
            let granted = claims.scp.as_deref().unwrap_or_default();
            if !granted.split(' ').any(|granted| granted == scope) {
                return Err(invalid(
                    "token lacks the scope this API requires (scp): an ID token, or a token \
                     for another API?",
                ));
            }
        }
        let subject = claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| invalid("token has no subject (sub)"))?;
        // The column's own check would refuse it with a 500, after the signature was paid for.
        if subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(invalid(format!(
                "token subject (sub) is longer than {MAX_SUBJECT_CHARS} characters"
            )));
        }
        let exp = claims
            .exp
            .unwrap_or_default()
            .saturating_add(validation.leeway);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Ok(VerifiedToken {
            identity: Identity {
                issuer: issuer.name.clone(),
                subject,
            },
            valid_for: Duration::from_secs(exp.saturating_sub(now)),
        })
    }
}

/// Which check a verification error means, in words for the caller.
fn failed_check(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "token signature does not verify".into(),
        ErrorKind::ExpiredSignature => "token has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "token is not meant for this API (aud)".into(),
        ErrorKind::InvalidIssuer => "token issuer (iss) is not accepted".into(),
        ErrorKind::InvalidAlgorithm => "token algorithm does not match its signing key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("token lacks the {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("token claim {claim} is malformed"),
        _ => "token is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_and_api_tokens_are_told_apart_by_shape() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(!looks_like_jwt("42.0123abcdef"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
