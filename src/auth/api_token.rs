//! API tokens as text: `<token id>.<secret>`, minted with 256 random bits of secret, of which
//! only the SHA-256 is ever stored. The ID selects the row, and the secret is checked against
//! the stored hash in constant time: looking the row up by ID rather than by secret keeps the
//! secret out of any variable-time comparison (a B-tree search included).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::identity::TokenId;

/// A fresh secret and the hash to store; the token is `<id>.<secret>` once the row has an ID.
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

/// Splits `<token id>.<secret>`.
///
/// The ID has one spelling only: decimal digits without a sign or leading zeros, so `+7`, `07`
/// and `7` cannot be three cache keys (and three lookups) for one token.
pub(super) fn parse(token: &str) -> Option<(TokenId, &str)> {
    let (id, secret) = token.split_once('.')?;
    let canonical = !id.is_empty()
        && id.bytes().all(|byte| byte.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then_some(())?;
    Some((TokenId(id.parse().ok()?), secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_into_id_and_secret() {
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
}
