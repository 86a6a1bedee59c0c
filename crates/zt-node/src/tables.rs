//! Small bounded tables the engine consults per packet: reply expectations, replay
//! rejection, and the per-source-IP identity validation gate.

use crate::constants::*;
use std::collections::{HashSet, VecDeque};
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
pub struct ReplayFilter {
    seen: HashSet<(u64, u64), ReplayHashing>,
    order: VecDeque<(u64, u64)>,
}

impl Default for ReplayFilter {
    fn default() -> Self {
        ReplayFilter {
            seen: HashSet::with_capacity_and_hasher(REPLAY_WINDOW + 1, ReplayHashing::new()),
            order: VecDeque::with_capacity(REPLAY_WINDOW + 1),
        }
    }
}

/// The replay window is consulted for every packet, so SipHash's cost shows. Its keys are
/// already random (packet IDs) except to a peer holding a valid key, so a keyed
/// multiply-xor mix (the key random per process) is enough to keep buckets even.
#[derive(Clone)]
struct ReplayHashing {
    key: u64,
}

impl ReplayHashing {
    fn new() -> ReplayHashing {
        use std::hash::BuildHasher;
        ReplayHashing {
            key: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl std::hash::BuildHasher for ReplayHashing {
    type Hasher = ReplayHasher;
    fn build_hasher(&self) -> ReplayHasher {
        ReplayHasher { state: self.key }
    }
}

struct ReplayHasher {
    state: u64,
}

impl std::hash::Hasher for ReplayHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.state = (self.state ^ value)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
    }
    fn finish(&self) -> u64 {
        self.state.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (self.state >> 29)
    }
}

impl ReplayFilter {
    /// Records (source, packet ID); false if it was already there.
    pub fn check_and_insert(&mut self, source: u64, packet_id: u64) -> bool {
        let key = (source, packet_id);
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > REPLAY_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
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
