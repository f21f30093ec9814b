//! A fetched JWKS document read into verification keys. The set is bounded in keys before any
//! key is kept, and a key this service cannot use is skipped rather than spoiling the set. The
//! work is synchronous and grows with the set, so `keys` runs it on a blocking thread, never on
//! an HTTP worker.

use std::collections::HashMap;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// A key that may verify tokens, and the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct SigningKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Algorithm,
}

/// The usable keys of the JWKS `body` by key ID, or why the set is refused: not JSON of a key
/// set, or more than `max_keys` keys.
pub(super) fn read(body: &[u8], max_keys: usize) -> anyhow::Result<HashMap<String, SigningKey>> {
    // Counted before anything is kept: an element read as `IgnoredAny` costs a pass over its
    // bytes and no memory, where a million tiny keys read as values would cost a million maps.
    let counted: KeyCount = serde_json::from_slice(body).context("reading the JWKS")?;
    anyhow::ensure!(
        counted.keys.len() <= max_keys,
        "the JWKS holds {} keys, more than auth.jwks_max_keys ({max_keys})",
        counted.keys.len()
    );
    let set: JwkSet = serde_json::from_slice(body).context("reading the JWKS")?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|value| {
            // One key this service cannot use (an encryption key, an unknown type) must not
            // make the whole set unusable.
            let jwk: Jwk = serde_json::from_value(value).ok()?;
            Some((jwk.common.key_id.clone()?, signing_key(&jwk)?))
        })
        .collect())
}

/// `jwk` as a verification key, if it is a signing key of an accepted algorithm.
fn signing_key(jwk: &Jwk) -> Option<SigningKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    let declared = jwk.common.key_algorithm;
    let fits = match declared {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(_) => false,
    };
    fits.then_some(())?;
    Some(SigningKey {
        key: DecodingKey::from_jwk(jwk).ok()?,
        algorithm,
    })
}

#[derive(Deserialize)]
struct KeyCount {
    keys: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_signing_keys_of_accepted_algorithms_are_kept() {
        let rsa = serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            signing_key(&jwk(rsa.clone())).map(|k| k.algorithm),
            Some(Algorithm::RS256)
        );
        let mut encryption = rsa.clone();
        encryption["use"] = "enc".into();
        assert!(signing_key(&jwk(encryption)).is_none());
        let mut rs512 = rsa;
        rs512["alg"] = "RS512".into();
        assert!(signing_key(&jwk(rs512)).is_none());
        let hmac = serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        assert!(signing_key(&jwk(hmac)).is_none());
    }

    #[test]
    fn a_set_is_refused_past_max_keys_and_unusable_keys_are_skipped() {
        let rsa =
            |kid: &str| serde_json::json!({"kty": "RSA", "kid": kid, "n": "AQAB", "e": "AQAB"});
        let body = serde_json::to_vec(&serde_json::json!({
            "keys": [rsa("a"), rsa("b"), {"kty": "junk"}],
        }))
        .unwrap();

        let kept = read(&body, 3).unwrap();
        let mut kids: Vec<&String> = kept.keys().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
        let refused = read(&body, 2).err().unwrap();
        assert_eq!(
            refused.to_string(),
            "the JWKS holds 3 keys, more than auth.jwks_max_keys (2)"
        );
        assert!(read(b"{\"keys\": 5}", 100).is_err());
    }
}
