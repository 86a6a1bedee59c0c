//! Config requests answered per second for a network of 10,000 authorized members (or
//! `ZT_BENCH_MEMBERS`), over the in-memory, the SQLite (file-backed, WAL) and the PostgreSQL
//! storage (a throw-away local cluster on a Unix socket, skipped without PostgreSQL), plus the
//! full path with the signed config (COM + COO signatures). Also measures memory per member of the in-memory storage
//! with a counting allocator, and the SQLite file size per member; both are printed.
//!
//! Requesters are synthetic identities (`addr:0:<key>` parsed without validation): the decision
//! path never validates or uses the key beyond comparing the identity string.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zt_controller::controller::{Decision, RequestMetadata};
use zt_controller::issue::build_config;
use zt_controller::model::ClientVersion;
use zt_controller::props::network_patch_from_properties;
use zt_controller::{Controller, MemberPatch, MemoryStorage, SqliteStorage, Storage};
use zt_crypto::{Address, Identity};

/// Counts live heap bytes, to measure what the in-memory storage holds per member.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn members() -> u64 {
    std::env::var("ZT_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const GROUP: &str = "config_request";
const CONTROLLER: u64 = 0x51479cea31;
const NWID: u64 = (CONTROLLER << 24) | 0xccae5c;

fn controller_identity() -> Identity {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/interop/captures/identities.json"
    );
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "controller")
        .unwrap();
    Identity::from_string(node["secret"].as_str().unwrap()).unwrap()
}

fn member_identity(i: u64) -> Identity {
    let address = 0x1000000000 + i * 7919;
    Identity::from_string(&format!(
        "{address:010x}:0:{}",
        format!("{:016x}", i.wrapping_mul(0x9e3779b97f4a7c15)).repeat(8)
    ))
    .unwrap()
}

fn metadata() -> RequestMetadata {
    RequestMetadata {
        version: Some(ClientVersion {
            major: 1,
            minor: 14,
            revision: 1,
            protocol: 12,
        }),
        rules_engine_revision: 1,
        auth_token: None,
    }
}

/// A network with 10,000 authorized members, each of which has asked once (so each has its
/// pool address and bound identity).
fn populate<S: Storage>(ctl: &mut Controller<S>, ids: &[Identity]) -> i64 {
    let patch = network_patch_from_properties(&[
        ("name", "bench"),
        ("ip-range", "10.0.0.1-10.0.255.254"),
        ("routes", "10.0.0.0/16"),
        ("ip6-rfc4193", "yes"),
    ])
    .unwrap();
    ctl.create_network(0, NWID, &patch).unwrap();
    let auth = MemberPatch {
        authorized: Some(true),
        ..Default::default()
    };
    for (i, id) in ids.iter().enumerate() {
        let bridge = MemberPatch {
            active_bridge: Some(i < 2),
            ..auth.clone()
        };
        ctl.update_member(1, NWID, id.address(), &bridge).unwrap();
    }
    let mut now = 10_000;
    for id in ids {
        now += 1;
        assert!(matches!(
            ctl.handle_config_request(now, id, NWID, &metadata())
                .unwrap(),
            Decision::Config(_)
        ));
    }
    now
}

/// Requests round-robin over the members; virtual time moves 1 ms per request, so each member
/// asks every 10 s of virtual time, well clear of the 1 s rate limit.
fn bench_requests<S: Storage>(
    c: &mut Criterion,
    name: &str,
    ctl: &mut Controller<S>,
    ids: &[Identity],
    mut now: i64,
) {
    let mut i = 0usize;
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            now += 1;
            i = (i + 1) % ids.len();
            let d = ctl
                .handle_config_request(now, &ids[i], NWID, &metadata())
                .unwrap();
            black_box(d)
        })
    });
    group.finish();
}

fn requests(c: &mut Criterion) {
    let members = members();
    let ids: Vec<Identity> = (0..members).map(member_identity).collect();
    let controller = controller_identity();

    let before = LIVE.load(Ordering::Relaxed);
    let mut memory = Controller::new(Address::new(CONTROLLER).unwrap(), MemoryStorage::new());
    let now = populate(&mut memory, &ids);
    let held = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "memory storage: {} bytes live for {members} members = {} bytes/member \
         (size_of::<Member>() = {}; the rest is identity string, address list, map nodes and indexes)",
        held,
        held / members as isize,
        std::mem::size_of::<zt_controller::Member>()
    );
    bench_requests(c, "memory", &mut memory, &ids, now);

    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut t = now + 1_000_000;
    group.bench_function("memory+signed_config", |b| {
        b.iter(|| {
            t += 1;
            i = (i + 1) % ids.len();
            let Decision::Config(data) = memory
                .handle_config_request(t, &ids[i], NWID, &metadata())
                .unwrap()
            else {
                panic!("not admitted")
            };
            // Synthetic member keys are fine for the COM: its identity hash is just a hash.
            black_box(
                build_config(&data, &controller)
                    .unwrap()
                    .to_bytes()
                    .unwrap(),
            )
        })
    });
    group.finish();
    drop(memory);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let mut sqlite = Controller::new(
        Address::new(CONTROLLER).unwrap(),
        SqliteStorage::open(&path).unwrap(),
    );
    let now = populate(&mut sqlite, &ids);
    let db_bytes: u64 = ["controller.db", "controller.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "sqlite storage: {db_bytes} bytes on disk (db + wal) = {} bytes/member",
        db_bytes / members
    );
    bench_requests(c, "sqlite_wal", &mut sqlite, &ids, now);
    drop(sqlite);

    match zt_testnet::postgres::TestCluster::start() {
        Ok(cluster) => {
            let storage = zt_controller::PostgresStorage::connect(
                &cluster.url(),
                Some(Address::new(CONTROLLER).unwrap()),
            )
            .unwrap();
            let mut postgres = Controller::new(Address::new(CONTROLLER).unwrap(), storage);
            let now = populate(&mut postgres, &ids);
            bench_requests(c, "postgresql_local", &mut postgres, &ids, now);
        }
        Err(why) => eprintln!("postgresql: skipped ({why})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = requests
}
criterion_main!(benches);
