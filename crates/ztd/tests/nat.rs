//! Two ztd leaves behind NATs of different kinds (zt_testnet::NatLab: nftables gateways in
//! namespaces), a root ztd on the lab's internet, all on the ad-hoc network
//! ff0b000000000001. For each pair the leaves ping each other; where ZeroTier One gets a
//! direct path (at least one side's mapping is endpoint-independent and reachable) both
//! leaves end up with an active path to the other's public address, and between two
//! symmetric NATs the traffic stays relayed by the root. The time to the direct path is
//! printed per pair (a figure for the notes, not an assertion).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zt_crypto::Identity;
use zt_testnet::nat::nat_lab_available;
use zt_testnet::{json_line, skip_unless, NatKind, NatLab, NsProcess};

/// A network every node joins without a controller; members get 11.x.y.z/8.
const ADHOC_V4: &str = "ff0b000000000001";
/// How long a pair may take to ping at all (relayed through the root).
const FIRST_PING_LIMIT: Duration = Duration::from_secs(40);
/// How long a pair that should get a direct path may take to get it. zerotier-one's relay
/// unites two peers at most every 30 s (ZT_MIN_UNITE_INTERVAL) and pushes direct paths every
/// 15 s without one (ZT_DIRECT_PATH_PUSH_INTERVAL), so this covers a missed first round.
const DIRECT_PATH_LIMIT: Duration = Duration::from_secs(45);
/// How long a symmetric pair is watched for a direct path that must not appear: past the
/// first RENDEZVOUS and the first pushes of direct paths.
const RELAYED_WATCH: Duration = Duration::from_secs(20);

/// What a pair of leaves should end up with.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    Direct,
    Relayed,
}

const PAIRS: [(NatKind, NatKind, Expect); 6] = [
    (NatKind::FullCone, NatKind::FullCone, Expect::Direct),
    (NatKind::FullCone, NatKind::PortRestricted, Expect::Direct),
    (
        NatKind::PortRestricted,
        NatKind::PortRestricted,
        Expect::Direct,
    ),
    (NatKind::Symmetric, NatKind::FullCone, Expect::Direct),
    (NatKind::Symmetric, NatKind::Symmetric, Expect::Relayed),
    (NatKind::Double, NatKind::FullCone, Expect::Direct),
];

/// A ztd of the lab with its identity and API.
struct Daemon<'a> {
    process: NsProcess,
    api: Api<'a>,
    id: Identity,
}

/// A ztd on `node`, on the ad-hoc network; `port_mapping` is its instance's property.
fn start_node<'a>(
    lab: &'a NatLab,
    node: usize,
    dir: &Path,
    planet: &[u8],
    port_mapping: bool,
) -> Daemon<'a> {
    let id = identity();
    let home = dir.join(format!("n{node}"));
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::write(home.join("zt1/planet"), planet).unwrap();
    let (process, api) = start_ztd(lab, node, &home);
    if !port_mapping {
        let off = serde_json::json!({ "port-mapping": "no" }).to_string();
        let reply = api.call("PATCH", "/rest/zerotier/zt1", Some(&off));
        assert!(reply.is_some(), "port-mapping=no refused");
    }
    enable_with_identity(&api, &id);
    if !port_mapping {
        assert_no_third_port(lab, node, &api);
    }
    api.call(
        "PUT",
        "/rest/zerotier/interface",
        Some(&serde_json::json!({ "network": ADHOC_V4 }).to_string()),
    )
    .expect("interface add");
    Daemon { process, api, id }
}

/// With port mapping off, as zerotier-one without portMappingEnabled, an instance binds
/// its primary and secondary ports and no third: `/status` says `tertiaryPort` 0 and the
/// namespace holds no other UDP port.
fn assert_no_third_port(lab: &NatLab, node: usize, api: &Api) {
    let settings = api.call("GET", "/status", None).expect("status")["config"]["settings"].clone();
    assert_eq!(settings["tertiaryPort"], 0, "{settings}");
    assert_eq!(settings["portMappingEnabled"], false, "{settings}");
    let mut expected: Vec<u16> = ["primaryPort", "secondaryPort"]
        .iter()
        .filter_map(|key| settings[key].as_u64().map(|p| p as u16))
        .collect();
    expected.sort_unstable();
    assert_eq!(bound_udp_ports(lab, node), expected, "{settings}");
}

/// The live direct path `from` has to `to` (its address), if any: active, not expired, and
/// to the public address of `to` (a path to a LAN address cannot work across the lab).
fn direct_path(from: &Daemon, to: &Daemon, to_public: Ipv4Addr) -> Option<String> {
    direct_path_to(from, to.id.address(), to_public)
}

/// [`direct_path`] to any node by its address.
fn direct_path_to(from: &Daemon, to: zt_crypto::Address, to_public: Ipv4Addr) -> Option<String> {
    let peers = from.api.call("GET", "/peer", None)?;
    let peer = peers
        .as_array()?
        .iter()
        .find(|p| p["address"] == to.to_string())?;
    peer["paths"].as_array()?.iter().find_map(|path| {
        let address = path["address"].as_str()?;
        let live = path["active"] == Value::Bool(true) && path["expired"] != Value::Bool(true);
        let ip = address.split('/').next()?.parse::<Ipv4Addr>().ok()?;
        (live && ip == to_public).then(|| address.to_string())
    })
}

/// A counter of `daemon`'s `GET /stats` (-1 if the API did not answer).
fn counter(daemon: &Daemon, name: &str) -> i64 {
    daemon
        .api
        .call("GET", "/stats", None)
        .and_then(|stats| stats[name].as_i64())
        .unwrap_or(-1)
}

/// The root ztd on node 0 of `lab`, and the planet (bytes) naming it.
fn start_root<'a>(lab: &'a NatLab, dir: &Path) -> (NsProcess, Api<'a>, Vec<u8>) {
    let root_id = identity();
    let planet = world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0002,
        &root_id,
        SocketAddr::from((lab.public_ip(0), 9993)),
    )
    .to_bytes();
    let home = dir.join("root");
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::write(home.join("zt1/planet"), &planet).unwrap();
    let (root, root_api) = start_ztd(lab, 0, &home);
    enable_with_identity(&root_api, &root_id);
    (root, root_api, planet)
}

/// Starts ztd on leaves `a` (with `port_mapping` on or off) and `b`, pings from `a` to `b`
/// and waits for what `expect` says; Ok(the figures) or Err(what went wrong). The leaves
/// stop on return.
fn run_pair(
    lab: &NatLab,
    dir: &Path,
    planet: &[u8],
    ((a, port_mapping), b): ((usize, bool), usize),
    name: &str,
    expect: Expect,
) -> Result<String, String> {
    let nwid = zt_wire::network_id::NetworkId(u64::from_str_radix(ADHOC_V4, 16).unwrap());
    let started = Instant::now();
    let mut leaf_a = start_node(lab, a, dir, planet, port_mapping);
    let mut leaf_b = start_node(lab, b, dir, planet, true);
    let overlay = |d: &Daemon| nwid.adhoc_ipv4_address(d.id.address()).unwrap().to_string();
    let (a_ip, b_ip) = (overlay(&leaf_a), overlay(&leaf_b));
    if poll(FIRST_PING_LIMIT, || {
        ping_once(lab, a, &b_ip, 1).then_some(())
    })
    .is_none()
    {
        return Err(format!(
            "{name}: no ping within {FIRST_PING_LIMIT:?}\nA: {}\nB: {}",
            leaf_a.process.report(),
            leaf_b.process.report()
        ));
    }
    let pinged_after = started.elapsed();
    // Traffic keeps flowing (both ways) while we wait, as a user's would: relayed traffic
    // is what makes the root introduce the two.
    let limit = match expect {
        Expect::Direct => DIRECT_PATH_LIMIT,
        Expect::Relayed => RELAYED_WATCH,
    };
    let direct = poll(limit, || {
        ping_once(lab, a, &b_ip, 1);
        ping_once(lab, b, &a_ip, 1);
        let ab = direct_path(&leaf_a, &leaf_b, lab.public_ip(b))?;
        let ba = direct_path(&leaf_b, &leaf_a, lab.public_ip(a))?;
        Some((ab, ba))
    });
    let direct_after = started.elapsed();
    // Still pinging at the end, whichever way the traffic goes.
    if !ping_once(lab, a, &b_ip, 1) {
        return Err(format!("{name}: ping stopped working at the end"));
    }
    let counters = format!(
        "RENDEZVOUS received A {} B {}, surface address changes A {} B {}",
        counter(&leaf_a, "rendezvous_received"),
        counter(&leaf_b, "rendezvous_received"),
        counter(&leaf_a, "external_address_changes"),
        counter(&leaf_b, "external_address_changes"),
    );
    match (expect, &direct) {
        (Expect::Direct, Some((ab, ba))) => Ok(format!(
            "{name}: ping after {:.1} s, direct path after {:.1} s (A→{ab}, B→{ba}); \
             {counters}",
            pinged_after.as_secs_f64(),
            direct_after.as_secs_f64()
        )),
        (Expect::Relayed, None) => Ok(format!(
            "{name}: ping after {:.1} s, relayed through the root for {:.0} s as expected; \
             {counters}",
            pinged_after.as_secs_f64(),
            limit.as_secs_f64()
        )),
        _ => {
            let peers_a = leaf_a.api.call("GET", "/peer", None);
            let peers_b = leaf_b.api.call("GET", "/peer", None);
            Err(format!(
                "{name}: expected {expect:?}, got {direct:?} after {limit:?}\n\
                 A's peers: {peers_a:?}\nB's peers: {peers_b:?}\nA: {}\nB: {}",
                leaf_a.process.report(),
                leaf_b.process.report()
            ))
        }
    }
}

fn skip_without_ping() -> Result<(), String> {
    Path::new("/usr/bin/ping")
        .is_file()
        .then_some(())
        .ok_or("ping not found (apt-get install iputils-ping)".into())
}

#[test]
fn leaves_behind_nats_get_a_direct_path_where_zerotier_does() {
    skip_unless!(nat_lab_available());
    skip_unless!(skip_without_ping());
    let kinds: Vec<NatKind> = PAIRS.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
    let lab = NatLab::new(&kinds);
    let dir = tempfile::tempdir().unwrap();
    let (mut root, _root_api, planet) = start_root(&lab, dir.path());
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for (pair, (kind_a, kind_b, expect)) in PAIRS.iter().enumerate() {
        let leaves = ((1 + 2 * pair, true), 2 + 2 * pair);
        let name = format!("{}↔{}", kind_a.name(), kind_b.name());
        match run_pair(&lab, dir.path(), &planet, leaves, &name, *expect) {
            Ok(line) => figures.push(line),
            Err(why) => failures.push(why),
        }
    }
    eprintln!("NAT lab, time from starting both leaves:");
    for line in &figures {
        eprintln!("  {line}");
    }
    assert!(
        failures.is_empty(),
        "{}\nroot: {}",
        failures.join("\n\n"),
        root.report()
    );
}

/// An internet prefix miniupnpd takes for public (it refuses documentation and private
/// ones, and with them to forward anything). Its addresses exist only inside the lab.
const PUBLIC_LOOKING_INTERNET: [u8; 3] = [100, 128, 0];

#[test]
fn a_symmetric_nat_that_forwards_a_port_by_nat_pmp_gets_a_direct_path() {
    skip_unless!(zt_testnet::nat::nat_pmp_available());
    skip_unless!(skip_without_ping());
    let lab = NatLab::with_internet(
        PUBLIC_LOOKING_INTERNET,
        &[
            NatKind::SymmetricNatPmp,
            NatKind::Symmetric,
            NatKind::SymmetricNatPmp,
            NatKind::Symmetric,
            NatKind::SymmetricNatPmp,
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut root, _root_api, planet) = start_root(&lab, dir.path());

    assert_the_forward_follows_the_instance(&lab, 5, dir.path(), &planet);

    // Port mapping is on by default (`port-mapping`), as in zerotier-one; turned off, the
    // same gateways leave the pair relayed, so it is the mapping that makes the path.
    let cases = [
        (
            (1, true),
            2,
            "symmetric with NAT-PMP↔symmetric",
            Expect::Direct,
        ),
        ((3, false), 4, "the same, port-mapping=no", Expect::Relayed),
    ];
    for (a, b, name, expect) in cases {
        match run_pair(&lab, dir.path(), &planet, (a, b), name, expect) {
            Ok(line) => eprintln!("NAT lab: {line}"),
            Err(why) => panic!("{why}\nroot: {}", root.report()),
        }
    }
}

/// The forward on leaf `leased`'s gateway is for the instance's third port (zerotier-one's
/// tertiary port, bound for this and nothing else), made when the instance starts, shown in
/// `/status` and `/zerotier`, and deleted when the instance stops.
fn assert_the_forward_follows_the_instance(lab: &NatLab, leased: usize, dir: &Path, planet: &[u8]) {
    // The gateway's forwarding rules (miniupnpd's: `udp dport EXTERNAL dnat ip to
    // INTERNAL:PORT`).
    let forwards = || -> Vec<String> {
        let gateway = &lab.gateways(leased)[0];
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", gateway, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("dport") && l.contains("dnat"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let started = Instant::now();
    let mut leaf = start_node(lab, leased, dir, planet, true);
    let settings =
        leaf.api.call("GET", "/status", None).expect("status")["config"]["settings"].clone();
    let ports = ["primaryPort", "secondaryPort", "tertiaryPort"].map(|key| {
        settings[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {settings}")) as u16
    });
    let [primary, secondary, tertiary] = ports;
    assert!(
        tertiary >= 20000 && tertiary != primary && tertiary != secondary,
        "{settings}"
    );
    // The mapped address the gateway reports, on /zerotier, once it is made.
    let mapped = poll(Duration::from_secs(15), || {
        let record = leaf.api.call("GET", "/rest/zerotier/zt1", None)?;
        assert_eq!(record["tertiary-port"], tertiary.to_string(), "{record}");
        record["mapped-address"]
            .as_str()?
            .parse::<SocketAddr>()
            .ok()
    });
    let Some(mapped) = mapped else {
        panic!(
            "no mapped-address within 15 s; forwards {:?}\n{}",
            forwards(),
            leaf.process.report()
        );
    };
    eprintln!(
        "NAT lab: tertiary port {tertiary} mapped from {mapped} {:.1?} after the leaf's start",
        started.elapsed()
    );
    assert_eq!(mapped.ip(), std::net::IpAddr::V4(lab.public_ip(leased)));
    let to_tertiary = format!(":{tertiary}");
    let forward = forwards()
        .into_iter()
        .find(|rule| rule.contains(&format!("dport {} ", mapped.port())));
    assert!(
        forward
            .as_ref()
            .is_some_and(|rule| rule.ends_with(&to_tertiary)),
        "{mapped} does not forward to the tertiary port {tertiary}: {:?}",
        forwards()
    );
    assert!(
        forwards()
            .iter()
            .all(|rule| !rule.ends_with(&format!(":{primary}"))
                && !rule.ends_with(&format!(":{secondary}"))),
        "only the tertiary port is forwarded: {:?}",
        forwards()
    );
    let off = serde_json::json!({ "disabled": "yes" }).to_string();
    leaf.api.call("PATCH", "/rest/zerotier/zt1", Some(&off));
    let deleted = poll(Duration::from_secs(10), || {
        forwards().is_empty().then_some(())
    });
    assert!(
        deleted.is_some(),
        "the forward outlived the instance: {:?}",
        forwards()
    );
}

/// The UDP ports bound in leaf `node`'s namespace (ztd is the only program there that binds
/// any), from the kernel's tables.
fn bound_udp_ports(lab: &NatLab, node: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let out = lab.run(
            node,
            Path::new("/usr/bin/cat"),
            &[table],
            Duration::from_secs(5),
        );
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            // `sl local_address:port remote …`, the port in hex.
            let port = line
                .split_whitespace()
                .nth(1)
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            ports.extend(port);
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A gateway that speaks UPnP-IGD and not NAT-PMP: ztd finds it by SSDP, has the port
/// forwarded, deletes the forward when the instance stops, and gets a direct path from behind
/// a symmetric NAT.
#[test]
fn a_symmetric_nat_that_forwards_a_port_by_upnp_gets_a_direct_path() {
    skip_unless!(zt_testnet::nat::nat_pmp_available());
    skip_unless!(skip_without_ping());
    let lab = NatLab::with_internet(
        PUBLIC_LOOKING_INTERNET,
        &[
            NatKind::SymmetricUpnp,
            NatKind::Symmetric,
            NatKind::SymmetricUpnp,
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut root, _root_api, planet) = start_root(&lab, dir.path());
    assert_the_forward_follows_the_instance(&lab, 3, dir.path(), &planet);
    let name = "symmetric with UPnP-IGD↔symmetric";
    match run_pair(
        &lab,
        dir.path(),
        &planet,
        ((1, true), 2),
        name,
        Expect::Direct,
    ) {
        Ok(line) => eprintln!("NAT lab: {line}"),
        Err(why) => panic!("{why}\nroot: {}", root.report()),
    }
}

/// ztd behind one NAT and a real ZeroTier node (`ztpeer`) behind another, on the ad-hoc 6plane
/// network: ztd pings the real node's 6plane address (relayed by the root at first) and both
/// end up on a direct path between their public addresses, as two ztd leaves do for the same
/// NAT kinds. Figures as in the ztd-only table.
#[test]
fn a_real_node_behind_a_nat_and_ztd_get_a_direct_path() {
    skip_unless!(nat_lab_available());
    skip_unless!(skip_without_ping());
    let ztpeer = skip_unless!(zt_testnet::ztpeer_path());
    // (ztd's NAT, the real node's NAT): endpoint-independent on at least one side.
    let pairs = [
        (NatKind::FullCone, NatKind::PortRestricted),
        (NatKind::Symmetric, NatKind::FullCone),
    ];
    let kinds: Vec<NatKind> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let lab = NatLab::new(&kinds);
    let dir = tempfile::tempdir().unwrap();
    let (mut root, _root_api, planet) = start_root(&lab, dir.path());
    let planet_file = dir.path().join("planet");
    std::fs::write(&planet_file, &planet).unwrap();
    let mut figures = Vec::new();
    for (pair, (ours_kind, real_kind)) in pairs.iter().enumerate() {
        let (ours_node, real_node) = (1 + 2 * pair, 2 + 2 * pair);
        let name = format!("ztd {}↔real node {}", ours_kind.name(), real_kind.name());
        let started = Instant::now();
        let ours = start_node(&lab, ours_node, dir.path(), &planet, true);
        ours.api
            .call(
                "PUT",
                "/rest/zerotier/interface",
                Some(&serde_json::json!({ "network": ADHOC }).to_string()),
            )
            .expect("interface add");
        let real_home = dir.path().join(format!("real{pair}"));
        let real_id = identity();
        write_identity(&real_home, &real_id);
        let (real_home_s, planet_s) = (
            real_home.display().to_string(),
            planet_file.display().to_string(),
        );
        let mut real = lab.spawn(
            real_node,
            &ztpeer,
            &[
                "run",
                "--home",
                &real_home_s,
                "--roots",
                &planet_s,
                "--join",
                ADHOC,
                "--for",
                "120",
                "--status-every",
                "1",
            ],
        );
        let real_6plane = sixplane(&real_id);
        let ping6 = |wait: &str| {
            lab.run(
                ours_node,
                Path::new("/usr/bin/ping"),
                &["-6", "-c", "1", "-W", wait, &real_6plane],
                Duration::from_secs(5),
            )
            .status
            .success()
        };
        let pinged = poll(FIRST_PING_LIMIT, || ping6("2").then_some(()));
        assert!(
            pinged.is_some(),
            "{name}: no ping to {real_6plane}\nroot: {}\nreal: {}",
            root.report(),
            real.report()
        );
        let pinged_after = started.elapsed();
        let real_public = lab.public_ip(real_node);
        let direct = poll(DIRECT_PATH_LIMIT, || {
            ping6("1");
            direct_path_to(&ours, real_id.address(), real_public)
        });
        let Some(path) = direct else {
            panic!(
                "{name}: no direct path to {real_public} within {DIRECT_PATH_LIMIT:?}; peers: \
                 {:?}\nreal: {}",
                ours.api.call("GET", "/peer", None),
                real.report()
            );
        };
        assert!(ping6("2"), "{name}: ping stopped working");
        // The real node's side, where it tells: libzt reports a peer only in PEER_* events,
        // which it sends only while online and only on a change, so a path made before the
        // node counted itself online is never reported. What it reports of ztd must be the
        // direct path to ztd's public address.
        let ours_public = lab.public_ip(ours_node).to_string();
        let ours_address = ours.id.address().to_string();
        let about_ours = |peer: &Value| {
            peer["peer_id"]
                .as_str()
                .is_some_and(|id| format!("{id:0>10}").eq_ignore_ascii_case(&ours_address))
        };
        let reports = |line: &str| -> Vec<Value> {
            let Some(v) = json_line(line) else {
                return Vec::new();
            };
            let mut found: Vec<Value> = v["peers"]
                .as_array()
                .map(|peers| peers.iter().filter(|p| about_ours(p)).cloned().collect())
                .unwrap_or_default();
            if about_ours(&v) {
                found.push(v);
            }
            found
        };
        let _ = real.wait_line(Duration::from_secs(3), |l| !reports(l).is_empty());
        let last_report = real.seen().iter().flat_map(|l| reports(l)).last();
        match last_report {
            Some(peer) => assert!(
                peer["paths"].to_string().contains(&ours_public),
                "{name}: the real node's paths to ztd do not include {ours_public}: {peer}"
            ),
            None => eprintln!("{name}: the real node reported nothing of ztd (libzt's events)"),
        }
        figures.push(format!(
            "{name}: ping after {:.1} s, direct path after {:.1} s (→{path})",
            pinged_after.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
    }
    eprintln!("NAT lab with a real node, time from starting both:");
    for line in &figures {
        eprintln!("  {line}");
    }
}
