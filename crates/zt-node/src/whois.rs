//! Identity lookup (PROTOCOL.md §3.11, §4.5): WHOIS requests with retry, the TX queue of
//! packets for peers we cannot yet encrypt to, and the RX queue of packets from senders we
//! cannot yet authenticate. Everything here is bounded and times out.

use crate::constants::*;
use crate::LocalSocketId;
use std::collections::HashMap;
use std::net::SocketAddr;
use zt_crypto::Address;
use zt_wire::header::Verb;

/// A packet to send once the destination's identity is known.
pub struct PendingTx {
    pub dest: Address,
    pub verb: Verb,
    pub payload: Vec<u8>,
    pub compress: bool,
    pub created: u64,
}

/// A received packet waiting for its sender's identity.
pub struct PendingRx {
    pub source: Address,
    pub local_socket: LocalSocketId,
    pub remote: SocketAddr,
    pub packet: Vec<u8>,
    pub created: u64,
}

#[derive(Default)]
pub struct WhoisQueue {
    /// Address → when we last sent a WHOIS for it, and when the lookup began.
    requests: HashMap<Address, (u64, u64)>,
    pub tx: Vec<PendingTx>,
    pub rx: Vec<PendingRx>,
    /// RENDEZVOUS naming a peer we are looking up: (received, peer, endpoint).
    rendezvous: Vec<(u64, Address, SocketAddr)>,
}

impl WhoisQueue {
    /// Notes that we want `addr`; returns true if a WHOIS should be sent now (none sent in the
    /// last retry delay). A full table refuses new lookups: packets from spoofed random
    /// sources must not grow it without bound.
    pub fn want(&mut self, now: u64, addr: Address) -> bool {
        if self.requests.len() >= WHOIS_PENDING_LIMIT && !self.requests.contains_key(&addr) {
            return false;
        }
        match self.requests.get_mut(&addr) {
            Some((last, _)) if now.saturating_sub(*last) < WHOIS_RETRY_DELAY => false,
            Some((last, _)) => {
                *last = now;
                true
            }
            None => {
                self.requests.insert(addr, (now, now));
                true
            }
        }
    }

    pub fn is_pending(&self, addr: Address) -> bool {
        self.requests.contains_key(&addr)
    }

    /// Queues a packet to send; the oldest entry goes when the queue is full. Returns true if
    /// an entry was dropped to make room.
    pub fn queue_tx(&mut self, p: PendingTx) -> bool {
        let dropped = self.tx.len() >= TX_QUEUE_LIMIT;
        if dropped {
            self.tx.remove(0);
        }
        self.tx.push(p);
        dropped
    }

    pub fn queue_rx(&mut self, p: PendingRx) -> bool {
        let dropped = self.rx.len() >= RX_WAIT_QUEUE_LIMIT;
        if dropped {
            self.rx.remove(0);
        }
        self.rx.push(p);
        dropped
    }

    /// Keeps a RENDEZVOUS until `peer`'s identity arrives (bounded like the RX queue).
    pub fn defer_rendezvous(&mut self, now: u64, peer: Address, endpoint: SocketAddr) {
        if self.rendezvous.len() >= RX_WAIT_QUEUE_LIMIT {
            self.rendezvous.remove(0);
        }
        self.rendezvous.push((now, peer, endpoint));
    }

    /// The endpoints deferred RENDEZVOUS named for `peer`, if still fresh.
    pub fn take_rendezvous(&mut self, now: u64, peer: Address) -> Vec<SocketAddr> {
        let (mine, rest): (Vec<_>, Vec<_>) =
            self.rendezvous.drain(..).partition(|(_, p, _)| *p == peer);
        self.rendezvous = rest;
        mine.into_iter()
            .filter(|(t, _, _)| now.saturating_sub(*t) < QUEUE_TIMEOUT)
            .map(|(_, _, e)| e)
            .collect()
    }

    /// Takes everything queued for/from `addr` now that its identity is known.
    pub fn resolved(&mut self, addr: Address) -> (Vec<PendingTx>, Vec<PendingRx>) {
        self.requests.remove(&addr);
        let (tx, keep_tx): (Vec<_>, Vec<_>) = self.tx.drain(..).partition(|p| p.dest == addr);
        self.tx = keep_tx;
        let (rx, keep_rx): (Vec<_>, Vec<_>) = self.rx.drain(..).partition(|p| p.source == addr);
        self.rx = keep_rx;
        (tx, rx)
    }

    /// Drops timed-out packets and finished lookups. Returns (tx dropped, rx dropped) and the
    /// addresses that still need a WHOIS retry now.
    pub fn tick(&mut self, now: u64) -> (usize, usize, Vec<Address>) {
        let tx_before = self.tx.len();
        self.tx
            .retain(|p| now.saturating_sub(p.created) < QUEUE_TIMEOUT);
        let rx_before = self.rx.len();
        self.rx
            .retain(|p| now.saturating_sub(p.created) < QUEUE_TIMEOUT);
        let tx = &self.tx;
        let rx = &self.rx;
        self.requests.retain(|a, (_, began)| {
            now.saturating_sub(*began) < QUEUE_TIMEOUT
                || tx.iter().any(|p| p.dest == *a)
                || rx.iter().any(|p| p.source == *a)
        });
        let mut retry = Vec::new();
        for (a, (last, _)) in self.requests.iter_mut() {
            if now.saturating_sub(*last) >= WHOIS_RETRY_DELAY {
                *last = now;
                retry.push(*a);
            }
        }
        retry.sort();
        (tx_before - self.tx.len(), rx_before - self.rx.len(), retry)
    }

    /// When the next retry is due, if any lookup is outstanding.
    pub fn next_deadline(&self) -> Option<u64> {
        self.requests
            .values()
            .map(|(last, _)| last + WHOIS_RETRY_DELAY)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u64) -> Address {
        Address::new(n).unwrap()
    }

    #[test]
    fn retry_spacing_and_timeout() {
        let mut q = WhoisQueue::default();
        assert!(q.want(1_000, a(1)));
        assert!(!q.want(1_200, a(1)));
        assert!(q.want(1_500, a(1)));
        q.queue_tx(PendingTx {
            dest: a(1),
            verb: Verb::Echo,
            payload: vec![],
            compress: false,
            created: 1_000,
        });
        let (_, _, retry) = q.tick(1_700);
        assert!(retry.is_empty());
        let (_, _, retry) = q.tick(2_000);
        assert_eq!(retry, vec![a(1)]);
        let (tx_dropped, _, _) = q.tick(1_000 + QUEUE_TIMEOUT);
        assert_eq!(tx_dropped, 1);
        q.tick(1_000 + QUEUE_TIMEOUT + 1);
        assert!(!q.is_pending(a(1)));
    }

    #[test]
    fn resolution_takes_only_that_address() {
        let mut q = WhoisQueue::default();
        for d in [1, 2, 1] {
            q.want(0, a(d));
            q.queue_tx(PendingTx {
                dest: a(d),
                verb: Verb::Echo,
                payload: vec![],
                compress: false,
                created: 0,
            });
        }
        let (tx, rx) = q.resolved(a(1));
        assert_eq!(tx.len(), 2);
        assert!(rx.is_empty());
        assert_eq!(q.tx.len(), 1);
        assert!(!q.is_pending(a(1)));
        assert!(q.is_pending(a(2)));
    }

    #[test]
    fn pending_lookups_are_bounded() {
        let mut q = WhoisQueue::default();
        for i in 1..=WHOIS_PENDING_LIMIT as u64 {
            assert!(q.want(0, a(i)));
        }
        assert!(!q.want(0, a(WHOIS_PENDING_LIMIT as u64 + 1)));
        assert!(q.want(WHOIS_RETRY_DELAY, a(1)), "known entries still retry");
    }

    #[test]
    fn tx_queue_is_bounded() {
        let mut q = WhoisQueue::default();
        for i in 0..TX_QUEUE_LIMIT {
            assert!(!q.queue_tx(PendingTx {
                dest: a(1),
                verb: Verb::Echo,
                payload: vec![i as u8],
                compress: false,
                created: 0
            }));
        }
        assert!(q.queue_tx(PendingTx {
            dest: a(1),
            verb: Verb::Echo,
            payload: vec![],
            compress: false,
            created: 0
        }));
        assert_eq!(q.tx.len(), TX_QUEUE_LIMIT);
    }
}
