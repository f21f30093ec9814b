//! How many connections are open, in total and per client address: past either bound a new
//! connection is refused at once, so one client opening (or stalling) connections by the
//! thousand uses up its own share of file descriptors, never everyone's. Load balancers
//! (`server.trusted_proxies`) carry many clients on their connections, so they are bounded by
//! the total only.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::http::client_address::TrustedProxies;

/// The open connections of one listener.
pub struct ConnectionLimits {
    open: AtomicUsize,
    max_open: usize,
    /// Open connections per address; an address without any has no entry.
    per_address: DashMap<IpAddr, usize>,
    max_per_address: usize,
    trusted_proxies: TrustedProxies,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections`.
    Total,
    /// `server.max_connections_per_address`.
    PerAddress,
}

impl ConnectionLimits {
    pub fn new(
        max_open: usize,
        max_per_address: usize,
        trusted_proxies: TrustedProxies,
    ) -> ConnectionLimits {
        ConnectionLimits {
            open: AtomicUsize::new(0),
            max_open,
            per_address: DashMap::new(),
            max_per_address,
            trusted_proxies,
        }
    }

    /// A place for a connection from `peer`, held until the place is dropped.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionPlace, Refusal> {
        let counted_per_address = !self.trusted_proxies.trusts(peer);
        if counted_per_address {
            let mut open = self.per_address.entry(peer).or_insert(0);
            if *open >= self.max_per_address {
                return Err(Refusal::PerAddress);
            }
            *open += 1;
        }
        let was_open = self.open.fetch_add(1, Ordering::AcqRel);
        // From here the place holds both counts, so a refusal gives them back as it drops.
        let place = ConnectionPlace {
            limits: self.clone(),
            peer: counted_per_address.then_some(peer),
        };
        if was_open >= self.max_open {
            return Err(Refusal::Total);
        }
        Ok(place)
    }
}

/// A connection's place; dropping it gives the place back.
pub struct ConnectionPlace {
    limits: Arc<ConnectionLimits>,
    peer: Option<IpAddr>,
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(peer) = self.peer {
            if let Some(mut open) = self.limits.per_address.get_mut(&peer) {
                *open = open.saturating_sub(1);
            }
            self.limits
                .per_address
                .remove_if(&peer, |_, open| *open == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_refuses_past_it_and_places_come_back() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = Arc::new(ConnectionLimits::new(
            3,
            2,
            TrustedProxies::parse(&["10.0.0.1".to_owned()]).unwrap(),
        ));
        let (one, two): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = limits.admit(one).unwrap();
        let _second = limits.admit(one).unwrap();
        assert_eq!(limits.admit(one).err(), Some(Refusal::PerAddress));
        let _other = limits.admit(two).unwrap();
        assert_eq!(limits.admit(proxy).err(), Some(Refusal::Total));
        drop(first);
        assert!(
            limits.admit(proxy).is_ok(),
            "a proxy is bounded by the total only"
        );
        assert!(limits.per_address.get(&proxy).is_none());
    }
}
