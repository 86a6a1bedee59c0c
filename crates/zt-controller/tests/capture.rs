//! Against the real ZeroTier One 1.14.1 controller of `shared/interop/captures`: its stored JSON
//! records, the addresses it assigned, and the exact network config it sent.
use std::path::PathBuf;

use serde_json::Value;
use zt_controller::controller::{Decision, RequestMetadata};
use zt_controller::issue::build_config;
use zt_controller::json::{
    member_from_json, member_to_json, network_from_json, network_patch_from_json, network_to_json,
};
use zt_controller::{Controller, MemberPatch, MemoryStorage};
use zt_crypto::Identity;
use zt_wire::dictionary::Dictionary;

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/interop/captures")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(captures().join(name)).expect("capture file");
    serde_json::from_str(&text).expect("capture JSON")
}

/// `identities.json` secret identity of the node with `role`.
fn secret_identity(role: &str) -> Identity {
    let ids = load("identities.json");
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == role)
        .unwrap();
    Identity::from_string(node["secret"].as_str().unwrap()).unwrap()
}

/// The config Dictionary the controller sent in pcap frame `frame` of `capture`, as raw bytes.
fn captured_config(capture: &str, frame: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(captures().join(capture)).unwrap();
    let record: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["frame"] == frame)
        .unwrap();
    // The decoder stores the Dictionary bytes as a string of code points 0..=255.
    record["config_dict"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

#[test]
fn network_json_round_trips() {
    let original = load("network.json");
    let network = network_from_json(&original).unwrap();
    assert_eq!(network.id, 0x51479cea31ccae5c);
    assert_eq!(network.name, "zt-capture-lab");
    assert_eq!(network.revision, 1);
    assert!(network.v4_assign && network.v6_assign.rfc4193 && network.v6_assign.sixplane);
    assert_eq!(network_to_json(&network), original);
}

#[test]
fn member_json_round_trips() {
    let original = load("members.json");
    for (address, record) in original.as_object().unwrap() {
        let member = member_from_json(record).unwrap();
        assert_eq!(member.address.to_string(), *address);
        assert!(member.identity.is_some());
        assert_eq!(member_to_json(&member), *record, "member {address}");
    }
}

const NWID: u64 = 0x51479cea31ccae5c;
/// `ts` of the config in frame 67.
const CONFIG_TS: i64 = 0x1a21348f043;

/// Replays the capture's controller history: network creation, the controller host joining as
/// an authorized active bridge, the member being denied, authorized, and then configured.
fn replay() -> (Controller<MemoryStorage>, Identity, Identity) {
    let controller_id = secret_identity("controller");
    let member_id = secret_identity("member");
    let mut ctl = Controller::new(controller_id.address(), MemoryStorage::new());
    let network = load("network.json");
    let creation = network["creationTime"].as_i64().unwrap();
    ctl.create_network(
        creation,
        NWID,
        &network_patch_from_json(&network).unwrap().patch,
    )
    .unwrap();

    let v114 = RequestMetadata {
        version: Some(zt_controller::model::ClientVersion {
            major: 1,
            minor: 14,
            revision: 1,
            protocol: 12,
        }),
        rules_engine_revision: 1,
        auth_token: None,
    };
    let host = MemberPatch {
        authorized: Some(true),
        active_bridge: Some(true),
        ..Default::default()
    };
    ctl.update_member(creation + 31, NWID, controller_id.address(), &host)
        .unwrap();
    let d = ctl
        .handle_config_request(creation + 5000, &controller_id.to_public(), NWID, &v114)
        .unwrap();
    assert!(matches!(d, Decision::Config(_)));

    let d = ctl
        .handle_config_request(CONFIG_TS - 5000, &member_id.to_public(), NWID, &v114)
        .unwrap();
    assert_eq!(d, Decision::AccessDenied);
    let auth = MemberPatch {
        authorized: Some(true),
        ..Default::default()
    };
    ctl.update_member(CONFIG_TS - 2000, NWID, member_id.address(), &auth)
        .unwrap();
    (ctl, controller_id, member_id)
}

#[test]
fn replayed_history_assigns_the_captured_addresses() {
    let (mut ctl, controller_id, member_id) = replay();
    let d = ctl
        .handle_config_request(
            CONFIG_TS,
            &member_id.to_public(),
            NWID,
            &RequestMetadata::default(),
        )
        .unwrap();
    let Decision::Config(_) = d else {
        panic!("{d:?}")
    };
    let members = load("members.json");
    for id in [&controller_id, &member_id] {
        let m = ctl.member(NWID, id.address()).unwrap().unwrap();
        let captured = &members[id.address().to_string()];
        assert_eq!(
            serde_json::json!(m
                .ip_assignments
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()),
            captured["ipAssignments"]
        );
        assert_eq!(m.identity.as_deref(), captured["identity"].as_str());
        assert!(m.authorized);
    }
}

#[test]
fn issued_config_is_byte_identical_to_the_captured_one() {
    let (mut ctl, controller_id, member_id) = replay();
    // The member's own request metadata, as 1.14.1 sends it (frame 65).
    let mut meta = Dictionary::new();
    for (k, v) in [
        ("v", 7),
        ("vend", 1),
        ("pv", 12),
        ("majv", 1),
        ("minv", 14),
        ("revv", 1),
        ("mr", 1024),
        ("mc", 128),
        ("mcr", 64),
        ("mt", 128),
        ("f", 0),
        ("revr", 1),
    ] {
        meta.add_u64(k, v).unwrap();
    }
    let metadata = RequestMetadata::from_dictionary(&meta);
    let d = ctl
        .handle_config_request(CONFIG_TS, &member_id.to_public(), NWID, &metadata)
        .unwrap();
    let Decision::Config(data) = d else {
        panic!("{d:?}")
    };
    let config = build_config(&data, &controller_id).unwrap();
    let ours = config.to_bytes().unwrap();
    let theirs = captured_config("zt114-join.decoded.jsonl", 67);
    assert_eq!(theirs.len(), 1226, "the capture's config is 1226 bytes");
    assert_same(&ours, &theirs);

    // The unsolicited push that followed 1 ms later (frame 68).
    let pushed = ctl
        .push_config(CONFIG_TS + 1, NWID, member_id.address())
        .unwrap()
        .unwrap();
    let ours = build_config(&pushed, &controller_id)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_same(&ours, &captured_config("zt114-join.decoded.jsonl", 68));
    let stored = ctl.member(NWID, member_id.address()).unwrap().unwrap();
    assert_eq!(
        stored
            .version
            .map(|v| (v.major, v.minor, v.revision, v.protocol)),
        Some((1, 14, 1, 12))
    );
}

fn assert_same(ours: &[u8], theirs: &[u8]) {
    if ours != theirs {
        let show = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\n  ");
        panic!(
            "config differs\nours:\n  {}\ntheirs:\n  {}",
            show(ours),
            show(theirs)
        );
    }
}

/// Capture 2: the libzt 1.8.4 node joins the same network later (frames 45 and 46 of
/// zt114-libzt.pcap); it gets 172.27.27.10 and the same shape of config.
#[test]
fn libzt_config_is_byte_identical_too() {
    let (mut ctl, controller_id, member_id) = replay();
    config_for(&mut ctl, &member_id, CONFIG_TS);
    let libzt = secret_identity("libzt");
    let ts: i64 = 0x1a213499dc9;
    let v184 = RequestMetadata {
        version: Some(zt_controller::model::ClientVersion {
            major: 1,
            minor: 8,
            revision: 4,
            protocol: 12,
        }),
        rules_engine_revision: 1,
        auth_token: None,
    };
    let d = ctl
        .handle_config_request(ts - 10_000, &libzt.to_public(), NWID, &v184)
        .unwrap();
    assert_eq!(d, Decision::AccessDenied);
    let auth = MemberPatch {
        authorized: Some(true),
        ..Default::default()
    };
    ctl.update_member(ts - 4_000, NWID, libzt.address(), &auth)
        .unwrap();
    let Decision::Config(data) = ctl
        .handle_config_request(ts, &libzt.to_public(), NWID, &v184)
        .unwrap()
    else {
        panic!("libzt not admitted")
    };
    let ours = build_config(&data, &controller_id)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_same(&ours, &captured_config("zt114-libzt.decoded.jsonl", 45));
    let pushed = ctl
        .push_config(ts + 1, NWID, libzt.address())
        .unwrap()
        .unwrap();
    let ours = build_config(&pushed, &controller_id)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_same(&ours, &captured_config("zt114-libzt.decoded.jsonl", 46));
    let stored = ctl.member(NWID, libzt.address()).unwrap().unwrap();
    assert_eq!(
        member_to_json(&stored)["ipAssignments"],
        load("members.json")["6ebff17e20"]["ipAssignments"]
    );
}

fn config_for(ctl: &mut Controller<MemoryStorage>, who: &Identity, now: i64) {
    let d = ctl
        .handle_config_request(now, &who.to_public(), NWID, &RequestMetadata::default())
        .unwrap();
    assert!(matches!(d, Decision::Config(_)), "{d:?}");
}
