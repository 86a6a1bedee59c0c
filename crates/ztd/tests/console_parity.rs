//! The parity matrix: the same console commands typed against the in-memory model
//! (`zt_console::MemoryBackend`, what the console's golden tests use) and against a live ztd in
//! a throw-away network namespace (through its RouterOS REST API) must print the same, errors
//! included: every menu × print/add/set/unset/remove/export/get/find, with IPv6 routes and
//! ranges, `!prop` and `unset`.
//!
//! Masked, because only a live ztd has them: the read-only properties the daemon maintains
//! (`identity.public`, `state`, `online`, `planet`, `mac-address`, `status`, `running`,
//! `inactive`, `last-seen`, …) are copied from ztd's items into the memory model before each
//! command, and the network IDs a controller generates (its address + 24 random bits on ztd,
//! the lowest free number in memory) are shown as `<address>nnnnnn`.
//!
//! After the matrix, the same ztd joins its own network: the interface is not running (no R)
//! while the controller refuses it and is once it is OK, and a `route-distance` change must
//! move the route it installed to the new metric while the interface stays up.
//!
//! Skipped (with a message) where namespaces are unavailable. Only namespace traffic; every
//! wait has a deadline.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use zt_console::rest::{RestRequest, RestResponse, Transport};
use zt_console::schema;
use zt_console::{Backend, BackendError, Console, MemoryBackend, RestBackend};
use zt_testnet::{skip_unless, Lab};

mod common;
use common::{enable_with_identity, identity, ip_json_in, poll, start_ztd, world_with_root, API};

/// One REST request over a fresh connection (the calling thread is in the namespace).
struct NamespaceHttp {
    token: String,
}

impl Transport for NamespaceHttp {
    fn send(&mut self, request: &RestRequest) -> Result<RestResponse, BackendError> {
        let failed = |what: String| BackendError {
            status: 0,
            message: what,
            detail: None,
        };
        let mut stream = TcpStream::connect(API).map_err(|e| failed(e.to_string()))?;
        let timeout = Some(Duration::from_secs(20));
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
            .map_err(|e| failed(e.to_string()))?;
        let body = request
            .body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default();
        let head = format!(
            "{} {} HTTP/1.1\r\nHost: {API}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            request.method,
            request.path,
            self.token,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .map_err(|e| failed(e.to_string()))?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .map_err(|e| failed(e.to_string()))?;
        let reply = String::from_utf8_lossy(&reply);
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .ok_or_else(|| failed(format!("no HTTP header end in {reply:?}")))?;
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "ztd answered chunked: {head}"
        );
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| failed(format!("no status in {head:?}")))?;
        Ok(RestResponse {
            status,
            body: body.to_string(),
        })
    }
}

/// The menus whose items both sides hold (configuration); the read-only ones are runtime.
const CONFIGURED_MENUS: &[&str] = &[
    "/zerotier",
    "/zerotier/interface",
    "/zerotier/controller",
    "/zerotier/controller/member",
];

/// Copy what the daemon maintains (read-only properties) from ztd's items to the memory
/// model's items at the same positions.
fn copy_runtime_state(live: &mut impl Backend, memory: &mut MemoryBackend) {
    for path in CONFIGURED_MENUS {
        let menu = schema::menu(path).unwrap();
        let live_items = live.list(path).unwrap();
        let ids: Vec<String> = memory.items(path).iter().map(|i| i.id.clone()).collect();
        for (live_item, id) in live_items.iter().zip(ids) {
            let state: Vec<(&str, &str)> = menu
                .properties
                .iter()
                .filter(|p| p.read_only)
                .filter_map(|p| live_item.get(p.name).map(|v| (p.name, v)))
                .collect();
            memory.publish(path, &id, &state).unwrap();
        }
    }
}

/// `<address>` followed by six hex digits: a network ID of our controller.
fn mask_network_ids(text: &str, address: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(address) {
        let after = &rest[at + address.len()..];
        let suffix = after
            .get(..6)
            .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()));
        out.push_str(&rest[..at + address.len()]);
        match suffix {
            Some(_) => {
                out.push_str("nnnnnn");
                rest = &after[6..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The matrix: each line is typed on both consoles.
fn script(address: &str) -> Vec<String> {
    let net1 = format!("{address}000001");
    let v6 = format!("{address}000003");
    [
        // /zerotier: set, get, unset, !prop, range checks, find, print, export.
        "/zerotier/set zt1 route-distance=5",
        ":put [/zerotier/get zt1 route-distance]",
        "/zerotier/set zt1 route-distance=0",
        "/zerotier/set zt1 route-distance=256",
        "/zerotier/unset zt1 value-name=route-distance",
        ":put [/zerotier/get zt1 route-distance]",
        "/zerotier/set zt1 comment=\"lab node\"",
        ":put [/zerotier/get zt1 comment]",
        "/zerotier/set zt1 !comment",
        "/zerotier/set zt1 bogus=1",
        "/zerotier/set zt1 port=70000",
        ":put [/zerotier/find where name=zt1]",
        "/zerotier/print",
        "/zerotier/print detail",
        "/zerotier/export",
        // /zerotier/controller: IPv4 and IPv6 ranges and routes, copy-from, unset, remove.
        &format!(
            "/zerotier/controller/add name=net1 network={net1} ip-range=10.7.0.10-10.7.0.20 \
             routes=10.7.0.0/24,fd00:feed:feed:beef::/64 \
             ip6-range=fd00:feed:feed:beef::10-fd00:feed:feed:beef::ff"
        ),
        &format!(
            "/zerotier/controller/add name=v6 network={v6} routes=fd00:feed:feed:cafe::/64@fd00:feed:feed:beef::1"
        ),
        "/zerotier/controller/add name=v6bad routes=10.7.0.0/24@fd00::1",
        "/zerotier/controller/add name=v4in6 ip6-range=10.7.0.1-10.7.0.9",
        "/zerotier/controller/add private=no",
        "/zerotier/controller/print",
        ":put [/zerotier/controller/get [find name=net1] routes]",
        ":put [/zerotier/controller/get [find name=net1] ip6-range]",
        "/zerotier/controller/set [find name=net1] comment=office multicast-limit=64",
        "/zerotier/controller/set [find name=net1] !comment",
        "/zerotier/controller/unset [find name=net1] value-name=multicast-limit",
        "/zerotier/controller/set [find name=net1] mtu=100",
        "/zerotier/controller/set [find name=net1] network=1d71939404912b40",
        "/zerotier/controller/add copy-from=[find name=net1] name=net2",
        "/zerotier/controller/print",
        "/zerotier/controller/print detail where name=net2",
        ":put [/zerotier/controller/find where private=yes]",
        "/zerotier/controller/set [find name=net2] ip6-range=\"\" ip-range=10.7.0.12,10.7.0.30-10.7.0.40",
        ":put [/zerotier/controller/get [find name=net2] ip-range]",
        ":put [/zerotier/controller/get [find name=net2] ip6-range]",
        "/zerotier/controller/export",
        // /zerotier/controller/member: IPv4 and IPv6 addresses, unset, !prop, remove.
        "/zerotier/controller/member/add network=net1 zt-address=0123456789 ip-address=10.7.0.15",
        "/zerotier/controller/member/add network=nothere zt-address=0123456789",
        "/zerotier/controller/member/add network=net1 zt-address=01234",
        "/zerotier/controller/member/add network=net1",
        "/zerotier/controller/member/print",
        "/zerotier/controller/member/set 0 authorized=yes name=laptop ip-address=10.7.0.16,fd00:feed:feed:beef::16",
        ":put [/zerotier/controller/member/get 0 ip-address]",
        "/zerotier/controller/member/set 0 !name",
        "/zerotier/controller/member/set 0 zt-address=0123456780",
        "/zerotier/controller/member/unset 0 value-name=authorized",
        "/zerotier/controller/member/print detail",
        "/zerotier/controller/member/export",
        ":put [/zerotier/controller/member/find where zt-address=0123456789]",
        // /zerotier/interface: names the OS allows, arp-timeout, unset, !prop, copy-from.
        "/zerotier/interface/add network=1d71939404912b40 name=zerotier-office-1",
        "/zerotier/interface/add network=1d71939404912b4",
        "/zerotier/interface/add network=1d71939404912b40 name=zt-office instance=zt9",
        "/zerotier/interface/add network=1d71939404912b40 name=zt-office",
        "/zerotier/interface/set zt-office arp-timeout=1m allow-global=yes comment=\"first\"",
        ":put [/zerotier/interface/get zt-office arp-timeout]",
        "/zerotier/interface/set zt-office !comment",
        "/zerotier/interface/unset zt-office value-name=allow-global",
        "/zerotier/interface/unset zt-office value-name=network",
        "/zerotier/interface/unset zt-office value-name=status",
        "/zerotier/interface/add copy-from=zt-office name=zt-copy network=1d71939404912b41",
        "/zerotier/interface/print proplist=name,network",
        "/zerotier/interface/print detail where name=zt-copy",
        ":put [/zerotier/interface/find where network=1d71939404912b41]",
        "/zerotier/interface/export",
        "/zerotier/interface/remove zt-copy",
        "/zerotier/interface/remove zt-office",
        "/zerotier/interface/print",
        // The read-only menus.
        "/zerotier/peer/add zt-address=0123456789",
        "/ip/address/print",
        "/ip/route/print",
        // Removal, then everything once more.
        "/zerotier/controller/member/remove 0",
        "/zerotier/controller/remove [find name=net2]",
        "/zerotier/controller/remove [find name=v6]",
        "/export",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The route-distance `metric` of `dst` on `interface` in namespace 0, once it is there.
fn route_metric(lab: &Lab, interface: &str, dst: &str) -> Option<u64> {
    ip_json_in(lab, 0, &["route", "show", "dev", interface])
        .as_array()?
        .iter()
        .find(|r| r["dst"] == dst)
        .map(|r| r["metric"].as_u64().unwrap_or(0))
}

#[test]
fn console_prints_the_same_on_memory_and_on_a_live_ztd() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(1);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let id = identity();
    let address = id.address().to_string();
    // Its own root: the instance comes online without anything outside the namespace.
    let planet = world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0012,
        &id,
        SocketAddr::from((lab.ip(0), 9993)),
    );
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
    let (mut ztd, api) = start_ztd(&lab, 0, &home);
    enable_with_identity(&api, &id);
    let token = api.token.clone();

    let mut memory = Console::new(MemoryBackend::with_default_instance());
    memory.execute("/zerotier/enable zt1").unwrap();
    let zt1 = memory.backend().items("/zerotier")[0].id.clone();
    memory
        .backend_mut()
        .publish(
            "/zerotier",
            &zt1,
            &[
                ("identity", address.as_str()),
                ("identity.public", &id.to_public_string()),
            ],
        )
        .unwrap();

    // The console's side runs in a thread inside the namespace, where ztd's API listens.
    let (lines, address_shown) = (script(&address), address.clone());
    let matrix = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                lab.enter(0).unwrap();
                let mut live = Console::new(RestBackend::new(NamespaceHttp { token }));
                let mut rows = Vec::new();
                for line in &lines {
                    copy_runtime_state(live.backend_mut(), memory.backend_mut());
                    let show = |r: Result<String, zt_console::ConsoleError>| {
                        let text = r.unwrap_or_else(|e| format!("error: {e}\n"));
                        mask_network_ids(&text, &address_shown)
                    };
                    let on_memory = show(memory.execute(line));
                    let on_ztd = show(live.execute(line));
                    rows.push((line.clone(), on_memory, on_ztd));
                }
                rows
            })
            .join()
            .unwrap()
    });

    if std::env::var_os("ZT_PARITY_SHOW").is_some() {
        for (line, m, z) in &matrix {
            eprintln!(
                "> {line}\n{m}{}",
                if m == z { "" } else { "(ztd differs)\n" }
            );
            if m != z {
                eprintln!("{z}");
            }
        }
    }
    let differences: Vec<String> = matrix
        .iter()
        .filter(|(_, m, z)| m != z)
        .map(|(line, m, z)| format!("{line}\n--- memory:\n{m}--- ztd:\n{z}"))
        .collect();
    let report = differences.join("\n");
    let output_of = |wanted: &str| {
        matrix
            .iter()
            .find(|(line, _, _)| line == wanted)
            .map(|(_, m, _)| m.clone())
            .unwrap()
    };
    // What the drift was about, on both sides (they are equal once `differences` is empty).
    assert_eq!(
        output_of(":put [/zerotier/controller/get [find name=net1] routes]"),
        "10.7.0.0/24,fd00:feed:feed:beef::/64\n"
    );
    assert_eq!(
        output_of("/zerotier/set zt1 route-distance=0"),
        "error: value of route-distance is out of range (1 .. 255)\n"
    );
    assert!(
        output_of("/zerotier/interface/add network=1d71939404912b40 name=zerotier-office-1")
            .contains("Linux interface names have at most 15 characters"),
        "{report}"
    );
    assert_eq!(
        output_of(":put [/zerotier/controller/member/get 0 ip-address]"),
        "10.7.0.16,fd00:feed:feed:beef::16\n"
    );
    assert!(
        differences.is_empty(),
        "{} of {} commands differ:\n{report}\nztd: {}",
        differences.len(),
        matrix.len(),
        ztd.report()
    );

    // A route-distance change reaches the installed route without disable/enable.
    let net1 = format!("{address}000001");
    let mut call = |method: &str, path: &str, body: serde_json::Value| {
        let reply = api
            .call(method, path, Some(&body.to_string()))
            .unwrap_or_else(|| panic!("{method} {path}: no reply: {}", ztd.report()));
        assert!(reply.get("error").is_none(), "{method} {path}: {reply}");
        reply
    };
    // A gateway route: not the subnet the kernel routes by itself once the address is on.
    call(
        "PATCH",
        "/rest/zerotier/controller/net1",
        serde_json::json!({ "routes": "10.7.0.0/24,10.8.0.0/16@10.7.0.1,fd00:feed:feed:beef::/64" }),
    );
    call(
        "PUT",
        "/rest/zerotier/interface",
        serde_json::json!({ "network": net1, "name": "zt-own" }),
    );
    let member = poll(Duration::from_secs(30), || {
        let members = api.call("GET", "/rest/zerotier/controller/member", None)?;
        members.as_array()?.iter().find_map(|m| {
            (m["zt-address"] == address.as_str()).then(|| m[".id"].as_str().unwrap().to_string())
        })
    })
    .expect("our own join request reaches our controller");
    // RouterOS's R: not while the controller refuses us, even though the TAP is up.
    let interface_with = |status: &str| {
        poll(Duration::from_secs(30), || {
            let record = api.call("GET", "/rest/zerotier/interface/zt-own", None)?;
            (record["status"] == status).then_some(record)
        })
        .unwrap_or_else(|| panic!("zt-own never {status}"))
    };
    assert_eq!(interface_with("ACCESS_DENIED")["running"], "false");
    call(
        "PATCH",
        &format!("/rest/zerotier/controller/member/{member}"),
        serde_json::json!({ "authorized": "yes" }),
    );
    assert_eq!(interface_with("OK")["running"], "true");
    let first = poll(Duration::from_secs(30), || {
        route_metric(&lab, "zt-own", "10.8.0.0/16")
    });
    assert_eq!(first, Some(1), "route installed with distance 1");
    call(
        "PATCH",
        "/rest/zerotier/zt1",
        serde_json::json!({ "route-distance": "7" }),
    );
    let moved = poll(Duration::from_secs(15), || {
        route_metric(&lab, "zt-own", "10.8.0.0/16").filter(|m| *m == 7)
    });
    assert_eq!(moved, Some(7), "route moved to distance 7");
    let routes = api.call("GET", "/rest/ip/route", None).unwrap();
    assert!(
        routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dst-address"] == "10.8.0.0/16" && r["distance"] == "7"),
        "/ip/route shows the new distance: {routes}"
    );
}
