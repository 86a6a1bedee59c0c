//! In-memory storage: the same contract as SQLite, without durability. For tests and benchmarks,
//! and for a controller that is rebuilt from elsewhere at start.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use zt_crypto::Address;

use super::{
    expectation_met, Change, ChangeSeq, Expect, FeedNote, ItemNo, LegacyItemNumbers, MemberFilter,
    Storage, FEED_RETAINED,
};
use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    networks: BTreeMap<NetworkId, Network>,
    members: BTreeMap<(NetworkId, Address), Member>,
    ip_owners: HashMap<(NetworkId, IpAddr), Address>,
    bridges: BTreeSet<(NetworkId, Address)>,
    feed: VecDeque<Change>,
    last_seq: ChangeSeq,
    network_numbers: Numbering<NetworkId>,
    member_numbers: Numbering<(NetworkId, Address)>,
    adopted: bool,
}

/// Item numbers of one kind of record, both ways, and the last one handed out.
#[derive(Debug, Clone)]
struct Numbering<K> {
    of: HashMap<K, ItemNo>,
    by: BTreeMap<ItemNo, K>,
    last: ItemNo,
}

impl<K> Default for Numbering<K> {
    fn default() -> Self {
        Numbering {
            of: HashMap::new(),
            by: BTreeMap::new(),
            last: 0,
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash + Ord> Numbering<K> {
    /// Numbers `key` if it has no number yet.
    fn number(&mut self, key: K) {
        if !self.of.contains_key(&key) {
            self.last += 1;
            self.set(key, self.last);
        }
    }

    fn set(&mut self, key: K, no: ItemNo) {
        self.of.insert(key, no);
        self.by.insert(no, key);
    }

    fn forget(&mut self, key: &K) {
        if let Some(no) = self.of.remove(key) {
            self.by.remove(&no);
        }
    }

    /// See [`Storage::adopt_item_numbers`]; `exists` tells which listed keys are stored.
    fn adopt(
        &mut self,
        listed: impl IntoIterator<Item = (K, ItemNo)>,
        exists: impl Fn(&K) -> bool,
    ) {
        let before: Vec<K> = self.by.values().copied().collect();
        let mut numbered = Numbering {
            last: self.last,
            ..Numbering::default()
        };
        for (key, no) in listed {
            if no > 0
                && exists(&key)
                && !numbered.by.contains_key(&no)
                && !numbered.of.contains_key(&key)
            {
                numbered.set(key, no);
                numbered.last = numbered.last.max(no);
            }
        }
        for key in before {
            numbered.number(key);
        }
        *self = numbered;
    }
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn append(
        &mut self,
        network_id: NetworkId,
        member: Option<Address>,
        deleted: bool,
        feed: Option<&FeedNote>,
    ) {
        let Some(note) = feed else { return };
        self.last_seq += 1;
        self.feed.push_back(Change {
            seq: self.last_seq,
            network_id,
            member,
            deleted,
            note: note.clone(),
        });
        while self.feed.len() > FEED_RETAINED as usize {
            self.feed.pop_front();
        }
    }
}

impl Storage for MemoryStorage {
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError> {
        Ok(self.networks.keys().copied().collect())
    }

    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError> {
        Ok(self.networks.get(&id).cloned())
    }

    fn write_network(
        &mut self,
        network: &Network,
        expect: Expect<'_, Network>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        if !expectation_met(expect, self.networks.get(&network.id)) {
            return Err(StorageError::Conflict);
        }
        self.networks.insert(network.id, network.clone());
        self.network_numbers.number(network.id);
        self.append(network.id, None, false, feed);
        Ok(())
    }

    fn remove_network(
        &mut self,
        id: NetworkId,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        let existed = self.networks.remove(&id).is_some();
        self.network_numbers.forget(&id);
        let gone: Vec<(NetworkId, Address)> = self
            .members
            .range((id, Address::default())..)
            .take_while(|((nwid, _), _)| *nwid == id)
            .map(|(key, _)| *key)
            .collect();
        for key in &gone {
            self.member_numbers.forget(key);
        }
        self.members.retain(|(nwid, _), _| *nwid != id);
        self.ip_owners.retain(|(nwid, _), _| *nwid != id);
        self.bridges.retain(|(nwid, _)| *nwid != id);
        if existed {
            self.append(id, None, true, feed);
        }
        Ok(existed)
    }

    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError> {
        Ok(self.members.get(&(network, address)).cloned())
    }

    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError> {
        Ok(self
            .members
            .range((network, Address::default())..)
            .take_while(|((nwid, _), _)| *nwid == network)
            .map(|(_, m)| m.clone())
            .collect())
    }

    fn write_member(
        &mut self,
        member: &Member,
        expect: Expect<'_, Member>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        let nwid = member.network_id;
        // As in the databases: a member's network must exist (it was deleted under the writer).
        if !self.networks.contains_key(&nwid)
            || !expectation_met(expect, self.members.get(&(nwid, member.address)))
        {
            return Err(StorageError::Conflict);
        }
        // Check every claim before changing anything, so a refusal stores nothing.
        for ip in &member.ip_assignments {
            if let Some(owner) = self.ip_owners.get(&(nwid, *ip)) {
                if *owner != member.address {
                    return Err(StorageError::IpInUse {
                        ip: ip.to_string(),
                        owner: owner.to_string(),
                    });
                }
            }
        }
        if let Some(old) = self.members.get(&(nwid, member.address)) {
            for ip in &old.ip_assignments {
                self.ip_owners.remove(&(nwid, *ip));
            }
        }
        for ip in &member.ip_assignments {
            self.ip_owners.insert((nwid, *ip), member.address);
        }
        if member.active_bridge {
            self.bridges.insert((nwid, member.address));
        } else {
            self.bridges.remove(&(nwid, member.address));
        }
        self.members.insert((nwid, member.address), member.clone());
        self.member_numbers.number((nwid, member.address));
        self.append(nwid, Some(member.address), false, feed);
        Ok(())
    }

    fn remove_member(
        &mut self,
        network: NetworkId,
        address: Address,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        match self.members.remove(&(network, address)) {
            Some(old) => {
                self.member_numbers.forget(&(network, address));
                self.bridges.remove(&(network, address));
                for ip in &old.ip_assignments {
                    self.ip_owners.remove(&(network, *ip));
                }
                self.append(network, Some(address), true, feed);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn network_items(&self) -> Result<Vec<(ItemNo, NetworkId)>, StorageError> {
        Ok(self
            .network_numbers
            .by
            .iter()
            .map(|(no, id)| (*no, *id))
            .collect())
    }

    fn member_items(&self, filter: MemberFilter) -> Result<Vec<(ItemNo, Member)>, StorageError> {
        let numbered = |key: &(NetworkId, Address)| {
            let no = *self.member_numbers.of.get(key)?;
            Some((no, self.members.get(key)?.clone()))
        };
        let mut found: Vec<(ItemNo, Member)> = match (filter.item, filter.network, filter.address) {
            (Some(no), _, _) => self
                .member_numbers
                .by
                .get(&no)
                .and_then(numbered)
                .into_iter()
                .collect(),
            (None, Some(nwid), Some(address)) => numbered(&(nwid, address)).into_iter().collect(),
            (None, Some(nwid), None) => self
                .members
                .range((nwid, Address::default())..)
                .take_while(|((n, _), _)| *n == nwid)
                .filter_map(|(key, _)| numbered(key))
                .collect(),
            // The whole map: a test store, not indexed by address alone.
            (None, None, _) => self.members.keys().filter_map(numbered).collect(),
        };
        found.retain(|(_, m)| {
            filter.network.is_none_or(|n| n == m.network_id)
                && filter.address.is_none_or(|a| a == m.address)
        });
        found.sort_unstable_by_key(|(no, _)| *no);
        Ok(found)
    }

    fn count_members_below(&self, below: ItemNo) -> Result<u64, StorageError> {
        Ok(self.member_numbers.by.range(..below).count() as u64)
    }

    fn adopt_item_numbers(&mut self, legacy: &LegacyItemNumbers) -> Result<bool, StorageError> {
        if self.adopted {
            return Ok(false);
        }
        self.adopted = true;
        let networks = &self.networks;
        self.network_numbers
            .adopt(legacy.networks.iter().copied(), |id| {
                networks.contains_key(id)
            });
        let members = &self.members;
        self.member_numbers.adopt(
            legacy.members.iter().map(|(n, a, no)| ((*n, *a), *no)),
            |key| members.contains_key(key),
        );
        Ok(true)
    }

    fn active_bridges(&self, network: NetworkId) -> Result<Vec<Address>, StorageError> {
        Ok(self
            .bridges
            .range((network, Address::default())..)
            .take_while(|(nwid, _)| *nwid == network)
            .map(|(_, a)| *a)
            .collect())
    }

    fn requested_since(
        &self,
        network: NetworkId,
        since_ms: i64,
    ) -> Result<Vec<Address>, StorageError> {
        Ok(self
            .members
            .range((network, Address::default())..)
            .take_while(|((nwid, _), _)| *nwid == network)
            .filter(|(_, m)| {
                m.identity.is_some() && m.last_request_time.is_some_and(|t| t >= since_ms)
            })
            .map(|((_, a), _)| *a)
            .collect())
    }

    fn ip_owner(&self, network: NetworkId, ip: IpAddr) -> Result<Option<Address>, StorageError> {
        Ok(self.ip_owners.get(&(network, ip)).copied())
    }

    fn changes_after(&self, after: ChangeSeq, limit: usize) -> Result<Vec<Change>, StorageError> {
        let start = self.feed.partition_point(|c| c.seq <= after);
        Ok(self.feed.iter().skip(start).take(limit).cloned().collect())
    }

    fn latest_change(&self) -> Result<ChangeSeq, StorageError> {
        Ok(self.last_seq)
    }
}
