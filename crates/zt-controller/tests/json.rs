//! zerotier-one controller JSON: POST bodies as partial updates, legacy forms, and refusals.
use serde_json::json;
use zt_controller::json::{
    member_patch_from_json, member_to_json, network_patch_from_json, network_to_json,
};
use zt_controller::model::Network;
use zt_controller::{Member, ModelError};

const NWID: u64 = 0x51479cea31ccae5c;

#[test]
fn new_network_has_the_reference_defaults() {
    let v = network_to_json(&Network::new(NWID, 5));
    assert_eq!(
        v,
        json!({
            "authTokens": [null], "authorizationEndpoint": "", "capabilities": [], "clientId": "",
            "creationTime": 5, "dns": [], "enableBroadcast": true, "id": "51479cea31ccae5c",
            "ipAssignmentPools": [], "mtu": 2800, "multicastLimit": 32, "name": "",
            "nwid": "51479cea31ccae5c", "objtype": "network", "private": true, "remoteTraceLevel": 0,
            "remoteTraceTarget": null, "revision": 0, "routes": [],
            "rules": [{"not": false, "or": false, "type": "ACTION_ACCEPT"}], "rulesSource": "",
            "ssoEnabled": false, "tags": [], "v4AssignMode": {"zt": false},
            "v6AssignMode": {"6plane": false, "rfc4193": false, "zt": false}
        })
    );
}

#[test]
fn partial_update_changes_only_what_it_names() {
    let mut n = Network::new(NWID, 5);
    n.name = "keep".into();
    n.mtu = 1500;
    let patch = network_patch_from_json(&json!({"private": false, "multicastLimit": 8})).unwrap();
    let updated = patch.apply(&n).unwrap();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.mtu,
            updated.private,
            updated.multicast_limit
        ),
        ("keep", 1500, false, 8)
    );
    // v6AssignMode object with one key leaves the others alone.
    let mut six = updated.clone();
    six.v6_assign.rfc4193 = true;
    let p = network_patch_from_json(&json!({"v6AssignMode": {"6plane": true}})).unwrap();
    let six = p.apply(&six).unwrap();
    assert!(six.v6_assign.rfc4193 && six.v6_assign.sixplane && !six.v6_assign.zt);
}

#[test]
fn legacy_assign_mode_strings() {
    let p =
        network_patch_from_json(&json!({"v4AssignMode": "zt", "v6AssignMode": "rfc4193,6plane"}))
            .unwrap();
    let n = p.apply(&Network::new(NWID, 0)).unwrap();
    assert!(n.v4_assign && n.v6_assign.rfc4193 && n.v6_assign.sixplane && !n.v6_assign.zt);
}

#[test]
fn dns_routes_pools_and_tokens() {
    let body = json!({
        "ipAssignmentPools": [{"ipRangeStart": "10.1.0.1", "ipRangeEnd": "10.1.0.254"}],
        "routes": [{"target": "10.1.0.0/24", "via": null}, {"target": "0.0.0.0/0", "via": "10.1.0.1"}],
        "dns": {"domain": "lab.zt", "servers": ["10.1.0.1", "fd00::53"]},
        "authTokens": {"secret": 0}
    });
    let n = network_patch_from_json(&body)
        .unwrap()
        .apply(&Network::new(NWID, 0))
        .unwrap();
    assert_eq!(n.routes[1].via, Some("10.1.0.1".parse().unwrap()));
    assert_eq!(n.dns.servers.len(), 2);
    let out = network_to_json(&n);
    assert_eq!(out["routes"], body["routes"]);
    assert_eq!(out["ipAssignmentPools"], body["ipAssignmentPools"]);
    assert_eq!(out["dns"], body["dns"]);
    assert_eq!(out["authTokens"], body["authTokens"]);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            json!({"mtu": "big"}),
            "invalid JSON: mtu: expected a non-negative integer, got \"big\"",
        ),
        (json!({"mtu": 100}), "mtu 100 is out of range (1280..10000)"),
        (
            json!({"private": 1}),
            "invalid JSON: private: expected true or false, got 1",
        ),
        (
            json!({"ipAssignmentPools": [{"ipRangeStart": "10.0.0.1", "ipRangeEnd": "10.0.0.9"}, {"ipRangeStart": "10.0.0.1"}]}),
            "invalid JSON: ipAssignmentPools[1].ipRangeEnd: missing",
        ),
        (
            json!({"routes": [{"target": "10.0.0.0"}]}),
            "invalid JSON: routes[0].target: expected \"address/bits\", got \"10.0.0.0\"",
        ),
        (
            json!({"routes": [{"target": "10.0.0.9/24"}]}),
            "10.0.0.9/24 has host bits set; the network address is 10.0.0.0/24",
        ),
        (
            json!({"dns": {"servers": ["x"]}}),
            "invalid JSON: dns.servers[0]: invalid address \"x\": expected an IPv4 or IPv6 address",
        ),
        (
            json!({"rules": [{"type": "ACTION_DROP", "not": false, "or": false}]}),
            "not supported by this controller: rules other than the default single ACTION_ACCEPT",
        ),
        (
            json!({"tags": [{"id": 1, "default": 0}]}),
            "not supported by this controller: network tags",
        ),
        (
            json!({"ssoEnabled": true}),
            "not supported by this controller: single sign-on (ssoEnabled)",
        ),
        (
            json!([1]),
            "invalid JSON: network: expected a JSON object, got [1]",
        ),
    ];
    for (body, expected) in cases {
        let err: ModelError = network_patch_from_json(&body)
            .and_then(|p| p.apply(&Network::new(NWID, 0)))
            .expect_err(&body.to_string());
        assert_eq!(err.to_string(), expected, "{body}");
    }
}

#[test]
fn member_post_body() {
    let net = Network::new(NWID, 0);
    let m = Member::new(NWID, "a6c5664b6f".parse().unwrap(), 7);
    let p = member_patch_from_json(&json!({
        "authorized": true, "activeBridge": true, "ipAssignments": ["10.0.0.5"], "name": "laptop",
        "revision": 99, "identity": "ignored"
    }))
    .unwrap();
    let m = p.apply(&m, &net).unwrap();
    assert!(m.authorized && m.active_bridge);
    assert_eq!(m.revision, 0, "revision is not settable");
    assert_eq!(m.identity, None, "identity is learned, not set");
    let v = member_to_json(&m);
    assert_eq!(v["ipAssignments"], json!(["10.0.0.5"]));
    assert_eq!(v["name"], json!("laptop"));
    assert_eq!(v["vMajor"], json!(-1));
    let err = member_patch_from_json(&json!({"capabilities": [1]})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not supported by this controller: member capabilities"
    );
}
