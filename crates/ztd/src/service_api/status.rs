//! `GET /health` and `GET /status`.
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{authorized, clock_ms, default_instance, version_fields};
use crate::daemon::Daemon;

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
    body.insert(
        "tcpFallbackActive".into(),
        json!(instance.tcp_fallback_active),
    );
    if let Some((id, timestamp)) = instance.planet {
        body.insert("planetWorldId".into(), json!(id));
        body.insert("planetWorldTimestamp".into(), json!(timestamp));
    }
    version_fields(&mut body);
    body.insert("clock".into(), json!(clock_ms()));
    body.insert(
        "config".into(),
        json!({
            "settings": {
                "primaryPort": instance.primary_port,
                "secondaryPort": instance.secondary_port,
                // 0 when none is bound (port mapping off), as zerotier-one shows it then.
                "tertiaryPort": instance.tertiary_port.unwrap_or(0),
                "allowTcpFallbackRelay": daemon.tcp_fallback().allowed,
                "forceTcpRelay": daemon.tcp_fallback().forced,
                "portMappingEnabled": instance.port_mapping,
                "softwareUpdate": "disable",
                "softwareUpdateChannel": "release",
                "homeDir": daemon.state_dir().root().display().to_string(),
                "listeningOn": instance.listening_on,
                "surfaceAddresses": instance.surface_addresses,
            }
        }),
    );
    axum::Json(Value::Object(body)).into_response()
}
