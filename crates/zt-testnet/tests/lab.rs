//! The harness checks itself: labs are isolated and always cleaned up.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use zt_testnet::{skip_unless, Lab};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// The harness itself: no default route in a lab, and nothing left behind after a panic.
#[test]
fn namespace_labs_have_no_default_route_and_vanish_even_on_panic() {
    skip_unless!(zt_testnet::netns_available());
    let names = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new(2);
        for i in 0..2 {
            names.lock().unwrap().push(lab.ns(i).to_string());
            let out = Command::new("ip")
                .args(["-n", lab.ns(i), "route", "show", "default"])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert!(
                out.stdout.is_empty(),
                "default route in {}: {}",
                lab.ns(i),
                text(&out.stdout)
            );
        }
        panic!("deliberate");
    }));
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = text(&list.stdout);
    for ns in names {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "{ns} left behind"
        );
    }
}

/// Nodes of one lab reach each other over the bridge (UDP through python3, which ztpeer needs
/// anyway), and two labs built at once do not see each other.
#[test]
fn lab_nodes_reach_each_other_and_only_each_other() {
    skip_unless!(zt_testnet::netns_available());
    let a = Lab::new(2);
    let b = Lab::new(1);
    assert_ne!(a.ns(0), b.ns(0));
    // Same addresses in both labs: only isolation keeps them apart.
    assert_eq!(a.ip(0), b.ip(0));
    let probe = |lab: &Lab, from: usize, to: std::net::Ipv4Addr| {
        let script = format!(
            "import socket,sys\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.settimeout(2)\n\
             try:\n s.connect(('{to}',9))\n s.send(b'x')\n s.recv(1)\n\
             except ConnectionRefusedError: sys.exit(0)\n\
             except OSError: sys.exit(1)\n\
             sys.exit(1)\n"
        );
        // A reachable host with nothing on port 9 answers ICMP port-unreachable, which
        // Linux reports as ConnectionRefusedError on a connected UDP socket.
        lab.run(
            from,
            Path::new("python3"),
            &["-c", &script],
            Duration::from_secs(10),
        )
    };
    let out = probe(&a, 0, a.ip(1));
    assert!(
        out.status.success(),
        "{} cannot reach {}: {}",
        a.ns(0),
        a.ip(1),
        text(&out.stderr)
    );
    let out = probe(&b, 0, a.ip(1));
    assert!(
        !out.status.success(),
        "{} reaches another lab's {}",
        b.ns(0),
        a.ip(1)
    );
    let out = probe(&a, 1, "192.0.2.1".parse().unwrap());
    assert!(!out.status.success(), "a lab must have no way out");
}
