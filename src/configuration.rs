//! Settings, layered the way operators expect: the defaults in
//! `config/base.toml`, then the environment's file `config/<APP_ENVIRONMENT>.toml`
//! (`local` when unset), then `APP_*` environment variables, then
//! `DATABASE_URL`, and last whatever the command line says (`serve --bind`).
//! The files of the `local` and `production` environments are compiled in
//! with the base, so the binary runs from any directory; a file of the same
//! name under `./config/` overrides them, and any other environment's file
//! must exist there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::storage::{PoolSettings, RetryPolicy};

const BASE_CONFIG: &str = include_str!("../config/base.toml");

/// The environments whose files are compiled in.
const BUILT_IN_ENVIRONMENTS: [(&str, &str); 2] = [
    ("local", include_str!("../config/local.toml")),
    ("production", include_str!("../config/production.toml")),
];

/// Every knob of the service; see `config/base.toml` for their meaning.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The environment these settings were loaded for (`APP_ENVIRONMENT`).
    #[serde(skip)]
    pub environment: String,
    /// HTTP listener settings.
    pub server: ServerSettings,
    /// Where the data lives and how we talk to it.
    pub database: DatabaseSettings,
    /// The per-session serializer.
    pub sessions: SessionSettings,
    /// Bearer token verification.
    pub auth: AuthSettings,
    /// Cross-origin access for browser plugins.
    pub cors: CorsSettings,
    /// What one user may store.
    pub quotas: QuotaSettings,
    /// How long sessions are kept.
    pub retention: RetentionSettings,
}

/// The data lifecycle.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Delete sessions not updated for this many days; 0 keeps them forever.
    pub days: u32,
    /// How often the sweep runs.
    pub sweep_interval_ms: u64,
    /// Sessions deleted per transaction.
    pub batch_size: i64,
}

/// Per-user limits.
#[derive(Debug, Clone, Deserialize)]
pub struct QuotaSettings {
    /// New sessions (minted or created by a first PUT) per user per UTC day; 0: unlimited.
    pub new_sessions_per_day: u32,
}

/// Which web pages may call the API from a browser.
#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Exact origins (`scheme://host[:port]`, no path) allowed to read answers; empty: none.
    pub allowed_origins: Vec<String>,
}

/// HTTP listener settings.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request body may take to arrive (then 408).
    pub body_read_timeout_ms: u64,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// How long, after the listener closes, accepted connections get to
    /// reach a worker before the workers stop taking new ones.
    pub drain_grace_ms: u64,
}

/// Database connection and pool settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL (`DATABASE_URL`).
    pub url: Option<String>,
    /// Without a URL, run the private embedded cluster; without either, refuse to start.
    pub embedded: bool,
    /// Root directory of the embedded cluster.
    pub embedded_dir: PathBuf,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection.
    pub pool_wait_timeout_ms: u64,
    /// Longest time to open a connection.
    pub connect_timeout_ms: u64,
    /// Server-side statement timeout.
    pub statement_timeout_ms: u64,
}

/// Settings of the per-session serializer.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// Idle time after which an actor stops.
    pub idle_timeout_ms: u64,
    /// Bound on live actors.
    pub max_live_actors: usize,
    /// Bound on requests waiting in one actor.
    pub max_waiting_per_session: usize,
    /// Bound on update requests in flight in this instance.
    pub max_in_flight_updates: usize,
    /// Retries of a transient database error.
    pub retry_attempts: u32,
    /// First backoff delay.
    pub retry_base_delay_ms: u64,
    /// Largest backoff delay.
    pub retry_max_delay_ms: u64,
}

/// Token verification settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// How long a verified token is remembered.
    pub token_cache_ttl_ms: u64,
    /// Most tokens (and user IDs, and failing addresses) remembered at once.
    pub token_cache_capacity: usize,
    /// Failed authentications an address may make per window before it gets 429.
    pub failures_before_throttle: u32,
    /// The window, in ms.
    pub throttle_window_ms: u64,
    /// Identity providers whose tokens are accepted beside API tokens (`[[auth.oidc]]`).
    #[serde(default)]
    pub oidc: Vec<OidcIssuerSettings>,
    /// Clock skew allowed on a token's `exp` and `nbf`, in seconds (at most 60).
    pub jwt_leeway_secs: u64,
    /// Shortest time between two JWKS fetches of one issuer, so tokens naming made-up key IDs
    /// cannot hammer it.
    pub jwks_refetch_interval_ms: u64,
    /// Keys older than this are fetched again when next needed (and kept if that fails).
    pub jwks_max_age_ms: u64,
    /// Longest time a discovery or JWKS fetch may take.
    pub jwks_fetch_timeout_ms: u64,
}

/// One OpenID Connect issuer whose tokens are accepted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerSettings {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// A value that must be in a token's `aud`: this API's identifier at the issuer.
    pub audience: String,
    /// Where its signing keys are; by default from `<issuer>/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// Other spellings of `iss` that mean this same issuer (Google's `accounts.google.com`):
    /// their tokens name the same people, so they are provisioned under `issuer`.
    #[serde(default)]
    pub issuer_aliases: Vec<String>,
    /// A scope the token's `scp` must hold: tells an access token for this API from an ID token
    /// that happens to carry the same audience (Entra ID, when plugin and API share one app).
    pub required_scope: Option<String>,
}

impl Settings {
    /// Reads the layered settings from the working directory and environment.
    pub fn load() -> anyhow::Result<Settings> {
        let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".to_string());
        let mut builder =
            Config::builder().add_source(File::from_str(BASE_CONFIG, FileFormat::Toml));
        let built_in = BUILT_IN_ENVIRONMENTS
            .iter()
            .find(|(name, _)| *name == environment);
        if let Some((_, text)) = built_in {
            builder = builder.add_source(File::from_str(text, FileFormat::Toml));
        }
        // A file on disk overrides the compiled-in one (a deployment may mount its own);
        // an environment without a compiled-in file must have one.
        builder = builder.add_source(
            File::with_name(&format!("config/{environment}.toml")).required(built_in.is_none()),
        );
        let mut settings: Settings = builder
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("cors.allowed_origins")
                    .try_parsing(true),
            )
            .build()
            .with_context(|| format!("reading the configuration of environment {environment:?}"))?
            .try_deserialize()
            .context("parsing configuration")?;
        settings.environment = environment;
        settings.cors.check()?;
        settings.auth.check()?;
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            settings.database.url = Some(url);
        }
        Ok(settings)
    }

    /// The compiled-in defaults alone, for tests that must not depend on the
    /// environment they run in.
    pub fn defaults() -> Settings {
        Config::builder()
            .add_source(File::from_str(BASE_CONFIG, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("config/base.toml is valid")
    }
}

impl DatabaseSettings {
    /// The pool's size and timeouts.
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            size: self.pool_size,
            wait_timeout: Duration::from_millis(self.pool_wait_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

impl SessionSettings {
    /// Idle time after which an actor stops.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// How transient database failures are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retry_attempts,
            base_delay: Duration::from_millis(self.retry_base_delay_ms),
            max_delay: Duration::from_millis(self.retry_max_delay_ms),
        }
    }
}

impl CorsSettings {
    /// Drops blank entries (an empty `APP_CORS__ALLOWED_ORIGINS` means none) and refuses
    /// anything a browser would never send as an `Origin`, which could never match.
    fn check(&mut self) -> anyhow::Result<()> {
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

impl AuthSettings {
    /// How long a verified token is remembered.
    pub fn token_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.token_cache_ttl_ms)
    }

    /// Refuses a leeway past 60 s and issuers that could never match or be reached safely.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.jwks_fetch_timeout_ms > 0,
            "auth.jwks_fetch_timeout_ms is 0; every key fetch would fail"
        );
        anyhow::ensure!(
            self.jwt_leeway_secs <= 60,
            "auth.jwt_leeway_secs is {}; at most 60 seconds of clock skew are allowed",
            self.jwt_leeway_secs
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

/// Keys fetched over plain HTTP could be swapped by anyone on the path, so only loopback
/// addresses (a developer's or a test's own issuer) may use it.
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
    use super::*;

    #[test]
    fn compiled_in_defaults_parse() {
        let settings = Settings::defaults();
        assert!(settings.database.url.is_none());
        assert!(!settings.database.embedded);
    }

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
            auth.jwt_leeway_secs = leeway;
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
        auth.jwks_fetch_timeout_ms = 0;
        assert!(auth.check().is_err());
    }

    #[test]
    fn only_the_local_environment_runs_the_embedded_database() {
        for (name, text) in BUILT_IN_ENVIRONMENTS {
            let settings: Settings = Config::builder()
                .add_source(File::from_str(BASE_CONFIG, FileFormat::Toml))
                .add_source(File::from_str(text, FileFormat::Toml))
                .build()
                .and_then(Config::try_deserialize)
                .unwrap_or_else(|error| panic!("config/{name}.toml: {error}"));
            assert_eq!(settings.database.embedded, name == "local", "{name}");
        }
    }
}
