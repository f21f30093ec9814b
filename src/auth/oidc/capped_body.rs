//! An identity provider's answer read with a bound on its size. The provider is trusted for its
//! keys, not for its sizes: an answer of 100 MB, by mistake or on purpose, must cost this
//! service no more than the bound in memory, so the body is taken chunk by chunk and given up as
//! soon as it passes the bound (or at once, when its `Content-Length` already says it will).

use anyhow::Context;

/// The whole body of `response`, or an error once it is longer than `max_bytes` (which never
/// quotes the body).
pub(super) async fn read(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> anyhow::Result<Vec<u8>> {
    if let Some(declared) = response.content_length() {
        anyhow::ensure!(
            declared <= max_bytes as u64,
            "the answer declares {declared} bytes, more than auth.jwks_max_bytes ({max_bytes})"
        );
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the answer")? {
        anyhow::ensure!(
            body.len() + chunk.len() <= max_bytes,
            "the answer is longer than auth.jwks_max_bytes ({max_bytes} bytes)"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
