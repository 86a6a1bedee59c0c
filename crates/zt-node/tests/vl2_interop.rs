//! VL2 against real ZeroTier nodes (`ztpeer`: ZeroTier 1.8.4's core via libzt), in
//! throw-away network namespaces with no default route and our own planet.
//!
//! Our node is both the planet's root and the controller of a private network (zt-controller
//! answering the `ConfigRequest` events, as the daemon does). Two real nodes join it: they
//! must accept our signed config chunks, get their addresses, find each other by ARP through
//! our root (LIKE cache and GATHER answers) and agree on the COMs we issued, so a TCP echo
//! between them over the network proves the whole chain.
//!
//! Our driver is this test binary re-run inside a namespace (the ignored test
//! `vl2_driver_process`, selected by the `ZT_VL2_DRIVER` environment variable) with a real UDP
//! socket and the wall clock. Skipped (with a message) without root, `ip netns` or `ztpeer`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zt_controller::controller::{Decision, RequestMetadata};
use zt_controller::issue::build_config;
use zt_controller::props::{member_patch_from_properties, network_patch_from_properties};
use zt_controller::{Controller, MemoryStorage};
use zt_node::sim::{make_planet, test_identity};
use zt_node::{Event, Identity, LocalSocketId, Node, NodeConfig};
use zt_testnet::{event_of, json_line, skip_unless, Lab};
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::error::ErrorCode;

const ROOT_INDEX: usize = 0;
const MEMBER_INDICES: [usize; 2] = [4, 5];
const NETWORK_NUMBER: u32 = 0x00_7e57;

fn planet_for(root_ep: SocketAddr) -> zt_node::World {
    make_planet(
        0x5a7e58,
        1_700_000_000_000,
        &[(test_identity(ROOT_INDEX), root_ep)],
        11,
    )
    .0
}

fn nwid() -> NetworkId {
    NetworkId(zt_controller::model::network_id_for(
        test_identity(ROOT_INDEX).address(),
        NETWORK_NUMBER,
    ))
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The driver: runs only when re-invoked by `real_nodes_join_our_network_and_talk` inside
/// its namespace.
#[test]
#[ignore = "run inside a namespace by real_nodes_join_our_network_and_talk"]
fn vl2_driver_process() {
    let Ok(bind) = std::env::var("ZT_VL2_DRIVER") else {
        return;
    };
    let bind: SocketAddr = bind.parse().expect("bind address");
    let seconds: u64 = std::env::var("ZT_VL2_FOR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let identity = test_identity(ROOT_INDEX);
    let socket = UdpSocket::bind(bind).expect("bind");
    let rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
        wall_ms(),
    ));
    let start = wall_ms();
    let mut node = Node::new(
        identity.clone(),
        NodeConfig::new(planet_for(bind)),
        rng,
        start,
    )
    .unwrap();
    let mut ctl = Controller::new(identity.address(), MemoryStorage::new());
    let nwid = nwid();
    let props = [
        ("name", "interop"),
        ("ip-range", "10.99.0.10-10.99.0.50"),
        ("routes", "10.99.0.0/24"),
    ];
    ctl.create_network(
        start as i64,
        nwid.0,
        &network_patch_from_properties(&props).unwrap(),
    )
    .unwrap();
    let yes = member_patch_from_properties(&[("authorized", "yes")]).unwrap();
    let authorized = MEMBER_INDICES.map(|i| test_identity(i).address());
    for member in authorized.into_iter().chain([identity.address()]) {
        ctl.update_member(start as i64, nwid.0, member, &yes)
            .unwrap();
    }
    // Member mode: our node joins the private network it controls (configured locally).
    if std::env::var("ZT_VL2_JOIN_OWN").is_ok() {
        node.join(start, nwid, zt_node::JoinSettings::default());
    }
    let mut own_ip_told = false;
    // Echo mode: also be a member of an ad-hoc network and bounce UDP/IPv6 datagrams.
    let echo_net = std::env::var("ZT_VL2_ECHO_NWID")
        .ok()
        .and_then(|s| s.parse::<NetworkId>().ok());
    if let Some(adhoc) = echo_net {
        node.join(start, adhoc, zt_node::JoinSettings::default());
    }
    println!("{{\"event\":\"driver_up\",\"nwid\":\"{nwid}\"}}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut buf = vec![0u8; 16384];
    while Instant::now() < deadline {
        let now = wall_ms();
        let wait = node
            .poll_timeout()
            .map_or(50, |t| t.saturating_sub(now).clamp(1, 50));
        socket
            .set_read_timeout(Some(Duration::from_millis(wait)))
            .unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            node.handle_datagram(wall_ms(), LocalSocketId(0), from, &buf[..n]);
        }
        let now = wall_ms();
        if node.poll_timeout().is_some_and(|t| t <= now) {
            node.handle_timeout(now);
        }
        if !own_ip_told {
            if let Some(ip) = node.network_config(nwid).and_then(first_ipv4) {
                own_ip_told = true;
                println!("{{\"event\":\"own_ip\",\"ip\":\"{ip}\"}}");
            }
        }
        while let Some(event) = node.poll_event() {
            if let Event::Frame {
                nwid,
                src_mac,
                dst_mac,
                ethertype,
                payload,
            } = &event
            {
                let _ = dst_mac;
                let us = identity.address();
                let own_v4 = node.network_config(*nwid).and_then(first_ipv4);
                if let Some((what, echo)) =
                    echo_reply(*nwid, us, own_v4, *src_mac, *ethertype, payload)
                {
                    let own = zt_wire::mac::Mac::from_address(us, *nwid);
                    let sent = node.send_frame(now, *nwid, own, *src_mac, *ethertype, &echo);
                    println!(
                        "{{\"event\":\"{what}\",\"bytes\":{},\"ok\":{}}}",
                        payload.len(),
                        sent.is_ok()
                    );
                }
                continue;
            }
            let Event::ConfigRequest {
                requester,
                nwid,
                metadata,
                request_packet_id,
            } = event
            else {
                continue;
            };
            let meta = RequestMetadata::from_dictionary(&metadata);
            let decision = ctl
                .handle_config_request(now as i64, &requester, nwid.0, &meta)
                .unwrap();
            let to = requester.address();
            let answer = match &decision {
                Decision::Config(data) => {
                    let config = build_config(data, &identity).unwrap();
                    node.send_network_config(now, to, nwid, Some(request_packet_id), &config)
                        .map(|_| "config")
                }
                Decision::AccessDenied => node
                    .send_network_error(
                        now,
                        to,
                        nwid,
                        request_packet_id,
                        ErrorCode::NetworkAccessDenied,
                    )
                    .map(|_| "access_denied"),
                Decision::NotFound => node
                    .send_network_error(now, to, nwid, request_packet_id, ErrorCode::ObjNotFound)
                    .map(|_| "not_found"),
                Decision::Ignore(_) => Ok("ignored"),
            };
            println!(
                "{{\"event\":\"config_request\",\"from\":\"{to}\",\"answer\":\"{}\"}}",
                answer.unwrap_or("error")
            );
        }
        while let Some(t) = node.poll_transmit() {
            let _ = socket.send_to(&t.data, t.remote);
        }
    }
    let s = node.stats();
    println!(
        "{{\"event\":\"driver_done\",\"likes_accepted\":{},\"gathers_answered\":{},\"relayed\":{}}}",
        s.vl2.likes_accepted, s.vl2.gathers_answered, s.relayed
    );
}

/// What our member answers on the echo networks: ARP requests for its ad-hoc IPv4 address,
/// and UDP over IPv4 or IPv6 turned around (addresses and ports swapped; the checksums, sums
/// over both, stay valid).
fn echo_reply(
    nwid: NetworkId,
    us: zt_node::Address,
    own_v4: Option<std::net::Ipv4Addr>,
    asker: zt_wire::mac::Mac,
    ethertype: u16,
    frame: &[u8],
) -> Option<(&'static str, Vec<u8>)> {
    match ethertype {
        0x0806 if frame.len() >= 28 && frame[7] == 1 => {
            let ours = own_v4?;
            if frame[24..28] != ours.octets() {
                return None;
            }
            let mut reply = frame[..8].to_vec();
            reply[7] = 2;
            reply.extend_from_slice(&zt_wire::mac::Mac::from_address(us, nwid).0);
            reply.extend_from_slice(&ours.octets());
            reply.extend_from_slice(&asker.0);
            reply.extend_from_slice(&frame[14..18]);
            Some(("arp_answered", reply))
        }
        0x0800 if frame.len() >= 28 && frame[0] >> 4 == 4 && frame[9] == 17 => {
            let ihl = usize::from(frame[0] & 0x0f) * 4;
            if frame.len() < ihl + 8 {
                return None;
            }
            let mut echo = frame.to_vec();
            echo[12..16].copy_from_slice(&frame[16..20]);
            echo[16..20].copy_from_slice(&frame[12..16]);
            echo[ihl..ihl + 2].copy_from_slice(&frame[ihl + 2..ihl + 4]);
            echo[ihl + 2..ihl + 4].copy_from_slice(&frame[ihl..ihl + 2]);
            Some(("udp_echoed", echo))
        }
        0x86dd if frame.len() >= 48 && frame[0] >> 4 == 6 && frame[6] == 17 => {
            let mut echo = frame.to_vec();
            echo[8..24].copy_from_slice(&frame[24..40]);
            echo[24..40].copy_from_slice(&frame[8..24]);
            echo[40..42].copy_from_slice(&frame[42..44]);
            echo[42..44].copy_from_slice(&frame[40..42]);
            Some(("udp_echoed", echo))
        }
        _ => None,
    }
}

fn first_ipv4(config: &zt_wire::netconf::NetworkConfig) -> Option<std::net::Ipv4Addr> {
    config.static_ips.iter().find_map(|a| match a.ip() {
        Some(std::net::IpAddr::V4(v4)) => Some(v4),
        _ => None,
    })
}

fn write_identity(home: &Path, identity: &Identity) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("identity.secret"),
        identity.to_secret_string().unwrap(),
    )
    .unwrap();
    std::fs::write(home.join("identity.public"), identity.to_public_string()).unwrap();
}

#[test]
fn real_nodes_join_our_network_and_talk() {
    let ztpeer: PathBuf = skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(3);
    let root_ep = SocketAddr::new(lab.ip(0).into(), 9993);
    let dir = tempfile::tempdir().unwrap();
    let planet = dir.path().join("planet");
    std::fs::write(&planet, planet_for(root_ep).to_bytes()).unwrap();
    let planet_s = planet.to_str().unwrap();
    let nwid_s = nwid().to_string();

    let exe = std::env::current_exe().unwrap();
    let mut cmd = lab.command(
        0,
        &exe,
        &["--ignored", "--exact", "vl2_driver_process", "--nocapture"],
    );
    cmd.env("ZT_VL2_DRIVER", root_ep.to_string())
        .env("ZT_VL2_FOR", "80");
    let mut driver = zt_testnet::NsProcess::spawn(cmd);
    let up = driver.wait_line(Duration::from_secs(20), |l| {
        event_of(l).as_deref() == Some("driver_up")
    });
    assert!(up.is_some(), "driver: {}", driver.report());

    let homes: Vec<PathBuf> = MEMBER_INDICES
        .iter()
        .map(|&i| {
            let home = dir.path().join(format!("member{i}"));
            write_identity(&home, &test_identity(i));
            home
        })
        .collect();
    let mut server = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            homes[0].to_str().unwrap(),
            "--roots",
            planet_s,
            "--join",
            &nwid_s,
            "--tcp-echo-server",
            "7777",
            "--for",
            "70",
        ],
    );
    let ok = server.wait_line(Duration::from_secs(45), |l| {
        event_of(l).as_deref() == Some("network")
            && json_line(l).is_some_and(|v| v["status"] == "OK" && v["ip4"].is_string())
    });
    let ok = ok.unwrap_or_else(|| {
        panic!(
            "the real node never got our config: {}\ndriver: {}",
            server.report(),
            driver.report()
        )
    });
    let v = json_line(&ok).unwrap();
    assert_eq!(v["type"], "PRIVATE", "{v}");
    assert_eq!(v["mtu"], 2800, "{v}");
    // libzt's own NETWORK_* events (sent only while the node is online, so not always)
    // carry the name and revision: when present they must be ours.
    for l in server.seen() {
        if event_of(l).is_some_and(|e| e.starts_with("NETWORK_")) {
            let e = json_line(l).unwrap();
            if e["name"].is_string() {
                assert_eq!(e["name"], "interop", "{l}");
                assert_eq!(e["netconf_rev"], 1, "{l}");
            }
        }
    }
    let ip = v["ip4"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.99.0."), "{v}");

    let target = format!("{ip}:7777");
    let mut client = lab.spawn(
        2,
        &ztpeer,
        &[
            "run",
            "--home",
            homes[1].to_str().unwrap(),
            "--roots",
            planet_s,
            "--join",
            &nwid_s,
            "--tcp-connect",
            &target,
            "--send",
            "hello over our network",
            "--until-done",
            "--for",
            "60",
        ],
    );
    let status = client.wait(Duration::from_secs(70));
    assert!(
        status.is_some_and(|s| s.success()),
        "TCP echo between two real members failed: {}\nserver: {}\ndriver: {}",
        client.report(),
        server.report(),
        driver.report()
    );
}

/// Our node as a member of an ad-hoc network with a real node, which sends UDP to `target`
/// (an address of ours) and must get our echo back.
fn real_node_gets_our_echo(adhoc: NetworkId, target: String, text: &str) -> Option<Vec<String>> {
    let ztpeer: PathBuf = zt_testnet::ztpeer_path().ok()?;
    zt_testnet::netns_available().ok()?;
    let lab = Lab::new(2);
    let root_ep = SocketAddr::new(lab.ip(0).into(), 9993);
    let dir = tempfile::tempdir().unwrap();
    let planet = dir.path().join("planet");
    std::fs::write(&planet, planet_for(root_ep).to_bytes()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = lab.command(
        0,
        &exe,
        &["--ignored", "--exact", "vl2_driver_process", "--nocapture"],
    );
    cmd.env("ZT_VL2_DRIVER", root_ep.to_string())
        .env("ZT_VL2_FOR", "60")
        .env("ZT_VL2_ECHO_NWID", adhoc.to_string());
    let mut driver = zt_testnet::NsProcess::spawn(cmd);
    let up = driver.wait_line(Duration::from_secs(20), |l| {
        event_of(l).as_deref() == Some("driver_up")
    });
    assert!(up.is_some(), "driver: {}", driver.report());
    let home = dir.path().join("real");
    write_identity(&home, &test_identity(MEMBER_INDICES[0]));
    let mut real = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            home.to_str().unwrap(),
            "--roots",
            planet.to_str().unwrap(),
            "--join",
            &adhoc.to_string(),
            "--udp-send",
            &target,
            "--send",
            text,
            "--until-done",
            "--for",
            "45",
        ],
    );
    let status = real.wait(Duration::from_secs(55));
    assert!(
        status.is_some_and(|s| s.success()),
        "no UDP echo from our member: {}\ndriver: {}",
        real.report(),
        driver.report()
    );
    let echoed = driver.wait_line(Duration::from_secs(5), |l| {
        event_of(l).as_deref() == Some("udp_echoed")
    });
    assert!(echoed.is_some(), "{}", driver.report());
    driver.report();
    Some(driver.seen().to_vec())
}

/// Our node as a member: a real node on the port-range ad-hoc network sends UDP to our
/// 6plane address (its NDP emulation names our MAC) and gets our echo back: FRAMEs both ways
/// between our switch and ZeroTier's, through both rule engines.
#[test]
fn a_real_node_exchanges_frames_with_our_member() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let adhoc = NetworkId::adhoc_port_range(0, 65535);
    let ours = adhoc.sixplane_address(test_identity(ROOT_INDEX).address());
    assert!(real_node_gets_our_echo(adhoc, format!("[{ours}]:7777"), "echo me").is_some());
}

/// The same over IPv4 on an `ffAA…01` ad-hoc network: the real node ARPs for our address
/// (a MULTICAST_FRAME to the ARP group, found through our root's gather answer), we answer,
/// then UDP goes both ways.
#[test]
fn a_real_node_arps_for_our_member_and_gets_an_ipv4_echo() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    // 28.0.0.0/8: an assigned prefix must not cover the lab's physical 10.77.0.0/24, or no
    // node (ours or the reference) would use those addresses as paths.
    let adhoc = NetworkId(0xff1c_0000_0000_0001);
    let ours = adhoc
        .adhoc_ipv4_address(test_identity(ROOT_INDEX).address())
        .unwrap();
    let seen = real_node_gets_our_echo(adhoc, format!("{ours}:7777"), "echo me v4").unwrap();
    assert!(
        seen.iter()
            .any(|l| event_of(l).as_deref() == Some("arp_answered")),
        "{seen:?}"
    );
}

/// Our node as a member of its own private network, with a real member: the real node ARPs
/// for our address and sends UDP, we answer. Both sides' gates must accept the other's
/// credentials (our NETWORK_CREDENTIALS push, the real node's COM), all issued by our
/// controller.
#[test]
fn a_real_member_and_our_member_pass_each_others_gate() {
    let ztpeer: PathBuf = skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(2);
    let root_ep = SocketAddr::new(lab.ip(0).into(), 9993);
    let dir = tempfile::tempdir().unwrap();
    let planet = dir.path().join("planet");
    std::fs::write(&planet, planet_for(root_ep).to_bytes()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = lab.command(
        0,
        &exe,
        &["--ignored", "--exact", "vl2_driver_process", "--nocapture"],
    );
    cmd.env("ZT_VL2_DRIVER", root_ep.to_string())
        .env("ZT_VL2_FOR", "60")
        .env("ZT_VL2_JOIN_OWN", "1");
    let mut driver = zt_testnet::NsProcess::spawn(cmd);
    let own = driver.wait_line(Duration::from_secs(20), |l| {
        event_of(l).as_deref() == Some("own_ip")
    });
    let own = own.unwrap_or_else(|| panic!("driver: {}", driver.report()));
    let ip = json_line(&own).unwrap()["ip"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.99.0."), "{own}");

    let home = dir.path().join("real");
    write_identity(&home, &test_identity(MEMBER_INDICES[0]));
    let target = format!("{ip}:7777");
    let mut real = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            home.to_str().unwrap(),
            "--roots",
            planet.to_str().unwrap(),
            "--join",
            &nwid().to_string(),
            "--udp-send",
            &target,
            "--send",
            "private echo",
            "--until-done",
            "--for",
            "45",
        ],
    );
    let status = real.wait(Duration::from_secs(55));
    assert!(
        status.is_some_and(|s| s.success()),
        "no UDP echo from our private member: {}\ndriver: {}",
        real.report(),
        driver.report()
    );
    let echoed = driver.wait_line(Duration::from_secs(5), |l| {
        event_of(l).as_deref() == Some("udp_echoed")
    });
    assert!(echoed.is_some(), "{}", driver.report());
}
