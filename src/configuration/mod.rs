//! Settings, layered the way operators expect: the defaults in
//! `config/base.toml`, then the environment's file `config/<APP_ENVIRONMENT>.toml`
//! (`local` when unset), then `APP_*` environment variables, then
//! `DATABASE_URL`, and last whatever the command line says (`serve --bind`).
//! The files of the `local` and `production` environments are compiled in
//! with the base, so the binary runs from any directory; a file of the same
//! name under `./config/` overrides them, and any other environment's file
//! must exist there.
//!
//! `settings` holds the types, `load` the layering and `validate` the checks of what was loaded.
//! What each key means is said once, in the comments of `config/base.toml`; the README's
//! configuration table repeats the keys and their defaults, and a test here holds it to the file.

mod load;
mod settings;
mod validate;

pub use settings::{
    AuthSettings, CorsSettings, OidcIssuerSettings, RetentionSettings, SessionSettings, Settings,
    WebhookSettings,
};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use config::{Config, File, FileFormat};

    const README: &str = include_str!("../../README.md");
    const BASE_CONFIG: &str = include_str!("../../config/base.toml");

    /// Every key of `config/base.toml` with its default as the README writes it (strings without
    /// quotes, but `""` for an empty one), and `None` for a key shown only as a commented-out example (`# url = ...`, or a
    /// `# [[auth.oidc]]` table, whose own keys the README describes in that key's row).
    fn base_toml_keys() -> BTreeMap<String, Option<String>> {
        let tables: BTreeMap<String, BTreeMap<String, serde_json::Value>> = Config::builder()
            .add_source(File::from_str(BASE_CONFIG, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("config/base.toml is valid");
        let mut keys = BTreeMap::new();
        for (table, entries) in tables {
            for (key, value) in entries {
                // An empty string has no code span of its own in Markdown: the README writes it
                // `""`. A list is written with a space after each comma, as in the file.
                let default = match value {
                    serde_json::Value::String(text) if text.is_empty() => "\"\"".to_owned(),
                    serde_json::Value::String(text) => text,
                    other => other.to_string().replace(',', ", "),
                };
                keys.insert(format!("{table}.{key}"), Some(default));
            }
        }
        let mut table = "";
        let mut in_example_table = false;
        for line in BASE_CONFIG.lines() {
            let Some(comment) = line.strip_prefix("# ") else {
                in_example_table = false;
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    table = name;
                }
                continue;
            };
            if let Some(name) = comment
                .strip_prefix("[[")
                .and_then(|c| c.strip_suffix("]]"))
            {
                keys.entry(name.to_owned()).or_insert(None);
                in_example_table = true;
            } else if let Some((key, _)) = comment.split_once(" = ")
                && !in_example_table
                && key
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
            {
                keys.entry(format!("{table}.{key}")).or_insert(None);
            }
        }
        keys
    }

    /// The rows of the README's configuration table as (key, default): the default is a cell's
    /// first code span (`false` (`true` in `local`)), `None` when it has none ("unset"). A row
    /// may name several keys and their defaults, each list separated by " / ", or one default
    /// for all. Environment variables (`DATABASE_URL`, `RUST_LOG`) are no keys of the files.
    fn readme_table() -> Vec<(String, Option<String>)> {
        let first_code_span = |text: &str| text.split('`').nth(1).map(str::to_owned);
        let section = README
            .split_once("\n## Configuration\n")
            .expect("README.md has a section \"## Configuration\"")
            .1;
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut rows = Vec::new();
        // The header and the |---| line first.
        for line in section.lines().filter(|line| line.starts_with('|')).skip(2) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let names: Vec<String> = cells[1]
                .split(" / ")
                .map(|name| {
                    first_code_span(name)
                        .unwrap_or_else(|| panic!("{line:?}: a key belongs in backticks"))
                })
                .collect();
            let defaults: Vec<Option<String>> =
                cells[2].split(" / ").map(first_code_span).collect();
            assert!(
                defaults.len() == 1 || defaults.len() == names.len(),
                "{line:?}: one default, or one per key"
            );
            for (index, name) in names.into_iter().enumerate() {
                if !name
                    .bytes()
                    .all(|byte| byte.is_ascii_uppercase() || byte == b'_')
                {
                    rows.push((name, defaults[index.min(defaults.len() - 1)].clone()));
                }
            }
        }
        rows
    }

    fn shown(default: &Option<String>) -> String {
        default
            .as_ref()
            .map_or_else(|| "none".to_owned(), |value| format!("`{value}`"))
    }

    /// The README's table is the operators' summary of `config/base.toml`: the same keys, with
    /// the same defaults.
    #[test]
    fn the_readme_table_names_base_tomls_keys_with_their_defaults() {
        let base = base_toml_keys();
        let mut problems = Vec::new();
        let mut documented = BTreeSet::new();
        for (key, default) in readme_table() {
            if !documented.insert(key.clone()) {
                problems.push(format!("{key}: twice in the README's table"));
            }
            match base.get(&key) {
                None => problems.push(format!("{key}: in the README's table, not in base.toml")),
                Some(expected) if *expected != default => problems.push(format!(
                    "{key}: the README's default is {}, base.toml's {}",
                    shown(&default),
                    shown(expected)
                )),
                Some(_) => {}
            }
        }
        for key in base.keys().filter(|key| !documented.contains(*key)) {
            problems.push(format!("{key}: in base.toml, not in the README's table"));
        }
        assert!(
            problems.is_empty(),
            "README.md's configuration table and config/base.toml disagree:\n{}",
            problems.join("\n")
        );
    }
}
