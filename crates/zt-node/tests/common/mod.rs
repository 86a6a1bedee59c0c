//! Helpers shared by the integration tests: a leaf node under test with a one-root planet,
//! and crafting packets from other identities with the real armor.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use zt_crypto::armor::{CipherSuite, PeerKey};
use zt_crypto::c25519::KeyPair;
use zt_crypto::Identity;
use zt_node::sim::{make_planet, test_identity};
use zt_node::{LocalSocketId, Node, NodeConfig, Transmit, Verb, World};
use zt_wire::header::PacketHeader;
use zt_wire::inet::InetAddress;
use zt_wire::verbs::hello::{Hello, WorldRef};
use zt_wire::verbs::ok::{OkBody, OkHello, OkPayload};
use zt_wire::verbs::packet::{build, decode, OutgoingPacket};

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
    let p = OutgoingPacket {
        destination: to.address(),
        source: from.address(),
        verb,
        payload,
        packet_id: id,
        suite,
        compress: false,
        mtu: 1432,
    };
    build(&p, &key).unwrap().datagrams.remove(0)
}

/// A HELLO from `from` to `to` as the reference builds it (moon list encrypted).
pub fn craft_hello(
    from: &Identity,
    to: &Identity,
    timestamp: u64,
    planet: (u64, u64),
    id: u64,
) -> Vec<u8> {
    let hello = Hello {
        protocol_version: 12,
        major: 1,
        minor: 14,
        revision: 1,
        timestamp,
        identity: from.to_public(),
        physical_destination: Some(InetAddress::from(sa("10.0.9.9:9993"))),
        planet: Some(WorldRef {
            id: planet.0,
            timestamp: planet.1,
        }),
        moons: Some(vec![]),
    };
    let mut body = Vec::new();
    hello.write(&mut body);
    craft(from, to, Verb::Hello, &body, CipherSuite::Poly1305None, id)
}

/// Authenticates and decrypts a datagram the node sent to `me` (whose secret we hold):
/// the verb number and the plaintext payload.
pub fn open(t: &Transmit, me: &Identity, sender: &Identity) -> Option<(u8, Vec<u8>)> {
    let key = PeerKey::new(me.agree(sender).unwrap());
    let d = decode(t.data.clone(), &key).ok()?;
    Some((u8::from(d.verb()), d.payload().to_vec()))
}

/// The wire packet ID of a datagram.
pub fn pid(d: &[u8]) -> u64 {
    PacketHeader::new_checked(d).unwrap().packet_id()
}

/// The cipher suite bits of a datagram.
pub fn suite_bits(d: &[u8]) -> u8 {
    PacketHeader::new_checked(d).unwrap().cipher_bits()
}

/// An OK(HELLO) body as a 1.14 node writes it: it saw us at `physical_source` and sends
/// `worlds` (serialized world updates).
pub fn ok_hello_body(
    in_re: u64,
    timestamp: u64,
    physical_source: InetAddress,
    worlds: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    OkPayload {
        in_re_verb: Verb::Hello,
        in_re_packet_id: in_re,
        body: OkBody::Hello(OkHello {
            timestamp,
            protocol_version: 12,
            major: 1,
            minor: 14,
            revision: 1,
            physical_source: Some(physical_source),
            world_updates: Some(worlds),
        }),
    }
    .write(&mut b);
    b
}

/// The root (test identity 0) sends leaf 1 a `verb` packet, AES-sealed as a 1.14 root does.
pub fn from_root(l: &mut Node, now: u64, verb: Verb, body: &[u8], packet_id: u64) {
    let packet = craft(
        &root_identity(),
        &test_identity(1),
        verb,
        body,
        CipherSuite::AesGmacSiv,
        packet_id,
    );
    feed(l, now, ROOT_EP, &packet);
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
