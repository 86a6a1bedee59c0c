//! `GET /stats` (our addition): the default instance's engine counters, so dropped input
//! (runts, bad MACs, malformed packets) and protocol work (relays, RENDEZVOUS) are visible.
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{default_handle, in_time, require_auth};
use crate::daemon::Daemon;

/// The counters as one flat JSON object (names as in `zt_node::Stats`; each drop reason of
/// `/metrics` as `dropped_<reason>`).
pub fn stats_json(s: &zt_node::Stats) -> serde_json::Value {
    let mut counters = json!({
        "rx_datagrams": s.rx_datagrams,
        "rx_bytes": s.rx_bytes,
        "tx_datagrams": s.tx_datagrams,
        "tx_bytes": s.tx_bytes,
        "rx_packets": s.rx_packets,
        "identity_collisions": s.identity_collisions,
        "relayed": s.relayed,
        "rendezvous_sent": s.rendezvous_sent,
        "rendezvous_received": s.rendezvous_received,
        "hello_sent": s.hello_sent,
        "echo_sent": s.echo_sent,
        "whois_sent": s.whois_sent,
        "whois_answered": s.whois_answered,
        "direct_path_pushes_sent": s.direct_path_pushes_sent,
        "external_address_changes": s.external_address_changes,
        "world_updates_accepted": s.world_updates_accepted,
        "peers_expired": s.peers_expired,
        "peers_evicted": s.peers_evicted,
        "frames_sent": s.vl2.frames_sent,
        "frames_received": s.vl2.frames_received,
        "frames_filtered": s.vl2.frames_filtered,
        "frames_gated": s.vl2.frames_gated,
        "frames_dropped": s.vl2.frames_dropped,
        "tap_frames_dropped": s.vl2.tap_frames_dropped,
    });
    for (reason, count) in super::metrics::drop_reasons(s) {
        counters[format!("dropped_{reason}")] = json!(count);
    }
    counters
}

/// `GET /stats`.
pub async fn get(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let node = match default_handle(&daemon).await {
        Ok(node) => node,
        Err(r) => return r,
    };
    match in_time(node.stats()).await {
        Ok(stats) => axum::Json(stats_json(&stats)).into_response(),
        Err(r) => r,
    }
}
