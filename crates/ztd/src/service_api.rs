//! The zerotier-one service API (PROTOCOL.md §9.2) beside `/rest`: `GET /health` and
//! `GET /status`, so zerotier-cli-style tools (`zt info`) work against ztd.
//!
//! zerotier-one runs one node per service; ztd runs several instances, and this API answers
//! for the default instance (`zt1`, the factory item). Paths that need the protocol engine
//! (`/peer`, `/network`, `/moon`) are added when zt-node is plugged in.
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::runtime::engine::PortRole;

/// The ZeroTier One version ztd reports (the one zt-node speaks).
pub const VERSION: (u32, u32, u32) = (1, 14, 1);

fn version_fields(object: &mut serde_json::Map<String, Value>) {
    let (major, minor, rev) = VERSION;
    object.insert("versionMajor".into(), json!(major));
    object.insert("versionMinor".into(), json!(minor));
    object.insert("versionRev".into(), json!(rev));
    object.insert("versionBuild".into(), json!(0));
    object.insert("version".into(), json!(format!("{major}.{minor}.{rev}")));
}

fn clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the service API reports about the default instance.
struct DefaultInstance {
    address: Option<String>,
    public: Option<String>,
    online: bool,
    primary_port: u16,
    secondary_port: Option<u16>,
    listening_on: Vec<String>,
}

async fn default_instance(daemon: &Daemon) -> Option<DefaultInstance> {
    let model = daemon.lock().await;
    let (id, config) = model.instances.iter().find(|(_, c)| c.default)?;
    let shown = model.identities.get(&id);
    let runtime = model.runtime(id);
    let mut online = false;
    let mut listening_on = Vec::new();
    let mut secondary_port = config.secondary_port;
    if let Some(runtime) = runtime {
        for socket in runtime.sockets() {
            listening_on.push(format!("{}/{}", socket.bound.ip(), socket.bound.port()));
            if socket.role == PortRole::Secondary {
                secondary_port = Some(socket.bound.port());
            }
        }
        let status = runtime.with_engine(|engine, _| engine.status().online);
        online = matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), status).await,
            Ok(Ok(true))
        );
    }
    Some(DefaultInstance {
        address: shown.map(|s| s.address.clone()),
        public: shown.map(|s| s.public.clone()),
        online,
        primary_port: config.port,
        secondary_port,
        listening_on,
    })
}

/// `GET /health` (no token, as in zerotier-one).
pub async fn health(State(daemon): State<Arc<Daemon>>) -> Response {
    let online = default_instance(&daemon).await.is_some_and(|d| d.online);
    let mut body = serde_json::Map::new();
    body.insert("online".into(), json!(online));
    version_fields(&mut body);
    body.insert("clock".into(), json!(clock_ms()));
    axum::Json(Value::Object(body)).into_response()
}

/// `GET /status`.
pub async fn status(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !authorized(&headers, query.as_deref(), daemon.authtoken()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
    }
    let Some(instance) = default_instance(&daemon).await else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({}))).into_response();
    };
    let mut body = serde_json::Map::new();
    body.insert("address".into(), json!(instance.address));
    body.insert("publicIdentity".into(), json!(instance.public));
    body.insert("online".into(), json!(instance.online));
    body.insert("tcpFallbackActive".into(), json!(false));
    version_fields(&mut body);
    body.insert("clock".into(), json!(clock_ms()));
    body.insert(
        "config".into(),
        json!({
            "settings": {
                "primaryPort": instance.primary_port,
                "secondaryPort": instance.secondary_port,
                "allowTcpFallbackRelay": false,
                "portMappingEnabled": false,
                "homeDir": daemon.state_dir().root().display().to_string(),
                "listeningOn": instance.listening_on,
            }
        }),
    );
    axum::Json(Value::Object(body)).into_response()
}

/// zerotier-one's token forms: the REST ones plus `?auth=<token>`.
fn authorized(headers: &HeaderMap, query: Option<&str>, token: &str) -> bool {
    if crate::rest::authorized(headers, token) {
        return true;
    }
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("auth="))
        .any(|given| crate::rest::constant_time_eq(given, token))
}
