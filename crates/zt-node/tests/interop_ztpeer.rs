//! Our engine on a real network with a real ZeroTier node (`ztpeer`: ZeroTier 1.8.4's core
//! via libzt), in throw-away network namespaces with no default route and our own planet.
//!
//! 1. A real leaf uses our node as its root: it comes online through it.
//! 2. Our leaf talks to the real leaf: WHOIS through our root, relayed ECHOs, RENDEZVOUS,
//!    then a direct path with the real node's version learned.
//!
//! Skipped (with a message) when not root, without `ip netns`, or without `ztpeer`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use zt_node::sim::{make_planet, test_identity, TEST_IDENTITIES};
use zt_testnet::ip;

macro_rules! skip_unless {
    ($check:expr) => {
        match $check {
            Ok(v) => v,
            Err(reason) => {
                eprintln!("SKIPPED: {reason}");
                return;
            }
        }
    };
}

fn ztpeer() -> Result<PathBuf, String> {
    let p = std::env::var_os("ZTPEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/ztpeer")
        });
    p.is_file()
        .then_some(p.clone())
        .ok_or(format!("no ztpeer at {}", p.display()))
}

fn netns() -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        });
    if uid != Some(true) {
        return Err("needs root for network namespaces".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`ip netns` unavailable".into()),
    }
}

/// Our UDP driver binary (cargo builds it for this test).
fn udp_node() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zt-node-udp"))
}

/// A bridge namespace plus `n` node namespaces on 10.79.0.0/24; removed on drop.
struct Lab {
    names: Vec<String>,
}

impl Lab {
    fn new(n: usize) -> Lab {
        let prefix = format!("ztn-{}-{}", std::process::id(), rand_suffix());
        let bridge = format!("{prefix}-br");
        let mut lab = Lab {
            names: vec![bridge.clone()],
        };
        ip(&["netns", "add", &bridge]);
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{prefix}-n{i}");
            ip(&["netns", "add", &ns]);
            lab.names.push(ns.clone());
            let port = format!("v{i}");
            ip(&[
                "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.79.0.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }
    fn ns(&self, i: usize) -> &str {
        &self.names[i + 1]
    }
    fn spawn(&self, i: usize, program: &Path, args: &[&str]) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(i)])
            .arg(program)
            .args(args);
        Proc::spawn(cmd)
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 100_000
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.names.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A process whose stdout lines arrive on a channel; killed on drop.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }
    fn wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if pred(&v) {
                    return Some(v);
                }
            }
        }
    }
    fn dump(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        let n = self.seen.len();
        self.seen[n.saturating_sub(400)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_planet(dir: &Path) -> PathBuf {
    let root_ep: SocketAddr = "10.79.0.1:9993".parse().unwrap();
    let (planet, _) = make_planet(0x5a5a, 1_700_000_000_000, &[(test_identity(0), root_ep)], 3);
    let path = dir.join("planet");
    std::fs::write(&path, planet.to_bytes()).unwrap();
    path
}

fn event(v: &serde_json::Value) -> &str {
    v["event"].as_str().unwrap_or("")
}

#[test]
fn a_real_node_uses_our_root_and_talks_to_our_leaf() {
    let ztpeer = skip_unless!(ztpeer());
    skip_unless!(netns());
    let bin = udp_node();
    let dir = tempfile::tempdir().unwrap();
    let planet = write_planet(dir.path());
    let planet_s = planet.to_str().unwrap();
    let home = dir.path().join("real");
    std::fs::create_dir(&home).unwrap();
    let lab = Lab::new(3);

    let mut root = lab.spawn(
        0,
        &bin,
        &[
            "--identity",
            TEST_IDENTITIES[0],
            "--planet",
            planet_s,
            "--bind",
            "10.79.0.1:9993",
            "--for",
            "60",
        ],
    );
    assert!(
        root.wait_for(Duration::from_secs(10), |v| event(v) == "online")
            .is_some(),
        "root: {}",
        root.dump()
    );

    // 1. The real node comes online through our root.
    let mut real = lab.spawn(
        1,
        &ztpeer,
        &[
            "run",
            "--home",
            home.to_str().unwrap(),
            "--port",
            "9993",
            "--roots",
            planet_s,
            "--for",
            "50",
        ],
    );
    let started = real
        .wait_for(Duration::from_secs(30), |v| event(v) == "node_started")
        .unwrap_or_else(|| panic!("ztpeer did not start: {}", real.dump()));
    let real_addr = started["node_id"].as_str().unwrap().to_lowercase();
    assert!(
        real.wait_for(Duration::from_secs(30), |v| event(v) == "online")
            .is_some(),
        "real node never came online through our root: {}\nroot: {}",
        real.dump(),
        root.dump()
    );
    let seen = root.wait_for(Duration::from_secs(10), |v| {
        event(v) == "peer" && v["address"] == real_addr.as_str() && v["direct"] == true
    });
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "root never had a direct path to {real_addr}: {}",
            root.dump()
        )
    });
    assert_eq!(seen["version"], "1.8.4", "{seen}");
    assert_eq!(seen["role"], "Leaf");

    // 2. Our leaf pings the real node: WHOIS and relay through our root, then direct.
    let mut leaf = lab.spawn(
        2,
        &bin,
        &[
            "--identity",
            TEST_IDENTITIES[2],
            "--planet",
            planet_s,
            "--bind",
            "10.79.0.3:9993",
            "--for",
            "40",
            "--ping",
            &real_addr,
        ],
    );
    let direct = leaf.wait_for(Duration::from_secs(30), |v| {
        event(v) == "peer"
            && v["address"] == real_addr.as_str()
            && v["direct"] == true
            && v["latency"].is_number()
    });
    let direct = direct.unwrap_or_else(|| {
        panic!(
            "our leaf never went direct to {real_addr}: {}\nroot: {}",
            leaf.dump(),
            root.dump()
        )
    });
    assert_eq!(direct["version"], "1.8.4", "{direct}");
    assert_eq!(direct["paths"][0], "10.79.0.2:9993");
}

#[test]
fn our_leaves_use_a_real_root_and_its_rendezvous() {
    let ztpeer = skip_unless!(ztpeer());
    skip_unless!(netns());
    let bin = udp_node();
    let dir = tempfile::tempdir().unwrap();
    let planet = write_planet(dir.path());
    let planet_s = planet.to_str().unwrap();
    // The real node runs as the planet's root, with the root identity the planet names.
    let home = dir.path().join("real-root");
    std::fs::create_dir(&home).unwrap();
    let root_id = test_identity(0);
    std::fs::write(home.join("identity.secret"), TEST_IDENTITIES[0]).unwrap();
    std::fs::write(home.join("identity.public"), root_id.to_public_string()).unwrap();
    let lab = Lab::new(3);

    let mut real = lab.spawn(
        0,
        &ztpeer,
        &[
            "run",
            "--home",
            home.to_str().unwrap(),
            "--port",
            "9993",
            "--roots",
            planet_s,
            "--for",
            "50",
        ],
    );
    real.wait_for(Duration::from_secs(30), |v| event(v) == "node_started")
        .unwrap_or_else(|| panic!("real root did not start: {}", real.dump()));

    let b_addr = test_identity(2).address().to_string();
    // A records its traffic; on failure, decode it with `captures/list_packets.py`.
    let a_pcap = dir.path().join("a.pcap");
    let mut b = lab.spawn(
        2,
        &bin,
        &[
            "--identity",
            TEST_IDENTITIES[2],
            "--planet",
            planet_s,
            "--bind",
            "10.79.0.3:9993",
            "--for",
            "40",
        ],
    );
    let mut a = lab.spawn(
        1,
        &bin,
        &[
            "--identity",
            TEST_IDENTITIES[1],
            "--planet",
            planet_s,
            "--bind",
            "10.79.0.2:9993",
            "--for",
            "40",
            "--ping",
            &b_addr,
            "--pcap",
            a_pcap.to_str().unwrap(),
        ],
    );
    let root_addr = root_id.address().to_string();
    for (name, leaf) in [("A", &mut a), ("B", &mut b)] {
        let seen = leaf.wait_for(Duration::from_secs(30), |v| {
            event(v) == "peer"
                && v["address"] == root_addr.as_str()
                && v["direct"] == true
                && v["version"] == "1.8.4"
        });
        assert!(
            seen.is_some(),
            "leaf {name} never reached the real root: {}\nroot: {}",
            leaf.dump(),
            real.dump()
        );
        assert_eq!(seen.unwrap()["role"], "Planet");
    }
    // A reaches B: WHOIS answered by the real root, ECHOs relayed by it, then RENDEZVOUS.
    // libzt 1.8.4's root armors the RENDEZVOUS meant for A with its key for B (A counts a
    // bad MAC), and B gets its RENDEZVOUS while still looking A up: B keeps it until the
    // WHOIS answers, then contacts A, and both learn the direct path from the OKs.
    let direct = a.wait_for(Duration::from_secs(30), |v| {
        event(v) == "peer"
            && v["address"] == b_addr.as_str()
            && v["direct"] == true
            && v["latency"].is_number()
    });
    if direct.is_none() {
        let keep = std::env::temp_dir().join("zt-node-interop-a.pcap");
        let _ = std::fs::copy(&a_pcap, &keep);
        panic!(
            "A never went direct to B (A's traffic: {}): {}\nB: {}",
            keep.display(),
            a.dump(),
            b.dump()
        );
    }
    assert_eq!(direct.unwrap()["paths"][0], "10.79.0.3:9993");
}
