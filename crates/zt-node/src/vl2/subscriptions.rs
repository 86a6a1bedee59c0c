//! Multicast subscriptions learned from LIKEs and gather answers (§6.9): who listens to a
//! group of a network, and since when. A root keeps them for networks it is not in (it
//! answers gathers), so anyone can send it LIKEs: besides the cap on all groups, each member
//! and each network has its own, so one node (member or not) cannot crowd out the
//! subscriptions of every network on the root.
use std::collections::HashMap;

use zt_crypto::Address;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::multicast::MulticastGroup;

use super::MULTICAST_LIKE_EXPIRE;

/// Groups with known subscribers, over all networks.
pub const MAX_MULTICAST_GROUPS: usize = 65_536;
/// Groups with known subscribers in one network.
pub const MAX_GROUPS_PER_NETWORK: u32 = 16_384;
/// Subscriptions one member may hold, over all networks and groups (an IPv6 host has a few
/// groups per address; a bridge many more).
pub const MAX_SUBSCRIPTIONS_PER_MEMBER: u32 = 1_024;

/// The subscription tables and their counts.
#[derive(Default)]
pub(crate) struct Subscriptions {
    groups: HashMap<(NetworkId, MulticastGroup), HashMap<Address, u64>>,
    per_network: HashMap<NetworkId, u32>,
    per_member: HashMap<Address, u32>,
}

impl Subscriptions {
    /// `member` listens to `group` on `nwid` as of `now` (a refresh of a known subscription
    /// always succeeds); false if a limit refuses a new one.
    pub fn subscribe(
        &mut self,
        now: u64,
        nwid: NetworkId,
        group: MulticastGroup,
        member: Address,
    ) -> bool {
        let key = (nwid, group);
        if let Some(seen) = self.groups.get_mut(&key).and_then(|m| m.get_mut(&member)) {
            *seen = now;
            return true;
        }
        if self.per_member.get(&member).copied().unwrap_or(0) >= MAX_SUBSCRIPTIONS_PER_MEMBER {
            return false;
        }
        let new_group = !self.groups.contains_key(&key);
        if new_group
            && (self.groups.len() >= MAX_MULTICAST_GROUPS
                || self.per_network.get(&nwid).copied().unwrap_or(0) >= MAX_GROUPS_PER_NETWORK)
        {
            return false;
        }
        self.groups.entry(key).or_default().insert(member, now);
        *self.per_member.entry(member).or_default() += 1;
        if new_group {
            *self.per_network.entry(nwid).or_default() += 1;
        }
        true
    }

    /// `member` no longer listens to `group` on `nwid`.
    pub fn unsubscribe(&mut self, nwid: NetworkId, group: MulticastGroup, member: Address) {
        let key = (nwid, group);
        let Some(members) = self.groups.get_mut(&key) else {
            return;
        };
        if members.remove(&member).is_some() {
            decrement(&mut self.per_member, member);
        }
        if members.is_empty() {
            self.groups.remove(&key);
            decrement(&mut self.per_network, nwid);
        }
    }

    /// The subscribers of `group` on `nwid`, with when each was last heard.
    pub fn members(
        &self,
        nwid: NetworkId,
        group: MulticastGroup,
    ) -> Option<&HashMap<Address, u64>> {
        self.groups.get(&(nwid, group))
    }

    /// Forgets subscriptions not refreshed within [`MULTICAST_LIKE_EXPIRE`].
    pub fn expire(&mut self, now: u64) {
        let Subscriptions {
            groups,
            per_network,
            per_member,
        } = self;
        groups.retain(|(nwid, _), members| {
            members.retain(|member, seen| {
                let keep = now.saturating_sub(*seen) < MULTICAST_LIKE_EXPIRE;
                if !keep {
                    decrement(per_member, *member);
                }
                keep
            });
            if members.is_empty() {
                decrement(per_network, *nwid);
            }
            !members.is_empty()
        });
    }

    /// Groups with known subscribers.
    #[cfg(test)]
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_wire::mac::Mac;

    fn group(n: u32) -> MulticastGroup {
        MulticastGroup {
            mac: Mac::from_u64(0x3333_0000_0000 | u64::from(n)),
            adi: 0,
        }
    }

    fn address(n: u64) -> Address {
        Address::new(0x1000000000 + n).unwrap()
    }

    #[test]
    fn one_member_cannot_fill_the_table() {
        let mut s = Subscriptions::default();
        let (net, other_net) = (
            NetworkId(0xaaaa_0000_0000_0001),
            NetworkId(0xbbbb_0000_0000_0001),
        );
        let flooder = address(1);
        let accepted = (0..5_000)
            .filter(|&n| s.subscribe(10, net, group(n), flooder))
            .count();
        assert_eq!(accepted, MAX_SUBSCRIPTIONS_PER_MEMBER as usize);
        // A refresh still works; another member and another network are unaffected.
        assert!(s.subscribe(20, net, group(0), flooder));
        assert!(s.subscribe(20, net, group(4_999), address(2)));
        assert!(s.subscribe(20, other_net, group(1), address(3)));
    }

    #[test]
    fn one_network_cannot_fill_the_table() {
        let mut s = Subscriptions::default();
        let net = NetworkId(0xaaaa_0000_0000_0001);
        let mut accepted = 0;
        for m in 0..40u64 {
            for g in 0..MAX_SUBSCRIPTIONS_PER_MEMBER {
                if s.subscribe(10, net, group(m as u32 * 10_000 + g), address(m)) {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, MAX_GROUPS_PER_NETWORK as usize);
        assert!(s.subscribe(10, NetworkId(0xbbbb_0000_0000_0001), group(1), address(99)));
    }

    #[test]
    fn expiry_and_unsubscribe_give_the_room_back() {
        let mut s = Subscriptions::default();
        let net = NetworkId(0xaaaa_0000_0000_0001);
        let m = address(1);
        for g in 0..MAX_SUBSCRIPTIONS_PER_MEMBER {
            assert!(s.subscribe(10, net, group(g), m));
        }
        assert!(!s.subscribe(10, net, group(99_999), m));
        s.unsubscribe(net, group(0), m);
        assert!(s.subscribe(10, net, group(99_999), m));
        s.expire(10 + MULTICAST_LIKE_EXPIRE);
        assert_eq!(s.group_count(), 0);
        assert!(s.per_member.is_empty() && s.per_network.is_empty());
        assert!(s.subscribe(20 + MULTICAST_LIKE_EXPIRE, net, group(5), m));
    }
}
