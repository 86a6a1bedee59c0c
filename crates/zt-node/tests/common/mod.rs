//! Helpers shared by the integration tests: a leaf node under test with a one-root planet,
//! and crafting packets from other identities with the real armor.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use zt_crypto::armor::{armor, crypt_field, CipherSuite, PeerKey};
use zt_crypto::c25519::KeyPair;
use zt_crypto::Identity;
use zt_node::packet;
use zt_node::payload::{Hello, MoonRef};
use zt_node::sim::{make_planet, test_identity};
use zt_node::{LocalSocketId, Node, NodeConfig, Transmit, Verb, World};

pub const T0: u64 = 10_000_000;
pub const ROOT_EP: &str = "10.0.0.1:9993";

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn root_identity() -> Identity {
    test_identity(0)
}

/// The planet used by these tests (root = test identity 0 at 10.0.0.1:9993) and its signer.
pub fn planet(timestamp: u64) -> (World, KeyPair) {
    make_planet(4242, timestamp, &[(root_identity(), sa(ROOT_EP))], 77)
}

pub fn node_with(identity: Identity, planet: World) -> Node {
    Node::new(
        identity,
        NodeConfig::new(planet),
        Box::new(StdRng::seed_from_u64(5)),
        T0,
    )
    .unwrap()
}

/// A leaf (test identity 1) and a root (test identity 0) of the same planet.
pub fn leaf() -> Node {
    node_with(test_identity(1), planet(1000).0)
}
pub fn root() -> Node {
    node_with(root_identity(), planet(1000).0)
}

pub fn drain(n: &mut Node) -> Vec<Transmit> {
    std::iter::from_fn(|| n.poll_transmit()).collect()
}

/// A packet from `from` to `to`, armored with their shared key.
pub fn craft(
    from: &Identity,
    to: &Identity,
    verb: Verb,
    payload: &[u8],
    suite: CipherSuite,
    id: u64,
) -> Vec<u8> {
    let key = PeerKey::new(from.agree(to).unwrap());
    let mut p = packet::build(id, to.address(), from.address(), verb, payload);
    p[18] = packet::flags_for(suite);
    armor(&mut p, &key, suite);
    p
}

/// A HELLO from `from` to `to` as the reference builds it.
pub fn craft_hello(
    from: &Identity,
    to: &Identity,
    timestamp: u64,
    planet: (u64, u64),
    id: u64,
) -> Vec<u8> {
    let key = PeerKey::new(from.agree(to).unwrap());
    let hello = Hello {
        protocol_version: 12,
        major: 1,
        minor: 14,
        revision: 1,
        timestamp,
        identity: from.to_public(),
        destination: Some(sa("10.0.9.9:9993")),
        planet: Some(planet),
        moon_tail_offset: None,
    };
    let mut body = Vec::new();
    let tail = hello.write(&mut body, &[] as &[MoonRef]);
    let mut p = packet::build(id, to.address(), from.address(), Verb::Hello, &body);
    crypt_field(&key, &id.to_be_bytes(), &mut p[28 + tail..]);
    p[18] = packet::flags_for(CipherSuite::Poly1305None);
    armor(&mut p, &key, CipherSuite::Poly1305None);
    p
}

/// Decrypts a datagram the node sent to `to` (whose secret identity we hold).
pub fn open(t: &Transmit, me: &Identity, sender: &Identity) -> Option<(u8, Vec<u8>)> {
    let mut d = t.data.clone();
    let key = PeerKey::new(me.agree(sender).unwrap());
    zt_crypto::armor::dearmor(&mut d, &key).ok()?;
    packet::decompress(&mut d).ok()?;
    Some((d[27] & 0x1f, d[28..].to_vec()))
}

/// Feeds a datagram to the node from `remote` at time `now`.
pub fn feed(n: &mut Node, now: u64, remote: &str, d: &[u8]) {
    n.handle_datagram(now, LocalSocketId(0), sa(remote), d);
}

/// An identity claiming `address` with a fresh, unrelated key pair (a collision).
pub fn colliding_identity(address: &str, seed: u64) -> Identity {
    let kp = KeyPair::generate(&mut StdRng::seed_from_u64(seed));
    Identity::from_string(&format!(
        "{address}:0:{}:{}",
        hex::encode(kp.public),
        hex::encode(kp.private)
    ))
    .unwrap()
}
