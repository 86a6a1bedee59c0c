//! One test per VL1 verb handler and timer, driving a single node with crafted packets from
//! identities whose secrets we hold (so replies are decrypted and checked byte by byte).

mod common;
use common::*;
use zt_crypto::armor::CipherSuite;
use zt_node::constants::*;
use zt_node::sim::test_identity;
use zt_node::{Event, Identity, Node, SendError, Sent, Verb, World};
use zt_wire::inet::InetAddress;
use zt_wire::verbs::error::{ErrorBody, ErrorCode, ErrorPayload};
use zt_wire::verbs::hello::{Hello, WorldRef};
use zt_wire::verbs::ok::{OkBody, OkPayload};
use zt_wire::verbs::push_direct_paths::{
    DirectPath, PathAddress, PushDirectPaths, PATH_FLAG_FORGET,
};
use zt_wire::verbs::rendezvous::Rendezvous;

const LEAF_EP: &str = "10.0.1.1:9993";
const PEER2_EP: &str = "10.0.2.1:9993";

/// The root's OK(HELLO), seeing the leaf at its own address.
fn ok_hello_from_root(in_re: u64, timestamp: u64, worlds: &[u8]) -> Vec<u8> {
    ok_hello_body(in_re, timestamp, InetAddress::from(sa(LEAF_EP)), worlds)
}

fn v(verb: Verb) -> u8 {
    u8::from(verb)
}

fn push_body(addrs: &[&str]) -> Vec<u8> {
    let paths = addrs
        .iter()
        .map(|a| DirectPath {
            flags: 0,
            extension: &[],
            address: match sa(a) {
                std::net::SocketAddr::V4(x) => PathAddress::V4(x),
                std::net::SocketAddr::V6(x) => PathAddress::V6(x),
            },
        })
        .collect();
    let mut b = Vec::new();
    PushDirectPaths { paths }.write(&mut b);
    b
}

/// A leaf that HELLOed the root and got its OK at T0 + 20.
fn online_leaf() -> (Node, u64) {
    let mut l = leaf();
    l.handle_timeout(T0);
    let out = drain(&mut l);
    let hello = out
        .iter()
        .find(|t| t.remote == sa(ROOT_EP))
        .expect("HELLO to the root");
    assert_eq!(
        hello.data[27],
        v(Verb::Hello),
        "HELLO's verb byte is in clear"
    );
    let hello_id = pid(&hello.data);
    let ok = craft(
        &root_identity(),
        &test_identity(1),
        Verb::Ok,
        &ok_hello_from_root(hello_id, T0, &[]),
        CipherSuite::Poly1305Salsa2012,
        500,
    );
    feed(&mut l, T0 + 20, ROOT_EP, &ok);
    (l, hello_id)
}

/// Makes identity 2 known to the node with a HELLO from PEER2_EP.
fn introduce_peer2(n: &mut Node, now: u64, to: &Identity) {
    feed(
        n,
        now,
        PEER2_EP,
        &craft_hello(&test_identity(2), to, now, (4242, 1000), 0x2222),
    );
    drain(n);
}

fn events(n: &mut Node) -> Vec<Event> {
    std::iter::from_fn(|| n.poll_event()).collect()
}

#[test]
fn hello_to_roots_and_ok_hello_bring_the_node_online() {
    let mut l = leaf();
    assert!(!l.is_online());
    l.handle_timeout(T0);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1, "one HELLO to the only (IPv4) stable endpoint");
    assert_eq!(out[0].remote, sa(ROOT_EP));
    assert_eq!(suite_bits(&out[0].data), 0, "HELLO uses suite 0");
    // Authenticate and parse our own HELLO: identity, planet, where we sent it.
    let (verb, body) = open(&out[0], &root_identity(), &test_identity(1)).unwrap();
    assert_eq!(verb, v(Verb::Hello));
    let h = Hello::read(&body).unwrap();
    assert_eq!(h.identity.address(), test_identity(1).address());
    assert_eq!(
        h.planet,
        Some(WorldRef {
            id: 4242,
            timestamp: 1000
        })
    );
    assert_eq!(h.physical_destination, Some(InetAddress::from(sa(ROOT_EP))));
    assert_eq!(h.timestamp, T0);
    assert_eq!(h.moons, Some(vec![]));

    let (mut l, _) = online_leaf();
    assert!(l.is_online());
    let ev = events(&mut l);
    assert!(ev.contains(&Event::Online));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::PathUp { remote, .. } if *remote == sa(ROOT_EP))));
    let root = l
        .peers()
        .into_iter()
        .find(|p| p.address == root_identity().address())
        .unwrap();
    assert_eq!(root.latency_ms, Some(20));
    assert_eq!(root.version, Some((1, 14, 1)));
    assert!(root.direct);
}

#[test]
fn unexpected_ok_is_dropped() {
    let (mut l, _) = online_leaf();
    let ok = craft(
        &root_identity(),
        &test_identity(1),
        Verb::Ok,
        &ok_hello_from_root(0xdead_beef_0000_0000, T0, &[]),
        CipherSuite::AesGmacSiv,
        501,
    );
    feed(&mut l, T0 + 30, ROOT_EP, &ok);
    assert_eq!(l.stats().dropped_unexpected_reply, 1);
}

#[test]
fn echo_is_answered_with_the_same_bytes_and_rate_gated() {
    let (mut l, _) = online_leaf();
    drain(&mut l);
    let echo = craft(
        &root_identity(),
        &test_identity(1),
        Verb::Echo,
        b"ping",
        CipherSuite::AesGmacSiv,
        600,
    );
    feed(&mut l, T0 + 100, ROOT_EP, &echo);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(suite_bits(&out[0].data), 3, "root speaks protocol 12: AES");
    let (verb, body) = open(&out[0], &root_identity(), &test_identity(1)).unwrap();
    assert_eq!(verb, v(Verb::Ok));
    assert_eq!(body[0], v(Verb::Echo));
    assert_eq!(&body[1..9], &echo[0..8]);
    assert_eq!(&body[9..], b"ping");
    from_root(&mut l, T0 + 150, Verb::Echo, b"x", 601);
    assert_eq!(l.stats().echo_rate_limited, 1);
    assert!(drain(&mut l).is_empty());
    from_root(&mut l, T0 + 300, Verb::Echo, b"y", 602);
    assert_eq!(drain(&mut l).len(), 1);
}

#[test]
fn whois_is_rate_limited_on_leaves_but_not_on_roots() {
    let (mut l, _) = online_leaf();
    introduce_peer2(&mut l, T0 + 50, &test_identity(1));
    let q = root_identity().address().to_bytes();
    feed(
        &mut l,
        T0 + 100,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Whois,
            &q,
            CipherSuite::Poly1305Salsa2012,
            700,
        ),
    );
    feed(
        &mut l,
        T0 + 150,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Whois,
            &q,
            CipherSuite::Poly1305Salsa2012,
            701,
        ),
    );
    assert_eq!(l.stats().whois_answered, 1);
    assert_eq!(l.stats().whois_rate_limited, 1);

    let mut r = root();
    introduce_peer2(&mut r, T0, &root_identity());
    for i in 0..5 {
        feed(
            &mut r,
            T0 + 10 + i,
            PEER2_EP,
            &craft(
                &test_identity(2),
                &root_identity(),
                Verb::Whois,
                &test_identity(2).address().to_bytes(),
                CipherSuite::Poly1305Salsa2012,
                710 + i,
            ),
        );
    }
    assert_eq!(r.stats().whois_answered, 5);
    let out = drain(&mut r);
    let (verb, body) = open(&out[0], &test_identity(2), &root_identity()).unwrap();
    assert_eq!((verb, body[0]), (v(Verb::Ok), v(Verb::Whois)));
    let (id, _) = Identity::read_binary(&body[9..]).unwrap();
    assert_eq!(id, test_identity(2).to_public());
    // Unknown addresses get no answer at all.
    feed(
        &mut r,
        T0 + 50,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &root_identity(),
            Verb::Whois,
            &[1, 2, 3, 4, 5],
            CipherSuite::Poly1305Salsa2012,
            720,
        ),
    );
    assert_eq!(r.stats().whois_answered, 5);
}

#[test]
fn whois_request_retry_and_answer_only_from_upstream() {
    let (mut l, _) = online_leaf();
    drain(&mut l);
    let target = test_identity(3);
    let sent = l.send_to_peer(
        T0 + 100,
        target.address(),
        Verb::UserMessage,
        &[0, 0, 0, 0, 0, 1, 0, 0, 7],
    );
    assert_eq!(sent, Ok(Sent::QueuedForWhois));
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].remote, sa(ROOT_EP));
    let (verb, body) = open(&out[0], &root_identity(), &test_identity(1)).unwrap();
    assert_eq!(
        (verb, body.as_slice()),
        (v(Verb::Whois), &target.address().to_bytes()[..])
    );
    let whois_id = pid(&out[0].data);

    // Retry after 500 ms, not before.
    l.handle_timeout(T0 + 400);
    assert!(drain(&mut l)
        .iter()
        .all(
            |t| open(t, &root_identity(), &test_identity(1)).map(|x| x.0) != Some(v(Verb::Whois))
        ));
    l.handle_timeout(T0 + 600);
    assert!(drain(&mut l)
        .iter()
        .any(
            |t| open(t, &root_identity(), &test_identity(1)).map(|x| x.0) == Some(v(Verb::Whois))
        ));

    // An OK(WHOIS) from a non-upstream is ignored.
    introduce_peer2(&mut l, T0 + 610, &test_identity(1));
    let mut body = Vec::new();
    OkPayload {
        in_re_verb: Verb::Whois,
        in_re_packet_id: whois_id,
        body: OkBody::Whois(vec![target.to_public()]),
    }
    .write(&mut body);
    feed(
        &mut l,
        T0 + 620,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Ok,
            &body,
            CipherSuite::Poly1305Salsa2012,
            800,
        ),
    );
    assert_eq!(l.stats().dropped_not_from_upstream, 1);

    // From the root it teaches the identity and releases the queued packet (via the root).
    from_root(&mut l, T0 + 630, Verb::Ok, &body, 801);
    assert!(events(&mut l).contains(&Event::PeerLearned {
        address: target.address()
    }));
    let out = drain(&mut l);
    let queued: Vec<_> = out
        .iter()
        .filter_map(|t| open(t, &target, &test_identity(1)))
        .collect();
    assert_eq!(
        queued,
        vec![(v(Verb::UserMessage), vec![0, 0, 0, 0, 0, 1, 0, 0, 7])]
    );
    assert!(
        out.iter().all(|t| t.remote == sa(ROOT_EP)),
        "relayed through the root"
    );
}

#[test]
fn rendezvous_is_acted_on_only_from_upstreams_and_for_usable_addresses() {
    let (mut l, _) = online_leaf();
    introduce_peer2(&mut l, T0 + 50, &test_identity(1));
    let rv = |ep: &str| {
        let mut b = Vec::new();
        Rendezvous {
            flags: 0,
            peer: test_identity(2).address(),
            endpoint: sa(ep),
        }
        .write(&mut b);
        b
    };
    feed(
        &mut l,
        T0 + 100,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Rendezvous,
            &rv("10.0.2.2:9993"),
            CipherSuite::Poly1305Salsa2012,
            900,
        ),
    );
    assert_eq!(l.stats().dropped_not_from_upstream, 1);
    from_root(
        &mut l,
        T0 + 110,
        Verb::Rendezvous,
        &rv("127.0.0.1:9993"),
        901,
    );
    assert_eq!(l.stats().paths_rejected, 1);
    assert!(drain(&mut l).is_empty());
    from_root(
        &mut l,
        T0 + 120,
        Verb::Rendezvous,
        &rv("10.0.2.2:9993"),
        902,
    );
    let out = drain(&mut l);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].remote, out[0].data.len(), out[0].ttl),
        (sa("10.0.2.2:9993"), 4, Some(2))
    );
    assert_eq!(out[1].remote, sa("10.0.2.2:9993"));
    let (verb, _) = open(&out[1], &test_identity(2), &test_identity(1)).unwrap();
    assert_eq!(verb, v(Verb::Echo), "peer 2 speaks protocol 12: ECHO probe");
}

#[test]
fn rendezvous_for_a_peer_being_looked_up_waits_for_its_identity() {
    let (mut l, _) = online_leaf();
    drain(&mut l);
    let peer = test_identity(3);
    let mut b = Vec::new();
    Rendezvous {
        flags: 0,
        peer: peer.address(),
        endpoint: sa("10.0.3.3:9993"),
    }
    .write(&mut b);
    from_root(&mut l, T0 + 100, Verb::Rendezvous, &b, 950);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1, "only a WHOIS, no contact yet");
    let whois_id = pid(&out[0].data);
    let mut body = Vec::new();
    OkPayload {
        in_re_verb: Verb::Whois,
        in_re_packet_id: whois_id,
        body: OkBody::Whois(vec![peer.to_public()]),
    }
    .write(&mut body);
    from_root(&mut l, T0 + 130, Verb::Ok, &body, 951);
    let out = drain(&mut l);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].remote, out[0].ttl), (sa("10.0.3.3:9993"), Some(2)));
    let (verb, _) = open(&out[1], &peer, &test_identity(1)).unwrap();
    assert_eq!(verb, v(Verb::Hello), "version unknown: HELLO probe");
}

#[test]
fn push_direct_paths_is_checked_and_rate_gated() {
    let (mut l, _) = online_leaf();
    introduce_peer2(&mut l, T0 + 50, &test_identity(1));
    let mut body = push_body(&["10.0.2.3:9993", "127.0.0.1:9993", "[fe80::1]:9993"]);
    // Append a "forget" record by hand.
    body[1] += 1;
    body.extend_from_slice(&[PATH_FLAG_FORGET, 0, 0, 4, 6, 10, 0, 2, 4, 0x27, 0x09]);
    feed(
        &mut l,
        T0 + 100,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::PushDirectPaths,
            &body,
            CipherSuite::Poly1305Salsa2012,
            1000,
        ),
    );
    assert_eq!(l.stats().paths_rejected, 2);
    let out = drain(&mut l);
    let remotes: Vec<_> = out.iter().map(|t| t.remote).collect();
    assert_eq!(remotes, vec![sa("10.0.2.3:9993")]);
    for i in 1..10 {
        feed(
            &mut l,
            T0 + 100 + i * 10,
            PEER2_EP,
            &craft(
                &test_identity(2),
                &test_identity(1),
                Verb::PushDirectPaths,
                &body,
                CipherSuite::Poly1305Salsa2012,
                1000 + i,
            ),
        );
    }
    assert_eq!(
        l.stats().push_rate_limited,
        2,
        "8 handled within the cutoff window"
    );
}

#[test]
fn push_direct_paths_is_sent_once_trust_is_established() {
    let (mut l, _) = online_leaf();
    introduce_peer2(&mut l, T0 + 50, &test_identity(1));
    l.set_local_addresses(vec![sa("192.168.1.10:9993")]);
    l.note_trusted_packet(
        T0 + 60,
        test_identity(2).address(),
        zt_node::LocalSocketId(0),
        sa(PEER2_EP),
    );
    feed(
        &mut l,
        T0 + 100,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Nop,
            &[],
            CipherSuite::Poly1305Salsa2012,
            1100,
        ),
    );
    let pushes: Vec<_> = drain(&mut l)
        .iter()
        .filter_map(|t| open(t, &test_identity(2), &test_identity(1)))
        .filter(|(verb, _)| *verb == v(Verb::PushDirectPaths))
        .collect();
    assert_eq!(pushes.len(), 1);
    let recs = PushDirectPaths::read(&pushes[0].1).unwrap();
    let addrs: Vec<_> = recs
        .paths
        .iter()
        .filter_map(|r| match r.address {
            PathAddress::V4(a) => Some(std::net::SocketAddr::V4(a)),
            _ => None,
        })
        .collect();
    assert!(addrs.contains(&sa("192.168.1.10:9993")));
    assert!(
        addrs.contains(&sa(LEAF_EP)),
        "external address reported by the root"
    );
}

#[test]
fn identity_collision_error_counts_only_from_upstreams() {
    let (mut l, hello_id) = online_leaf();
    introduce_peer2(&mut l, T0 + 50, &test_identity(1));
    events(&mut l);
    let mut body = Vec::new();
    ErrorPayload {
        in_re_verb: Verb::Hello,
        in_re_packet_id: hello_id,
        code: ErrorCode::IdentityCollision,
        body: ErrorBody::Other(&[]),
    }
    .write(&mut body);
    feed(
        &mut l,
        T0 + 100,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Error,
            &body,
            CipherSuite::Poly1305Salsa2012,
            1200,
        ),
    );
    assert!(events(&mut l).is_empty());
    from_root(&mut l, T0 + 110, Verb::Error, &body, 1201);
    assert_eq!(
        events(&mut l),
        vec![Event::IdentityCollision {
            reporter: root_identity().address()
        }]
    );
}

#[test]
fn newer_signed_planet_from_the_root_is_accepted() {
    let mut l = leaf();
    l.handle_timeout(T0);
    let hello_id = pid(&drain(&mut l)[0].data);
    let (_, signer) = planet(1000);
    // A revision signed by the planet's update key, with a different root endpoint.
    let newer = World::new_signed(
        zt_wire::world::WorldType::Planet,
        4242,
        2000,
        signer.public,
        vec![zt_wire::world::Root {
            identity: root_identity().to_public(),
            stable_endpoints: vec![zt_wire::inet::InetAddress::new(
                sa("10.0.0.2:9993").ip(),
                9993,
            )],
        }],
        &signer,
    )
    .unwrap();
    // A revision signed by some other key.
    let forged_signer = zt_crypto::c25519::KeyPair::generate(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1),
    );
    let forged = World::new_signed(
        zt_wire::world::WorldType::Planet,
        4242,
        3000,
        forged_signer.public,
        newer.roots.clone(),
        &forged_signer,
    )
    .unwrap();
    let mut worlds = forged.to_bytes();
    worlds.extend(newer.to_bytes());
    let ok = craft(
        &root_identity(),
        &test_identity(1),
        Verb::Ok,
        &ok_hello_from_root(hello_id, T0, &worlds),
        CipherSuite::Poly1305Salsa2012,
        1300,
    );
    feed(&mut l, T0 + 20, ROOT_EP, &ok);
    assert_eq!(l.stats().world_updates_ignored, 1);
    assert_eq!(l.stats().world_updates_accepted, 1);
    assert_eq!(l.planet().timestamp, 2000);
    assert!(events(&mut l).contains(&Event::WorldUpdated { world: newer }));
    // The next HELLO goes to the new endpoint.
    l.handle_timeout(T0 + PATH_ALIVE_TIMEOUT + 100);
    assert!(drain(&mut l)
        .iter()
        .any(|t| t.remote == sa("10.0.0.2:9993")));
}

#[test]
fn ok_hello_carries_our_planet_to_peers_with_an_older_one() {
    let mut r = root();
    for (i, (ts, expect_world)) in [(999u64, true), (1000, false)].into_iter().enumerate() {
        let from = test_identity(2 + i);
        let ep = format!("10.0.{}.1:9993", 7 + i);
        feed(
            &mut r,
            T0 + i as u64 * 3000,
            &ep,
            &craft_hello(&from, &root_identity(), T0, (4242, ts), 1400 + i as u64),
        );
        let out = drain(&mut r);
        let (verb, body) = open(&out[0], &from, &root_identity()).unwrap();
        assert_eq!(verb, v(Verb::Ok));
        assert_eq!(
            suite_bits(&out[0].data),
            1,
            "first OK(HELLO) uses Salsa20/12"
        );
        let parsed = OkPayload::read(&body).unwrap();
        let OkBody::Hello(ok) = parsed.body else {
            panic!("OK(HELLO) expected")
        };
        assert_eq!(ok.timestamp, T0);
        assert_eq!(ok.physical_source, Some(InetAddress::from(sa(&ep))));
        let worlds = ok.world_updates.unwrap();
        if expect_world {
            assert_eq!(World::parse(worlds).unwrap(), planet(1000).0);
        } else {
            assert!(worlds.is_empty());
        }
        // Unknown path: the root also HELLOs/ECHOes back to learn it.
        assert_eq!(out.len(), 2);
    }
}

#[test]
fn user_message_nop_vl2_and_unknown_verbs() {
    let (mut l, _) = online_leaf();
    events(&mut l);
    let r = root_identity();
    let me = test_identity(1);
    let mut um = 77u64.to_be_bytes().to_vec();
    um.extend_from_slice(b"hi");
    feed(
        &mut l,
        T0 + 100,
        ROOT_EP,
        &craft(
            &r,
            &me,
            Verb::UserMessage,
            &um,
            CipherSuite::AesGmacSiv,
            1500,
        ),
    );
    assert_eq!(
        events(&mut l),
        vec![Event::UserMessage {
            source: r.address(),
            type_id: 77,
            data: b"hi".to_vec()
        }]
    );
    // VL2 verbs go to the VL2 layer: a FRAME for a network we did not join is its drop.
    let vl2_before = l.stats().vl2.clone();
    feed(
        &mut l,
        T0 + 110,
        ROOT_EP,
        &craft(
            &r,
            &me,
            Verb::Frame,
            &[0; 20],
            CipherSuite::AesGmacSiv,
            1501,
        ),
    );
    assert_ne!(l.stats().vl2, vl2_before);
    feed(
        &mut l,
        T0 + 115,
        ROOT_EP,
        &craft(
            &r,
            &me,
            Verb::RemoteTrace,
            b"x\0",
            CipherSuite::AesGmacSiv,
            1504,
        ),
    );
    assert_eq!(l.stats().vl2_unhandled, 1);
    let unknown = craft(
        &r,
        &me,
        Verb::Unknown(0x1f),
        &[],
        CipherSuite::AesGmacSiv,
        1502,
    );
    feed(&mut l, T0 + 120, ROOT_EP, &unknown);
    assert_eq!(l.stats().unknown_verbs, 1);
    let before = l.stats().rx_packets;
    feed(
        &mut l,
        T0 + 130,
        ROOT_EP,
        &craft(&r, &me, Verb::Nop, &[], CipherSuite::AesGmacSiv, 1503),
    );
    assert_eq!(l.stats().rx_packets, before + 1);
    assert_eq!(l.stats().packets_received.get(Verb::Nop), 1);
    assert_eq!(l.stats().packets_received.get(Verb::Unknown(0x1f)), 1);
}

#[test]
fn keepalives_path_expiry_and_offline() {
    let (mut l, _) = online_leaf();
    drain(&mut l);
    events(&mut l);
    // Silent root: heartbeat ECHO once the path has been quiet for 14 s.
    let mut echoes = 0;
    let mut hellos = 0;
    let mut t = T0 + 20;
    while t < T0 + PEER_ACTIVITY_TIMEOUT + 10_000 {
        t += 1_000;
        l.handle_timeout(t);
        for x in drain(&mut l) {
            assert_eq!(x.remote, sa(ROOT_EP));
            match x.data[27] {
                1 => hellos += 1,
                _ => echoes += 1,
            }
        }
        assert!(l
            .poll_timeout()
            .is_some_and(|d| d > t && d <= t + PING_CHECK_INTERVAL));
    }
    assert!(echoes >= 1, "heartbeat ECHO while the path was alive");
    // Once the path is no longer alive, HELLO every ping check.
    assert!(hellos >= (PEER_ACTIVITY_TIMEOUT / PING_CHECK_INTERVAL) as usize - 10);
    let ev = events(&mut l);
    assert!(ev.iter().any(|e| matches!(e, Event::PathDown { .. })));
    assert_eq!(ev.last(), Some(&Event::Offline));
    assert!(!l.is_online());
}

#[test]
fn send_errors() {
    let mut l = leaf();
    assert_eq!(
        l.send_to_peer(T0, test_identity(1).address(), Verb::Nop, &[]),
        Err(SendError::ToSelf)
    );
    // The root is known (from the planet) but has no path yet.
    assert_eq!(
        l.send_to_peer(T0, root_identity().address(), Verb::Nop, &[]),
        Err(SendError::NoRoute)
    );
    let (mut l, _) = online_leaf();
    let huge = vec![0x55u8; MAX_PACKET_LEN];
    assert_eq!(
        l.send_to_peer_with(
            T0 + 30,
            root_identity().address(),
            Verb::UserMessage,
            &huge,
            false
        ),
        Err(SendError::TooLarge)
    );
}

/// The leaf's periodic HELLO to the root at `now`, answered by an OK(HELLO) saying the root
/// sees the leaf at `surface`.
fn report_surface(l: &mut Node, now: u64, surface: &str, packet_id: u64) {
    l.handle_timeout(now);
    let hello = drain(l)
        .into_iter()
        .find(|t| t.remote == sa(ROOT_EP) && t.data[27] == v(Verb::Hello))
        .expect("periodic HELLO to the root");
    let body = ok_hello_body(pid(&hello.data), T0, InetAddress::from(sa(surface)), &[]);
    from_root(l, now + 20, Verb::Ok, &body, packet_id);
}

#[test]
fn a_new_external_address_resets_and_reprobes_paths_in_that_scope() {
    let (mut l, _) = online_leaf();
    // Peer 2 HELLOs us from its address; we answer and probe that address back.
    feed(
        &mut l,
        T0 + 50,
        PEER2_EP,
        &craft_hello(
            &test_identity(2),
            &test_identity(1),
            T0,
            (4242, 1000),
            0x2323,
        ),
    );
    let probe = drain(&mut l)
        .into_iter()
        .find(|t| {
            t.remote == sa(PEER2_EP)
                && open(t, &test_identity(2), &test_identity(1)).map(|x| x.0) == Some(v(Verb::Echo))
        })
        .expect("ECHO probe to the unknown path");
    let (_, echoed) = open(&probe, &test_identity(2), &test_identity(1)).unwrap();
    let mut ok = Vec::new();
    OkPayload {
        in_re_verb: Verb::Echo,
        in_re_packet_id: pid(&probe.data),
        body: OkBody::Echo(&echoed),
    }
    .write(&mut ok);
    feed(
        &mut l,
        T0 + 70,
        PEER2_EP,
        &craft(
            &test_identity(2),
            &test_identity(1),
            Verb::Ok,
            &ok,
            CipherSuite::Poly1305Salsa2012,
            1600,
        ),
    );
    let peer2 = |l: &Node| {
        l.peers()
            .into_iter()
            .find(|p| p.address == test_identity(2).address())
            .unwrap()
    };
    assert!(peer2(&l).direct);

    // The root now sees us at another IP in the same scope (our network changed).
    report_surface(
        &mut l,
        T0 + UPSTREAM_FULL_HELLO_PERIOD + 100,
        "10.0.1.7:40000",
        1601,
    );
    assert_eq!(l.stats().external_address_changes, 1);
    assert!(!peer2(&l).direct, "path in the same scope reset");
    let probes: Vec<_> = drain(&mut l).into_iter().map(|t| t.remote).collect();
    assert!(
        probes.contains(&sa(PEER2_EP)) && probes.contains(&sa(ROOT_EP)),
        "{probes:?}"
    );
    // Then at another port only (a NAT may give each flow its own port): not a change, as
    // in zerotier-one.
    report_surface(
        &mut l,
        T0 + 2 * UPSTREAM_FULL_HELLO_PERIOD + 200,
        "10.0.1.7:40001",
        1602,
    );
    assert_eq!(
        l.stats().external_address_changes,
        1,
        "a new port alone reset the paths"
    );
}

/// A root whose identity checks are left to the embedder.
fn deferring_root() -> Node {
    let mut config = zt_node::NodeConfig::new(planet(1000).0);
    config.defer_identity_checks = true;
    Node::new(
        root_identity(),
        config,
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5)),
        T0,
    )
    .unwrap()
}

fn knows(n: &Node, address: zt_node::Address) -> bool {
    n.peers().iter().any(|p| p.address == address)
}

#[test]
fn deferred_identity_checks_hold_the_hello_until_the_verdict() {
    let mut r = deferring_root();
    drain(&mut r);
    let peer = test_identity(2);
    let hello = craft_hello(&peer, &root_identity(), T0, (4242, 1000), 0x2222);
    feed(&mut r, T0 + 1, PEER2_EP, &hello);
    // Nothing is answered and nobody is learned before the check.
    assert!(drain(&mut r).is_empty());
    assert!(!knows(&r, peer.address()));
    let check = r.poll_identity_check().expect("the identity is handed out");
    assert_eq!(check.identity, peer.to_public());
    assert!(r.poll_identity_check().is_none(), "handed out once");
    // The same HELLO again (a retry) adds no second check.
    feed(
        &mut r,
        T0 + 2,
        PEER2_EP,
        &craft_hello(&peer, &root_identity(), T0 + 2, (4242, 1000), 0x2223),
    );
    assert!(r.poll_identity_check().is_none());
    assert!(check.identity.locally_validate());
    r.identity_checked(T0 + 3, check.ticket, true);
    assert!(knows(&r, peer.address()));
    // Answered as an inline check would: OK(HELLO) on the path the HELLO came in on.
    let out = drain(&mut r);
    let answered = out.iter().any(|t| {
        t.remote == sa(PEER2_EP)
            && open(t, &peer, &root_identity()).is_some_and(|(verb, _)| verb == u8::from(Verb::Ok))
    });
    assert!(answered, "{out:?}");
    // A late or repeated verdict for the same ticket changes nothing.
    r.identity_checked(T0 + 4, check.ticket, true);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn a_forged_identity_is_refused_after_its_deferred_check() {
    let mut r = deferring_root();
    drain(&mut r);
    // The right address with a key it is not derived from: the MAC checks, the hash does not.
    let forged = colliding_identity("0a0b0c0d0e", 9);
    feed(
        &mut r,
        T0 + 1,
        PEER2_EP,
        &craft_hello(&forged, &root_identity(), T0, (4242, 1000), 0x3333),
    );
    let check = r.poll_identity_check().expect("handed out");
    assert!(!check.identity.locally_validate());
    r.identity_checked(T0 + 2, check.ticket, false);
    assert!(!knows(&r, forged.address()));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.stats().dropped_invalid_identity, 1);
}

#[test]
fn the_deferred_check_queue_is_bounded() {
    let mut r = deferring_root();
    drain(&mut r);
    // Two seconds of the global budget, each HELLO from its own /24 so only the budget and
    // the queue limit apply.
    let mut fed = 0u64;
    for second in 0..2u64 {
        for i in 0..u64::from(IDENTITY_VALIDATION_BUDGET) {
            let n = second * 100 + i;
            let forged = colliding_identity(&format!("{:010x}", 0x0a00000000 + n), n);
            let remote = format!("10.{}.{}.1:9993", 100 + second, i);
            feed(
                &mut r,
                T0 + 1 + second * 1000,
                &remote,
                &craft_hello(&forged, &root_identity(), T0, (4242, 1000), 0x4000 + n),
            );
            fed += 1;
        }
    }
    let handed: Vec<_> = std::iter::from_fn(|| r.poll_identity_check()).collect();
    assert_eq!(handed.len(), IDENTITY_CHECK_QUEUE);
    assert_eq!(
        r.stats().dropped_identity_check_queue,
        fed - IDENTITY_CHECK_QUEUE as u64
    );
    // Answers free the queue for new HELLOs.
    for check in &handed {
        r.identity_checked(T0 + 2_500, check.ticket, false);
    }
    let forged = colliding_identity("0a0f0f0f0f", 999);
    feed(
        &mut r,
        T0 + 3_000,
        "10.200.0.1:9993",
        &craft_hello(&forged, &root_identity(), T0, (4242, 1000), 0x5000),
    );
    assert!(r.poll_identity_check().is_some());
}

/// A stranger (own /24, identity passed by the embedder) says HELLO to `r` at `now`.
fn stranger_hello(r: &mut Node, now: u64, n: u64) -> Identity {
    let stranger = colliding_identity(&format!("{:010x}", 0x0b00000000 + n), n);
    let remote = format!("10.{}.{}.1:9993", n / 200, n % 200);
    feed(
        r,
        now,
        &remote,
        &craft_hello(&stranger, &root_identity(), now, (4242, 1000), 0x6000 + n),
    );
    let check = r.poll_identity_check().expect("handed out");
    r.identity_checked(now, check.ticket, true);
    stranger
}

#[test]
fn a_full_peer_table_forgets_the_stalest_stranger_never_a_peer_in_use() {
    let mut config = zt_node::NodeConfig::new(planet(1000).0);
    config.defer_identity_checks = true;
    config.max_peers = 8;
    let mut r = Node::new(
        root_identity(),
        config,
        Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(6)),
        T0,
    )
    .unwrap();
    drain(&mut r);
    // The first one to say HELLO controls a network the node joined: it stays however stale.
    let controller = stranger_hello(&mut r, T0, 0);
    let nwid = zt_wire::network_id::NetworkId((controller.address().to_u64() << 24) | 7);
    assert!(r.join(T0, nwid, zt_node::JoinSettings::default()));
    let mut strangers = Vec::new();
    for n in 1..30u64 {
        strangers.push(stranger_hello(&mut r, T0 + n * 100, n));
        drain(&mut r);
        assert!(r.peers().len() <= 8, "{} peers", r.peers().len());
    }
    assert!(knows(&r, controller.address()));
    // The most recent strangers are the ones kept.
    for s in &strangers[strangers.len() - 6..] {
        assert!(knows(&r, s.address()));
    }
    assert!(!knows(&r, strangers[0].address()));
    let present = 1 + strangers.iter().filter(|s| knows(&r, s.address())).count();
    assert_eq!(present, r.peers().len());
    assert_eq!(r.stats().peers_evicted, (30 - present) as u64);
}
