//! Load generator for the controller: real member identities (pre-generated, cached, not in
//! the timing) send NETWORK_CONFIG_REQUESTs over UDP on loopback to a controller instance (a
//! zt-node `Node` in ztd's driver with its controller service, as in the daemon), whose
//! database holds `ZT_LOAD_MEMBERS` authorized members. Prints answers per second, latency
//! percentiles (request sent → config applied by the member), and two probes of the packet
//! path, idle and under load (does it stall?): the VL1 ECHO round trip of a probe node to the
//! controller, and an overlay ping: the controller's instance is also a member of the network
//! with a TAP (in a network namespace of the bench's own), and a member node sends ICMP echo
//! requests over the network that the controller host's kernel answers through that TAP.
//!
//! ```text
//! cargo bench -p ztd --bench controller_load                      # SQLite, 10,000 members
//! ZT_LOAD_DB=postgresql ZT_LOAD_MEMBERS=100000 cargo bench -p ztd --bench controller_load
//! ```
//! Environment: `ZT_LOAD_DB` (`sqlite`, `postgresql` for a throw-away local cluster),
//! `ZT_LOAD_MEMBERS` (stored members, default 10,000), `ZT_LOAD_ACTIVE` (how many of them
//! send requests, real identities, default 2,000: each generated identity costs tens of ms
//! once, then is cached in `target/`), `ZT_LOAD_SECONDS` (measured window, default 10),
//! `ZT_LOAD_PERIOD_MS` (each active member asks this often, default 1,100: the controller
//! ignores a member asking again within a second). The overlay ping needs root (a network
//! namespace and a TAP); without it the bench says so and runs the rest.
//!
//! Generator and controller share the machine: on a small box the generator's own crypto
//! (every answer is a signed config the member verifies) competes with the controller.
use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use zt_controller::model::{network_id_for, Member};
use zt_controller::props::network_patch_from_properties;
use zt_controller::{Controller, PostgresStorage, SqliteStorage, Storage};
use zt_crypto::c25519::KeyPair;
use zt_crypto::{Address, Identity};
use zt_node::{Event, JoinSettings, LocalSocketId, Node, NodeConfig, Verb};
use zt_testnet::try_ip;
use zt_wire::inet::InetAddress;
use zt_wire::mac::Mac;
use zt_wire::network_id::NetworkId as WireNetworkId;
use zt_wire::world::{Root, World, WorldType};
use ztd::controller::{ControllerDb, ControllerRegistry, ControllerSubsystem, DB_FILE};
use ztd::os::offload::internet_checksum;
use ztd::os::tap::TapDevice;
use ztd::runtime::commands::Join;
use ztd::runtime::driver::{DataCommand, InstanceRuntime};
use ztd::runtime::engine::{EngineClock, EngineStart, LocalSocket, PortRole};
use ztd::runtime::events::{EventHandler, InstanceInfo, Subsystem};
use ztd::runtime::node_engine::{NodeEngine, PLANET_FILE};
use ztd::runtime::sockets::BoundSocket;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` real identities, generated once (two threads) and cached under `target/`.
fn member_identities(n: usize) -> Vec<Identity> {
    let cache =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/zt-load-identities.txt");
    let mut ids: Vec<Identity> = std::fs::read_to_string(&cache)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Identity::from_string(l).ok())
        .filter(Identity::has_private)
        .collect();
    if ids.len() < n {
        let missing = n - ids.len();
        eprintln!(
            "generating {missing} identities (cached in {})",
            cache.display()
        );
        let started = Instant::now();
        let halves: Vec<_> = (0..2)
            .map(|half| {
                let count = missing / 2 + if half == 0 { missing % 2 } else { 0 };
                std::thread::spawn(move || {
                    (0..count)
                        .map(|_| Identity::generate(&mut rand_core::OsRng))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in halves {
            ids.extend(h.join().unwrap());
        }
        let text: String = ids
            .iter()
            .filter_map(|i| i.to_secret_string())
            .map(|s| s + "\n")
            .collect();
        std::fs::write(&cache, text).unwrap();
        eprintln!("generated in {:?}", started.elapsed());
    }
    ids.truncate(n);
    ids
}

/// The network with `members` authorized members: the active identities first, then
/// synthetic addresses that never ask.
fn populate<S: Storage>(
    ctl: &mut Controller<S>,
    nwid: u64,
    active: &[Identity],
    members: usize,
    also: &[Address],
) {
    let patch = network_patch_from_properties(&[
        ("name", "load"),
        ("private", "yes"),
        ("ip-range", "10.128.0.1-10.255.255.254"),
        ("routes", "10.128.0.0/9"),
    ])
    .unwrap();
    ctl.create_network(0, nwid, &patch).unwrap();
    let started = Instant::now();
    // Straight into the storage: the controller's API would compute pushes for each.
    let storage = ctl.storage_mut();
    for i in 0..members {
        let address = match active.get(i) {
            Some(id) => id.address(),
            None => Address::new(0x1000000000 + i as u64 * 7919).unwrap(),
        };
        let mut member = Member::new(nwid, address, 0);
        member.authorized = true;
        member.revision = 1;
        storage.put_member(&member).unwrap();
    }
    for &address in also {
        let mut member = Member::new(nwid, address, 0);
        member.authorized = true;
        member.revision = 1;
        storage.put_member(&member).unwrap();
    }
    eprintln!("stored {members} members in {:?}", started.elapsed());
}

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64 + 1
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Source networks the members are spread over: a node validates new identities at a
/// limited rate per source /24 (one per 2 s, flood protection), which one network would hit
/// at once. 127.1.1.1 and up, one /24 each: the whole of 127/8 is the loopback.
const SOURCE_ADDRESSES: usize = 256;

/// Members on a few UDP sockets (one per loopback source address): datagrams go to the node
/// whose address is the packet's destination (bytes 8..13 of packets and fragments alike).
struct Generator {
    sockets: Vec<UdpSocket>,
    /// Which socket each member sends from.
    socket_of: HashMap<Address, usize>,
    nodes: HashMap<Address, Node>,
    order: Vec<Address>,
    started: Instant,
    sent_at: HashMap<Address, Instant>,
    latencies: Vec<Duration>,
    buf: Vec<u8>,
    /// Members `order[..live]` have started (said HELLO); the rest are still silent.
    live: usize,
}

impl Generator {
    fn new(ids: &[Identity], planet: &World) -> Generator {
        let sockets: Vec<UdpSocket> = (0..SOURCE_ADDRESSES)
            .map(|i| {
                let source =
                    std::net::Ipv4Addr::new(127, 1 + (i / 250) as u8, 1 + (i % 250) as u8, 1);
                let socket = UdpSocket::bind((source, 0)).unwrap();
                socket.set_nonblocking(true).unwrap();
                socket
            })
            .collect();
        let started = Instant::now();
        let mut nodes = HashMap::new();
        let mut order = Vec::new();
        let mut socket_of = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            socket_of.insert(id.address(), i % SOURCE_ADDRESSES);
            let rng = Box::new(rand::rngs::StdRng::seed_from_u64(i as u64 + 1));
            let node = Node::new(id.clone(), NodeConfig::new(planet.clone()), rng, 1).unwrap();
            order.push(id.address());
            nodes.insert(id.address(), node);
        }
        Generator {
            sockets,
            socket_of,
            nodes,
            order,
            started,
            sent_at: HashMap::new(),
            latencies: Vec::new(),
            buf: vec![0u8; 65536],
            live: 0,
        }
    }

    fn flush(&mut self, address: Address) {
        let Some(node) = self.nodes.get_mut(&address) else {
            return;
        };
        let socket = &self.sockets[self.socket_of[&address]];
        while let Some(t) = node.poll_transmit() {
            let _ = socket.send_to(&t.data, t.remote);
        }
        while let Some(event) = node.poll_event() {
            if let Event::NetworkConfigChanged { .. } = event {
                if let Some(sent) = self.sent_at.remove(&address) {
                    self.latencies.push(sent.elapsed());
                }
            }
        }
    }

    /// Member `address` (re)joins: a config request goes out now.
    fn request(&mut self, address: Address, nwid: u64) {
        let now = now_ms(self.started);
        if let Some(node) = self.nodes.get_mut(&address) {
            node.leave(WireNetworkId(nwid));
            node.join(now, WireNetworkId(nwid), JoinSettings::default());
            self.sent_at.insert(address, Instant::now());
        }
        self.flush(address);
    }

    /// Take what arrived on every socket; true if anything did.
    fn receive(&mut self) -> bool {
        let mut any = false;
        for k in 0..self.sockets.len() {
            while self.receive_one(k) {
                any = true;
            }
        }
        any
    }

    fn receive_one(&mut self, k: usize) -> bool {
        {
            let Ok((n, from)) = self.sockets[k].recv_from(&mut self.buf) else {
                return false;
            };
            if n < 13 {
                return true;
            }
            let Some(dest) = Address::from_slice(&self.buf[8..13]) else {
                return true;
            };
            let now = now_ms(self.started);
            if let Some(node) = self.nodes.get_mut(&dest) {
                node.handle_datagram(now, LocalSocketId(0), from, &self.buf[..n]);
                self.flush(dest);
            }
        }
        true
    }

    fn timers(&mut self) {
        let now = now_ms(self.started);
        for i in 0..self.live {
            let address = self.order[i];
            if let Some(node) = self.nodes.get_mut(&address) {
                if node.poll_timeout().is_some_and(|t| t <= now) {
                    node.handle_timeout(now);
                }
            }
            self.flush(address);
        }
    }
}

/// VL1 ECHO round trips from a node of its own to the controller every 50 ms, in a thread,
/// until `stop`; returns (when it was measured, round trip). The node answers one ECHO per
/// second per source, so the probe sends from 32 sockets in turn.
fn probe(
    id: Identity,
    planet: World,
    controller: Address,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, Duration)>> {
    std::thread::spawn(move || {
        let sockets: Vec<UdpSocket> = (0..32u8)
            .map(|i| {
                let socket =
                    UdpSocket::bind((std::net::Ipv4Addr::new(127, 0, 9, 1 + i), 0)).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                socket
            })
            .collect();
        let started = Instant::now();
        let rng = Box::new(rand::rngs::StdRng::seed_from_u64(0xec40));
        let mut node = Node::new(id, NodeConfig::new(planet), rng, 1).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut samples = Vec::new();
        let mut turn = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            turn += 1;
            let socket = &sockets[turn % sockets.len()];
            let now = now_ms(started);
            node.handle_timeout(now);
            let online = node.is_online();
            if online {
                let _ = node.send_to_peer(now, controller, Verb::Echo, &now.to_be_bytes());
            }
            let sent = Instant::now();
            while let Some(t) = node.poll_transmit() {
                let _ = socket.send_to(&t.data, t.remote);
            }
            while node.poll_event().is_some() {}
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                if online {
                    samples.push((sent, sent.elapsed()));
                }
                node.handle_datagram(now_ms(started), LocalSocketId(0), from, &buf[..n]);
                while let Some(t) = node.poll_transmit() {
                    let _ = socket.send_to(&t.data, t.remote);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        samples
    })
}

/// Where the overlay ping goes: the controller host's address on the network and its TAP's
/// MAC, known once the controller's own member has its config.
struct PingTarget {
    ip: Ipv4Addr,
    mac: Mac,
}

/// The ping member's own address on the network and its MAC, for the controller host's
/// neighbour table (a static entry: ARP would only add its own round trips to the figures).
struct PingSource {
    ip: Ipv4Addr,
    mac: Mac,
}

/// What the overlay ping measured: (when, round trip) per answered echo, and how many
/// echoes got no answer within a second.
struct PingSamples {
    answered: Vec<(Instant, Duration)>,
    lost: Vec<Instant>,
}

/// The ICMP identifier of the bench's echoes.
const PING_ID: u16 = 0x2a2a;

/// An IPv4 ICMP echo request from `from` to `to` with 56 bytes of data, as `ping` sends.
fn icmp_echo_request(from: Ipv4Addr, to: Ipv4Addr, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8u8, 0, 0, 0];
    icmp.extend_from_slice(&PING_ID.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..56u8).map(|i| i.wrapping_add(0x10)));
    let checksum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&[0x40, 0, 64, 1, 0, 0]);
    packet.extend_from_slice(&from.octets());
    packet.extend_from_slice(&to.octets());
    let checksum = internet_checksum(&packet);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(&icmp);
    packet
}

/// The sequence number of an ICMP echo reply to one of ours in IPv4 `packet`, if it is one.
fn icmp_echo_reply_seq(packet: &[u8]) -> Option<u16> {
    let header = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(header..header + 8)?;
    let ours = packet[9] == 1 && icmp[0] == 0 && icmp[4..6] == PING_ID.to_be_bytes();
    ours.then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// A member node of its own that pings the controller host over the network every 50 ms,
/// until `stop`: it joins, tells `source` its address once configured, and starts when
/// `target` says where the controller host is. One echo in flight at a time; one without an
/// answer for a second is counted lost.
fn overlay_ping(
    id: Identity,
    planet: World,
    nwid: WireNetworkId,
    target: std::sync::mpsc::Receiver<PingTarget>,
    source: std::sync::mpsc::Sender<PingSource>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<PingSamples> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind((Ipv4Addr::new(127, 0, 10, 1), 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let started = Instant::now();
        let rng = Box::new(rand::rngs::StdRng::seed_from_u64(0x91e6));
        let mut node = Node::new(id, NodeConfig::new(planet), rng, 1).unwrap();
        node.join(now_ms(started), nwid, JoinSettings::default());
        let mut buf = vec![0u8; 65536];
        let mut samples = PingSamples {
            answered: Vec::new(),
            lost: Vec::new(),
        };
        let (mut me, mut to) = (None::<PingSource>, None::<PingTarget>);
        let mut in_flight: Option<(u16, Instant)> = None;
        let mut seq = 0u16;
        let mut next_send = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = now_ms(started);
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
            if me.is_none() {
                let configured = node
                    .networks()
                    .into_iter()
                    .find(|n| n.nwid == nwid && n.status == zt_node::NetworkStatus::Ok);
                let address = configured.as_ref().and_then(|n| {
                    n.assigned_addresses.iter().find_map(|a| match a.ip() {
                        Some(std::net::IpAddr::V4(ip)) => Some(ip),
                        _ => None,
                    })
                });
                if let (Some(n), Some(ip)) = (configured, address) {
                    let _ = source.send(PingSource { ip, mac: n.mac });
                    me = Some(PingSource { ip, mac: n.mac });
                }
            }
            if to.is_none() {
                to = target.try_recv().ok();
            }
            if let Some((_, sent)) = in_flight {
                if sent.elapsed() > Duration::from_secs(1) {
                    samples.lost.push(sent);
                    in_flight = None;
                }
            }
            if let (Some(me), Some(to), None) = (&me, &to, in_flight) {
                if Instant::now() >= next_send {
                    seq = seq.wrapping_add(1);
                    let request = icmp_echo_request(me.ip, to.ip, seq);
                    let sent = node.send_frame(now, nwid, me.mac, to.mac, 0x0800, &request);
                    if sent.is_ok() {
                        in_flight = Some((seq, Instant::now()));
                    }
                    next_send = Instant::now() + Duration::from_millis(50);
                }
            }
            while let Some(t) = node.poll_transmit() {
                let _ = socket.send_to(&t.data, t.remote);
            }
            while let Some(event) = node.poll_event() {
                if let Event::Frame {
                    ethertype: 0x0800,
                    payload,
                    ..
                } = event
                {
                    let reply = icmp_echo_reply_seq(&payload);
                    if let Some((expected, sent)) = in_flight {
                        if reply == Some(expected) {
                            samples.answered.push((sent, sent.elapsed()));
                            in_flight = None;
                        }
                    }
                }
            }
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                node.handle_datagram(now_ms(started), LocalSocketId(0), from, &buf[..n]);
            }
        }
        samples
    })
}

/// Makes the controller's instance a member of its own network with a TAP (`ztload0`) that
/// carries the address it was assigned, then gives the ping member its target once the
/// member told where it is. Err says why the overlay ping cannot run.
fn controller_tap(
    runtime: &tokio::runtime::Runtime,
    instance: &InstanceRuntime,
    nwid: WireNetworkId,
    sources: &std::sync::mpsc::Receiver<PingSource>,
    targets: &std::sync::mpsc::Sender<PingTarget>,
) -> Result<Arc<TapDevice>, String> {
    let handle = instance.handle();
    runtime
        .block_on(handle.join(Join::network(nwid)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ip, prefix, mac, mtu) = loop {
        let info = runtime
            .block_on(handle.networks())
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|n| n.nwid == nwid);
        let configured = info.and_then(|n| {
            let (ip, prefix) = n.assigned_addresses.iter().find_map(|a| match a.ip() {
                Some(std::net::IpAddr::V4(ip)) => Some((ip, a.port())),
                _ => None,
            })?;
            (n.status == zt_node::NetworkStatus::Ok).then_some((ip, prefix, n.mac, n.mtu))
        });
        if let Some(found) = configured {
            break found;
        }
        if Instant::now() > deadline {
            return Err("the controller's own member got no config in 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let tap = runtime
        .block_on(async { TapDevice::create("ztload0", ztd::os::tap::requested_mode()) })
        .map_err(|e| format!("TAP: {e}"))?;
    let tap = Arc::new(tap);
    instance
        .handle()
        .data(DataCommand::AttachTap {
            nwid,
            tap: tap.clone(),
        })
        .map_err(|e| e.to_string())?;
    let (mac_text, mtu_text) = (mac.to_string(), mtu.to_string());
    try_ip(&[
        "link", "set", "ztload0", "address", &mac_text, "mtu", &mtu_text, "up",
    ])?;
    try_ip(&["addr", "add", &format!("{ip}/{prefix}"), "dev", "ztload0"])?;
    let member = sources
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the ping member got no config in 60 s".to_string())?;
    try_ip(&[
        "neigh",
        "replace",
        &member.ip.to_string(),
        "lladdr",
        &member.mac.to_string(),
        "dev",
        "ztload0",
        "nud",
        "permanent",
    ])?;
    targets
        .send(PingTarget { ip, mac })
        .map_err(|_| "the ping member stopped".to_string())?;
    Ok(tap)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken from the command line.
    let db_kind: String = env_or("ZT_LOAD_DB", "sqlite".to_string());
    let members: usize = env_or("ZT_LOAD_MEMBERS", 10_000);
    let active: usize = env_or::<usize>("ZT_LOAD_ACTIVE", 2_000).min(members);
    let seconds: u64 = env_or("ZT_LOAD_SECONDS", 10);
    let period_ms: u64 = env_or("ZT_LOAD_PERIOD_MS", 1_100);

    let overlay_ping_on = env_or("ZT_LOAD_OVERLAY_PING", 1) != 0;
    // Before any socket or thread: everything the bench starts lives in its namespace.
    let overlay_ping_on = overlay_ping_on
        && zt_testnet::isolate_this_thread()
            .map_err(|why| eprintln!("overlay ping skipped: {why}"))
            .is_ok();
    let ids = member_identities(active + 3);
    let (controller_id, probe_id, ping_id) = (
        ids[active].clone(),
        ids[active + 1].clone(),
        ids[active + 2].clone(),
    );
    let also = [controller_id.address(), ping_id.address()];
    let ids = &ids[..active];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctl");
    std::fs::create_dir_all(&dir).unwrap();
    let nwid = network_id_for(controller_id.address(), 0x10ad);

    let cluster;
    let db = match db_kind.as_str() {
        "postgresql" => {
            cluster = zt_testnet::postgres::TestCluster::start()
                .unwrap_or_else(|why| panic!("PostgreSQL needed for ZT_LOAD_DB=postgresql: {why}"));
            let storage =
                PostgresStorage::connect(&cluster.url(), Some(controller_id.address())).unwrap();
            populate(
                &mut Controller::new(controller_id.address(), storage),
                nwid,
                ids,
                members,
                &also,
            );
            ControllerDb::Postgres(cluster.uri())
        }
        _ => {
            let storage = SqliteStorage::open(dir.join(DB_FILE)).unwrap();
            populate(
                &mut Controller::new(controller_id.address(), storage),
                nwid,
                ids,
                members,
                &also,
            );
            ControllerDb::Sqlite
        }
    };

    // The controller: an instance whose node is the planet's only root.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let bound = socket.local_addr().unwrap();
    let signer = KeyPair::generate(&mut rand_core::OsRng);
    let root = Root {
        identity: controller_id.to_public(),
        stable_endpoints: vec![InetAddress::new(bound.ip(), bound.port())],
    };
    let planet =
        World::new_signed(WorldType::Planet, 7, 1, signer.public, vec![root], &signer).unwrap();
    std::fs::write(dir.join(PLANET_FILE), planet.to_bytes()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock = EngineClock::new();
    let registry = Arc::new(ControllerRegistry::new(clock, db));
    let service = registry.open(&dir, &controller_id);
    let info = InstanceInfo {
        name: "ctl".into(),
        dir: dir.clone(),
        address: controller_id.address(),
    };
    let handler: Box<dyn EventHandler> = ControllerSubsystem::new(registry.clone())
        .attach(&info)
        .unwrap();
    let instance = runtime.block_on(async {
        let start = EngineStart {
            instance_name: "ctl".into(),
            interfaces: Vec::new(),
            identity: controller_id.clone(),
            instance_dir: dir.clone(),
            home_worlds: None,
            sockets: vec![LocalSocket {
                id: ztd::runtime::engine::LocalSocketId(0),
                bound,
                role: PortRole::Primary,
            }],
            port_mapping: false,
            now: clock.now(),
        };
        let engine = NodeEngine::start(start, vec![handler], Default::default()).unwrap();
        let bound_socket = BoundSocket {
            socket,
            bound,
            role: PortRole::Primary,
        };
        InstanceRuntime::start(
            vec![bound_socket],
            Box::new(engine),
            clock,
            "load".into(),
            ztd::runtime::tcp_fallback::TcpFallbackSettings::disabled(),
        )
        .unwrap()
    });
    registry.instance_started(&dir, instance.handle());

    // Idle figure for the probe first.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = probe(
        probe_id,
        planet.clone(),
        controller_id.address(),
        stop.clone(),
    );
    let (ping_sources_tx, ping_sources) = std::sync::mpsc::channel();
    let (ping_targets, ping_targets_rx) = std::sync::mpsc::channel();
    let mut pinger = None;
    let mut controller_tap_device = None;
    if overlay_ping_on {
        pinger = Some(overlay_ping(
            ping_id,
            planet.clone(),
            WireNetworkId(nwid),
            ping_targets_rx,
            ping_sources_tx,
            stop.clone(),
        ));
        match controller_tap(
            &runtime,
            &instance,
            WireNetworkId(nwid),
            &ping_sources,
            &ping_targets,
        ) {
            Ok(tap) => controller_tap_device = Some(tap),
            Err(why) => eprintln!("overlay ping skipped: {why}"),
        }
    }
    std::thread::sleep(Duration::from_secs(3));

    // Warm-up: every member says HELLO and gets its first config (not measured). New
    // members start at 40 a second: the controller checks at most 48 new identities a
    // second (flood protection), and a refused HELLO is only retried seconds later.
    let mut generator = Generator::new(ids, &planet);
    let warm_up = Instant::now();
    let mut last_timers = Instant::now();
    while generator.latencies.len() < active && warm_up.elapsed() < Duration::from_secs(240) {
        let due = ((warm_up.elapsed().as_millis() as usize) * 40 / 1000 + 1).min(active);
        while generator.live < due {
            let address = generator.order[generator.live];
            generator.live += 1;
            generator.request(address, nwid);
        }
        if !generator.receive() {
            std::thread::sleep(Duration::from_micros(200));
        }
        if last_timers.elapsed() > Duration::from_millis(200) {
            generator.timers();
            last_timers = Instant::now();
        }
    }
    eprintln!(
        "warm-up: {}/{active} members configured in {:?}",
        generator.latencies.len(),
        warm_up.elapsed()
    );
    generator.latencies.clear();
    let before = service.status();

    // Measured window: each member asks every `period_ms`, staggered.
    let load_started = Instant::now();
    let window = Duration::from_secs(seconds);
    let per_member = Duration::from_millis(period_ms);
    let mut next: Vec<Instant> = (0..active)
        .map(|i| load_started + per_member * i as u32 / active as u32)
        .collect();
    while load_started.elapsed() < window {
        let now = Instant::now();
        for (i, due) in next.iter_mut().enumerate() {
            if *due <= now {
                *due += per_member;
                let address = generator.order[i];
                generator.request(address, nwid);
            }
        }
        if !generator.receive() {
            std::thread::sleep(Duration::from_micros(100));
        }
        if last_timers.elapsed() > Duration::from_millis(200) {
            generator.timers();
            last_timers = Instant::now();
        }
    }
    let load_ended = Instant::now();
    // Late answers to requests of the window still count for latency, for up to 2 s.
    while Instant::now() < load_ended + Duration::from_secs(2) {
        if !generator.receive() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let after = service.status();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = prober.join().unwrap();
    let pings = pinger.map(|p| p.join().unwrap());

    let offered = (seconds * 1000 / period_ms) as usize * active;
    let answered = after.requests_answered - before.requests_answered;
    let mut latencies = generator.latencies.clone();
    latencies.sort();
    let mut idle: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| *at < warm_up)
        .map(|(_, d)| *d)
        .collect();
    let mut loaded: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| *at >= load_started && *at < load_ended)
        .map(|(_, d)| *d)
        .collect();
    idle.sort();
    loaded.sort();
    println!(
        "controller_load db={db_kind} members={members} active={active} window={seconds}s period={period_ms}ms"
    );
    println!(
        "  requests offered ~{offered}, answered by the controller {answered} ({:.0}/s), configs applied by members {} ({:.0}/s), dropped at the queue {}, failed {}",
        answered as f64 / seconds as f64,
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        after.requests_dropped - before.requests_dropped,
        after.requests_failed - before.requests_failed,
    );
    println!(
        "  request → config applied: p50 {:?} p99 {:?} max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "  probe ECHO round trip to the controller node: idle p50 {:?} ({} samples), under load p50 {:?} p99 {:?} ({} samples)",
        percentile(&idle, 0.5),
        idle.len(),
        percentile(&loaded, 0.5),
        percentile(&loaded, 0.99),
        loaded.len()
    );
    if let Some(pings) = pings.filter(|_| controller_tap_device.is_some()) {
        let window = |from: Option<Instant>, to: Instant| {
            let within = |at: &Instant| from.is_none_or(|from| *at >= from) && *at < to;
            let mut answered: Vec<Duration> = pings
                .answered
                .iter()
                .filter(|(at, _)| within(at))
                .map(|(_, d)| *d)
                .collect();
            answered.sort();
            let lost = pings.lost.iter().filter(|at| within(at)).count();
            (answered, lost)
        };
        let (idle, idle_lost) = window(None, warm_up);
        let (loaded, loaded_lost) = window(Some(load_started), load_ended);
        println!(
            "  overlay ping (ICMP through the controller host's TAP): idle p50 {:?} p99 {:?} ({} answered, {idle_lost} lost), under load p50 {:?} p99 {:?} ({} answered, {loaded_lost} lost)",
            percentile(&idle, 0.5),
            percentile(&idle, 0.99),
            idle.len(),
            percentile(&loaded, 0.5),
            percentile(&loaded, 0.99),
            loaded.len()
        );
    }
    runtime.block_on(instance.stop());
    drop(controller_tap_device);
    drop(registry);
}
