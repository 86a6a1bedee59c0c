//! `/network`: the default instance's joined networks as zerotier-one shows them
//! (PROTOCOL.md §9.2 network object). Joining and leaving here is the same as adding and
//! removing a `/zerotier/interface` item on the default instance, so both views agree.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use zt_console::values::Value as PropertyValue;
use zt_node::NetworkInfo;
use zt_wire::netconf::NetworkType;
use zt_wire::network_id::NetworkId;
use zt_wire::verbs::multicast::MulticastGroup;

use super::{default_handle, in_time, require_auth};
use crate::daemon::Daemon;
use crate::menu::{Args, CommandError};

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn parse_nwid(text: &str) -> Option<u64> {
    text.parse::<NetworkId>().ok().map(|id| id.0)
}

/// One interface of the default instance with what the node knows about its network.
struct Joined {
    interface: crate::menus::interface::InterfaceConfig,
    port_error: bool,
    info: Option<NetworkInfo>,
}

/// The default instance's interfaces (optionally only `nwid`), with node data.
async fn joined(daemon: &Daemon, only: Option<u64>) -> Result<Vec<Joined>, Response> {
    let infos = in_time(default_handle(daemon).await?.networks()).await?;
    let model = daemon.lock().await;
    let Some(default) = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .map(|(_, c)| c.name.clone())
    else {
        return Ok(Vec::new());
    };
    Ok(model
        .interfaces
        .table
        .iter()
        .filter(|(_, c)| c.instance == default && !c.disabled)
        .filter(|(_, c)| only.is_none_or(|n| parse_nwid(&c.network) == Some(n)))
        .map(|(id, c)| Joined {
            interface: c.clone(),
            port_error: model.interfaces.errors.contains_key(&id),
            info: infos
                .iter()
                .find(|i| Some(i.nwid.0) == parse_nwid(&c.network))
                .cloned(),
        })
        .collect())
}

fn network_json(j: &Joined) -> Value {
    let c = &j.interface;
    let info = j.info.as_ref();
    let addresses: Vec<String> = info
        .map(|i| {
            i.assigned_addresses
                .iter()
                .filter_map(|a| a.ip().map(|ip| format!("{ip}/{}", a.port())))
                .collect()
        })
        .unwrap_or_default();
    let routes: Vec<Value> = info
        .map(|i| {
            i.routes
                .iter()
                .map(|r| {
                    json!({
                        "target": r.target.ip().map(|ip| format!("{ip}/{}", r.target.port())),
                        "via": r.via.ip().filter(|v| !v.is_unspecified()).map(|v| v.to_string()),
                        "flags": r.flags,
                        "metric": r.metric,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let status = if j.port_error {
        "PORT_ERROR"
    } else {
        info.map_or("REQUESTING_CONFIGURATION", |i| i.status.name())
    };
    json!({
        "id": c.network,
        "nwid": c.network,
        "mac": info.map(|i| i.mac.to_string().to_lowercase()),
        "name": info.map_or(String::new(), |i| i.name.clone()),
        "status": status,
        "type": match info.and_then(|i| i.network_type) {
            Some(NetworkType::Public) => "PUBLIC",
            _ => "PRIVATE",
        },
        "mtu": info.map_or(zt_wire::netconf::DEFAULT_MTU, |i| i.mtu),
        "dhcp": false,
        "bridge": false,
        "broadcastEnabled": info.is_some_and(|i| i.broadcast),
        "portError": if j.port_error { -1 } else { 0 },
        "netconfRevision": info.map_or(0, |i| i.netconf_revision),
        "portDeviceName": c.name,
        "allowManaged": c.allow_managed,
        "allowGlobal": c.allow_global,
        "allowDefault": c.allow_default,
        "allowDNS": c.allow_dns,
        "assignedAddresses": addresses,
        "routes": routes,
        "multicastSubscriptions": multicast_subscriptions_json(
            info.map_or(&[], |i| i.multicast_subscriptions.as_slice())
        ),
        "dns": dns_json(info.map(|i| &i.dns)),
    })
}

/// zerotier-one's `dns`: the pushed search domain and server addresses (empty before a
/// config, and whether or not `allowDNS` applies them).
fn dns_json(dns: Option<&zt_wire::netconf::Dns>) -> Value {
    let servers: Vec<String> = dns
        .map(|d| {
            d.servers
                .iter()
                .filter_map(|s| s.ip())
                .map(|ip| ip.to_string())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "domain": dns.map_or("", |d| d.domain.as_str()),
        "servers": servers,
    })
}

/// zerotier-one's `multicastSubscriptions`: one `{"mac": "33:33:00:00:00:01", "adi": 0}`
/// per group the tap listens to (lower-case MAC, ADI as a number).
fn multicast_subscriptions_json(groups: &[MulticastGroup]) -> Value {
    groups
        .iter()
        .map(|g| json!({ "mac": g.mac.to_string(), "adi": g.adi }))
        .collect()
}

/// The item of `nwid` on the default instance (`Err` carries the default instance's name,
/// `None` if there is none).
async fn find_item(daemon: &Daemon, nwid: u64) -> Result<crate::model::ItemId, Option<String>> {
    let model = daemon.lock().await;
    let default = model
        .instances
        .iter()
        .find(|(_, c)| c.default)
        .map(|(_, c)| c.name.clone());
    let found = model
        .interfaces
        .table
        .iter()
        .find(|(_, c)| {
            Some(&c.instance) == default.as_ref() && parse_nwid(&c.network) == Some(nwid)
        })
        .map(|(item, _)| item);
    found.ok_or(default)
}

/// `GET /network`.
pub async fn list(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    match joined(&daemon, None).await {
        Ok(list) => {
            axum::Json(Value::Array(list.iter().map(network_json).collect())).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /network/<nwid>`.
pub async fn one(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_nwid(&nwid) else {
        return error(StatusCode::NOT_FOUND, "no such network");
    };
    match joined(&daemon, Some(id)).await {
        Ok(list) => match list.first() {
            Some(j) => axum::Json(network_json(j)).into_response(),
            None => error(StatusCode::NOT_FOUND, "no such network"),
        },
        Err(r) => r,
    }
}

/// `POST`/`PUT /network/<nwid>`: join (or change the local settings of) a network on the
/// default instance.
pub async fn join(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_nwid(&nwid) else {
        return error(StatusCode::BAD_REQUEST, "invalid network ID");
    };
    let settings: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "invalid JSON"),
        }
    };
    let mut args = Args::new();
    for (key, property) in [
        ("allowManaged", "allow-managed"),
        ("allowGlobal", "allow-global"),
        ("allowDefault", "allow-default"),
        ("allowDNS", "allow-dns"),
    ] {
        // zerotier-one reads these leniently (`true`, a number > 0, "1", "true").
        if let Some(v) = settings
            .get(key)
            .and_then(zt_controller::lenient::json_bool)
        {
            args.insert(property, PropertyValue::Bool(v));
        }
    }
    let existing = find_item(&daemon, id).await;
    let result = match existing {
        Ok(item) => daemon.interface_set(item, args).await,
        Err(Some(default)) => {
            args.insert("network", PropertyValue::NetworkId(NetworkId(id)));
            args.insert("instance", PropertyValue::Text(default));
            daemon.interface_add(args).await.map(|_| ())
        }
        Err(None) => Err(CommandError::refused("no default instance")),
    };
    if let Err(e) = result {
        return error(StatusCode::BAD_REQUEST, &e.to_string());
    }
    match joined(&daemon, Some(id)).await {
        Ok(list) => match list.first() {
            Some(j) => axum::Json(network_json(j)).into_response(),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "network not joined"),
        },
        Err(r) => r,
    }
}

/// `DELETE /network/<nwid>`: leave.
pub async fn leave(
    State(daemon): State<Arc<Daemon>>,
    Path(nwid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = require_auth(&daemon, &headers, query.as_deref()) {
        return r;
    }
    let Some(id) = parse_nwid(&nwid) else {
        return error(StatusCode::NOT_FOUND, "no such network");
    };
    let item = find_item(&daemon, id).await.ok();
    let Some(item) = item else {
        return axum::Json(json!({ "result": false })).into_response();
    };
    match daemon.interface_remove(item).await {
        Ok(()) => axum::Json(json!({ "result": true })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_subscriptions_have_zerotier_ones_shape() {
        let groups = [
            MulticastGroup {
                mac: "33:33:00:00:00:01".parse().unwrap(),
                adi: 0,
            },
            MulticastGroup {
                mac: zt_wire::mac::Mac::BROADCAST,
                adi: 0x0a93_1105,
            },
        ];
        assert_eq!(
            multicast_subscriptions_json(&groups),
            json!([
                { "mac": "33:33:00:00:00:01", "adi": 0 },
                { "mac": "ff:ff:ff:ff:ff:ff", "adi": 177_410_309u32 },
            ])
        );
        assert_eq!(multicast_subscriptions_json(&[]), json!([]));
    }
}
