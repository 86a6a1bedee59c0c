//! In-memory storage: the same contract as SQLite, without durability. For tests and benchmarks,
//! and for a controller that is rebuilt from elsewhere at start.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use zt_crypto::Address;

use super::{expectation_met, Change, ChangeSeq, Expect, FeedNote, Storage, FEED_RETAINED};
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
        self.append(network.id, None, false, feed);
        Ok(())
    }

    fn remove_network(
        &mut self,
        id: NetworkId,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        let existed = self.networks.remove(&id).is_some();
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
