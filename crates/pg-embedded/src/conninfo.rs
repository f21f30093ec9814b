//! Handing a database to another program: connection settings rendered as a libpq key/value
//! string, which both `tokio_postgres` and the PostgreSQL tools (`psql`, `pgbench`) read.

/// Renders `config` as a libpq conninfo string, for `DATABASE_URL` of a child process or for
/// `pgbench`.
pub fn conninfo(config: &tokio_postgres::Config) -> String {
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        let host = match host {
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
        };
        parts.push(("host", host));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(("port", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        parts.push(("user", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        parts.push(("password", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(("dbname", dbname.to_owned()));
    }
    parts
        .into_iter()
        .map(|(key, value)| {
            format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_round_trips_through_tokio_postgres() {
        let config: tokio_postgres::Config =
            "postgresql://me:p%27w@/db?host=%2Ftmp%2Fa%20b&port=5433"
                .parse()
                .unwrap();
        let again: tokio_postgres::Config = conninfo(&config).parse().unwrap();
        assert_eq!(again.get_hosts(), config.get_hosts());
        assert_eq!(again.get_ports(), config.get_ports());
        assert_eq!(again.get_user(), Some("me"));
        assert_eq!(again.get_password(), Some(&b"p'w"[..]));
        assert_eq!(again.get_dbname(), Some("db"));
    }
}
