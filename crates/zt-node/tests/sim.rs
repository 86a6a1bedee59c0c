//! Root + two leaves in virtual time: coming online, WHOIS via the root, relaying,
//! RENDEZVOUS to a direct path, and falling back to the relay when the direct path dies.

use std::net::SocketAddr;
use zt_node::constants::*;
use zt_node::sim::{make_planet, test_identity, Sim};
use zt_node::{Address, Event, NodeConfig, Role, Sent, Verb};

const STEPS: usize = 200_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Lab {
    sim: Sim,
    root: usize,
    a: usize,
    b: usize,
}

fn lab(seed: u64, latency: u64) -> Lab {
    let mut sim = Sim::new(seed, latency, 0.0);
    let root_addr = addr("10.0.0.1:9993");
    let (planet, _) = make_planet(
        7777,
        1_700_000_000_000,
        &[(test_identity(0), root_addr)],
        seed,
    );
    let root = sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let a = sim.add_node(
        test_identity(1),
        NodeConfig::new(planet.clone()),
        addr("10.0.1.1:9993"),
    );
    let b = sim.add_node(
        test_identity(2),
        NodeConfig::new(planet),
        addr("10.0.2.1:9993"),
    );
    Lab { sim, root, a, b }
}

fn user_message(text: &str) -> Vec<u8> {
    let mut p = 0x1_0000u64.to_be_bytes().to_vec();
    p.extend_from_slice(text.as_bytes());
    p
}

fn received(sim: &Sim, node: usize, from: Address) -> Vec<Vec<u8>> {
    sim.events[node]
        .iter()
        .filter_map(|e| match e {
            Event::UserMessage { source, data, .. } if *source == from => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn has_direct_path(sim: &Sim, node: usize, to: Address) -> bool {
    sim.nodes[node]
        .peers()
        .iter()
        .any(|p| p.address == to && p.direct)
}

#[test]
fn leaves_come_online_and_see_the_root() {
    let mut l = lab(1, 10);
    l.sim.run_for(10_000, STEPS);
    let root_addr = l.sim.nodes[l.root].address();
    for leaf in [l.a, l.b] {
        assert!(l.sim.nodes[leaf].is_online(), "leaf {leaf} online");
        assert!(l.sim.events[leaf].contains(&Event::Online));
        let peers = l.sim.nodes[leaf].peers();
        let root = peers
            .iter()
            .find(|p| p.address == root_addr)
            .expect("root peer");
        assert_eq!(root.role, Role::Planet);
        assert!(root.direct);
        assert_eq!(root.version, Some(NodeConfig::DEFAULT_VERSION));
        assert_eq!(root.protocol_version, Some(PROTOCOL_VERSION));
        // Latency is the virtual round trip: 2 × 10 ms.
        assert_eq!(root.latency_ms, Some(20));
        assert_eq!(root.paths.len(), 1);
        assert!(root.paths[0].preferred && root.paths[0].active);
    }
    // The root learned both leaves' paths from their OKs.
    let root_peers = l.sim.nodes[l.root].peers();
    for leaf in [l.a, l.b] {
        let a = l.sim.nodes[leaf].address();
        let p = root_peers
            .iter()
            .find(|p| p.address == a)
            .expect("leaf known to root");
        assert!(p.direct);
        assert_eq!(p.role, Role::Leaf);
    }
    assert!(l.sim.nodes[l.root].is_online());
    // Per-verb counts: each leaf's HELLOs reached the root, whose OKs came back.
    let root_stats = l.sim.nodes[l.root].stats().clone();
    let mut hellos_sent = 0;
    for leaf in [l.a, l.b] {
        let s = l.sim.nodes[leaf].stats();
        assert!(s.packets_sent.get(Verb::Hello) >= 1, "{s:?}");
        assert_eq!(s.packets_sent.get(Verb::Hello), s.hello_sent);
        assert!(s.packets_received.get(Verb::Ok) >= 1, "{s:?}");
        hellos_sent += s.hello_sent;
    }
    assert!(root_stats.packets_received.get(Verb::Hello) >= 2);
    assert!(root_stats.packets_received.get(Verb::Hello) <= hellos_sent);
    assert!(root_stats.packets_sent.get(Verb::Ok) >= 2);
    // Nothing was dropped for a bad reason.
    for n in &l.sim.nodes {
        let s = n.stats();
        assert_eq!(
            s.dropped_bad_mac + s.dropped_replay + s.dropped_malformed,
            0,
            "{s:?}"
        );
    }
}

#[test]
fn whois_relay_rendezvous_then_fallback_to_relay() {
    let mut l = lab(2, 10);
    l.sim.run_for(10_000, STEPS);
    let (a_addr, b_addr) = (l.sim.nodes[l.a].address(), l.sim.nodes[l.b].address());

    // A does not know B yet: the message waits for a WHOIS answered by the root, then goes
    // through the root (B learns A by WHOIS too).
    let now = l.sim.now;
    let sent =
        l.sim.nodes[l.a].send_to_peer(now, b_addr, Verb::UserMessage, &user_message("first"));
    assert_eq!(sent, Ok(Sent::QueuedForWhois));
    l.sim.run_for(200, STEPS);
    assert_eq!(received(&l.sim, l.b, a_addr), vec![b"first".to_vec()]);
    let root_stats = l.sim.nodes[l.root].stats().clone();
    assert!(root_stats.relayed >= 1, "{root_stats:?}");
    assert!(root_stats.rendezvous_sent >= 1, "{root_stats:?}");
    assert!(l.sim.nodes[l.a].stats().whois_sent >= 1);

    // RENDEZVOUS led to a direct path both ways.
    l.sim.run_for(5_000, STEPS);
    assert!(
        has_direct_path(&l.sim, l.a, b_addr),
        "A→B direct: {:?}",
        l.sim.nodes[l.a].peers()
    );
    assert!(has_direct_path(&l.sim, l.b, a_addr), "B→A direct");
    assert!(l.sim.events[l.a]
        .iter()
        .any(|e| matches!(e, Event::PathUp { peer, .. } if *peer == b_addr)));

    // Now traffic flows directly: the root relays nothing more.
    let relayed_before = l.sim.nodes[l.root].stats().relayed;
    for i in 0..5 {
        let now = l.sim.now;
        let r = l.sim.nodes[l.a].send_to_peer(
            now,
            b_addr,
            Verb::UserMessage,
            &user_message(&format!("direct {i}")),
        );
        assert!(matches!(r, Ok(Sent::Now { .. })));
        l.sim.run_for(100, STEPS);
    }
    assert_eq!(l.sim.nodes[l.root].stats().relayed, relayed_before);
    assert_eq!(received(&l.sim, l.b, a_addr).len(), 6);

    // Cut the direct link. After the path expiry the peers fall back to the relay.
    let (pa, pb) = (l.sim.addrs[l.a], l.sim.addrs[l.b]);
    l.sim.filter = Some(Box::new(move |from, to| {
        (from == pa && to == pb) || (from == pb && to == pa)
    }));
    l.sim
        .run_for(PATH_EXPIRATION + 2 * PING_CHECK_INTERVAL, STEPS);
    assert!(!has_direct_path(&l.sim, l.a, b_addr));
    assert!(l.sim.events[l.a]
        .iter()
        .any(|e| matches!(e, Event::PathDown { peer, .. } if *peer == b_addr)));
    let relayed_before = l.sim.nodes[l.root].stats().relayed;
    let now = l.sim.now;
    l.sim.nodes[l.a]
        .send_to_peer(
            now,
            b_addr,
            Verb::UserMessage,
            &user_message("relayed again"),
        )
        .unwrap();
    l.sim.run_for(100, STEPS);
    assert_eq!(
        received(&l.sim, l.b, a_addr).last(),
        Some(&b"relayed again".to_vec())
    );
    assert!(l.sim.nodes[l.root].stats().relayed > relayed_before);
    // Everyone stayed online with the root throughout.
    assert!(l.sim.nodes[l.a].is_online() && l.sim.nodes[l.b].is_online());
}

#[test]
fn large_packets_are_fragmented_and_reassembled_through_the_relay() {
    let mut l = lab(3, 5);
    l.sim.run_for(10_000, STEPS);
    let b_addr = l.sim.nodes[l.b].address();
    let a_addr = l.sim.nodes[l.a].address();
    // Incompressible payload of ~5 KB: four pieces.
    let mut payload = 0x1_0000u64.to_be_bytes().to_vec();
    let mut x: u32 = 12345;
    for _ in 0..5000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        payload.push((x >> 16) as u8);
    }
    let now = l.sim.now;
    l.sim.nodes[l.a]
        .send_to_peer_with(now, b_addr, Verb::UserMessage, &payload, false)
        .unwrap();
    l.sim.run_for(200, STEPS);
    assert_eq!(received(&l.sim, l.b, a_addr), vec![payload[8..].to_vec()]);
}

#[test]
fn lossy_network_still_converges() {
    let mut sim = Sim::new(9, 20, 0.2);
    let root_addr = addr("10.0.0.1:9993");
    let (planet, _) = make_planet(7777, 1, &[(test_identity(0), root_addr)], 9);
    sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let a = sim.add_node(
        test_identity(1),
        NodeConfig::new(planet),
        addr("10.0.1.1:9993"),
    );
    sim.run_for(60_000, STEPS);
    assert!(sim.nodes[a].is_online());
    assert!(sim.dropped > 0);
}

#[test]
fn frames_keep_a_direct_path_alive_and_idle_peers_are_forgotten() {
    let mut l = lab(4, 10);
    l.sim.run_for(10_000, STEPS);
    let (a_addr, b_addr) = (l.sim.nodes[l.a].address(), l.sim.nodes[l.b].address());
    let frame = |nwid: u64| {
        let mut f = nwid.to_be_bytes().to_vec();
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45; 40]);
        f
    };
    // Frame traffic both ways every 20 s for 10 minutes: the direct path stays up.
    for _ in 0..30 {
        for (from, to) in [(l.a, b_addr), (l.b, a_addr)] {
            let now = l.sim.now;
            l.sim.nodes[from]
                .send_to_peer(now, to, Verb::Frame, &frame(0x1122))
                .unwrap();
        }
        l.sim.run_for(20_000, STEPS);
    }
    assert!(has_direct_path(&l.sim, l.a, b_addr));
    assert!(!l.sim.events[l.a]
        .iter()
        .any(|e| matches!(e, Event::PathDown { peer, .. } if *peer == b_addr)));
    // Silence: keepalives stop after the activity window, the path lapses, and B is
    // forgotten once nothing at all was heard for another activity window.
    l.sim
        .run_for(2 * PEER_ACTIVITY_TIMEOUT + 2 * HOUSEKEEPING_PERIOD, STEPS);
    assert!(l.sim.events[l.a]
        .iter()
        .any(|e| matches!(e, Event::PathDown { peer, .. } if *peer == b_addr)));
    assert!(
        l.sim.nodes[l.a].peers().iter().all(|p| p.address != b_addr),
        "B forgotten"
    );
    assert!(l.sim.nodes[l.a].stats().peers_expired >= 1);
    // The root stays: upstreams are never forgotten.
    assert!(l.sim.nodes[l.a].is_online());
}
