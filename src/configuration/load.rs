//! Reads the layers (see the `configuration` module doc) into [`Settings`] and validates them.

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};

use super::Settings;

const BASE_CONFIG: &str = include_str!("../../config/base.toml");

/// The environments whose files are compiled in.
const BUILT_IN_ENVIRONMENTS: [(&str, &str); 2] = [
    ("local", include_str!("../../config/local.toml")),
    ("production", include_str!("../../config/production.toml")),
];

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
                    .with_list_parse_key("webhooks.retry_delays_ms")
                    .with_list_parse_key("server.trusted_proxies")
                    .try_parsing(true),
            )
            .build()
            .with_context(|| format!("reading the configuration of environment {environment:?}"))?
            .try_deserialize()
            .context("parsing configuration")?;
        settings.environment = environment;
        settings.cors.check()?;
        settings.auth.check()?;
        settings.webhooks.check()?;
        settings.server.check()?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn compiled_in_defaults_parse() {
        let settings = Settings::defaults();
        assert!(settings.database.url.is_none());
        assert!(!settings.database.embedded);
    }

    #[test]
    fn duration_keys_are_read_in_the_unit_they_name() {
        let settings = Settings::defaults();
        assert_eq!(
            settings.sessions.idle_timeout,
            Duration::from_millis(30_000)
        );
        assert_eq!(settings.server.shutdown_timeout, Duration::from_secs(30));
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
