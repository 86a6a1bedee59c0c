//! Packets per second on one core: how many a root relays (two leaves' 1400-byte heads,
//! really armored, driven straight through a root `Node`), and how many authenticated
//! AES-GMAC-SIV packets a node receives (dearmor, replay check, dispatch).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::net::SocketAddr;
use zt_crypto::armor::{CipherSuite, PeerKey};
use zt_node::sim::{make_planet, test_identity, Sim};
use zt_node::{LocalSocketId, NodeConfig, Verb};
use zt_wire::verbs::packet::{build, OutgoingPacket};

fn relay(c: &mut Criterion) {
    // Bring up root + two leaves in the simulator so the root knows both leaves and their
    // paths, exactly as after a real start.
    let mut sim = Sim::new(1, 5, 0.0);
    let root_addr: SocketAddr = "10.0.0.1:9993".parse().unwrap();
    let (planet, _) = make_planet(1, 1, &[(test_identity(0), root_addr)], 1);
    let root = sim.add_node(test_identity(0), NodeConfig::new(planet.clone()), root_addr);
    let a_addr: SocketAddr = "10.0.1.1:9993".parse().unwrap();
    sim.add_node(test_identity(1), NodeConfig::new(planet.clone()), a_addr);
    sim.add_node(
        test_identity(2),
        NodeConfig::new(planet),
        "10.0.2.1:9993".parse().unwrap(),
    );
    sim.run_for(10_000, 100_000);
    let mut root_node = sim.nodes.swap_remove(root);
    let now = sim.now;

    let (a, b) = (test_identity(1), test_identity(2));
    let key = PeerKey::new(a.agree(&b).unwrap());
    let packets: Vec<Vec<u8>> = (0..1024u64)
        .map(|i| {
            let p = OutgoingPacket {
                destination: b.address(),
                source: a.address(),
                verb: Verb::Frame,
                payload: &[0xab; 1400 - 28],
                packet_id: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                suite: CipherSuite::AesGmacSiv,
                compress: false,
                mtu: 1432,
            };
            build(&p, &key).unwrap().datagrams.remove(0)
        })
        .collect();

    let mut g = c.benchmark_group("root");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("relay_1400B_heads", |bench| {
        bench.iter_batched_ref(
            || (),
            |_| {
                for p in &packets {
                    root_node.handle_datagram(now, LocalSocketId(0), a_addr, p);
                }
                while root_node.poll_transmit().is_some() {}
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    assert!(root_node.stats().relayed >= packets.len() as u64);
    assert_eq!(root_node.stats().dropped_relay_no_route, 0);

    // The root receiving USER_MESSAGEs from leaf A: every packet fresh (unique ID), built
    // outside the timed part.
    let key_root = PeerKey::new(a.agree(&test_identity(0)).unwrap());
    let root_address = test_identity(0).address();
    let mut next_id = 1u64 << 40;
    let mut g = c.benchmark_group("node");
    const BATCH: usize = 256;
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("receive_1400B_aes", |bench| {
        bench.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| {
                        next_id += 1;
                        let p = OutgoingPacket {
                            destination: root_address,
                            source: a.address(),
                            verb: Verb::UserMessage,
                            payload: &[0x5a; 1400 - 28],
                            packet_id: next_id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                            suite: CipherSuite::AesGmacSiv,
                            compress: false,
                            mtu: 1432,
                        };
                        build(&p, &key_root).unwrap().datagrams.remove(0)
                    })
                    .collect::<Vec<_>>()
            },
            |batch| {
                for p in &batch {
                    root_node.handle_datagram(now, LocalSocketId(0), a_addr, p);
                }
                while root_node.poll_event().is_some() {}
                while root_node.poll_transmit().is_some() {}
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    assert_eq!(root_node.stats().dropped_bad_mac, 0);
    assert_eq!(root_node.stats().dropped_replay, 0);
}

criterion_group!(benches, relay);
criterion_main!(benches);
