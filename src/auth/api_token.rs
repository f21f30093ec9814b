//! API tokens as text: `<token id>.<secret><tag>`, minted with 256 random bits of secret (64 hex
//! digits), of which only the SHA-256 is ever stored, and a tag (16 hex digits): the first 64
//! bits of an HMAC-SHA256 of `<token id>.<secret>` under the database's tag key
//! (`api_token_scheme`, sql/migrations/V10). The tag lets every instance refuse a token it never
//! issued without a lookup, so a flood of made-up tokens costs no query and needs no throttle
//! that could refuse a real one; the stored hash, not the tag, is what authenticates.
//!
//! Tokens issued before tags existed (`<token id>.<secret>`, IDs up to the scheme's
//! `legacy_max_id`) keep working: they are a closed set, whose ID and hash pairs are known in
//! memory, so they too are checked before any lookup.
//!
//! The ID selects the row, and the secret is checked against the stored hash in constant time:
//! looking the row up by ID rather than by secret keeps the secret out of any variable-time
//! comparison (a B-tree search included).

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::identity::TokenId;

const SECRET_HEX_DIGITS: usize = 64;
const TAG_BYTES: usize = 8;

/// The tag key and the tokens issued before tags, as the database holds them.
pub(crate) struct TokenScheme {
    tag_key: Vec<u8>,
    /// The secret hashes of the untagged tokens, by ID: the whole closed set.
    legacy: HashMap<TokenId, [u8; 32]>,
}

impl TokenScheme {
    pub(crate) fn new(tag_key: Vec<u8>, legacy: HashMap<TokenId, [u8; 32]>) -> TokenScheme {
        TokenScheme { tag_key, legacy }
    }

    /// The text of the token with `id` and `secret` (from [`new_secret`]).
    pub(crate) fn token(&self, id: TokenId, secret: &str) -> String {
        let tag = self.mac(id, secret).finalize().into_bytes();
        format!("{}.{secret}{}", id.0, hex::encode(&tag[..TAG_BYTES]))
    }

    /// The secret of `token` if this service could have issued it: its tag verifies, or it is
    /// one of the untagged tokens with its secret. `None` says, without a lookup, that no such
    /// token exists or ever will.
    pub(super) fn vouched_secret<'t>(&self, token: &'t str) -> Option<(TokenId, &'t str)> {
        let (id, secret) = parse(token)?;
        // Lower-case only: one spelling per token.
        if !secret
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        match secret.len() {
            len if len == SECRET_HEX_DIGITS + 2 * TAG_BYTES => {
                let (secret, tag) = secret.split_at(SECRET_HEX_DIGITS);
                let tag = hex::decode(tag).ok()?;
                self.mac(id, secret).verify_truncated_left(&tag).ok()?;
                Some((id, secret))
            }
            SECRET_HEX_DIGITS => {
                let hash = self.legacy.get(&id)?;
                secret_matches(secret, hash).then_some((id, secret))
            }
            _ => None,
        }
    }

    fn mac(&self, id: TokenId, secret: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.tag_key).expect("HMAC takes keys of any length");
        mac.update(format!("{}.{secret}", id.0).as_bytes());
        mac
    }
}

/// A fresh secret and the hash to store; the token is [`TokenScheme::token`] once the row has an
/// ID.
pub(crate) fn new_secret() -> (String, [u8; 32]) {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let hash = hash_secret(&secret);
    (secret, hash)
}

/// The only form in which a secret is stored (and the key under which tokens are cached).
pub(super) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub(super) fn secret_matches(secret: &str, stored: &[u8; 32]) -> bool {
    bool::from(stored.ct_eq(&hash_secret(secret)))
}

/// Splits `<token id>.<rest>`.
///
/// The ID has one spelling only: decimal digits without a sign or leading zeros, so `+7`, `07`
/// and `7` cannot be three cache keys for one token.
fn parse(token: &str) -> Option<(TokenId, &str)> {
    let (id, rest) = token.split_once('.')?;
    let canonical = !id.is_empty()
        && id.bytes().all(|byte| byte.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then_some(())?;
    Some((TokenId(id.parse().ok()?), rest))
}

/// Whether `token` has an API token's shape at all (`<decimal id>.<anything>`).
pub(super) fn looks_like_api_token(token: &str) -> bool {
    parse(token).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme_with_legacy(id: i64, secret: &str) -> TokenScheme {
        TokenScheme::new(
            b"a key for tests only".to_vec(),
            HashMap::from([(TokenId(id), hash_secret(secret))]),
        )
    }

    #[test]
    fn ids_have_one_spelling() {
        assert_eq!(parse("42.abc"), Some((TokenId(42), "abc")));
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("x.abc"), None);
        for other_spelling in [
            "+42.abc", "042.abc", "-42.abc", " 42.abc", ".abc", "4_2.abc",
        ] {
            assert_eq!(parse(other_spelling), None, "{other_spelling}");
        }
    }

    #[test]
    fn only_the_minted_secret_matches_its_hash() {
        let (secret, hash) = new_secret();
        assert!(secret_matches(&secret, &hash));
        assert!(!secret_matches(&format!("{secret}0"), &hash));
        assert_eq!(secret.len(), 64);
    }

    #[test]
    fn an_issued_token_is_vouched_for_and_any_other_is_not() {
        let (legacy_secret, _) = new_secret();
        let scheme = scheme_with_legacy(3, &legacy_secret);
        let (secret, _) = new_secret();
        let token = scheme.token(TokenId(7), &secret);
        assert_eq!(scheme.vouched_secret(&token), Some((TokenId(7), &*secret)));

        let other_id = token.replacen("7.", "8.", 1);
        let mut other_tag = token.clone();
        let last = if other_tag.ends_with('0') { "1" } else { "0" };
        other_tag.replace_range(other_tag.len() - 1.., last);
        let other_key = TokenScheme::new(b"another key".to_vec(), HashMap::new());
        for forged in [
            other_id,
            other_tag,
            other_key.token(TokenId(7), &secret),
            format!("7.{secret}"),
            "7.junk".to_owned(),
        ] {
            assert_eq!(scheme.vouched_secret(&forged), None, "{forged}");
        }
    }

    #[test]
    fn untagged_tokens_are_vouched_for_only_when_issued_before_tags() {
        let (secret, _) = new_secret();
        let scheme = scheme_with_legacy(3, &secret);
        assert_eq!(
            scheme.vouched_secret(&format!("3.{secret}")),
            Some((TokenId(3), &*secret))
        );
        let (other, _) = new_secret();
        assert_eq!(scheme.vouched_secret(&format!("3.{other}")), None);
        assert_eq!(scheme.vouched_secret(&format!("4.{secret}")), None);
    }
}
