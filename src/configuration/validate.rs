//! The checks run on loaded settings: what the types cannot say, refused before anything starts.

use std::time::Duration;

use anyhow::Context;

use super::settings::ServerSettings;
use super::{AuthSettings, CorsSettings, OidcIssuerSettings, WebhookSettings};
use crate::auth::require_https_url;

/// Clock skew tolerated on `exp` and `nbf`; more would keep an expired token usable for longer
/// than any clock is wrong.
const MAX_JWT_LEEWAY: Duration = Duration::from_secs(60);

impl CorsSettings {
    /// Drops blank entries (an empty `APP_CORS__ALLOWED_ORIGINS` means none) and refuses
    /// anything a browser would never send as an `Origin`, which could never match.
    pub(super) fn check(&mut self) -> anyhow::Result<()> {
        self.allowed_origins
            .retain(|origin| !origin.trim().is_empty());
        for origin in &mut self.allowed_origins {
            *origin = origin.trim().to_owned();
            let authority = origin
                .split_once("://")
                .filter(|(scheme, _)| !scheme.is_empty())
                .map(|(_, authority)| authority);
            anyhow::ensure!(
                authority.is_some_and(|authority| {
                    !authority.is_empty()
                        && !authority.contains(['/', '?', '#'])
                        && origin.parse::<actix_web::http::Uri>().is_ok()
                }),
                "cors.allowed_origins: {origin:?} is not an origin; write scheme://host[:port] \
                 with no path or trailing slash, exactly as the browser sends it \
                 (e.g. https://outlook.office.com)"
            );
        }
        Ok(())
    }
}

impl ServerSettings {
    /// Drops blank proxies (an empty `APP_SERVER__TRUSTED_PROXIES` means none) and refuses one
    /// that is not an address or a CIDR, and bounds that would refuse every connection.
    pub(super) fn check(&mut self) -> anyhow::Result<()> {
        self.trusted_proxies
            .retain(|proxy| !proxy.trim().is_empty());
        crate::http::client_address::TrustedProxies::parse(&self.trusted_proxies)
            .context("server.trusted_proxies")?;
        anyhow::ensure!(
            !self.request_head_timeout.is_zero(),
            "server.request_head_timeout_ms is 0; every request would be cut"
        );
        anyhow::ensure!(
            self.max_connections > 0 && self.max_connections_per_address > 0,
            "server.max_connections and server.max_connections_per_address must be more than 0"
        );
        Ok(())
    }
}

impl WebhookSettings {
    /// With a URL: it must be https (plain http on loopback only, as for the identity
    /// providers), and the secret must be a Standard Webhooks one.
    pub(super) fn check(&mut self) -> anyhow::Result<()> {
        self.url = self.url.trim().to_owned();
        if !self.enabled() {
            return Ok(());
        }
        require_https_url("webhooks.url", &self.url)?;
        let secret = self.secret.as_ref().context(
            "webhooks.url is set but webhooks.secret is not; give it as APP_WEBHOOKS__SECRET \
             (whsec_ and the base64 of 24 to 64 random bytes)",
        )?;
        crate::webhooks::signing_key(secret).context("webhooks.secret")?;
        anyhow::ensure!(
            !self.timeout.is_zero(),
            "webhooks.timeout_ms is 0; every attempt would fail"
        );
        anyhow::ensure!(
            self.max_concurrency > 0,
            "webhooks.max_concurrency is 0; nothing would ever be delivered"
        );
        Ok(())
    }
}

impl AuthSettings {
    /// Refuses key fetches that could never succeed, a leeway past 60 s, and issuers that could
    /// never match or be reached safely.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.jwks_fetch_timeout.is_zero(),
            "auth.jwks_fetch_timeout_ms is 0; every key fetch would fail"
        );
        anyhow::ensure!(
            self.jwks_max_bytes > 0 && self.jwks_max_keys > 0,
            "auth.jwks_max_bytes or auth.jwks_max_keys is 0; every key fetch would fail"
        );
        anyhow::ensure!(
            self.jwt_leeway <= MAX_JWT_LEEWAY,
            "auth.jwt_leeway_secs is {}; at most 60 seconds of clock skew are allowed",
            self.jwt_leeway.as_secs()
        );
        for (index, oidc) in self.oidc.iter().enumerate() {
            oidc.check()
                .with_context(|| format!("auth.oidc entry {} ({:?})", index + 1, oidc.issuer))?;
            // One `iss` must lead to one entry, or which audience applies would be a guess.
            let earlier: Vec<&String> = self.oidc[..index]
                .iter()
                .flat_map(|other| std::iter::once(&other.issuer).chain(&other.issuer_aliases))
                .collect();
            for name in std::iter::once(&oidc.issuer).chain(&oidc.issuer_aliases) {
                anyhow::ensure!(
                    !earlier.contains(&name),
                    "auth.oidc: issuer {name:?} is configured twice"
                );
            }
        }
        Ok(())
    }
}

impl OidcIssuerSettings {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.audience.trim().is_empty(), "audience is empty");
        match &self.jwks_uri {
            Some(jwks_uri) => require_https_url("jwks_uri", jwks_uri),
            // Without a jwks_uri the issuer is fetched from, so it must be a URL.
            None => require_https_url("issuer", &self.issuer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::Settings;

    #[test]
    fn allowed_origins_must_be_origins() {
        let check = |origins: &[&str]| {
            CorsSettings {
                allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            }
            .check()
        };
        assert!(check(&["https://outlook.office.com", "chrome-extension://abcdef"]).is_ok());
        assert!(check(&["http://127.0.0.1:8081", " ", ""]).is_ok());
        assert!(check(&["https://outlook.office.com/"]).is_err());
        assert!(check(&["https://x.com/path"]).is_err());
        assert!(check(&["outlook.office.com"]).is_err());
        assert!(check(&["*"]).is_err());
    }

    #[test]
    fn oidc_issuers_must_be_reachable_safely() {
        let check = |issuer: &str, jwks_uri: Option<&str>, leeway: u64| {
            let mut auth = Settings::defaults().auth;
            auth.jwt_leeway = Duration::from_secs(leeway);
            auth.oidc = vec![OidcIssuerSettings {
                issuer: issuer.to_owned(),
                audience: "api://email-sessions".to_owned(),
                jwks_uri: jwks_uri.map(str::to_owned),
                issuer_aliases: Vec::new(),
                required_scope: None,
            }];
            auth.check()
        };
        assert!(check("https://login.microsoftonline.com/t/v2.0", None, 60).is_ok());
        assert!(check("http://127.0.0.1:9999", None, 0).is_ok());
        assert!(check("http://localhost:9999/realm", None, 0).is_ok());
        assert!(
            check(
                "accounts.google.com",
                Some("https://www.googleapis.com/oauth2/v3/certs"),
                60
            )
            .is_ok()
        );
        assert!(check("accounts.google.com", None, 60).is_err());
        assert!(check("http://login.example.com", None, 60).is_err());
        assert!(
            check(
                "https://login.example.com",
                Some("http://keys.example.com"),
                60
            )
            .is_err()
        );
        assert!(check("https://login.example.com", None, 61).is_err());
    }

    #[test]
    fn an_issuer_is_configured_once_under_all_its_spellings() {
        let issuer = |name: &str, aliases: &[&str]| OidcIssuerSettings {
            issuer: name.to_owned(),
            audience: "a".to_owned(),
            jwks_uri: None,
            issuer_aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
            required_scope: None,
        };
        let mut auth = Settings::defaults().auth;
        auth.oidc = vec![
            issuer("https://accounts.google.com", &["accounts.google.com"]),
            issuer("https://login.example.com", &[]),
        ];
        assert!(auth.check().is_ok());
        auth.oidc.push(issuer(
            "https://other.example.com",
            &["accounts.google.com"],
        ));
        assert!(auth.check().is_err());
        auth.oidc.pop();
        auth.jwks_fetch_timeout = Duration::ZERO;
        assert!(auth.check().is_err());
    }

    #[test]
    fn bounds_that_refuse_every_key_set_are_refused() {
        let mut auth = Settings::defaults().auth;
        auth.jwks_max_bytes = 0;
        assert!(auth.check().is_err());
        auth.jwks_max_bytes = 1;
        auth.jwks_max_keys = 0;
        assert!(auth.check().is_err());
        auth.jwks_max_keys = 1;
        assert!(auth.check().is_ok());
    }
}
