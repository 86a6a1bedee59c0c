//! Golden tests against real ZeroTier traffic: the two pcaps in `interop/captures/` (1.14.1
//! and libzt 1.8.4) and the independent Python decode of every datagram (`*.decoded.jsonl`).
//!
//! Header, fragment and payload checks need no cryptography: the decode records the plaintext
//! of each packet. The dearmor/build checks use `zt-crypto` and the secrets in
//! `identities.json`; they fail (loudly) until zt-crypto's armor is implemented.

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use zt_crypto::armor::PeerKey;
use zt_crypto::{CipherSuite, Identity};
use zt_wire::fragment::{Fragment, Reassembler, Reassembly};
use zt_wire::header::{classify_datagram, DatagramKind, HeaderRepr, PacketHeader, Verb};
use zt_wire::verbs::{self, ErrorBody, OkBody, OutgoingPacket, PathAddress, Payload};

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/interop/captures"
);
const CAPTURE_NAMES: [&str; 2] = ["zt114-join", "zt114-libzt"];

/// UDP payloads of an Ethernet/IPv4 pcap, by 1-based frame number.
fn pcap_udp_payloads(name: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(format!("{CAPTURES}/{name}.pcap")).expect("pcap");
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "Ethernet link type"
    );
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let frame = &data[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        assert_eq!(
            &frame[12..14],
            &[0x08, 0x00],
            "IPv4 only (the lab had IPv6 off)"
        );
        let ip = &frame[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        assert_eq!(ip[9], 17, "UDP");
        let udp = &ip[ihl..];
        let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        out.push(udp[8..udp_len].to_vec());
    }
    out
}

fn records(name: &str) -> Vec<Value> {
    std::fs::read_to_string(format!("{CAPTURES}/{name}.decoded.jsonl"))
        .expect("decoded jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

struct Capture {
    name: &'static str,
    datagrams: Vec<Vec<u8>>,
    records: Vec<Value>,
}

fn captures() -> Vec<Capture> {
    CAPTURE_NAMES
        .iter()
        .map(|&name| {
            let c = Capture {
                name,
                datagrams: pcap_udp_payloads(name),
                records: records(name),
            };
            assert_eq!(
                c.datagrams.len(),
                c.records.len(),
                "{name}: one record per datagram"
            );
            c
        })
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(s(v), 16).expect("hex u64")
}

fn datagram<'a>(c: &'a Capture, rec: &Value) -> &'a [u8] {
    &c.datagrams[rec["frame"].as_u64().unwrap() as usize - 1]
}

#[test]
fn headers_and_fragments_match_the_reference_decode() {
    let mut heads = 0;
    let mut fragments = 0;
    for c in captures() {
        for rec in &c.records {
            let d = datagram(&c, rec);
            assert_eq!(d.len() as u64, rec["udp_len"].as_u64().unwrap());
            let ctx = format!("{} frame {}", c.name, rec["frame"]);
            match s(&rec["kind"]) {
                "packet" => {
                    assert_eq!(classify_datagram(d), DatagramKind::Head, "{ctx}");
                    let h = HeaderRepr::parse(&PacketHeader::new_checked(d).unwrap());
                    assert_eq!(h.packet_id, hex_u64(&rec["pid"]), "{ctx}");
                    assert_eq!(h.destination.to_string(), s(&rec["zt_dst"]), "{ctx}");
                    assert_eq!(h.source.to_string(), s(&rec["zt_src"]), "{ctx}");
                    assert_eq!(format!("{:02x}", h.flags.0), s(&rec["flags"]), "{ctx}");
                    assert_eq!(
                        h.flags.cipher_bits() as u64,
                        rec["cipher"].as_u64().unwrap()
                    );
                    assert_eq!(
                        h.flags.hops() as u64,
                        rec["hops"].as_u64().unwrap(),
                        "{ctx}"
                    );
                    assert_eq!(
                        h.flags.is_fragmented(),
                        rec["fragmented"].as_bool().unwrap()
                    );
                    assert_eq!(hex::encode(h.mac), s(&rec["mac_field"]), "{ctx}");
                    heads += 1;
                }
                "fragment" => {
                    assert_eq!(classify_datagram(d), DatagramKind::Fragment, "{ctx}");
                    let f = Fragment::new_checked(d).unwrap();
                    assert_eq!(f.packet_id(), hex_u64(&rec["pid"]), "{ctx}");
                    assert_eq!(f.destination().to_string(), s(&rec["zt_dst"]), "{ctx}");
                    assert_eq!(f.number() as u64, rec["frag_no"].as_u64().unwrap(), "{ctx}");
                    assert_eq!(
                        f.total() as u64,
                        rec["frag_total"].as_u64().unwrap(),
                        "{ctx}"
                    );
                    assert_eq!(f.hops() as u64, rec["hops"].as_u64().unwrap(), "{ctx}");
                    fragments += 1;
                }
                "junk" => assert_eq!(classify_datagram(d), DatagramKind::Junk, "{ctx}"),
                other => panic!("{ctx}: unexpected kind {other}"),
            }
        }
    }
    assert_eq!(
        (heads, fragments),
        (330, 4),
        "every ZeroTier datagram of both captures"
    );
}

/// Run every head and fragment through one reassembler per capture, with the capture's clock.
/// Returns, by the frame number of the datagram that completed it, each assembled packet; an
/// unfragmented head is its own packet.
fn assembled_packets(c: &Capture) -> HashMap<u64, Vec<u8>> {
    let mut q = Reassembler::new();
    let mut out = HashMap::new();
    for rec in &c.records {
        let d = datagram(c, rec);
        let frame = rec["frame"].as_u64().unwrap();
        let now_ms = (rec["t"].as_f64().unwrap() * 1000.0) as u64;
        let result = match classify_datagram(d) {
            DatagramKind::Head if PacketHeader::new_checked(d).unwrap().is_fragmented() => {
                q.on_head(now_ms, d).unwrap()
            }
            DatagramKind::Head => Reassembly::Complete(d.to_vec()),
            DatagramKind::Fragment => q.on_fragment(now_ms, d).unwrap(),
            _ => continue,
        };
        if let Reassembly::Complete(p) = result {
            out.insert(frame, p);
        }
    }
    assert!(q.is_empty(), "{}: nothing left half-assembled", c.name);
    out
}

#[test]
fn fragmented_pings_reassemble_to_the_recorded_length() {
    let c = captures().remove(0);
    let packets = assembled_packets(&c);
    let mut n = 0;
    for rec in c
        .records
        .iter()
        .filter(|r| r.get("reassembled_from").is_some())
    {
        let frame = rec["frame"].as_u64().unwrap();
        let p = &packets[&frame];
        assert_eq!(p.len() as u64, rec["assembled_len"].as_u64().unwrap());
        let head_frame = rec["reassembled_from"][0].as_u64().unwrap();
        assert_eq!(
            &p[..1432],
            datagram(&c, &c.records[head_frame as usize - 1])
        );
        n += 1;
    }
    assert_eq!(n, 4, "four pings of 2028 bytes were fragmented");
}

/// The plaintext verb and payload recorded for each ZeroTier packet of both captures.
fn plaintexts() -> Vec<(String, Value, Verb, Vec<u8>)> {
    let mut out = Vec::new();
    for c in captures() {
        for rec in &c.records {
            let Some(hex) = rec.get("plaintext_hex") else {
                continue;
            };
            let bytes = hex::decode(s(hex)).unwrap();
            let verb = Verb::from_verb_byte(bytes[0]);
            assert_eq!(verb.name(), s(&rec["verb"]));
            let ctx = format!("{} frame {} {}", c.name, rec["frame"], verb);
            out.push((ctx, rec.clone(), verb, bytes[1..].to_vec()));
        }
    }
    out
}

#[test]
fn every_real_payload_parses_and_re_emits_byte_for_byte() {
    let all = plaintexts();
    assert_eq!(
        all.len(),
        330,
        "every ZeroTier packet of both captures, fragmented ones once"
    );
    for (ctx, _, verb, payload) in &all {
        let parsed = Payload::parse(*verb, payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(parsed.verb(), *verb);
        assert_eq!(&parsed.to_vec(), payload, "{ctx}: re-emitted bytes differ");
        // Every prefix either parses or errors; none panics.
        for n in 0..payload.len() {
            let _ = Payload::parse(*verb, &payload[..n]);
        }
    }
}

#[test]
fn parsed_fields_agree_with_the_reference_decode() {
    let mut checked = HashMap::<&str, usize>::new();
    for (ctx, rec, verb, payload) in &plaintexts() {
        let d = &rec["detail"];
        let key = match Payload::parse(*verb, payload).unwrap() {
            Payload::Hello(h) => {
                assert_eq!(
                    h.protocol_version as u64,
                    d["protocol"].as_u64().unwrap(),
                    "{ctx}"
                );
                let v = format!("{}.{}.{}", h.major, h.minor, h.revision);
                assert_eq!(v, s(&d["version"]), "{ctx}");
                assert_eq!(h.timestamp, d["timestamp"].as_u64().unwrap(), "{ctx}");
                assert_eq!(h.identity.address().to_string(), s(&d["identity"]), "{ctx}");
                assert_eq!(
                    h.physical_destination.unwrap().to_string(),
                    s(&d["phys_to"])
                );
                let planet = h.planet.unwrap();
                assert_eq!(planet.id, d["world_id"].as_u64().unwrap(), "{ctx}");
                assert_eq!(planet.timestamp, d["world_ts"].as_u64().unwrap(), "{ctx}");
                let moons = h.moons.unwrap();
                assert_eq!(
                    moons.len() as u64,
                    rec["hello_moon_count"].as_u64().unwrap()
                );
                assert_eq!(
                    verbs::hello::moon_section_offset(payload).unwrap().unwrap() + 28,
                    d["crypt_field_offset"].as_u64().unwrap() as usize,
                    "{ctx}"
                );
                "HELLO"
            }
            Payload::Ok(ok) => {
                assert_eq!(ok.in_re_verb.name(), s(&d["in_re_verb"]), "{ctx}");
                assert_eq!(ok.in_re_packet_id, hex_u64(&d["in_re_pid"]), "{ctx}");
                match &ok.body {
                    OkBody::Hello(h) => {
                        assert_eq!(h.protocol_version as u64, d["protocol"].as_u64().unwrap());
                        let v = format!("{}.{}.{}", h.major, h.minor, h.revision);
                        assert_eq!(v, s(&d["version"]), "{ctx}");
                        assert_eq!(h.physical_source.unwrap().to_string(), s(&d["phys_from"]));
                        let worlds = h.world_updates.unwrap();
                        assert_eq!(worlds.len() as u64, d["world_update_len"].as_u64().unwrap());
                        "OK(HELLO)"
                    }
                    OkBody::Whois(ids) => {
                        let got: Vec<String> =
                            ids.iter().map(|i| i.address().to_string()).collect();
                        let want: Vec<&str> =
                            d["identities"].as_array().unwrap().iter().map(s).collect();
                        assert_eq!(got, want, "{ctx}");
                        "OK(WHOIS)"
                    }
                    OkBody::Echo(_) => {
                        if let Some(nwid) = d.get("nwid") {
                            let ack = ok.body.config_ack().unwrap();
                            assert_eq!(ack.network_id.0, hex_u64(nwid), "{ctx}");
                            assert_eq!(ack.update_id, hex_u64(&d["config_update_id"]), "{ctx}");
                            "OK(ECHO) config ack"
                        } else {
                            "OK(ECHO)"
                        }
                    }
                    OkBody::MulticastGather(g) => {
                        assert!(!g.gathered.members.is_empty(), "{ctx}");
                        "OK(MULTICAST_GATHER)"
                    }
                    OkBody::MulticastFrame(_) => "OK(MULTICAST_FRAME)",
                    OkBody::NetworkConfig(chunk) => {
                        assert_eq!(&chunk[..8], &hex_u64(&d["nwid"]).to_be_bytes(), "{ctx}");
                        "OK(NETWORK_CONFIG_REQUEST)"
                    }
                    other => panic!("{ctx}: unexpected OK body {other:?}"),
                }
            }
            Payload::Error(e) => {
                assert_eq!(e.in_re_verb.name(), s(&d["in_re_verb"]), "{ctx}");
                assert_eq!(e.in_re_packet_id, hex_u64(&d["in_re_pid"]), "{ctx}");
                assert_eq!(e.code.name(), s(&d["error"]), "{ctx}");
                assert_eq!(
                    e.body,
                    ErrorBody::Network(zt_wire::network_id::NetworkId(hex_u64(&d["nwid"])))
                );
                "ERROR"
            }
            Payload::Whois(w) => {
                let got: Vec<String> = w.addresses.iter().map(|a| a.to_string()).collect();
                let want: Vec<&str> = d["addresses"].as_array().unwrap().iter().map(s).collect();
                assert_eq!(got, want, "{ctx}");
                "WHOIS"
            }
            Payload::Rendezvous(r) => {
                assert_eq!(r.peer.to_string(), s(&d["peer"]), "{ctx}");
                let ep = format!("{}/{}", r.endpoint.ip(), r.endpoint.port());
                assert_eq!(ep, s(&d["endpoint"]), "{ctx}");
                "RENDEZVOUS"
            }
            Payload::Frame(f) => {
                assert_eq!(f.nwid.0, hex_u64(&d["nwid"]), "{ctx}");
                assert_eq!(format!("{:#06x}", f.ethertype), s(&d["ethertype"]), "{ctx}");
                "FRAME"
            }
            Payload::ExtFrame(f) => {
                assert_eq!(f.nwid.0, hex_u64(&d["nwid"]), "{ctx}");
                assert_eq!(f.flags as u64, d["ext_flags"].as_u64().unwrap(), "{ctx}");
                assert_eq!(f.destination.to_string(), s(&d["dst_mac"]), "{ctx}");
                assert_eq!(f.source.to_string(), s(&d["src_mac"]), "{ctx}");
                assert_eq!(format!("{:#06x}", f.ethertype), s(&d["ethertype"]), "{ctx}");
                assert!(f.com.is_none());
                "EXT_FRAME"
            }
            Payload::MulticastLike(l) => {
                let got: Vec<String> = l
                    .entries
                    .iter()
                    .map(|(n, g)| format!("{:016x} {}/{:08x}", n.0, g.mac, g.adi))
                    .collect();
                let want: Vec<&str> = d["groups"].as_array().unwrap().iter().map(s).collect();
                assert_eq!(got, want, "{ctx}");
                "MULTICAST_LIKE"
            }
            Payload::PushDirectPaths(p) => {
                let got: Vec<String> = p
                    .paths
                    .iter()
                    .map(|p| match p.address {
                        PathAddress::V4(a) => format!("{}/{}", a.ip(), a.port()),
                        PathAddress::V6(a) => format!("{}/{}", a.ip(), a.port()),
                        PathAddress::Other { kind, .. } => format!("type {kind}"),
                    })
                    .collect();
                let want: Vec<&str> = d["endpoints"].as_array().unwrap().iter().map(s).collect();
                assert_eq!(got, want, "{ctx}");
                "PUSH_DIRECT_PATHS"
            }
            Payload::MulticastGather(g) => {
                assert!(g.gather_limit > 0 && g.com.is_some(), "{ctx}");
                "MULTICAST_GATHER"
            }
            Payload::MulticastFrame(f) => {
                assert!(f.group.mac.is_multicast(), "{ctx}");
                "MULTICAST_FRAME"
            }
            Payload::Echo(_) => "ECHO",
            Payload::Unparsed(v, _) => v.name(),
            other => panic!("{ctx}: unexpected {other:?}"),
        };
        *checked.entry(key).or_default() += 1;
    }
    // Every verb (and OK kind) the README lists as seen must have been checked.
    for k in [
        "HELLO",
        "OK(HELLO)",
        "OK(WHOIS)",
        "OK(ECHO)",
        "OK(ECHO) config ack",
        "OK(MULTICAST_GATHER)",
        "OK(MULTICAST_FRAME)",
        "OK(NETWORK_CONFIG_REQUEST)",
        "ERROR",
        "WHOIS",
        "RENDEZVOUS",
        "FRAME",
        "EXT_FRAME",
        "ECHO",
        "MULTICAST_LIKE",
        "PUSH_DIRECT_PATHS",
        "MULTICAST_GATHER",
        "MULTICAST_FRAME",
        "NETWORK_CREDENTIALS",
        "NETWORK_CONFIG_REQUEST",
        "NETWORK_CONFIG",
    ] {
        assert!(checked.contains_key(k), "no {k} checked; saw {checked:?}");
    }
}

/// The 48-byte key of every pair of nodes, from the secret identities.
fn peer_keys() -> HashMap<(String, String), PeerKey> {
    let ids: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CAPTURES}/identities.json")).unwrap(),
    )
    .unwrap();
    let nodes: Vec<Identity> = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Identity::from_string(s(&n["secret"])).unwrap())
        .collect();
    let mut keys = HashMap::new();
    for a in &nodes {
        for b in &nodes {
            if a.address() != b.address() {
                let k = a.agree(&b.to_public()).expect("key agreement");
                keys.insert(
                    (a.address().to_string(), b.address().to_string()),
                    PeerKey::new(k),
                );
            }
        }
    }
    keys
}

fn suite(bits: u64) -> CipherSuite {
    zt_wire::header::cipher_suite_from_bits(bits as u8).unwrap()
}

/// Needs zt-crypto's armor: dearmor every real packet (suites 0, 1 and 3, fragmented ones
/// after reassembly) and compare with the recorded plaintext.
#[test]
fn real_packets_decode_to_the_recorded_plaintext() {
    let keys = peer_keys();
    let mut n = 0;
    for c in captures() {
        let packets = assembled_packets(&c);
        for rec in c
            .records
            .iter()
            .filter(|r| r.get("plaintext_hex").is_some())
        {
            let ctx = format!("{} frame {}", c.name, rec["frame"]);
            let packet = packets[&rec["frame"].as_u64().unwrap()].clone();
            let key = &keys[&(s(&rec["zt_src"]).to_string(), s(&rec["zt_dst"]).to_string())];
            let decoded = verbs::decode(packet, key).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                decoded.suite,
                suite(rec["cipher"].as_u64().unwrap()),
                "{ctx}"
            );
            assert_eq!(
                decoded.header.compressed,
                rec["compressed"].as_bool().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                hex::encode(&decoded.plaintext[27..]),
                s(&rec["plaintext_hex"]),
                "{ctx}: plaintext differs"
            );
            n += 1;
        }
    }
    assert_eq!(n, 330);
}

/// Needs zt-crypto's armor. Salsa20/12 (suites 0 and 1) is deterministic given the packet ID,
/// so re-building an uncompressed real packet from its plaintext must give the captured bytes
/// exactly: header, flags, HELLO moon cipher and MAC.
#[test]
fn building_real_salsa_packets_reproduces_the_captured_bytes() {
    let keys = peer_keys();
    let mut n = 0;
    for c in captures() {
        for rec in &c.records {
            let Some(plain) = rec.get("plaintext_hex") else {
                continue;
            };
            let cipher = rec["cipher"].as_u64().unwrap();
            if cipher > 1 || rec["compressed"].as_bool().unwrap() || rec["hops"] != 0 {
                continue;
            }
            let plain = hex::decode(s(plain)).unwrap();
            let original = datagram(&c, rec);
            let h = HeaderRepr::parse(&PacketHeader::new_checked(original).unwrap());
            let key = &keys[&(h.source.to_string(), h.destination.to_string())];
            let built = verbs::build(
                &OutgoingPacket {
                    destination: h.destination,
                    source: h.source,
                    verb: Verb::from_verb_byte(plain[0]),
                    payload: &plain[1..],
                    packet_id: h.packet_id,
                    suite: suite(cipher),
                    compress: false,
                    mtu: 1432,
                },
                key,
            )
            .unwrap();
            assert_eq!(built.wire_packet_id, h.packet_id);
            assert_eq!(
                built.datagrams,
                vec![original.to_vec()],
                "{} frame {}",
                c.name,
                rec["frame"]
            );
            n += 1;
        }
    }
    assert_eq!(n, 31, "every unrelayed, uncompressed suite 0/1 packet");
}

/// Needs zt-crypto's armor: build → fragment → reassemble → decode for every suite we send,
/// with compression, on a real key.
#[test]
fn build_then_decode_round_trips_for_every_suite() {
    let keys = peer_keys();
    let key = &keys[&("a6c5664b6f".to_string(), "51479cea31".to_string())];
    let back = &keys[&("51479cea31".to_string(), "a6c5664b6f".to_string())];
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    for s in [
        CipherSuite::Poly1305None,
        CipherSuite::Poly1305Salsa2012,
        CipherSuite::AesGmacSiv,
    ] {
        for (compress, mtu) in [(false, 1432), (true, 1432), (false, 1400)] {
            let p = OutgoingPacket {
                destination: "51479cea31".parse().unwrap(),
                source: "a6c5664b6f".parse().unwrap(),
                verb: Verb::Echo,
                payload: &payload,
                packet_id: 0x0123456789abcdef,
                suite: s,
                compress,
                mtu,
            };
            let built = verbs::build(&p, key).unwrap();
            assert_eq!(
                built.datagrams.len() > 1,
                !compress,
                "{s:?} compress={compress}"
            );
            let mut q = Reassembler::new();
            let mut whole = None;
            for d in built.datagrams.iter().rev() {
                let r = match classify_datagram(d) {
                    DatagramKind::Fragment => q.on_fragment(0, d).unwrap(),
                    _ if built.datagrams.len() == 1 => Reassembly::Complete(d.clone()),
                    _ => q.on_head(0, d).unwrap(),
                };
                if let Reassembly::Complete(p) = r {
                    whole = Some(p);
                }
            }
            let decoded = verbs::decode(whole.expect("complete"), back).unwrap();
            assert_eq!(decoded.suite, s);
            assert_eq!(decoded.header.packet_id, built.wire_packet_id);
            assert_eq!(decoded.verb(), Verb::Echo);
            assert_eq!(decoded.payload(), &payload[..]);
            // One flipped bit anywhere after the header's hop bits breaks the MAC.
            let mut bad = built.datagrams[0].clone();
            if built.datagrams.len() == 1 {
                bad[40] ^= 1;
                assert!(verbs::decode(bad, back).is_err());
            }
        }
    }
}

/// Needs zt-crypto's armor: a HELLO with moons goes out with its moon list hidden by
/// `cryptField` (the captures have none) and comes back in clear.
#[test]
fn hello_moon_list_is_hidden_on_the_wire_and_restored_by_decode() {
    use zt_wire::inet::InetAddress;
    use zt_wire::verbs::{Hello, MoonRef, WorldRef};
    let keys = peer_keys();
    let key = &keys[&("a6c5664b6f".to_string(), "ae2436cf84".to_string())];
    let back = &keys[&("ae2436cf84".to_string(), "a6c5664b6f".to_string())];
    let ids: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CAPTURES}/identities.json")).unwrap(),
    )
    .unwrap();
    let member = Identity::from_string(s(&ids["nodes"][2]["public"])).unwrap();
    let hello = Hello {
        protocol_version: 12,
        major: 1,
        minor: 14,
        revision: 1,
        timestamp: 1795619851927,
        identity: member,
        physical_destination: Some(InetAddress::from(
            "10.77.0.1:9993".parse::<SocketAddr>().unwrap(),
        )),
        planet: Some(WorldRef {
            id: 7777777,
            timestamp: 1795619850347,
        }),
        moons: Some(vec![MoonRef {
            world_type: 127,
            id: 0xae2436cf84,
            timestamp: 0,
        }]),
    };
    let mut payload = Vec::new();
    hello.write(&mut payload);
    let built = verbs::build(
        &OutgoingPacket {
            destination: "ae2436cf84".parse().unwrap(),
            source: "a6c5664b6f".parse().unwrap(),
            verb: Verb::Hello,
            payload: &payload,
            packet_id: 0x5e95307e003925b5,
            suite: CipherSuite::Poly1305None,
            compress: true,
            mtu: 1432,
        },
        key,
    )
    .unwrap();
    let wire = &built.datagrams[0];
    let tail = verbs::hello::moon_section_offset(&payload)
        .unwrap()
        .unwrap();
    assert_eq!(
        &wire[28..28 + tail],
        &payload[..tail],
        "suite 0: clear up to the moon list"
    );
    assert_ne!(&wire[28 + tail..], &payload[tail..], "moon list hidden");
    assert_eq!(wire[27], 0x01, "HELLO is never compressed");
    let decoded = verbs::decode(wire.clone(), back).unwrap();
    assert_eq!(Hello::read(decoded.payload()).unwrap(), hello);
}
