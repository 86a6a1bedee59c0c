//! Hostile and broken input: random bytes, truncations, bit flips, invalid identities,
//! replays. Everything must be dropped and counted, nothing may panic.

mod common;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use zt_node::sim::{make_planet, test_identity, Sim};
use zt_node::{Identity, NodeConfig, Verb};

const STEPS: usize = 200_000;

/// A recorded root + two leaves run, including WHOIS, relaying and direct traffic.
fn recorded_run() -> Sim {
    let mut sim = Sim::new(11, 5, 0.0);
    sim.record = true;
    let root_addr = sa("10.0.0.1:9993");
    let (planet, _) = make_planet(1, 1, &[(test_identity(0), root_addr)], 1);
    sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let a = sim.add_node(
        test_identity(1),
        NodeConfig::new(planet.clone()),
        sa("10.0.1.1:9993"),
    );
    let b = sim.add_node(
        test_identity(2),
        NodeConfig::new(planet),
        sa("10.0.2.1:9993"),
    );
    sim.run_for(6_000, STEPS);
    let b_addr = sim.nodes[b].address();
    for i in 0..3 {
        let now = sim.now;
        let mut big = vec![0u8; 8];
        big.extend((0..3000u32).map(|x| (x * 7 + i) as u8));
        sim.nodes[a]
            .send_to_peer(now, b_addr, Verb::UserMessage, &big)
            .unwrap();
        sim.run_for(2_000, STEPS);
    }
    sim
}

fn node_index(sim: &Sim, addr: SocketAddr) -> usize {
    sim.addrs.iter().position(|a| *a == addr).unwrap()
}

#[test]
fn random_datagrams_are_dropped_without_panic() {
    let mut sim = recorded_run();
    let mut rng = StdRng::seed_from_u64(3);
    let before: Vec<u64> = sim.nodes.iter().map(|n| n.stats().rx_packets).collect();
    for i in 0..3000 {
        let len = rng.gen_range(0..1600);
        let mut d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Aim some at the node's own address so they reach the MAC check.
        let to = i % sim.nodes.len();
        if d.len() >= 28 && i % 2 == 0 {
            d[8..13].copy_from_slice(&sim.nodes[to].address().to_bytes());
            d[13..18].copy_from_slice(&sim.nodes[(to + 1) % 3].address().to_bytes());
        }
        sim.inject(sa("10.9.9.9:1234"), to, &d);
    }
    let after: Vec<u64> = sim.nodes.iter().map(|n| n.stats().rx_packets).collect();
    assert_eq!(before, after, "no random datagram was accepted");
    let total_drops: u64 = sim
        .nodes
        .iter()
        .map(|n| {
            let s = n.stats();
            s.dropped_runt
                + s.dropped_bad_mac
                + s.dropped_bad_fragment
                + s.dropped_unsupported_cipher
                + s.dropped_relay_no_route
                + s.dropped_relay_not_allowed
                + s.dropped_bad_source
                + s.rx_queue_dropped
                + s.legacy_beacons
                + s.dropped_relay_hop_limit
                + s.dropped_malformed
                + s.dropped_hello_address_mismatch
                + s.dropped_old_protocol
        })
        .sum();
    assert!(total_drops > 1000, "drops are counted: {total_drops}");
}

#[test]
fn truncated_and_bit_flipped_packets_are_dropped() {
    let mut sim = recorded_run();
    let log = std::mem::take(&mut sim.log);
    assert!(log.len() > 20);
    let mut flipped = 0;
    for (from, to, d) in &log {
        let i = node_index(&sim, *to);
        let accepted_before = sim.nodes[i].stats().rx_packets;
        for cut in [
            0,
            1,
            13,
            15,
            16,
            17,
            27,
            28,
            29,
            d.len() / 2,
            d.len().saturating_sub(1),
        ] {
            if cut < d.len() {
                sim.inject(*from, i, &d[..cut]);
            }
        }
        // Flip one bit after the header of a complete packet addressed to the node itself:
        // the MAC must catch it.
        if d.len() > 30
            && d[13] != 0xff
            && d[18] & 0x40 == 0
            && d[8..13] == sim.nodes[i].address().to_bytes()
        {
            let mut x = d.clone();
            x[29] ^= 0x10;
            let bad_mac = sim.nodes[i].stats().dropped_bad_mac;
            sim.inject(*from, i, &x);
            assert_eq!(sim.nodes[i].stats().dropped_bad_mac, bad_mac + 1);
            flipped += 1;
        }
        assert_eq!(
            sim.nodes[i].stats().rx_packets,
            accepted_before,
            "a truncated packet was accepted"
        );
    }
    assert!(flipped > 10);
}

#[test]
fn replayed_packets_are_dropped() {
    let mut sim = recorded_run();
    let log = std::mem::take(&mut sim.log);
    let mut replayed = 0;
    for (from, to, d) in &log {
        let i = node_index(&sim, *to);
        // Whole packets (not fragments) addressed to the receiving node.
        if d.len() >= 28
            && d[13] != 0xff
            && d[18] & 0x40 == 0
            && d[8..13] == sim.nodes[i].address().to_bytes()
        {
            let before = sim.nodes[i].stats().dropped_replay;
            sim.inject(*from, i, d);
            assert_eq!(
                sim.nodes[i].stats().dropped_replay,
                before + 1,
                "replay of {:02x?}",
                &d[..28]
            );
            replayed += 1;
        }
    }
    assert!(replayed > 20);
}

#[test]
fn hello_with_an_invalid_identity_is_dropped() {
    // The address does not match the key (vectors.json identity_negatives).
    let bad = Identity::from_string("3dd3377c71:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd").unwrap();
    let mut r = root();
    let hello = craft_hello(&bad, &root_identity(), T0, (4242, 1000), 99);
    feed(&mut r, T0, "10.0.5.5:9993", &hello);
    assert_eq!(r.stats().dropped_invalid_identity, 1);
    assert!(r.peers().iter().all(|p| p.address != bad.address()));
    assert!(drain(&mut r).is_empty(), "no reply to an invalid identity");
    // A second try from the same IP bucket within 2 s is refused before any crypto.
    let hello = craft_hello(&bad, &root_identity(), T0, (4242, 1000), 100);
    feed(&mut r, T0 + 500, "10.0.5.5:9993", &hello);
    assert_eq!(r.stats().dropped_hello_rate_limited, 1);

    // A HELLO whose source field differs from its identity.
    let mut h = craft_hello(&test_identity(3), &root_identity(), T0, (4242, 1000), 101);
    h[13..18].copy_from_slice(&test_identity(4).address().to_bytes());
    feed(&mut r, T0 + 5_000, "10.0.5.6:9993", &h);
    assert_eq!(r.stats().dropped_hello_address_mismatch, 1);

    // A valid identity with a wrong MAC.
    let mut h = craft_hello(&test_identity(3), &root_identity(), T0, (4242, 1000), 102);
    h[20] ^= 1;
    feed(&mut r, T0 + 10_000, "10.0.5.7:9993", &h);
    assert_eq!(r.stats().dropped_bad_mac, 1);
    assert!(r
        .peers()
        .iter()
        .all(|p| p.address != test_identity(3).address()));
}

#[test]
fn identity_collision_gets_an_error_and_changes_nothing() {
    let mut r = root();
    // Identity 3 is known to the root.
    feed(
        &mut r,
        T0,
        "10.0.5.5:9993",
        &craft_hello(&test_identity(3), &root_identity(), T0, (4242, 1000), 1),
    );
    drain(&mut r);
    let impostor = colliding_identity(&test_identity(3).address().to_string(), 8);
    feed(
        &mut r,
        T0 + 10,
        "10.0.6.6:9993",
        &craft_hello(&impostor, &root_identity(), T0, (4242, 1000), 2),
    );
    assert_eq!(r.stats().identity_collisions, 1);
    let out = drain(&mut r);
    assert_eq!(out.len(), 1);
    let (verb, body) =
        open(&out[0], &impostor, &root_identity()).expect("ERROR armored for the impostor");
    assert_eq!(verb, u8::from(Verb::Error));
    assert_eq!(body[0], u8::from(Verb::Hello));
    assert_eq!(body[9], 0x04, "IDENTITY_COLLISION");
    // The known peer keeps its identity and its path.
    let p = r
        .peers()
        .into_iter()
        .find(|p| p.address == test_identity(3).address())
        .unwrap();
    assert!(p.paths.iter().all(|x| x.remote != sa("10.0.6.6:9993")));
}
