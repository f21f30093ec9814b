//! The command line of `loadtest burst`: what to fire, at whom, how
//! hard. Values are checked here, at the edge, so the rest of the module
//! works with base URLs it can append paths to and counts that are not zero.

use std::num::NonZeroUsize;

use clap::ValueEnum;
use serde::Serialize;

use crate::service_cli::ServiceBinary;

/// What the duplicates of one session carry, and so which race the burst provokes.
#[derive(ValueEnum, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// D identical PUTs per session: the plugin's duplicate reports, which must
    /// collapse into one write and version 1.
    Identical,
    /// D different contents per session: first-touch and lost-update races; the
    /// stored content must be the one answered with the highest version.
    Distinct,
    /// U users send identical PUTs to the SAME session ID strings: each user's
    /// session must hold only that user's content.
    CrossUser,
}

impl Mode {
    /// The name as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Identical => "identical",
            Mode::Distinct => "distinct",
            Mode::CrossUser => "cross-user",
        }
    }
}

/// `loadtest burst`: fires concurrent duplicate PUTs, then reads every
/// session back and checks it.
#[derive(clap::Args, Debug, Clone)]
pub struct BurstArgs {
    /// Base URL of a service instance; repeat for several instances, which
    /// requests then visit in turn (round-robin).
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        value_parser = parse_base_url
    )]
    pub urls: Vec<String>,

    /// Sessions per user.
    #[arg(long, value_name = "S", default_value = "100")]
    pub sessions: NonZeroUsize,

    /// PUTs per session (and user) sent so that they are in flight together.
    #[arg(long, value_name = "D", default_value = "20")]
    pub duplicates: NonZeroUsize,

    /// Users taking part; the first U tokens are used.
    #[arg(long, value_name = "U", default_value = "1")]
    pub users: NonZeroUsize,

    /// Requests in flight at any moment (and HTTP connections per instance).
    #[arg(long, value_name = "C", default_value = "64")]
    pub connections: NonZeroUsize,

    /// What the duplicates carry.
    #[arg(long, value_enum, default_value_t = Mode::Identical)]
    pub mode: Mode,

    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Also measure GET /healthz with the same connections and number of
    /// requests, as the HTTP ceiling to compare the PUT burst against.
    #[arg(long)]
    pub ceiling: bool,

    /// Prefix of every session ID, so repeated runs do not meet each other's
    /// sessions; 8 random hex characters when absent.
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,

    /// Seconds one request may take before it counts as failed.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub timeout_secs: u64,

    /// The service's process ID on this machine: the report then gives its CPU time per
    /// request in each phase (from /proc/<pid>/stat).
    #[arg(long, value_name = "PID")]
    pub service_pid: Option<u32>,
}

/// Whose tokens the burst sends: given ones, or users it creates when told to.
#[derive(clap::Args, Debug, Clone)]
pub struct BurstUsers {
    /// API token of a user; repeat in user order.
    #[arg(
        long = "token",
        value_name = "T",
        env = "BURST_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tokens: Vec<String>,

    /// Create the users instead (`burst-<run id>-u<n>`), with `email-sessions user create` in
    /// the database that command's configuration names (`DATABASE_URL`, or its embedded one).
    /// Never done without this flag: it writes to a database the burst did not create.
    #[arg(long, conflicts_with = "tokens")]
    pub create_users: bool,

    #[command(flatten)]
    pub service: ServiceBinary,
}

/// Accepts plain-HTTP base URLs and drops a trailing slash, so paths can be
/// appended with `format!`. HTTPS is refused up front because the HTTP client
/// is built without TLS, and a clear message beats a thousand failed requests.
fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|error| format!("not a URL: {error}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "only http:// URLs are supported (this build has no TLS), got {:?}",
            url.scheme()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL takes no query or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A run ID becomes part of session IDs, so it must use their alphabet.
fn parse_run_id(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > 32 {
        return Err("a run ID has 1 to 32 characters".to_owned());
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("a run ID uses only A-Z, a-z, 0-9, '-' and '_'".to_owned());
    }
    Ok(raw.to_owned())
}

/// A fresh run ID: 8 random hex characters.
pub fn random_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        burst: BurstArgs,
        #[command(flatten)]
        users: BurstUsers,
    }

    fn parse_all(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("burst").chain(args.iter().copied()))
    }

    fn parse(args: &[&str]) -> Result<BurstArgs, clap::Error> {
        parse_all(args).map(|c| c.burst)
    }

    #[test]
    fn repeated_tokens_are_kept_in_order_and_exclude_creating_users() {
        let users = parse_all(&["--token", "t0", "--token", "t1"])
            .unwrap()
            .users;
        assert_eq!(users.tokens, ["t0", "t1"]);
        assert!(!users.create_users);
        assert!(parse_all(&["--create-users"]).unwrap().users.create_users);
        assert!(parse_all(&["--token", "t0", "--create-users"]).is_err());
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.urls, ["http://127.0.0.1:8080"]);
        assert_eq!(args.sessions.get(), 100);
        assert_eq!(args.duplicates.get(), 20);
        assert_eq!(args.users.get(), 1);
        assert_eq!(args.connections.get(), 64);
        assert_eq!(args.mode, Mode::Identical);
        assert_eq!(args.timeout_secs, 30);
        assert!(args.run_id.is_none());
        assert!(!args.json && !args.ceiling);
    }

    #[test]
    fn repeated_urls_are_kept_in_order() {
        let args = parse(&[
            "--url",
            "http://a:1/",
            "--url",
            "http://b:2",
            "--mode",
            "cross-user",
        ])
        .unwrap();
        assert_eq!(args.urls, ["http://a:1", "http://b:2"]);
        assert_eq!(args.mode, Mode::CrossUser);
    }

    #[test]
    fn bad_values_are_refused_at_the_edge() {
        assert!(parse(&["--url", "https://x"]).is_err());
        assert!(parse(&["--url", "not a url"]).is_err());
        assert!(parse(&["--sessions", "0"]).is_err());
        assert!(parse(&["--run-id", "has space"]).is_err());
    }

    #[test]
    fn mode_names_match_the_command_line() {
        for mode in Mode::value_variants() {
            let value = mode.to_possible_value().unwrap();
            assert_eq!(value.get_name(), mode.as_str());
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }

    #[test]
    fn random_run_ids_are_eight_hex_characters() {
        let id = random_run_id();
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
