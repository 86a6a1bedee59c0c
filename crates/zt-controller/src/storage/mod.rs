//! Where networks and members live: the [`Storage`] trait, with [`MemoryStorage`] (tests,
//! benchmarks), [`SqliteStorage`] (the embedded default) and [`PostgresStorage`] (several
//! controllers sharing one database).
//!
//! Contract for every implementation (the suite in `tests/storage_contract.rs` runs it against
//! each):
//! - each mutating call is atomic: after a crash either all of it or none of it is stored, and
//!   once it has returned `Ok` it is durable against the process being killed;
//! - writes are conditional ([`Expect`]): a write that expected a record other than the one
//!   stored now stores nothing and fails with [`StorageError::Conflict`], so two controllers
//!   sharing a database never lose each other's changes (the loser reads again and re-applies
//!   its change; [`crate::Controller`] does this);
//! - an address is assigned to at most one member of a network: a member write refuses with
//!   [`StorageError::IpInUse`] and stores nothing if another member holds one of its addresses;
//! - a write that carries a [`FeedNote`] appends a [`Change`] to the change feed in the same
//!   transaction; changes are read back in commit order ([`Storage::changes_after`]), so every
//!   controller on the database sees every committed change and the pushes it owes;
//! - records are stored as given; validation and revision counting are the caller's
//!   ([`crate::Controller`]);
//! - every network and member gets an [`ItemNo`] from the database when it is first stored
//!   (the RouterOS `*N` of `/zerotier/controller` and `/zerotier/controller/member`), kept
//!   while the record exists, never handed out again, and the same for every controller on
//!   the database.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use zt_crypto::Address;

use crate::controller::Pushes;
use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

mod memory;
mod postgres;
mod sqlite;

pub use self::postgres::{
    FeedListener, PostgresStorage, FEED_CHANNEL, MIGRATIONS as POSTGRES_MIGRATIONS,
};
pub use memory::MemoryStorage;
pub use sqlite::{SqliteStorage, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};

/// Changes kept in the feed; older ones are pruned as new ones are written. A controller
/// reads the feed within a second of each change, so this is far more than it needs.
pub const FEED_RETAINED: i64 = 10_000;

/// What a conditional write expects the stored record to be.
#[derive(Debug)]
pub enum Expect<'a, T> {
    /// Whatever is stored (imports and tests; the controller never writes blind).
    Anything,
    /// No record yet.
    Absent,
    /// Exactly this record, as it was read before the change was computed.
    Current(&'a T),
}

// Copy whatever T is: the variants hold at most a reference.
impl<T> Clone for Expect<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Expect<'_, T> {}

impl<'a, T> Expect<'a, T> {
    /// `Current(r)` for a record that was read, `Absent` for one that was not found.
    pub fn from_read(read: Option<&'a T>) -> Expect<'a, T> {
        match read {
            Some(r) => Expect::Current(r),
            None => Expect::Absent,
        }
    }
}

/// Position in the change feed: changes are numbered in commit order from 1.
pub type ChangeSeq = u64;

/// The RouterOS item number of a network or member (`*N`, from 1), allocated by the database
/// (see the module contract). Networks and members are numbered apart.
pub type ItemNo = u64;

/// Which members [`Storage::member_items`] lists: those matching every key given (none:
/// every member). Each key is an indexed look-up, so a RouterOS command that names a member
/// never reads the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub network: Option<NetworkId>,
    pub address: Option<Address>,
    pub item: Option<ItemNo>,
}

/// Item numbers an older version kept outside the database (the per-daemon id files), given
/// to [`Storage::adopt_item_numbers`] once so the numbers users know survive the upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyItemNumbers {
    pub networks: Vec<(NetworkId, ItemNo)>,
    pub members: Vec<(NetworkId, Address, ItemNo)>,
}

/// Item numbers by the key values of their rows (see [`LegacyItemNumbers::database_keys`]).
pub(crate) type KeyedNumbers = Vec<(Vec<i64>, ItemNo)>;

impl LegacyItemNumbers {
    /// The numbers keyed as the SQL databases key rows: `[id]` for networks, `[network_id,
    /// address]` for members.
    pub(crate) fn database_keys(&self) -> (KeyedNumbers, KeyedNumbers) {
        let networks = self
            .networks
            .iter()
            .map(|(id, no)| (vec![db_id(*id)], *no))
            .collect();
        let members = self
            .members
            .iter()
            .map(|(id, address, no)| (vec![db_id(*id), db_addr(*address)], *no))
            .collect();
        (networks, members)
    }
}

/// What a write tells every controller on the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedNote {
    /// The controller process that wrote it ([`crate::ControllerOptions::writer_id`]), so it can
    /// skip its own changes.
    pub writer: u64,
    /// The pushes the change owes; each controller sends those for the members whose session
    /// is with it.
    pub pushes: Pushes,
}

/// A committed change, read from the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: ChangeSeq,
    pub network_id: NetworkId,
    /// The member that changed; `None` for a change of the network itself.
    pub member: Option<Address>,
    /// The record was deleted.
    pub deleted: bool,
    pub note: FeedNote,
}

/// What answering a config request reads: the network, the requesting member and the
/// network's active bridges (see [`Storage::request_inputs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInputs {
    pub network: Option<Network>,
    pub member: Option<Member>,
    /// Ascending.
    pub active_bridges: Vec<Address>,
}

/// Persistent home of the controller's records.
pub trait Storage {
    /// IDs of every stored network, ascending.
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError>;
    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError>;
    /// Creates or replaces a network if the stored one is what `expect` says.
    fn write_network(
        &mut self,
        network: &Network,
        expect: Expect<'_, Network>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError>;
    /// Deletes a network and all its members; false if it did not exist (then no change is
    /// fed).
    fn remove_network(
        &mut self,
        id: NetworkId,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError>;

    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError>;
    /// Every member of a network, ascending by address.
    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError>;
    /// Creates or replaces a member if the stored one is what `expect` says, with its address
    /// claims (see the module contract).
    fn write_member(
        &mut self,
        member: &Member,
        expect: Expect<'_, Member>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError>;
    /// False if it did not exist (then no change is fed).
    fn remove_member(
        &mut self,
        network: NetworkId,
        address: Address,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError>;

    /// Every network with its item number, ascending by number.
    fn network_items(&self) -> Result<Vec<(ItemNo, NetworkId)>, StorageError>;
    /// The members `filter` selects with their item numbers, ascending by number.
    fn member_items(&self, filter: MemberFilter) -> Result<Vec<(ItemNo, Member)>, StorageError>;
    /// How many members have an item number below `below`: the print position of member
    /// `below` in the RouterOS member menu (which lists members by number). Counted on the
    /// item number's index, without reading the records.
    fn count_members_below(&self, below: ItemNo) -> Result<u64, StorageError>;
    /// Once per database: the records `legacy` lists take those numbers, the others new ones
    /// after every number in use (in their present order), and later records are numbered
    /// after all of them. Entries for records that no longer exist are skipped, as is an entry
    /// whose number another controller's record holds. `false` (and no change) if the
    /// database adopted numbers before.
    fn adopt_item_numbers(&mut self, legacy: &LegacyItemNumbers) -> Result<bool, StorageError>;

    /// Members of the network marked as active bridges, authorized or not, ascending.
    fn active_bridges(&self, network: NetworkId) -> Result<Vec<Address>, StorageError>;

    /// Members with a bound identity whose last real request time is at or after `since_ms`,
    /// ascending (the members that get pushes).
    fn requested_since(
        &self,
        network: NetworkId,
        since_ms: i64,
    ) -> Result<Vec<Address>, StorageError>;

    /// Which member of the network holds `ip`, if any.
    fn ip_owner(&self, network: NetworkId, ip: IpAddr) -> Result<Option<Address>, StorageError>;

    /// Up to `limit` changes committed after `after`, in commit order.
    fn changes_after(&self, after: ChangeSeq, limit: usize) -> Result<Vec<Change>, StorageError>;
    /// The last committed change (0 if none): where a controller that starts now begins to
    /// read the feed.
    fn latest_change(&self) -> Result<ChangeSeq, StorageError>;

    /// The reads of a config request, together: a database across the network answers them
    /// in one round trip.
    fn request_inputs(
        &self,
        network: NetworkId,
        address: Address,
    ) -> Result<RequestInputs, StorageError> {
        let record = self.network(network)?;
        let active_bridges = match record {
            Some(_) => self.active_bridges(network)?,
            None => Vec::new(),
        };
        Ok(RequestInputs {
            member: self.member(network, address)?,
            network: record,
            active_bridges,
        })
    }

    /// Creates or replaces a network unconditionally, feeding nothing.
    fn put_network(&mut self, network: &Network) -> Result<(), StorageError> {
        self.write_network(network, Expect::Anything, None)
    }
    /// Deletes a network, feeding nothing.
    fn delete_network(&mut self, id: NetworkId) -> Result<bool, StorageError> {
        self.remove_network(id, None)
    }
    /// Creates or replaces a member unconditionally, feeding nothing.
    fn put_member(&mut self, member: &Member) -> Result<(), StorageError> {
        self.write_member(member, Expect::Anything, None)
    }
    /// Deletes a member, feeding nothing.
    fn delete_member(
        &mut self,
        network: NetworkId,
        address: Address,
    ) -> Result<bool, StorageError> {
        self.remove_member(network, address, None)
    }
}

/// A boxed storage is a storage, so the backend can be chosen at run time
/// (`Controller<Box<dyn Storage>>`).
impl<T: Storage + ?Sized> Storage for Box<T> {
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError> {
        (**self).network_ids()
    }
    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError> {
        (**self).network(id)
    }
    fn write_network(
        &mut self,
        network: &Network,
        expect: Expect<'_, Network>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        (**self).write_network(network, expect, feed)
    }
    fn remove_network(
        &mut self,
        id: NetworkId,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        (**self).remove_network(id, feed)
    }
    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError> {
        (**self).member(network, address)
    }
    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError> {
        (**self).members(network)
    }
    fn write_member(
        &mut self,
        member: &Member,
        expect: Expect<'_, Member>,
        feed: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        (**self).write_member(member, expect, feed)
    }
    fn remove_member(
        &mut self,
        network: NetworkId,
        address: Address,
        feed: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        (**self).remove_member(network, address, feed)
    }
    fn network_items(&self) -> Result<Vec<(ItemNo, NetworkId)>, StorageError> {
        (**self).network_items()
    }
    fn member_items(&self, filter: MemberFilter) -> Result<Vec<(ItemNo, Member)>, StorageError> {
        (**self).member_items(filter)
    }
    fn count_members_below(&self, below: ItemNo) -> Result<u64, StorageError> {
        (**self).count_members_below(below)
    }
    fn adopt_item_numbers(&mut self, legacy: &LegacyItemNumbers) -> Result<bool, StorageError> {
        (**self).adopt_item_numbers(legacy)
    }
    fn active_bridges(&self, network: NetworkId) -> Result<Vec<Address>, StorageError> {
        (**self).active_bridges(network)
    }
    fn requested_since(
        &self,
        network: NetworkId,
        since_ms: i64,
    ) -> Result<Vec<Address>, StorageError> {
        (**self).requested_since(network, since_ms)
    }
    fn ip_owner(&self, network: NetworkId, ip: IpAddr) -> Result<Option<Address>, StorageError> {
        (**self).ip_owner(network, ip)
    }
    fn changes_after(&self, after: ChangeSeq, limit: usize) -> Result<Vec<Change>, StorageError> {
        (**self).changes_after(after, limit)
    }
    fn latest_change(&self) -> Result<ChangeSeq, StorageError> {
        (**self).latest_change()
    }
    fn request_inputs(
        &self,
        network: NetworkId,
        address: Address,
    ) -> Result<RequestInputs, StorageError> {
        (**self).request_inputs(network, address)
    }
}

/// The JSON a record is stored as. A conditional write decodes the stored record and compares
/// records, not texts: a record written by an older version may lack fields that now have
/// defaults.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Whether `stored` (the record in the database now) is what `expect` allows to replace.
pub(crate) fn expectation_met<T: PartialEq>(expect: Expect<'_, T>, stored: Option<&T>) -> bool {
    match (expect, stored) {
        (Expect::Anything, _) | (Expect::Absent, None) => true,
        (Expect::Current(expected), Some(stored)) => expected == stored,
        (Expect::Absent, Some(_)) | (Expect::Current(_), None) => false,
    }
}

/// True when a write that expects `expect` leaves the member's address claims as they are: the
/// expected record (checked to be the stored one) holds the same addresses. Most writes (a
/// config request moving the request time) are such, and skip the claim bookkeeping.
pub(crate) fn claims_unchanged(expect: Expect<'_, Member>, member: &Member) -> bool {
    let Expect::Current(old) = expect else {
        return false;
    };
    let (mut held, mut wanted) = (old.ip_assignments.clone(), member.ip_assignments.clone());
    held.sort_unstable();
    wanted.sort_unstable();
    held == wanted
}

/// The address claims `member` needs, sorted, if they differ from the claims the database
/// `held` (in any order) for it; `None` when the claims stay as they are.
pub(crate) fn claims_to_write(mut held: Vec<String>, member: &Member) -> Option<Vec<String>> {
    let mut wanted: Vec<String> = member
        .ip_assignments
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    held.sort_unstable();
    wanted.sort_unstable();
    (held != wanted).then_some(wanted)
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|e| StorageError::Corrupt(e.to_string()))
}

// The SQL databases keep IDs and addresses as 64-bit integers: a network ID's u64 bit pattern
// as i64 (IDs with the top bit set are negative there), an address as its 40-bit value.
pub(crate) fn db_id(nwid: NetworkId) -> i64 {
    nwid as i64
}

pub(crate) fn db_addr(a: Address) -> i64 {
    a.to_u64() as i64
}

/// `below` as a bound on the SQL databases' item numbers: numbers beyond i64 are all below it.
pub(crate) fn item_bound_to_db(below: ItemNo) -> i64 {
    i64::try_from(below).unwrap_or(i64::MAX)
}

/// A count from an SQL database (never negative).
pub(crate) fn count_from_db(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt(format!("count {v} out of range")))
}

/// An item number as the SQL databases store it (positive, well within i64).
pub(crate) fn item_from_db(v: i64) -> Result<ItemNo, StorageError> {
    u64::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| StorageError::Corrupt(format!("item number {v} out of range")))
}

pub(crate) fn addr_from_db(v: i64) -> Result<Address, StorageError> {
    u64::try_from(v)
        .ok()
        .and_then(Address::new)
        .ok_or_else(|| StorageError::Corrupt(format!("member address {v} out of range")))
}
