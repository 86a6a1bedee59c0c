//! Relaying heads and fragments addressed to other nodes (PROTOCOL.md §3.10) and
//! introducing the two ends of a relayed flow with RENDEZVOUS (§4.6).

use crate::constants::*;
use crate::node::{LocalSocketId, Node};
use std::net::SocketAddr;
use zt_crypto::Address;
use zt_wire::fragment::Fragment;
use zt_wire::header::{PacketHeader, Verb};
use zt_wire::verbs::rendezvous::Rendezvous;

impl Node {
    /// Forwards a datagram that is not for us: to the destination's best direct path, else
    /// to the best upstream, never back where it came from. Roots relay for anyone; other
    /// nodes only on trust-established paths.
    pub(crate) fn relay(
        &mut self,
        now: u64,
        local_socket: LocalSocketId,
        remote: SocketAddr,
        mut datagram: Vec<u8>,
        fragment: bool,
    ) {
        let trusted = self.topology.am_upstream()
            || self.peers.values().any(|p| {
                p.paths
                    .iter()
                    .any(|path| path.is_same(local_socket, remote) && path.trust_established(now))
            });
        if !trusted {
            self.stats.dropped_relay_not_allowed += 1;
            return;
        }
        // The caller checked that the datagram is a valid head or fragment view.
        let (hops, dest, source) = if fragment {
            let f = Fragment::new_unchecked(&datagram[..]);
            (f.hops(), f.destination(), None)
        } else {
            let h = PacketHeader::new_unchecked(&datagram[..]);
            (h.hops(), h.destination(), Some(h.source()))
        };
        if hops >= RELAY_MAX_HOPS {
            self.stats.dropped_relay_hop_limit += 1;
            return;
        }
        if fragment {
            Fragment::new_unchecked(&mut datagram[..]).set_hops(hops + 1);
        } else {
            PacketHeader::new_unchecked(&mut datagram[..]).set_hops(hops + 1);
        }

        let direct = self
            .peers
            .get(&dest)
            .and_then(|p| p.best_path(now))
            .map(|p| (p.local_socket, p.remote))
            .filter(|(_, r)| *r != remote);
        if let Some((ls, r)) = direct {
            if let Some(path) = self.peers.get_mut(&dest).and_then(|p| p.path_mut(ls, r)) {
                path.last_send = now;
            }
            self.stats.relayed += 1;
            self.push_transmit(Some(ls), r, datagram, None);
            if let Some(src) = source {
                if src != self.address() {
                    self.unite(now, src, dest);
                }
            }
            return;
        }
        let exclude: Vec<Address> = std::iter::once(dest).chain(source).collect();
        match self.best_upstream(now, &exclude) {
            Some((_, ls, r)) if r != remote => {
                self.stats.relayed += 1;
                self.push_transmit(Some(ls), r, datagram, None);
            }
            _ => self.stats.dropped_relay_no_route += 1,
        }
    }

    /// Tells `a` and `b` each other's physical endpoint, at most once per
    /// `MIN_UNITE_INTERVAL` per pair, when both have a direct path to us of the same family
    /// (IPv6 preferred).
    pub(crate) fn unite(&mut self, now: u64, a: Address, b: Address) {
        let key = if a < b { (a, b) } else { (b, a) };
        if self
            .unites
            .get(&key)
            .is_some_and(|t| now.saturating_sub(*t) < MIN_UNITE_INTERVAL)
        {
            return;
        }
        let endpoints = |addr: Address| -> Vec<SocketAddr> {
            self.peers
                .get(&addr)
                .map(|p| {
                    let mut v: Vec<_> = p.paths.iter().filter(|x| x.alive(now)).collect();
                    v.sort_by_key(|x| x.quality(now));
                    v.into_iter().map(|x| x.remote).collect()
                })
                .unwrap_or_default()
        };
        let (ea, eb) = (endpoints(a), endpoints(b));
        let pick = |v6: bool| -> Option<(SocketAddr, SocketAddr)> {
            let x = ea.iter().find(|e| e.is_ipv6() == v6)?;
            let y = eb.iter().find(|e| e.is_ipv6() == v6)?;
            Some((*x, *y))
        };
        let Some((addr_a, addr_b)) = pick(true).or_else(|| pick(false)) else {
            return;
        };
        self.unites.insert(key, now);
        let mut to_a = Vec::with_capacity(24);
        Rendezvous {
            flags: 0,
            peer: b,
            endpoint: addr_b,
        }
        .write(&mut to_a);
        let mut to_b = Vec::with_capacity(24);
        Rendezvous {
            flags: 0,
            peer: a,
            endpoint: addr_a,
        }
        .write(&mut to_b);
        let mut order = [(a, to_a), (b, to_b)];
        if self.rng.next_u32() & 1 == 1 {
            order.swap(0, 1);
        }
        for (dest, body) in order {
            self.stats.rendezvous_sent += 1;
            let _ = self.route(now, dest, Verb::Rendezvous, &body, false);
        }
    }
}
