//! `GET /peer` and `GET /peer/<10-hex>`: the node's peers as zerotier-one's peer objects
//! (PROTOCOL.md §9.2, `_peerToJson`).
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use zt_node::{PeerInfo, Role};

use super::{default_handle, in_time, require_auth};
use crate::daemon::Daemon;

/// The role as zerotier-one names it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Planet => "PLANET",
        Role::Moon => "MOON",
        Role::Leaf => "LEAF",
    }
}

/// One peer object. Path times are the engine clock (wall-clock milliseconds, as
/// zerotier-one's); versions are -1 when the peer has not told us. `tunneled`: the instance
/// uses a TCP relay (zerotier-one says so of every peer then).
pub fn peer_json(peer: &PeerInfo, local_ports: &[(u32, u16)], tunneled: bool) -> Value {
    let (major, minor, rev) = match peer.version {
        Some((a, b, c)) => (a as i64, b as i64, c as i64),
        None => (-1, -1, -1),
    };
    let paths: Vec<Value> = peer
        .paths
        .iter()
        .map(|p| {
            let local_port = local_ports
                .iter()
                .find(|(id, _)| *id == p.local_socket.0)
                .map(|(_, port)| *port);
            json!({
                "address": super::address_text(&p.remote),
                "lastSend": p.last_send,
                "lastReceive": p.last_receive,
                "trustedPathId": 0,
                "active": p.active,
                "expired": p.expired,
                "preferred": p.preferred,
                "localSocket": p.local_socket.0,
                "localPort": local_port,
            })
        })
        .collect();
    json!({
        "address": peer.address.to_string(),
        "versionMajor": major,
        "versionMinor": minor,
        "versionRev": rev,
        "version": if major < 0 { "-1.-1.-1".to_string() } else { format!("{major}.{minor}.{rev}") },
        "latency": peer.latency_ms.map(|l| l as i64).unwrap_or(-1),
        "role": role_name(peer.role),
        "isBonded": false,
        "tunneled": tunneled,
        "direct": peer.direct,
        "paths": paths,
    })
}

/// What the default instance's peers are shown with: its peers, (socket id, bound port) of
/// its sockets, and whether it uses a TCP relay.
type PeersView = (Vec<PeerInfo>, Vec<(u32, u16)>, bool);

async fn peers(daemon: &Daemon) -> Result<PeersView, Response> {
    let (ports, tunneled) = default_edge(daemon).await;
    let peers = in_time(default_handle(daemon).await?.peers()).await?.peers;
    Ok((peers, ports, tunneled))
}

/// (socket id, bound port) of the default instance's sockets, and its TCP fallback state.
async fn default_edge(daemon: &Daemon) -> (Vec<(u32, u16)>, bool) {
    let model = daemon.lock().await;
    let runtime = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .and_then(|(id, _)| model.runtime(id));
    let ports = runtime
        .map(|r| {
            r.sockets()
                .iter()
                .map(|s| (s.id.0, s.bound.port()))
                .collect()
        })
        .unwrap_or_default();
    (ports, runtime.is_some_and(|r| r.tcp_fallback_active()))
}

/// `GET /peer`.
pub async fn list(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    match peers(&daemon).await {
        Ok((peers, ports, tunneled)) => axum::Json(Value::Array(
            peers
                .iter()
                .map(|p| peer_json(p, &ports, tunneled))
                .collect(),
        ))
        .into_response(),
        Err(r) => r,
    }
}

/// `GET /peer/<address>` (`{}` when unknown, as zerotier-one answers).
pub async fn one(
    State(daemon): State<Arc<Daemon>>,
    Path(address): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    match peers(&daemon).await {
        Ok((peers, ports, tunneled)) => {
            let wanted = address.to_ascii_lowercase();
            let found = peers.iter().find(|p| p.address.to_string() == wanted);
            axum::Json(
                found
                    .map(|p| peer_json(p, &ports, tunneled))
                    .unwrap_or(json!({})),
            )
            .into_response()
        }
        Err(r) => r,
    }
}
