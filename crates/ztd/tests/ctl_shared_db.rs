//! Two ztd controllers on one PostgreSQL database serve a REAL ZeroTier node, and one of them
//! dies.
//!
//! Namespaces: 0 runs ztd as the planet's only root; 1 and 2 run ztd controllers A and B with
//! the same controller identity (so the same network IDs) and `--controller-db` pointing at a
//! throw-away PostgreSQL cluster (a Unix socket, which namespaces share); 3 runs `ztpeer`.
//! The network is created and the member authorized through A; the member becomes OK with an
//! address, whichever of A and B the root relays it to. Then the controller it talks to is
//! killed with SIGKILL: the member's address is changed through the survivor and reaches it,
//! its next config requests are answered by the survivor, and after a restart the killed
//! daemon lists exactly what the survivor lists.
//!
//! Skipped (with a message) without namespaces, `ztpeer` or PostgreSQL.
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_testnet::{skip_unless, Lab};

mod common;
use common::{
    enable_with_identity, identity, make_planet, poll, spawn_member, start_ztd, start_ztd_with,
    wait_network, Api,
};

const ZT_PORT: u16 = 9993;

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_string()
}

/// The member `address` in `api`'s `/zerotier/controller/member` list.
fn member(api: &Api, address: &str) -> Option<Value> {
    api.call("GET", "/rest/zerotier/controller/member", None)?
        .as_array()?
        .iter()
        .find(|m| m["zt-address"] == json!(address))
        .cloned()
}

/// The network `nwid` in `api`'s `/zerotier/controller` list.
fn network(api: &Api, nwid: &str) -> Option<Value> {
    api.call("GET", "/rest/zerotier/controller", None)?
        .as_array()?
        .iter()
        .find(|n| n["network"] == json!(nwid))
        .cloned()
}

/// `member/set` on `address` with `props`, through `api`, by the `.id` `api` lists it with.
fn set_member(api: &Api, address: &str, props: Value) {
    let listed = member(api, address).expect("member listed");
    let mut body = props;
    body[".id"] = listed[".id"].clone();
    let reply = api.call(
        "POST",
        "/rest/zerotier/controller/member/set",
        Some(&body.to_string()),
    );
    assert!(reply.is_some(), "member/set {body} failed");
}

/// Config requests the daemon's controller answered so far.
fn answered(api: &Api) -> u64 {
    api.call("GET", "/controller", None)
        .and_then(|v| v["service"]["requestsAnswered"].as_u64())
        .unwrap_or(0)
}

/// What must survive: each member's address, authorization and assigned addresses.
fn members_summary(api: &Api) -> Vec<(String, String, String)> {
    let mut list: Vec<(String, String, String)> = api
        .call("GET", "/rest/zerotier/controller/member", None)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                field(m, "zt-address"),
                field(m, "authorized"),
                field(m, "ip-address"),
            )
        })
        .collect();
    list.sort();
    list
}

fn write_instance(home: &Path, id: &zt_crypto::Identity, planet: &Path) {
    common::write_identity(&home.join("zt1"), id);
    std::fs::copy(planet, home.join("zt1/planet")).unwrap();
}

#[test]
fn two_controllers_on_one_database_serve_a_real_client() {
    let ztpeer = skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let cluster = skip_unless!(zt_testnet::postgres::TestCluster::start());
    let db = cluster.uri();
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::new(4);
    let (root_id, controller_id) = (identity(), identity());
    let planet = tmp.path().join("planet");
    make_planet(&planet, &[(&root_id, format!("{}/{ZT_PORT}", lab.ip(0)))]);

    let homes: Vec<_> = ["root", "a", "b"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    write_instance(&homes[0], &root_id, &planet);
    write_instance(&homes[1], &controller_id, &planet);
    write_instance(&homes[2], &controller_id, &planet);
    let (_root, root_api) = start_ztd(&lab, 0, &homes[0]);
    enable_with_identity(&root_api, &root_id);
    let db_args = ["--controller-db", db.as_str()];
    let (a_proc, a_api) = start_ztd_with(&lab, 1, &homes[1], &db_args);
    enable_with_identity(&a_api, &controller_id);
    let (b_proc, b_api) = start_ztd_with(&lab, 2, &homes[2], &db_args);
    enable_with_identity(&b_api, &controller_id);
    let mut procs = [Some(a_proc), Some(b_proc)];

    // A network and a member that A numbers and removes before B lists anything: were items
    // numbered by each daemon, B (which never saw these) would give the network and member
    // below the numbers these took, so the ids compared below agree only when the database
    // numbers items.
    let scratch = a_api
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(r#"{"name":"scratch"}"#),
        )
        .expect("scratch network created through A");
    let scratch_member = a_api
        .call(
            "PUT",
            "/rest/zerotier/controller/member",
            Some(r#"{"network":"scratch","zt-address":"0a0b0c0d0e"}"#),
        )
        .expect("scratch member created through A");
    for (menu, item) in [
        ("controller/member", &scratch_member),
        ("controller", &scratch),
    ] {
        let body = json!({".id": field(item, ".id")}).to_string();
        let path = format!("/rest/zerotier/{menu}/remove");
        let removed = a_api.call("POST", &path, Some(&body));
        assert_eq!(removed, Some(json!([])), "{path} {body}");
    }

    // The network, created through A, is B's too.
    let created = a_api
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(
                &json!({"name": "ha", "private": "yes", "ip-range": "172.27.28.10-172.27.28.20",
                        "routes": "172.27.28.0/24"})
                .to_string(),
            ),
        )
        .expect("network created through A");
    let nwid = field(&created, "network");
    assert_eq!(nwid.len(), 16, "{created}");
    let on_b = b_api
        .call("GET", "/rest/zerotier/controller", None)
        .unwrap_or_default();
    assert!(on_b.to_string().contains(&nwid), "B lists {on_b}");

    // The real client joins and shows up unauthorized.
    let (mut peer, peer_id) = spawn_member(
        &lab,
        3,
        &ztpeer,
        &tmp.path().join("peer"),
        &planet,
        &nwid,
        &["--for", "400"],
    );
    let listed = poll(Duration::from_secs(90), || member(&a_api, &peer_id));
    assert!(listed.is_some(), "member never appeared: {}", peer.report());
    // Item numbers come from the database: both daemons show the member and the network
    // with the same RouterOS ids.
    let member_id = |api: &Api| member(api, &peer_id).map(|m| field(&m, ".id"));
    let (member_on_a, member_on_b) = (member_id(&a_api), member_id(&b_api));
    assert!(
        member_on_a.as_deref().is_some_and(|id| id.starts_with('*')),
        "A lists the member as {member_on_a:?}"
    );
    assert_ne!(member_on_a, Some(field(&scratch_member, ".id")));
    assert_eq!(member_on_b, member_on_a, "the member's .id on B and on A");
    let network_id = |api: &Api| network(api, &nwid).map(|n| field(&n, ".id"));
    assert!(network_id(&a_api).is_some_and(|id| id.starts_with('*')));
    assert_ne!(network_id(&a_api), Some(field(&scratch, ".id")));
    assert_eq!(
        network_id(&b_api),
        network_id(&a_api),
        "the network's .id on B and on A"
    );

    // Authorized through A: OK with an address, whichever controller it talks to.
    set_member(&a_api, &peer_id, json!({"authorized": "yes"}));
    let ok = wait_network(&mut peer, Duration::from_secs(60), &nwid, |v| {
        v["status"] == json!("OK") && v["ip4"].to_string().contains("172.27.28.")
    })
    .unwrap_or_else(|| panic!("network never OK: {}", peer.report()));
    eprintln!("member OK: {ok}");
    let (by_a, by_b) = (answered(&a_api), answered(&b_api));
    eprintln!("requests answered: A {by_a}, B {by_b}");
    assert!(by_a + by_b > 0);

    // Kill -9 the one it talks to.
    let (dead, survivor) = if by_a >= by_b {
        (0, &b_api)
    } else {
        (1, &a_api)
    };
    if let Some(mut p) = procs[dead].take() {
        p.report(); // dropping an NsProcess kills it with SIGKILL
    }
    let killed_at = Instant::now();
    let answered_at_kill = answered(survivor);

    // A change made during the outage reaches the member: another address than the one the
    // pool gave it.
    let given = member(survivor, &peer_id)
        .map(|m| field(&m, "ip-address"))
        .unwrap_or_default();
    let moved_to = if given == "172.27.28.19" {
        "172.27.28.18"
    } else {
        "172.27.28.19"
    };
    set_member(survivor, &peer_id, json!({ "ip-address": moved_to }));
    let moved = wait_network(&mut peer, Duration::from_secs(180), &nwid, |v| {
        v["status"] == json!("OK") && v["ip4"].to_string().contains(moved_to)
    });
    assert!(
        moved.is_some(),
        "the change through the survivor never reached the member: {}",
        peer.report()
    );
    // The member's own config requests are answered by the survivor.
    let served = poll(Duration::from_secs(200), || {
        (answered(survivor) > answered_at_kill).then_some(())
    });
    assert!(
        served.is_some(),
        "the survivor never answered the member after the kill: {}",
        peer.report()
    );
    eprintln!(
        "failover: kill -9 → first answer from the survivor within {:?}",
        killed_at.elapsed()
    );

    // The killed daemon comes back with everything the survivor acknowledged.
    let dead_home = &homes[1 + dead];
    let (_back, back_api) = start_ztd_with(&lab, 1 + dead, dead_home, &db_args);
    let expected = members_summary(survivor);
    assert!(
        expected
            .iter()
            .any(|(a, auth, ip)| *a == peer_id && auth == "true" && ip == moved_to),
        "{expected:?}"
    );
    let back = poll(Duration::from_secs(30), || {
        let listed = members_summary(&back_api);
        (listed == expected).then_some(listed)
    });
    assert!(
        back.is_some(),
        "after restart: {:?}, survivor: {expected:?}",
        members_summary(&back_api)
    );
}
