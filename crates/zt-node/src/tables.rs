//! Small bounded tables the engine consults per packet: reply expectations, replay
//! rejection, and the per-source-IP identity validation gate.

use crate::constants::*;
use std::net::{IpAddr, SocketAddr};

/// Packets we sent that may get an OK (PROTOCOL.md §4, `Node::expectingReplyTo`): 256 buckets
/// of 32 entries, each entry the top 32 bits of a wire packet ID, oldest overwritten.
pub struct ExpectTable {
    buckets: Vec<[u32; EXPECT_BUCKET_ENTRIES]>,
    next: Vec<u8>,
}

impl Default for ExpectTable {
    fn default() -> Self {
        ExpectTable {
            buckets: vec![[0u32; EXPECT_BUCKET_ENTRIES]; EXPECT_BUCKETS],
            next: vec![0u8; EXPECT_BUCKETS],
        }
    }
}

impl ExpectTable {
    fn key(packet_id: u64) -> (usize, u32) {
        let top = (packet_id >> 32) as u32;
        (top as usize % EXPECT_BUCKETS, top)
    }
    pub fn expect(&mut self, packet_id: u64) {
        let (b, top) = Self::key(packet_id);
        let slot = self.next[b] as usize % EXPECT_BUCKET_ENTRIES;
        self.buckets[b][slot] = top;
        self.next[b] = ((slot + 1) % EXPECT_BUCKET_ENTRIES) as u8;
    }
    pub fn expecting(&self, packet_id: u64) -> bool {
        let (b, top) = Self::key(packet_id);
        top != 0 && self.buckets[b].contains(&top)
    }
}

/// Authenticated packet IDs seen recently. A legitimate sender never reuses a (random,
/// 64-bit) packet ID, so a repeat is a replay or a duplicate and is dropped. IDs are recorded
/// only after the MAC check, so forged packets cannot poison the window.
///
/// It is consulted for every packet, so it is one flat table: each (source, packet ID) kept as
/// a keyed 64-bit fingerprint in an open-addressed array twice the window's size (linear
/// probing, entries shifted back on removal so no tombstones build up), with a ring of the
/// same fingerprints in arrival order to evict the oldest. Two distinct packets share a
/// fingerprint with odds of about 2^-51 per packet (a window of 2^13 against 2^64 values); the
/// key is random per process, so a peer cannot aim at another peer's packets.
pub struct ReplayFilter {
    slots: Box<[u64]>,
    order: Box<[u64]>,
    /// Where the next fingerprint goes in `order` (the oldest once the ring is full).
    next: usize,
    held: usize,
    key: u64,
}

/// Table slots: a power of two, at least twice the window, so probes stay short.
const REPLAY_SLOTS: usize = (2 * REPLAY_WINDOW).next_power_of_two();

impl Default for ReplayFilter {
    fn default() -> Self {
        use std::hash::BuildHasher;
        ReplayFilter {
            slots: vec![0; REPLAY_SLOTS].into_boxed_slice(),
            order: vec![0; REPLAY_WINDOW].into_boxed_slice(),
            next: 0,
            held: 0,
            key: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl ReplayFilter {
    /// Records (source, packet ID); false if it was already there.
    pub fn check_and_insert(&mut self, source: u64, packet_id: u64) -> bool {
        let print = self.fingerprint(source, packet_id);
        let (found, _) = self.probe(print);
        if found {
            return false;
        }
        if self.held == REPLAY_WINDOW {
            self.remove(self.order[self.next]);
        } else {
            self.held += 1;
        }
        self.order[self.next] = print;
        self.next = (self.next + 1) % REPLAY_WINDOW;
        // Probed again: the removal may have moved entries into the slot found before.
        let (_, slot) = self.probe(print);
        self.slots[slot] = print;
        true
    }

    /// A keyed mix of both values (never 0, which marks an empty slot).
    fn fingerprint(&self, source: u64, packet_id: u64) -> u64 {
        let mut h = (source ^ self.key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = (h ^ packet_id ^ (h >> 32)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ (h >> 29)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        (h ^ (h >> 32)).max(1)
    }

    fn home(print: u64) -> usize {
        print as usize & (REPLAY_SLOTS - 1)
    }

    /// Whether `print` is held, and its slot (or the empty slot where it would go).
    fn probe(&self, print: u64) -> (bool, usize) {
        let mut slot = Self::home(print);
        loop {
            match self.slots[slot] {
                0 => return (false, slot),
                held if held == print => return (true, slot),
                _ => slot = (slot + 1) & (REPLAY_SLOTS - 1),
            }
        }
    }

    /// Remove `print`, shifting later entries of its probe run back into the gap.
    fn remove(&mut self, print: u64) {
        let (found, mut gap) = self.probe(print);
        if !found {
            return;
        }
        let mask = REPLAY_SLOTS - 1;
        let mut slot = gap;
        loop {
            slot = (slot + 1) & mask;
            let held = self.slots[slot];
            if held == 0 {
                break;
            }
            // An entry may fill the gap if its home is not in (gap, slot], cyclically.
            let home = Self::home(held);
            let stays = if gap <= slot {
                gap < home && home <= slot
            } else {
                gap < home || home <= slot
            };
            if !stays {
                self.slots[gap] = held;
                gap = slot;
            }
        }
        self.slots[gap] = 0;
    }
}

/// The full identity check (a ~2 MiB memory-hard hash, ~10 ms) and the key agreement before
/// it run at most once per interval per source network (a 14-bit bucket of the IPv4 /24 or
/// the IPv6 /48, as the reference's `rateGateHash`: one host owns a whole /24 or /64 as
/// easily as one address), and at most [`IDENTITY_VALIDATION_BUDGET`] times per second in
/// all, so a flood from many networks still leaves the node most of its time.
pub struct IdentityValidationGate {
    last: Vec<u64>,
    /// Start of the current one-second budget window, and checks allowed in it.
    window_start: u64,
    spent: u32,
}

impl Default for IdentityValidationGate {
    fn default() -> Self {
        IdentityValidationGate {
            last: vec![0; 1 << 14],
            window_start: 0,
            spent: 0,
        }
    }
}

impl IdentityValidationGate {
    fn bucket(ip: IpAddr) -> usize {
        let h = match ip {
            IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
            IpAddr::V6(v6) => (u128::from(v6) >> 80) as u64,
        };
        let h = h ^ (h >> 14) ^ (h >> 28) ^ (h >> 42) ^ (h >> 56);
        (h & 0x3fff) as usize
    }
    /// True if a validation from this source may run now (and records it).
    pub fn allow(&mut self, now: u64, from: SocketAddr) -> bool {
        let b = Self::bucket(crate::path::canonical(from).ip());
        let last = self.last[b];
        if last != 0 && now.saturating_sub(last) < IDENTITY_VALIDATION_SOURCE_RATE_LIMIT {
            return false;
        }
        if now.saturating_sub(self.window_start) >= 1_000 {
            self.window_start = now;
            self.spent = 0;
        }
        if self.spent >= IDENTITY_VALIDATION_BUDGET {
            return false;
        }
        self.spent += 1;
        self.last[b] = now.max(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_match_on_top_32_bits() {
        let mut t = ExpectTable::default();
        t.expect(0x1234_5678_9abc_def0);
        assert!(t.expecting(0x1234_5678_0000_0000));
        assert!(!t.expecting(0x1234_5679_9abc_def0));
    }

    #[test]
    fn expectations_are_bounded_per_bucket() {
        let mut t = ExpectTable::default();
        // 33 IDs in the same bucket (same low byte of the top 32 bits): the first is gone.
        for i in 0..=EXPECT_BUCKET_ENTRIES as u64 {
            t.expect(((i + 1) << 40) << 8);
        }
        assert!(!t.expecting((1u64 << 40) << 8));
        assert!(t.expecting((2u64 << 40) << 8));
    }

    #[test]
    fn replays_are_caught_and_window_is_bounded() {
        let mut f = ReplayFilter::default();
        assert!(f.check_and_insert(1, 42));
        assert!(!f.check_and_insert(1, 42));
        assert!(f.check_and_insert(2, 42));
        for i in 0..REPLAY_WINDOW as u64 {
            f.check_and_insert(3, 1000 + i);
        }
        assert!(f.check_and_insert(1, 42), "evicted after the window");
    }

    /// Against the plain definition (a set of the last REPLAY_WINDOW new pairs): random
    /// pairs, many repeated from inside and just outside the window, and sequential IDs that
    /// crowd one stretch of the table; every answer agrees.
    #[test]
    fn replay_filter_agrees_with_a_set_of_the_window() {
        use rand::{Rng, SeedableRng};
        use std::collections::{HashSet, VecDeque};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut filter = ReplayFilter::default();
        let mut seen = HashSet::new();
        let mut order = VecDeque::new();
        let mut sent: Vec<(u64, u64)> = Vec::new();
        for i in 0..200_000u64 {
            let pair = match rng.gen_range(0..4) {
                0 if !sent.is_empty() => {
                    let back = rng.gen_range(1..=sent.len().min(2 * REPLAY_WINDOW));
                    sent[sent.len() - back]
                }
                1 => (7, i),
                _ => (rng.gen_range(0..4), rng.gen()),
            };
            let fresh = !seen.contains(&pair);
            if fresh {
                seen.insert(pair);
                order.push_back(pair);
                if order.len() > REPLAY_WINDOW {
                    seen.remove(&order.pop_front().unwrap());
                }
                sent.push(pair);
            }
            assert_eq!(filter.check_and_insert(pair.0, pair.1), fresh, "step {i}");
        }
    }

    #[test]
    fn identity_gate() {
        let mut g = IdentityValidationGate::default();
        let a: SocketAddr = "10.0.0.1:9993".parse().unwrap();
        assert!(g.allow(10_000, a));
        assert!(!g.allow(10_500, a));
        assert!(g.allow(10_000 + IDENTITY_VALIDATION_SOURCE_RATE_LIMIT, a));
    }

    #[test]
    fn identity_gate_covers_a_whole_ipv4_24_and_ipv6_48() {
        let mut g = IdentityValidationGate::default();
        let first: SocketAddr = "10.0.0.1:9993".parse().unwrap();
        assert!(g.allow(10_000, first));
        for host in 2..=254 {
            let other: SocketAddr = format!("10.0.0.{host}:9993").parse().unwrap();
            assert!(!g.allow(10_001, other), "10.0.0.{host} passed");
        }
        assert!(g.allow(10_001, "10.0.1.1:9993".parse().unwrap()));
        let v6: SocketAddr = "[2001:db8:1::1]:9993".parse().unwrap();
        assert!(g.allow(10_002, v6));
        // Another /64 of the same /48.
        assert!(!g.allow(10_003, "[2001:db8:1:ffff::2]:9993".parse().unwrap()));
        assert!(g.allow(10_004, "[2001:db8:2::1]:9993".parse().unwrap()));
    }

    #[test]
    fn identity_gate_has_a_global_budget_per_second() {
        let mut g = IdentityValidationGate::default();
        let from = |n: u32| SocketAddr::from((std::net::Ipv4Addr::from(n << 8), 9993));
        let allowed = (1..=1000u32).filter(|&n| g.allow(10_000, from(n))).count();
        assert_eq!(allowed, IDENTITY_VALIDATION_BUDGET as usize);
        // The next second brings a new budget.
        assert!(g.allow(11_000, from(2000)));
    }
}
