//! PostgreSQL storage: several controllers (on one host or many) share one database.
//!
//! Tables are prefixed `zt_` so the database may hold other things; several controller
//! identities may share it too, each seeing only its own networks (a network ID begins with
//! its controller's address):
//! - `zt_network(id, record)`, `zt_member(network_id, address, active_bridge, last_request,
//!   record)`, `zt_member_ip(network_id, ip, address)`: as in SQLite (records as JSON text,
//!   IDs and addresses as the bit pattern in a BIGINT);
//! - `zt_change(seq, network_id, address, deleted, note, committed_at)`: the change feed.
//!   Writers take a transaction-scoped advisory lock just before appending, so change numbers
//!   are handed out in commit order and a reader that saw `seq` never later finds a smaller
//!   one; each append also sends `NOTIFY` on [`FEED_CHANNEL`] so readers wake at once;
//! - item numbers (`item` in `zt_network` and `zt_member`) come from the sequences
//!   `zt_network_item` and `zt_member_item` as the column default, so every controller on the
//!   database sees the same numbers and none is handed out twice; `zt_meta(key, value)` notes
//!   which controllers adopted numbers ([`Storage::adopt_item_numbers`]);
//! - `zt_member_block(controller, block, members)`: how many members each controller
//!   (`network_id >> 24`) has per block of 1024 item numbers, kept by a trigger on `zt_member`,
//!   for print positions;
//! - `zt_migration(version, applied_at)`: applied schema migrations (see [`MIGRATIONS`]),
//!   applied under an advisory lock so controllers starting together migrate once.
//!
//! Conditional writes lock the row they compare (`SELECT … FOR UPDATE`); a row or address
//! claim inserted by a concurrent transaction shows up as a unique or foreign-key violation,
//! reported as [`StorageError::Conflict`] so the controller reads again.
//!
//! The client is `postgres`, the blocking face of `tokio-postgres`: the controller service
//! owns its storage on a thread of its own (off the packet path), where blocking calls are the
//! natural shape. A lost connection is re-opened on the next call.
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::net::IpAddr;

use fallible_iterator::FallibleIterator;
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement, Transaction};
use zt_crypto::Address;

use super::{
    addr_from_db, claims_to_write, claims_unchanged, count_from_db, db_addr, db_id, decode, encode,
    expectation_met, item_bound_to_db, item_from_db, Change, ChangeSeq, Expect, FeedNote, ItemNo,
    LegacyItemNumbers, MemberFilter, RequestInputs, Storage, FEED_RETAINED,
};
use crate::error::StorageError;
use crate::model::{Member, Network, NetworkId};

/// The `NOTIFY` channel of the change feed; the payload is the change number.
pub const FEED_CHANNEL: &str = "zt_controller_change";

/// Advisory lock keys (arbitrary constants, "zt" in ASCII and a number).
const MIGRATION_LOCK: i64 = 0x7a74_0001;
const FEED_LOCK: i64 = 0x7a74_0002;

/// Schema migrations, in order; version N is `MIGRATIONS[N - 1]`. Never edit one that has
/// shipped: add the next.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE zt_network (
         id BIGINT PRIMARY KEY,
         record TEXT NOT NULL
     );
     CREATE TABLE zt_member (
         network_id BIGINT NOT NULL REFERENCES zt_network(id) ON DELETE CASCADE,
         address BIGINT NOT NULL,
         active_bridge BOOLEAN NOT NULL,
         last_request BIGINT,
         record TEXT NOT NULL,
         PRIMARY KEY (network_id, address)
     );
     CREATE INDEX zt_member_bridges ON zt_member(network_id, address) WHERE active_bridge;
     CREATE INDEX zt_member_requests ON zt_member(network_id, last_request);
     CREATE TABLE zt_member_ip (
         network_id BIGINT NOT NULL,
         ip TEXT NOT NULL,
         address BIGINT NOT NULL,
         PRIMARY KEY (network_id, ip),
         FOREIGN KEY (network_id, address) REFERENCES zt_member(network_id, address)
             ON DELETE CASCADE
     );
     CREATE INDEX zt_member_ip_by_member ON zt_member_ip(network_id, address);
     CREATE TABLE zt_change (
         seq BIGSERIAL PRIMARY KEY,
         network_id BIGINT NOT NULL,
         address BIGINT,
         deleted BOOLEAN NOT NULL,
         note TEXT NOT NULL,
         committed_at TIMESTAMPTZ NOT NULL DEFAULT now()
     );",
    // 2: item numbers; records already stored are numbered in the order the RouterOS menus
    // listed them (networks by ID, members by network ID then address; IDs as unsigned).
    "CREATE SEQUENCE zt_network_item;
     CREATE SEQUENCE zt_member_item;
     CREATE TABLE zt_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     ALTER TABLE zt_network ADD COLUMN item BIGINT;
     ALTER TABLE zt_member ADD COLUMN item BIGINT;
     UPDATE zt_network SET item = numbered.n
         FROM (SELECT id, row_number() OVER (ORDER BY id >= 0 DESC, id) AS n FROM zt_network)
             AS numbered
         WHERE zt_network.id = numbered.id;
     UPDATE zt_member SET item = numbered.n
         FROM (SELECT network_id, address,
                      row_number() OVER (ORDER BY network_id >= 0 DESC, network_id, address) AS n
               FROM zt_member) AS numbered
         WHERE zt_member.network_id = numbered.network_id
           AND zt_member.address = numbered.address;
     SELECT setval('zt_network_item', COALESCE(max(item), 1), max(item) IS NOT NULL)
         FROM zt_network;
     SELECT setval('zt_member_item', COALESCE(max(item), 1), max(item) IS NOT NULL)
         FROM zt_member;
     ALTER TABLE zt_network ALTER COLUMN item SET DEFAULT nextval('zt_network_item'),
         ALTER COLUMN item SET NOT NULL;
     ALTER TABLE zt_member ALTER COLUMN item SET DEFAULT nextval('zt_member_item'),
         ALTER COLUMN item SET NOT NULL;
     ALTER SEQUENCE zt_network_item OWNED BY zt_network.item;
     ALTER SEQUENCE zt_member_item OWNED BY zt_member.item;
     CREATE UNIQUE INDEX zt_network_item_key ON zt_network(item);
     CREATE UNIQUE INDEX zt_member_item_key ON zt_member(item);
     CREATE INDEX zt_member_address ON zt_member(address);",
    // 3: member counts per controller (`network_id >> 24`) and block of 1024 item numbers,
    // kept by a trigger, so a member's print position (`count_members_below`) adds up a few
    // block counts and counts at most one block's rows.
    "CREATE TABLE zt_member_block (
         controller BIGINT NOT NULL,
         block BIGINT NOT NULL,
         members BIGINT NOT NULL,
         PRIMARY KEY (controller, block)
     );
     INSERT INTO zt_member_block
         SELECT network_id >> 24, item >> 10, count(*) FROM zt_member GROUP BY 1, 2;
     CREATE FUNCTION zt_member_block_count() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF TG_OP <> 'INSERT' THEN
             UPDATE zt_member_block SET members = members - 1
                 WHERE controller = OLD.network_id >> 24 AND block = OLD.item >> 10;
         END IF;
         IF TG_OP <> 'DELETE' THEN
             INSERT INTO zt_member_block VALUES (NEW.network_id >> 24, NEW.item >> 10, 1)
                 ON CONFLICT (controller, block)
                 DO UPDATE SET members = zt_member_block.members + 1;
         END IF;
         RETURN NULL;
     END $$;
     CREATE TRIGGER zt_member_block_count
         AFTER INSERT OR DELETE OR UPDATE OF network_id, item ON zt_member
         FOR EACH ROW EXECUTE FUNCTION zt_member_block_count();",
];

/// One kind of numbered record for [`PostgresStorage::adopt_item_numbers`].
struct Numbered {
    table: &'static str,
    sequence: &'static str,
    /// The columns that key a row, the first being the network ID.
    key: &'static [&'static str],
}

const NUMBERED_NETWORKS: Numbered = Numbered {
    table: "zt_network",
    sequence: "zt_network_item",
    key: &["id"],
};
const NUMBERED_MEMBERS: Numbered = Numbered {
    table: "zt_member",
    sequence: "zt_member_item",
    key: &["network_id", "address"],
};

/// Gives `listed` (key values, number) their numbers in `tx` and the other rows of `what`
/// within `networks` new ones after every number in use, in their present order.
fn adopt(
    tx: &mut Transaction<'_>,
    what: &Numbered,
    networks: (i64, i64),
    listed: &[(Vec<i64>, ItemNo)],
) -> Result<(), StorageError> {
    let Numbered {
        table,
        sequence,
        key,
    } = what;
    let in_range = format!("{} BETWEEN $1 AND $2", key[0]);
    let key_match = |first: usize| {
        key.iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + first))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    // Negative numbers free every positive one and keep the present order.
    tx.execute(
        &format!("UPDATE {table} SET item = -item WHERE {in_range}"),
        &[&networks.0, &networks.1],
    )?;
    let give = tx.prepare(&format!(
        "UPDATE {table} SET item = $1 WHERE {} AND item < 0
         AND NOT EXISTS (SELECT 1 FROM {table} WHERE item = $1)",
        key_match(2)
    ))?;
    for (values, no) in listed {
        let Ok(no) = i64::try_from(*no) else { continue };
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&no];
        params.extend(
            values
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync)),
        );
        tx.execute(&give, &params)?;
    }
    tx.execute(
        &format!(
            "SELECT setval('{sequence}', GREATEST(max(item), (SELECT last_value FROM {sequence})))
             FROM {table}"
        ),
        &[],
    )?;
    let rest = tx.query(
        &format!(
            "SELECT {} FROM {table} WHERE {in_range} AND item < 0 ORDER BY item DESC",
            key.join(", ")
        ),
        &[&networks.0, &networks.1],
    )?;
    let renumber = tx.prepare(&format!(
        "UPDATE {table} SET item = nextval('{sequence}') WHERE {}",
        key_match(1)
    ))?;
    for row in rest {
        let values: Vec<i64> = (0..key.len()).map(|i| row.get(i)).collect();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        tx.execute(&renumber, &params)?;
    }
    Ok(())
}

/// PostgreSQL-backed [`Storage`] of one controller.
pub struct PostgresStorage {
    url: String,
    /// The stored text of members as last read, so a write that changes only what the
    /// caller changed can compare the text in one statement (`WHERE record = <as read>`)
    /// instead of locking and re-reading the row in a transaction.
    read_texts: RefCell<HashMap<(i64, i64), (Member, String)>>,
    /// The networks this storage shows, as a BIGINT range (`address << 24` ..= `| 0xffffff`
    /// for one controller; a controller's IDs share their top bits, so the range is
    /// contiguous even when they are negative as BIGINTs).
    networks: (i64, i64),
    conn: RefCell<Connection>,
}

struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("networks", &format_args!("{:016x}", self.networks.0))
            .finish()
    }
}

impl PostgresStorage {
    /// Connects to `url` (`postgresql://USER@HOST/DB`, or `host=/run/postgresql dbname=zt`),
    /// migrating the schema if needed. With `controller`, network lists and the feed hold only
    /// that controller's networks (others may share the database); without, every network.
    pub fn connect(
        url: &str,
        controller: Option<Address>,
    ) -> Result<PostgresStorage, StorageError> {
        let networks = match controller {
            Some(a) => {
                let first = (a.to_u64() << 24) as i64;
                (first, first | 0xff_ffff)
            }
            None => (i64::MIN, i64::MAX),
        };
        let storage = PostgresStorage {
            url: url.to_string(),
            read_texts: RefCell::default(),
            networks,
            conn: RefCell::new(Self::open(url)?),
        };
        storage.migrate()?;
        Ok(storage)
    }

    fn open(url: &str) -> Result<Connection, StorageError> {
        Ok(Connection {
            client: Client::connect(url, NoTls)?,
            statements: HashMap::new(),
        })
    }

    /// The connection, opened again if the last one was lost.
    fn conn(&self) -> Result<RefMut<'_, Connection>, StorageError> {
        let mut conn = self.conn.borrow_mut();
        if conn.client.is_closed() {
            *conn = Self::open(&self.url)?;
        }
        Ok(conn)
    }

    fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS zt_migration (
                 version INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
        let applied: i32 = tx
            .query_one("SELECT COALESCE(max(version), 0) FROM zt_migration", &[])?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if applied > known {
            return Err(StorageError::SchemaTooNew {
                found: applied.into(),
                supported: known.into(),
            });
        }
        for (version, sql) in (1i32..).zip(MIGRATIONS).skip(applied as usize) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO zt_migration (version) VALUES ($1)",
                &[&version],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Member texts remembered for one-statement writes at most (a request's read is followed by
/// its write, so a few are enough; the rest go the locking way).
const READ_TEXTS_KEPT: usize = 4096;

impl PostgresStorage {
    /// Decodes a member's stored text and remembers it for [`PostgresStorage::write_member`].
    fn member_from_text(&self, key: (i64, i64), text: &str) -> Result<Member, StorageError> {
        let member: Member = decode(text)?;
        let mut texts = self.read_texts.borrow_mut();
        if texts.len() >= READ_TEXTS_KEPT {
            texts.clear();
        }
        texts.insert(key, (member.clone(), text.to_string()));
        Ok(member)
    }

    /// The stored text `expected` was read from, if it is remembered.
    fn text_as_read(&self, key: (i64, i64), expected: &Member) -> Option<String> {
        self.read_texts
            .borrow()
            .get(&key)
            .filter(|(member, _)| member == expected)
            .map(|(_, text)| text.clone())
    }
}

impl Connection {
    /// A prepared statement for `sql`, prepared once per connection.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StorageError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// Prepares `sql` for use inside `tx` (statements are per connection, so the cache is shared).
fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    sql: &'static str,
) -> Result<Statement, StorageError> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql)?;
    statements.insert(sql, s.clone());
    Ok(s)
}

/// A concurrent transaction inserted the same row or claim, or deleted the network: the
/// caller reads again.
fn conflict_or(e: postgres::Error) -> StorageError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            StorageError::Conflict
        }
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StorageError::Conflict
        }
        _ => StorageError::Postgres(e),
    }
}

/// Appends `note` (if any) to the feed inside `tx` and wakes the readers at commit.
fn feed(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    network_id: NetworkId,
    member: Option<Address>,
    deleted: bool,
    note: Option<&FeedNote>,
) -> Result<(), StorageError> {
    let Some(note) = note else { return Ok(()) };
    // Held until commit: the next writer gets its number only after this one committed.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
    let insert = prepared(
        statements,
        tx,
        "INSERT INTO zt_change (network_id, address, deleted, note) VALUES ($1, $2, $3, $4)
         RETURNING seq",
    )?;
    let seq: i64 = tx
        .query_one(
            &insert,
            &[
                &db_id(network_id),
                &member.map(db_addr),
                &deleted,
                &encode(note)?,
            ],
        )?
        .get(0);
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&FEED_CHANNEL, &seq.to_string()],
    )?;
    let prune = prepared(statements, tx, "DELETE FROM zt_change WHERE seq <= $1")?;
    tx.execute(&prune, &[&(seq - FEED_RETAINED)])?;
    Ok(())
}

/// Makes the member's address claims in `zt_member_ip` what its record says.
fn update_claims(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    member: &Member,
) -> Result<(), StorageError> {
    let (nwid, addr) = (db_id(member.network_id), db_addr(member.address));
    let held_stmt = prepared(
        statements,
        tx,
        "SELECT ip FROM zt_member_ip WHERE network_id = $1 AND address = $2",
    )?;
    let held: Vec<String> = tx
        .query(&held_stmt, &[&nwid, &addr])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(wanted) = claims_to_write(held, member) {
        let release = prepared(
            statements,
            tx,
            "DELETE FROM zt_member_ip WHERE network_id = $1 AND address = $2",
        )?;
        tx.execute(&release, &[&nwid, &addr])?;
        let claim = prepared(
            statements,
            tx,
            "INSERT INTO zt_member_ip (network_id, ip, address) VALUES ($1, $2, $3)",
        )?;
        for ip in &wanted {
            tx.execute(&claim, &[&nwid, ip, &addr])
                .map_err(conflict_or)?;
        }
    }
    Ok(())
}

fn locked_record<T: serde::de::DeserializeOwned>(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    sql: &'static str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Option<T>, StorageError> {
    let stmt = prepared(statements, tx, sql)?;
    let row = tx.query_opt(&stmt, params)?;
    row.map(|r| decode(r.get::<_, &str>(0))).transpose()
}

impl Storage for PostgresStorage {
    fn network_ids(&self) -> Result<Vec<NetworkId>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement("SELECT id FROM zt_network WHERE id BETWEEN $1 AND $2")?;
        let rows = conn
            .client
            .query(&stmt, &[&self.networks.0, &self.networks.1])?;
        let mut ids: Vec<u64> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn network(&self, id: NetworkId) -> Result<Option<Network>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement("SELECT record FROM zt_network WHERE id = $1")?;
        let row = conn.client.query_opt(&stmt, &[&db_id(id)])?;
        row.map(|r| decode(r.get::<_, &str>(0))).transpose()
    }

    fn write_network(
        &mut self,
        network: &Network,
        expect: Expect<'_, Network>,
        note: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        let json = encode(network)?;
        let id = db_id(network.id);
        let mut conn = self.conn()?;
        let Connection { client, statements } = &mut *conn;
        let mut tx = client.transaction()?;
        let written = match expect {
            Expect::Absent => {
                let insert = prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO zt_network (id, record) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )?;
                tx.execute(&insert, &[&id, &json])?
            }
            Expect::Current(_) => {
                let stored: Option<Network> = locked_record(
                    statements,
                    &mut tx,
                    "SELECT record FROM zt_network WHERE id = $1 FOR UPDATE",
                    &[&id],
                )?;
                if !expectation_met(expect, stored.as_ref()) {
                    return Err(StorageError::Conflict);
                }
                let update = prepared(
                    statements,
                    &mut tx,
                    "UPDATE zt_network SET record = $2 WHERE id = $1",
                )?;
                tx.execute(&update, &[&id, &json])?
            }
            Expect::Anything => {
                let upsert = prepared(
                    statements,
                    &mut tx,
                    "INSERT INTO zt_network (id, record) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                )?;
                tx.execute(&upsert, &[&id, &json])?
            }
        };
        if written != 1 {
            return Err(StorageError::Conflict);
        }
        feed(statements, &mut tx, network.id, None, false, note)?;
        tx.commit().map_err(conflict_or)
    }

    fn remove_network(
        &mut self,
        id: NetworkId,
        note: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let Connection { client, statements } = &mut *conn;
        let mut tx = client.transaction()?;
        tx.execute(
            "DELETE FROM zt_member_ip WHERE network_id = $1",
            &[&db_id(id)],
        )?;
        tx.execute("DELETE FROM zt_member WHERE network_id = $1", &[&db_id(id)])?;
        let n = tx.execute("DELETE FROM zt_network WHERE id = $1", &[&db_id(id)])?;
        if n > 0 {
            feed(statements, &mut tx, id, None, true, note)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn member(&self, network: NetworkId, address: Address) -> Result<Option<Member>, StorageError> {
        let mut conn = self.conn()?;
        let stmt =
            conn.statement("SELECT record FROM zt_member WHERE network_id = $1 AND address = $2")?;
        let key = (db_id(network), db_addr(address));
        let row = conn.client.query_opt(&stmt, &[&key.0, &key.1])?;
        row.map(|r| self.member_from_text(key, r.get::<_, &str>(0)))
            .transpose()
    }

    fn members(&self, network: NetworkId) -> Result<Vec<Member>, StorageError> {
        let mut conn = self.conn()?;
        let stmt =
            conn.statement("SELECT record FROM zt_member WHERE network_id = $1 ORDER BY address")?;
        let rows = conn.client.query(&stmt, &[&db_id(network)])?;
        rows.iter().map(|r| decode(r.get::<_, &str>(0))).collect()
    }

    fn write_member(
        &mut self,
        member: &Member,
        expect: Expect<'_, Member>,
        note: Option<&FeedNote>,
    ) -> Result<(), StorageError> {
        let json = encode(member)?;
        let (nwid, addr) = (db_id(member.network_id), db_addr(member.address));
        let last_request = member
            .last_request_time
            .filter(|_| member.identity.is_some());
        let keep_claims = claims_unchanged(expect, member);
        if let (Expect::Current(expected), true, None) = (expect, keep_claims, note) {
            if let Some(as_read) = self.text_as_read((nwid, addr), expected) {
                // One statement: the row still holds the text the change was computed from.
                let mut conn = self.conn()?;
                let stmt = conn.statement(
                    "UPDATE zt_member SET active_bridge = $3, last_request = $4, record = $5
                     WHERE network_id = $1 AND address = $2 AND record = $6",
                )?;
                let written = conn.client.execute(
                    &stmt,
                    &[
                        &nwid,
                        &addr,
                        &member.active_bridge,
                        &last_request,
                        &json,
                        &as_read,
                    ],
                )?;
                let mut texts = self.read_texts.borrow_mut();
                if written != 1 {
                    texts.remove(&(nwid, addr));
                    return Err(StorageError::Conflict);
                }
                texts.insert((nwid, addr), (member.clone(), json));
                return Ok(());
            }
        }
        self.read_texts.borrow_mut().remove(&(nwid, addr));
        let mut conn = self.conn()?;
        let Connection { client, statements } = &mut *conn;
        let mut tx = client.transaction()?;
        if let Expect::Current(_) = expect {
            let stored: Option<Member> = locked_record(
                statements,
                &mut tx,
                "SELECT record FROM zt_member WHERE network_id = $1 AND address = $2 FOR UPDATE",
                &[&nwid, &addr],
            )?;
            if !expectation_met(expect, stored.as_ref()) {
                return Err(StorageError::Conflict);
            }
        }
        let owner_of = prepared(
            statements,
            &mut tx,
            "SELECT address FROM zt_member_ip WHERE network_id = $1 AND ip = $2",
        )?;
        for ip in member.ip_assignments.iter().filter(|_| !keep_claims) {
            let owner = tx.query_opt(&owner_of, &[&nwid, &ip.to_string()])?;
            if let Some(owner) = owner.map(|r| r.get::<_, i64>(0)).filter(|&o| o != addr) {
                return Err(StorageError::IpInUse {
                    ip: ip.to_string(),
                    owner: addr_from_db(owner)?.to_string(),
                });
            }
        }
        let sql = match expect {
            Expect::Absent => {
                "INSERT INTO zt_member (network_id, address, active_bridge, last_request, record)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
            }
            Expect::Current(_) => {
                "UPDATE zt_member SET active_bridge = $3, last_request = $4, record = $5
                 WHERE network_id = $1 AND address = $2"
            }
            Expect::Anything => {
                "INSERT INTO zt_member (network_id, address, active_bridge, last_request, record)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (network_id, address) DO UPDATE
                 SET active_bridge = excluded.active_bridge,
                     last_request = excluded.last_request,
                     record = excluded.record"
            }
        };
        let write = prepared(statements, &mut tx, sql)?;
        let written = tx
            .execute(
                &write,
                &[&nwid, &addr, &member.active_bridge, &last_request, &json],
            )
            .map_err(conflict_or)?;
        if written != 1 {
            return Err(StorageError::Conflict);
        }
        if !keep_claims {
            update_claims(statements, &mut tx, member)?;
        }
        feed(
            statements,
            &mut tx,
            member.network_id,
            Some(member.address),
            false,
            note,
        )?;
        tx.commit().map_err(conflict_or)
    }

    fn remove_member(
        &mut self,
        network: NetworkId,
        address: Address,
        note: Option<&FeedNote>,
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let Connection { client, statements } = &mut *conn;
        let mut tx = client.transaction()?;
        self.read_texts
            .borrow_mut()
            .remove(&(db_id(network), db_addr(address)));
        let key: [&(dyn postgres::types::ToSql + Sync); 2] = [&db_id(network), &db_addr(address)];
        tx.execute(
            "DELETE FROM zt_member_ip WHERE network_id = $1 AND address = $2",
            &key,
        )?;
        let n = tx.execute(
            "DELETE FROM zt_member WHERE network_id = $1 AND address = $2",
            &key,
        )?;
        if n > 0 {
            feed(statements, &mut tx, network, Some(address), true, note)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn network_items(&self) -> Result<Vec<(ItemNo, NetworkId)>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement(
            "SELECT item, id FROM zt_network WHERE id BETWEEN $1 AND $2 ORDER BY item",
        )?;
        let rows = conn
            .client
            .query(&stmt, &[&self.networks.0, &self.networks.1])?;
        rows.iter()
            .map(|r| Ok((item_from_db(r.get(0))?, r.get::<_, i64>(1) as u64)))
            .collect()
    }

    fn member_items(&self, filter: MemberFilter) -> Result<Vec<(ItemNo, Member)>, StorageError> {
        // One statement per shape, each with the index of its most selective key (a generic
        // plan of `$n IS NULL OR …` would scan every member); the other keys are checked on
        // what it finds.
        let (sql, key): (&'static str, i64) = match filter {
            MemberFilter {
                item: Some(item), ..
            } => (
                "SELECT item, record FROM zt_member
                 WHERE item = $3 AND network_id BETWEEN $1 AND $2",
                i64::try_from(item).unwrap_or(-1),
            ),
            MemberFilter {
                network: Some(nwid),
                address: Some(address),
                ..
            } => {
                // The primary key: one row.
                let mut conn = self.conn()?;
                let stmt = conn.statement(
                    "SELECT item, record FROM zt_member
                     WHERE network_id = $3 AND address = $4 AND network_id BETWEEN $1 AND $2",
                )?;
                let row = conn.client.query_opt(
                    &stmt,
                    &[
                        &self.networks.0,
                        &self.networks.1,
                        &db_id(nwid),
                        &db_addr(address),
                    ],
                )?;
                return row
                    .map(|r| Ok((item_from_db(r.get(0))?, decode(r.get::<_, &str>(1))?)))
                    .into_iter()
                    .collect();
            }
            MemberFilter {
                network: Some(nwid),
                ..
            } => (
                "SELECT item, record FROM zt_member
                 WHERE network_id = $3 AND network_id BETWEEN $1 AND $2 ORDER BY item",
                db_id(nwid),
            ),
            MemberFilter {
                address: Some(address),
                ..
            } => (
                "SELECT item, record FROM zt_member
                 WHERE address = $3 AND network_id BETWEEN $1 AND $2 ORDER BY item",
                db_addr(address),
            ),
            MemberFilter { .. } => (
                "SELECT item, record FROM zt_member
                 WHERE network_id BETWEEN $1 AND $2 AND $3::BIGINT = 0 ORDER BY item",
                0,
            ),
        };
        let mut conn = self.conn()?;
        let stmt = conn.statement(sql)?;
        let rows = conn
            .client
            .query(&stmt, &[&self.networks.0, &self.networks.1, &key])?;
        let mut found = Vec::new();
        for row in rows {
            let member: Member = decode(row.get::<_, &str>(1))?;
            if filter.network.is_none_or(|n| n == member.network_id)
                && filter.address.is_none_or(|a| a == member.address)
            {
                found.push((item_from_db(row.get(0))?, member));
            }
        }
        Ok(found)
    }

    fn count_members_below(&self, below: ItemNo) -> Result<u64, StorageError> {
        let mut conn = self.conn()?;
        // The whole blocks below `below` from their counts, then the rows of its own block.
        let stmt = conn.statement(
            "SELECT (SELECT COALESCE(sum(members), 0) FROM zt_member_block
                     WHERE controller BETWEEN $1::BIGINT >> 24 AND $2::BIGINT >> 24
                       AND block < $3::BIGINT >> 10)::BIGINT
                  + (SELECT count(*) FROM zt_member
                     WHERE item >= ($3::BIGINT >> 10) << 10 AND item < $3::BIGINT
                       AND network_id BETWEEN $1::BIGINT AND $2::BIGINT)",
        )?;
        let row = conn.client.query_one(
            &stmt,
            &[&self.networks.0, &self.networks.1, &item_bound_to_db(below)],
        )?;
        count_from_db(row.get(0))
    }

    fn adopt_item_numbers(&mut self, legacy: &LegacyItemNumbers) -> Result<bool, StorageError> {
        let key = format!("item-numbers-adopted-{:016x}", self.networks.0);
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let inserted = tx.execute(
            "INSERT INTO zt_meta (key, value) VALUES ($1, 'yes') ON CONFLICT DO NOTHING",
            &[&key],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        let (networks, members) = legacy.database_keys();
        adopt(&mut tx, &NUMBERED_NETWORKS, self.networks, &networks)?;
        adopt(&mut tx, &NUMBERED_MEMBERS, self.networks, &members)?;
        tx.commit()?;
        Ok(true)
    }

    fn active_bridges(&self, network: NetworkId) -> Result<Vec<Address>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement(
            "SELECT address FROM zt_member WHERE network_id = $1 AND active_bridge
             ORDER BY address",
        )?;
        let rows = conn.client.query(&stmt, &[&db_id(network)])?;
        rows.iter().map(|r| addr_from_db(r.get(0))).collect()
    }

    fn requested_since(
        &self,
        network: NetworkId,
        since_ms: i64,
    ) -> Result<Vec<Address>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement(
            "SELECT address FROM zt_member WHERE network_id = $1 AND last_request >= $2
             ORDER BY address",
        )?;
        let rows = conn.client.query(&stmt, &[&db_id(network), &since_ms])?;
        rows.iter().map(|r| addr_from_db(r.get(0))).collect()
    }

    fn ip_owner(&self, network: NetworkId, ip: IpAddr) -> Result<Option<Address>, StorageError> {
        let mut conn = self.conn()?;
        let stmt =
            conn.statement("SELECT address FROM zt_member_ip WHERE network_id = $1 AND ip = $2")?;
        let row = conn
            .client
            .query_opt(&stmt, &[&db_id(network), &ip.to_string()])?;
        row.map(|r| addr_from_db(r.get(0))).transpose()
    }

    fn changes_after(&self, after: ChangeSeq, limit: usize) -> Result<Vec<Change>, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement(
            "SELECT seq, network_id, address, deleted, note FROM zt_change
             WHERE seq > $1 AND network_id BETWEEN $2 AND $3 ORDER BY seq LIMIT $4",
        )?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = conn
            .client
            .query(&stmt, &[&after, &self.networks.0, &self.networks.1, &limit])?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: r.get::<_, i64>(0) as u64,
                    network_id: r.get::<_, i64>(1) as u64,
                    member: r.get::<_, Option<i64>>(2).map(addr_from_db).transpose()?,
                    deleted: r.get(3),
                    note: decode(r.get::<_, &str>(4))?,
                })
            })
            .collect()
    }

    fn request_inputs(
        &self,
        network: NetworkId,
        address: Address,
    ) -> Result<RequestInputs, StorageError> {
        let key = (db_id(network), db_addr(address));
        let mut conn = self.conn()?;
        let stmt = conn.statement(
            "SELECT (SELECT record FROM zt_network WHERE id = $1),
                    (SELECT record FROM zt_member WHERE network_id = $1 AND address = $2),
                    ARRAY(SELECT address FROM zt_member WHERE network_id = $1 AND active_bridge
                          ORDER BY address)",
        )?;
        let row = conn.client.query_one(&stmt, &[&key.0, &key.1])?;
        drop(conn);
        let network_text: Option<&str> = row.get(0);
        let member_text: Option<&str> = row.get(1);
        let bridges: Vec<i64> = row.get(2);
        Ok(RequestInputs {
            network: network_text.map(decode).transpose()?,
            member: member_text
                .map(|text| self.member_from_text(key, text))
                .transpose()?,
            active_bridges: bridges
                .into_iter()
                .map(addr_from_db)
                .collect::<Result<_, _>>()?,
        })
    }

    fn latest_change(&self) -> Result<ChangeSeq, StorageError> {
        let mut conn = self.conn()?;
        let stmt = conn.statement("SELECT COALESCE(max(seq), 0) FROM zt_change")?;
        let seq: i64 = conn.client.query_one(&stmt, &[])?.get(0);
        Ok(seq as u64)
    }
}

/// Wakes a controller when another one commits a change: a connection of its own that
/// `LISTEN`s on [`FEED_CHANNEL`]. The feed itself is read through the storage; a
/// notification only says "read now".
pub struct FeedListener {
    url: String,
    client: Option<Client>,
}

impl FeedListener {
    /// Connects lazily: the first [`FeedListener::wait`] opens the connection.
    pub fn new(url: &str) -> FeedListener {
        FeedListener {
            url: url.to_string(),
            client: None,
        }
    }

    /// Waits up to `timeout` for changes. `Ok(true)` if some were committed (or the
    /// connection was just opened again, so some may have been missed), `Ok(false)` if none.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Result<bool, StorageError> {
        let reopened = match &self.client {
            Some(c) if !c.is_closed() => false,
            _ => {
                self.client = None;
                let mut client = Client::connect(&self.url, NoTls)?;
                client.batch_execute(&format!("LISTEN {FEED_CHANNEL}"))?;
                self.client = Some(client);
                true
            }
        };
        let Some(client) = self.client.as_mut() else {
            return Ok(reopened);
        };
        let mut notifications = client.notifications();
        // The first notification ends the wait; the others already queued go with it.
        let first = notifications.timeout_iter(timeout).next()?;
        if first.is_some() {
            while notifications.iter().next()?.is_some() {}
        }
        Ok(reopened || first.is_some())
    }
}
