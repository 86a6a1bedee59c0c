//! The network controller through ztd's management APIs, on loopback only: the RouterOS
//! menus `/zerotier/controller` and `/zerotier/controller/member` (REST) and the zerotier-one
//! controller JSON API, against the `ztd` binary on a temporary home whose `zt1` identity is
//! pre-seeded (identities[0] of vectors.json), so network ids are predictable. Refused
//! changes must write nothing; ids stay stable across prints and restarts.
mod loopback;

use std::io::{Read, Write};
use std::net::TcpStream;
use zt_testnet::skip_unless;

use loopback::{Ztd, KNOWN_ADDRESS};
use serde_json::{json, Value};

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_default()
}

#[test]
fn networks_from_the_menu_and_the_json_api_are_one_list() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));

    // The seed's network, with RouterOS defaults filled in.
    let (status, created) = ztd.request(
        "PUT",
        "/rest/zerotier/controller",
        Some(&json!({"name": "ZT-private", "ip-range": "172.27.27.10-172.27.27.20", "routes": "172.27.27.0/24"})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(field(&created, "instance"), "zt1");
    assert_eq!(field(&created, "private"), "true");
    assert_eq!(field(&created, "broadcast"), "true");
    assert_eq!(field(&created, "mtu"), "2800");
    assert_eq!(field(&created, "multicast-limit"), "32");
    assert_eq!(field(&created, "ip6-6plane"), "false");
    assert_eq!(field(&created, "ip-range"), "172.27.27.10-172.27.27.20");
    assert_eq!(field(&created, "routes"), "172.27.27.0/24");
    // zt1 is not running here: nothing answers for the network.
    assert_eq!(field(&created, "inactive"), "true");
    let nwid = field(&created, "network").to_string();
    assert_eq!(nwid.len(), 16);
    assert!(nwid.starts_with(KNOWN_ADDRESS), "{nwid}");
    let menu_id = field(&created, ".id").to_string();

    // The same network through the zerotier-one API.
    let status = ztd.get("/controller");
    assert_eq!(status["controller"], json!(true));
    assert_eq!(status["apiVersion"], json!(4));
    assert_eq!(ztd.get("/controller/network"), json!([nwid]));
    let record = ztd.get(&format!("/controller/network/{nwid}"));
    assert_eq!(record["name"], json!("ZT-private"));
    assert_eq!(record["private"], json!(true));
    assert_eq!(
        record["ipAssignmentPools"],
        json!([{"ipRangeStart": "172.27.27.10", "ipRangeEnd": "172.27.27.20"}])
    );

    // Created through the API with a random number: listed in the menu with its own id.
    let (status, api_net) = ztd.request(
        "POST",
        &format!("/controller/network/{KNOWN_ADDRESS}______"),
        Some(&json!({"name": "api-net", "private": false, "mtu": 1500})),
    );
    assert_eq!(status, 200, "{api_net}");
    let api_nwid = api_net["id"].as_str().unwrap().to_string();
    assert!(api_nwid.starts_with(KNOWN_ADDRESS));
    assert_ne!(api_nwid, nwid);
    let print = ztd.get("/rest/zerotier/controller");
    let rows = print.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(field(&rows[0], ".id"), menu_id);
    assert_eq!(field(&rows[1], "network"), api_nwid);
    assert_eq!(field(&rows[1], "private"), "false");
    assert_eq!(field(&rows[1], "mtu"), "1500");

    // An explicit network id, and a setting changed through the menu shows in the API.
    let (status, given) = ztd.request(
        "PUT",
        "/rest/zerotier/controller",
        Some(&json!({"name": "given", "network": format!("{KNOWN_ADDRESS}000042")})),
    );
    assert_eq!(status, 201, "{given}");
    let (status, _) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/{}", field(&given, ".id")),
        Some(&json!({"multicast-limit": "64", "broadcast": "no"})),
    );
    assert_eq!(status, 200);
    let record = ztd.get(&format!("/controller/network/{KNOWN_ADDRESS}000042"));
    assert_eq!(record["multicastLimit"], json!(64));
    assert_eq!(record["enableBroadcast"], json!(false));

    // Removed through the API: gone from the menu, the other ids unchanged.
    let (status, deleted) = ztd.request("DELETE", &format!("/controller/network/{api_nwid}"), None);
    assert_eq!(status, 200);
    assert_eq!(deleted["name"], json!("api-net"));
    let print = ztd.get("/rest/zerotier/controller");
    let ids: Vec<&str> = print
        .as_array()
        .unwrap()
        .iter()
        .map(|r| field(r, ".id"))
        .collect();
    assert_eq!(ids, [menu_id.as_str(), field(&given, ".id")]);
    assert_eq!(
        ztd.request("GET", &format!("/controller/network/{api_nwid}"), None)
            .0,
        404
    );

    // copy-from starts from another item's settings; given properties win.
    let (status, copy) = ztd.request(
        "PUT",
        "/rest/zerotier/controller",
        Some(&json!({"name": "copy", "copy-from": "ZT-private", "mtu": "1400"})),
    );
    assert_eq!(status, 201, "{copy}");
    assert_eq!(field(&copy, "ip-range"), "172.27.27.10-172.27.27.20");
    assert_eq!(field(&copy, "routes"), "172.27.27.0/24");
    assert_eq!(field(&copy, "mtu"), "1400");
    assert_ne!(field(&copy, "network"), nwid);
    let (status, _) = ztd.request(
        "DELETE",
        &format!("/rest/zerotier/controller/{}", field(&copy, ".id")),
        None,
    );
    assert_eq!(status, 204);

    // Removed through the menu: gone from the API.
    let (status, _) = ztd.request(
        "DELETE",
        &format!("/rest/zerotier/controller/{}", field(&given, ".id")),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(ztd.get("/controller/network"), json!([nwid]));
}

#[test]
fn refused_changes_write_nothing() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    let add = |body: Value| ztd.request("PUT", "/rest/zerotier/controller", Some(&body));

    // A range no route covers, an MTU out of range, an unknown property, no name.
    let (status, reply) = add(json!({"name": "a", "ip-range": "10.0.0.1-10.0.0.9"}));
    assert_eq!(status, 400);
    assert!(
        field(&reply, "detail").contains("not inside any route"),
        "{reply}"
    );
    let (status, reply) = add(json!({"name": "a", "mtu": "100"}));
    assert_eq!(status, 400);
    assert_eq!(
        field(&reply, "detail"),
        "value of mtu is out of range (1280 .. 10000)"
    );
    let (status, reply) = add(json!({"name": "a", "colour": "blue"}));
    assert_eq!(status, 400);
    assert_eq!(field(&reply, "detail"), "unknown parameter colour");
    let (status, _) = add(json!({"private": "yes"}));
    assert_eq!(status, 400);
    let (status, _) = add(json!({"name": "a", "network": "xyz"}));
    assert_eq!(status, 400);
    let (status, _) = add(json!({"name": "a", "instance": "nope"}));
    assert_eq!(status, 400);
    // JSON API: a body the controller refuses (a rule it cannot read, single sign-on) is
    // refused as a whole. (An out-of-range MTU or an unusable route is not refused there: it is
    // clamped or left out, as zerotier-one does.)
    let (status, reply) = ztd.request(
        "POST",
        &format!("/controller/network/{KNOWN_ADDRESS}000001"),
        Some(&json!({"name": "b", "mtu": 1400, "rules": [{"type": "MATCH_NOTHING"}]})),
    );
    assert_eq!(status, 400, "{reply}");
    let (status, _) = ztd.request(
        "POST",
        &format!("/controller/network/{KNOWN_ADDRESS}000001"),
        Some(&json!({"name": "b", "ssoEnabled": true})),
    );
    assert_eq!(status, 400);
    assert_eq!(ztd.get("/rest/zerotier/controller"), json!([]));
    assert_eq!(ztd.get("/controller/network"), json!([]));

    // A good network, then a refused set: every property stays as it was.
    let (status, good) =
        add(json!({"name": "good", "ip-range": "10.1.0.10-10.1.0.20", "routes": "10.1.0.0/24"}));
    assert_eq!(status, 201);
    let id = field(&good, ".id").to_string();
    let (status, _) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/{id}"),
        Some(&json!({"mtu": "1400", "routes": "192.168.0.0/24"})),
    );
    assert_eq!(status, 400, "removing the route of the pool is refused");
    let (status, _) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/{id}"),
        Some(&json!({"name": "good", "private": "maybe"})),
    );
    assert_eq!(status, 400);
    assert_eq!(ztd.get(&format!("/rest/zerotier/controller/{id}")), good);
    // Names are unique: members refer to their network by name.
    let (status, _) = add(json!({"name": "good"}));
    assert_eq!(status, 400);
}

#[test]
fn members_are_listed_with_stable_ids_and_survive_kill() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let mut ztd = Ztd::seeded(&home);
    let (status, net) = ztd.request(
        "PUT",
        "/rest/zerotier/controller",
        Some(&json!({"name": "ZT-private", "network": format!("{KNOWN_ADDRESS}a99e4b"), "ip-range": "172.27.27.10-172.27.27.20", "routes": "172.27.27.0/24"})),
    );
    assert_eq!(status, 201, "{net}");
    let nwid = format!("{KNOWN_ADDRESS}a99e4b");

    // One member through the JSON API, one through the menu.
    let (status, m) = ztd.request(
        "POST",
        &format!("/controller/network/{nwid}/member/deba5dc5b1"),
        Some(&json!({"authorized": true, "ipAssignments": ["172.27.27.13"]})),
    );
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["authorized"], json!(true));
    let (status, added) = ztd.request(
        "PUT",
        "/rest/zerotier/controller/member",
        Some(&json!({"network": "ZT-private", "zt-address": "1122334455", "name": "laptop"})),
    );
    assert_eq!(status, 201, "{added}");
    assert_eq!(field(&added, "authorized"), "false");
    // An address outside every route is refused and writes nothing.
    let (status, _) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/member/{}", field(&added, ".id")),
        Some(&json!({"ip-address": "10.9.9.9"})),
    );
    assert_eq!(status, 400);

    let members = ztd.get("/rest/zerotier/controller/member");
    let rows = members.as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{members}");
    assert_eq!(field(&rows[0], "network"), "ZT-private");
    assert_eq!(field(&rows[0], "zt-address"), "deba5dc5b1");
    assert_eq!(field(&rows[0], "authorized"), "true");
    assert_eq!(field(&rows[0], "ip-address"), "172.27.27.13");
    assert_eq!(field(&rows[1], "zt-address"), "1122334455");
    assert_eq!(field(&rows[1], "name"), "laptop");
    assert!(rows[1].get("ip-address").is_none());
    assert_eq!(
        ztd.get(&format!("/controller/network/{nwid}/member")),
        json!({"deba5dc5b1": 1, "1122334455": 1})
    );

    // A member's print number is the count of members below its id, which the console asks
    // with `count-only` and `<.id=`; the look-up by address the console's `print where` makes.
    let second = field(&rows[1], ".id").to_string();
    let count_below = |ztd: &Ztd, id: &str| {
        let (status, reply) = ztd.request(
            "POST",
            "/rest/zerotier/controller/member/print",
            Some(&json!({"count-only": "", ".query": [format!("<.id={id}")]})),
        );
        assert_eq!(status, 200, "{reply}");
        reply["ret"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(count_below(&ztd, field(&rows[0], ".id")), "0");
    assert_eq!(count_below(&ztd, &second), "1");
    assert_eq!(count_below(&ztd, "*FFFFFFFF"), "2");
    assert_eq!(count_below(&ztd, "*100000000"), "2");
    let (status, found) = ztd.request(
        "POST",
        "/rest/zerotier/controller/member/print",
        Some(&json!({".query": ["zt-address=1122334455"]})),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found, json!([rows[1]]));

    // Authorize by id through the menu; the JSON API sees it.
    let (status, _) = ztd.request(
        "POST",
        "/rest/zerotier/controller/member/set",
        Some(&json!({".id": second, "authorized": "yes"})),
    );
    assert_eq!(status, 200);
    let m = ztd.get(&format!("/controller/network/{nwid}/member/1122334455"));
    assert_eq!(m["authorized"], json!(true));
    assert_eq!(m["name"], json!("laptop"));

    // kill -9 and restart: same ids, same values.
    let before = ztd.get("/rest/zerotier/controller/member");
    let networks_before = ztd.get("/rest/zerotier/controller");
    ztd.kill();
    let ztd = Ztd::start(&home);
    assert_eq!(ztd.get("/rest/zerotier/controller/member"), before);
    assert_eq!(ztd.get("/rest/zerotier/controller"), networks_before);

    // Removing a member keeps the other's id.
    let first = field(&rows[0], ".id").to_string();
    let (status, _) = ztd.request(
        "DELETE",
        &format!("/rest/zerotier/controller/member/{first}"),
        None,
    );
    assert_eq!(status, 204);
    let after = ztd.get("/rest/zerotier/controller/member");
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(field(&after[0], ".id"), second);
    assert_eq!(count_below(&ztd, &second), "0");
    assert_eq!(
        ztd.request(
            "GET",
            &format!("/controller/network/{nwid}/member/deba5dc5b1"),
            None
        )
        .0,
        404
    );
}

#[test]
fn the_json_api_needs_the_token() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    let mut stream = TcpStream::connect(ztd.api).unwrap();
    stream
        .write_all(b"GET /controller/network HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    let by_query = format!("/controller/network?auth={}", ztd.token);
    let mut stream = TcpStream::connect(ztd.api).unwrap();
    stream
        .write_all(
            format!("GET {by_query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}

#[test]
fn rules_are_set_in_the_rules_language() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let ztd = Ztd::seeded(&tmp.path().join("home"));
    let text = "drop not ethertype ipv4 and not ethertype arp and not ethertype ipv6; accept;";
    let (status, created) = ztd.request(
        "PUT",
        "/rest/zerotier/controller",
        Some(&json!({"name": "ruled", "rules": text})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(field(&created, "rules"), text);
    let nwid = field(&created, "network").to_string();
    let id = field(&created, ".id").to_string();
    // The zerotier-one API shows the compiled rules and the text.
    let record = ztd.get(&format!("/controller/network/{nwid}"));
    assert_eq!(record["rulesSource"], text);
    assert_eq!(record["rules"].as_array().map(Vec::len), Some(5));
    assert_eq!(record["rules"][3], json!({"type": "ACTION_DROP"}));

    // A mistake is refused with its place; nothing changes.
    let (status, reply) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/{id}"),
        Some(&json!({"rules": "drop ethertype banana;"})),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(
        field(&reply, "detail").starts_with("invalid value for argument rules: line 1, column 16:"),
        "{reply}"
    );
    assert_eq!(
        ztd.get(&format!("/controller/network/{nwid}"))["rulesSource"],
        text
    );

    // Empty: accept-all again, and the property is unset.
    let (status, reply) = ztd.request(
        "PATCH",
        &format!("/rest/zerotier/controller/{id}"),
        Some(&json!({"rules": ""})),
    );
    assert_eq!(status, 200, "{reply}");
    let record = ztd.get(&format!("/controller/network/{nwid}"));
    assert_eq!(
        record["rules"],
        json!([{"not": false, "or": false, "type": "ACTION_ACCEPT"}])
    );
    let print = ztd.get("/rest/zerotier/controller");
    assert_eq!(print[0].get("rules"), None, "{print}");
}
