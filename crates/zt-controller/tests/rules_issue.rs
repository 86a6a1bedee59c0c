//! Flow rules, capabilities and tags posted through the zerotier JSON API reach members in their
//! network config: rules in `R`, capabilities in `CAP` and tags in `TAG`, each credential signed
//! by the controller and verifiable by the member; a node without a rules engine gets the single
//! ACCEPT and no credentials.
use serde_json::json;
use zt_controller::controller::{Decision, RequestMetadata};
use zt_controller::issue::build_config;
use zt_controller::json::{member_patch_from_json, member_to_json, network_patch_from_json};
use zt_controller::model::{network_id_for, ClientVersion};
use zt_controller::{Controller, MemoryStorage, NetworkConfigData, SqliteStorage, Storage};
use zt_crypto::Identity;
use zt_wire::credential::Verification;
use zt_wire::netconf::NetworkConfig;
use zt_wire::rules::{Rule, RuleKind};

const T0: i64 = 1_795_619_862_046;

fn metadata(rules_engine_revision: u64) -> RequestMetadata {
    RequestMetadata {
        version: Some(ClientVersion {
            major: 1,
            minor: 14,
            revision: 1,
            protocol: 12,
        }),
        rules_engine_revision,
        auth_token: None,
    }
}

fn config(d: Decision) -> NetworkConfigData {
    match d {
        Decision::Config(c) => *c,
        other => panic!("expected a config, got {other:?}"),
    }
}

/// zero-ui's default rules, a capability every new member gets, one given by hand, a tag with a
/// default and one without.
fn network_body() -> serde_json::Value {
    json!({
        "name": "flows",
        "private": "false",
        "rules": [
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2048},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 2054},
            {"type": "MATCH_ETHERTYPE", "not": true, "or": false, "etherType": 34525},
            {"type": "ACTION_DROP"},
            {"type": "ACTION_ACCEPT"}
        ],
        "capabilities": [
            {"id": 7, "default": true, "rules": [{"type": "ACTION_ACCEPT"}]},
            {"id": 1000, "default": false, "rules": [
                {"type": "MATCH_IP_DEST_PORT_RANGE", "not": false, "or": false, "start": 22, "end": 22},
                {"type": "ACTION_ACCEPT"}
            ]}
        ],
        "tags": [{"id": 2000, "default": 1}, {"id": 3, "default": null}]
    })
}

fn issued_rules_capabilities_and_tags<S: Storage>(storage: S) {
    let controller = Identity::generate(&mut rand_core::OsRng);
    let member = Identity::generate(&mut rand_core::OsRng);
    let old_node = Identity::generate(&mut rand_core::OsRng);
    let nwid = network_id_for(controller.address(), 0xf10);
    let mut ctl = Controller::new(controller.address(), storage);
    let body = network_body();
    let patch = network_patch_from_json(&body).unwrap().patch;
    ctl.create_network(T0, nwid, &patch).unwrap();

    // A new member on a public network: the network's rules, the default capability, the tag
    // default; the defaults are written into its record.
    let data = config(
        ctl.handle_config_request(T0 + 10, &member, nwid, &metadata(1))
            .unwrap(),
    );
    assert_eq!(data.rules.len(), 5);
    assert_eq!(
        data.rules[0],
        Rule::new(RuleKind::Ethertype(0x0800)).negated()
    );
    assert_eq!(data.rules[3], Rule::drop());
    assert_eq!(
        data.capabilities.iter().map(|c| c.id).collect::<Vec<_>>(),
        [7]
    );
    assert_eq!(data.tags, [(2000, 1)]);
    let record = member_to_json(&ctl.member(nwid, member.address()).unwrap().unwrap());
    assert_eq!(record["capabilities"], json!([7]));
    assert_eq!(record["tags"], json!([[2000, 1]]));

    // The signed config: what the member's node decodes and verifies.
    let wire = build_config(&data, &controller).unwrap();
    let decoded = NetworkConfig::parse(&wire.to_bytes().unwrap()).unwrap();
    assert_eq!(decoded.rules, data.rules);
    assert_eq!(decoded.capabilities.len(), 1);
    let cap = &decoded.capabilities[0];
    assert_eq!((cap.id, cap.rules.clone()), (7, vec![Rule::accept()]));
    assert_eq!(cap.issued_to(), Some(member.address()));
    assert_eq!(
        cap.verify(|a| (a == controller.address()).then(|| controller.clone())),
        Verification::Valid
    );
    assert_eq!(decoded.tags.len(), 1);
    let tag = &decoded.tags[0];
    assert_eq!(
        (tag.id, tag.value, tag.issued_to),
        (2000, 1, member.address())
    );
    assert_eq!(tag.verify(&controller), Verification::Valid);

    // The administrator gives the SSH capability and sets the tags by hand.
    let given = member_patch_from_json(&json!({"capabilities": [1000, 7], "tags": [[3, 9]]}))
        .unwrap()
        .patch;
    let (_, pushes) = ctl
        .update_member(T0 + 20, nwid, member.address(), &given)
        .unwrap();
    assert_eq!(pushes.config_to, [member.address()]);
    let pushed = ctl
        .push_config(T0 + 30, nwid, member.address())
        .unwrap()
        .unwrap();
    assert_eq!(
        pushed
            .capabilities
            .iter()
            .map(|c| (c.id, c.rules.len()))
            .collect::<Vec<_>>(),
        [(7, 1), (1000, 2)]
    );
    // Its own value for tag 3, and the default again for tag 2000, which it no longer lists.
    assert_eq!(pushed.tags, [(3, 9), (2000, 1)]);
    let wire = build_config(&pushed, &controller).unwrap();
    let decoded = NetworkConfig::parse(&wire.to_bytes().unwrap()).unwrap();
    assert_eq!(
        decoded.capabilities[1].rules[0],
        Rule::new(RuleKind::IpDestPortRange { start: 22, end: 22 })
    );
    assert!(decoded
        .capabilities
        .iter()
        .all(|c| c.verify(|_| Some(controller.clone())) == Verification::Valid));

    // A node without a rules engine: accept everything, no credentials.
    let old = config(
        ctl.handle_config_request(T0 + 40, &old_node, nwid, &metadata(0))
            .unwrap(),
    );
    assert_eq!(old.rules, [Rule::accept()]);
    assert!(old.capabilities.is_empty() && old.tags.is_empty());
}

#[test]
fn issued_on_memory_storage() {
    issued_rules_capabilities_and_tags(MemoryStorage::new());
}

#[test]
fn issued_on_sqlite_storage() {
    issued_rules_capabilities_and_tags(SqliteStorage::open_in_memory().unwrap());
}
