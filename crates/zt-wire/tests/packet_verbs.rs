//! Round trips for every verb payload, built from real identities and addresses, and
//! truncation: every prefix shorter than a payload's required part is an error, and no prefix
//! panics.

use std::net::SocketAddr;
use zt_crypto::Identity;
use zt_wire::header::Verb;
use zt_wire::inet::InetAddress;
use zt_wire::mac::Mac;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::{
    DirectPath, Echo, ErrorBody, ErrorCode, ErrorPayload, ExtFrame, Frame, GatherMembers, Hello,
    MoonRef, MulticastFrame, MulticastGather, MulticastGroup, MulticastLike, OkBody, OkHello,
    OkMulticastFrame, OkMulticastGather, OkPayload, PathAddress, Payload, PushDirectPaths,
    Rendezvous, UserMessage, Whois, WorldRef,
};

const ROOT: &str = "ae2436cf84:0:0310beccac2ff571eed74ce1349f196cb0d10317a538d4c6af84f5fc7b7eb3707c119ce5d811d5114e7522363326725be007ac4ecd54a272d21764188d43d66d";
const MEMBER: &str = "a6c5664b6f:0:f1171dfc6e8330dea8d879b1509c756649c4e87821216b3a9eb7cf7daaac035a408c29349e1e6b66990a633bddcd87d20408785f73bc5f09b850a8421dd930e4";
const NWID: NetworkId = NetworkId(0x51479cea31ccae5c);

/// A COM as it appears inside MULTICAST_GATHER in the join capture (shape only: marker,
/// 1 qualifier, signer, 96-byte signature).
fn com_bytes() -> Vec<u8> {
    let mut c = vec![0x01, 0x00, 0x01];
    c.extend_from_slice(&[7u8; 24]);
    c.extend_from_slice(&[0x51, 0x47, 0x9c, 0xea, 0x31]);
    c.extend_from_slice(&[9u8; 96]);
    c
}

fn group() -> MulticastGroup {
    MulticastGroup {
        mac: Mac::BROADCAST,
        adi: 0xac1b1b0f,
    }
}

/// (payload, length of the part that must be present) for one example of every verb shape.
fn examples(com: &[u8]) -> Vec<(Payload<'_>, usize)> {
    let root = Identity::from_string(ROOT).unwrap();
    let member = Identity::from_string(MEMBER).unwrap();
    let v4: SocketAddr = "10.77.0.1:9993".parse().unwrap();
    let v6: SocketAddr = "[fd51:479c:ea31:ccae:5c99:9351:479c:ea31]:9993"
        .parse()
        .unwrap();
    let hello = Hello {
        protocol_version: 12,
        major: 1,
        minor: 14,
        revision: 1,
        timestamp: 1795619851904,
        identity: member.clone(),
        physical_destination: Some(InetAddress::from(v4)),
        planet: Some(WorldRef {
            id: 7777777,
            timestamp: 1795619850347,
        }),
        moons: Some(vec![
            MoonRef {
                world_type: 127,
                id: 0xae2436cf84,
                timestamp: 0,
            },
            MoonRef {
                world_type: 127,
                id: 42,
                timestamp: 99,
            },
        ]),
    };
    let gathered = GatherMembers {
        total_known: 3,
        members: vec![root.address(), member.address()],
    };
    vec![
        (Payload::Hello(hello.clone()), 13 + 71),
        (
            Payload::Hello(Hello {
                moons: None,
                planet: None,
                ..hello.clone()
            }),
            13 + 71,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::Hello,
                in_re_packet_id: 0xc0a14ad28c221147,
                body: OkBody::Hello(OkHello {
                    timestamp: 1795619851927,
                    protocol_version: 12,
                    major: 1,
                    minor: 14,
                    revision: 1,
                    physical_source: Some(InetAddress::from(v6)),
                    world_updates: Some(&[1, 2, 3]),
                }),
            }),
            9 + 13,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::Whois,
                in_re_packet_id: 1,
                body: OkBody::Whois(vec![root.clone(), member.clone()]),
            }),
            9 + 71,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::Echo,
                in_re_packet_id: 2,
                body: OkBody::Echo(b"ping"),
            }),
            9,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::MulticastGather,
                in_re_packet_id: 3,
                body: OkBody::MulticastGather(OkMulticastGather {
                    nwid: NWID,
                    group: group(),
                    gathered: gathered.clone(),
                }),
            }),
            usize::MAX,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::MulticastFrame,
                in_re_packet_id: 4,
                body: OkBody::MulticastFrame(OkMulticastFrame {
                    nwid: NWID,
                    group: group(),
                    flags: 0,
                    com: Some(com),
                    gathered: Some(gathered.clone()),
                }),
            }),
            usize::MAX,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::ExtFrame,
                in_re_packet_id: 5,
                body: OkBody::ExtFrame(NWID),
            }),
            usize::MAX,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::NetworkConfigRequest,
                in_re_packet_id: 6,
                body: OkBody::NetworkConfig(&[0x51, 0x47]),
            }),
            9,
        ),
        (
            Payload::Ok(OkPayload {
                in_re_verb: Verb::Unknown(0x1e),
                in_re_packet_id: 7,
                body: OkBody::Other(&[1]),
            }),
            9,
        ),
        (
            Payload::Error(ErrorPayload {
                in_re_verb: Verb::NetworkConfigRequest,
                in_re_packet_id: 0xf77c219e687375f8,
                code: ErrorCode::NetworkAccessDenied,
                body: ErrorBody::Network(NWID),
            }),
            usize::MAX,
        ),
        (
            Payload::Error(ErrorPayload {
                in_re_verb: Verb::MulticastFrame,
                in_re_packet_id: 8,
                code: ErrorCode::UnwantedMulticast,
                body: ErrorBody::UnwantedMulticast {
                    nwid: NWID,
                    group: group(),
                },
            }),
            usize::MAX,
        ),
        (
            Payload::Error(ErrorPayload {
                in_re_verb: Verb::NetworkConfigRequest,
                in_re_packet_id: 9,
                code: ErrorCode::NetworkAuthenticationRequired,
                body: ErrorBody::AuthenticationRequired {
                    nwid: NWID,
                    info: Some(b"aV=1\n"),
                },
            }),
            10 + 8,
        ),
        (
            Payload::Error(ErrorPayload {
                in_re_verb: Verb::Hello,
                in_re_packet_id: 10,
                code: ErrorCode::IdentityCollision,
                body: ErrorBody::Other(&[]),
            }),
            usize::MAX,
        ),
        (
            Payload::Whois(Whois {
                addresses: vec![root.address(), member.address()],
            }),
            0,
        ),
        (
            Payload::Rendezvous(Rendezvous {
                flags: 0,
                peer: member.address(),
                endpoint: v4,
            }),
            usize::MAX,
        ),
        (
            Payload::Rendezvous(Rendezvous {
                flags: 0,
                peer: root.address(),
                endpoint: v6,
            }),
            usize::MAX,
        ),
        (
            Payload::Frame(Frame {
                nwid: NWID,
                ethertype: 0x0806,
                payload: &[1, 2, 3],
            }),
            10,
        ),
        (
            Payload::ExtFrame(ExtFrame {
                nwid: NWID,
                flags: 0x10,
                com: Some(com),
                destination: Mac([0x06, 0x12, 0xa2, 0xc6, 0x47, 0x0a]),
                source: Mac([0x5e, 0x08, 0x09, 0x57, 0xa1, 0xf3]),
                ethertype: 0x0800,
                payload: &[0x45; 20],
            }),
            9 + com.len() + 14,
        ),
        (Payload::Echo(Echo { data: b"keepalive" }), 0),
        (
            Payload::MulticastLike(MulticastLike {
                entries: vec![(NWID, group()), (NetworkId(1), MulticastGroup::default())],
            }),
            0,
        ),
        (
            Payload::PushDirectPaths(PushDirectPaths {
                paths: vec![
                    DirectPath {
                        flags: 0,
                        extension: &[],
                        address: PathAddress::V4("10.77.0.2:9993".parse().unwrap()),
                    },
                    DirectPath {
                        flags: 2,
                        extension: &[1, 2],
                        address: PathAddress::V6("[::1]:1".parse().unwrap()),
                    },
                    DirectPath {
                        flags: 1,
                        extension: &[],
                        address: PathAddress::Other {
                            kind: 9,
                            bytes: &[1, 2, 3],
                        },
                    },
                ],
            }),
            usize::MAX,
        ),
        (
            Payload::MulticastGather(MulticastGather {
                nwid: NWID,
                flags: 0,
                group: group(),
                gather_limit: 32,
                com: Some(com),
            }),
            usize::MAX,
        ),
        (
            Payload::MulticastFrame(MulticastFrame {
                nwid: NWID,
                flags: 0x08,
                com: Some(com),
                gather_limit: Some(32),
                source: Some(Mac([0x06, 0x12, 0xa2, 0xc6, 0x47, 0x0a])),
                group: group(),
                ethertype: 0x0806,
                payload: &[0; 28],
            }),
            9 + com.len() + 4 + 6 + 12,
        ),
        (
            Payload::MulticastFrame(MulticastFrame {
                nwid: NWID,
                flags: 0,
                com: None,
                gather_limit: None,
                source: None,
                group: group(),
                ethertype: 0x0806,
                payload: &[],
            }),
            usize::MAX,
        ),
        (
            Payload::UserMessage(UserMessage {
                type_id: 0x10000,
                data: b"hi",
            }),
            8,
        ),
        (Payload::Nop, 0),
        (
            Payload::Unparsed(Verb::NetworkCredentials, &[0x00, 0, 0]),
            0,
        ),
    ]
}

#[test]
fn every_payload_round_trips() {
    let com = com_bytes();
    for (p, _) in examples(&com) {
        let bytes = p.to_vec();
        let back = Payload::parse(p.verb(), &bytes).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        assert_eq!(back, p);
        assert_eq!(back.to_vec(), bytes);
    }
}

/// `required` is the length below which a prefix must fail; `usize::MAX` means every proper
/// prefix must fail (a format with no optional tail).
#[test]
fn truncated_payloads_are_errors_never_panics() {
    let com = com_bytes();
    for (p, required) in examples(&com) {
        let bytes = p.to_vec();
        for n in 0..bytes.len() {
            let r = Payload::parse(p.verb(), &bytes[..n]);
            if n < required.min(bytes.len()) {
                assert!(
                    r.is_err(),
                    "{:?}: prefix of {n}/{} parsed: {r:?}",
                    p.verb(),
                    bytes.len()
                );
            }
        }
    }
}

#[test]
fn hello_optional_fields_stop_at_the_first_absent_one() {
    let com = com_bytes();
    let Payload::Hello(full) = examples(&com).remove(0).0 else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    full.write(&mut bytes);
    // identity end = 84; + 7 INETADDR = 91; + 16 planet = 107; + 2 + 2×17 moons = 143.
    assert_eq!(bytes.len(), 143);
    let at = |n: usize| Hello::read(&bytes[..n]).unwrap();
    assert_eq!(at(84).physical_destination, None);
    assert_eq!(at(91).physical_destination, full.physical_destination);
    assert_eq!(at(91).planet, None);
    assert_eq!(at(107).planet, full.planet);
    assert_eq!(at(107).moons, None);
    assert_eq!(at(143).moons, full.moons);
    assert!(
        Hello::read(&bytes[..142]).is_err(),
        "a cut moon list is an error"
    );
    assert_eq!(
        zt_wire::verbs::hello::moon_section_offset(&bytes).unwrap(),
        Some(107)
    );
    assert_eq!(
        zt_wire::verbs::hello::peek_identity(&bytes).unwrap(),
        full.identity
    );
}

#[test]
fn flag_bits_implied_by_optional_fields_follow_the_fields() {
    // EXT_FRAME with the COM flag set by the caller but no COM: the flag is not written.
    let f = ExtFrame {
        nwid: NWID,
        flags: 0x01 | 0x10,
        com: None,
        destination: Mac::BROADCAST,
        source: Mac([2, 0, 0, 0, 0, 1]),
        ethertype: 0x0800,
        payload: &[],
    };
    let mut b = Vec::new();
    f.write(&mut b);
    assert_eq!(b[8], 0x10);
    let back = ExtFrame::read(&b).unwrap();
    assert!(back.ack_requested());
    assert_eq!(back.com, None);
}

#[test]
fn bad_values_are_rejected() {
    let com = com_bytes();
    // RENDEZVOUS with address length 5.
    assert!(Rendezvous::read(&[0, 1, 2, 3, 4, 5, 0x27, 0x09, 5, 1, 2, 3, 4, 5]).is_err());
    // PUSH_DIRECT_PATHS: type 4 with length 5.
    assert!(PushDirectPaths::read(&[0, 1, 0, 0, 0, 4, 5, 1, 2, 3, 4, 5]).is_err());
    // A COM with 9 qualifiers inside MULTICAST_GATHER.
    let mut g = Vec::new();
    MulticastGather {
        nwid: NWID,
        flags: 0,
        group: group(),
        gather_limit: 1,
        com: Some(&com),
    }
    .write(&mut g);
    g[23 + 2] = 9;
    assert!(MulticastGather::read(&g).is_err());
    // A COM that does not start with 0x01.
    g[23] = 2;
    assert!(MulticastGather::read(&g).is_err());
    // A count promising more members than there are bytes.
    let mut o = Vec::new();
    OkPayload {
        in_re_verb: Verb::MulticastGather,
        in_re_packet_id: 0,
        body: OkBody::MulticastGather(OkMulticastGather {
            nwid: NWID,
            group: group(),
            gathered: GatherMembers {
                total_known: 0,
                members: vec![],
            },
        }),
    }
    .write(&mut o);
    let n = o.len();
    o[n - 2..].copy_from_slice(&[0xff, 0xff]);
    assert!(OkPayload::read(&o).is_err());
}
