//! How far the URLs of identity providers are trusted. Signing keys fetched over plain HTTP could
//! be swapped by anyone on the path, so issuers, `jwks_uri`s (configured or discovered) and the
//! redirects followed while fetching must be `https://`; only loopback addresses (a developer's or
//! a test's own issuer) may use plain HTTP. Configuration validation applies the same rule at
//! start, so a misconfigured issuer is refused before the first token arrives.

use anyhow::Context;

/// Refuses `url` unless it is `https://`, or `http://` on a loopback address; `what` names it
/// in the error.
pub(crate) fn require_https_url(what: &str, url: &str) -> anyhow::Result<()> {
    let uri: actix_web::http::Uri = url
        .parse()
        .with_context(|| format!("{what} {url:?} is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => anyhow::bail!("{what} {url:?} must be an https:// URL (plain http only on localhost)"),
    }
}

#[cfg(test)]
mod tests {
    use super::require_https_url;

    #[test]
    fn only_https_or_plain_http_on_loopback() {
        for url in [
            "https://login.microsoftonline.com/t/v2.0",
            "http://127.0.0.1:9999",
            "http://localhost:9999/realm",
            "http://[::1]:9999",
        ] {
            assert!(require_https_url("issuer", url).is_ok(), "{url}");
        }
        for url in [
            "accounts.google.com",
            "http://login.example.com",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1/keys",
            "https:///keys",
        ] {
            assert!(require_https_url("issuer", url).is_err(), "{url}");
        }
    }

    #[test]
    fn the_refusal_names_what_was_refused() {
        let error = require_https_url("jwks_uri", "http://keys.example.com").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("jwks_uri \"http://keys.example.com\""),
            "{error}"
        );
    }
}
