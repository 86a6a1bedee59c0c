//! The `ztd` binary as zerotier-cli and a Prometheus scraper find it: `zerotier-one.port` in
//! the home, the API on both loopback addresses, `/metrics` moving with traffic, and the
//! 1.12+ `/unstable` controller listings. Loopback only (the instance has no planet and
//! knows no root); every wait has a deadline.
mod loopback;

use std::fs;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zt_testnet::skip_unless;

use loopback::{http_exchange, Ztd};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

/// One `/metrics` scrape, parsed.
fn scrape(ztd: &Ztd) -> Vec<Sample> {
    let auth = format!("X-ZT1-Auth: {}\r\n", ztd.token);
    let (status, head, body) = http_exchange(ztd.api, "GET", "/metrics", &auth, "");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap()
        .samples
}

/// The value of zt1's series `metric` with the label `key` = `wanted` (0 when absent).
fn series(samples: &[Sample], metric: &str, key: &str, wanted: &str) -> f64 {
    let zt1 = |s: &&Sample| s.labels.get("zt_instance") == Some("zt1");
    match samples
        .iter()
        .filter(zt1)
        .find(|s| s.metric == metric && s.labels.get(key) == Some(wanted))
        .map(|s| &s.value)
    {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        _ => 0.0,
    }
}

#[test]
fn port_file_both_loopbacks_metrics_and_unstable_listings() {
    // ztd runs in a network namespace of this test's own, on its loopback.
    skip_unless!(zt_testnet::isolate_this_thread());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let ztd = Ztd::seeded(&home);

    // zerotier-cli -D<home> reads the API port here.
    let port_text = fs::read_to_string(home.join("zerotier-one.port")).unwrap();
    assert_eq!(port_text, ztd.api.port().to_string());

    // The default 127.0.0.1 API is on [::1] too, wherever the host has an IPv6 loopback.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, ztd.api.port()));
        let (status, _, body) = http_exchange(v6, "GET", "/health", "", "");
        assert_eq!(status, 200, "{body}");
    }

    assert_eq!(
        ztd.get("/unstable/controller/network"),
        json!({"data": [], "meta": {"networkCount": 0}})
    );
    let (status, _) = ztd.request(
        "GET",
        "/unstable/controller/network/3dd3377c70000001/member",
        None,
    );
    assert_eq!(status, 404);

    // A running instance's counters move with the datagrams it gets: a runt sent to its
    // port on loopback.
    let port = ztd.enable_zt1();
    let before = scrape(&ztd);
    assert_eq!(series(&before, "zt_online", "zt_instance", "zt1"), 0.0);
    let runts = series(&before, "zt_dropped_packets_total", "reason", "runt");
    let received = series(&before, "zt_data_total", "direction", "rx");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&[0u8; 8], ("127.0.0.1", port)).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = scrape(&ztd);
        if series(&now, "zt_dropped_packets_total", "reason", "runt") > runts {
            assert!(series(&now, "zt_data_total", "direction", "rx") >= received + 8.0);
            break;
        }
        assert!(Instant::now() < deadline, "the runt was not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}
