//! SQLite storage (`controller.db`): WAL journal, one transaction per mutation.
//!
//! Layout (schema version 1, kept in `PRAGMA user_version`):
//! - `network(id, record)`: the network record as JSON (the serde form of [`Network`]);
//! - `member(network_id, address, active_bridge, last_request, record)`: the member record as
//!   JSON, with the bridge flag and last request time (of members with a bound identity) as
//!   indexed columns, because every config request lists the bridges and every change lists the
//!   members that asked recently;
//! - `member_ip(network_id, ip, address)`: one row per assigned address; its primary key is
//!   what makes an address belong to at most one member.
//!
//! IDs and addresses are stored as SQLite integers (a network ID's u64 bit pattern as i64).
//! Records are JSON so that adding a field to the model needs no table change: serde defaults
//! cover older records, and the schema version only moves when the tables change.
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use zt_crypto::Address;

use super::Storage;
use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

/// The schema this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// What a committed change must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The process being killed (kill -9, panic, OOM): WAL with `synchronous=NORMAL`. A commit
    /// is in the WAL file (the OS page cache) before it returns. This is the default: it costs
    /// no fsync per config request.
    ProcessCrash,
    /// Power loss or a kernel crash as well: `synchronous=FULL`, an fsync per commit.
    PowerLoss,
}

/// SQLite-backed [`Storage`].
pub struct SqliteStorage {
    conn: Connection,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` with [`Durability::ProcessCrash`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage, StorageError> {
        Self::open_with(path, Durability::ProcessCrash)
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStorage, StorageError> {
        let conn = Connection::open(path)?;
        Self::init(conn, durability)
    }

    /// A private in-memory database (same code paths, no file).
    pub fn open_in_memory() -> Result<SqliteStorage, StorageError> {
        Self::init(Connection::open_in_memory()?, Durability::ProcessCrash)
    }

    fn init(conn: Connection, durability: Durability) -> Result<SqliteStorage, StorageError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // journal_mode returns a row, so it is queried rather than executed.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch(match durability {
            Durability::ProcessCrash => "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            Durability::PowerLoss => "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        })?;
        let mut storage = SqliteStorage { conn };
        storage.migrate()?;
        Ok(storage)
    }

    fn migrate(&mut self) -> Result<(), StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => {
                tx.execute_batch(
                    "CREATE TABLE network (
                         id INTEGER PRIMARY KEY,
                         record TEXT NOT NULL
                     );
                     CREATE TABLE member (
                         network_id INTEGER NOT NULL REFERENCES network(id) ON DELETE CASCADE,
                         address INTEGER NOT NULL,
                         active_bridge INTEGER NOT NULL,
                         last_request INTEGER,
                         record TEXT NOT NULL,
                         PRIMARY KEY (network_id, address)
                     ) WITHOUT ROWID;
                     CREATE INDEX member_bridges ON member(network_id, address) WHERE active_bridge != 0;
                     CREATE INDEX member_requests ON member(network_id, last_request);
                     CREATE TABLE member_ip (
                         network_id INTEGER NOT NULL,
                         ip TEXT NOT NULL,
                         address INTEGER NOT NULL,
                         PRIMARY KEY (network_id, ip),
                         FOREIGN KEY (network_id, address) REFERENCES member(network_id, address)
                             ON DELETE CASCADE
                     ) WITHOUT ROWID;
                     CREATE INDEX member_ip_by_member ON member_ip(network_id, address);
                     PRAGMA user_version = 1;",
                )?;
            }
            SCHEMA_VERSION => {}
            found if found > SCHEMA_VERSION => {
                return Err(StorageError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            found => {
                return Err(StorageError::Corrupt(format!(
                    "unknown schema version {found}"
                )))
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn db_id(nwid: NetworkId) -> i64 {
    nwid as i64
}

fn db_addr(a: Address) -> i64 {
    a.to_u64() as i64
}

fn addr_from_db(v: i64) -> Result<Address, StorageError> {
    u64::try_from(v)
        .ok()
        .and_then(Address::new)
        .ok_or_else(|| StorageError::Corrupt(format!("member address {v} out of range")))
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::Corrupt(e.to_string()))
}

impl Storage for SqliteStorage {
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM network")?;
        let mut ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted as unsigned: IDs with the top bit set are negative in SQLite.
        ids.sort_unstable();
        Ok(ids)
    }

    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM network WHERE id = ?1")?;
        let json: Option<String> = stmt.query_row([db_id(id)], |r| r.get(0)).optional()?;
        json.map(|j| decode(&j)).transpose()
    }

    fn put_network(&mut self, network: &Network) -> Result<(), StorageError> {
        let json = encode(network)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO network (id, record) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET record = excluded.record",
        )?
        .execute(params![db_id(network.id), json])?;
        tx.commit()?;
        Ok(())
    }

    fn delete_network(&mut self, id: NetworkId) -> Result<bool, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Explicit deletes rather than relying on cascades alone, so the order is clear.
        tx.execute("DELETE FROM member_ip WHERE network_id = ?1", [db_id(id)])?;
        tx.execute("DELETE FROM member WHERE network_id = ?1", [db_id(id)])?;
        let n = tx.execute("DELETE FROM network WHERE id = ?1", [db_id(id)])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM member WHERE network_id = ?1 AND address = ?2")?;
        let json: Option<String> = stmt
            .query_row(params![db_id(network), db_addr(address)], |r| r.get(0))
            .optional()?;
        json.map(|j| decode(&j)).transpose()
    }

    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM member WHERE network_id = ?1 ORDER BY address")?;
        let rows = stmt.query_map([db_id(network)], |r| r.get::<_, String>(0))?;
        rows.map(|r| decode(&r?)).collect()
    }

    fn put_member(&mut self, member: &Member) -> Result<(), StorageError> {
        let json = encode(member)?;
        let (nwid, addr) = (db_id(member.network_id), db_addr(member.address));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut owner_of = tx.prepare_cached(
                "SELECT address FROM member_ip WHERE network_id = ?1 AND ip = ?2",
            )?;
            for ip in &member.ip_assignments {
                let owner: Option<i64> = owner_of
                    .query_row(params![nwid, ip.to_string()], |r| r.get(0))
                    .optional()?;
                if let Some(owner) = owner.filter(|&o| o != addr) {
                    // Dropping the transaction rolls it back: nothing is stored.
                    return Err(StorageError::IpInUse {
                        ip: ip.to_string(),
                        owner: addr_from_db(owner)?.to_string(),
                    });
                }
            }
            tx.prepare_cached(
                "INSERT INTO member (network_id, address, active_bridge, last_request, record)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(network_id, address) DO UPDATE
                 SET active_bridge = excluded.active_bridge,
                     last_request = excluded.last_request,
                     record = excluded.record",
            )?
            .execute(params![
                nwid,
                addr,
                member.active_bridge,
                member
                    .last_request_time
                    .filter(|_| member.identity.is_some()),
                json
            ])?;
            // Most saves (a config request moving the last-request time) keep the addresses:
            // then the claims stay as they are.
            let mut held: Vec<String> = tx
                .prepare_cached("SELECT ip FROM member_ip WHERE network_id = ?1 AND address = ?2")?
                .query_map(params![nwid, addr], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut wanted: Vec<String> = member
                .ip_assignments
                .iter()
                .map(|ip| ip.to_string())
                .collect();
            held.sort_unstable();
            wanted.sort_unstable();
            if held != wanted {
                tx.prepare_cached("DELETE FROM member_ip WHERE network_id = ?1 AND address = ?2")?
                    .execute(params![nwid, addr])?;
                let mut claim = tx.prepare_cached(
                    "INSERT INTO member_ip (network_id, ip, address) VALUES (?1, ?2, ?3)",
                )?;
                for ip in &wanted {
                    claim.execute(params![nwid, ip, addr])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_member(
        &mut self,
        network: NetworkId,
        address: Address,
    ) -> Result<bool, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM member_ip WHERE network_id = ?1 AND address = ?2",
            params![db_id(network), db_addr(address)],
        )?;
        let n = tx.execute(
            "DELETE FROM member WHERE network_id = ?1 AND address = ?2",
            params![db_id(network), db_addr(address)],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn active_bridges(&self, network: NetworkId) -> Result<Vec<Address>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            // INDEXED BY: without statistics the planner would walk the whole network's members
            // by primary key; the partial index holds only the bridges.
            "SELECT address FROM member INDEXED BY member_bridges
             WHERE network_id = ?1 AND active_bridge != 0 ORDER BY address",
        )?;
        let rows = stmt.query_map([db_id(network)], |r| r.get::<_, i64>(0))?;
        rows.map(|r| addr_from_db(r?)).collect()
    }

    fn requested_since(
        &self,
        network: NetworkId,
        since_ms: i64,
    ) -> Result<Vec<Address>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT address FROM member INDEXED BY member_requests
             WHERE network_id = ?1 AND last_request >= ?2 ORDER BY address",
        )?;
        let rows = stmt.query_map(params![db_id(network), since_ms], |r| r.get::<_, i64>(0))?;
        rows.map(|r| addr_from_db(r?)).collect()
    }

    fn ip_owner(&self, network: NetworkId, ip: IpAddr) -> Result<Option<Address>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT address FROM member_ip WHERE network_id = ?1 AND ip = ?2")?;
        let owner: Option<i64> = stmt
            .query_row(params![db_id(network), ip.to_string()], |r| r.get(0))
            .optional()?;
        owner.map(addr_from_db).transpose()
    }
}
