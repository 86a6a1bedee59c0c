//! Our engine against real ZeroTier 1.14.1 traffic (`shared/interop/captures`): playing the
//! captured root `ae2436cf84`, it must accept the real nodes' HELLOs and AES-GMAC-SIV
//! packets, and its replies must decrypt and parse with the real nodes' keys.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use zt_crypto::armor::{dearmor, PeerKey};
use zt_crypto::Identity;
use zt_node::{LocalSocketId, Node, NodeConfig, World};
use zt_wire::header::PacketHeader;

const ROOT: &str = "ae2436cf84:0:0310beccac2ff571eed74ce1349f196cb0d10317a538d4c6af84f5fc7b7eb3707c119ce5d811d5114e7522363326725be007ac4ecd54a272d21764188d43d66d:721e270cd0a8daaed0fb34dd5bfdc0fef953dd867e70e4d70427fd0c0ba7a13d8fd5b34325e3ec688f6d77f95492a06b28e93ab2ef895ef62c455c84e456dd5c";
const CONTROLLER: &str = "51479cea31:0:8b548000c0f83fa4ef4a80b915993fc701fd2b392774af546713630774633b1b747fb6d327b198bc78a5f0922d9ec29d835664bc2a255b76148d60442417aa37:9c20a24f2104ff2f51cad332ca70c5abe0b0f887eebec13981a7ea42bbb865a769ef93026051df05c0c7abfc8e519801d526938900168e9266bb919bab72dde9";
const MEMBER: &str = "a6c5664b6f:0:f1171dfc6e8330dea8d879b1509c756649c4e87821216b3a9eb7cf7daaac035a408c29349e1e6b66990a633bddcd87d20408785f73bc5f09b850a8421dd930e4:0454dc513f5295b9c5bd8eecf6f3699ad72e547044559d3371fadfd194eeedc6e17618fcf783fe0a192a80da0396c8fb0b1b83a27f7fa888e01889cd30a81753";

fn captures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/captures")
}

/// UDP datagrams of an Ethernet pcap: (source, destination, payload).
fn read_pcap(name: &str) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let d = std::fs::read(captures_dir().join(name)).expect("capture file present");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let caplen = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = &d[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 17 {
            continue;
        }
        let ip = &frame[14..];
        let ihl = ((ip[0] & 0x0f) as usize) * 4;
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let udp = &ip[ihl..];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        out.push((
            SocketAddr::V4(SocketAddrV4::new(src, sport)),
            SocketAddr::V4(SocketAddrV4::new(dst, dport)),
            udp[8..].to_vec(),
        ));
    }
    out
}

fn planet() -> World {
    World::parse(&std::fs::read(captures_dir().join("planet.bin")).unwrap()).unwrap()
}

fn root_node() -> Node {
    let id = Identity::from_string(ROOT).unwrap();
    Node::new(
        id,
        NodeConfig::new(planet()),
        Box::new(StdRng::seed_from_u64(1)),
        1_795_619_852_000,
    )
    .unwrap()
}

fn key(a: &str, b: &str) -> PeerKey {
    let a = Identity::from_string(a).unwrap();
    let b = Identity::from_string(b).unwrap();
    PeerKey::new(a.agree(&b).unwrap())
}

#[test]
fn real_hello_gets_an_ok_the_real_node_can_read() {
    let pcap = read_pcap("zt114-join.pcap");
    let mut root = root_node();
    assert!(root.is_root());
    // Frame 1: the controller's first HELLO to the root.
    let (from, _, hello) = &pcap[0];
    assert_eq!(
        PacketHeader::new_checked(&hello[..]).unwrap().verb_byte() & 0x1f,
        1
    );
    root.handle_datagram(1_795_619_852_000, LocalSocketId(0), *from, hello);
    assert_eq!(root.stats().rx_packets, 1, "{:?}", root.stats());
    assert!(root
        .peers()
        .iter()
        .any(|p| p.address.to_string() == "51479cea31"
            && p.version == Some((1, 14, 1))
            && p.protocol_version == Some(12)));

    // Our OK(HELLO) goes back to the same address, Salsa20/12 (first reply), and decrypts
    // with the controller's key.
    let mut ok = None;
    while let Some(t) = root.poll_transmit() {
        if t.remote == *from && t.data[27] != 1 && ok.is_none() {
            ok = Some(t.data);
        }
    }
    let mut ok = ok.expect("OK(HELLO) sent");
    assert_eq!(PacketHeader::new_checked(&ok[..]).unwrap().cipher_bits(), 1);
    let k = key(CONTROLLER, ROOT);
    dearmor(&mut ok, &k).expect("controller's key authenticates our OK");
    assert_eq!(ok[27], 0x03, "verb OK");
    let body = &ok[28..];
    assert_eq!(body[0], 0x01, "in re HELLO");
    assert_eq!(
        &body[1..9],
        &hello[0..8],
        "in-re packet ID is the HELLO's wire ID"
    );
    // Echoed timestamp from the captured HELLO (1795619851904).
    assert_eq!(
        u64::from_be_bytes(body[9..17].try_into().unwrap()),
        1_795_619_851_904
    );
    assert_eq!(body[17], 12, "protocol version");
    // INETADDR: where we saw the HELLO come from.
    assert_eq!(&body[22..29], &[4, 10, 77, 0, 2, 0x27, 0x09]);
}

#[test]
fn real_aes_packets_are_accepted_and_answered() {
    let pcap = read_pcap("zt114-join.pcap");
    let mut root = root_node();
    let t = 1_795_619_852_000;
    // Frame 2: member's HELLO; frame 10: member's WHOIS for the root, suite 3.
    let (m_from, _, hello) = &pcap[1];
    root.handle_datagram(t, LocalSocketId(0), *m_from, hello);
    let (_, _, whois) = &pcap[9];
    assert_eq!(
        PacketHeader::new_checked(&whois[..]).unwrap().cipher_bits(),
        3
    );
    while root.poll_transmit().is_some() {}
    root.handle_datagram(t + 10, LocalSocketId(0), *m_from, whois);
    assert_eq!(root.stats().dropped_bad_mac, 0);
    assert_eq!(root.stats().whois_answered, 1);
    let reply = root.poll_transmit().expect("OK(WHOIS)");
    let mut reply = reply.data;
    // The member told us protocol 12 in its HELLO, so we answer with AES-GMAC-SIV.
    assert_eq!(
        PacketHeader::new_checked(&reply[..]).unwrap().cipher_bits(),
        3
    );
    dearmor(&mut reply, &key(MEMBER, ROOT)).expect("member's key authenticates our reply");
    assert_eq!(reply[27], 0x03);
    let body = &reply[28..];
    assert_eq!(body[0], 0x04);
    assert_eq!(&body[1..9], &whois[0..8]);
    let (id, _) = Identity::read_binary(&body[9..]).unwrap();
    assert_eq!(id.address().to_string(), "ae2436cf84");

    // The same datagrams again are replays.
    root.handle_datagram(t + 20, LocalSocketId(0), *m_from, whois);
    root.handle_datagram(t + 20, LocalSocketId(0), *m_from, hello);
    assert_eq!(root.stats().dropped_replay, 2);
    assert_eq!(root.stats().whois_answered, 1);
}

#[test]
fn the_whole_capture_never_panics_and_verifies_where_it_should() {
    // Play every datagram of both captures into one root. Packets to other nodes are relayed
    // or dropped, never a panic; nothing addressed to the root fails its MAC. The captured
    // nodes share one /24, whose new identities the root checks once per gate interval: the
    // replay's clock jumps by that interval at each HELLO, as the real nodes' HELLOs were
    // spread over minutes.
    let mut root = root_node();
    let mut t = 1_795_619_852_000;
    for name in ["zt114-join.pcap", "zt114-libzt.pcap"] {
        for (from, _, d) in read_pcap(name) {
            let is_hello = d.len() > 27 && d[13] != 0xff && d[27] & 0x1f == 0x01;
            t += if is_hello {
                zt_node::constants::IDENTITY_VALIDATION_SOURCE_RATE_LIMIT
            } else {
                5
            };
            root.handle_datagram(t, LocalSocketId(0), from, &d);
            while root.poll_transmit().is_some() {}
        }
    }
    let s = root.stats();
    assert_eq!(s.dropped_bad_mac, 0, "{s:?}");
    assert!(s.rx_packets > 50, "{s:?}");
}
