//! zerotier-cli's own requests against ztd, byte for byte as its HTTP client writes them
//! (ZeroTierOne's `one.cpp` and `osdep/Http.cpp`: `METHOD PATH HTTP/1.1`, the headers of a
//! sorted map — `Content-Length`, `Content-Type`, `X-ZT1-Auth` — and no `Host`), with the port
//! and token found in the home as `zerotier-cli -D<home>` finds them. Each answer must carry
//! what the CLI prints: `info` (address, version, online, tcpFallbackActive), `listnetworks`
//! and `get` (the network's fields), `listpeers`/`peers` (each peer's paths), `join`,
//! `set <nwid> allowDNS=1` and `leave`. Loopback only, in the test's own namespace.
mod loopback;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use loopback::{Ztd, KNOWN_ADDRESS};
use serde_json::Value;
use zt_testnet::skip_unless;

/// The ad-hoc network the CLI joins (no controller needed).
const ADHOC: &str = "ff0000ffff000000";

/// One request as zerotier-cli sends it; the status and the JSON body of the answer. The
/// connection is read up to the answer's `Content-Length`, as the CLI's parser does.
fn cli_request(api: SocketAddr, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut headers = String::new();
    if !body.is_empty() {
        headers.push_str(&format!(
            "Content-Length: {}\r\nContent-Type: application/json\r\n",
            body.len()
        ));
    }
    headers.push_str(&format!("X-ZT1-Auth: {token}\r\n"));
    let request = format!("{method} {path} HTTP/1.1\r\n{headers}\r\n{body}");
    let mut stream = TcpStream::connect(api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body_start) = loop {
        let n = stream.read(&mut chunk).expect("an answer");
        assert!(n > 0, "connection closed before the answer's head");
        raw.extend_from_slice(&chunk[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase(),
                at + 4,
            );
        }
    };
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a Content-Length, which the CLI's parser reads the body by");
    while raw.len() < body_start + length {
        let n = stream.read(&mut chunk).expect("the body");
        assert!(n > 0, "connection closed inside the body");
        raw.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&raw[body_start..body_start + length]).unwrap_or(Value::Null);
    (status, body)
}

fn network<'a>(list: &'a Value, nwid: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|n| n["id"] == nwid)
}

#[test]
fn zerotier_cli_requests_get_what_it_prints() {
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let ztd = Ztd::seeded(&home);
    ztd.enable_zt1();
    // -D<home>: the port and the token as the CLI reads them.
    let port: u16 = std::fs::read_to_string(home.join("zerotier-one.port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let token = std::fs::read_to_string(home.join("authtoken.secret")).unwrap();
    let api = SocketAddr::from(([127, 0, 0, 1], port));
    let cli =
        |method: &str, path: &str, body: &str| cli_request(api, token.trim(), method, path, body);

    // info: "200 info <address> <version> ONLINE|OFFLINE|TUNNELED"
    let (status, info) = cli("GET", "/status", "");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["address"], KNOWN_ADDRESS);
    assert!(
        info["version"]
            .as_str()
            .is_some_and(|v| v.split('.').count() == 3),
        "{info}"
    );
    assert!(
        info["online"].is_boolean() && info["tcpFallbackActive"].is_boolean(),
        "{info}"
    );

    // join: POST /network/<nwid> with "{}".
    let (status, joined) = cli("POST", &format!("/network/{ADHOC}"), "{}");
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["id"], ADHOC);

    // listnetworks: id, name, mac, status, type, portDeviceName, assignedAddresses.
    let (status, list) = cli("GET", "/network", "");
    assert_eq!(status, 200, "{list}");
    let shown = network(&list, ADHOC).unwrap_or_else(|| panic!("{list}"));
    for field in ["nwid", "name", "mac", "status", "type", "portDeviceName"] {
        assert!(shown[field].is_string(), "{field}: {shown}");
    }
    assert!(shown["assignedAddresses"].is_array(), "{shown}");

    // set <nwid> allowDNS=1 → {"allowDNS":true}; get <nwid> allowDNS reads /network.
    let (status, set) = cli("POST", &format!("/network/{ADHOC}"), r#"{"allowDNS":true}"#);
    assert_eq!(status, 200, "{set}");
    let (_, list) = cli("GET", "/network", "");
    assert_eq!(network(&list, ADHOC).unwrap()["allowDNS"], true, "{list}");
    let (status, set) = cli(
        "POST",
        &format!("/network/{ADHOC}"),
        r#"{"allowDNS":false}"#,
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["allowDNS"], false);

    // listpeers / peers: every peer with address, version, latency, role and paths.
    let (status, peers) = cli("GET", "/peer", "");
    assert_eq!(status, 200, "{peers}");
    for peer in peers.as_array().unwrap_or_else(|| panic!("{peers}")) {
        assert!(
            peer["address"].is_string() && peer["paths"].is_array(),
            "{peer}"
        );
        assert!(
            peer["role"].is_string() && peer["latency"].is_number(),
            "{peer}"
        );
    }
    let (status, moons) = cli("GET", "/moon", "");
    assert_eq!(status, 200, "{moons}");
    assert!(moons.is_array(), "{moons}");

    // leave: DELETE /network/<nwid>.
    let (status, left) = cli("DELETE", &format!("/network/{ADHOC}"), "");
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["result"], true, "{left}");
    let (_, list) = cli("GET", "/network", "");
    assert!(network(&list, ADHOC).is_none(), "{list}");

    // A wrong token: 401, which the CLI prints as the status.
    let (status, _) = cli_request(api, "wrong", "GET", "/status", "");
    assert_eq!(status, 401);
}
