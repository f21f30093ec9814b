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

mod load;
mod settings;
mod validate;

pub use settings::{
    AuthSettings, CorsSettings, OidcIssuerSettings, RetentionSettings, SessionSettings, Settings,
};
