//! The zerotier-one service API (PROTOCOL.md §9.2) beside `/rest`, so zerotier-cli-style
//! tools (`zt info`, `zt peers`, `zt orbit`) work against ztd.
//!
//! zerotier-one runs one node per service; ztd runs several instances, and this API answers
//! for the default instance (`zt1`, the factory item).
//!
//! One module per resource; every route is registered in [`router`] (add yours there).
// Handlers return the finished HTTP response as their error (401, 503, …): it is built
// once per request, so its size does not matter.
#![allow(clippy::result_large_err)]
pub mod controller;
pub mod metrics;
pub mod moon;
pub mod network;
pub mod peer;
pub mod stats;
pub mod status;

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::runtime::driver::{InstanceHandle, NotRunning};
use crate::runtime::engine::PortRole;

/// The ZeroTier One version ztd reports (the one zt-node speaks).
pub const VERSION: (u32, u32, u32) = (1, 14, 1);

pub(crate) fn version_fields(object: &mut serde_json::Map<String, Value>) {
    let (major, minor, rev) = VERSION;
    object.insert("versionMajor".into(), json!(major));
    object.insert("versionMinor".into(), json!(minor));
    object.insert("versionRev".into(), json!(rev));
    object.insert("versionBuild".into(), json!(0));
    object.insert("version".into(), json!(format!("{major}.{minor}.{rev}")));
}

pub(crate) fn clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the service API reports about the default instance.
pub(crate) struct DefaultInstance {
    pub(crate) address: Option<String>,
    pub(crate) public: Option<String>,
    pub(crate) online: bool,
    pub(crate) primary_port: u16,
    pub(crate) secondary_port: Option<u16>,
    /// The port the gateway is asked to forward (bound only with port mapping on).
    pub(crate) tertiary_port: Option<u16>,
    /// The host's interface addresses with each port a socket is bound on (zerotier-one's
    /// binder lists the same: one entry per usable interface address and port, no wildcard,
    /// loopback, link-local or ZeroTier interface).
    pub(crate) listening_on: Vec<String>,
    /// Our addresses as upstream peers see them.
    pub(crate) surface_addresses: Vec<String>,
    /// (world id, timestamp) of the planet the node uses.
    pub(crate) planet: Option<(u64, u64)>,
    /// Its datagrams go through a TCP relay (UDP is blocked).
    pub(crate) tcp_fallback_active: bool,
    /// The instance's `port-mapping` (zerotier-one's `portMappingEnabled`).
    pub(crate) port_mapping: bool,
}

/// zerotier-one's text form of a socket address (`ip/port`).
pub(crate) fn address_text(a: &std::net::SocketAddr) -> String {
    format!("{}/{}", a.ip(), a.port())
}

pub(crate) async fn default_instance(daemon: &Daemon) -> Option<DefaultInstance> {
    let model = daemon.lock().await;
    let (id, config) = model.instances.iter().find(|(_, c)| c.default)?;
    let shown = model.identities.get(&id);
    let runtime = model.runtime(id);
    let mut online = false;
    let mut planet = None;
    let mut listening_on = Vec::new();
    let mut surface_addresses = Vec::new();
    let mut secondary_port = config.secondary_port;
    let mut tertiary_port = None;
    if let Some(runtime) = runtime {
        let bound: Vec<std::net::SocketAddr> = runtime.sockets().iter().map(|s| s.bound).collect();
        for socket in runtime.sockets() {
            match socket.role {
                PortRole::Primary => {}
                PortRole::Secondary => secondary_port = Some(socket.bound.port()),
                PortRole::Tertiary => tertiary_port = Some(socket.bound.port()),
            }
        }
        let handle = runtime.handle();
        if let Ok(Ok(status)) = tokio::time::timeout(ENGINE_TIMEOUT, handle.status()).await {
            online = status.engine.online;
            if let Some(node) = status.node {
                planet = Some((node.planet_id, node.planet_timestamp));
                listening_on = node
                    .local_addresses
                    .iter()
                    .filter(|a| {
                        bound
                            .iter()
                            .any(|b| b.port() == a.port() && b.is_ipv4() == a.is_ipv4())
                    })
                    .map(address_text)
                    .collect();
                surface_addresses = node.surface_addresses.iter().map(address_text).collect();
            }
        }
    }
    Some(DefaultInstance {
        address: shown.map(|s| s.address.clone()),
        public: shown.map(|s| s.public.clone()),
        online,
        primary_port: config.port,
        secondary_port,
        tertiary_port,
        listening_on,
        surface_addresses,
        planet,
        tcp_fallback_active: runtime.is_some_and(|r| r.tcp_fallback_active()),
        port_mapping: config.port_mapping,
    })
}

/// Every zerotier-one service path, on one router (the REST layer merges it beside `/rest`).
pub fn router(daemon: Arc<Daemon>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/health", get(status::health))
        .route("/status", get(status::status))
        .route("/peer", get(peer::list))
        .route("/peer/{address}", get(peer::one))
        .route("/stats", get(stats::get))
        .route("/metrics", get(metrics::get))
        .route("/moon", get(moon::list))
        .route("/network", get(network::list))
        .route(
            "/network/{nwid}",
            get(network::one)
                .post(network::join)
                .put(network::join)
                .delete(network::leave),
        )
        .route(
            "/moon/{id}",
            get(moon::one).post(moon::orbit).delete(moon::deorbit),
        )
        .with_state(daemon.clone())
        .merge(controller::routes(daemon))
}

/// The token check every path but `/health` starts with: `Err` is the 401 to send.
pub(crate) fn require_auth(
    daemon: &Daemon,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Response> {
    if authorized(headers, query, daemon.authtoken()) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response())
    }
}

/// The 503 answer when the default instance is not running (or its engine does not answer).
fn not_running() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "the default instance is not running"})),
    )
        .into_response()
}

/// The default instance's handle, or the response to send when it is not running. Its
/// commands are asked with [`in_time`].
pub(crate) async fn default_handle(daemon: &Daemon) -> Result<InstanceHandle, Response> {
    let model = daemon.lock().await;
    let (id, _) = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .ok_or_else(not_running)?;
    model
        .runtime(id)
        .map(|runtime| runtime.handle())
        .ok_or_else(not_running)
}

/// The answer to a command of the default instance, or the response to send when the
/// instance stopped or did not answer within [`ENGINE_TIMEOUT`].
pub(crate) async fn in_time<T>(
    command: impl std::future::Future<Output = Result<T, NotRunning>>,
) -> Result<T, Response> {
    match tokio::time::timeout(ENGINE_TIMEOUT, command).await {
        Ok(Ok(answer)) => Ok(answer),
        _ => Err(not_running()),
    }
}

/// How long an API call waits for the instance's engine.
pub(crate) const ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// zerotier-one's token forms: the REST ones plus `?auth=<token>`.
pub(crate) fn authorized(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    if crate::rest::authorized(headers, token) {
        return true;
    }
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("auth="))
        .any(|given| crate::rest::constant_time_eq(given, token))
}
