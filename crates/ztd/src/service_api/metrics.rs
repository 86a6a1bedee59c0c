//! `GET /metrics`: the daemon's counters in the Prometheus / OpenMetrics text format
//! (`application/openmetrics-text`, ending in `# EOF`). Like zerotier-one it opens with either
//! the API token or the one in `metricstoken.secret` (`X-ZT1-Auth`, `Authorization: Bearer`,
//! `?auth=`), and `allowManagementFrom` does not apply to it.
//!
//! Names follow zerotier-one's `node/Metrics.cpp` where it has one; every series carries a
//! `zt_instance` label (the instance's name, `zt1` for the default) because one ztd runs
//! several nodes. The OpenMetrics encoder names counter samples `<family>_total`.
//!
//! | family | type | labels | what |
//! | --- | --- | --- | --- |
//! | `zt_packet` | counter | `packet_type`, `direction` (`rx`/`tx`) | authenticated packets handled / packets built and sent, by verb (`hello`, `ok`, `frame`, …) |
//! | `zt_data` | counter | `protocol` (`udp`), `direction` | UDP payload bytes |
//! | `zt_num_networks` | gauge | | networks the node has joined |
//! | `zt_peer_latency` | gauge | `node_id` | last measured round trip to the peer, ms (zerotier-one: a histogram; only peers with a measurement) |
//! | `zt_peer_path_count` | gauge | `node_id`, `status` (`alive`/`dead`) | the peer's paths |
//! | `zt_online` | gauge | | 1 while the node hears from an upstream |
//! | `zt_dropped_packets` | counter | `reason` | input dropped, by reason (`bad_mac`, `replay`, `malformed`, …) |
//! | `zt_relayed_packets` | counter | | packets relayed for other nodes |
//! | `controller_network_count` | gauge | | networks the instance's controller serves |
//! | `controller_config_requests` | counter | `result` (`answered`/`dropped`/`failed`) | NETWORK_CONFIG_REQUESTs |
//! | `controller_request_queue` | gauge | | requests waiting now |
//! | `controller_configs_pushed` | counter | | configs pushed after changes |
//! | `controller_revocations_issued` | counter | | revocations sent after members lost access |
//! | `controller_pushes_failed` | counter | | pushes or revocations that could not be produced |
//! | `controller_feed_changes` | counter | | other controllers' changes read from a shared database |
//! | `controller_feed_errors` | counter | | failed reads of that change feed |
//!
//! Node series come from running instances (`zt_node::Stats` and the peer list); controller
//! series from the controllers started so far (a controller starts on first use or the first
//! config request for one of its networks). Counters restart from zero when ztd restarts.
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use zt_node::{PeerInfo, Stats, Verb};

use super::{authorized, require_auth, ENGINE_TIMEOUT};
use crate::controller::service::ServiceStatus;
use crate::daemon::Daemon;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one running instance's node reports.
#[derive(Debug, Clone, Default)]
pub struct NodeSnapshot {
    pub instance: String,
    pub online: bool,
    pub networks: usize,
    pub stats: Stats,
    pub peers: Vec<PeerInfo>,
}

/// What one instance's controller reports.
#[derive(Debug, Clone, Default)]
pub struct ControllerSnapshot {
    pub instance: String,
    pub status: ServiceStatus,
    /// None when the database could not be read.
    pub networks: Option<usize>,
}

/// Everything `/metrics` shows, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<NodeSnapshot>,
    pub controllers: Vec<ControllerSnapshot>,
}

/// Read every running node and started controller. The model lock is held only to list the
/// instances; each node is asked through its handle, with the API's usual time limit.
pub async fn snapshot(daemon: &Daemon) -> Snapshot {
    let handles: Vec<(String, _)> = {
        let model = daemon.lock().await;
        model
            .instances
            .iter()
            .filter_map(|(id, c)| model.runtime(id).map(|r| (c.name.clone(), r.handle())))
            .collect()
    };
    let mut nodes = Vec::with_capacity(handles.len());
    for (instance, handle) in handles {
        if let Ok(Ok(read)) = tokio::time::timeout(ENGINE_TIMEOUT, handle.metrics()).await {
            nodes.push(NodeSnapshot {
                instance,
                online: read.online,
                networks: read.networks,
                stats: read.stats,
                peers: read.peers,
            });
        }
    }
    let mut controllers = Vec::new();
    for (dir, service) in daemon.controller_registry.services() {
        let instance = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let count = service.read(|ctl| ctl.network_ids().map(|ids| ids.len()));
        let networks = match tokio::time::timeout(ENGINE_TIMEOUT, count).await {
            Ok(Ok(Ok(n))) => Some(n),
            _ => None,
        };
        controllers.push(ControllerSnapshot {
            instance,
            status: service.status(),
            networks,
        });
    }
    Snapshot { nodes, controllers }
}

/// The verbs zerotier-one counts, with its label for each.
fn verb_labels() -> impl Iterator<Item = (Verb, String)> {
    (0u8..=0x16).map(Verb::from).filter_map(|verb| match verb {
        Verb::Unknown(_) => None,
        Verb::QosMeasurement => Some((verb, "qos".to_string())),
        _ => Some((verb, verb.name().to_ascii_lowercase())),
    })
}

/// The drop reasons of [`Stats`] under `zt_dropped_packets`.
pub(crate) fn drop_reasons(s: &Stats) -> [(&'static str, u64); 18] {
    [
        ("runt", s.dropped_runt),
        ("bad_fragment", s.dropped_bad_fragment),
        ("bad_source", s.dropped_bad_source),
        ("unsupported_cipher", s.dropped_unsupported_cipher),
        ("bad_mac", s.dropped_bad_mac),
        ("replay", s.dropped_replay),
        ("decompress", s.dropped_decompress),
        ("malformed", s.dropped_malformed),
        ("unexpected_reply", s.dropped_unexpected_reply),
        ("not_from_upstream", s.dropped_not_from_upstream),
        ("old_protocol", s.dropped_old_protocol),
        ("hello_address_mismatch", s.dropped_hello_address_mismatch),
        ("hello_rate_limited", s.dropped_hello_rate_limited),
        ("invalid_identity", s.dropped_invalid_identity),
        ("identity_check_queue", s.dropped_identity_check_queue),
        ("relay_not_allowed", s.dropped_relay_not_allowed),
        ("relay_hop_limit", s.dropped_relay_hop_limit),
        ("relay_no_route", s.dropped_relay_no_route),
    ]
}

type Labels = Vec<(&'static str, String)>;

/// A registry filled from one snapshot: each family is registered once, its series set to
/// the snapshot's values.
struct Exposition {
    registry: Registry,
}

impl Exposition {
    fn counter(&mut self, name: &str, help: &str) -> Family<Labels, Counter> {
        let family = Family::<Labels, Counter>::default();
        self.registry.register(name, help, family.clone());
        family
    }

    fn gauge(&mut self, name: &str, help: &str) -> Family<Labels, Gauge> {
        let family = Family::<Labels, Gauge>::default();
        self.registry.register(name, help, family.clone());
        family
    }
}

fn labels(instance: &str, more: &[(&'static str, &str)]) -> Labels {
    let mut all = vec![("zt_instance", instance.to_string())];
    all.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    all
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The snapshot as OpenMetrics text.
pub fn encode(snapshot: &Snapshot) -> String {
    let mut x = Exposition {
        registry: Registry::default(),
    };
    let packets = x.counter("zt_packet", "ZeroTier packets by verb and direction");
    let data = x.counter("zt_data", "bytes ZeroTier has sent or received");
    let networks = x.gauge("zt_num_networks", "networks this node has joined");
    let latency = x.gauge("zt_peer_latency", "last measured peer round trip (ms)");
    let paths = x.gauge("zt_peer_path_count", "paths to the peer");
    let online = x.gauge("zt_online", "1 while the node hears from an upstream");
    let dropped = x.counter("zt_dropped_packets", "input dropped, by reason");
    let relayed = x.counter("zt_relayed_packets", "packets relayed for other nodes");
    for node in &snapshot.nodes {
        let name = node.instance.as_str();
        for (verb, label) in verb_labels() {
            for (direction, counts) in [
                ("rx", &node.stats.packets_received),
                ("tx", &node.stats.packets_sent),
            ] {
                packets
                    .get_or_create(&labels(
                        name,
                        &[("packet_type", &label), ("direction", direction)],
                    ))
                    .inc_by(counts.get(verb));
            }
        }
        for (direction, bytes) in [("rx", node.stats.rx_bytes), ("tx", node.stats.tx_bytes)] {
            data.get_or_create(&labels(
                name,
                &[("protocol", "udp"), ("direction", direction)],
            ))
            .inc_by(bytes);
        }
        networks
            .get_or_create(&labels(name, &[]))
            .set(gauge_value(node.networks));
        online
            .get_or_create(&labels(name, &[]))
            .set(i64::from(node.online));
        for (reason, n) in drop_reasons(&node.stats) {
            dropped
                .get_or_create(&labels(name, &[("reason", reason)]))
                .inc_by(n);
        }
        relayed
            .get_or_create(&labels(name, &[]))
            .inc_by(node.stats.relayed);
        for peer in &node.peers {
            let id = peer.address.to_string();
            if let Some(ms) = peer.latency_ms {
                latency
                    .get_or_create(&labels(name, &[("node_id", &id)]))
                    .set(i64::from(ms));
            }
            let alive = peer.paths.iter().filter(|p| !p.expired).count();
            for (status, n) in [("alive", alive), ("dead", peer.paths.len() - alive)] {
                paths
                    .get_or_create(&labels(name, &[("node_id", &id), ("status", status)]))
                    .set(gauge_value(n));
            }
        }
    }

    let network_count = x.gauge(
        "controller_network_count",
        "networks the controller is serving",
    );
    let requests = x.counter(
        "controller_config_requests",
        "network config requests, by result",
    );
    let queued = x.gauge("controller_request_queue", "config requests waiting now");
    let pushed = x.counter("controller_configs_pushed", "configs pushed after changes");
    let revoked = x.counter(
        "controller_revocations_issued",
        "revocations sent after members lost access",
    );
    let push_failures = x.counter(
        "controller_pushes_failed",
        "pushes or revocations that could not be produced",
    );
    let feed_changes = x.counter(
        "controller_feed_changes",
        "changes by other controllers read from the shared database",
    );
    let feed_errors = x.counter(
        "controller_feed_errors",
        "failed reads of the shared database's change feed",
    );
    for controller in &snapshot.controllers {
        let name = controller.instance.as_str();
        let s = &controller.status;
        if let Some(n) = controller.networks {
            network_count
                .get_or_create(&labels(name, &[]))
                .set(gauge_value(n));
        }
        for (result, n) in [
            ("answered", s.requests_answered),
            ("dropped", s.requests_dropped),
            ("failed", s.requests_failed),
        ] {
            requests
                .get_or_create(&labels(name, &[("result", result)]))
                .inc_by(n);
        }
        queued
            .get_or_create(&labels(name, &[]))
            .set(gauge_value(s.requests_queued));
        for (family, n) in [
            (&pushed, s.configs_pushed),
            (&revoked, s.revocations_issued),
            (&push_failures, s.pushes_failed),
            (&feed_changes, s.feed_changes),
            (&feed_errors, s.feed_errors),
        ] {
            family.get_or_create(&labels(name, &[])).inc_by(n);
        }
    }

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &x.registry);
    text
}

/// `GET /metrics`.
pub async fn get(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.as_deref();
    if !authorized(&headers, query, daemon.metricstoken()) {
        if let Err(r) = require_auth(&daemon, &headers, query) {
            return r;
        }
    }
    let text = encode(&snapshot(&daemon).await);
    let mut response = (StatusCode::OK, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_api::controller::tests::{daemon_with_zt1, network_with_online_member};
    use prometheus_parse::{LineInfo, Scrape, Value};

    /// `text` as Prometheus samples, after checking that every line is one the text format
    /// knows (help, type, sample, or OpenMetrics' `# UNIT` / `# EOF`).
    fn parse(text: &str) -> Scrape {
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in text.lines() {
            let known = !matches!(LineInfo::parse(line), LineInfo::Ignored)
                || line == "# EOF"
                || line.starts_with("# UNIT ");
            assert!(known, "not Prometheus text: {line:?}");
        }
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    /// The value of the sample `metric` whose labels include `labels`.
    fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    #[test]
    fn a_snapshot_is_exposed_under_zerotier_one_names() {
        let mut stats = Stats {
            rx_bytes: 1234,
            tx_bytes: 99,
            dropped_bad_mac: 3,
            relayed: 2,
            ..Stats::default()
        };
        stats.packets_sent.count(Verb::Hello);
        stats.packets_sent.count(Verb::Hello);
        stats.packets_received.count(Verb::Ok);
        stats.packets_received.count(Verb::QosMeasurement);
        let peer = PeerInfo {
            address: zt_crypto::Address::new(0x0a11111111).unwrap(),
            version: None,
            protocol_version: None,
            latency_ms: Some(42),
            role: zt_node::Role::Planet,
            paths: Vec::new(),
            direct: false,
        };
        let snapshot = Snapshot {
            nodes: vec![NodeSnapshot {
                instance: "zt1".into(),
                online: true,
                networks: 2,
                stats,
                peers: vec![peer],
            }],
            controllers: vec![ControllerSnapshot {
                instance: "zt1".into(),
                status: ServiceStatus {
                    requests_answered: 7,
                    requests_dropped: 1,
                    configs_pushed: 4,
                    ..ServiceStatus::default()
                },
                networks: Some(3),
            }],
        };
        let scrape = parse(&encode(&snapshot));
        let zt1 = ("zt_instance", "zt1");
        let packet = |verb, direction| {
            value(
                &scrape,
                "zt_packet_total",
                &[zt1, ("packet_type", verb), ("direction", direction)],
            )
        };
        assert_eq!(packet("hello", "tx"), Some(2.0));
        assert_eq!(packet("ok", "rx"), Some(1.0));
        assert_eq!(packet("qos", "rx"), Some(1.0));
        assert_eq!(packet("frame", "tx"), Some(0.0));
        assert_eq!(packet("path_negotiation_request", "rx"), Some(0.0));
        assert_eq!(
            value(
                &scrape,
                "zt_data_total",
                &[("protocol", "udp"), ("direction", "rx")]
            ),
            Some(1234.0)
        );
        assert_eq!(value(&scrape, "zt_num_networks", &[zt1]), Some(2.0));
        assert_eq!(value(&scrape, "zt_online", &[zt1]), Some(1.0));
        assert_eq!(
            value(&scrape, "zt_peer_latency", &[("node_id", "0a11111111")]),
            Some(42.0)
        );
        assert_eq!(
            value(
                &scrape,
                "zt_peer_path_count",
                &[("node_id", "0a11111111"), ("status", "alive")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &scrape,
                "zt_dropped_packets_total",
                &[("reason", "bad_mac")]
            ),
            Some(3.0)
        );
        assert_eq!(
            value(&scrape, "zt_relayed_packets_total", &[zt1]),
            Some(2.0)
        );
        assert_eq!(
            value(&scrape, "controller_network_count", &[zt1]),
            Some(3.0)
        );
        let requests = |result| {
            value(
                &scrape,
                "controller_config_requests_total",
                &[zt1, ("result", result)],
            )
        };
        assert_eq!(requests("answered"), Some(7.0));
        assert_eq!(requests("dropped"), Some(1.0));
        assert_eq!(requests("failed"), Some(0.0));
        assert_eq!(
            value(&scrape, "controller_configs_pushed_total", &[zt1]),
            Some(4.0)
        );
        assert!(scrape.docs.contains_key("zt_packet"), "{:?}", scrape.docs);
    }

    /// Through the handler: the token is required, the controller's counters move with the
    /// requests it answers.
    #[tokio::test]
    async fn the_route_needs_the_token_and_counts_controller_requests() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = daemon_with_zt1(&tmp.path().join("home"));
        let scrape = |auth: Option<String>| {
            let daemon = daemon.clone();
            async move {
                let response = get(State(daemon), HeaderMap::new(), RawQuery(auth)).await;
                let status = response.status();
                let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (
                    status,
                    content_type,
                    String::from_utf8(body.to_vec()).unwrap(),
                )
            }
        };
        let (status, _, _) = scrape(None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = scrape(Some("auth=wrong".into())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = scrape(Some(format!("auth={}", daemon.metricstoken()))).await;
        assert_eq!(status, StatusCode::OK, "metricstoken.secret opens /metrics");
        let auth = Some(format!("auth={}", daemon.authtoken()));

        // No instance runs and no controller has started: an empty exposition.
        let (status, content_type, text) = scrape(auth.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.unwrap(), CONTENT_TYPE);
        assert!(parse(&text).samples.is_empty(), "{text}");

        let Ok(service) = crate::service_api::controller::default_controller(&daemon).await else {
            panic!("no controller for zt1");
        };
        let answered = |text: &str| {
            value(
                &parse(text),
                "controller_config_requests_total",
                &[("zt_instance", "zt1"), ("result", "answered")],
            )
        };
        let (_, _, text) = scrape(auth.clone()).await;
        assert_eq!(answered(&text), Some(0.0), "{text}");
        network_with_online_member(&service, 1).await;
        let (_, _, text) = scrape(auth).await;
        assert_eq!(answered(&text), Some(1.0), "{text}");
        assert_eq!(
            value(
                &parse(&text),
                "controller_network_count",
                &[("zt_instance", "zt1")]
            ),
            Some(1.0)
        );
    }
}
