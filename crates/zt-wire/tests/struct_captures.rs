//! Network structures against the real traffic in `interop/captures/` (ZeroTier One 1.14.1
//! controller and member, libzt 1.8.4 member): config requests, signed config chunks,
//! the assembled config Dictionaries, and NETWORK_CREDENTIALS with COMs and COOs.

use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use zt_crypto::Identity;
use zt_wire::coo::Thing;
use zt_wire::credential::Verification;
use zt_wire::inet::InetAddress;
use zt_wire::netconf::{NetworkConfig, NetworkType, SPECIALIST_ACTIVE_BRIDGE};
use zt_wire::network_id::NetworkId;
use zt_wire::rules::Rule;
use zt_wire::verbs::network::{
    ConfigAssembler, ConfigChunk, ConfigPayload, NetworkConfigRequest, NetworkCredentials,
    SoftwareVersion,
};

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/interop/captures"
);
const NWID: NetworkId = NetworkId(0x51479cea31ccae5c);
const OK: u8 = 0x03;

/// The plaintext (verb byte + decompressed payload) of one frame of a capture.
fn frame(capture: &str, number: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{CAPTURES}/{capture}.decoded.jsonl")).unwrap();
    let record: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["frame"].as_u64() == Some(number))
        .unwrap_or_else(|| panic!("frame {number} of {capture}"));
    hex::decode(record["plaintext_hex"].as_str().unwrap()).unwrap()
}

/// The verb payload: after the verb byte, and after OK's `[1] in-re verb [8] in-re packet id`.
fn payload(plaintext: &[u8]) -> &[u8] {
    if plaintext[0] == OK {
        &plaintext[10..]
    } else {
        &plaintext[1..]
    }
}

fn json(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{CAPTURES}/{file}")).unwrap()).unwrap()
}

fn identity(role: &str) -> Identity {
    let text = std::fs::read_to_string(format!("{CAPTURES}/identities.json")).unwrap();
    let ids: Value = serde_json::from_str(&text).unwrap();
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == role)
        .unwrap();
    Identity::from_string(node["secret"].as_str().unwrap()).unwrap()
}

fn config_chunk(capture: &str, number: u64) -> ConfigChunk {
    match ConfigPayload::parse(payload(&frame(capture, number))).unwrap() {
        ConfigPayload::Chunk(c) => c,
        ConfigPayload::Legacy { .. } => panic!("expected a signed chunk"),
    }
}

/// (capture, frame, recipient role) of every config chunk in the captures.
const CHUNKS: [(&str, u64, &str); 4] = [
    ("zt114-join", 67, "member"),
    ("zt114-join", 68, "member"),
    ("zt114-libzt", 45, "libzt"),
    ("zt114-libzt", 46, "libzt"),
];

#[test]
fn config_chunks_verify_assemble_and_reserialize() {
    let controller = identity("controller");
    for (capture, number, recipient) in CHUNKS {
        let raw = frame(capture, number);
        let chunk = config_chunk(capture, number);
        assert_eq!(chunk.network_id, NWID);
        assert_eq!(
            (chunk.index, chunk.data.len()),
            (0, chunk.total_len as usize),
            "one chunk holds it all"
        );
        assert_eq!(chunk.flags, 0);
        assert_eq!(
            chunk.verify(&controller),
            Verification::Valid,
            "{capture} {number}"
        );
        assert_eq!(chunk.verify(&controller.to_public()), Verification::Valid);
        assert_eq!(
            chunk.verify(&identity("member")),
            Verification::NeedIdentity(NWID.controller())
        );
        let mut forged = chunk.clone();
        forged.data[3] ^= 1;
        assert_eq!(forged.verify(&controller), Verification::Invalid);
        assert_eq!(
            chunk.to_bytes().unwrap(),
            payload(&raw),
            "chunk re-serializes byte for byte"
        );

        // Re-signing the same Dictionary reproduces the controller's signature exactly.
        let resigned =
            ConfigChunk::split_and_sign(NWID, &chunk.data, chunk.update_id, &controller).unwrap();
        assert_eq!(resigned, vec![chunk.clone()]);

        let mut assembler = ConfigAssembler::new(NWID);
        let dict = assembler
            .accept(&chunk, &controller)
            .unwrap()
            .expect("complete");
        assert_eq!(dict, chunk.data);

        let config = NetworkConfig::parse(&dict).unwrap();
        assert_eq!(
            config.to_bytes().unwrap(),
            dict,
            "config re-serializes byte for byte"
        );
        check_lab_config(&config, &identity(recipient), &controller);
    }
}

fn check_lab_config(config: &NetworkConfig, member: &Identity, controller: &Identity) {
    // captures/README.md and network.json: the lab network's settings.
    assert_eq!(config.version, 7);
    assert_eq!(config.network_id, NWID);
    assert_eq!(config.issued_to, member.address());
    assert_eq!(config.name, "zt-capture-lab");
    assert_eq!(config.mtu, 2800);
    assert_eq!(config.multicast_limit, 32);
    assert_eq!(config.flags, 0x06, "broadcast + NDP emulation");
    assert!(config.enable_broadcast() && config.ndp_emulation());
    assert_eq!(config.network_type, NetworkType::Private);
    assert_eq!(config.revision, 1);
    assert_eq!(config.credential_time_max_delta, 1_800_000);
    assert_eq!(config.rules, vec![Rule::accept()]);
    assert_eq!(
        config.specialists,
        vec![SPECIALIST_ACTIVE_BRIDGE | controller.address().to_u64()]
    );
    assert_eq!(
        config.active_bridges().collect::<Vec<_>>(),
        vec![controller.address()]
    );
    let route_target: InetAddress = "172.27.27.0/24".parse().unwrap();
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].target, route_target);
    assert!(config.routes[0].via.is_nil());
    assert_eq!(config.dns.domain, "lab.zt");
    assert_eq!(
        config.dns.servers,
        vec!["172.27.27.1/0".parse::<InetAddress>().unwrap()]
    );
    assert_eq!(config.sso.version, 0);
    assert!(!config.sso.enabled);

    // Static IPs: rfc4193 /88, 6plane /40 and one IPv4 from the pool, /24 from the route.
    let rfc4193 = InetAddress::new(IpAddr::V6(NWID.rfc4193_address(member.address())), 88);
    let sixplane = InetAddress::new(IpAddr::V6(NWID.sixplane_address(member.address())), 40);
    assert!(
        config.static_ips.contains(&rfc4193),
        "{:?}",
        config.static_ips
    );
    assert!(config.static_ips.contains(&sixplane));
    let v4: Vec<_> = config
        .static_ips
        .iter()
        .filter(|a| matches!(a.ip(), Some(IpAddr::V4(_))))
        .collect();
    assert_eq!(v4.len(), 1);
    assert_eq!(v4[0].bits(), 24);
    // members.json / network.json: the controller's record of this member and network.
    let members = json("members.json");
    let record = &members[member.address().to_string()];
    assert_eq!(
        record["identity"].as_str(),
        Some(member.to_public_string().as_str())
    );
    let assigned: Vec<IpAddr> = record["ipAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(assigned, vec![v4[0].ip().unwrap()]);
    let network = json("network.json");
    assert_eq!(config.name, network["name"].as_str().unwrap());
    assert_eq!(u64::from(config.mtu), network["mtu"].as_u64().unwrap());
    assert_eq!(
        u64::from(config.multicast_limit),
        network["multicastLimit"].as_u64().unwrap()
    );
    assert_eq!(config.revision, network["revision"].as_u64().unwrap());
    assert_eq!(
        config.dns.domain,
        network["dns"]["domain"].as_str().unwrap()
    );

    // COM: 7 qualifiers for this member, signed by the controller.
    let com = config.com.as_ref().expect("COM");
    assert_eq!(com.qualifiers.len(), 7);
    assert_eq!(com.network_id(), Some(NWID));
    assert_eq!(com.issued_to(), Some(member.address()));
    assert_eq!(com.timestamp(), Some(config.timestamp));
    assert_eq!(com.verify(controller), Verification::Valid);
    assert!(
        com.agrees_with(com, member),
        "a COM agrees with itself for its own member"
    );
    assert!(
        !com.agrees_with(com, controller),
        "identity-hash qualifiers name the member"
    );

    // COO: one certificate (id 1) with every assigned IP.
    assert_eq!(config.certificates_of_ownership.len(), 1);
    let coo = &config.certificates_of_ownership[0];
    assert_eq!((coo.id, coo.issued_to), (1, member.address()));
    assert_eq!(coo.verify(controller), Verification::Valid);
    assert_eq!(coo.things.len(), config.static_ips.len());
    for ip in &config.static_ips {
        let thing = match ip.ip().unwrap() {
            IpAddr::V4(a) => Thing::Ipv4(a),
            IpAddr::V6(a) => Thing::Ipv6(a),
        };
        assert!(coo.owns(&thing), "{ip}");
    }
}

#[test]
fn config_request_metadata_matches_both_implementations() {
    for (capture, number, minor, revision) in [("zt114-join", 65, 14, 1), ("zt114-libzt", 43, 8, 4)]
    {
        let raw = frame(capture, number);
        let request = NetworkConfigRequest::parse(payload(&raw)).unwrap();
        assert_eq!(request.network_id, NWID);
        assert_eq!((request.have_revision, request.have_timestamp), (0, 0));
        assert_eq!(request.metadata_u64("revr"), 1);
        assert_eq!(request.metadata_u64("minv"), minor);
        assert_eq!(
            request.to_bytes().unwrap(),
            payload(&raw),
            "re-serializes byte for byte"
        );
        if capture == "zt114-join" {
            // Our writer produces the 1.14.1 metadata exactly.
            let version = SoftwareVersion {
                protocol: 12,
                major: 1,
                minor,
                revision,
            };
            let ours = NetworkConfigRequest::standard_metadata(version, "linux/x86_64").unwrap();
            assert_eq!(ours, request.metadata);
        } else {
            assert_eq!(request.metadata_u64("revv"), revision);
        }
    }
}

#[test]
fn credentials_parse_verify_agree_and_reserialize() {
    let controller = identity("controller");
    let member = identity("member");
    // Frame 72: member → controller; frame 94: controller → member.
    let from_member = NetworkCredentials::parse(payload(&frame("zt114-join", 72))).unwrap();
    let from_controller = NetworkCredentials::parse(payload(&frame("zt114-join", 94))).unwrap();
    for (creds, sender, number) in [
        (&from_member, &member, 72),
        (&from_controller, &controller, 94),
    ] {
        assert_eq!(
            creds.to_bytes().unwrap(),
            payload(&frame("zt114-join", number))
        );
        assert_eq!(creds.coms.len(), 1);
        assert!(
            creds.capabilities.is_empty() && creds.tags.is_empty() && creds.revocations.is_empty()
        );
        assert_eq!(creds.certificates_of_ownership.len(), 1);
        assert_eq!(creds.coms[0].verify(&controller), Verification::Valid);
        assert_eq!(creds.coms[0].issued_to(), Some(sender.address()));
        assert_eq!(
            creds.certificates_of_ownership[0].verify(&controller),
            Verification::Valid
        );
        assert_eq!(
            creds.certificates_of_ownership[0].verify(&member),
            Verification::NeedIdentity(controller.address())
        );
    }
    let (member_com, controller_com) = (&from_member.coms[0], &from_controller.coms[0]);
    // The member pushes exactly the COM and COO of its latest config (the push, frame 68).
    let latest = NetworkConfig::parse(&config_chunk("zt114-join", 68).data).unwrap();
    assert_eq!(latest.com.as_ref(), Some(&from_member.coms[0]));
    assert_eq!(
        latest.certificates_of_ownership,
        from_member.certificates_of_ownership
    );
    assert!(member_com.agrees_with(controller_com, &controller));
    assert!(controller_com.agrees_with(member_com, &member));
    assert!(
        !controller_com.agrees_with(member_com, &controller),
        "wrong sender identity"
    );
    let mut stale = member_com.clone();
    stale.qualifiers[0].value -= 3_600_000;
    assert!(
        !controller_com.agrees_with(&stale, &member),
        "timestamp outside ctmd"
    );
    let mut other_net = member_com.clone();
    other_net.qualifiers[1].value ^= 1;
    assert!(!controller_com.agrees_with(&other_net, &member));

    // The controller's COO lists its own IPv4 (172.27.27.15, README).
    let coo = &from_controller.certificates_of_ownership[0];
    assert!(coo.owns(&Thing::Ipv4(Ipv4Addr::new(172, 27, 27, 15))));
}

#[test]
fn truncated_payloads_are_errors_not_panics() {
    let creds = payload(&frame("zt114-join", 72)).to_vec();
    let com_len = NetworkCredentials::parse(&creds).unwrap().coms[0]
        .to_bytes()
        .len();
    for len in 1..creds.len() {
        let result = NetworkCredentials::parse(&creds[..len]);
        // Sections may be missing entirely, but never cut in the middle.
        let at_section_boundary = len == com_len
            || len == com_len + 1
            || len == com_len + 3
            || len == com_len + 5
            || len == com_len + 7;
        assert_eq!(result.is_ok(), at_section_boundary, "prefix of {len} bytes");
    }

    let chunk = payload(&frame("zt114-join", 67)).to_vec();
    let dict_end = 8 + 2 + 1226;
    for len in 0..chunk.len() {
        let result = ConfigPayload::parse(&chunk[..len]);
        match len {
            l if l == dict_end => assert!(matches!(result, Ok(ConfigPayload::Legacy { .. }))),
            _ => assert!(result.is_err(), "prefix of {len} bytes"),
        }
    }

    let request = payload(&frame("zt114-join", 65)).to_vec();
    let meta_end = request.len() - 16;
    for len in 0..request.len() {
        assert_eq!(
            NetworkConfigRequest::parse(&request[..len]).is_ok(),
            len >= meta_end,
            "prefix of {len}"
        );
    }
}

#[test]
fn assembler_takes_chunks_in_any_order_and_refuses_bad_ones() {
    let controller = identity("controller");
    let member = identity("member");
    let mut config = NetworkConfig::parse(&config_chunk("zt114-join", 67).data).unwrap();
    // Make a config that needs three chunks: a long rule list.
    config.rules = (0..1023u16)
        .map(|p| {
            let ip = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, p + 1);
            Rule::new(zt_wire::rules::RuleKind::Ipv6Source { ip, bits: 128 })
        })
        .chain([Rule::accept()])
        .collect();
    let dict = config.to_bytes().unwrap();
    assert!(dict.len() > 2 * 9740);
    let chunks = ConfigChunk::split_and_sign(NWID, &dict, 0x1234, &controller).unwrap();
    assert!(chunks.len() >= 3);
    assert!(chunks
        .iter()
        .all(|c| c.data.len() <= 9740 && c.total_len as usize == dict.len()));

    let mut assembler = ConfigAssembler::new(NWID);
    let last = chunks.len() - 1;
    assert_eq!(assembler.accept(&chunks[last], &controller).unwrap(), None);
    assert_eq!(
        assembler.accept(&chunks[last], &controller).unwrap(),
        None,
        "duplicate ignored"
    );
    for chunk in chunks.iter().take(last).skip(2) {
        assert_eq!(assembler.accept(chunk, &controller).unwrap(), None);
    }
    assert_eq!(assembler.accept(&chunks[0], &controller).unwrap(), None);
    let done = assembler
        .accept(&chunks[1], &controller)
        .unwrap()
        .expect("complete");
    assert_eq!(done, dict);
    assert_eq!(NetworkConfig::parse(&done).unwrap(), config);
    assert_eq!(assembler.pending_updates(), 0);

    // Wrong signer, tampered data, oversize and inconsistent chunks are refused.
    let mut assembler = ConfigAssembler::new(NWID);
    assert!(assembler.accept(&chunks[0], &member).is_err());
    let mut tampered = chunks[0].clone();
    tampered.data[0] ^= 1;
    assert!(assembler.accept(&tampered, &controller).is_err());
    let mut past_end = chunks[last].clone();
    past_end.total_len -= 1;
    assert!(assembler.accept_verified(&past_end).is_err());
    let mut huge = chunks[0].clone();
    huge.total_len = 484_520;
    assert!(assembler.accept_verified(&huge).is_err());
    assembler.accept_verified(&chunks[0]).unwrap();
    let mut other_total = chunks[1].clone();
    other_total.total_len += 1;
    assert!(assembler.accept_verified(&other_total).is_err());
    let mut overlapping = chunks[1].clone();
    overlapping.index -= 1;
    assert!(assembler.accept_verified(&overlapping).is_err());
    let mut other_network = chunks[1].clone();
    other_network.network_id = NetworkId(NWID.0 + 1);
    assert!(assembler.accept_verified(&other_network).is_err());
    assert!(
        ConfigChunk::split_and_sign(NWID, &dict, 0, &controller).is_err(),
        "update id 0"
    );
    assert!(
        ConfigChunk::split_and_sign(NWID, &dict, 1, &member).is_err(),
        "not the controller"
    );

    // At most three updates are in flight; the least recently used one is dropped.
    let mut assembler = ConfigAssembler::new(NWID);
    for update_id in 1..=4u64 {
        let c = ConfigChunk::split_and_sign(NWID, &dict, update_id, &controller).unwrap();
        assembler.accept_verified(&c[0]).unwrap();
    }
    assert_eq!(assembler.pending_updates(), 3);
    let first = ConfigChunk::split_and_sign(NWID, &dict, 1, &controller).unwrap();
    assert_eq!(assembler.accept_verified(&first[1]).unwrap(), None);
    assert_eq!(
        assembler.accept_verified(&first[2]).unwrap(),
        None,
        "update 1 was dropped, so still incomplete"
    );
}
