//! A physical path to a peer: one (local socket, remote UDP address) pair, and the checks a
//! remote address must pass before we use it for ZeroTier traffic (PROTOCOL.md §4.13).

use crate::constants::*;
use crate::LocalSocketId;
use std::net::{IpAddr, SocketAddr};

/// A learned direct path. Paths are learned only from an OK received on them.
#[derive(Debug, Clone)]
pub struct Path {
    pub local_socket: LocalSocketId,
    pub remote: SocketAddr,
    pub last_send: u64,
    pub last_receive: u64,
    /// Round trip measured by OK(HELLO)/OK(ECHO) on this path.
    pub latency_ms: Option<u32>,
    /// Last OK(ECHO) we sent on it (reply gate).
    pub last_echo_reply: Option<u64>,
    /// Last network-gated packet received on it (relay policy for non-roots).
    pub last_trusted_receive: Option<u64>,
}

impl Path {
    pub fn new(now: u64, local_socket: LocalSocketId, remote: SocketAddr) -> Path {
        Path {
            local_socket,
            remote,
            last_send: 0,
            last_receive: now,
            latency_ms: None,
            last_echo_reply: None,
            last_trusted_receive: None,
        }
    }

    /// Heard from within the heartbeat window plus one ping check.
    pub fn alive(&self, now: u64) -> bool {
        now.saturating_sub(self.last_receive) < PATH_ALIVE_TIMEOUT
    }

    /// Usable for sending: heard from within the path expiration.
    pub fn usable(&self, now: u64) -> bool {
        now.saturating_sub(self.last_receive) < PATH_EXPIRATION
    }

    pub fn needs_heartbeat(&self, now: u64) -> bool {
        now.saturating_sub(self.last_send) >= PATH_HEARTBEAT_PERIOD
    }

    pub fn trust_established(&self, now: u64) -> bool {
        self.last_trusted_receive
            .is_some_and(|t| now.saturating_sub(t) < TRUST_EXPIRATION)
    }

    /// Lower is better: latency (unknown counts as slow), plus a penalty for paths not
    /// heard from recently, so a fresh path beats a silent one of similar latency.
    pub fn quality(&self, now: u64) -> u64 {
        let latency = self.latency_ms.map(u64::from).unwrap_or(1_000);
        let silence = now.saturating_sub(self.last_receive);
        let dead_penalty = if self.alive(now) { 0 } else { 100_000 };
        latency + silence / 1_000 + dead_penalty
    }

    pub fn is_same(&self, local_socket: LocalSocketId, remote: SocketAddr) -> bool {
        self.local_socket == local_socket && self.remote == remote
    }
}

/// IPv4-mapped IPv6 socket addresses (from dual-stack sockets) become plain IPv4, so one
/// endpoint has one spelling everywhere (paths, endpoint checks, what we push).
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// IP scopes as ZeroTier classifies them (`InetAddress::ipScope`), reduced to what the path
/// checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpScope {
    None,
    Multicast,
    Loopback,
    LinkLocal,
    Private,
    PseudoPrivate,
    Shared,
    Global,
}

pub fn ip_scope(ip: IpAddr) -> IpScope {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_unspecified() || v4.is_broadcast() {
                IpScope::None
            } else if v4.is_multicast() {
                IpScope::Multicast
            } else if v4.is_loopback() {
                IpScope::Loopback
            } else if v4.is_link_local() {
                IpScope::LinkLocal
            } else if v4.is_private() {
                IpScope::Private
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                IpScope::Shared
            } else if matches!(
                o[0],
                6 | 11 | 21 | 22 | 26 | 28 | 29 | 30 | 33 | 55 | 214 | 215
            ) {
                // Large blocks owned by militaries and used as private space in practice.
                IpScope::PseudoPrivate
            } else {
                IpScope::Global
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return ip_scope(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_unspecified() {
                IpScope::None
            } else if v6.is_multicast() {
                IpScope::Multicast
            } else if v6.is_loopback() {
                IpScope::Loopback
            } else if (s[0] & 0xffc0) == 0xfe80 {
                IpScope::LinkLocal
            } else if (s[0] & 0xfe00) == 0xfc00 {
                IpScope::Private
            } else {
                IpScope::Global
            }
        }
    }
}

/// The scope part of the path checks for addresses we are *told* about (RENDEZVOUS,
/// PUSH_DIRECT_PATHS): private, pseudo-private, shared or global, and not a Hurricane
/// Electric tunnel address.
pub fn scope_allows_contact(addr: SocketAddr) -> bool {
    let ip = canonical(addr).ip();
    let scope_ok = matches!(
        ip_scope(ip),
        IpScope::Private | IpScope::PseudoPrivate | IpScope::Shared | IpScope::Global
    );
    let he_tunnel = match ip {
        IpAddr::V6(v6) => v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0470,
        IpAddr::V4(_) => false,
    };
    scope_ok && !he_tunnel && addr.port() != 0
}

/// True if `ip` lies inside `prefix/bits`.
pub fn prefix_contains(prefix: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (prefix, ip) {
        (IpAddr::V4(p), IpAddr::V4(i)) => {
            let bits = bits.min(32) as u32;
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(p) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(p), IpAddr::V6(i)) => {
            let bits = bits.min(128) as u32;
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(p) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = |t: &str| ip_scope(t.parse().unwrap());
        assert_eq!(s("10.1.2.3"), IpScope::Private);
        assert_eq!(s("192.168.1.1"), IpScope::Private);
        assert_eq!(s("100.64.0.1"), IpScope::Shared);
        assert_eq!(s("127.0.0.1"), IpScope::Loopback);
        assert_eq!(s("169.254.3.4"), IpScope::LinkLocal);
        assert_eq!(s("8.8.8.8"), IpScope::Global);
        assert_eq!(s("fe80::1"), IpScope::LinkLocal);
        assert_eq!(s("fd00::1"), IpScope::Private);
        assert_eq!(s("2001:db8::1"), IpScope::Global);
        assert_eq!(s("::ffff:10.0.0.1"), IpScope::Private);
        assert_eq!(s("224.0.0.1"), IpScope::Multicast);
    }

    #[test]
    fn contact_checks() {
        assert!(scope_allows_contact("10.0.0.1:9993".parse().unwrap()));
        assert!(!scope_allows_contact("127.0.0.1:9993".parse().unwrap()));
        assert!(!scope_allows_contact("[2001:470::1]:9993".parse().unwrap()));
        assert!(!scope_allows_contact("10.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(prefix_contains(p("10.147.17.0"), 24, p("10.147.17.9")));
        assert!(!prefix_contains(p("10.147.17.0"), 24, p("10.147.18.9")));
        assert!(prefix_contains(p("fd00::"), 8, p("fd12::1")));
        assert!(!prefix_contains(p("fd00::"), 8, p("10.0.0.1")));
        assert!(prefix_contains(p("0.0.0.0"), 0, p("1.2.3.4")));
    }

    #[test]
    fn liveness() {
        let mut path = Path::new(1_000, LocalSocketId(0), "10.0.0.1:9993".parse().unwrap());
        assert!(path.alive(1_000 + PATH_ALIVE_TIMEOUT - 1));
        assert!(!path.alive(1_000 + PATH_ALIVE_TIMEOUT));
        assert!(path.usable(1_000 + PATH_EXPIRATION - 1));
        assert!(!path.usable(1_000 + PATH_EXPIRATION));
        path.last_send = 5_000;
        assert!(!path.needs_heartbeat(5_000 + PATH_HEARTBEAT_PERIOD - 1));
        assert!(path.needs_heartbeat(5_000 + PATH_HEARTBEAT_PERIOD));
    }
}
