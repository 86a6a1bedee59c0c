//! RouterOS behaviour on a live ztd in namespaces (all ztd, no real ZeroTier node needed):
//!
//! - A planet installed where zerotier-one keeps it (`<home>/planet`) is the one the default
//!   instance uses: it comes online through that planet's root and its peer list holds only
//!   that root.
//! - Flag R (`running`) of `/zerotier/interface` as RouterOS defines it for these
//!   interfaces: only when the TAP is up and the network is OK, or with
//!   `disable-running-check=yes`; never while the controller has not answered
//!   (REQUESTING_CONFIGURATION) or refuses (ACCESS_DENIED).
//!
//! Needs root and `ip netns`; otherwise each test prints why and passes.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use zt_crypto::Identity;
use zt_testnet::{skip_unless, Lab, NsProcess};

const ROOT: usize = 0;
const LEAF: usize = 1;

/// A root in namespace 0 and a leaf in namespace 1, on a private planet listing only the
/// root. The root's planet is in its instance directory, the leaf's only in `<home>/planet`.
struct TwoNodes<'a> {
    _daemons: Vec<NsProcess>,
    apis: Vec<Api<'a>>,
    ids: Vec<Identity>,
    planet_id: u64,
}

fn two_nodes<'a>(lab: &'a Lab, dir: &Path) -> TwoNodes<'a> {
    let ids = vec![identity(), identity()];
    let planet = world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0003,
        &ids[ROOT],
        SocketAddr::from((lab.ip(ROOT), 9993)),
    );
    let mut daemons = Vec::new();
    let mut apis = Vec::new();
    for (ns, id) in ids.iter().enumerate() {
        let home = dir.join(format!("n{ns}"));
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        let place = if ns == ROOT {
            home.join("zt1/planet")
        } else {
            home.join("planet")
        };
        std::fs::write(place, planet.to_bytes()).unwrap();
        let (proc, api) = start_ztd(lab, ns, &home);
        enable_with_identity(&api, id);
        daemons.push(proc);
        apis.push(api);
    }
    TwoNodes {
        _daemons: daemons,
        apis,
        ids,
        planet_id: planet.id,
    }
}

#[test]
fn a_planet_in_the_home_directory_is_the_one_the_default_instance_uses() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let dir = tempfile::tempdir().unwrap();
    let nodes = two_nodes(&lab, dir.path());
    let leaf = &nodes.apis[LEAF];
    let online = poll(Duration::from_secs(30), || {
        leaf.call("GET", "/status", None)
            .filter(|s| s["online"] == true)
    });
    assert!(
        online.is_some(),
        "the leaf comes online through the root of <home>/planet"
    );
    let instance = leaf.call("GET", "/rest/zerotier/zt1", None).expect("zt1");
    assert_eq!(
        instance["planet"],
        json!(format!("{:016x}", nodes.planet_id))
    );
    let root = nodes.ids[ROOT].address().to_string();
    assert_eq!(instance["planet-roots"], json!(root));
    let peers = leaf
        .call("GET", "/rest/zerotier/peer", None)
        .expect("peer list");
    let listed: Vec<(String, String)> = peers
        .as_array()
        .expect("array")
        .iter()
        .map(|p| (rest_field(p, "zt-address"), rest_field(p, "role")))
        .collect();
    assert_eq!(
        listed,
        [(root, "PLANET".to_string())],
        "only the private planet's root: {peers}"
    );
}

/// The interface of `network` on `api`, once `pred` holds for it.
fn interface_when(api: &Api, network: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    poll(Duration::from_secs(30), || {
        api.call("GET", "/rest/zerotier/interface", None)?
            .as_array()?
            .iter()
            .find(|i| i["network"] == json!(network))
            .filter(|i| pred(i))
            .cloned()
    })
}

fn set_interface(api: &Api, network: &str, property: &str, value: &str) {
    let interface = interface_when(api, network, |_| true).expect("interface");
    let url = format!("/rest/zerotier/interface/{}", rest_field(&interface, ".id"));
    api.call("PATCH", &url, Some(&json!({ property: value }).to_string()))
        .expect("interface set");
}

#[test]
fn running_flag_only_when_the_tap_is_up_and_the_network_is_ok() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let dir = tempfile::tempdir().unwrap();
    let nodes = two_nodes(&lab, dir.path());
    let (root, leaf) = (&nodes.apis[ROOT], &nodes.apis[LEAF]);
    let created = root
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(
                &json!({
                    "name": "office",
                    "instance": "zt1",
                    "ip-range": "10.147.21.10-10.147.21.20",
                    "routes": "10.147.21.0/24",
                })
                .to_string(),
            ),
        )
        .expect("controller add");
    let private = rest_field(&created, "network");
    // A network whose controller (0a0b0c0d0e) does not exist: nobody answers.
    let unanswered = "0a0b0c0d0e000001".to_string();
    for network in [&private, &unanswered] {
        add_interface(leaf, network);
    }

    let refused = interface_when(leaf, &private, |i| i["status"] == json!("ACCESS_DENIED"))
        .expect("the private network refuses the leaf first");
    assert_eq!(refused["running"], json!("false"), "{refused}");
    let waiting = interface_when(leaf, &unanswered, |i| {
        i["status"] == json!("REQUESTING_CONFIGURATION")
    })
    .expect("no controller answers");
    assert_eq!(waiting["running"], json!("false"), "{waiting}");

    // The check turned off: running whatever the network says.
    set_interface(leaf, &private, "disable-running-check", "yes");
    let forced = interface_when(leaf, &private, |_| true).unwrap();
    assert_eq!(
        (forced["status"].clone(), forced["running"].clone()),
        (json!("ACCESS_DENIED"), json!("true"))
    );
    set_interface(leaf, &private, "disable-running-check", "no");

    set_authorized(root, &nodes.ids[LEAF].address().to_string(), true);
    let ok =
        interface_when(leaf, &private, |i| i["status"] == json!("OK")).expect("authorized: OK");
    // The TAP is up by the time the status reads OK; allow the printing a moment.
    let running = interface_when(leaf, &private, |i| i["running"] == json!("true"));
    assert!(running.is_some(), "authorized and the TAP up: R ({ok})");
    let still = interface_when(leaf, &unanswered, |_| true).unwrap();
    assert_eq!(still["running"], json!("false"), "{still}");
}

/// `POST /rest/ping` on ztd in namespace 1.
fn ping_from_ztd(api: &Api, address: &str, count: u32) -> Vec<Value> {
    let body = json!({ "address": address, "count": count.to_string(), "interval": "200ms" });
    api.call("POST", "/rest/ping", Some(&body.to_string()))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("ping {address} answered no list"))
}

#[test]
fn ztd_pings_a_namespace_peer_and_reports_timeouts_for_a_silent_address() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let dir = tempfile::tempdir().unwrap();
    let (_ztd, api) = start_ztd(&lab, LEAF, dir.path());
    let peer = lab.ip(ROOT).to_string();
    let replies = ping_from_ztd(&api, &peer, 3);
    assert_eq!(replies.len(), 3, "{replies:?}");
    for (seq, reply) in replies.iter().enumerate() {
        assert_eq!(reply["seq"], json!(seq.to_string()), "{reply}");
        assert_eq!(reply["host"], json!(peer));
        assert_eq!(reply["size"], json!("56"));
        assert_eq!(reply["ttl"], json!("64"), "a neighbour one hop away");
        assert!(reply.get("status").is_none(), "{reply}");
        assert!(
            rest_field(reply, "time").ends_with("us") || rest_field(reply, "time").ends_with("ms")
        );
    }
    let last = &replies[2];
    assert_eq!(
        (
            rest_field(last, "sent"),
            rest_field(last, "received"),
            rest_field(last, "packet-loss")
        ),
        ("3".into(), "3".into(), "0".into())
    );
    assert!(last.get("avg-rtt").is_some(), "{last}");

    // An address of the namespaces' subnet that nobody holds: no reply, ever.
    let silent = "10.77.0.200";
    let replies = ping_from_ztd(&api, silent, 2);
    assert_eq!(replies.len(), 2, "{replies:?}");
    for reply in &replies {
        assert_eq!(reply["status"], json!("timeout"), "{reply}");
    }
    assert_eq!(rest_field(&replies[1], "packet-loss"), "100");
    assert!(replies[1].get("min-rtt").is_none());
}
