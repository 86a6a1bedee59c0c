//! What we know about one other node: its identity and long-term key, the version it runs,
//! its direct paths, and the per-peer rate gates of PROTOCOL.md §4 and §8.

use crate::constants::*;
use crate::path::Path;
use crate::LocalSocketId;
use std::collections::HashMap;
use std::net::SocketAddr;
use zt_crypto::{CipherSuite, Identity, PeerKey};

/// The software version a peer reported in HELLO or OK(HELLO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteVersion {
    pub protocol: u8,
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
}

pub struct Peer {
    pub identity: Identity,
    pub key: PeerKey,
    pub version: Option<RemoteVersion>,
    pub latency_ms: Option<u32>,
    pub paths: Vec<Path>,
    /// When we first learned this peer (keeps fresh peers from expiring before contact).
    pub created: u64,
    /// Anything authenticated received from this peer (direct or relayed); 0 = never.
    pub last_receive: u64,
    /// Last frame or network config traffic from this peer; 0 = never. Only such traffic
    /// keeps us pinging a leaf, so idle peers' paths lapse and the peers are forgotten.
    pub last_nontrivial_receive: u64,
    pub last_full_hello: Option<u64>,
    pub last_whois_answered: Option<u64>,
    pub last_direct_path_push_sent: Option<u64>,
    pub last_direct_path_push_received: Option<u64>,
    pub direct_path_push_cutoff_count: u32,
    pub last_trusted_receive: Option<u64>,
    /// HELLO sent back to addresses the peer used that are not yet paths, for the 1/s gate.
    pub unknown_path_contacts: HashMap<SocketAddr, u64>,
    pub last_identity_collision_check: Option<u64>,
}

impl Peer {
    pub fn new(now: u64, identity: Identity, key: PeerKey) -> Peer {
        Peer {
            identity,
            key,
            version: None,
            latency_ms: None,
            paths: Vec::new(),
            created: now,
            last_receive: 0,
            last_nontrivial_receive: 0,
            last_full_hello: None,
            last_whois_answered: None,
            last_direct_path_push_sent: None,
            last_direct_path_push_received: None,
            direct_path_push_cutoff_count: 0,
            last_trusted_receive: None,
            unknown_path_contacts: HashMap::new(),
            last_identity_collision_check: None,
        }
    }

    /// Encrypted packets use AES-GMAC-SIV only once the peer told us it speaks protocol 12+.
    pub fn cipher_suite(&self) -> CipherSuite {
        match self.version {
            Some(v) if v.protocol >= PROTOCOL_VERSION_AES => CipherSuite::AesGmacSiv,
            _ => CipherSuite::Poly1305Salsa2012,
        }
    }

    /// ECHO works as a probe for protocol ≥ 5 peers, except exactly 1.1.0; others get HELLO.
    pub fn prefers_echo_probe(&self) -> bool {
        match self.version {
            Some(v) => {
                v.protocol >= PROTOCOL_VERSION_ECHO
                    && !(v.major == 1 && v.minor == 1 && v.revision == 0)
            }
            None => false,
        }
    }

    /// The best path to send on (within the expiration window), if any.
    pub fn best_path(&self, now: u64) -> Option<&Path> {
        self.paths
            .iter()
            .filter(|p| p.usable(now))
            .min_by_key(|p| (p.quality(now), std::cmp::Reverse(p.last_receive)))
    }

    pub fn best_path_index(&self, now: u64) -> Option<usize> {
        self.paths
            .iter()
            .enumerate()
            .filter(|(_, p)| p.usable(now))
            .min_by_key(|(_, p)| (p.quality(now), std::cmp::Reverse(p.last_receive)))
            .map(|(i, _)| i)
    }

    pub fn path_mut(
        &mut self,
        local_socket: LocalSocketId,
        remote: SocketAddr,
    ) -> Option<&mut Path> {
        self.paths
            .iter_mut()
            .find(|p| p.is_same(local_socket, remote))
    }

    pub fn has_alive_path(&self, now: u64) -> bool {
        self.paths.iter().any(|p| p.alive(now))
    }

    /// Heard from within the activity window.
    pub fn is_active(&self, now: u64) -> bool {
        self.last_receive != 0 && now.saturating_sub(self.last_receive) < PEER_ACTIVITY_TIMEOUT
    }

    /// Worth keeping paths alive to (`Peer::isActive`): frame or config traffic within the
    /// activity window.
    pub fn wants_keepalive(&self, now: u64) -> bool {
        self.last_nontrivial_receive != 0
            && now.saturating_sub(self.last_nontrivial_receive) < PEER_ACTIVITY_TIMEOUT
    }

    /// Neither heard from nor learned within the activity window, and no paths left.
    pub fn is_expired(&self, now: u64) -> bool {
        self.paths.is_empty()
            && now.saturating_sub(self.created.max(self.last_receive)) >= PEER_ACTIVITY_TIMEOUT
    }

    pub fn trust_established(&self, now: u64) -> bool {
        self.last_trusted_receive
            .is_some_and(|t| now.saturating_sub(t) < TRUST_EXPIRATION)
    }

    /// Learns a path from an OK received on it. A new path to the same IP and port replaces
    /// the old one (a new local socket); beyond the per-peer limit the worst path goes.
    /// Returns true if the path is new.
    pub fn learn_path(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
    ) -> bool {
        if let Some(p) = self.path_mut(local_socket, remote) {
            p.last_receive = now;
            return false;
        }
        let fresh = Path::new(now, local_socket, remote);
        if let Some(i) = self.paths.iter().position(|p| p.remote == remote) {
            self.paths[i] = fresh;
        } else if self.paths.len() < MAX_PATHS_PER_PEER {
            self.paths.push(fresh);
        } else if let Some((i, _)) = self
            .paths
            .iter()
            .enumerate()
            .max_by_key(|(_, p)| p.quality(now))
        {
            self.paths[i] = fresh;
        }
        true
    }

    /// Inbound PUSH_DIRECT_PATHS rate gate: pushes within the cutoff time of the previous one
    /// count up; handled only while the count stays under the limit.
    pub fn rate_gate_push_direct_paths(&mut self, now: u64) -> bool {
        match self.last_direct_path_push_received {
            Some(t) if now.saturating_sub(t) <= PUSH_DIRECT_PATHS_CUTOFF_TIME => {
                self.direct_path_push_cutoff_count += 1
            }
            _ => self.direct_path_push_cutoff_count = 0,
        }
        self.last_direct_path_push_received = Some(now);
        self.direct_path_push_cutoff_count < PUSH_DIRECT_PATHS_CUTOFF_LIMIT
    }

    /// Inbound WHOIS gate for nodes that are not roots.
    pub fn rate_gate_whois(&mut self, now: u64) -> bool {
        if self
            .last_whois_answered
            .is_some_and(|t| now.saturating_sub(t) < PEER_WHOIS_RATE_LIMIT)
        {
            return false;
        }
        self.last_whois_answered = Some(now);
        true
    }

    /// HELLO back to an unknown path: at most once per second per address.
    pub fn rate_gate_unknown_path(&mut self, now: u64, remote: SocketAddr) -> bool {
        if self.unknown_path_contacts.len() > 64 {
            self.unknown_path_contacts
                .retain(|_, t| now.saturating_sub(*t) < UNKNOWN_PATH_HELLO_INTERVAL);
        }
        match self.unknown_path_contacts.get(&remote) {
            Some(t) if now.saturating_sub(*t) < UNKNOWN_PATH_HELLO_INTERVAL => false,
            _ => {
                self.unknown_path_contacts.insert(remote, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn dummy_identity() -> Identity {
        // The public identity of the root in the interop captures (format-only parse).
        Identity::from_string("ae2436cf84:0:0310beccac2ff571eed74ce1349f196cb0d10317a538d4c6af84f5fc7b7eb3707c119ce5d811d5114e7522363326725be007ac4ecd54a272d21764188d43d66d").unwrap()
    }

    fn peer() -> Peer {
        Peer::new(0, dummy_identity(), PeerKey::new([7u8; 48]))
    }

    #[test]
    fn push_gate_allows_eight_in_a_burst() {
        let mut p = peer();
        let allowed = (0..20)
            .filter(|i| p.rate_gate_push_direct_paths(1_000 + i * 10))
            .count();
        assert_eq!(allowed, PUSH_DIRECT_PATHS_CUTOFF_LIMIT as usize);
        assert!(p.rate_gate_push_direct_paths(1_000 + 200 + PUSH_DIRECT_PATHS_CUTOFF_TIME + 1));
    }

    #[test]
    fn whois_gate() {
        let mut p = peer();
        assert!(p.rate_gate_whois(1_000));
        assert!(!p.rate_gate_whois(1_050));
        assert!(p.rate_gate_whois(1_100));
    }

    #[test]
    fn suite_follows_version() {
        let mut p = peer();
        assert_eq!(p.cipher_suite(), CipherSuite::Poly1305Salsa2012);
        p.version = Some(RemoteVersion {
            protocol: 11,
            major: 1,
            minor: 6,
            revision: 0,
        });
        assert_eq!(p.cipher_suite(), CipherSuite::Poly1305Salsa2012);
        p.version = Some(RemoteVersion {
            protocol: 12,
            major: 1,
            minor: 14,
            revision: 1,
        });
        assert_eq!(p.cipher_suite(), CipherSuite::AesGmacSiv);
        assert!(p.prefers_echo_probe());
        p.version = Some(RemoteVersion {
            protocol: 9,
            major: 1,
            minor: 1,
            revision: 0,
        });
        assert!(!p.prefers_echo_probe());
    }

    #[test]
    fn learning_and_best_path() {
        let mut p = peer();
        let a: SocketAddr = "10.0.0.1:9993".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:9993".parse().unwrap();
        assert!(p.learn_path(1_000, LocalSocketId(0), a));
        assert!(!p.learn_path(1_100, LocalSocketId(0), a));
        assert!(p.learn_path(1_200, LocalSocketId(0), b));
        p.paths[0].latency_ms = Some(50);
        p.paths[1].latency_ms = Some(5);
        assert_eq!(p.best_path(2_000).unwrap().remote, b);
        // b goes silent past the alive window while a keeps talking: a wins.
        p.paths[0].last_receive = 1_200 + PATH_ALIVE_TIMEOUT + 10;
        assert_eq!(
            p.best_path(1_200 + PATH_ALIVE_TIMEOUT + 20).unwrap().remote,
            a
        );
        // Everything expires.
        assert!(p.best_path(10_000_000).is_none());
        // Same address, new local socket: replaces.
        assert!(p.learn_path(2_000, LocalSocketId(1), a));
        assert_eq!(p.paths.len(), 2);
    }

    #[test]
    fn unknown_path_gate() {
        let mut p = peer();
        let a: SocketAddr = "10.0.0.1:9993".parse().unwrap();
        assert!(p.rate_gate_unknown_path(0, a));
        assert!(!p.rate_gate_unknown_path(999, a));
        assert!(p.rate_gate_unknown_path(1_000, a));
    }
}
