//! SQLite storage (`controller.db`): WAL journal, one transaction per mutation.
//!
//! Layout (schema version 3, kept in `PRAGMA user_version`; version 1 had no feed, version 2
//! no item numbers):
//! - `network(id, record, item)`: the network record as JSON (the serde form of [`Network`])
//!   and its item number;
//! - `member(network_id, address, active_bridge, last_request, record, item)`: the member
//!   record as JSON, with the bridge flag and last request time (of members with a bound
//!   identity) as indexed columns, because every config request lists the bridges and every
//!   change lists the members that asked recently; its item number, and an index by address
//!   alone (RouterOS `print where zt-address=…`);
//! - `item_counter(kind, last)`: the last item number handed out per kind (`network`,
//!   `member`); a trigger numbers each inserted row, so every way of inserting one numbers it
//!   and an update keeps the number; `meta(key, value)` notes that numbers were adopted
//!   ([`Storage::adopt_item_numbers`]);
//! - `member_ip(network_id, ip, address)`: one row per assigned address; its primary key is
//!   what makes an address belong to at most one member;
//! - `change(seq, network_id, address, deleted, note)`: the change feed, `seq` in commit order
//!   (writers are serialised by SQLite's write lock), the [`FeedNote`] as JSON.
//!
//! IDs and addresses are stored as SQLite integers (a network ID's u64 bit pattern as i64).
//! Records are JSON so that adding a field to the model needs no table change: serde defaults
//! cover older records, and the schema version only moves when the tables change.
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use zt_crypto::Address;

use super::{
    addr_from_db, claims_to_write, claims_unchanged, count_from_db, db_addr, db_id, decode, encode,
    expectation_met, item_bound_to_db, item_from_db, Change, ChangeSeq, Expect, FeedNote, ItemNo,
    LegacyItemNumbers, MemberFilter, Storage, FEED_RETAINED,
};
use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

/// The schema this code writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

/// Version 1: networks, members and their address claims.
const CREATE_RECORDS: &str = "CREATE TABLE network (
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
     PRAGMA user_version = 1;";

/// Version 2: the change feed.
const CREATE_FEED: &str = "CREATE TABLE change (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         network_id INTEGER NOT NULL,
         address INTEGER,
         deleted INTEGER NOT NULL,
         note TEXT NOT NULL
     );
     PRAGMA user_version = 2;";

/// Version 3: item numbers. Records already stored are numbered in the order the RouterOS
/// menus listed them (networks by ID, members by network ID then address; IDs as unsigned).
const CREATE_ITEM_NUMBERS: &str = "CREATE TABLE item_counter (
         kind TEXT PRIMARY KEY,
         last INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     ALTER TABLE network ADD COLUMN item INTEGER;
     ALTER TABLE member ADD COLUMN item INTEGER;
     UPDATE network SET item = numbered.n
         FROM (SELECT id, row_number() OVER (ORDER BY id >= 0 DESC, id) AS n FROM network)
             AS numbered
         WHERE network.id = numbered.id;
     UPDATE member SET item = numbered.n
         FROM (SELECT network_id, address,
                      row_number() OVER (ORDER BY network_id >= 0 DESC, network_id, address) AS n
               FROM member) AS numbered
         WHERE member.network_id = numbered.network_id AND member.address = numbered.address;
     INSERT INTO item_counter (kind, last)
         VALUES ('network', (SELECT count(*) FROM network)),
                ('member', (SELECT count(*) FROM member));
     CREATE UNIQUE INDEX network_item ON network(item);
     CREATE UNIQUE INDEX member_item ON member(item);
     CREATE INDEX member_address ON member(address);
     CREATE TRIGGER network_numbered AFTER INSERT ON network BEGIN
         UPDATE item_counter SET last = last + 1 WHERE kind = 'network';
         UPDATE network SET item = (SELECT last FROM item_counter WHERE kind = 'network')
             WHERE id = NEW.id;
     END;
     CREATE TRIGGER member_numbered AFTER INSERT ON member BEGIN
         UPDATE item_counter SET last = last + 1 WHERE kind = 'member';
         UPDATE member SET item = (SELECT last FROM item_counter WHERE kind = 'member')
             WHERE network_id = NEW.network_id AND address = NEW.address;
     END;
     PRAGMA user_version = 3;";

/// The `meta` key saying item numbers were adopted.
const ADOPTED_KEY: &str = "item-numbers-adopted";

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

    /// A database that exists but is empty (0 bytes: a truncated copy, a full disk) is refused
    /// rather than silently started afresh: that would lose every network and member. The
    /// file (and with it SQLite's journal files) is kept private to the owner: it lists
    /// members and their identities.
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStorage, StorageError> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(StorageError::Corrupt(format!(
                    "{} is empty (0 bytes), so it is not the controller's database; restore it from a backup, or remove it to start with no networks",
                    path.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private(path)?,
            Err(e) => return Err(StorageError::Corrupt(format!("{}: {e}", path.display()))),
        }
        restrict_to_owner(path)?;
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
        if version > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 0 {
            return Err(StorageError::Corrupt(format!(
                "unknown schema version {version}"
            )));
        }
        // Each step brings the schema from its version to the next.
        let steps = [CREATE_RECORDS, CREATE_FEED, CREATE_ITEM_NUMBERS];
        for step in steps.iter().skip(version as usize) {
            tx.execute_batch(step)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Creates an empty file only the owner may read, so the database SQLite writes into it (and
/// the journal files SQLite gives the database's mode) are private from the start.
fn create_private(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(StorageError::Corrupt(format!("{}: {e}", path.display()))),
        })
}

/// Makes an existing database (and its journal files) private to the owner.
fn restrict_to_owner(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    let mut names = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name.into());
    }
    for name in names.iter().filter(|n| n.exists()) {
        std::fs::set_permissions(name, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", name.display())))?;
    }
    Ok(())
}

/// Appends `note` (if any) to the feed inside `tx`, pruning what is no longer retained.
fn feed(
    tx: &rusqlite::Transaction<'_>,
    network_id: NetworkId,
    member: Option<Address>,
    deleted: bool,
    note: Option<&FeedNote>,
) -> Result<(), StorageError> {
    let Some(note) = note else { return Ok(()) };
    tx.prepare_cached(
        "INSERT INTO change (network_id, address, deleted, note) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        db_id(network_id),
        member.map(db_addr),
        deleted,
        encode(note)?
    ])?;
    let seq = tx.last_insert_rowid();
    tx.prepare_cached("DELETE FROM change WHERE seq <= ?1")?
        .execute([seq - FEED_RETAINED])?;
    Ok(())
}

fn stored_record<T: serde::de::DeserializeOwned>(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<T>, StorageError> {
    let json: Option<String> = tx
        .prepare_cached(sql)?
        .query_row(params, |r| r.get(0))
        .optional()?;
    json.map(|j| decode(&j)).transpose()
}

/// A member row's item number and record.
fn numbered_member(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Option<i64>, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn item_of(item: Option<i64>) -> Result<ItemNo, StorageError> {
    item_from_db(item.ok_or_else(|| StorageError::Corrupt("record without item number".into()))?)
}

/// One kind of numbered record for [`SqliteStorage::adopt_item_numbers`]: its table, the
/// `item_counter` kind, the columns that key a row and the order they were numbered in.
struct Numbered {
    table: &'static str,
    kind: &'static str,
    key: &'static str,
}

/// Gives `listed` (key values, number) their numbers in `tx` and the other rows of `what` new
/// ones after every number in use, in their present order.
fn adopt(
    tx: &rusqlite::Transaction<'_>,
    what: &Numbered,
    listed: &[(Vec<i64>, ItemNo)],
) -> Result<(), StorageError> {
    let Numbered { table, kind, key } = what;
    let key_match = key
        .split(", ")
        .enumerate()
        .map(|(i, column)| format!("{column} = ?{}", i + 2))
        .collect::<Vec<_>>()
        .join(" AND ");
    // Negative numbers free every positive one and keep the present order.
    tx.execute(&format!("UPDATE {table} SET item = -item"), [])?;
    {
        let mut give = tx.prepare(&format!(
            "UPDATE {table} SET item = ?1 WHERE {key_match} AND item < 0
             AND NOT EXISTS (SELECT 1 FROM {table} WHERE item = ?1)"
        ))?;
        for (values, no) in listed {
            let Ok(no) = i64::try_from(*no) else { continue };
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&no];
            params.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
            give.execute(params.as_slice())?;
        }
    }
    let counted: i64 = tx.query_row(
        "SELECT last FROM item_counter WHERE kind = ?1",
        [kind],
        |r| r.get(0),
    )?;
    let highest: Option<i64> =
        tx.query_row(&format!("SELECT max(item) FROM {table}"), [], |r| r.get(0))?;
    let mut last = counted.max(highest.unwrap_or(0));
    let rest: Vec<Vec<i64>> = {
        let columns = key.split(", ").count();
        let mut stmt = tx.prepare(&format!(
            "SELECT {key} FROM {table} WHERE item < 0 ORDER BY item DESC"
        ))?;
        let rows = stmt.query_map([], |r| (0..columns).map(|i| r.get(i)).collect())?;
        rows.collect::<Result<_, _>>()?
    };
    let mut renumber = tx.prepare(&format!("UPDATE {table} SET item = ?1 WHERE {key_match}"))?;
    for values in rest {
        last += 1;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&last];
        params.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
        renumber.execute(params.as_slice())?;
    }
    tx.execute(
        "UPDATE item_counter SET last = ?2 WHERE kind = ?1",
        params![kind, last],
    )?;
    Ok(())
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

    fn write_network(
        &mut self,
        network: &Network,
        expect: Expect<'_, Network>,
        note: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        let json = encode(network)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !matches!(expect, Expect::Anything) {
            let stored: Option<Network> = stored_record(
                &tx,
                "SELECT record FROM network WHERE id = ?1",
                [db_id(network.id)],
            )?;
            if !expectation_met(expect, stored.as_ref()) {
                return Err(StorageError::Conflict);
            }
        }
        tx.prepare_cached(
            "INSERT INTO network (id, record) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET record = excluded.record",
        )?
        .execute(params![db_id(network.id), json])?;
        feed(&tx, network.id, None, false, note)?;
        tx.commit()?;
        Ok(())
    }

    fn remove_network(
        &mut self,
        id: NetworkId,
        note: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Explicit deletes rather than relying on cascades alone, so the order is clear.
        tx.execute("DELETE FROM member_ip WHERE network_id = ?1", [db_id(id)])?;
        tx.execute("DELETE FROM member WHERE network_id = ?1", [db_id(id)])?;
        let n = tx.execute("DELETE FROM network WHERE id = ?1", [db_id(id)])?;
        if n > 0 {
            feed(&tx, id, None, true, note)?;
        }
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

    fn write_member(
        &mut self,
        member: &Member,
        expect: Expect<'_, Member>,
        note: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        let json = encode(member)?;
        let (nwid, addr) = (db_id(member.network_id), db_addr(member.address));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !matches!(expect, Expect::Anything) {
            let stored: Option<Member> = stored_record(
                &tx,
                "SELECT record FROM member WHERE network_id = ?1 AND address = ?2",
                params![nwid, addr],
            )?;
            if !expectation_met(expect, stored.as_ref()) {
                return Err(StorageError::Conflict);
            }
        }
        // Most saves (a config request moving the request time) keep the addresses: then the
        // claims stay as they are.
        let keep_claims = claims_unchanged(expect, member);
        {
            let mut owner_of = tx.prepare_cached(
                "SELECT address FROM member_ip WHERE network_id = ?1 AND ip = ?2",
            )?;
            for ip in member.ip_assignments.iter().filter(|_| !keep_claims) {
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
            if !keep_claims {
                let held: Vec<String> = tx
                    .prepare_cached(
                        "SELECT ip FROM member_ip WHERE network_id = ?1 AND address = ?2",
                    )?
                    .query_map(params![nwid, addr], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                if let Some(wanted) = claims_to_write(held, member) {
                    tx.prepare_cached(
                        "DELETE FROM member_ip WHERE network_id = ?1 AND address = ?2",
                    )?
                    .execute(params![nwid, addr])?;
                    let mut claim = tx.prepare_cached(
                        "INSERT INTO member_ip (network_id, ip, address) VALUES (?1, ?2, ?3)",
                    )?;
                    for ip in &wanted {
                        claim.execute(params![nwid, ip, addr])?;
                    }
                }
            }
        }
        feed(&tx, member.network_id, Some(member.address), false, note)?;
        tx.commit()?;
        Ok(())
    }

    fn remove_member(
        &mut self,
        network: NetworkId,
        address: Address,
        note: Option<&FeedNote>,
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
        if n > 0 {
            feed(&tx, network, Some(address), true, note)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn network_items(&self) -> Result<Vec<(ItemNo, NetworkId)>, StorageError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT item, id FROM network ORDER BY item")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
        })?;
        rows.map(|row| {
            let (item, id) = row?;
            Ok((item_of(item)?, id as u64))
        })
        .collect()
    }

    fn member_items(&self, filter: MemberFilter) -> Result<Vec<(ItemNo, Member)>, StorageError> {
        // The most selective key picks the index; the others are checked on what it finds.
        let (sql, key): (&str, Vec<i64>) = match filter {
            MemberFilter {
                item: Some(item), ..
            } => (
                "SELECT item, record FROM member WHERE item = ?1",
                vec![i64::try_from(item).unwrap_or(-1)],
            ),
            MemberFilter {
                network: Some(nwid),
                address: Some(address),
                ..
            } => (
                "SELECT item, record FROM member WHERE network_id = ?1 AND address = ?2",
                vec![db_id(nwid), db_addr(address)],
            ),
            MemberFilter {
                network: Some(nwid),
                ..
            } => (
                "SELECT item, record FROM member WHERE network_id = ?1 ORDER BY item",
                vec![db_id(nwid)],
            ),
            MemberFilter {
                address: Some(address),
                ..
            } => (
                "SELECT item, record FROM member INDEXED BY member_address
                 WHERE address = ?1 ORDER BY item",
                vec![db_addr(address)],
            ),
            MemberFilter { .. } => ("SELECT item, record FROM member ORDER BY item", vec![]),
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(key), numbered_member)?;
        let mut found = Vec::new();
        for row in rows {
            let (item, json) = row?;
            let member: Member = decode(&json)?;
            if filter.network.is_none_or(|n| n == member.network_id)
                && filter.address.is_none_or(|a| a == member.address)
            {
                found.push((item_of(item)?, member));
            }
        }
        Ok(found)
    }

    fn count_members_below(&self, below: ItemNo) -> Result<u64, StorageError> {
        // A range of the `member_item` index, which holds all it needs.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT count(*) FROM member WHERE item < ?1")?;
        let count: i64 = stmt.query_row([item_bound_to_db(below)], |r| r.get(0))?;
        count_from_db(count)
    }

    fn adopt_item_numbers(&mut self, legacy: &LegacyItemNumbers) -> Result<bool, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let adopted: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [ADOPTED_KEY],
                |r| r.get(0),
            )
            .optional()?;
        if adopted.is_some() {
            return Ok(false);
        }
        let (networks, members) = legacy.database_keys();
        let network_kind = Numbered {
            table: "network",
            kind: "network",
            key: "id",
        };
        let member_kind = Numbered {
            table: "member",
            kind: "member",
            key: "network_id, address",
        };
        adopt(&tx, &network_kind, &networks)?;
        adopt(&tx, &member_kind, &members)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, 'yes')",
            [ADOPTED_KEY],
        )?;
        tx.commit()?;
        Ok(true)
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

    fn changes_after(&self, after: ChangeSeq, limit: usize) -> Result<Vec<Change>, StorageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, network_id, address, deleted, note FROM change
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (seq, network_id, address, deleted, note) = row?;
            Ok(Change {
                seq: seq as u64,
                network_id: network_id as u64,
                member: address.map(addr_from_db).transpose()?,
                deleted,
                note: decode(&note)?,
            })
        })
        .collect()
    }

    fn latest_change(&self) -> Result<ChangeSeq, StorageError> {
        // sqlite_sequence keeps the last number even when the feed was pruned empty.
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'change'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(seq.unwrap_or(0) as u64)
    }
}
