//! Deauthorization during a flow, in namespaces, all ztd: a root that is also the controller,
//! and members A and B pinging each other both ways on a private network. B is deauthorized
//! through the RouterOS REST API; from then on no frame reaches either TAP after 1 s (A drops
//! B's frames and stops sending to it as soon as the revocation arrives, B drops its config),
//! B's interface leaves OK and its managed address is taken off.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use zt_testnet::{skip_unless, Lab};

/// Frames still in flight when the revocation is sent may arrive this long after it.
const STOP_WITHIN: Duration = Duration::from_secs(1);
/// How long the TAPs are watched after the deauthorization.
const WATCH: Duration = Duration::from_secs(4);

fn rest_field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_string()
}

/// Frames ztd wrote into the TAP `zerotier1` of namespace `ns`.
fn tap_rx_packets(lab: &Lab, ns: usize) -> Option<u64> {
    ip_json_in(lab, ns, &["-s", "link", "show", "dev", "zerotier1"])[0]["stats64"]["rx"]["packets"]
        .as_u64()
}

/// The IPv4 addresses on `zerotier1` in namespace `ns`.
fn tap_ipv4(lab: &Lab, ns: usize) -> Vec<String> {
    ip_json_in(lab, ns, &["-4", "addr", "show", "dev", "zerotier1"])
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().map(str::to_string))
        .collect()
}

fn interface_status(api: &Api) -> String {
    api.call("GET", "/rest/zerotier/interface", None)
        .and_then(|v| v.as_array()?.first().cloned())
        .map(|i| rest_field(&i, "status"))
        .unwrap_or_default()
}

fn set_authorized(controller: &Api, address: &str, yes: bool) {
    let member = poll(Duration::from_secs(30), || {
        controller
            .call("GET", "/rest/zerotier/controller/member", None)?
            .as_array()?
            .iter()
            .find(|m| m["zt-address"] == json!(address))
            .cloned()
    })
    .unwrap_or_else(|| panic!("member {address} never asked to join"));
    let body = json!({
        ".id": rest_field(&member, ".id"),
        "authorized": if yes { "yes" } else { "no" },
    });
    controller
        .call(
            "POST",
            "/rest/zerotier/controller/member/set",
            Some(&body.to_string()),
        )
        .expect("member set");
}

#[test]
fn a_deauthorized_member_is_cut_off_both_ways_within_a_second() {
    skip_unless!(zt_testnet::netns_available());
    skip_unless!(ping_available());
    let lab = Lab::new(3);
    let (root, a, b) = (0, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    let ids = [identity(), identity(), identity()];
    let planet = world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0002,
        &ids[root],
        SocketAddr::from((lab.ip(root), 9993)),
    );
    let mut daemons = Vec::new();
    let mut apis = Vec::new();
    for (ns, id) in ids.iter().enumerate() {
        let home = dir.path().join(format!("n{ns}"));
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
        let (proc, api) = start_ztd(&lab, ns, &home);
        enable_with_identity(&api, id);
        daemons.push(proc);
        apis.push(api);
    }
    let network = apis[root]
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(
                &json!({
                    "name": "lab",
                    "instance": "zt1",
                    "ip-range": "10.147.20.10-10.147.20.200",
                    "routes": "10.147.20.0/24",
                })
                .to_string(),
            ),
        )
        .expect("controller add");
    let nwid = rest_field(&network, "network");
    assert_eq!(nwid.len(), 16, "{network}");
    for ns in [a, b] {
        apis[ns]
            .call(
                "PUT",
                "/rest/zerotier/interface",
                Some(&json!({ "network": nwid }).to_string()),
            )
            .expect("interface add");
        set_authorized(&apis[root], &ids[ns].address().to_string(), true);
    }
    let addresses: Vec<String> = [a, b]
        .iter()
        .map(|&ns| {
            poll(Duration::from_secs(30), || tap_ipv4(&lab, ns).pop()).unwrap_or_else(|| {
                panic!(
                    "no address on zerotier1 in ns {ns}: {}\n{}",
                    daemons[ns].report(),
                    daemons[root].report()
                )
            })
        })
        .collect();
    let (a_ip, b_ip) = (&addresses[0], &addresses[1]);
    let ping = Path::new("/usr/bin/ping");
    let reached = poll(Duration::from_secs(60), || {
        let out = lab.run(
            a,
            ping,
            &["-c", "1", "-W", "2", b_ip],
            Duration::from_secs(5),
        );
        out.status.success().then_some(())
    });
    assert!(reached.is_some(), "A never reached B at {b_ip}");

    // A flow both ways, 20 pings a second each, outlasting the watch.
    let _a_to_b = lab.spawn(a, ping, &["-i", "0.05", "-w", "8", b_ip]);
    let _b_to_a = lab.spawn(b, ping, &["-i", "0.05", "-w", "8", a_ip]);
    let flowing = poll(Duration::from_secs(5), || {
        let before = [tap_rx_packets(&lab, a)?, tap_rx_packets(&lab, b)?];
        std::thread::sleep(Duration::from_millis(300));
        let after = [tap_rx_packets(&lab, a)?, tap_rx_packets(&lab, b)?];
        (after[0] > before[0] && after[1] > before[1]).then_some(())
    });
    assert!(
        flowing.is_some(),
        "no flow both ways before the deauthorization"
    );

    // When each TAP last got a frame, as seen by polling its counter.
    let mut last = [tap_rx_packets(&lab, a), tap_rx_packets(&lab, b)];
    let deauthorized = Instant::now();
    set_authorized(&apis[root], &ids[b].address().to_string(), false);
    let mut last_change = [Duration::ZERO; 2];
    while deauthorized.elapsed() < WATCH {
        std::thread::sleep(Duration::from_millis(50));
        for (i, ns) in [a, b].into_iter().enumerate() {
            let now = tap_rx_packets(&lab, ns);
            if now.is_some() && now != last[i] {
                last[i] = now;
                last_change[i] = deauthorized.elapsed();
            }
        }
    }
    eprintln!(
        "after the deauthorization, the last frame reached A's TAP at {:?} and B's at {:?}",
        last_change[0], last_change[1]
    );
    assert!(
        last_change[0] <= STOP_WITHIN,
        "A still got B's frames {:?} after the deauthorization",
        last_change[0]
    );
    assert!(
        last_change[1] <= STOP_WITHIN,
        "B still got A's frames {:?} after the deauthorization",
        last_change[1]
    );

    let left = poll(Duration::from_secs(10), || {
        let status = interface_status(&apis[b]);
        (status != "OK" && !status.is_empty()).then_some(status)
    });
    assert_eq!(
        left.as_deref(),
        Some("ACCESS_DENIED"),
        "B's interface: {}",
        daemons[b].report()
    );
    assert!(
        poll(Duration::from_secs(10), || tap_ipv4(&lab, b)
            .is_empty()
            .then_some(()))
        .is_some(),
        "B kept its managed address: {:?}",
        tap_ipv4(&lab, b)
    );
    // A is still a member and keeps its address.
    assert_eq!(interface_status(&apis[a]), "OK");
    assert_eq!(tap_ipv4(&lab, a), vec![a_ip.clone()]);
}
