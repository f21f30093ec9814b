//! Who the client is when a load balancer stands in front: the peer's address, unless the peer is
//! a trusted proxy (`server.trusted_proxies`); then the right-most address of `X-Forwarded-For`
//! (or, without it, of `Forwarded`'s `for=`) that is not a trusted proxy itself. Each proxy
//! appends the address it saw, so everything right of the first untrusted hop was written by
//! proxies we trust, and everything left of it by whoever the client is: a client can put any
//! address into the header, but never past a trusted proxy. From a peer we do not trust, the
//! headers are ignored.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{FORWARDED, HeaderMap, HeaderName};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Reads CIDRs (`10.0.0.0/8`) and single addresses (`127.0.0.1`, `::1`).
    pub fn parse(entries: &[String]) -> anyhow::Result<TrustedProxies> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| anyhow::anyhow!("{entry:?} is neither an address nor a CIDR"))
            })
            .collect::<anyhow::Result<Vec<IpNet>>>()
            .map(TrustedProxies)
    }

    pub(crate) fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_of(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?.ip());
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = forwarded_chain(headers);
        // Right to left: the first hop we do not trust is the client. A hop we cannot read
        // ends the walk at the last proxy that wrote one we could.
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            let Some(address) = hop else {
                break;
            };
            client = *address;
            if !self.trusts(*address) {
                break;
            }
        }
        Some(client)
    }
}

/// An IPv4 address seen as `::ffff:a.b.c.d` is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses the proxies recorded, oldest first; `None` for an entry that is no address
/// (`unknown`, an obfuscated identifier, garbage).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let x_forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    if !x_forwarded_for.is_empty() {
        return x_forwarded_for.into_iter().map(address_of).collect();
    }
    // RFC 7239: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`.
    headers
        .get_all(FORWARDED)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| address_of(value.trim_matches('"')))
        })
        .collect()
}

/// `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn address_of(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn client(trusted: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> String {
        let mut request = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (name, value) in headers {
            request = request.append_header((*name, *value));
        }
        let request = request.to_http_request();
        trusted
            .client_of(request.peer_addr(), request.headers())
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = [("X-Forwarded-For", "203.0.113.9")];
        assert_eq!(
            client(&trusted, "198.51.100.4:5000", &spoofed),
            "198.51.100.4"
        );
        assert_eq!(client(&proxies(&[]), "10.1.2.3:5000", &spoofed), "10.1.2.3");
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let through = |value| client(&trusted, "127.0.0.1:5000", &[("X-Forwarded-For", value)]);
        assert_eq!(through("203.0.113.9"), "203.0.113.9");
        // What the client wrote itself stays left of the hop our proxy saw.
        assert_eq!(through("6.6.6.6, 203.0.113.9, 10.0.0.7"), "203.0.113.9");
        assert_eq!(through("10.0.0.8, 10.0.0.7"), "10.0.0.8");
        assert_eq!(through("garbage, 10.0.0.7"), "10.0.0.7");
        assert_eq!(client(&trusted, "127.0.0.1:5000", &[]), "127.0.0.1");
        assert_eq!(
            client(
                &trusted,
                "127.0.0.1:5000",
                &[
                    ("X-Forwarded-For", "6.6.6.6"),
                    ("X-Forwarded-For", "203.0.113.9")
                ]
            ),
            "203.0.113.9"
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let trusted = proxies(&["127.0.0.1"]);
        let forwarded = |value| client(&trusted, "127.0.0.1:5000", &[("Forwarded", value)]);
        assert_eq!(forwarded("for=192.0.2.60;proto=http"), "192.0.2.60");
        assert_eq!(forwarded(r#"for="[2001:db8::1]:4711""#), "2001:db8::1");
        assert_eq!(forwarded("for=192.0.2.60, for=127.0.0.1"), "192.0.2.60");
    }

    #[test]
    fn proxies_are_addresses_or_cidrs() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).is_ok());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }
}
