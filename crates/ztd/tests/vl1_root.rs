//! ztd on a real ZeroTier network (root and leaf).
//!
//! As a root for real nodes: a planet lists only our ztd instance; two real
//! ZeroTier 1.8.4 leaves (`ztpeer run`) in their own namespaces come online through it,
//! join the ad-hoc network ff0000ffff000000 and exchange a TCP message over 6plane. Our
//! root's `/peer` and `/rest/zerotier/peer` list both as LEAF with paths, and its counters
//! show it introduced them (RENDEZVOUS sent) so they could talk directly.
//!
//! As a leaf: our instance comes online through a real root, lists it as PLANET with a
//! latency, drops and counts junk datagrams (runts, forged MACs) while staying online, and
//! keeps its identity across a restart.
//!
//! Moons: a ztd instance serves a moon listing itself; another ztd orbits it by seed through
//! `POST /moon/<id>` (fetched, saved to `moons.d/`, root shown as MOON, deorbited by
//! `DELETE`), and a real node orbits the same moon.
//!
//! Needs root, `ip netns` and `ztpeer`; otherwise each test prints why and passes.
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use zt_crypto::Identity;
use zt_testnet::{json_line, skip_unless, Lab};

mod common;
use common::{
    enable_with_identity, identity, make_planet, poll, sixplane, start_ztd, write_identity, Api,
    ADHOC,
};

#[test]
fn ztd_root_serves_real_leaves_and_introduces_them() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let ztpeer = zt_testnet::ztpeer_path().unwrap();
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let root_id = identity();
    let (a_id, b_id) = (identity(), identity());
    let planet = dir.path().join("planet");
    make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);

    // Our root: the planet is in place before the instance first starts.
    let home = dir.path().join("ztd");
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
    let (mut ztd, api) = start_ztd(&lab, 0, &home);
    let started = Instant::now();
    enable_with_identity(&api, &root_id);
    let online = poll(Duration::from_secs(10), || {
        api.call("GET", "/status", None)
            .filter(|s| s["online"] == true)
    });
    assert!(
        online.is_some(),
        "a root is online at once\n{}",
        ztd.report()
    );
    assert_eq!(
        online.unwrap()["address"].as_str(),
        Some(root_id.address().to_string().as_str())
    );
    eprintln!("root online after {:?}", started.elapsed());

    // Two real leaves.
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    write_identity(&home_a, &a_id);
    write_identity(&home_b, &b_id);
    let planet_s = planet.display().to_string();
    let (ha, hb) = (home_a.display().to_string(), home_b.display().to_string());
    let mut server = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            &ha,
            "--roots",
            &planet_s,
            "--join",
            ADHOC,
            "--tcp-echo-server",
            "7777",
            "--expect",
            "hello-through-ztd",
            "--until-done",
            "--for",
            "100",
            "--status-every",
            "2",
        ],
    );
    let target = format!("[{}]:7777", sixplane(&a_id));
    let leaves_started = Instant::now();
    let mut client = lab.spawn(
        2,
        &ztpeer,
        &[
            "run",
            "--home",
            &hb,
            "--roots",
            &planet_s,
            "--join",
            ADHOC,
            "--tcp-connect",
            &target,
            "--send",
            "hello-through-ztd",
            "--until-done",
            "--for",
            "100",
            "--status-every",
            "2",
        ],
    );
    let client_exit = client.wait(Duration::from_secs(110));
    let server_exit = server.wait(Duration::from_secs(30));
    let elapsed = leaves_started.elapsed();
    assert!(
        client_exit.is_some_and(|s| s.success()),
        "client goals not met\n{}\n{}",
        client.report(),
        ztd.report()
    );
    assert!(
        server_exit.is_some_and(|s| s.success()),
        "server goals not met\n{}",
        server.report()
    );
    eprintln!("leaves started → TCP echo done: {elapsed:?}");

    // Our root saw both leaves.
    let peers = api.call("GET", "/peer", None).expect("/peer");
    let peers = peers.as_array().expect("array");
    for leaf in [&a_id, &b_id] {
        let addr = leaf.address().to_string();
        let p = peers
            .iter()
            .find(|p| p["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr} missing from /peer: {peers:?}"));
        assert_eq!(p["role"], "LEAF");
        assert!(!p["paths"].as_array().unwrap().is_empty(), "{p}");
        assert_eq!(p["versionMajor"], 1, "{p}");
    }
    let menu = api.call("GET", "/rest/zerotier/peer", None).expect("menu");
    let menu = menu.as_array().expect("array");
    for leaf in [&a_id, &b_id] {
        let addr = leaf.address().to_string();
        let r = menu
            .iter()
            .find(|r| r["zt-address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr} missing from /zerotier/peer: {menu:?}"));
        assert_eq!(r["instance"], "zt1");
        assert_eq!(r["role"], "LEAF");
        assert!(r["path"].as_str().unwrap().contains("/"), "{r}");
    }

    // The introduction: our root sent RENDEZVOUS, and the leaves ended with a direct path.
    let stats = api.call("GET", "/stats", None).expect("/stats");
    eprintln!("root stats: {stats}");
    assert!(
        stats["rendezvous_sent"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    assert!(stats["relayed"].as_u64().unwrap_or(0) >= 1, "{stats}");
    // The client's view of the server: a direct path to the server's own address.
    let a_addr = a_id.address().to_string();
    let server_path = format!("{}/9993", lab.ip(1));
    let direct = client.seen().iter().filter_map(|l| json_line(l)).find(|v| {
        v["event"] == "PEER_DIRECT"
            && v["peer_id"] == a_addr.as_str()
            && v["paths"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["address"] == server_path.as_str()))
    });
    assert!(
        direct.is_some(),
        "no direct path between the leaves\n{}",
        client.report()
    );
    if let Some(first) = client.seen().iter().filter_map(|l| json_line(l)).find(|v| {
        v["peer_id"] == a_addr.as_str()
            && v["event"].as_str().is_some_and(|e| e.starts_with("PEER_"))
    }) {
        let (t0, t1) = (
            first["t"].as_f64().unwrap_or(0.0),
            direct.unwrap()["t"].as_f64().unwrap_or(0.0),
        );
        eprintln!(
            "client: first contact with the server → direct path: {:.0} ms",
            (t1 - t0) * 1000.0
        );
    }
    ztd.wait(Duration::from_millis(10));
}

/// Datagrams an attacker on the path could send: empty, runts, random bytes, a truncated
/// fragment, and well-formed headers from a known peer (the root) with a wrong MAC.
fn junk_datagrams(ours: &Identity, known: &Identity) -> Vec<Vec<u8>> {
    let mut out = vec![vec![], vec![0u8; 1], vec![0xffu8; 15], vec![0u8; 27]];
    for n in [28usize, 64, 200, 1400] {
        out.push((0..n).map(|i| (i * 7 + n) as u8).collect());
    }
    // A fragment header (0xff at byte 13) cut short.
    let mut fragment = vec![0x11u8; 16];
    fragment[13] = 0xff;
    out.push(fragment);
    for suite in [0u8, 1] {
        let mut p = Vec::new();
        p.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        p.extend_from_slice(&ours.address().to_u64().to_be_bytes()[3..]);
        p.extend_from_slice(&known.address().to_u64().to_be_bytes()[3..]);
        p.push(suite << 3);
        p.extend_from_slice(&[0xa5; 8]); // not the MAC
        p.push(0x08); // ECHO
        p.extend_from_slice(b"forged payload");
        out.push(p);
    }
    out
}

#[test]
fn ztd_leaf_through_a_real_root_drops_junk_and_keeps_its_identity() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let ztpeer = zt_testnet::ztpeer_path().unwrap();
    let lab = Lab::new(3);
    let dir = tempfile::tempdir().unwrap();
    let (root_id, leaf_id, ours) = (identity(), identity(), identity());
    let planet = dir.path().join("planet");
    make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);
    let planet_s = planet.display().to_string();

    // A real root and a real leaf.
    let (home_r, home_l) = (dir.path().join("r"), dir.path().join("l"));
    write_identity(&home_r, &root_id);
    write_identity(&home_l, &leaf_id);
    let (hr, hl) = (home_r.display().to_string(), home_l.display().to_string());
    let mut root = lab.spawn(
        0,
        &ztpeer,
        &[
            "run", "--home", &hr, "--port", "9993", "--roots", &planet_s, "--for", "100",
        ],
    );
    let mut leaf = lab.spawn(
        2,
        &ztpeer,
        &["run", "--home", &hl, "--roots", &planet_s, "--for", "100"],
    );

    // Our leaf.
    let home = dir.path().join("ztd");
    std::fs::create_dir_all(home.join("zt1")).unwrap();
    std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
    let (ztd, api) = start_ztd(&lab, 1, &home);
    let enabled = Instant::now();
    enable_with_identity(&api, &ours);
    let online = poll(Duration::from_secs(30), || {
        api.call("GET", "/status", None)
            .filter(|s| s["online"] == true)
    });
    let mut ztd = ztd;
    assert!(
        online.is_some(),
        "our leaf online through the real root\n{}\n{}",
        ztd.report(),
        root.report()
    );
    eprintln!("ztd enable → online (real root): {:?}", enabled.elapsed());
    // ztpeer mkroots' default world id.
    assert_eq!(online.unwrap()["planetWorldId"], 0x5a7e57);

    // The real root is our PLANET peer, with a measured latency and a path.
    let root_addr = root_id.address().to_string();
    let peer = poll(Duration::from_secs(20), || {
        api.call("GET", &format!("/peer/{root_addr}"), None)
            .filter(|p| p["latency"].as_i64().unwrap_or(-1) >= 0)
    })
    .unwrap_or_else(|| panic!("root peer with latency\n{}", ztd.report()));
    assert_eq!(peer["role"], "PLANET");
    assert!(!peer["paths"].as_array().unwrap().is_empty());
    let menu = api.call("GET", "/rest/zerotier/peer", None).expect("menu");
    let row = menu
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["zt-address"] == root_addr.as_str())
        .cloned()
        .expect("root in /zerotier/peer");
    assert_eq!(row["role"], "PLANET");
    assert!(
        row["path"]
            .as_str()
            .unwrap()
            .starts_with("active,preferred,10.77.0.1/9993"),
        "{row}"
    );

    // Junk from the real leaf's namespace to our UDP port: dropped and counted.
    let before = api.call("GET", "/stats", None).expect("stats");
    let junk = junk_datagrams(&ours, &root_id);
    let hex: Vec<String> = junk
        .iter()
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor h in {hex:?}:\n    s.sendto(bytes.fromhex(h),('{}',9993))\n",
        lab.ip(1)
    );
    let out = lab.run(
        2,
        Path::new("/usr/bin/env"),
        &["python3", "-c", &script],
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{out:?}");
    let after = poll(Duration::from_secs(5), || {
        api.call("GET", "/stats", None).filter(|s| {
            s["rx_datagrams"].as_u64()
                >= Some(before["rx_datagrams"].as_u64().unwrap() + junk.len() as u64)
        })
    })
    .expect("every junk datagram was received");
    let delta = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    eprintln!(
        "junk: runt +{} bad_mac +{} bad_fragment +{} malformed +{} unsupported_cipher +{}",
        delta("dropped_runt"),
        delta("dropped_bad_mac"),
        delta("dropped_bad_fragment"),
        delta("dropped_malformed"),
        delta("dropped_unsupported_cipher")
    );
    assert!(delta("dropped_runt") >= 4, "{after}");
    assert!(delta("dropped_bad_mac") >= 1, "{after}");
    // Still serving, still online.
    assert_eq!(
        api.call("GET", "/status", None).expect("status")["online"],
        true
    );

    // Restart: same identity.
    drop(ztd);
    let (_ztd, api) = start_ztd(&lab, 1, &home);
    let status = poll(Duration::from_secs(30), || {
        api.call("GET", "/status", None)
            .filter(|s| s["online"] == true)
    })
    .expect("online again after restart");
    assert_eq!(
        status["address"].as_str(),
        Some(ours.address().to_string().as_str())
    );
    let _ = leaf.wait(Duration::from_millis(1));
}

/// Figures, not checks (run with `--ignored --nocapture`): over several rounds, the time
/// from enabling a ztd instance to `online` through a real root, and from two real leaves'
/// first contact to their direct path when introduced by our ztd root.
#[test]
#[ignore]
fn timing_figures() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let ztpeer = zt_testnet::ztpeer_path().unwrap();
    const ROUNDS: usize = 5;
    let mut online_ms = Vec::new();
    let mut direct_ms = Vec::new();
    for _ in 0..ROUNDS {
        let lab = Lab::new(3);
        let dir = tempfile::tempdir().unwrap();
        // (1) our leaf, real root already running.
        let (root_id, ours) = (identity(), identity());
        let planet = dir.path().join("planet");
        make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);
        let planet_s = planet.display().to_string();
        let home_r = dir.path().join("r");
        write_identity(&home_r, &root_id);
        let hr = home_r.display().to_string();
        let mut root = lab.spawn(
            0,
            &ztpeer,
            &[
                "run", "--home", &hr, "--port", "9993", "--roots", &planet_s, "--for", "60",
            ],
        );
        root.wait_line(Duration::from_secs(20), |l| {
            json_line(l).is_some_and(|v| v["event"] == "online")
        })
        .expect("real root up");
        let home = dir.path().join("ztd");
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
        let (_ztd, api) = start_ztd(&lab, 1, &home);
        let t = Instant::now();
        enable_with_identity(&api, &ours);
        let polled = |api: &Api| {
            poll(Duration::from_secs(30), || {
                api.call("GET", "/status", None)
                    .filter(|s| s["online"] == true)
            })
        };
        polled(&api).expect("online");
        online_ms.push(t.elapsed().as_millis() as u64);
        drop(root);

        // (2) two real leaves through a ztd root: first contact → direct path.
        let lab = Lab::new(3);
        let root_id = identity();
        let planet = dir.path().join("planet2");
        make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);
        let planet_s = planet.display().to_string();
        let home = dir.path().join("ztd-root");
        std::fs::create_dir_all(home.join("zt1")).unwrap();
        std::fs::copy(&planet, home.join("zt1/planet")).unwrap();
        let (_root, api) = start_ztd(&lab, 0, &home);
        enable_with_identity(&api, &root_id);
        polled(&api).expect("root online");
        let (a_id, b_id) = (identity(), identity());
        let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
        write_identity(&home_a, &a_id);
        write_identity(&home_b, &b_id);
        let (ha, hb) = (home_a.display().to_string(), home_b.display().to_string());
        let _server = lab.spawn(
            1,
            &ztpeer,
            &[
                "run",
                "--home",
                &ha,
                "--roots",
                &planet_s,
                "--join",
                ADHOC,
                "--tcp-echo-server",
                "7777",
                "--for",
                "60",
            ],
        );
        let target = format!("[{}]:7777", sixplane(&a_id));
        let mut client = lab.spawn(
            2,
            &ztpeer,
            &[
                "run",
                "--home",
                &hb,
                "--roots",
                &planet_s,
                "--join",
                ADHOC,
                "--tcp-connect",
                &target,
                "--send",
                "x",
                "--until-done",
                "--for",
                "60",
            ],
        );
        client.wait(Duration::from_secs(70));
        let a_addr = a_id.address().to_string();
        let events: Vec<Value> = client.seen().iter().filter_map(|l| json_line(l)).collect();
        let first = events.iter().find(|v| v["peer_id"] == a_addr.as_str());
        let direct = events
            .iter()
            .find(|v| v["peer_id"] == a_addr.as_str() && v["event"] == "PEER_DIRECT");
        if let (Some(f), Some(d)) = (first, direct) {
            let ms = (d["t"].as_f64().unwrap_or(0.0) - f["t"].as_f64().unwrap_or(0.0)) * 1000.0;
            direct_ms.push(ms as u64);
        }
    }
    online_ms.sort_unstable();
    direct_ms.sort_unstable();
    eprintln!(
        "ztd enable → online through a real root (ms, sorted, {ROUNDS} rounds): {online_ms:?}"
    );
    eprintln!("leaves' first contact → direct path via our root (ms, sorted): {direct_ms:?}");
}

#[test]
fn without_a_planet_file_the_guard_keeps_the_node_silent() {
    skip_unless!(zt_testnet::netns_available());
    let lab = Lab::new(1);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ztd");
    let (mut ztd, api) = start_ztd(&lab, 0, &home);
    enable_with_identity(&api, &identity());
    std::thread::sleep(Duration::from_secs(3));
    let stats = api.call("GET", "/stats", None).expect("stats");
    assert_eq!(stats["tx_datagrams"], 0, "{stats}\n{}", ztd.report());
    assert_eq!(
        api.call("GET", "/status", None).expect("status")["online"],
        false
    );
    assert!(api
        .call("GET", "/peer", None)
        .expect("peers")
        .as_array()
        .unwrap()
        .is_empty());
}

/// A moon whose only root is `root` at `endpoint`, id = the root's address (as `initmoon`).
fn make_moon(root: &Identity, endpoint: std::net::SocketAddr) -> zt_wire::world::World {
    let moon = zt_wire::world::WorldType::Moon;
    common::world_with_root(moon, root.address().to_u64(), root, endpoint)
}

#[test]
fn moons_are_orbited_saved_and_deorbited_through_the_api() {
    skip_unless!(zt_testnet::ztpeer_path());
    skip_unless!(zt_testnet::netns_available());
    let ztpeer = zt_testnet::ztpeer_path().unwrap();
    let lab = Lab::new(4);
    let dir = tempfile::tempdir().unwrap();
    let (root_id, moon_id, leaf_id, real_leaf_id) =
        (identity(), identity(), identity(), identity());
    let planet = dir.path().join("planet");
    make_planet(&planet, &[(&root_id, format!("{}/9993", lab.ip(0)))]);
    let planet_s = planet.display().to_string();
    let home_r = dir.path().join("r");
    write_identity(&home_r, &root_id);
    let hr = home_r.display().to_string();
    let _root = lab.spawn(
        0,
        &ztpeer,
        &[
            "run", "--home", &hr, "--port", "9993", "--roots", &planet_s, "--for", "100",
        ],
    );

    // ztd M serves a moon listing itself.
    let moon = make_moon(&moon_id, format!("{}:9993", lab.ip(1)).parse().unwrap());
    let moon_hex = format!("{:016x}", moon.id);
    let home_m = dir.path().join("m");
    std::fs::create_dir_all(home_m.join("zt1/moons.d")).unwrap();
    std::fs::copy(&planet, home_m.join("zt1/planet")).unwrap();
    std::fs::write(
        home_m.join(format!("zt1/moons.d/{moon_hex}.moon")),
        moon.to_bytes(),
    )
    .unwrap();
    let (mut m_proc, m_api) = start_ztd(&lab, 1, &home_m);
    enable_with_identity(&m_api, &moon_id);
    let listed = poll(Duration::from_secs(10), || {
        m_api
            .call("GET", "/moon", None)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
    })
    .unwrap_or_else(|| panic!("moon server lists its moon\n{}", m_proc.report()));
    assert_eq!(listed[0]["id"], moon_hex.as_str());
    assert_eq!(listed[0]["waiting"], false);

    // ztd leaf L orbits it by seed.
    let home_l = dir.path().join("l");
    std::fs::create_dir_all(home_l.join("zt1")).unwrap();
    std::fs::copy(&planet, home_l.join("zt1/planet")).unwrap();
    let (mut l_proc, l_api) = start_ztd(&lab, 2, &home_l);
    enable_with_identity(&l_api, &leaf_id);
    poll(Duration::from_secs(30), || {
        l_api
            .call("GET", "/status", None)
            .filter(|s| s["online"] == true)
    })
    .expect("leaf online");
    let body = format!("{{\"seed\":\"{}\"}}", moon_id.address());
    let first = l_api
        .call("POST", &format!("/moon/{moon_hex}"), Some(&body))
        .expect("orbit reply");
    assert_eq!(first["id"], moon_hex.as_str());
    let got = poll(Duration::from_secs(30), || {
        l_api
            .call("GET", &format!("/moon/{moon_hex}"), None)
            .filter(|m| m["waiting"] == false)
    })
    .unwrap_or_else(|| panic!("moon fetched from its seed\n{}", l_proc.report()));
    assert_eq!(
        got["roots"][0]["identity"],
        moon_id.to_public_string().as_str()
    );
    let saved = home_l.join(format!("zt1/moons.d/{moon_hex}.moon"));
    assert!(
        poll(Duration::from_secs(5), || saved.exists().then_some(())).is_some(),
        "moon saved"
    );
    assert_eq!(std::fs::read(&saved).unwrap(), moon.to_bytes());
    let m_peer = poll(Duration::from_secs(20), || {
        l_api
            .call("GET", &format!("/peer/{}", moon_id.address()), None)
            .filter(|p| p["role"] == "MOON")
    });
    assert!(
        m_peer.is_some(),
        "the moon's root is a MOON peer\n{}",
        l_proc.report()
    );

    // A real node orbits our ztd's moon too.
    let home_x = dir.path().join("x");
    write_identity(&home_x, &real_leaf_id);
    let hx = home_x.display().to_string();
    let orbit = format!("{moon_hex}:{}", moon_id.address());
    let mut real = lab.spawn(
        3,
        &ztpeer,
        &[
            "run",
            "--home",
            &hx,
            "--roots",
            &planet_s,
            "--orbit",
            &orbit,
            "--for",
            "100",
            "--status-every",
            "2",
        ],
    );
    let moon_addr = moon_id.address().to_string();
    let is_moon_peer = |v: &Value| v["peer_id"] == moon_addr.as_str() && v["role"] == "MOON";
    // libzt reports peers in PEER_* events and in ztpeer's periodic status lines.
    let real_sees_moon = real.wait_line(Duration::from_secs(60), |l| {
        json_line(l).is_some_and(|v| {
            is_moon_peer(&v)
                || v["peers"]
                    .as_array()
                    .is_some_and(|peers| peers.iter().any(is_moon_peer))
        })
    });
    if real_sees_moon.is_none() {
        // libzt 1.8.4 sometimes delivers no PEER_* events at all (shared/interop/README.md;
        // seen here in about one run in four): then it reports no peers of any role and the
        // real node's view cannot be read. Any peer data without the moon is a failure.
        let report = real.report();
        let libzt_reported_peers = report.lines().filter_map(json_line).any(|v| {
            v["event"].as_str().is_some_and(|e| e.starts_with("PEER_"))
                || v["peers"].as_array().is_some_and(|p| !p.is_empty())
        });
        assert!(
            !libzt_reported_peers,
            "the real node orbits our moon\n{report}\n{}",
            m_proc.report()
        );
        eprintln!(
            "SKIPPED part of moons_are_orbited_saved_and_deorbited_through_the_api: \
             libzt delivered no peer events, so the real node's moon view is unknown"
        );
    }

    // Deorbit: gone from the node and from disk.
    let gone = l_api
        .call("DELETE", &format!("/moon/{moon_hex}"), None)
        .expect("deorbit");
    assert_eq!(gone["result"], true);
    assert!(!saved.exists());
    assert_eq!(
        l_api.call("GET", "/moon", None).expect("moons"),
        serde_json::json!([])
    );
}
