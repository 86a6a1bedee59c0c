//! ztd networks as TAP interfaces, in network namespaces, against a real ZeroTier node.
//!
//! A ztd root (namespace 0) serves a planet; our ztd leaf (namespace 1) adds
//! `/zerotier/interface network=ff0000ffff000000` and gets a TAP `zerotier1` with its MAC,
//! MTU and 6plane address; a real ZeroTier 1.8.4 node (`ztpeer`, namespace 2) joins the same
//! ad-hoc network and runs a TCP echo server. Plain kernel sockets in namespace 1 then reach
//! the real node over 6plane: `ping -6` answers (NDP emulated by ztd), a TCP message comes
//! back. Removing the interface deletes the TAP with its addresses and the saved config; a
//! re-added interface comes back after a daemon restart with its last config.
//!
//! Needs root, `ip netns`, `ztpeer`, `curl`, `python3`; otherwise each test prints why and
//! passes.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use zt_crypto::Identity;
use zt_testnet::{skip_unless, Lab};

mod common;
use common::{
    enable_with_identity, identity, make_planet, multicast_subscriptions, ping_once, poll, python3,
    sixplane, start_ztd, start_ztd_with_env, write_identity, Api, ADHOC,
};

/// The ad-hoc IPv4 network of the two-member tests: each member gets `11.x.y.z/8` from its
/// address (not 10/8, which would overlap the lab's underlay).
const ADHOC_V4: &str = "ff0b000000000001";

/// What these tests need (ztpeer signs their planets): python3's path, or why not.
fn prerequisites() -> Result<PathBuf, String> {
    zt_testnet::ztpeer_path()?;
    zt_testnet::netns_available()?;
    python3()
}

fn interface(api: &Api, name: &str) -> Option<Value> {
    let list = api.call("GET", "/rest/zerotier/interface", None)?;
    list.as_array()?.iter().find(|r| r["name"] == name).cloned()
}

/// `ip -j` output in namespace `ns`.
fn ip_json(lab: &Lab, ns: usize, args: &[&str]) -> Option<Value> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = lab.run(ns, Path::new("/usr/sbin/ip"), &all, Duration::from_secs(10));
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn link_has_address(lab: &Lab, ns: usize, device: &str, address: &str) -> bool {
    let wanted: std::net::IpAddr = address.parse().expect("an IP");
    ip_json(lab, ns, &["address", "show", "dev", device]).is_some_and(|v| {
        v.as_array().into_iter().flatten().any(|link| {
            link["addr_info"].as_array().into_iter().flatten().any(|a| {
                a["local"]
                    .as_str()
                    .and_then(|l| l.parse::<std::net::IpAddr>().ok())
                    == Some(wanted)
            })
        })
    })
}

/// What a script printed, followed by its stderr if it failed.
fn stdout_or_error(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        if out.status.success() {
            String::new()
        } else {
            format!(" (error: {})", String::from_utf8_lossy(&out.stderr))
        }
    )
}

/// A TCP round trip from namespace `ns` to `[ip]:port` with python3: send `message`, expect
/// it back (the echo server answers with what it got).
fn tcp_echo(lab: &Lab, ns: usize, python: &Path, ip: &str, port: u16, message: &str) -> String {
    let script = format!(
        "import socket,sys\n\
         s=socket.create_connection(('{ip}',{port}),timeout=10)\n\
         s.sendall(b'{message}')\n\
         got=b''\n\
         s.settimeout(10)\n\
         while len(got)<{len}:\n    d=s.recv(4096)\n    if not d: break\n    got+=d\n\
         sys.stdout.write(got.decode(errors='replace'))\n",
        len = message.len()
    );
    let out = lab.run(ns, python, &["-c", &script], Duration::from_secs(30));
    stdout_or_error(&out)
}

/// `mib` MiB of random bytes to the TCP echo server at `[ip]:port` from namespace `ns`, sent
/// by a thread while the echo is read back: `"<bytes> intact"` when every byte came back in
/// order, otherwise what went wrong.
fn tcp_echo_bulk(lab: &Lab, ns: usize, python: &Path, ip: &str, port: u16, mib: usize) -> String {
    let script = format!(
        "import socket,sys,os,threading\n\
         data=os.urandom({mib}<<20)\n\
         s=socket.create_connection(('{ip}',{port}),timeout=30)\n\
         threading.Thread(target=s.sendall,args=(data,),daemon=True).start()\n\
         got=bytearray()\n\
         while len(got)<len(data):\n    d=s.recv(1<<16)\n    if not d: break\n    got+=d\n\
         sys.stdout.write('%d %s' % (len(got), 'intact' if got==data else 'CHANGED'))\n"
    );
    let out = lab.run(ns, python, &["-c", &script], Duration::from_secs(120));
    stdout_or_error(&out)
}

#[test]
fn tap_interface_talks_to_a_real_node_over_6plane_and_cleans_up() {
    let python = skip_unless!(prerequisites());
    let ztpeer = zt_testnet::ztpeer_path().unwrap();
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let (root_id, ours_id, real_id) = (identity(), identity(), identity());
    let planet = dir.path().join("planet");
    make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);

    // The root (our ztd).
    let root_home = dir.path().join("root");
    std::fs::create_dir_all(root_home.join("zt1")).unwrap();
    std::fs::copy(&planet, root_home.join("zt1/planet")).unwrap();
    let (mut root, root_api) = start_ztd(&lab, 0, &root_home);
    enable_with_identity(&root_api, &root_id);

    // Our leaf with a TAP on the ad-hoc network.
    let home = dir.path().join("ours");
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
    let (mut ours, api) = start_ztd(&lab, 1, &home);
    enable_with_identity(&api, &ours_id);
    let added = api.call(
        "PUT",
        "/rest/zerotier/interface",
        Some(&serde_json::json!({ "network": ADHOC }).to_string()),
    );
    assert!(added.is_some(), "interface add failed\n{}", ours.report());
    let ok = poll(Duration::from_secs(15), || {
        interface(&api, "zerotier1").filter(|r| r["status"] == "OK" && r["running"] == "true")
    });
    let item = ok.unwrap_or_else(|| {
        panic!(
            "interface not OK/running: {:?}\n{}",
            interface(&api, "zerotier1"),
            ours.report()
        )
    });
    assert_eq!(item["network"], ADHOC);
    assert_eq!(item["type"], "PUBLIC");
    assert_eq!(item["network-name"], "adhoc-0000-ffff");
    assert_eq!(item["mtu"], "2800");
    let our_6plane = sixplane(&ours_id);
    assert!(
        poll(Duration::from_secs(10), || link_has_address(
            &lab,
            1,
            "zerotier1",
            &our_6plane
        )
        .then_some(()))
        .is_some(),
        "6plane {our_6plane} not on zerotier1: {:?}",
        ip_json(&lab, 1, &["address", "show"])
    );
    let link = ip_json(&lab, 1, &["link", "show", "dev", "zerotier1"]).expect("link");
    assert_eq!(link[0]["mtu"], 2800);
    assert_eq!(
        link[0]["address"].as_str().unwrap().to_uppercase(),
        item["mac-address"].as_str().unwrap()
    );
    assert!(home.join(format!("zt1/networks.d/{ADHOC}.conf")).is_file());

    // The real node: an echo server on 6plane port 7777.
    let real_home = dir.path().join("real");
    write_identity(&real_home, &real_id);
    let (planet_s, real_s) = (
        planet.display().to_string(),
        real_home.display().to_string(),
    );
    let mut real = lab.spawn(
        2,
        &ztpeer,
        &[
            "run",
            "--home",
            &real_s,
            "--roots",
            &planet_s,
            "--join",
            ADHOC,
            "--tcp-echo-server",
            "7777",
            "--for",
            "90",
            "--status-every",
            "2",
        ],
    );
    let real_6plane = sixplane(&real_id);
    let ping = Path::new("/usr/bin/ping");
    let pinged = poll(Duration::from_secs(60), || {
        let out = lab.run(
            1,
            ping,
            &["-6", "-c", "1", "-W", "2", &real_6plane],
            Duration::from_secs(5),
        );
        out.status.success().then_some(())
    });
    assert!(
        pinged.is_some(),
        "ping -6 {real_6plane} failed\n{}\n{}",
        real.report(),
        ours.report()
    );
    let echoed = tcp_echo(&lab, 1, &python, &real_6plane, 7777, "hello-over-tap");
    assert_eq!(echoed, "hello-over-tap", "\n{}", real.report());
    // Bulk TCP both ways with the real node: our kernel's TSO super-frames cut into frames
    // for it, its segments coalesced for our kernel.
    let bulk = tcp_echo_bulk(&lab, 1, &python, &real_6plane, 7777, 4);
    assert_eq!(bulk, "4194304 intact", "\n{}", real.report());

    // Remove: TAP, address and saved config go.
    let left = api
        .call("DELETE", &format!("/network/{ADHOC}"), None)
        .expect("leave");
    assert_eq!(left["result"], true);
    assert!(
        poll(Duration::from_secs(10), || ip_json(
            &lab,
            1,
            &["link", "show", "dev", "zerotier1"]
        )
        .is_none()
        .then_some(()))
        .is_some(),
        "zerotier1 still exists after remove"
    );
    assert!(!home.join(format!("zt1/networks.d/{ADHOC}.conf")).exists());
    assert!(interface(&api, "zerotier1").is_none());

    // Re-add, restart the daemon: the interface comes back with its address.
    api.call(
        "PUT",
        "/rest/zerotier/interface",
        Some(&serde_json::json!({ "network": ADHOC, "name": "ztback" }).to_string()),
    )
    .expect("re-add");
    assert_eq!(
        api.call("GET", "/rest/zerotier/interface", None)
            .and_then(|l| l.as_array().map(Vec::len)),
        Some(1)
    );
    assert!(poll(Duration::from_secs(15), || link_has_address(
        &lab,
        1,
        "ztback",
        &our_6plane
    )
    .then_some(()))
    .is_some());
    drop(ours);
    assert!(
        poll(Duration::from_secs(10), || ip_json(
            &lab,
            1,
            &["link", "show", "dev", "ztback"]
        )
        .is_none()
        .then_some(()))
        .is_some(),
        "the TAP goes with the daemon"
    );
    let (mut again, api) = start_ztd(&lab, 1, &home);
    assert!(
        poll(Duration::from_secs(15), || link_has_address(
            &lab,
            1,
            "ztback",
            &our_6plane
        )
        .then_some(()))
        .is_some(),
        "ztback not restored\n{}",
        again.report()
    );
    let item = interface(&api, "ztback").expect("ztback listed");
    assert_eq!(item["network"], ADHOC);
    // The restarted node first has to find the real one again: retry within a deadline.
    let mut last = String::new();
    let echoed = poll(Duration::from_secs(40), || {
        last = tcp_echo(&lab, 1, &python, &real_6plane, 7777, "after-restart");
        (last == "after-restart").then_some(())
    });
    assert!(
        echoed.is_some(),
        "{last}\n{}\n{}",
        real.report(),
        again.report()
    );
    root.wait(Duration::from_millis(10));
}

/// A ztd root (namespace 0) and two ztd members (namespaces 1 and 2), each member with
/// `zerotier1` on the ad-hoc IPv4 network `nwid` and its `11.x.y.z/8` address up. The root is
/// ztd too: it keeps the members' multicast subscriptions, which ARP and gathers need.
struct AdhocV4Lab<'a> {
    daemons: Vec<zt_testnet::NsProcess>,
    apis: Vec<Api<'a>>,
    /// Root, member 1, member 2.
    ids: Vec<Identity>,
    nwid: zt_wire::network_id::NetworkId,
}

impl<'a> AdhocV4Lab<'a> {
    /// The IPv4 address of member `n` (1 or 2).
    fn v4(&self, n: usize) -> String {
        adhoc_v4(self.nwid, &self.ids[n])
    }

    fn start(lab: &'a Lab, dir: &Path, nwid_hex: &str) -> AdhocV4Lab<'a> {
        Self::start_with(lab, dir, nwid_hex, &[])
    }

    /// [`AdhocV4Lab::start`] with the daemons of namespaces `plain_taps` told not to use TAP
    /// offloads (`ZTD_TAP_OFFLOAD=off`).
    fn start_with(
        lab: &'a Lab,
        dir: &Path,
        nwid_hex: &str,
        plain_taps: &[usize],
    ) -> AdhocV4Lab<'a> {
        let ids = vec![identity(), identity(), identity()];
        let planet = dir.join("planet");
        make_planet(&planet, &[(&ids[0], format!("{}/9993", lab.ip(0)))]);
        let mut daemons = Vec::new();
        let mut apis = Vec::new();
        for (ns, id) in ids.iter().enumerate() {
            let home = dir.join(format!("n{ns}"));
            std::fs::create_dir_all(home.join("zt1")).unwrap();
            std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
            let env = if plain_taps.contains(&ns) {
                vec![("ZTD_TAP_OFFLOAD", "off".to_string())]
            } else {
                Vec::new()
            };
            let (proc, api) = start_ztd_with_env(lab, ns, &home, &[], &env);
            enable_with_identity(&api, id);
            daemons.push(proc);
            apis.push(api);
        }
        let nwid = zt_wire::network_id::NetworkId(u64::from_str_radix(nwid_hex, 16).unwrap());
        for api in &apis[1..] {
            api.call(
                "PUT",
                "/rest/zerotier/interface",
                Some(&serde_json::json!({ "network": nwid_hex }).to_string()),
            )
            .expect("interface add");
        }
        for (ns, id) in ids.iter().enumerate().skip(1) {
            let address = adhoc_v4(nwid, id);
            assert!(
                poll(Duration::from_secs(15), || link_has_address(
                    lab,
                    ns,
                    "zerotier1",
                    &address
                )
                .then_some(()))
                .is_some(),
                "no {address} on zerotier1 in ns {ns}"
            );
        }
        AdhocV4Lab {
            daemons,
            apis,
            ids,
            nwid,
        }
    }
}

/// The IPv4 address a member gets on an ad-hoc IPv4 network.
fn adhoc_v4(nwid: zt_wire::network_id::NetworkId, id: &Identity) -> String {
    nwid.adhoc_ipv4_address(id.address()).unwrap().to_string()
}

/// Two of our nodes on the ad-hoc IPv4 network `ff0b000000000001` (each member gets
/// `11.x.y.z/8` from its address, shown in `/ip/address`; not 10/8, which would overlap the
/// lab's underlay): IPv4 ping answers and 100 MB cross over TCP with their SHA-256 intact.
/// Neighbours are resolved by ARP over ZeroTier multicast (group broadcast MAC with the
/// target IPv4 as ADI, gathered through the root).
#[test]
fn two_ztd_taps_ping_and_move_100_mb_over_ipv4() {
    let python = skip_unless!(prerequisites());
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let mut members = AdhocV4Lab::start(&lab, dir.path(), ADHOC_V4);
    let nwid = members.nwid;
    let (a_ip, b_ip) = (members.v4(1), members.v4(2));
    // /ip/address shows the managed IPv4 as dynamic.
    let addresses = members.apis[1]
        .call("GET", "/rest/ip/address", None)
        .expect("ip/address");
    let mine = format!("{a_ip}/8");
    assert!(
        addresses
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == mine.as_str()
                && r["interface"] == "zerotier1"
                && r["network"] == "11.0.0.0"
                && r["dynamic"] == "true"),
        "{addresses}"
    );

    let pinged = poll(Duration::from_secs(60), || {
        ping_once(&lab, 1, &b_ip, 2).then_some(())
    });
    assert!(
        pinged.is_some(),
        "ping {b_ip} failed\nA link: {:?}\nB link: {:?}\n{}\n{}",
        ip_json(&lab, 1, &["-s", "link", "show", "dev", "zerotier1"])
            .map(|v| v[0]["stats64"].clone()),
        ip_json(&lab, 2, &["-s", "link", "show", "dev", "zerotier1"])
            .map(|v| v[0]["stats64"].clone()),
        members.daemons[1].report(),
        members.daemons[2].report(),
    );

    // ARP found the peer's ZeroTier MAC: the kernel learnt it, nothing was set by hand.
    let b_mac = zt_wire::mac::Mac::from_address(members.ids[2].address(), nwid).to_string();
    let neighbours = ip_json(&lab, 1, &["neigh", "show", "dev", "zerotier1"]);
    let learnt = neighbours.as_ref().and_then(|v| {
        v.as_array()?.iter().find(|n| {
            n["dst"] == b_ip.as_str()
                && n["lladdr"] == b_mac.as_str()
                && n["state"].as_array().is_some_and(|states| {
                    states.iter().any(|s| {
                        ["REACHABLE", "STALE", "DELAY", "PROBE"].contains(&s.as_str().unwrap_or(""))
                    })
                })
        })
    });
    assert!(
        learnt.is_some(),
        "no ARP entry {b_ip} -> {b_mac}: {neighbours:?}"
    );

    // 100 MB over TCP, checked end to end.
    let seconds = tcp_transfer(&lab, &python, (1, 2), &b_ip, 100);
    eprintln!("100 MiB over the TAPs in {seconds} s");
    // Both TAPs carried it with offloads (TSO super-frames read, segments coalesced).
    for n in [1, 2] {
        let log = members.daemons[n].report();
        assert!(log.contains("tap offloads on"), "member {n}: {log}");
    }
}

/// A member whose TAP has offloads (TCP super-frames read and cut, received segments
/// coalesced into super-frames) and one whose TAP has none (`ZTD_TAP_OFFLOAD=off`): TCP
/// crosses intact both ways, so the frames cut from super-frames are ordinary frames for any
/// member, and what a plain member sends is coalesced for the other.
#[test]
fn tcp_crosses_intact_between_a_tap_with_offloads_and_one_without() {
    let python = skip_unless!(prerequisites());
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let mut members = AdhocV4Lab::start_with(&lab, dir.path(), ADHOC_V4, &[2]);
    let (a_ip, b_ip) = (members.v4(1), members.v4(2));
    let pinged = poll(Duration::from_secs(60), || {
        ping_once(&lab, 1, &b_ip, 2).then_some(())
    });
    assert!(
        pinged.is_some(),
        "ping {b_ip} failed\n{}\n{}",
        members.daemons[1].report(),
        members.daemons[2].report(),
    );
    tcp_transfer(&lab, &python, (1, 2), &b_ip, 16);
    tcp_transfer(&lab, &python, (2, 1), &a_ip, 16);
    let with = members.daemons[1].report();
    assert!(with.contains("tap offloads on"), "{with}");
    let without = members.daemons[2].report();
    assert!(without.contains("tap without offloads"), "{without}");
}

/// `mib` MiB of random bytes over TCP from namespace `from` to a receiver at `to_ip` in
/// namespace `to`, with python3; panics unless the receiver counts every byte and its SHA-256
/// matches the sender's. Returns the sender's seconds (for the log only).
fn tcp_transfer(
    lab: &Lab,
    python: &Path,
    (from, to): (usize, usize),
    to_ip: &str,
    mib: usize,
) -> String {
    let receiver = format!(
        "import socket,hashlib,sys\n\
         l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         l.bind(('{to_ip}',9000)); l.listen(1); l.settimeout(60)\n\
         c,_=l.accept(); c.settimeout(60); h=hashlib.sha256(); n=0\n\
         while True:\n    d=c.recv(1<<16)\n    if not d: break\n    h.update(d); n+=len(d)\n\
         print(n, h.hexdigest())\n"
    );
    let sender = format!(
        "import socket,hashlib,os,time\n\
         data=os.urandom(1<<20); h=hashlib.sha256()\n\
         for i in range(50):\n\
         \x20   try:\n        s=socket.create_connection(('{to_ip}',9000),timeout=5); break\n\
         \x20   except OSError: time.sleep(0.2)\n\
         s.settimeout(60); t=time.time()\n\
         for i in range({mib}):\n    s.sendall(data); h.update(data)\n\
         s.shutdown(socket.SHUT_WR); s.recv(1); s.close()\n\
         print({mib}<<20, h.hexdigest(), '%.2f' % (time.time()-t))\n"
    );
    let mut rx = lab.spawn(to, python, &["-c", &receiver]);
    let tx = lab.run(from, python, &["-c", &sender], Duration::from_secs(180));
    let rx_exit = rx.wait(Duration::from_secs(30));
    let sent = String::from_utf8_lossy(&tx.stdout).to_string();
    assert!(tx.status.success(), "sender failed: {tx:?}");
    assert!(rx_exit.is_some_and(|s| s.success()), "{}", rx.report());
    let got = rx.seen().join("\n");
    let mut sent_fields = sent.split_whitespace();
    let (bytes, digest, seconds) = (
        sent_fields.next().unwrap_or_default(),
        sent_fields.next().unwrap_or_default(),
        sent_fields.next().unwrap_or_default(),
    );
    assert_eq!(
        got.trim(),
        format!("{bytes} {digest}"),
        "receiver vs sender"
    );
    seconds.to_string()
}

/// Multicast like a LAN: a member subscribes to the groups the kernel has its TAP in, not
/// only those ztd computes. A group added with `ip maddr` shows up in the member's
/// `multicastSubscriptions` next to the kernel's own (IPv4 all-hosts, IPv6 all-nodes) and
/// the ARP group of its address, and goes when it is deleted; a program joining an IPv4
/// group on one member gets the UDP datagrams another member sends to it.
#[test]
fn tap_multicast_groups_follow_the_kernel_and_carry_udp() {
    let python = skip_unless!(prerequisites());
    let ip = Path::new("/usr/sbin/ip");
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let mut members = AdhocV4Lab::start(&lab, dir.path(), ADHOC_V4);
    let (a_ip, b_ip) = (members.v4(1), members.v4(2));
    let extra = ("01:00:5e:01:02:03".to_string(), 0);
    let arp = (
        "ff:ff:ff:ff:ff:ff".to_string(),
        u64::from(u32::from(a_ip.parse::<std::net::Ipv4Addr>().unwrap())),
    );
    let kernel_groups = [
        ("01:00:5e:00:00:01".to_string(), 0),
        ("33:33:00:00:00:01".to_string(), 0),
    ];

    let added = lab.run(
        1,
        ip,
        &["maddr", "add", &extra.0, "dev", "zerotier1"],
        Duration::from_secs(10),
    );
    assert!(added.status.success(), "ip maddr add: {added:?}");
    let mut seen = Vec::new();
    let subscribed = poll(Duration::from_secs(20), || {
        seen = multicast_subscriptions(&members.apis[1], ADHOC_V4);
        let all = kernel_groups
            .iter()
            .chain([&extra, &arp])
            .all(|g| seen.contains(g));
        all.then_some(())
    });
    assert!(
        subscribed.is_some(),
        "wanted {extra:?}, {arp:?} and {kernel_groups:?}, have {seen:?}\n{}",
        members.daemons[1].report()
    );

    // A program on member 2 joins 239.1.2.4 on its TAP; member 1 sends to the group until
    // the datagram arrives (member 2 subscribes within a scan period, then member 1's
    // gather has to find it).
    let receiver = format!(
        "import socket,struct,sys\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('239.1.2.4',9100))\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,\
         struct.pack('4s4s',socket.inet_aton('239.1.2.4'),socket.inet_aton('{b_ip}')))\n\
         s.settimeout(45)\n\
         d,a=s.recvfrom(1500)\n\
         print(d.decode(errors='replace'), a[0])\n"
    );
    let sender = format!(
        "import socket,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('{a_ip}'))\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,1)\n\
         for i in range(80):\n    s.sendto(b'to-the-group',('239.1.2.4',9100)); time.sleep(0.5)\n"
    );
    let mut rx = lab.spawn(2, &python, &["-c", &receiver]);
    let mut tx = lab.spawn(1, &python, &["-c", &sender]);
    let rx_exit = rx.wait(Duration::from_secs(50));
    tx.wait(Duration::from_millis(10));
    assert!(
        rx_exit.is_some_and(|s| s.success()),
        "no datagram to 239.1.2.4 on member 2; its subscriptions: {:?}\n{}\n{}\n{}",
        multicast_subscriptions(&members.apis[2], ADHOC_V4),
        rx.report(),
        members.daemons[1].report(),
        members.daemons[2].report()
    );
    assert_eq!(rx.seen().join("\n").trim(), format!("to-the-group {a_ip}"));

    let deleted = lab.run(
        1,
        ip,
        &["maddr", "del", &extra.0, "dev", "zerotier1"],
        Duration::from_secs(10),
    );
    assert!(deleted.status.success(), "ip maddr del: {deleted:?}");
    let unsubscribed = poll(Duration::from_secs(20), || {
        seen = multicast_subscriptions(&members.apis[1], ADHOC_V4);
        (!seen.is_empty() && !seen.contains(&extra)).then_some(())
    });
    assert!(
        unsubscribed.is_some(),
        "{extra:?} still subscribed: {seen:?}"
    );
    assert!(seen.contains(&arp), "{seen:?}");
    drop(members);
}
