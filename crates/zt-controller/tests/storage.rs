//! Storage contract (both implementations), SQLite reopen and schema versioning, and a crash
//! test: a child process authorizes members in a loop, acknowledging each committed change on
//! stdout, and is killed with SIGKILL at a random moment; every acknowledged change must be in
//! the database afterwards, and nothing half-written.
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use zt_controller::error::StorageError;
use zt_controller::model::{IpPool, Route};
use zt_controller::{
    Controller, Member, MemberPatch, MemoryStorage, Network, NetworkPatch, SqliteStorage, Storage,
};
use zt_crypto::Address;

const NWID: u64 = 0x51479cea31ccae5c;

fn addr(v: u64) -> Address {
    Address::new(v).unwrap()
}

fn network(id: u64) -> Network {
    let mut n = Network::new(id, 1000);
    n.name = format!("net-{id:x}");
    n.pools = vec![IpPool {
        start: "10.0.0.1".parse().unwrap(),
        end: "10.0.255.254".parse().unwrap(),
    }];
    n.routes = vec![Route {
        target: "10.0.0.0/16".parse().unwrap(),
        via: None,
    }];
    n.revision = 3;
    n
}

fn member(nwid: u64, a: u64, ips: &[&str], bridge: bool) -> Member {
    let mut m = Member::new(nwid, addr(a), 2000);
    m.ip_assignments = ips.iter().map(|s| s.parse().unwrap()).collect();
    m.active_bridge = bridge;
    m.identity = Some(format!("{:010x}:0:abcd", a));
    m
}

fn contract(s: &mut dyn Storage) {
    let other = 0xffee_dd00_0000_0001u64; // top bit set: negative as an SQLite integer
    s.put_network(&network(NWID)).unwrap();
    s.put_network(&network(other)).unwrap();
    assert_eq!(s.network_ids().unwrap(), vec![NWID, other]);
    assert_eq!(s.network(NWID).unwrap(), Some(network(NWID)));
    assert_eq!(s.network(0x1234).unwrap(), None);

    let mut a = member(NWID, 0x0a00000001, &["10.0.0.1", "fd00::1"], true);
    a.last_request_time = Some(5000);
    let mut b = member(NWID, 0x0b00000002, &["10.0.0.2"], false);
    b.last_request_time = Some(3000);
    s.put_member(&a).unwrap();
    s.put_member(&b).unwrap();
    s.put_member(&member(other, 0x0a00000001, &["10.0.0.2"], false))
        .unwrap(); // other network: no clash
    assert_eq!(s.members(NWID).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.member(NWID, a.address).unwrap(), Some(a.clone()));
    assert_eq!(s.active_bridges(NWID).unwrap(), vec![a.address]);
    assert_eq!(
        s.ip_owner(NWID, "fd00::1".parse().unwrap()).unwrap(),
        Some(a.address)
    );
    assert_eq!(
        s.requested_since(NWID, 3000).unwrap(),
        vec![a.address, b.address]
    );
    assert_eq!(s.requested_since(NWID, 4000).unwrap(), vec![a.address]);
    assert!(s.requested_since(NWID, 5001).unwrap().is_empty());

    // Taking a's address fails and changes nothing.
    let thief = member(NWID, 0x0c00000003, &["10.0.0.9", "10.0.0.1"], true);
    match s.put_member(&thief) {
        Err(StorageError::IpInUse { ip, owner }) => {
            assert_eq!((ip.as_str(), owner), ("10.0.0.1", a.address.to_string()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.member(NWID, thief.address).unwrap(), None);
    assert_eq!(s.ip_owner(NWID, "10.0.0.9".parse().unwrap()).unwrap(), None);
    assert_eq!(s.active_bridges(NWID).unwrap(), vec![a.address]);

    // Replacing a member moves its claims.
    let mut a2 = a.clone();
    a2.ip_assignments = vec!["10.0.0.3".parse().unwrap()];
    a2.active_bridge = false;
    s.put_member(&a2).unwrap();
    assert_eq!(s.ip_owner(NWID, "10.0.0.1".parse().unwrap()).unwrap(), None);
    assert_eq!(
        s.ip_owner(NWID, "10.0.0.3".parse().unwrap()).unwrap(),
        Some(a.address)
    );
    assert!(s.active_bridges(NWID).unwrap().is_empty());
    s.put_member(&thief).unwrap();

    assert!(s.delete_member(NWID, b.address).unwrap());
    assert!(!s.delete_member(NWID, b.address).unwrap());
    assert_eq!(s.ip_owner(NWID, "10.0.0.2".parse().unwrap()).unwrap(), None);

    assert!(s.delete_network(NWID).unwrap());
    assert!(s.members(NWID).unwrap().is_empty());
    assert!(s.active_bridges(NWID).unwrap().is_empty());
    assert_eq!(s.ip_owner(NWID, "10.0.0.3".parse().unwrap()).unwrap(), None);
    assert_eq!(s.members(other).unwrap().len(), 1);
    assert!(!s.delete_network(NWID).unwrap());
}

#[test]
fn memory_storage_keeps_the_contract() {
    contract(&mut MemoryStorage::new());
}

#[test]
fn sqlite_storage_keeps_the_contract() {
    contract(&mut SqliteStorage::open_in_memory().unwrap());
}

#[test]
fn boxed_storage_keeps_the_contract() {
    let mut boxed: Box<dyn Storage> = Box::new(SqliteStorage::open_in_memory().unwrap());
    contract(&mut boxed);
}

#[test]
fn sqlite_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let a = member(NWID, 0x0a00000001, &["10.0.0.1"], true);
    {
        let mut s = SqliteStorage::open(&path).unwrap();
        s.put_network(&network(NWID)).unwrap();
        s.put_member(&a).unwrap();
    }
    let s = SqliteStorage::open(&path).unwrap();
    assert_eq!(s.network(NWID).unwrap(), Some(network(NWID)));
    assert_eq!(s.members(NWID).unwrap(), vec![a.clone()]);
    assert_eq!(s.active_bridges(NWID).unwrap(), vec![a.address]);
    assert_eq!(
        s.ip_owner(NWID, "10.0.0.1".parse().unwrap()).unwrap(),
        Some(a.address)
    );
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A database written before networks had rules, capabilities and tags (records without those
/// fields) still opens and reads: the network gets the default accept-all rule set and no
/// capabilities or tags, the member none either. New fields live in the JSON record, so no
/// table changes and no schema bump were needed.
#[test]
fn sqlite_reads_records_written_before_flow_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let a = member(NWID, 0x0a00000001, &["10.0.0.1"], false);
    {
        let mut s = SqliteStorage::open(&path).unwrap();
        s.put_network(&network(NWID)).unwrap();
        s.put_member(&a).unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (table, fields) in [
        (
            "network",
            &["rules", "rules_source", "capabilities", "tags"][..],
        ),
        ("member", &["capabilities", "tags"][..]),
    ] {
        let record: String = conn
            .query_row(&format!("SELECT record FROM {table}"), [], |r| r.get(0))
            .unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&record).unwrap();
        for field in fields {
            assert!(
                value.as_object_mut().unwrap().remove(*field).is_some(),
                "{table}.{field} is stored"
            );
        }
        conn.execute(
            &format!("UPDATE {table} SET record = ?1"),
            [value.to_string()],
        )
        .unwrap();
    }
    drop(conn);
    let s = SqliteStorage::open(&path).unwrap();
    let n = s.network(NWID).unwrap().unwrap();
    assert_eq!(n, network(NWID));
    assert_eq!(n.effective_rules(), zt_controller::model::default_rules());
    assert_eq!(s.members(NWID).unwrap(), vec![a]);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    drop(SqliteStorage::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    match SqliteStorage::open(&path) {
        Err(StorageError::SchemaTooNew {
            found: 99,
            supported: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn sqlite_reports_a_corrupt_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    SqliteStorage::open(&path)
        .unwrap()
        .put_network(&network(NWID))
        .unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE network SET record = '{\"id\": 1'", [])
        .unwrap();
    let s = SqliteStorage::open(&path).unwrap();
    assert!(matches!(s.network(NWID), Err(StorageError::Corrupt(_))));
}

// ----- crash test -----------------------------------------------------------------------------

const CHILD_ENV: &str = "ZT_CONTROLLER_CRASH_CHILD_DB";
const FIRST_MEMBER: u64 = 0x1000000000;

/// The child's side: runs only when spawned by the crash test (hence ignored in normal runs).
/// Authorizes member after member, each with a hand-set address, and prints `ack <n>` after
/// each change has been committed.
#[test]
#[ignore = "child process of sigkill_loses_no_acknowledged_change"]
fn crash_child() {
    let path = std::env::var(CHILD_ENV).expect("run by sigkill_loses_no_acknowledged_change");
    let controller = Address::new(NWID >> 24).unwrap();
    let mut ctl = Controller::new(controller, SqliteStorage::open(&path).unwrap());
    if ctl.network(NWID).unwrap().is_none() {
        let patch = NetworkPatch {
            routes: Some(vec![Route {
                target: "10.0.0.0/8".parse().unwrap(),
                via: None,
            }]),
            ..Default::default()
        };
        ctl.create_network(0, NWID, &patch).unwrap();
    }
    let start = ctl.members(NWID).unwrap().len() as u64;
    let mut out = std::io::stdout().lock();
    for n in start.. {
        let patch = MemberPatch {
            authorized: Some(true),
            ip_assignments: Some(vec![ip_for(n)]),
            name: Some(format!("m{n}")),
            ..Default::default()
        };
        ctl.update_member(n as i64, NWID, addr(FIRST_MEMBER + n), &patch)
            .unwrap();
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

fn ip_for(n: u64) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n as u32 + 1))
}

#[test]
fn sigkill_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut acked: Option<u64> = None;
    for round in 0..3u32 {
        // Kill after a pseudo-random number of acknowledgements, 1..=400.
        let kill_after =
            1 + (seed.wrapping_mul(2_654_435_761).wrapping_add(round * 977) >> 7) % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen_this_round = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line
                .strip_prefix("ack ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked = Some(n);
                seen_this_round += 1;
                if seen_this_round >= kill_after {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "child too slow");
        }
        child.kill().unwrap(); // SIGKILL
                               // Acknowledgements already written before the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("ack ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked = Some(n);
            }
        }
        child.wait().unwrap();
        let acked = acked.expect("the child acknowledged something");

        let s = SqliteStorage::open(&path).unwrap();
        let members = s.members(NWID).unwrap();
        for n in 0..=acked {
            let m = members
                .iter()
                .find(|m| m.address == addr(FIRST_MEMBER + n))
                .unwrap_or_else(|| panic!("round {round}: acknowledged member {n} is missing"));
            assert!(m.authorized && m.name == format!("m{n}"));
            assert_eq!(m.ip_assignments, [ip_for(n)]);
            assert_eq!(s.ip_owner(NWID, ip_for(n)).unwrap(), Some(m.address));
        }
        // At most the one change in flight may be there beyond the last acknowledgement.
        assert!(
            members.len() as u64 <= acked + 2,
            "round {round}: {} members, last ack {acked}",
            members.len()
        );
        // Nothing half-written: every claim belongs to a stored member holding that address.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let claims: i64 = conn
            .query_row("SELECT count(*) FROM member_ip", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            claims as usize,
            members
                .iter()
                .map(|m| m.ip_assignments.len())
                .sum::<usize>()
        );
    }
}
