//! The signing secret and the three headers of a delivery, with the `standardwebhooks` crate
//! (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use standardwebhooks::Webhook;

const SECRET_PREFIX: &str = "whsec_";

/// The key `secret` names: `whsec_` and the base64 of 24 to 64 bytes. What a refusal says never
/// quotes the secret.
pub(crate) fn signing_key(secret: &SecretString) -> anyhow::Result<Webhook> {
    let encoded = secret
        .expose_secret()
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .context("must start with whsec_ (Standard Webhooks' format)")?;
    let key = STANDARD
        .decode(encoded)
        .ok()
        .context("must be whsec_ followed by standard base64")?;
    anyhow::ensure!(
        (24..=64).contains(&key.len()),
        "must hold 24 to 64 bytes of key, and holds {}",
        key.len()
    );
    Webhook::from_bytes(key).context("unusable key")
}

/// The headers of one attempt of event `id` with `body`, signed at `timestamp` (unix seconds).
pub(super) fn headers(
    key: &Webhook,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> anyhow::Result<[(&'static str, String); 3]> {
    let signature = key
        .sign(id, timestamp, body)
        .context("signing a webhook body")?;
    Ok([
        (standardwebhooks::HEADER_WEBHOOK_ID, id.to_owned()),
        (
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        ),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn only_standard_webhooks_secrets_of_24_to_64_bytes_are_keys() {
        let of = |bytes: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; bytes]));
        assert!(signing_key(&secret(&of(24))).is_ok());
        assert!(signing_key(&secret(&of(64))).is_ok());
        for bad in [
            of(23),
            of(65),
            "whsec_!!!".to_owned(),
            STANDARD.encode([7u8; 32]),
        ] {
            let refusal = signing_key(&secret(&bad)).err().unwrap().to_string();
            assert!(
                !refusal.contains(&bad),
                "the refusal quotes the secret: {refusal}"
            );
        }
    }

    #[test]
    fn a_signature_verifies_with_the_same_secret() {
        let text = format!("whsec_{}", STANDARD.encode([42u8; 32]));
        let key = signing_key(&secret(&text)).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers(&key, "evt_1", now, b"{}").unwrap() {
            map.insert(name, value.parse().unwrap());
        }
        assert!(Webhook::new(&text).unwrap().verify(b"{}", &map).is_ok());
        assert!(Webhook::new(&text).unwrap().verify(b"{ }", &map).is_err());
    }
}
