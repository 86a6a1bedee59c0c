//! The controller's decisions (PROTOCOL.md §7.1) over both storages, with the real identities of
//! the capture lab.
use std::net::IpAddr;

use serde_json::{json, Value};
use zt_controller::controller::{ConfigNote, Decision, IgnoreReason, RequestMetadata};
use zt_controller::issue::{build_config, build_revocation};
use zt_controller::json::{member_patch_from_json, member_to_json, network_patch_from_json};
use zt_controller::model::{network_id_for, AuthorizedBy, ClientVersion, IpPool, Route};
use zt_controller::props::network_patch_from_properties;
use zt_controller::{
    Controller, ControllerError, MemberPatch, MemoryStorage, ModelError, NetworkPatch,
    SqliteStorage, Storage,
};
use zt_crypto::Identity;
use zt_wire::credential::Verification;
use zt_wire::netconf::NetworkConfig;
use zt_wire::rules::{Rule, RuleKind};

const NWID: u64 = 0x51479cea31ccae5c;
const T0: i64 = 1_795_619_862_046;

fn identity(role: &str) -> Identity {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        // A copy of shared/interop/captures/identities.json, so the tests need no ../shared.
        "/../../testdata/interop/captures/identities.json"
    );
    let ids: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let node = ids["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == role)
        .unwrap();
    Identity::from_string(node["secret"].as_str().unwrap()).unwrap()
}

fn v114() -> RequestMetadata {
    RequestMetadata {
        version: Some(ClientVersion {
            major: 1,
            minor: 14,
            revision: 1,
            protocol: 12,
        }),
        rules_engine_revision: 1,
        auth_token: None,
    }
}

fn lab_patch() -> NetworkPatch {
    network_patch_from_properties(&[
        ("name", "lab"),
        ("ip-range", "172.27.27.10-172.27.27.20"),
        ("routes", "172.27.27.0/24"),
    ])
    .unwrap()
}

/// Runs `f` against a fresh controller on each storage.
fn each_storage(f: impl Fn(&mut dyn FnMut() -> Box<dyn ControllerUnderTest>)) {
    let mut memory = || -> Box<dyn ControllerUnderTest> {
        Box::new(Controller::new(
            identity("controller").address(),
            MemoryStorage::new(),
        ))
    };
    f(&mut memory);
    let mut sqlite = || -> Box<dyn ControllerUnderTest> {
        Box::new(Controller::new(
            identity("controller").address(),
            SqliteStorage::open_in_memory().unwrap(),
        ))
    };
    f(&mut sqlite);
}

/// The controller API the tests use, object-safe over the storage type.
trait ControllerUnderTest {
    fn c(&mut self) -> &mut dyn ControllerOps;
}
trait ControllerOps {
    fn create(&mut self, now: i64, nwid: u64, p: &NetworkPatch) -> Result<(), ControllerError>;
    fn update_network(&mut self, now: i64, p: &NetworkPatch) -> zt_controller::Pushes;
    fn member(
        &mut self,
        now: i64,
        who: &Identity,
        p: &MemberPatch,
    ) -> Result<zt_controller::Pushes, ControllerError>;
    fn request(&mut self, now: i64, who: &Identity, nwid: u64, meta: &RequestMetadata) -> Decision;
    fn stored(&mut self, who: &Identity) -> Option<zt_controller::Member>;
    fn push(&mut self, now: i64, who: &Identity) -> Option<zt_controller::NetworkConfigData>;
}
impl<S: Storage> ControllerUnderTest for Controller<S> {
    fn c(&mut self) -> &mut dyn ControllerOps {
        self
    }
}
impl<S: Storage> ControllerOps for Controller<S> {
    fn create(&mut self, now: i64, nwid: u64, p: &NetworkPatch) -> Result<(), ControllerError> {
        self.create_network(now, nwid, p).map(|_| ())
    }
    fn update_network(&mut self, now: i64, p: &NetworkPatch) -> zt_controller::Pushes {
        Controller::update_network(self, now, NWID, p).unwrap().1
    }
    fn member(
        &mut self,
        now: i64,
        who: &Identity,
        p: &MemberPatch,
    ) -> Result<zt_controller::Pushes, ControllerError> {
        self.update_member(now, NWID, who.address(), p)
            .map(|(_, pushes)| pushes)
    }
    fn request(&mut self, now: i64, who: &Identity, nwid: u64, meta: &RequestMetadata) -> Decision {
        self.handle_config_request(now, who, nwid, meta).unwrap()
    }
    fn stored(&mut self, who: &Identity) -> Option<zt_controller::Member> {
        Controller::member(self, NWID, who.address()).unwrap()
    }
    fn push(&mut self, now: i64, who: &Identity) -> Option<zt_controller::NetworkConfigData> {
        self.push_config(now, NWID, who.address()).unwrap()
    }
}

fn authorize() -> MemberPatch {
    MemberPatch {
        authorized: Some(true),
        ..Default::default()
    }
}

fn config(d: Decision) -> zt_controller::NetworkConfigData {
    match d {
        Decision::Config(c) => *c,
        other => panic!("expected a config, got {other:?}"),
    }
}

#[test]
fn unknown_and_foreign_networks() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        assert_eq!(c.request(T0, &member, NWID, &v114()), Decision::NotFound);
        // The root's address is not ours: dropped silently.
        let foreign = (identity("root").address().to_u64() << 24) | 1;
        assert_eq!(
            c.request(T0, &member, foreign, &v114()),
            Decision::Ignore(IgnoreReason::NotOurNetwork)
        );
    });
}

#[test]
fn private_network_denies_then_admits_after_authorization() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        c.create(T0, NWID, &lab_patch()).unwrap();
        assert_eq!(
            c.request(T0 + 10_000, &member, NWID, &v114()),
            Decision::AccessDenied
        );
        let seen = c.stored(&member).expect("a denied member is recorded");
        assert_eq!(seen.identity, Some(member.to_public_string()));
        assert_eq!(seen.last_request_time, Some(T0 + 10_000));
        assert!(!seen.authorized && seen.ip_assignments.is_empty());
        assert_eq!(
            seen.version, None,
            "versions are recorded only for admitted members"
        );

        let pushes = c.member(T0 + 12_000, &member, &authorize()).unwrap();
        assert_eq!(
            pushes.config_to,
            vec![member.address()],
            "it asked recently, so it is pushed"
        );
        // The pushed config carries the network's rules: the refused request said the
        // member has a rules engine.
        c.update_network(
            T0 + 12_500,
            &network_patch_from_json(&json!({"rules": [
                {"type": "MATCH_ETHERTYPE", "etherType": 2048, "not": true},
                {"type": "ACTION_DROP"},
                {"type": "ACTION_ACCEPT"}
            ]}))
            .unwrap()
            .patch,
        );
        let pushed = c.push(T0 + 13_000, &member).expect("a config to push");
        assert_eq!(pushed.rules.len(), 3, "{:?}", pushed.rules);
        let after = c.stored(&member).unwrap();
        assert_eq!(after.authorized_by, Some(AuthorizedBy::Api));
        assert_eq!(after.last_authorized_time, T0 + 12_000);

        let cfg = config(c.request(T0 + 15_000, &member, NWID, &v114()));
        assert_eq!(cfg.issued_to, member.address());
        assert_eq!(cfg.static_ips.len(), 1);
        assert_eq!(cfg.static_ips[0].to_string(), "172.27.27.15/24");
        assert_eq!(cfg.credential_window_ms, 1_800_000);
        assert_eq!(
            (
                cfg.mtu,
                cfg.multicast_limit,
                cfg.enable_broadcast,
                cfg.private
            ),
            (2800, 32, true, true)
        );
        assert_eq!(c.stored(&member).unwrap().version, v114().version);
    });
}

#[test]
fn a_different_identity_with_a_bound_address_is_refused() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        c.create(T0, NWID, &lab_patch()).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        config(c.request(T0 + 5_000, &member, NWID, &v114()));
        // Same address, someone else's key.
        let root_public = identity("root").to_public_string();
        let key = root_public.rsplit(':').next().unwrap();
        let impostor = Identity::from_string(&format!("{}:0:{key}", member.address())).unwrap();
        assert_eq!(
            c.request(T0 + 10_000, &impostor, NWID, &v114()),
            Decision::AccessDenied
        );
        assert_eq!(
            c.stored(&member).unwrap().identity,
            Some(member.to_public_string())
        );
        // The real member is still served.
        config(c.request(T0 + 20_000, &member, NWID, &v114()));
    });
}

#[test]
fn requests_closer_than_one_second_are_ignored() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        c.create(T0, NWID, &lab_patch()).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        config(c.request(T0 + 5_000, &member, NWID, &v114()));
        assert_eq!(
            c.request(T0 + 6_000, &member, NWID, &v114()),
            Decision::Ignore(IgnoreReason::RateLimited)
        );
        config(c.request(T0 + 6_001, &member, NWID, &v114()));
    });
}

#[test]
fn public_networks_and_tokens_authorize_automatically() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let (member, libzt) = (identity("member"), identity("libzt"));
        let mut patch = lab_patch();
        patch.auth_tokens = Some(vec![("good".into(), 0), ("old".into(), (T0 + 1000) as u64)]);
        c.create(T0, NWID, &patch).unwrap();

        let with_token = |t: &str| RequestMetadata {
            auth_token: Some(t.into()),
            ..v114()
        };
        assert_eq!(
            c.request(T0 + 5_000, &libzt, NWID, &with_token("old")),
            Decision::AccessDenied
        );
        assert_eq!(
            c.request(T0 + 7_000, &libzt, NWID, &with_token("wrong")),
            Decision::AccessDenied
        );
        config(c.request(T0 + 9_000, &libzt, NWID, &with_token("good")));
        let m = c.stored(&libzt).unwrap();
        assert_eq!(
            (m.authorized_by, m.authorized_credential.as_deref()),
            (Some(AuthorizedBy::Token), Some("good"))
        );

        c.update_network(
            T0 + 10_000,
            &NetworkPatch {
                private: Some(false),
                ..Default::default()
            },
        );
        let cfg = config(c.request(T0 + 11_000, &member, NWID, &v114()));
        assert!(!cfg.private);
        let m = c.stored(&member).unwrap();
        assert_eq!(
            (m.authorized, m.authorized_by, m.last_authorized_time),
            (true, Some(AuthorizedBy::Public), T0 + 11_000)
        );
    });
}

#[test]
fn disabled_network_and_member() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        c.create(T0, NWID, &lab_patch()).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        c.member(
            T0,
            &member,
            &MemberPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.request(T0 + 5_000, &member, NWID, &v114()),
            Decision::AccessDenied
        );
        c.member(
            T0,
            &member,
            &MemberPatch {
                disabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        c.update_network(
            T0,
            &NetworkPatch {
                disabled: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(
            c.request(T0 + 10_000, &member, NWID, &v114()),
            Decision::NotFound
        );
    });
}

#[test]
fn static_addresses_are_issued_only_under_a_route() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        let mut patch = lab_patch();
        patch.routes = Some(vec![
            Route {
                target: "172.27.0.0/16".parse().unwrap(),
                via: None,
            },
            Route {
                target: "172.27.27.0/24".parse().unwrap(),
                via: None,
            },
        ]);
        c.create(T0, NWID, &patch).unwrap();
        // Outside every route: kept in the record, not issued, and a pool address is added.
        let by_hand = MemberPatch {
            ip_assignments: Some(vec!["10.9.9.9".parse().unwrap()]),
            ..authorize()
        };
        c.member(T0, &member, &by_hand).unwrap();
        let cfg = config(c.request(T0 + 5_000, &member, NWID, &v114()));
        // A pool address takes the prefix of the first route containing it (§7.2).
        assert_eq!(
            cfg.static_ips
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["172.27.27.15/16"]
        );
        let m = c.stored(&member).unwrap();
        assert_eq!(
            m.ip_assignments,
            [
                "10.9.9.9".parse::<IpAddr>().unwrap(),
                "172.27.27.15".parse().unwrap()
            ]
        );

        // Inside routes: issued with the longest containing prefix; no pool address added.
        let by_hand = MemberPatch {
            ip_assignments: Some(vec!["172.27.3.3".parse().unwrap()]),
            ..Default::default()
        };
        c.member(T0 + 6_000, &member, &by_hand).unwrap();
        let cfg = config(c.request(T0 + 10_000, &member, NWID, &v114()));
        assert_eq!(
            cfg.static_ips
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["172.27.3.3/16"]
        );
        assert_eq!(c.stored(&member).unwrap().ip_assignments.len(), 1);
    });
}

#[test]
fn rfc4193_and_6plane_come_first_and_set_ndp_emulation() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let member = identity("member");
        let mut patch = lab_patch();
        patch.v6_assign_rfc4193 = Some(true);
        patch.v6_assign_sixplane = Some(true);
        c.create(T0, NWID, &patch).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        let cfg = config(c.request(T0 + 5_000, &member, NWID, &v114()));
        let ips: Vec<String> = cfg.static_ips.iter().map(|p| p.to_string()).collect();
        // The order and prefixes the captured config has.
        assert_eq!(
            ips,
            [
                "fd51:479c:ea31:ccae:5c99:93a6:c566:4b6f/88",
                "fc60:8b32:b6a6:c566:4b6f::1/40",
                "172.27.27.15/24"
            ]
        );
        assert!(cfg.ndp_emulation);
        // noAutoAssignIps turns all of them off, except stored addresses.
        c.member(
            T0 + 6_000,
            &member,
            &MemberPatch {
                no_auto_assign_ips: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        let cfg = config(c.request(T0 + 10_000, &member, NWID, &v114()));
        assert_eq!(
            cfg.static_ips
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["172.27.27.15/24"]
        );
        assert!(!cfg.ndp_emulation);
    });
}

#[test]
fn pool_exhaustion_is_reported_and_the_member_still_gets_a_config() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let (member, libzt) = (identity("member"), identity("libzt"));
        let mut patch = lab_patch();
        patch.ipv4_pools = Some(vec![IpPool {
            start: "172.27.27.10".parse().unwrap(),
            end: "172.27.27.10".parse().unwrap(),
        }]);
        c.create(T0, NWID, &patch).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        c.member(T0, &libzt, &authorize()).unwrap();
        let first = config(c.request(T0 + 5_000, &member, NWID, &v114()));
        assert_eq!(first.static_ips[0].to_string(), "172.27.27.10/24");
        let second = config(c.request(T0 + 5_000, &libzt, NWID, &v114()));
        assert!(second.static_ips.is_empty());
        assert_eq!(second.notes, [ConfigNote::Ipv4PoolExhausted]);
    });
}

#[test]
fn a_taken_address_cannot_be_given_by_hand() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let (member, libzt) = (identity("member"), identity("libzt"));
        c.create(T0, NWID, &lab_patch()).unwrap();
        c.member(T0, &member, &authorize()).unwrap();
        config(c.request(T0 + 5_000, &member, NWID, &v114()));
        let steal = MemberPatch {
            ip_assignments: Some(vec!["172.27.27.15".parse().unwrap()]),
            ..authorize()
        };
        let err = c.member(T0 + 6_000, &libzt, &steal).unwrap_err();
        assert!(
            matches!(&err, ControllerError::Invalid(ModelError::IpInUse { owner, .. }) if *owner == member.address().to_string()),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "172.27.27.15 is already assigned to member {}",
                member.address()
            )
        );
        assert!(c.stored(&libzt).is_none(), "nothing was stored");
    });
}

#[test]
fn changes_are_pushed_to_online_members_and_deauthorization_is_revoked() {
    each_storage(|new| {
        let mut ctl = new();
        let c = ctl.c();
        let (host, member, libzt) = (
            identity("controller"),
            identity("member"),
            identity("libzt"),
        );
        c.create(T0, NWID, &lab_patch()).unwrap();
        for who in [&host, &member, &libzt] {
            c.member(T0, who, &authorize()).unwrap();
        }
        config(c.request(T0 + 1_000, &host, NWID, &v114()));
        config(c.request(T0 + 2_000, &member, NWID, &v114()));
        // libzt last asked long ago: not online.
        config(c.request(T0 - 200_000, &libzt, NWID, &v114()));

        let pushes = c.update_network(
            T0 + 3_000,
            &NetworkPatch {
                name: Some("renamed".into()),
                ..Default::default()
            },
        );
        let mut online = vec![host.address(), member.address()];
        online.sort();
        assert_eq!(pushes.config_to, online);
        let pushed = c.push(T0 + 3_000, &member).unwrap();
        assert_eq!((pushed.name.as_str(), pushed.revision), ("renamed", 2));
        // A push does not count as a request.
        assert_eq!(
            c.stored(&member).unwrap().last_request_time,
            Some(T0 + 2_000)
        );

        // Making the host a bridge changes everyone's specialist list.
        let pushes = c
            .member(
                T0 + 4_000,
                &host,
                &MemberPatch {
                    active_bridge: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(pushes.config_to, online);
        assert_eq!(
            c.push(T0 + 4_000, &member).unwrap().active_bridges,
            [host.address()]
        );

        let pushes = c
            .member(
                T0 + 5_000,
                &member,
                &MemberPatch {
                    authorized: Some(false),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(pushes.config_to.is_empty());
        let [plan] = pushes.revocations.as_slice() else {
            panic!("deauthorization revokes once: {pushes:?}");
        };
        assert_eq!(
            (plan.target, plan.threshold, plan.network_id),
            (member.address(), T0 + 5_000, NWID)
        );
        assert_eq!(plan.recipients, online);
        let plan = plan.clone();
        assert_eq!(
            c.stored(&member).unwrap().last_deauthorized_time,
            T0 + 5_000
        );
        assert!(
            c.push(T0 + 5_000, &member).is_none(),
            "a refused member gets nothing"
        );

        let revocation = build_revocation(&plan, 0x1234, &host).unwrap();
        assert_eq!(revocation.verify(&host.to_public()), Verification::Valid);
        assert!(revocation.fast_propagate());
    });
}

#[test]
fn assignments_survive_restarts_and_pool_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let (host, member) = (identity("controller"), identity("member"));
    {
        let mut ctl = Controller::new(host.address(), SqliteStorage::open(&path).unwrap());
        ctl.create_network(T0, NWID, &lab_patch()).unwrap();
        ctl.update_member(T0, NWID, member.address(), &authorize())
            .unwrap();
        let cfg = config(
            ctl.handle_config_request(T0 + 5_000, &member, NWID, &v114())
                .unwrap(),
        );
        assert_eq!(cfg.static_ips[0].to_string(), "172.27.27.15/24");
    }
    let mut ctl = Controller::new(host.address(), SqliteStorage::open(&path).unwrap());
    let patch =
        network_patch_from_properties(&[("ip-range", "172.27.27.100-172.27.27.200")]).unwrap();
    ctl.update_network(T0 + 6_000, NWID, &patch).unwrap();
    let cfg = config(
        ctl.handle_config_request(T0 + 10_000, &member, NWID, &v114())
            .unwrap(),
    );
    assert_eq!(
        cfg.static_ips[0].to_string(),
        "172.27.27.15/24",
        "a stored address is kept"
    );

    let signed = build_config(&cfg, &host).unwrap();
    assert_eq!(
        signed.com.as_ref().unwrap().verify(&host.to_public()),
        Verification::Valid
    );
    assert_eq!(signed.certificates_of_ownership.len(), 1);
}

/// The RouterOS manual's member list (seed 000): network 879c0b5265a99e4b, ip-range
/// 172.27.27.10-172.27.27.20, route 172.27.27.0/24. Three of its four members show exactly the
/// address the §7.2 walk gives them, and `deba5dc5b1` shows its address while not yet
/// authorized; with `assign_before_authorization` we reproduce that.
#[test]
fn routeros_seed_member_addresses() {
    use zt_controller::ControllerOptions;
    let controller = "879c0b5265".parse().unwrap();
    let nwid = 0x879c0b5265a99e4b;
    let synthetic = |a: &str| Identity::from_string(&format!("{a}:0:{}", "5a".repeat(64))).unwrap();
    for early in [false, true] {
        let options = ControllerOptions {
            assign_before_authorization: early,
            ..ControllerOptions::default()
        };
        let mut ctl = Controller::with_options(controller, MemoryStorage::new(), options);
        let props = [
            ("name", "ZT-private"),
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("private", "yes"),
            ("routes", "172.27.27.0/24"),
        ];
        ctl.create_network(0, nwid, &network_patch_from_properties(&props).unwrap())
            .unwrap();
        let mut now = 1_000;
        for (member, seed_ip) in [
            ("879c0b5265", "172.27.27.15"),
            ("554a914c7f", "172.27.27.17"),
            ("deba5dc5b1", "172.27.27.13"),
        ] {
            let id = synthetic(member);
            now += 5_000;
            assert_eq!(
                ctl.handle_config_request(now, &id, nwid, &v114()).unwrap(),
                Decision::AccessDenied
            );
            let stored = ctl.member(nwid, id.address()).unwrap().unwrap();
            let expected: Vec<IpAddr> = if early {
                vec![seed_ip.parse().unwrap()]
            } else {
                vec![]
            };
            assert_eq!(stored.ip_assignments, expected, "{member}");
            ctl.update_member(now + 1, nwid, id.address(), &authorize())
                .unwrap();
            let cfg = config(
                ctl.handle_config_request(now + 2_000, &id, nwid, &v114())
                    .unwrap(),
            );
            assert_eq!(
                cfg.static_ips[0].to_string(),
                format!("{seed_ip}/24"),
                "{member}"
            );
        }
    }
}

#[test]
fn random_network_ids_skip_used_numbers_and_zero() {
    let host = identity("controller");
    let mut ctl = Controller::new(host.address(), MemoryStorage::new());
    let mut draws = [0x00abcdef_u32, 0x00abcdef, 0x01000000, 7].into_iter();
    let a = ctl
        .create_network_with_random_id(0, &NetworkPatch::default(), || draws.next().unwrap())
        .unwrap();
    let b = ctl
        .create_network_with_random_id(0, &NetworkPatch::default(), || draws.next().unwrap())
        .unwrap();
    assert_eq!(a.id, (host.address().to_u64() << 24) | 0xabcdef);
    // The repeat is drawn again; 0x01000000 has low 24 bits 0, which becomes 1.
    assert_eq!(b.id, (host.address().to_u64() << 24) | 1);
    assert!(ctl.serves(a.id) && !ctl.serves(0x1234567812345678));
    let err = ctl
        .create_network_with_random_id(0, &NetworkPatch::default(), || 0xabcdef)
        .unwrap_err();
    assert!(matches!(err, ControllerError::NoFreeNetworkId));
    assert_eq!(
        zt_controller::json::network_list(&ctl.network_ids().unwrap()),
        serde_json::json!([format!("{:016x}", b.id), format!("{:016x}", a.id)])
    );
}

#[test]
fn error_codes() {
    assert_eq!(Decision::NotFound.error_code(), Some(0x03));
    assert_eq!(Decision::AccessDenied.error_code(), Some(0x07));
    assert_eq!(
        Decision::Ignore(IgnoreReason::RateLimited).error_code(),
        None
    );
}

/// 300 members in a 254-address pool, over SQLite: every address is unique, inside the pool,
/// never .255 or the pool end, the pool runs out for the rest, and every address is the same
/// after re-requests and after reopening the database.
#[test]
fn many_members_get_unique_stable_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.db");
    let host = identity("controller");
    let ids: Vec<Identity> = (0..300u64)
        .map(|i| {
            Identity::from_string(&format!(
                "{:010x}:0:{}",
                0x2000000000 + i * 104_729,
                "c3".repeat(64)
            ))
            .unwrap()
        })
        .collect();
    let pool = IpPool {
        start: "10.7.0.1".parse().unwrap(),
        end: "10.7.0.255".parse().unwrap(),
    };
    let mut first: Vec<Option<IpAddr>> = Vec::new();
    {
        let mut ctl = Controller::new(host.address(), SqliteStorage::open(&path).unwrap());
        let patch = NetworkPatch {
            v4_assign: Some(true),
            pools: Some(vec![pool]),
            routes: Some(vec![Route {
                target: "10.7.0.0/24".parse().unwrap(),
                via: None,
            }]),
            private: Some(false),
            ..Default::default()
        };
        ctl.create_network(T0, NWID, &patch).unwrap();
        for (i, id) in ids.iter().enumerate() {
            let cfg = config(
                ctl.handle_config_request(T0 + i as i64 * 10, id, NWID, &v114())
                    .unwrap(),
            );
            let ip = cfg.static_ips.first().map(|p| p.addr());
            if ip.is_none() {
                assert_eq!(cfg.notes, [ConfigNote::Ipv4PoolExhausted]);
            }
            first.push(ip);
        }
        let given: Vec<IpAddr> = first.iter().flatten().copied().collect();
        let unique: std::collections::HashSet<_> = given.iter().collect();
        assert_eq!(unique.len(), given.len(), "no address twice");
        assert!(given
            .iter()
            .all(|ip| pool.contains(*ip) && ip.to_string() != "10.7.0.255"));
        // .1 .. .254: 254 addresses; the walk may give up early on a nearly full pool (1000
        // trials), so allow a few left over.
        assert!(
            given.len() >= 250 && given.len() <= 254,
            "{} given",
            given.len()
        );
        for (i, id) in ids.iter().enumerate() {
            let cfg = config(
                ctl.handle_config_request(T0 + 100_000 + i as i64 * 10, id, NWID, &v114())
                    .unwrap(),
            );
            if first[i].is_some() {
                assert_eq!(
                    cfg.static_ips.first().map(|p| p.addr()),
                    first[i],
                    "member {i} kept its address"
                );
            }
        }
    }
    let mut ctl = Controller::new(host.address(), SqliteStorage::open(&path).unwrap());
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| first[*i].is_some()) {
        let cfg = config(
            ctl.handle_config_request(T0 + 200_000 + i as i64 * 10, id, NWID, &v114())
                .unwrap(),
        );
        assert_eq!(
            cfg.static_ips.first().map(|p| p.addr()),
            first[i],
            "member {i} after reopen"
        );
    }
}

// ----- flow rules, capabilities and tags -------------------------------------------------------
//
// Posted through the zerotier JSON API, they reach members in their network config: rules in
// `R`, capabilities in `CAP` and tags in `TAG`, each credential signed by the controller and
// verifiable by the member; a node without a rules engine gets the single ACCEPT and no
// credentials.

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
        ctl.handle_config_request(T0 + 10, &member, nwid, &v114())
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
        ctl.handle_config_request(
            T0 + 40,
            &old_node,
            nwid,
            &RequestMetadata {
                rules_engine_revision: 0,
                ..v114()
            },
        )
        .unwrap(),
    );
    assert_eq!(old.rules, [Rule::accept()]);
    assert!(old.capabilities.is_empty() && old.tags.is_empty());
}

#[test]
fn rules_capabilities_and_tags_are_issued_on_memory_storage() {
    issued_rules_capabilities_and_tags(MemoryStorage::new());
}

#[test]
fn rules_capabilities_and_tags_are_issued_on_sqlite_storage() {
    issued_rules_capabilities_and_tags(SqliteStorage::open_in_memory().unwrap());
}

#[test]
fn a_network_under_another_controllers_address_is_refused() {
    let host = identity("controller");
    let mut ctl = Controller::new(host.address(), MemoryStorage::new());
    let foreign = 0x1234567812345678;
    let err = ctl
        .create_network(0, foreign, &NetworkPatch::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Invalid(zt_controller::ModelError::ForeignNetwork { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("1234567812"), "{err}");
    assert!(ctl.network_ids().unwrap().is_empty());
}
