//! TCP fallback in namespaces: a root ztd that is also the TCP relay (`tcp-relay=443`),
//! leaf A whose namespace drops all UDP (nftables) and whose local.conf names that relay,
//! and leaf B. A reaches the network through the relay within a bounded time after zerotier-one's
//! one-minute rule and pings B; the rule removed, A is back on UDP (its status says no
//! fallback, its root path answers again) and still pings B. Throughput through the relay
//! (iperf3 over the overlay) and the times are printed for the closing note, not asserted.
//!
//! The nodes use addresses of 203.0.113.0/24 beside the lab's 10.77.0.0/24: zerotier-one
//! (and ztd) fall back only for global addresses, which a relay on the Internet can reach.
//! The IPv6-only variant takes the lab's IPv4 addresses away and gives the nodes addresses
//! of 2001:db8:77::/64 instead: the planet names the root by its IPv6 address, A's
//! `tcpFallbackRelay` is IPv6, and A's tunnel to the relay is a TCP connection over IPv6
//! carrying datagrams for IPv6 addresses.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zt_crypto::Identity;
use zt_testnet::{skip_unless, Lab};

/// A network every node joins without a controller; members get 11.x.y.z/8.
const ADHOC_V4: &str = "ff0b000000000001";
/// The relay's port (ZeroTier's relays use HTTPS's).
const RELAY_PORT: u16 = 443;
/// zerotier-one's rule waits a minute of UDP silence (and a minute after the start); the
/// connection and the first answers through it come within a few ping intervals after.
const TCP_DEADLINE: Duration = Duration::from_secs(150);
/// UDP back: the next exchange with the root over UDP closes the tunnel.
const UDP_DEADLINE: Duration = Duration::from_secs(120);
const NFT: &str = "/usr/sbin/nft";
const SS: &str = "/usr/bin/ss";
const IPERF_SECONDS: &str = "5";

/// Which addresses the lab's nodes have.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Family {
    /// The lab's IPv4 addresses and a global IPv4 address each.
    V4,
    /// A global IPv6 address each and no IPv4 address at all.
    V6Only,
}

/// The lab node's address on the "global" network.
fn global_ip(node: usize, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, node as u8 + 1)),
        Family::V6Only => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x77,
            0,
            0,
            0,
            0,
            node as u16 + 1,
        )),
    }
}

/// Gives `node` its global address (and, for [`Family::V6Only`], takes its IPv4 ones away).
fn address_node(lab: &Lab, node: usize, family: Family) {
    let ip = "/usr/sbin/ip";
    match global_ip(node, family) {
        IpAddr::V4(v4) => run_ok(
            lab,
            node,
            ip,
            &["addr", "add", &format!("{v4}/24"), "dev", "eth0"],
        ),
        IpAddr::V6(v6) => {
            // No duplicate address detection: the address is usable at once.
            let address = format!("{v6}/64");
            run_ok(
                lab,
                node,
                ip,
                &["addr", "add", &address, "dev", "eth0", "nodad"],
            );
            run_ok(lab, node, ip, &["-4", "addr", "flush", "dev", "eth0"]);
        }
    }
}

/// `ip/port`, as paths are shown.
fn path_text(ip: IpAddr, port: u16) -> String {
    format!("{ip}/{port}")
}

/// Whether `node` has an established TCP connection to `to`, per `ss`.
fn tcp_connected(lab: &Lab, node: usize, to: SocketAddr) -> bool {
    let out = lab.run(
        node,
        Path::new(SS),
        &["-Htn", "state", "established"],
        Duration::from_secs(5),
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|field| field == to.to_string())
}

fn run_ok(lab: &Lab, node: usize, program: &str, args: &[&str]) {
    let out = lab.run(node, Path::new(program), args, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}",
        lab.ns(node),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drop every UDP datagram in and out of `node`'s namespace.
fn block_udp(lab: &Lab, node: usize) {
    let rules = "table inet zt_test_block_udp {\n\
                 chain input { type filter hook input priority 0; meta l4proto udp drop; }\n\
                 chain output { type filter hook output priority 0; meta l4proto udp drop; }\n\
                 }\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rules).unwrap();
    run_ok(lab, node, NFT, &["-f", &file.path().display().to_string()]);
}

fn unblock_udp(lab: &Lab, node: usize) {
    run_ok(
        lab,
        node,
        NFT,
        &["delete", "table", "inet", "zt_test_block_udp"],
    );
}

fn tcp_fallback_active(api: &Api) -> Option<bool> {
    api.call("GET", "/status", None)?["tcpFallbackActive"].as_bool()
}

/// `tunneled` of `peer` in the node's `/peer` (zerotier-one's flag for a relayed node).
fn tunneled(api: &Api, peer: &Identity) -> Option<bool> {
    api.call("GET", &format!("/peer/{}", peer.address()), None)?["tunneled"].as_bool()
}

/// The last time A heard from `peer` on a path to `address` (ms), per A's `/peer`.
fn last_receive_on(api: &Api, peer: &Identity, address: &str) -> Option<u64> {
    let peer = api.call("GET", &format!("/peer/{}", peer.address()), None)?;
    peer["paths"].as_array()?.iter().find_map(|p: &Value| {
        (p["address"].as_str() == Some(address))
            .then(|| p["lastReceive"].as_u64())
            .flatten()
    })
}

/// iperf3 from `client` to `server_ip` (a server already running), the receiver's rate.
fn iperf_mbits(lab: &Lab, client: usize, server_ip: &str) -> Option<f64> {
    let out = lab.run(
        client,
        Path::new("/usr/bin/iperf3"),
        &["-c", server_ip, "-t", IPERF_SECONDS, "-J"],
        Duration::from_secs(40),
    );
    let report: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(report["end"]["sum_received"]["bits_per_second"].as_f64()? / 1e6)
}

/// Which program relays in the root's namespace.
enum Relay {
    /// The root ztd itself (`tcp-relay=443`).
    Ztd,
    /// zerotier-one's `tcp-proxy` at this path (it listens on 443 of its own accord).
    ZerotierTcpProxy(std::path::PathBuf),
}

/// Why leaf A uses the relay.
#[derive(Clone, Copy, PartialEq)]
enum Cause {
    /// Its namespace drops all UDP: the fallback after zerotier-one's minute of silence.
    UdpBlocked,
    /// local.conf's `forceTcpRelay`, with UDP open: the relay from the start, and it stays.
    Forced,
}

#[test]
fn a_leaf_without_udp_reaches_the_network_through_the_tcp_relay_and_returns_to_udp() {
    fallback_through(Relay::Ztd, Cause::UdpBlocked, Family::V4);
}

/// The same where nobody has IPv4: A reaches ztd's relay over IPv6, and the relay forwards
/// A's datagrams to the root's IPv6 address.
#[test]
fn a_leaf_with_only_ipv6_reaches_the_tcp_relay_over_ipv6_and_returns_to_udp() {
    fallback_through(Relay::Ztd, Cause::UdpBlocked, Family::V6Only);
}

#[test]
fn force_tcp_relay_uses_the_relay_at_once_although_udp_works() {
    fallback_through(Relay::Ztd, Cause::Forced, Family::V4);
}

/// The same through zerotier-one's own relay, which shows that ztd's side of the tunnel is
/// the one zerotier-one's relays expect. Needs `ZT_TCP_PROXY`: the path of a `tcp-proxy`
/// built from ZeroTierOne's `tcp-proxy/` (`make` there).
#[test]
fn a_leaf_without_udp_reaches_the_network_through_zerotier_ones_tcp_proxy() {
    let proxy = skip_unless!(std::env::var_os("ZT_TCP_PROXY")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or(
            "ZT_TCP_PROXY does not name zerotier-one's tcp-proxy (make in ZeroTierOne/tcp-proxy)"
        ));
    fallback_through(
        Relay::ZerotierTcpProxy(proxy),
        Cause::UdpBlocked,
        Family::V4,
    );
}

fn fallback_through(relay: Relay, cause: Cause, family: Family) {
    skip_unless!(zt_testnet::netns_available());
    for (tool, package) in [
        (NFT, "nftables"),
        (SS, "iproute2"),
        ("/usr/bin/ping", "iputils-ping"),
        ("/usr/bin/iperf3", "iperf3"),
    ] {
        skip_unless!(Path::new(tool)
            .is_file()
            .then_some(())
            .ok_or(format!("{tool} not found (apt-get install {package})")));
    }
    let lab = Lab::new(3);
    let (root, a, b) = (0, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    for node in [root, a, b] {
        address_node(&lab, node, family);
    }
    let relay_address = SocketAddr::new(global_ip(root, family), RELAY_PORT);
    let (root_id, a_id, b_id) = (identity(), identity(), identity());
    let planet = common::world_with_root(
        zt_wire::world::WorldType::Planet,
        0x7a7a_0013,
        &root_id,
        SocketAddr::new(global_ip(root, family), 9993),
    );
    // A's UDP is blocked before its ztd starts: it never hears from anyone over UDP.
    if cause == Cause::UdpBlocked {
        block_udp(&lab, a);
    }
    let mut daemons = Vec::new();
    let mut apis = Vec::new();
    let started = Instant::now();
    for (node, id) in [(root, &root_id), (a, &a_id), (b, &b_id)] {
        let home = dir.path().join(format!("n{node}"));
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::write(home.join("zt1/planet"), planet.to_bytes()).unwrap();
        if node == a {
            let conf = serde_json::json!({"settings": {
                "tcpFallbackRelay": path_text(relay_address.ip(), RELAY_PORT),
                "forceTcpRelay": cause == Cause::Forced,
            }});
            std::fs::write(home.join("local.conf"), conf.to_string()).unwrap();
        }
        let (proc, api) = start_ztd(&lab, node, &home);
        enable_with_identity(&api, id);
        if node == root && matches!(relay, Relay::Ztd) {
            let setting = serde_json::json!({ "tcp-relay": RELAY_PORT.to_string() }).to_string();
            api.call("PATCH", "/rest/zerotier/zt1", Some(&setting))
                .expect("tcp-relay set");
        }
        add_interface(&api, ADHOC_V4);
        daemons.push(proc);
        apis.push(api);
    }
    let report = |daemons: &mut Vec<zt_testnet::NsProcess>| {
        format!(
            "root: {}\nA: {}\nB: {}",
            daemons[0].report(),
            daemons[1].report(),
            daemons[2].report()
        )
    };
    let _proxy = match &relay {
        Relay::Ztd => {
            let root_record = apis[root]
                .call("GET", "/rest/zerotier/zt1", None)
                .expect("root's instance");
            assert_eq!(root_record["tcp-relay"], "443", "{root_record}");
            None
        }
        Relay::ZerotierTcpProxy(path) => Some(lab.spawn(root, path, &[])),
    };
    let relay_name = match relay {
        Relay::Ztd => "ztd's TCP relay",
        Relay::ZerotierTcpProxy(_) => "zerotier-one's tcp-proxy",
    };

    let nwid = zt_wire::network_id::NetworkId(u64::from_str_radix(ADHOC_V4, 16).unwrap());
    let v4 = |id: &Identity| nwid.adhoc_ipv4_address(id.address()).unwrap().to_string();
    let b_ip = v4(&b_id);

    // Through the relay: the ping must come, and the instance says it uses the relay.
    let reached = poll(TCP_DEADLINE, || ping_once(&lab, a, &b_ip, 2).then_some(()));
    let to_tcp = started.elapsed();
    assert!(
        reached.is_some(),
        "A never reached B through the relay within {TCP_DEADLINE:?}\n{}",
        report(&mut daemons)
    );
    assert_eq!(tcp_fallback_active(&apis[a]), Some(true));
    let a_record = apis[a]
        .call("GET", "/rest/zerotier/zt1", None)
        .expect("A's instance");
    assert_eq!(a_record["tcp-fallback"], "true", "{a_record}");
    assert_eq!(tunneled(&apis[a], &root_id), Some(true));
    assert!(
        tcp_connected(&lab, a, relay_address),
        "A has no TCP connection to {relay_address}\n{}",
        report(&mut daemons)
    );
    eprintln!(
        "A pinged B through {relay_name} at {relay_address} {to_tcp:.1?} after its start \
         (UDP blocked: {}, {family:?})",
        cause == Cause::UdpBlocked
    );

    // Throughput through the relay, once (a figure for the note, not an assertion).
    let server = lab.spawn(b, Path::new("/usr/bin/iperf3"), &["-s", "-B", &b_ip]);
    std::thread::sleep(Duration::from_millis(500));
    match iperf_mbits(&lab, a, &b_ip) {
        Some(rate) => eprintln!("iperf3 A -> B through {relay_name}: {rate:.1} Mbit/s"),
        None => eprintln!("iperf3 A -> B through {relay_name}: no result"),
    }
    drop(server);

    if cause == Cause::Forced {
        // Forced: the relay stays although UDP works, and the API says why.
        let status = apis[a].call("GET", "/status", None).expect("A's status");
        assert_eq!(
            status["config"]["settings"]["forceTcpRelay"], true,
            "{status}"
        );
        let left = poll(Duration::from_secs(20), || {
            (tcp_fallback_active(&apis[a]) != Some(true)).then_some(())
        });
        assert!(
            left.is_none(),
            "A left the forced relay\n{}",
            report(&mut daemons)
        );
        assert!(ping_once(&lab, a, &b_ip, 2), "A no longer reaches B");
        return;
    }

    // UDP back: the tunnel closes, A hears the root over UDP again and still reaches B.
    let root_path = path_text(global_ip(root, family), 9993);
    let unblocked = Instant::now();
    unblock_udp(&lab, a);
    let closed = poll(UDP_DEADLINE, || {
        (tcp_fallback_active(&apis[a]) == Some(false)).then_some(())
    });
    let back_to_udp = unblocked.elapsed();
    assert!(
        closed.is_some(),
        "A kept the TCP relay for {UDP_DEADLINE:?} after UDP came back\n{}",
        report(&mut daemons)
    );
    eprintln!("A back on UDP (tunnel closed) {back_to_udp:.1?} after the block was lifted");
    // With the tunnel closed, whatever A hears from the root came by UDP.
    let mark = last_receive_on(&apis[a], &root_id, &root_path).unwrap_or(0);
    let heard_again = poll(Duration::from_secs(90), || {
        let last = last_receive_on(&apis[a], &root_id, &root_path)?;
        (last > mark && tcp_fallback_active(&apis[a]) == Some(false)).then_some(last)
    });
    assert!(
        heard_again.is_some(),
        "A hears nothing from the root on its UDP path {root_path}\n{}",
        report(&mut daemons)
    );
    let reached = poll(Duration::from_secs(60), || {
        ping_once(&lab, a, &b_ip, 2).then_some(())
    });
    assert!(
        reached.is_some(),
        "A no longer reaches B over UDP\n{}",
        report(&mut daemons)
    );
    assert_eq!(tcp_fallback_active(&apis[a]), Some(false));
    assert_eq!(tunneled(&apis[a], &root_id), Some(false));
}
