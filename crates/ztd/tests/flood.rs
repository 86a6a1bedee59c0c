//! A HELLO flood at a root ztd, in namespaces: HELLOs of made-up identities (correctly
//! MACed, addresses not derived from their keys) from 254 addresses of one /24 and from 64
//! addresses of one /64, 1,000 per second from each for 10 s, while a member pings the root's
//! address on a network and pings a second member through the root (their direct path is
//! blackholed, so every frame is relayed). Both pings lose less than 1 %, the root counts the
//! flood among its drops, learns none of the identities and its memory stays bounded. The
//! root's CPU seconds and RSS are printed for the closing note (figures, not assertions).
//! A second flood comes from 1,000 addresses in as many /24s, so that only the global
//! budget bounds the identity checks, which then run on the root's identity thread.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zt_crypto::armor::{CipherSuite, PeerKey};
use zt_crypto::Identity;
use zt_testnet::{skip_unless, Lab};
use zt_wire::header::Verb;
use zt_wire::verbs::hello::Hello;
use zt_wire::verbs::packet::{build, OutgoingPacket};

/// A network every node joins without a controller; members get 11.x.y.z/8.
const ADHOC_V4: &str = "ff0b000000000001";
/// Fake HELLOs per second from each of the two prefixes.
const FLOOD_RATE: usize = 1_000;
const FLOOD_SECONDS: usize = 10;
/// Made-up identities; each says HELLO this many times (new packet IDs), as a retrying
/// attacker would.
const HELLOS_PER_FAKE: usize = 10;
/// Pings at 20 per second span the flood.
const PINGS: usize = 200;
/// The root's resident memory may grow by this much under the flood (held HELLOs, gate
/// tables): anything kept per fake identity would pass it.
const RSS_GROWTH_LIMIT_KB: u64 = 64 * 1024;

const FLOOD_V4_PREFIX: [u8; 3] = [10, 78, 5];
const ROOT_V6: &str = "fd77::1";
const FLOODER_V6: &str = "fd77::4";
const FLOOD_V6_PREFIX: &str = "fd78::";

fn ip_batch(lab: &Lab, ns: usize, lines: &[String], dir: &Path) {
    let file = dir.join(format!("batch-{ns}"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = std::process::Command::new("ip")
        .args(["-n", lab.ns(ns), "-batch"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip -batch in {}: {}",
        lab.ns(ns),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A made-up identity: a random address with an unrelated fresh key pair (it fails the
/// memory-hard check, but it can MAC packets).
fn fake_identity() -> Identity {
    let keys = zt_crypto::c25519::KeyPair::generate(&mut rand::rngs::OsRng);
    let address = loop {
        let a = rand::random::<u64>() & 0xff_ffff_ffff;
        // Not reserved (0xff…) and not zero, or the root would drop it before the gate.
        if a >> 32 != 0xff && a != 0 {
            break a;
        }
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Identity::from_string(&format!(
        "{address:010x}:0:{}:{}",
        hex(&keys.public),
        hex(&keys.private)
    ))
    .unwrap()
}

/// `count` HELLO datagrams to `root`, from made-up identities.
fn fake_hellos(root: &Identity, count: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let fake = fake_identity();
        let key = PeerKey::new(fake.agree(root).unwrap());
        let hello = Hello {
            protocol_version: 12,
            major: 1,
            minor: 14,
            revision: 1,
            timestamp: 1,
            identity: fake.to_public(),
            physical_destination: None,
            planet: None,
            moons: None,
        };
        let mut body = Vec::new();
        hello.write(&mut body);
        for _ in 0..HELLOS_PER_FAKE.min(count - out.len()) {
            let packet = OutgoingPacket {
                destination: root.address(),
                source: fake.address(),
                verb: Verb::Hello,
                payload: &body,
                packet_id: rand::random(),
                suite: CipherSuite::Poly1305None,
                compress: false,
                mtu: 1432,
            };
            out.push(build(&packet, &key).unwrap().datagrams.remove(0));
        }
    }
    out
}

/// Sends `hellos` round-robin from `sockets` to `to`, `FLOOD_RATE` per second; the count of
/// datagrams sent.
fn flood(sockets: &[UdpSocket], to: SocketAddr, hellos: &[Vec<u8>]) -> usize {
    let start = Instant::now();
    let per_tick = FLOOD_RATE / 100;
    let mut sent = 0;
    for (tick, batch) in hellos.chunks(per_tick).enumerate() {
        let due = start + Duration::from_millis(10 * tick as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for datagram in batch {
            let socket = &sockets[sent % sockets.len()];
            if socket.send_to(datagram, to).is_ok() {
                sent += 1;
            }
        }
        if start.elapsed() > Duration::from_secs(FLOOD_SECONDS as u64 + 5) {
            break;
        }
    }
    sent
}

/// `ping` from namespace `ns` to `target`: (sent, received).
fn ping_loss(lab: &Lab, ns: usize, target: &str) -> (u64, u64) {
    let count = PINGS.to_string();
    let out = lab.run(
        ns,
        Path::new("/usr/bin/ping"),
        &["-q", "-n", "-c", &count, "-i", "0.05", "-W", "1", target],
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary in ping output: {text}"));
    let figure = |word: &str| -> u64 {
        summary
            .split(',')
            .find(|part| part.contains(word))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no '{word}' in ping output: {text}"))
    };
    (figure("transmitted"), figure("received"))
}

/// (CPU seconds, resident kB) of a process.
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    #[allow(unsafe_code)]
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    (ticks as f64 / per_second, rss)
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name}: {stats}"))
}

/// The root's drops that a fake HELLO can end in.
fn flood_drops(stats: &Value) -> u64 {
    [
        "dropped_hello_rate_limited",
        "dropped_invalid_identity",
        "dropped_identity_check_queue",
    ]
    .iter()
    .map(|name| counter(stats, name))
    .sum()
}

#[test]
fn a_hello_flood_from_one_24_and_one_64_leaves_known_peers_traffic_alone() {
    skip_unless!(zt_testnet::netns_available());
    skip_unless!(ping_available());
    let lab = Lab::new(4);
    let (root, a, b, flooder) = (0, 1, 2, 3);
    let dir = tempfile::tempdir().unwrap();
    let (root_id, a_id, b_id) = (identity(), identity(), identity());
    let planet = world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0001,
        &root_id,
        SocketAddr::from((lab.ip(root), 9993)),
    );
    let mut daemons = Vec::new();
    let mut apis = Vec::new();
    for (ns, id) in [(root, &root_id), (a, &a_id), (b, &b_id)] {
        let home = dir.path().join(format!("n{ns}"));
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
        let (proc, api) = start_ztd(&lab, ns, &home);
        enable_with_identity(&api, id);
        add_interface(&api, ADHOC_V4);
        daemons.push(proc);
        apis.push(api);
    }
    // A and B cannot reach each other directly: what they send each other goes through the
    // root, the node under flood.
    ip_batch(
        &lab,
        a,
        &[format!("route add blackhole {}/32", lab.ip(b))],
        dir.path(),
    );
    ip_batch(
        &lab,
        b,
        &[format!("route add blackhole {}/32", lab.ip(a))],
        dir.path(),
    );
    // The flood's sources: 254 addresses of one /24 and 64 of one /64, routed to by the root.
    let mut flooder_lines: Vec<String> = (1..=254u8)
        .map(|h| {
            let [x, y, z] = FLOOD_V4_PREFIX;
            format!("addr add {x}.{y}.{z}.{h}/24 dev eth0")
        })
        .collect();
    flooder_lines.push(format!("addr add {FLOODER_V6}/64 dev eth0 nodad"));
    flooder_lines
        .extend((1..=64).map(|h| format!("addr add {FLOOD_V6_PREFIX}{h:x}/64 dev eth0 nodad")));
    flooder_lines.extend(many_prefixes().map(|a| format!("addr add {}/32 dev eth0", a.ip())));
    ip_batch(&lab, flooder, &flooder_lines, dir.path());
    let [x, y, z] = FLOOD_V4_PREFIX;
    ip_batch(
        &lab,
        root,
        &[
            format!("route add {x}.{y}.{z}.0/24 via {}", lab.ip(flooder)),
            format!("route add 10.80.0.0/14 via {}", lab.ip(flooder)),
            format!("addr add {ROOT_V6}/64 dev eth0 nodad"),
            format!("route add {FLOOD_V6_PREFIX}/64 via {FLOODER_V6}"),
        ],
        dir.path(),
    );

    let nwid = zt_wire::network_id::NetworkId(u64::from_str_radix(ADHOC_V4, 16).unwrap());
    let v4 = |id: &Identity| nwid.adhoc_ipv4_address(id.address()).unwrap().to_string();
    let (root_ip, b_ip) = (v4(&root_id), v4(&b_id));
    for target in [&root_ip, &b_ip] {
        let reached = poll(Duration::from_secs(60), || {
            ping_once(&lab, a, target, 2).then_some(())
        });
        assert!(
            reached.is_some(),
            "A never reached {target}\nroot: {}\nA: {}\nB: {}",
            daemons[0].report(),
            daemons[1].report(),
            daemons[2].report()
        );
    }

    let to_root = SocketAddr::from((lab.ip(root), 9993));
    let phase = |name: &str, floods: Vec<Flood>| {
        let ends = Ends {
            lab: &lab,
            api: &apis[0],
            root_pid: daemons[0].pid().expect("root ztd running"),
            pinger: a,
            flooder,
            targets: [&root_ip, &b_ip],
        };
        under_flood(name, &ends, floods, &root_id);
    };
    phase(
        "one /24 and one /64",
        vec![
            Flood {
                sources: (1..=254u8)
                    .map(|h| SocketAddr::from((Ipv4Addr::new(x, y, z, h), 0)))
                    .collect(),
                to: to_root,
            },
            Flood {
                sources: (1..=64)
                    .map(|h| format!("[{FLOOD_V6_PREFIX}{h:x}]:0").parse().unwrap())
                    .collect(),
                to: format!("[{ROOT_V6}]:9993").parse().unwrap(),
            },
        ],
    );
    // Every source in a /24 of its own: only the global budget bounds the identity checks,
    // which then keep the root's identity thread busy.
    phase(
        "1,000 /24s",
        vec![Flood {
            sources: many_prefixes().collect(),
            to: to_root,
        }],
    );
}

/// One address in each of 1,000 /24s (10.80.0.1, 10.80.1.1, …).
fn many_prefixes() -> impl Iterator<Item = SocketAddr> {
    (0..1000u16).map(|i| {
        let [hi, lo] = i.to_be_bytes();
        SocketAddr::from((Ipv4Addr::new(10, 80 + hi, lo, 1), 0))
    })
}

/// Fake HELLOs sent round-robin from `sources` (in the flooder's namespace) to `to`.
struct Flood {
    sources: Vec<SocketAddr>,
    to: SocketAddr,
}

/// Who is measured while a flood runs.
struct Ends<'a> {
    lab: &'a Lab,
    /// The root's API.
    api: &'a Api<'a>,
    root_pid: u32,
    /// The namespace that pings `targets`.
    pinger: usize,
    flooder: usize,
    targets: [&'a str; 2],
}

/// Runs `floods` (each `FLOOD_RATE` per second for `FLOOD_SECONDS`) while the pinger pings
/// both targets, and checks what the root did.
fn under_flood(name: &str, ends: &Ends, floods: Vec<Flood>, root_id: &Identity) {
    let floods: Vec<(Flood, Vec<Vec<u8>>)> = floods
        .into_iter()
        .map(|f| (f, fake_hellos(root_id, FLOOD_RATE * FLOOD_SECONDS)))
        .collect();
    let expected = floods.len() * FLOOD_RATE * FLOOD_SECONDS;
    let stats_before = ends.api.call("GET", "/stats", None).expect("stats");
    let peers_before = ends.api.call("GET", "/peer", None).expect("peers");
    let (cpu_before, rss_before) = cpu_and_rss(ends.root_pid);

    let (sent, pings) = std::thread::scope(|s| {
        let senders: Vec<_> = floods
            .iter()
            .map(|(f, hellos)| {
                s.spawn(move || {
                    ends.lab
                        .enter(ends.flooder)
                        .expect("enter the flooder's namespace");
                    let sockets: Vec<UdpSocket> = f
                        .sources
                        .iter()
                        .map(|source| UdpSocket::bind(source).expect("bind a flood source"))
                        .collect();
                    flood(&sockets, f.to, hellos)
                })
            })
            .collect();
        let pingers: Vec<_> = ends
            .targets
            .iter()
            .map(|target| s.spawn(move || ping_loss(ends.lab, ends.pinger, target)))
            .collect();
        let sent: usize = senders.into_iter().map(|f| f.join().unwrap()).sum();
        let pings: Vec<(u64, u64)> = pingers.into_iter().map(|p| p.join().unwrap()).collect();
        (sent, pings)
    });

    let (cpu_after, rss_after) = cpu_and_rss(ends.root_pid);
    let stats_after = ends.api.call("GET", "/stats", None).expect("stats");
    let peers_after = ends.api.call("GET", "/peer", None).expect("peers");
    let delta = |name: &str| counter(&stats_after, name) - counter(&stats_before, name);
    let dropped = flood_drops(&stats_after) - flood_drops(&stats_before);
    eprintln!(
        "flood from {name}: {sent} fake HELLOs in {FLOOD_SECONDS} s; root dropped {dropped} \
         (rate-limited {}, checked and invalid {}, check queue full {}); root CPU {:.2} s, \
         RSS {rss_before} → {rss_after} kB; pings answered: root {}/{}, B through the root {}/{}",
        delta("dropped_hello_rate_limited"),
        delta("dropped_invalid_identity"),
        delta("dropped_identity_check_queue"),
        cpu_after - cpu_before,
        pings[0].1,
        pings[0].0,
        pings[1].1,
        pings[1].0,
    );
    assert!(
        sent >= expected * 9 / 10,
        "{name}: the flood did not go out: {sent} of {expected}"
    );
    // The flood arrived and was refused (a HELLO the gates let through is checked, and
    // refused then).
    assert!(
        dropped as usize >= sent * 9 / 10,
        "{name}: only {dropped} of {sent} fake HELLOs counted: {stats_after}"
    );
    let peer_count = |v: &Value| v.as_array().map_or(0, Vec::len);
    assert_eq!(
        peer_count(&peers_after),
        peer_count(&peers_before),
        "{name}: the root learned a made-up identity: {peers_after}"
    );
    for (target, (transmitted, received)) in ends.targets.iter().zip(pings) {
        assert_eq!(transmitted, PINGS as u64);
        assert!(
            (transmitted - received) * 100 < transmitted,
            "{name}: pings to {target}: {received} of {transmitted} answered during the flood"
        );
    }
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KB,
        "{name}: root RSS {rss_before} → {rss_after} kB"
    );
}
