//! Moons (PROTOCOL.md §5.2, §5.4): moon roots are upstreams, HELLO lists the moons we hold
//! or want, newer signed revisions are accepted, and `orbit` fetches a moon from its seed.

mod common;
use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use zt_crypto::armor::CipherSuite;
use zt_crypto::c25519::KeyPair;
use zt_node::sim::test_identity;
use zt_node::{Event, Node, NodeConfig, Role, Verb, World};
use zt_wire::inet::InetAddress;
use zt_wire::verbs::hello::{Hello, MoonRef, WORLD_TYPE_MOON};
use zt_wire::verbs::ok::{OkBody, OkPayload};
use zt_wire::world::{Root, WorldType};

const MOON_ID: u64 = 0x00b7_f4fb_972c;
const MOON_EP: &str = "10.0.3.1:9993";

fn moon_root() -> zt_node::Identity {
    test_identity(3)
}

fn moon(timestamp: u64, signer: &KeyPair) -> World {
    let root = Root {
        identity: moon_root().to_public(),
        stable_endpoints: vec![InetAddress::from(sa(MOON_EP))],
    };
    World::new_signed(
        WorldType::Moon,
        MOON_ID,
        timestamp,
        signer.public,
        vec![root],
        signer,
    )
    .unwrap()
}

fn signer() -> KeyPair {
    KeyPair::generate(&mut StdRng::seed_from_u64(99))
}

fn ok_hello(from: &zt_node::Identity, in_re: u64, worlds: &[u8], id: u64) -> Vec<u8> {
    let b = ok_hello_body(in_re, T0, InetAddress::Nil, worlds);
    craft(
        from,
        &test_identity(1),
        Verb::Ok,
        &b,
        CipherSuite::Poly1305Salsa2012,
        id,
    )
}

/// The moon list of a HELLO the leaf sent to `to`.
fn hello_moons(t: &zt_node::Transmit, to: &zt_node::Identity) -> Vec<MoonRef> {
    let (verb, body) = open(t, to, &test_identity(1)).expect("authentic HELLO");
    assert_eq!(verb, u8::from(Verb::Hello));
    Hello::read(&body).unwrap().moons.unwrap_or_default()
}

#[test]
fn moon_roots_are_upstreams_and_newer_revisions_are_accepted() {
    let s = signer();
    let mut config = NodeConfig::new(planet(1000).0);
    config.moons.push(moon(1000, &s));
    let mut l = Node::new(
        test_identity(1),
        config,
        Box::new(StdRng::seed_from_u64(2)),
        T0,
    )
    .unwrap();
    l.handle_timeout(T0);
    let out = drain(&mut l);
    let to_moon = out
        .iter()
        .find(|t| t.remote == sa(MOON_EP))
        .expect("HELLO to the moon root");
    assert_eq!(
        hello_moons(to_moon, &moon_root()),
        vec![MoonRef {
            world_type: WORLD_TYPE_MOON,
            id: MOON_ID,
            timestamp: 1000
        }]
    );
    let roles: Vec<_> = l.peers().iter().map(|p| (p.address, p.role)).collect();
    assert!(roles.contains(&(moon_root().address(), Role::Moon)));
    assert!(roles.contains(&(root_identity().address(), Role::Planet)));

    // A newer revision signed with the moon's update key is accepted; a forged one is not.
    let newer = moon(2000, &s);
    let forged_signer = KeyPair::generate(&mut StdRng::seed_from_u64(100));
    let mut forged = moon(3000, &forged_signer);
    forged.updates_must_be_signed_by = s.public;
    let mut worlds = forged.to_bytes();
    worlds.extend(newer.to_bytes());
    feed(
        &mut l,
        T0 + 20,
        MOON_EP,
        &ok_hello(&moon_root(), pid(&to_moon.data), &worlds, 1),
    );
    assert_eq!(l.stats().world_updates_accepted, 1);
    assert_eq!(l.stats().world_updates_ignored, 1);
    assert_eq!(l.moons()[0].timestamp, 2000);
    assert!(std::iter::from_fn(|| l.poll_event()).any(|e| e
        == Event::WorldUpdated {
            world: newer.clone()
        }));
}

#[test]
fn orbit_fetches_the_moon_from_its_seed_through_the_root() {
    let s = signer();
    let mut l = leaf();
    // Online with the root first.
    l.handle_timeout(T0);
    let hello = drain(&mut l).remove(0);
    feed(
        &mut l,
        T0 + 20,
        ROOT_EP,
        &ok_hello(&root_identity(), pid(&hello.data), &[], 2),
    );
    assert!(l.is_online());

    l.orbit(T0 + 100, MOON_ID, moon_root().address());
    // The seed is unknown: WHOIS it at the root, and learn it.
    let whois = drain(&mut l)
        .into_iter()
        .find(|t| {
            open(t, &root_identity(), &test_identity(1)).map(|x| x.0) == Some(u8::from(Verb::Whois))
        })
        .expect("WHOIS for the seed");
    let mut body = Vec::new();
    OkPayload {
        in_re_verb: Verb::Whois,
        in_re_packet_id: pid(&whois.data),
        body: OkBody::Whois(vec![moon_root().to_public()]),
    }
    .write(&mut body);
    from_root(&mut l, T0 + 120, Verb::Ok, &body, 3);

    // Next ping check: HELLO to the seed through the root, listing the wanted moon at 0.
    l.handle_timeout(T0 + 5_000);
    let out = drain(&mut l);
    let to_seed = out
        .iter()
        .find(|t| open(t, &moon_root(), &test_identity(1)).is_some())
        .expect("HELLO to the seed");
    assert_eq!(
        to_seed.remote,
        sa(ROOT_EP),
        "relayed by the root: no path to the seed yet"
    );
    assert_eq!(
        hello_moons(to_seed, &moon_root()),
        vec![MoonRef {
            world_type: WORLD_TYPE_MOON,
            id: MOON_ID,
            timestamp: 0
        }]
    );

    // A moon from someone else than the seed is not taken.
    let m = moon(1000, &s);
    let mut from_root = ok_hello(&root_identity(), pid(&hello.data), &m.to_bytes(), 4);
    from_root[18] |= 1;
    feed(&mut l, T0 + 5_010, ROOT_EP, &from_root);
    assert!(l.moons().is_empty());

    // The seed answers (relayed: one hop) with the moon.
    let mut ok = ok_hello(&moon_root(), pid(&to_seed.data), &m.to_bytes(), 5);
    ok[18] |= 1;
    feed(&mut l, T0 + 5_040, ROOT_EP, &ok);
    assert_eq!(l.moons(), std::slice::from_ref(&m));
    assert!(std::iter::from_fn(|| l.poll_event())
        .any(|e| e == Event::WorldUpdated { world: m.clone() }));
    assert!(l
        .peers()
        .iter()
        .any(|p| p.address == moon_root().address() && p.role == Role::Moon));
    // Now an upstream: contacted at its stable endpoint.
    l.handle_timeout(T0 + 10_000);
    assert!(drain(&mut l).iter().any(|t| t.remote == sa(MOON_EP)));
    // And it can be left again.
    assert!(l.remove_moon(MOON_ID));
    assert!(l.moons().is_empty());
}

#[test]
fn an_upstream_without_stable_endpoints_is_helloed_through_the_root() {
    let s = signer();
    let mut m = moon(1000, &s);
    m.roots[0].stable_endpoints.clear();
    m.sign(&s);
    let mut config = NodeConfig::new(planet(1000).0);
    config.moons.push(m);
    let mut l = Node::new(
        test_identity(1),
        config,
        Box::new(StdRng::seed_from_u64(3)),
        T0,
    )
    .unwrap();
    l.handle_timeout(T0);
    let out = drain(&mut l);
    // No path to the root yet: nothing can carry the moon root's HELLO.
    assert!(out
        .iter()
        .all(|t| open(t, &moon_root(), &test_identity(1)).is_none()));
    let hello = out.iter().find(|t| t.remote == sa(ROOT_EP)).unwrap();
    feed(
        &mut l,
        T0 + 20,
        ROOT_EP,
        &ok_hello(&root_identity(), pid(&hello.data), &[], 7),
    );
    l.handle_timeout(T0 + 5_000);
    let out = drain(&mut l);
    let via_root = out
        .iter()
        .find(|t| open(t, &moon_root(), &test_identity(1)).is_some())
        .expect("HELLO for the moon root");
    assert_eq!(via_root.remote, sa(ROOT_EP));
    let (_, body) = open(via_root, &moon_root(), &test_identity(1)).unwrap();
    assert_eq!(
        Hello::read(&body).unwrap().physical_destination,
        Some(InetAddress::Nil)
    );
}
