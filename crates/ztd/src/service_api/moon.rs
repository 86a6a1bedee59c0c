//! `/moon`: list, orbit (`POST /moon/<16-hex>` `{"seed":"<10-hex>"}`) and deorbit
//! (`DELETE /moon/<16-hex>`), as zerotier-one's API (PROTOCOL.md §5.4, §9.2). Accepted moons
//! are saved to `moons.d/` by the engine when the node reports them; deorbit deletes the file.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use zt_node::{Address, World};

use super::{default_handle, in_time, require_auth};
use crate::daemon::Daemon;
use crate::runtime::commands::MoonSource;
use crate::runtime::node_engine::WorldFiles;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A moon object.
pub fn moon_json(world: &World) -> Value {
    let roots: Vec<Value> = world
        .roots
        .iter()
        .map(|r| {
            json!({
                "identity": r.identity.to_public_string(),
                "stableEndpoints": r.stable_endpoints.iter().filter_map(|e| e.socket_addr()).map(|a| format!("{}/{}", a.ip(), a.port())).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": format!("{:016x}", world.id),
        "timestamp": world.timestamp,
        "signature": hex(&world.signature),
        "updatesMustBeSignedBy": hex(&world.updates_must_be_signed_by),
        "roots": roots,
        "waiting": false,
    })
}

/// The answer for a moon being orbited but not yet received.
fn waiting_json(id: u64) -> Value {
    json!({
        "id": format!("{id:016x}"),
        "roots": [],
        "timestamp": 0,
        "signature": null,
        "updatesMustBeSignedBy": null,
        "waiting": true,
    })
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

fn parse_id(id: &str) -> Option<u64> {
    (id.len() <= 16)
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

/// `GET /moon`.
pub async fn list(
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
    match in_time(node.moons()).await {
        Ok(moons) => {
            axum::Json(Value::Array(moons.iter().map(moon_json).collect())).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /moon/<id>` (404 when not orbited).
pub async fn one(
    State(daemon): State<Arc<Daemon>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_id(&id) else {
        return bad_request("moon id must be 16 hex digits");
    };
    let node = match default_handle(&daemon).await {
        Ok(node) => node,
        Err(r) => return r,
    };
    match in_time(node.moons())
        .await
        .map(|moons| moons.into_iter().find(|m| m.id == id))
    {
        Ok(Some(moon)) => axum::Json(moon_json(&moon)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, axum::Json(json!({}))).into_response(),
        Err(r) => r,
    }
}

/// `POST /moon/<id>` with `{"seed": "<10-hex>"}`: a moon file already in `moons.d/` is
/// loaded; otherwise the seed is contacted and the moon arrives in its OK(HELLO).
pub async fn orbit(
    State(daemon): State<Arc<Daemon>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_id(&id) else {
        return bad_request("moon id must be 16 hex digits");
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return bad_request("body is not JSON"),
        }
    };
    let seed = match body.get("seed").and_then(Value::as_str) {
        Some(text) => match text.parse::<Address>() {
            Ok(a) => Some(a),
            Err(_) => return bad_request("seed must be a 10-hex ZeroTier address"),
        },
        None => None,
    };
    let cached = match default_worlds(&daemon).await {
        Some(worlds) => worlds.load_moons().into_iter().find(|m| m.id == id),
        None => None,
    };
    let source = match (cached, seed) {
        (Some(moon), _) => MoonSource::Cached(Box::new(moon)),
        (None, Some(seed)) => MoonSource::Seed(seed),
        (None, None) => return bad_request("no cached moon with that id: give a seed"),
    };
    let node = match default_handle(&daemon).await {
        Ok(node) => node,
        Err(r) => return r,
    };
    match in_time(node.orbit(id, source)).await {
        Ok(Some(moon)) => axum::Json(moon_json(&moon)).into_response(),
        Ok(None) => axum::Json(waiting_json(id)).into_response(),
        Err(r) => r,
    }
}

/// `DELETE /moon/<id>`: stop orbiting and delete the cached file.
pub async fn deorbit(
    State(daemon): State<Arc<Daemon>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_id(&id) else {
        return bad_request("moon id must be 16 hex digits");
    };
    let node = match default_handle(&daemon).await {
        Ok(node) => node,
        Err(r) => return r,
    };
    let removed = match in_time(node.deorbit(id)).await {
        Ok(removed) => removed,
        Err(r) => return r,
    };
    if let Some(worlds) = default_worlds(&daemon).await {
        if let Err(e) = worlds.delete_moon(id) {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    }
    axum::Json(json!({"result": removed})).into_response()
}

/// Where the default instance's moons are.
async fn default_worlds(daemon: &Daemon) -> Option<WorldFiles> {
    let model = daemon.lock().await;
    let (_, config) = model.instances.iter().find(|(_, c)| c.default)?;
    Some(WorldFiles {
        instance_dir: daemon.state_dir().instance_dir(&config.name).ok()?,
        home: Some(daemon.state_dir().root().to_path_buf()),
    })
}
