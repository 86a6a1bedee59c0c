//! A private network in namespaces, all ztd: a root that is also the controller, and members.
//!
//! - Deauthorization during a flow: members A and B ping each other both ways; B is
//!   deauthorized through the RouterOS REST API; from then on no frame reaches either TAP
//!   after 1 s (A drops B's frames and stops sending to it as soon as the revocation arrives,
//!   B drops its config), B's interface leaves OK and its managed address is taken off.
//! - Pushed DNS: `/network` shows what the controller pushed; with `allowDNS` (set through
//!   the zerotier-one API as zerotier-cli does) ztd gives it to systemd-resolved for the
//!   interface, and takes it back when `allowDNS` goes off. A stand-in `resolvectl` on the
//!   member's PATH records the calls (the namespaces have no resolved).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use zt_crypto::Identity;
use zt_testnet::{skip_unless, Lab, NsProcess};

/// Frames still in flight when the revocation is sent may arrive this long after it.
const STOP_WITHIN: Duration = Duration::from_secs(1);
/// How long the TAPs are watched after the deauthorization.
const WATCH: Duration = Duration::from_secs(4);

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

/// ztd in namespace 0 as the planet's root and the network's controller, and ztd members in
/// `members`, joined and authorized, each with its managed address on `zerotier1`.
struct PrivateNetwork<'a> {
    lab: &'a Lab,
    daemons: Vec<NsProcess>,
    /// By namespace (0 is the controller's).
    apis: Vec<Api<'a>>,
    ids: Vec<Identity>,
    nwid: String,
}

impl<'a> PrivateNetwork<'a> {
    /// `member_env` goes into the members' environment.
    fn start(
        lab: &'a Lab,
        dir: &Path,
        members: &[usize],
        member_env: &[(&str, String)],
    ) -> PrivateNetwork<'a> {
        let root = 0;
        let ids: Vec<Identity> = (0..=members.len()).map(|_| identity()).collect();
        let planet = world_with_root(
            zt_wire::world::WorldType::Planet,
            0x7a7a_0002,
            &ids[root],
            SocketAddr::from((lab.ip(root), 9993)),
        );
        let mut daemons = Vec::new();
        let mut apis = Vec::new();
        for (ns, id) in ids.iter().enumerate() {
            let home = dir.join(format!("n{ns}"));
            std::fs::create_dir_all(home.join("zt1")).unwrap();
            std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
            let env = if ns == root { &[][..] } else { member_env };
            let (proc, api) = start_ztd_with_env(lab, ns, &home, &[], env);
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
        // `/zerotier` names the planet each running instance uses, and its roots.
        let instance = apis[root]
            .call("GET", "/rest/zerotier/zt1", None)
            .expect("zt1");
        assert_eq!(instance["planet"], json!(format!("{:016x}", planet.id)));
        assert_eq!(
            instance["planet-roots"],
            json!(ids[root].address().to_string())
        );
        for &ns in members {
            apis[ns]
                .call(
                    "PUT",
                    "/rest/zerotier/interface",
                    Some(&json!({ "network": nwid }).to_string()),
                )
                .expect("interface add");
            set_authorized(&apis[root], &ids[ns].address().to_string(), true);
        }
        PrivateNetwork {
            lab,
            daemons,
            apis,
            ids,
            nwid,
        }
    }

    /// The managed IPv4 address on `zerotier1` of member `ns`, once it is there.
    fn address_of(&mut self, ns: usize) -> String {
        poll(Duration::from_secs(30), || tap_ipv4(self.lab, ns).pop()).unwrap_or_else(|| {
            panic!(
                "no address on zerotier1 in ns {ns}: {}\n{}",
                self.daemons[ns].report(),
                self.daemons[0].report()
            )
        })
    }
}

#[test]
fn a_deauthorized_member_is_cut_off_both_ways_within_a_second() {
    skip_unless!(zt_testnet::netns_available());
    skip_unless!(ping_available());
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let (root, a, b) = (0, 1, 2);
    let mut net = PrivateNetwork::start(&lab, dir.path(), &[a, b], &[]);
    let addresses: Vec<String> = [a, b].iter().map(|&ns| net.address_of(ns)).collect();
    let (apis, ids) = (&net.apis, &net.ids);
    let (a_ip, b_ip) = (&addresses[0], &addresses[1]);
    let reached = poll(Duration::from_secs(60), || {
        ping_once(&lab, a, b_ip, 2).then_some(())
    });
    let ping = Path::new("/usr/bin/ping");
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
        net.daemons[b].report()
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

/// The calls the stand-in `resolvectl` recorded, one per line.
fn resolvectl_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn pushed_dns_is_shown_and_applied_only_with_allow_dns() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let dir = tempfile::tempdir().unwrap();
    let member = 1;
    // A stand-in resolvectl first on the member's PATH: it records its arguments.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.path().join("resolvectl.log");
    let script = bin.join("resolvectl");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut net = PrivateNetwork::start(&lab, dir.path(), &[member], &[("PATH", path)]);
    net.address_of(member);
    let nwid = net.nwid.clone();
    let (controller, api) = (&net.apis[0], &net.apis[member]);

    let dns = json!({"dns": {"domain": "lab.example", "servers": ["10.147.20.1", "fd00::53"]}});
    controller
        .call(
            "POST",
            &format!("/controller/network/{nwid}"),
            Some(&dns.to_string()),
        )
        .expect("set the network's DNS");
    let shown = poll(Duration::from_secs(20), || {
        let network = api.call("GET", &format!("/network/{nwid}"), None)?;
        (network["dns"]["domain"] == "lab.example").then_some(network)
    })
    .expect("the pushed DNS never showed in /network");
    assert_eq!(shown["dns"]["servers"], json!(["10.147.20.1", "fd00::53"]));
    assert_eq!(shown["allowDNS"], json!(false));
    assert!(
        resolvectl_calls(&log).is_empty(),
        "DNS applied without allowDNS: {:?}",
        resolvectl_calls(&log)
    );

    // zerotier-cli set <nwid> allowDNS=1
    let set = api
        .call(
            "POST",
            &format!("/network/{nwid}"),
            Some(&json!({"allowDNS": 1}).to_string()),
        )
        .expect("set allowDNS");
    assert_eq!(set["allowDNS"], json!(true), "{set}");
    let wanted = [
        "dns zerotier1 10.147.20.1 fd00::53".to_string(),
        "domain zerotier1 lab.example".to_string(),
    ];
    assert!(
        poll(Duration::from_secs(10), || (resolvectl_calls(&log)
            == wanted)
            .then_some(()))
        .is_some(),
        "resolvectl calls: {:?}",
        resolvectl_calls(&log)
    );

    api.call(
        "POST",
        &format!("/network/{nwid}"),
        Some(&json!({"allowDNS": false}).to_string()),
    )
    .expect("clear allowDNS");
    assert!(
        poll(Duration::from_secs(10), || (resolvectl_calls(&log).last()
            == Some(&"revert zerotier1".to_string()))
        .then_some(()))
        .is_some(),
        "resolvectl calls: {:?}",
        resolvectl_calls(&log)
    );
}
