//! The node's receive path: datagrams into `Node::decapsulate` of a member that knows its
//! peer, both raw (anything off the wire: runts, forged MACs, fragments) and authenticated
//! (a packet the peer really sealed, with an arbitrary verb and payload, so the verb handlers
//! behind the MAC check are reached). Nothing may panic, a frame handed back must lie inside
//! the buffer with a whole Ethernet header, and the node's output stays bounded.
//!
//! Input: byte 0 chooses the mode. Raw (even): the rest is length-prefixed datagrams
//! (2-byte big-endian length). Authenticated (odd): byte 1 is the verb, byte 2 picks cipher
//! suite and compression, the rest is the payload.
use std::cell::RefCell;

use zt_crypto::{CipherSuite, PeerKey};
use zt_node::sim::{test_identity, two_members_on_an_adhoc_network, Sim};
use zt_node::{LocalSocketId, Received, Verb};
use zt_wire::ethernet::ETHERNET_HEADER_LEN;
use zt_wire::verbs::packet::{build, OutgoingPacket};

struct Lab {
    sim: Sim,
    b: usize,
    from: std::net::SocketAddr,
    key: PeerKey,
    packet_id: u64,
}

thread_local! {
    // Built once per process (the warm-up takes milliseconds); inputs then act on a node
    // that keeps its state, as a real node does.
    static LAB: RefCell<Option<Lab>> = const { RefCell::new(None) };
}

fn lab() -> Lab {
    let (sim, a, b, _) = two_members_on_an_adhoc_network(3);
    let key = PeerKey::new(
        test_identity(1)
            .agree(&test_identity(2))
            .expect("test identities agree"),
    );
    let from = sim.addrs[a];
    Lab {
        sim,
        b,
        from,
        key,
        packet_id: 1,
    }
}

/// One fuzz input through the receive path of the lab's member.
pub fn receive(data: &[u8]) {
    LAB.with(|cell| {
        let mut cell = cell.borrow_mut();
        let lab = cell.get_or_insert_with(lab);
        let datagrams = match data.split_first() {
            Some((mode, rest)) if mode % 2 == 1 => authenticated(lab, rest),
            Some((_, rest)) => raw(rest),
            None => return,
        };
        let now = lab.sim.now;
        let node = &mut lab.sim.nodes[lab.b];
        let mut buffer = Vec::with_capacity(65_536);
        for datagram in datagrams {
            buffer.clear();
            buffer.extend_from_slice(&datagram);
            if let Received::Frame { frame, .. } =
                node.decapsulate(now, LocalSocketId(0), lab.from, &mut buffer)
            {
                assert!(frame.end <= buffer.len(), "frame outside the buffer");
                assert!(frame.len() >= ETHERNET_HEADER_LEN, "frame without a header");
            }
        }
        // Whatever the input made the node send or report is finite.
        let mut out = 0;
        while node.poll_transmit().is_some() {
            out += 1;
            assert!(out < 10_000, "unbounded output");
        }
        while node.poll_event().is_some() {}
    });
}

fn raw(mut rest: &[u8]) -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    while rest.len() >= 2 && datagrams.len() < 16 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = len.min(rest.len());
        datagrams.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    datagrams
}

fn authenticated(lab: &mut Lab, rest: &[u8]) -> Vec<Vec<u8>> {
    let [verb, flags, payload @ ..] = rest else {
        return Vec::new();
    };
    lab.packet_id = lab.packet_id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let outgoing = OutgoingPacket {
        destination: test_identity(2).address(),
        source: test_identity(1).address(),
        verb: Verb::from(*verb & 0x1f),
        payload,
        packet_id: lab.packet_id,
        suite: if flags & 1 == 0 {
            CipherSuite::AesGmacSiv
        } else {
            CipherSuite::Poly1305Salsa2012
        },
        compress: flags & 2 != 0,
        mtu: 1432,
    };
    build(&outgoing, &lab.key)
        .map(|built| built.datagrams)
        .unwrap_or_default()
}
