//! Multicast from a real ZeroTier node into a ztd host, as on a LAN.
//!
//! A ztd root and controller (namespace 0) serves two public networks; a ztd member
//! (namespace 1) joins both with TAPs and runs UDP echo receivers; a real ZeroTier 1.8.4 node
//! (`ztpeer`, libzt, namespace 2) sends to it:
//! - to the link-local address of ztd's TAP, and to `ff02::1` (all nodes) — both answered;
//! - to `239.1.2.3`, a group a program on the ztd host joined on its TAP (IP_ADD_MEMBERSHIP)
//!   — answered; then the program leaves the group (IP_DROP_MEMBERSHIP) and ztd's `/network`
//!   `multicastSubscriptions` no longer lists it.
//!
//! The datagrams cross the real node's multicast machinery: its gathers to our root find the
//! ztd member only if it announced the kernel's groups of its TAP (MULTICAST_LIKE), and they
//! arrive as MULTICAST_FRAMEs. libzt reaches none of this by default; what the test shapes
//! around, and why (facts from libzt 1.8.4 and the lwIP it builds, `src/lwipopts.h`):
//! - libzt has no ICMP sockets (`LWIP_RAW 0`): "ping" is a UDP echo here.
//! - ztpeer's sockets are not bound to an address, and libzt's address parser sets no IPv6
//!   scope id, so a link-local or `ff02::` destination has no zone. lwIP's `ip6_route` then
//!   finds an interface only when the stack has exactly one (its single-interface shortcut;
//!   otherwise it wants a source address or zone, and sendto fails with EHOSTUNREACH). libzt
//!   makes one lwIP interface per address family of each joined network, so the IPv6 network
//!   has no IPv4 pool, and each run of the real node gets a fresh home: libzt re-joins the
//!   networks cached in its home, which would add interfaces.
//! - lwIP's `ip4_route` sends multicast to the interface whose subnet holds the destination,
//!   else to the default interface, and libzt makes only its IPv6 interface the default (it
//!   never sets lwIP's default multicast interface, and IGMP is compiled out): so on a network
//!   with the usual /24 route, sending to 239.x fails with EHOSTUNREACH. The IPv4 network's
//!   route, 128.0.0.0/1, gives members a /1 that holds 224.0.0.0/4.
//! - libzt subscribes only to the address-resolution groups of its assigned addresses, not to
//!   the solicited-node group of its link-local address, so no host can find that address by
//!   neighbour solicitation. The ztd host learns it from the real node's own solicitation
//!   (with its link-layer address) in the link-local exchange, which therefore comes before
//!   the `ff02::1` one, whose answer goes to the real node's link-local address.
//!
//! Needs root, `ip netns`, `ztpeer`, `curl`, `python3`; otherwise the test says why and passes.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use zt_crypto::Identity;
use zt_testnet::{json_line, skip_unless, Lab, NsProcess};

mod common;
use common::{
    enable_with_identity, identity, ip_json_in, make_planet, multicast_subscriptions, poll,
    python3, start_ztd, write_identity, Api,
};

/// The receivers' ports on the ztd host.
const PORT_V6: u16 = 9101;
const PORT_V4: u16 = 9100;
const GROUP_V4: &str = "239.1.2.3";
/// The Ethernet group of [`GROUP_V4`] (RFC 1112: 01:00:5e + its low 23 bits).
const GROUP_V4_MAC: &str = "01:00:5e:01:02:03";

/// An IPv6 UDP echo on `[::]:port`: each datagram goes back to its sender, after a JSON line
/// with its text, its source and the destination it was sent to (IPV6_PKTINFO). Ends after
/// `seconds`.
fn echo_v6_script(port: u16, seconds: u32) -> String {
    format!(
        "import socket,json,time\n\
         s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_RECVPKTINFO,1)\n\
         s.bind(('::',{port}))\n\
         end=time.time()+{seconds}\n\
         print(json.dumps({{'listening':{port}}}),flush=True)\n\
         while time.time()<end:\n\
         \x20   s.settimeout(max(0.1,end-time.time()))\n\
         \x20   try: d,anc,_,a=s.recvmsg(2048,socket.CMSG_SPACE(20))\n\
         \x20   except socket.timeout: break\n\
         \x20   to=[socket.inet_ntop(socket.AF_INET6,c[2][:16]) for c in anc\n\
         \x20       if c[0]==socket.IPPROTO_IPV6 and c[1]==socket.IPV6_PKTINFO]\n\
         \x20   print(json.dumps({{'text':d.decode(errors='replace'),'from':a[0],'to':to}}),flush=True)\n\
         \x20   s.sendto(d,a)\n"
    )
}

/// An IPv4 UDP echo bound to `group:port` (so only datagrams sent to the group arrive) that
/// joins the group on `device`; each datagram goes back to its sender after a JSON line. When
/// the file `leave` appears it drops the membership (and says so) but keeps its socket.
/// Ends after `seconds`.
fn echo_group_script(group: &str, port: u16, device: &str, leave: &Path, seconds: u32) -> String {
    let leave = leave.display();
    format!(
        "import socket,struct,json,os,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.bind(('{group}',{port}))\n\
         mreq=struct.pack('4s4si',socket.inet_aton('{group}'),socket.inet_aton('0.0.0.0'),\
         socket.if_nametoindex('{device}'))\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,mreq)\n\
         print(json.dumps({{'joined':'{group}'}}),flush=True)\n\
         end=time.time()+{seconds}\n\
         member=True\n\
         while time.time()<end:\n\
         \x20   if member and os.path.exists('{leave}'):\n\
         \x20       s.setsockopt(socket.IPPROTO_IP,socket.IP_DROP_MEMBERSHIP,mreq); member=False\n\
         \x20       print(json.dumps({{'left':'{group}'}}),flush=True)\n\
         \x20   s.settimeout(0.2)\n\
         \x20   try: d,a=s.recvfrom(2048)\n\
         \x20   except socket.timeout: continue\n\
         \x20   print(json.dumps({{'text':d.decode(errors='replace'),'from':a[0]}}),flush=True)\n\
         \x20   s.sendto(d,a)\n"
    )
}

/// Creates a public network on the controller behind `api` with `settings`; its ID.
fn add_network(api: &Api, settings: Value) -> String {
    let item = api
        .call(
            "PUT",
            "/rest/zerotier/controller",
            Some(&settings.to_string()),
        )
        .expect("controller/add");
    item["network"]
        .as_str()
        .unwrap_or_else(|| panic!("controller/add answered {item}"))
        .to_string()
}

/// Joins `nwid` with a `/zerotier/interface`; the TAP's name.
fn add_interface(api: &Api, nwid: &str) -> String {
    let item = api
        .call(
            "PUT",
            "/rest/zerotier/interface",
            Some(&json!({ "network": nwid }).to_string()),
        )
        .expect("interface add");
    item["name"]
        .as_str()
        .unwrap_or_else(|| panic!("interface add answered {item}"))
        .to_string()
}

/// The first address of `device` in namespace `ns` that `pick` accepts (`ip -j address`).
fn address_of(lab: &Lab, ns: usize, device: &str, pick: impl Fn(&Value) -> bool) -> Option<String> {
    ip_json_in(lab, ns, &["address", "show", "dev", device])
        .as_array()?
        .iter()
        .flat_map(|link| link["addr_info"].as_array().into_iter().flatten())
        .find(|a| pick(a))
        .and_then(|a| a["local"].as_str().map(str::to_string))
}

/// The real node: one identity, a fresh home for each run (see the module's notes).
struct RealNode<'a> {
    lab: &'a Lab,
    ns: usize,
    ztpeer: PathBuf,
    id: Identity,
    dir: PathBuf,
    planet: PathBuf,
    runs: usize,
}

impl RealNode<'_> {
    /// Joins `nwid` and sends `text` to `target` (`IP:PORT`) until it comes back; ok (with
    /// [`echo_timing`]) when ztpeer says every goal was met. `linger` keeps the node up after
    /// the echo.
    fn udp_exchange(
        &mut self,
        nwid: &str,
        target: &str,
        text: &str,
        linger: u32,
    ) -> Result<String, String> {
        self.runs += 1;
        let home = self.dir.join(format!("real-run{}", self.runs));
        write_identity(&home, &self.id);
        let (home_s, planet_s, linger_s) = (
            home.display().to_string(),
            self.planet.display().to_string(),
            linger.to_string(),
        );
        let args = [
            "run",
            "--home",
            &home_s,
            "--roots",
            &planet_s,
            "--join",
            nwid,
            "--udp-send",
            target,
            "--send",
            text,
            "--until-done",
            "--linger",
            &linger_s,
            "--for",
            "60",
        ];
        let mut node: NsProcess = self.lab.spawn(self.ns, &self.ztpeer, &args);
        let exit = node.wait(Duration::from_secs(75));
        let done = node
            .seen()
            .iter()
            .any(|l| json_line(l).is_some_and(|v| v["event"] == "exit" && v["ok"] == true));
        if exit.is_some_and(|s| s.success()) && done {
            Ok(echo_timing(node.seen()))
        } else {
            Err(format!("ztpeer to {target}: {exit:?}\n{}", node.report()))
        }
    }
}

/// For the log (the figures of the report, not a check): how many datagrams the real node
/// sent before the echo came back, and the seconds from its first send to the echo. The
/// seconds are libzt's: sendto to a link-local or `ff02::` address fails (EHOSTUNREACH) for
/// the ~3 s lwIP's link-local address is tentative, and a new node answers the host's ARP
/// only once libzt's 5 s group scan subscribed it; ztd's part is a few milliseconds.
fn echo_timing(events: &[String]) -> String {
    let events: Vec<Value> = events.iter().filter_map(|l| json_line(l)).collect();
    let time_of = |name: &str| {
        events
            .iter()
            .find(|v| v["event"] == name)
            .and_then(|v| v["t"].as_f64())
    };
    let sent = events.iter().filter(|v| v["event"] == "udp_sent").count();
    match (time_of("udp_sent"), time_of("udp_reply")) {
        (Some(first), Some(echo)) => {
            format!("{sent} sent, echo {:.2} s after the first", echo - first)
        }
        _ => format!("{sent} sent"),
    }
}

/// The JSON lines of a receiver that satisfy `pred`, waiting up to `limit` for the first.
fn received(
    receiver: &mut NsProcess,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    if let Some(v) = receiver
        .seen()
        .iter()
        .filter_map(|l| json_line(l))
        .find(|v| pred(v))
    {
        return Some(v);
    }
    let line = receiver.wait_line(limit, |l| json_line(l).is_some_and(|v| pred(&v)))?;
    json_line(&line)
}

/// Where the networks' root and controller run.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// A ztd root and controller of public networks (namespace 0), not in them; the ztd
    /// member in namespace 1; the real node in namespace 2.
    SeparateRoot,
    /// One ztd is root, controller of private networks and member (namespace 0), as in the
    /// manual's Home; the real node in namespace 1. The real node's gathers come to the
    /// member itself, and its multicast packets carry its membership certificate.
    MemberIsRootAndController,
}

/// The ztd daemons and APIs of a [`Shape`], and the member's index among them.
struct Hosts<'a> {
    daemons: Vec<NsProcess>,
    apis: Vec<Api<'a>>,
    member: usize,
}

/// The scenario of the module's notes, in `shape`.
fn a_real_node_multicasts_into_a_ztd_host(shape: Shape) {
    let ztpeer = skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let python = skip_unless!(python3());
    let ztd_count = if shape == Shape::SeparateRoot { 2 } else { 1 };
    let lab = Lab::new(ztd_count + 1);
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<Identity> = (0..ztd_count).map(|_| identity()).collect();
    let planet = dir.path().join("planet");
    make_planet(&planet, &[(&ids[0], format!("{}/9993", lab.ip(0)))]);
    let mut hosts = Hosts {
        daemons: Vec::new(),
        apis: Vec::new(),
        member: ztd_count - 1,
    };
    for (ns, id) in ids.iter().enumerate() {
        let home = dir.path().join(format!("ztd{ns}"));
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
        let (daemon, api) = start_ztd(&lab, ns, &home);
        enable_with_identity(&api, id);
        hosts.daemons.push(daemon);
        hosts.apis.push(api);
    }
    let mut real = RealNode {
        lab: &lab,
        ns: ztd_count,
        ztpeer,
        id: identity(),
        dir: dir.path().to_path_buf(),
        planet,
        runs: 0,
    };
    let private = if shape == Shape::SeparateRoot {
        "no"
    } else {
        "yes"
    };
    let controller = &hosts.apis[0];
    let v6_net = add_network(
        controller,
        json!({"name": "v6only", "private": private, "ip6-rfc4193": "yes"}),
    );
    let v4_net = add_network(
        controller,
        json!({"name": "v4wide", "private": private,
               "ip-range": "172.27.27.10-172.27.27.20", "routes": "128.0.0.0/1"}),
    );
    if shape == Shape::MemberIsRootAndController {
        let members = [ids[0].address().to_string(), real.id.address().to_string()];
        for (nwid, address) in [&v6_net, &v4_net]
            .iter()
            .flat_map(|n| members.iter().map(move |a| (n, a)))
        {
            let path = format!("/controller/network/{nwid}/member/{address}");
            let body = json!({"authorized": true}).to_string();
            let reply = controller.call("POST", &path, Some(&body));
            assert!(
                reply.as_ref().is_some_and(|m| m["authorized"] == true),
                "authorize {address} on {nwid}: {reply:?}"
            );
        }
    }
    let (m, member) = (hosts.member, &hosts.apis[hosts.member]);
    let (v6_tap, v4_tap) = (
        add_interface(member, &v6_net),
        add_interface(member, &v4_net),
    );
    let link_local = poll(Duration::from_secs(30), || {
        address_of(&lab, m, &v6_tap, |a| {
            a["scope"] == "link" && a["family"] == "inet6"
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "no link-local address on {v6_tap}\n{}",
            hosts.daemons[m].report()
        )
    });
    let v4_address = poll(Duration::from_secs(30), || {
        address_of(&lab, m, &v4_tap, |a| a["family"] == "inet")
    })
    .unwrap_or_else(|| panic!("no IPv4 address on {v4_tap}\n{}", hosts.daemons[m].report()));
    let arp_group = (
        "ff:ff:ff:ff:ff:ff".to_string(),
        u64::from(u32::from(v4_address.parse::<std::net::Ipv4Addr>().unwrap())),
    );

    let leave = dir.path().join("leave-the-group");
    let mut echo_v6 = lab.spawn(m, &python, &["-c", &echo_v6_script(PORT_V6, 240)]);
    let mut echo_v4 = lab.spawn(
        m,
        &python,
        &[
            "-c",
            &echo_group_script(GROUP_V4, PORT_V4, &v4_tap, &leave, 240),
        ],
    );
    assert!(
        received(&mut echo_v6, Duration::from_secs(10), |v| v["listening"]
            .is_u64())
        .is_some()
    );
    assert!(
        received(&mut echo_v4, Duration::from_secs(10), |v| v["joined"]
            .is_string())
        .is_some()
    );

    // 1. The TAP's link-local address. The real node stays up a while after the echo, so
    //    the host's check of the neighbour it learned (a unicast solicitation) is answered.
    let target = format!("[{link_local}]:{PORT_V6}");
    let got = exchange(
        &mut real,
        &mut echo_v6,
        &mut hosts,
        (&v6_net, &target),
        "to-link-local",
        10,
    );
    assert_eq!(got["to"], json!([link_local]), "{got}");
    let real_link_local = got["from"].as_str().unwrap_or_default().to_string();
    assert!(real_link_local.starts_with("fe80:"), "{got}");

    // 2. All nodes. The answer goes to the real node's link-local address, known to the host
    //    from step 1 (see the module's notes).
    let neighbour = ip_json_in(&lab, m, &["-6", "neigh", "show", "dev", &v6_tap]);
    let known = neighbour
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["dst"] == real_link_local.as_str() && n["lladdr"].is_string());
    assert!(
        known,
        "the host did not keep {real_link_local}: {neighbour}"
    );
    let target = format!("[ff02::1]:{PORT_V6}");
    let got = exchange(
        &mut real,
        &mut echo_v6,
        &mut hosts,
        (&v6_net, &target),
        "to-all-nodes",
        1,
    );
    assert_eq!(got["to"], json!(["ff02::1"]), "{got}");

    // 3. An IPv4 group a program joined: ztd subscribed to it, the real node's gather finds it.
    let group = (GROUP_V4_MAC.to_string(), 0);
    let seen = wait_subscriptions(&hosts, &v4_net, |s| s.contains(&group))
        .unwrap_or_else(|seen| panic!("{GROUP_V4_MAC} not subscribed: {seen:?}"));
    assert!(seen.contains(&arp_group), "{seen:?}");
    let target = format!("{GROUP_V4}:{PORT_V4}");
    exchange(
        &mut real,
        &mut echo_v4,
        &mut hosts,
        (&v4_net, &target),
        "to-the-group",
        1,
    );

    // 4. The program leaves the group: ztd unsubscribes, the other groups stay.
    std::fs::write(&leave, b"").unwrap();
    assert!(
        received(&mut echo_v4, Duration::from_secs(10), |v| v["left"]
            .is_string())
        .is_some()
    );
    let seen = wait_subscriptions(&hosts, &v4_net, |s| !s.is_empty() && !s.contains(&group))
        .unwrap_or_else(|seen| panic!("{GROUP_V4_MAC} still subscribed: {seen:?}"));
    assert!(seen.contains(&arp_group), "{seen:?}");
    assert!(
        seen.contains(&("01:00:5e:00:00:01".to_string(), 0)),
        "{seen:?}"
    );
}

/// The real node sends `text` to `target` on `nwid` until the echo comes back; the line of
/// the `receiver` on the ztd host that got it. Panics with every log otherwise.
fn exchange(
    real: &mut RealNode,
    receiver: &mut NsProcess,
    hosts: &mut Hosts,
    (nwid, target): (&str, &str),
    text: &str,
    linger: u32,
) -> Value {
    let outcome = real.udp_exchange(nwid, target, text, linger);
    let got = received(receiver, Duration::from_secs(5), |v| v["text"] == text);
    match (outcome, got) {
        (Ok(timing), Some(got)) => {
            eprintln!("{target}: {timing}");
            got
        }
        (outcome, _) => panic!(
            "{target}: {outcome:?}\nreceiver: {}\nztd: {}",
            receiver.report(),
            hosts.daemons[hosts.member].report()
        ),
    }
}

/// A multicast group as ztd's `/network` lists it: MAC and ADI.
type Group = (String, u64);

/// The member's `multicastSubscriptions` on `nwid` once `wanted` holds (Err: the last seen).
fn wait_subscriptions(
    hosts: &Hosts,
    nwid: &str,
    wanted: impl Fn(&[Group]) -> bool,
) -> Result<Vec<Group>, Vec<Group>> {
    let mut seen = Vec::new();
    poll(Duration::from_secs(20), || {
        seen = multicast_subscriptions(&hosts.apis[hosts.member], nwid);
        wanted(&seen).then(|| seen.clone())
    })
    .ok_or(seen)
}

#[test]
fn a_real_node_reaches_a_ztd_member_beside_a_ztd_root() {
    a_real_node_multicasts_into_a_ztd_host(Shape::SeparateRoot);
}

#[test]
fn a_real_node_reaches_a_ztd_that_is_its_root_and_controller() {
    a_real_node_multicasts_into_a_ztd_host(Shape::MemberIsRootAndController);
}
