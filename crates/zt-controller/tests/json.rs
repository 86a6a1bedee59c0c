//! zerotier-one controller JSON: POST bodies as partial updates, legacy forms, and refusals.
use serde_json::json;
use zt_controller::json::{
    member_patch_from_json, member_to_json, network_patch_from_json, network_to_json,
};
use zt_controller::model::Network;
use zt_controller::{Member, ModelError, NetworkPatch};

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
    let patch = network_patch(json!({"private": false, "multicastLimit": 8}));
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
    // A v6AssignMode object replaces the stored one, as in zerotier-one: a mode it leaves out
    // is off.
    let mut six = updated.clone();
    six.v6_assign.rfc4193 = true;
    let p = network_patch(json!({"v6AssignMode": {"6plane": true}}));
    let six = p.apply(&six).unwrap();
    assert!(!six.v6_assign.rfc4193 && six.v6_assign.sixplane && !six.v6_assign.zt);
}

#[test]
fn legacy_assign_mode_strings() {
    let p = network_patch(json!({"v4AssignMode": "zt", "v6AssignMode": "rfc4193,6plane"}));
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
    let n = network_patch(body.clone())
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

/// The patch of a body that must be read without leaving anything out.
fn network_patch(body: serde_json::Value) -> NetworkPatch {
    let input = network_patch_from_json(&body).unwrap();
    assert_eq!(input.ignored, Vec::<String>::new(), "{body}");
    input.patch
}

#[test]
fn what_zerotier_one_takes_is_taken() {
    // (body, what the network reads back) — each accepted by zerotier-one 1.14 with 200.
    let cases = [
        (json!({"private": "false"}), json!({"private": false})),
        (json!({"private": 0}), json!({"private": false})),
        (json!({"private": 1}), json!({"private": true})),
        (json!({"private": "1"}), json!({"private": true})),
        (
            json!({"enableBroadcast": "true"}),
            json!({"enableBroadcast": true}),
        ),
        (
            json!({"v4AssignMode": {"zt": "true"}}),
            json!({"v4AssignMode": {"zt": true}}),
        ),
        (
            json!({"v4AssignMode": {"zt": "false"}}),
            json!({"v4AssignMode": {"zt": false}}),
        ),
        (
            json!({"v6AssignMode": {"6plane": "false", "rfc4193": "true", "zt": "false"}}),
            json!({"v6AssignMode": {"6plane": false, "rfc4193": true, "zt": false}}),
        ),
        (json!({"mtu": "1500"}), json!({"mtu": 1500})),
        // Out of range: clamped, not refused.
        (json!({"mtu": 100}), json!({"mtu": 1280})),
        (json!({"mtu": 65000}), json!({"mtu": 10000})),
        (json!({"mtu": "big"}), json!({"mtu": 1280})),
        (
            json!({"multicastLimit": "64"}),
            json!({"multicastLimit": 64}),
        ),
        (
            json!({"multicastLimit": 1e12}),
            json!({"multicastLimit": u32::MAX}),
        ),
        (json!({"name": 42}), json!({"name": "42"})),
        (
            json!({"rulesSource": "accept;"}),
            json!({"rulesSource": "accept;"}),
        ),
        // Not an object: nothing changes (zerotier-one reads no field from it either).
        (json!({"dns": []}), json!({"dns": []})),
    ];
    for (body, expected) in cases {
        let input = network_patch_from_json(&body).unwrap();
        let out = network_to_json(&input.patch.apply(&Network::new(NWID, 0)).unwrap());
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&out[k], v, "{body} -> {k}");
        }
    }
}

#[test]
fn unusable_array_entries_are_left_out_and_named() {
    let body = json!({
        "routes": [
            {"target": "10.0.0.0/24", "via": null},
            {"target": "10.0.0.0"},
            {"target": "10.0.1.9/24"},
            "x",
            {"target": "10.0.2.0/24", "via": "fd00::1"}
        ],
        "ipAssignmentPools": [
            {"ipRangeStart": "10.0.0.10", "ipRangeEnd": "10.0.0.20"},
            {"ipRangeStart": "10.0.0.1"},
            {"ipRangeStart": "10.0.0.9", "ipRangeEnd": "10.0.0.1"},
            {"ipRangeStart": "10.0.0.15", "ipRangeEnd": "10.0.0.30"},
            {"ipRangeStart": "10.0.0.1", "ipRangeEnd": "fd00::9"}
        ],
        "dns": {"domain": "lab", "servers": ["x", "10.0.0.53"]},
        "authTokens": {"ok": 0, "bad": "soon"}
    });
    let input = network_patch_from_json(&body).unwrap();
    let n = input.patch.apply(&Network::new(NWID, 0)).unwrap();
    let out = network_to_json(&n);
    assert_eq!(
        out["routes"],
        json!([{"target": "10.0.0.0/24", "via": null}, {"target": "10.0.2.0/24", "via": null}])
    );
    assert_eq!(
        out["ipAssignmentPools"],
        json!([{"ipRangeStart": "10.0.0.10", "ipRangeEnd": "10.0.0.20"}])
    );
    assert_eq!(
        out["dns"],
        json!({"domain": "lab", "servers": ["10.0.0.53"]})
    );
    assert_eq!(out["authTokens"], json!({"ok": 0}));
    let ignored = input.ignored.join("\n");
    for expected in [
        "routes[1]: target \"10.0.0.0\" is not \"address/bits\"",
        "routes[2]: 10.0.1.9/24 has host bits set; the network address is 10.0.1.0/24",
        "routes[3]: target null is not",
        "ipAssignmentPools[1]: expected",
        "ipAssignmentPools[2] 10.0.0.9-10.0.0.1: the first address is above the last",
        "ipAssignmentPools[3] 10.0.0.15-10.0.0.30: it overlaps 10.0.0.10-10.0.0.20",
        "ipAssignmentPools[4] 10.0.0.1-fd00::9: first and last address are of different families",
        "dns.servers[0]: \"x\" is not an address",
        "authTokens.bad: \"soon\" is not an expiry time",
    ] {
        assert!(
            ignored.contains(expected),
            "{expected:?} not in:\n{ignored}"
        );
    }
    assert_eq!(input.ignored.len(), 9, "{ignored}");
}

#[test]
fn what_is_still_refused_says_why() {
    let cases = [
        (
            json!({"rules": [{"type": "MATCH_IPV4_SOURCE", "ip": "10.0.0.300/8"}, {"type": "ACTION_ACCEPT"}]}),
            "invalid JSON: rules[0]: ip: \"10.0.0.300/8\" is not an address/bits",
        ),
        (
            json!({"rules": [{"type": "ACTION_ACCEPT"}, {"type": "MATCH_NOTHING"}]}),
            "invalid JSON: rules[1]: unknown rule type \"MATCH_NOTHING\"",
        ),
        (
            json!({"capabilities": [{"id": 1, "rules": [{"type": "MATCH_MAC_SOURCE", "mac": "zz"}]}]}),
            "invalid JSON: capabilities[0].rules[0]: mac: \"zz\" is not a MAC address",
        ),
        (
            json!({"name": "n".repeat(128)}),
            "name is longer than 127 bytes",
        ),
        (
            json!({"ssoEnabled": true}),
            "not supported by this controller: single sign-on (ssoEnabled)",
        ),
    ];
    for (body, expected) in cases {
        let err: ModelError = network_patch_from_json(&body)
            .and_then(|p| p.patch.apply(&Network::new(NWID, 0)))
            .expect_err(&body.to_string());
        assert_eq!(err.to_string(), expected, "{body}");
    }
}

#[test]
fn rules_capabilities_and_tags_read_back_as_posted() {
    // zero-ui's default flow rules, and what ZTNet posts for a tag and a capability.
    let body = json!({
        "rules": [
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2048},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2054},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 34525},
            {"type": "ACTION_DROP"},
            {"type": "ACTION_ACCEPT"}
        ],
        "capabilities": [
            {"id": 1000, "default": false, "rules": [
                {"type": "MATCH_IP_DEST_PORT_RANGE", "not": false, "or": false, "start": 22, "end": 22},
                {"type": "ACTION_ACCEPT"}
            ]},
            {"id": 7, "default": true, "rules": []}
        ],
        "tags": [{"id": 2000, "default": 1}, {"id": 3, "default": null}],
        "rulesSource": "drop not ethertype ipv4 and not ethertype arp and not ethertype ipv6;\naccept;"
    });
    let n = network_patch(body.clone())
        .apply(&Network::new(NWID, 0))
        .unwrap();
    let out = network_to_json(&n);
    assert_eq!(out["rules"], body["rules"]);
    assert_eq!(out["rulesSource"], body["rulesSource"]);
    // Ascending by ID, as zerotier-one keeps them.
    assert_eq!(
        out["capabilities"],
        json!([body["capabilities"][1], body["capabilities"][0]])
    );
    assert_eq!(out["tags"], json!([body["tags"][1], body["tags"][0]]));
    // Posting what was read back changes nothing.
    let again = network_patch(out.clone()).apply(&n).unwrap();
    assert_eq!(again, n);
}

#[test]
fn rules_source_alone_is_compiled_into_rules_capabilities_and_tags() {
    let source = "tag team id 5 default 1 enum 1 red enum 2 blue;\n\
                  cap shell id 10 accept dport 22;\n;\n\
                  drop not ethertype ipv4 and not ethertype arp;\n\
                  accept teq team blue;\n";
    let n = network_patch(json!({ "rulesSource": source }))
        .apply(&Network::new(NWID, 0))
        .unwrap();
    let out = network_to_json(&n);
    assert_eq!(out["rulesSource"], source);
    assert_eq!(
        out["rules"],
        json!([
            {"type": "MATCH_ETHERTYPE", "etherType": 2048, "not": true, "or": false},
            {"type": "MATCH_ETHERTYPE", "etherType": 2054, "not": true, "or": false},
            {"type": "ACTION_DROP"},
            {"type": "MATCH_TAGS_EQUAL", "id": 5, "value": 2, "not": false, "or": false},
            {"type": "ACTION_ACCEPT"}
        ])
    );
    assert_eq!(
        out["capabilities"],
        json!([{"id": 10, "default": false, "rules": [
            {"type": "MATCH_IP_DEST_PORT_RANGE", "start": 22, "end": 22, "not": false, "or": false},
            {"type": "ACTION_ACCEPT"}
        ]}])
    );
    assert_eq!(out["tags"], json!([{"id": 5, "default": 1}]));

    // Empty text goes back to the default accept-all set, not to an empty (drop-all) list.
    let cleared = network_patch(json!({"rulesSource": ""})).apply(&n).unwrap();
    assert_eq!(cleared.rules, None);
    assert!(cleared.capabilities.is_empty() && cleared.tags.is_empty());
}

#[test]
fn posted_rules_win_over_rules_source() {
    // A UI that compiled the text itself: its rules are stored, the text kept as given (even
    // text we could not compile).
    let body = json!({"rules": [{"type": "ACTION_DROP"}], "rulesSource": "accept; # not compiled"});
    let n = network_patch(body).apply(&Network::new(NWID, 0)).unwrap();
    let out = network_to_json(&n);
    assert_eq!(out["rules"], json!([{"type": "ACTION_DROP"}]));
    assert_eq!(out["rulesSource"], "accept; # not compiled");
}

#[test]
fn capabilities_and_tags_posted_with_rules_source_win_over_the_compiled_ones() {
    let body = json!({
        "rulesSource": "tag team id 5 enum 1 red;\ncap shell id 10 accept dport 22;\n;\naccept;",
        "capabilities": [{"id": 77, "default": true, "rules": [{"type": "ACTION_ACCEPT"}]}],
        "tags": [{"id": 9, "default": null}]
    });
    let n = network_patch(body).apply(&Network::new(NWID, 0)).unwrap();
    let out = network_to_json(&n);
    assert_eq!(out["rules"], json!([{"type": "ACTION_ACCEPT"}]));
    assert_eq!(out["capabilities"][0]["id"], 77);
    assert_eq!(out["tags"], json!([{"id": 9, "default": null}]));
}

#[test]
fn rules_source_that_does_not_compile_is_refused_with_its_position() {
    let err =
        network_patch_from_json(&json!({"rulesSource": "drop vlan 1;\ndrop\n  vlan banana;"}))
            .map(|_| ())
            .unwrap_err();
    assert!(
        matches!(&err, ModelError::RulesLanguage { error, .. } if (error.line, error.column) == (3, 8)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("rulesSource: line 3, column 8: "),
        "{err}"
    );
}

#[test]
fn member_post_body() {
    let net = Network::new(NWID, 0);
    let m = Member::new(NWID, "a6c5664b6f".parse().unwrap(), 7);
    let input = member_patch_from_json(&json!({
        "authorized": "true", "activeBridge": 1, "ipAssignments": ["10.0.0.5", "nope", "10.0.0.5"],
        "name": "laptop", "revision": 99, "identity": "ignored",
        "tags": [[2000, "5"], [3, 1], [2000, 6], [1]], "capabilities": [1000, 7, "7"]
    }))
    .unwrap();
    assert_eq!(
        input.ignored,
        [
            "ipAssignments[1]: \"nope\" is not an address",
            "ipAssignments[2]: 10.0.0.5 is listed twice",
            "tags[3]: expected [id, value], got [1]",
        ]
    );
    let m = input.patch.apply(&m, &net).unwrap();
    assert!(m.authorized && m.active_bridge);
    assert_eq!(m.revision, 0, "revision is not settable");
    assert_eq!(m.identity, None, "identity is learned, not set");
    let v = member_to_json(&m);
    assert_eq!(v["ipAssignments"], json!(["10.0.0.5"]));
    assert_eq!(v["name"], json!("laptop"));
    assert_eq!(v["vMajor"], json!(-1));
    assert_eq!(v["tags"], json!([[3, 1], [2000, 6]]));
    assert_eq!(v["capabilities"], json!([7, 1000]));
    for (body, authorized) in [
        (json!({"authorized": "false"}), false),
        (json!({"authorized": 0}), false),
        (json!({"authorized": "True"}), true),
        (json!({"authorized": null}), false),
    ] {
        let p = member_patch_from_json(&body).unwrap().patch;
        assert_eq!(p.authorized, Some(authorized), "{body}");
    }
}
