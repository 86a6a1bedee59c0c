//! A minimal UDP driver for one `Node`: one socket, the real clock, the OS RNG. Used by the
//! interop tests to put our engine on a real network next to a real ZeroTier node; the
//! daemon (`ztd`) is the production driver.
//!
//! ```text
//! zt-node-udp --identity SECRET --planet FILE --bind IP:PORT [--for SECONDS] [--ping ADDRESS]
//!             [--pcap FILE]
//! ```
//! Prints one JSON object per line: engine events, and every second a `peers` line.
//! `--pcap` records every datagram in and out (IPv4 only) for `list_packets.py`.
//! `--ping` sends a VL1 ECHO to that address every second once online,
//! which makes the engine WHOIS it, relay through the root and then go direct.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zt_node::{Address, Event, Identity, LocalSocketId, Node, NodeConfig, Verb, World};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let identity =
        Identity::from_string(&arg(&args, "--identity").expect("--identity")).expect("identity");
    let planet = World::parse(
        &std::fs::read(arg(&args, "--planet").expect("--planet")).expect("planet file"),
    )
    .expect("planet");
    let bind: SocketAddr = arg(&args, "--bind")
        .expect("--bind")
        .parse()
        .expect("bind address");
    let run_for = Duration::from_secs(
        arg(&args, "--for")
            .map(|s| s.parse().expect("seconds"))
            .unwrap_or(30),
    );
    let ping: Option<Address> = arg(&args, "--ping").map(|s| s.parse().expect("address"));

    let mut pcap = arg(&args, "--pcap").map(|p| Pcap::create(&p));
    let socket = UdpSocket::bind(bind).expect("bind");
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64 + 1_000;
    let mut node = Node::new(
        identity,
        NodeConfig::new(planet),
        Box::new(StdRng::from_entropy()),
        now(),
    )
    .expect("node");
    node.set_local_addresses(vec![bind]);
    println!(
        "{{\"event\":\"started\",\"address\":\"{}\"}}",
        node.address()
    );
    let mut buf = vec![0u8; 10_100];
    let mut next_report = now();
    let mut reports = 0u64;
    while start.elapsed() < run_for {
        let t = now();
        let wait = node
            .poll_timeout()
            .map(|d| d.saturating_sub(t))
            .unwrap_or(100)
            .clamp(1, 100);
        socket
            .set_read_timeout(Some(Duration::from_millis(wait)))
            .expect("timeout");
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(p) = pcap.as_mut() {
                p.record(start.elapsed(), from, bind, &buf[..n]);
            }
            node.handle_datagram(now(), LocalSocketId(0), from, &buf[..n]);
        }
        node.handle_timeout(now());
        if now() >= next_report {
            next_report = now() + 1_000;
            reports += 1;
            if reports.is_multiple_of(5) {
                println!("{{\"event\":\"stats\",\"debug\":\"{:?}\"}}", node.stats());
            }
            if let (Some(dest), true) = (ping, node.is_online()) {
                let _ = node.send_to_peer(now(), dest, Verb::Echo, &now().to_be_bytes());
            }
            for p in node.peers() {
                let version = p
                    .version
                    .map(|(a, b, c)| format!("\"{a}.{b}.{c}\""))
                    .unwrap_or("null".into());
                let paths: Vec<String> = p
                    .paths
                    .iter()
                    .map(|x| format!("\"{}\"", x.remote))
                    .collect();
                println!(
                    "{{\"event\":\"peer\",\"address\":\"{}\",\"role\":\"{:?}\",\"version\":{},\"latency\":{},\"direct\":{},\"paths\":[{}]}}",
                    p.address,
                    p.role,
                    version,
                    p.latency_ms.map(|l| l.to_string()).unwrap_or("null".into()),
                    p.direct,
                    paths.join(",")
                );
            }
        }
        while let Some(e) = node.poll_event() {
            let line = match e {
                Event::Online => "{\"event\":\"online\"}".to_string(),
                Event::Offline => "{\"event\":\"offline\"}".to_string(),
                Event::PeerLearned { address } => {
                    format!("{{\"event\":\"peer_learned\",\"address\":\"{address}\"}}")
                }
                Event::PathUp { peer, remote, .. } => format!(
                    "{{\"event\":\"path_up\",\"address\":\"{peer}\",\"remote\":\"{remote}\"}}"
                ),
                Event::PathDown { peer, remote, .. } => format!(
                    "{{\"event\":\"path_down\",\"address\":\"{peer}\",\"remote\":\"{remote}\"}}"
                ),
                other => format!("{{\"event\":\"other\",\"debug\":\"{other:?}\"}}"),
            };
            println!("{line}");
        }
        while let Some(t) = node.poll_transmit() {
            // TTL 2 datagrams only open NAT state; a plain send is equivalent on a LAN.
            let _ = socket.send_to(&t.data, t.remote);
            if let Some(p) = pcap.as_mut() {
                p.record(start.elapsed(), bind, t.remote, &t.data);
            }
        }
    }
    println!("{{\"event\":\"exit\",\"stats\":\"{:?}\"}}", node.stats());
}

/// A pcap writer (Ethernet/IPv4/UDP framing around each datagram).
struct Pcap(std::fs::File);

impl Pcap {
    fn create(path: &str) -> Pcap {
        use std::io::Write;
        let mut f = std::fs::File::create(path).expect("pcap file");
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65_535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        f.write_all(&h).expect("pcap header");
        Pcap(f)
    }

    fn record(&mut self, t: Duration, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        use std::io::Write;
        let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
            return;
        };
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        let ip_len = (20 + 8 + data.len()) as u16;
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&ip_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&from.ip().octets());
        frame.extend_from_slice(&to.ip().octets());
        frame.extend_from_slice(&from.port().to_be_bytes());
        frame.extend_from_slice(&to.port().to_be_bytes());
        frame.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(data);
        let mut rec = Vec::with_capacity(16 + frame.len());
        rec.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
        rec.extend_from_slice(&t.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&frame);
        let _ = self.0.write_all(&rec);
    }
}
