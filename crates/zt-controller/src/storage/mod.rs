//! Where networks and members live: the [`Storage`] trait, with [`MemoryStorage`] (tests,
//! benchmarks) and [`SqliteStorage`] (the embedded default). A PostgreSQL implementation for
//! several controllers sharing one database can implement the same trait later.
//!
//! Contract for every implementation:
//! - each mutating call is atomic: after a crash either all of it or none of it is stored, and
//!   once it has returned `Ok` it is durable against the process being killed;
//! - an address is assigned to at most one member of a network: [`Storage::put_member`] refuses
//!   with [`StorageError::IpInUse`] and stores nothing if another member holds one of its
//!   addresses;
//! - records are stored as given; validation and revision counting are the caller's
//!   ([`crate::Controller`]).
use std::net::IpAddr;

use zt_crypto::Address;

use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

mod memory;
mod sqlite;

pub use memory::MemoryStorage;
pub use sqlite::SqliteStorage;

/// Persistent home of the controller's records.
pub trait Storage {
    /// IDs of every stored network, ascending.
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError>;
    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError>;
    /// Creates or replaces a network.
    fn put_network(&mut self, network: &Network) -> Result<(), StorageError>;
    /// Deletes a network and all its members; false if it did not exist.
    fn delete_network(&mut self, id: NetworkId) -> Result<bool, StorageError>;

    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError>;
    /// Every member of a network, ascending by address.
    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError>;
    /// Creates or replaces a member, with its address claims (see the module contract).
    fn put_member(&mut self, member: &Member) -> Result<(), StorageError>;
    /// False if it did not exist.
    fn delete_member(&mut self, network: NetworkId, address: Address)
        -> Result<bool, StorageError>;

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
    fn put_network(&mut self, network: &Network) -> Result<(), StorageError> {
        (**self).put_network(network)
    }
    fn delete_network(&mut self, id: NetworkId) -> Result<bool, StorageError> {
        (**self).delete_network(id)
    }
    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError> {
        (**self).member(network, address)
    }
    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError> {
        (**self).members(network)
    }
    fn put_member(&mut self, member: &Member) -> Result<(), StorageError> {
        (**self).put_member(member)
    }
    fn delete_member(
        &mut self,
        network: NetworkId,
        address: Address,
    ) -> Result<bool, StorageError> {
        (**self).delete_member(network, address)
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
}
