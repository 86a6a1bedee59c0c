//! The zerotier-one controller JSON (PROTOCOL.md §7.4, §9.2): records as `GET
//! /controller/network/<nwid>[/member/<addr>]` returns them, and POST bodies as partial updates.
//!
//! Output has the reference's field names, defaults and value shapes (keys come out sorted, as
//! nlohmann's do). Input is read field by field, so an error names the field
//! (`ipAssignmentPools[1].ipRangeEnd: ...`); unknown fields are ignored, as the reference does.
//! Features this controller does not implement (custom rules, capabilities, tags, SSO) are
//! refused when a body asks for them, rather than accepted and silently not enforced.
use std::net::IpAddr;

use serde_json::{json, Map, Value};
use zt_crypto::Address;

use crate::error::ModelError;
use crate::model::{
    format_network_id, parse_ip, parse_network_id, AuthorizedBy, ClientVersion, Dns, IpPool,
    IpPrefix, Member, Network, Route,
};
use crate::patch::{MemberPatch, NetworkPatch};

// ----- output ---------------------------------------------------------------------------------

/// A network record in the reference's JSON form.
pub fn network_to_json(n: &Network) -> Value {
    let id = format_network_id(n.id);
    let auth_tokens = if n.auth_tokens.is_empty() {
        // `DB::initNetwork` default: nlohmann's `{{}}`, which is an array holding one null.
        json!([null])
    } else {
        Value::Object(
            n.auth_tokens
                .iter()
                .map(|(t, e)| (t.clone(), json!(e)))
                .collect(),
        )
    };
    let dns = if n.dns.domain.is_empty() && n.dns.servers.is_empty() {
        json!([])
    } else {
        json!({"domain": n.dns.domain, "servers": n.dns.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>()})
    };
    let mut v = json!({
        "authTokens": auth_tokens,
        "authorizationEndpoint": "",
        "capabilities": [],
        "clientId": "",
        "creationTime": n.creation_time,
        "dns": dns,
        "enableBroadcast": n.enable_broadcast,
        "id": id,
        "ipAssignmentPools": n.pools.iter().map(|p| json!({
            "ipRangeStart": p.start.to_string(),
            "ipRangeEnd": p.end.to_string(),
        })).collect::<Vec<_>>(),
        "mtu": n.mtu,
        "multicastLimit": n.multicast_limit,
        "name": n.name,
        "nwid": id,
        "objtype": "network",
        "private": n.private,
        "remoteTraceLevel": n.remote_trace_level,
        "remoteTraceTarget": n.remote_trace_target.map(|a| a.to_string()),
        "revision": n.revision,
        "routes": n.routes.iter().map(|r| json!({
            "target": r.target.to_string(),
            "via": r.via.map(|v| v.to_string()),
        })).collect::<Vec<_>>(),
        "rules": [{"not": false, "or": false, "type": "ACTION_ACCEPT"}],
        "rulesSource": "",
        "ssoEnabled": false,
        "tags": [],
        "v4AssignMode": {"zt": n.v4_assign},
        "v6AssignMode": {"6plane": n.v6_assign.sixplane, "rfc4193": n.v6_assign.rfc4193, "zt": n.v6_assign.zt},
    });
    if let (Some(window), Value::Object(map)) = (n.credential_window_ms, &mut v) {
        map.insert("certificateTimeoutWindowSize".into(), json!(window));
    }
    v
}

/// A member record in the reference's JSON form.
pub fn member_to_json(m: &Member) -> Value {
    let address = m.address.to_string();
    let v = m.version;
    let mut out = json!({
        "activeBridge": m.active_bridge,
        "address": address,
        "authenticationExpiryTime": 0,
        "authorized": m.authorized,
        "capabilities": [],
        "creationTime": m.creation_time,
        "id": address,
        "ipAssignments": m.ip_assignments.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        "lastAuthorizedCredential": m.authorized_credential,
        "lastAuthorizedCredentialType": m.authorized_by.map(AuthorizedBy::as_str),
        "lastAuthorizedTime": m.last_authorized_time,
        "lastDeauthorizedTime": m.last_deauthorized_time,
        "noAutoAssignIps": m.no_auto_assign_ips,
        "nwid": format_network_id(m.network_id),
        "objtype": "member",
        "remoteTraceLevel": m.remote_trace_level,
        "remoteTraceTarget": m.remote_trace_target.map(|a| a.to_string()),
        "revision": m.revision,
        "ssoExempt": false,
        "tags": [],
        "vMajor": v.map_or(-1, |v| i64::from(v.major)),
        "vMinor": v.map_or(-1, |v| i64::from(v.minor)),
        "vProto": v.map_or(-1, |v| i64::from(v.protocol)),
        "vRev": v.map_or(-1, |v| i64::from(v.revision)),
    });
    if let Value::Object(map) = &mut out {
        if let Some(identity) = &m.identity {
            map.insert("identity".into(), json!(identity));
        }
        if !m.name.is_empty() {
            map.insert("name".into(), json!(m.name));
        }
    }
    out
}

/// `GET /controller/network/<nwid>/member`: `{"<address>": revision, ...}`.
pub fn member_revisions(members: &[Member]) -> Value {
    Value::Object(
        members
            .iter()
            .map(|m| (m.address.to_string(), json!(m.revision)))
            .collect(),
    )
}

/// `GET /controller/network`: the network IDs as 16-hex strings.
pub fn network_list(ids: &[crate::model::NetworkId]) -> Value {
    Value::Array(ids.iter().map(|id| json!(format_network_id(*id))).collect())
}

// ----- input ----------------------------------------------------------------------------------

/// A POST body for `/controller/network/<nwid>`, as a patch. Read-only fields (`id`, `nwid`,
/// `creationTime`, `revision`, `objtype`) are ignored.
pub fn network_patch_from_json(body: &Value) -> Result<NetworkPatch, ModelError> {
    let o = object(body, "network")?;
    let mut p = NetworkPatch {
        name: opt_string(o, "name")?,
        private: opt_bool(o, "private")?,
        enable_broadcast: opt_bool(o, "enableBroadcast")?,
        mtu: opt_u32(o, "mtu")?,
        multicast_limit: opt_u32(o, "multicastLimit")?,
        remote_trace_level: opt_u32(o, "remoteTraceLevel")?,
        remote_trace_target: opt_nullable_address(o, "remoteTraceTarget")?,
        ..NetworkPatch::default()
    };
    if let Some(v) = present(o, "v4AssignMode") {
        p.v4_assign = Some(match v {
            Value::String(s) => s.split(',').any(|m| m.trim() == "zt"),
            Value::Object(m) => opt_bool(m, "zt")?.unwrap_or(false),
            _ => {
                return Err(bad(
                    "v4AssignMode",
                    v,
                    "expected an object like {\"zt\": true}",
                ))
            }
        });
    }
    if let Some(v) = present(o, "v6AssignMode") {
        match v {
            Value::String(s) => {
                let modes: Vec<&str> = s.split(',').map(str::trim).collect();
                p.v6_assign_zt = Some(modes.contains(&"zt"));
                p.v6_assign_rfc4193 = Some(modes.contains(&"rfc4193"));
                p.v6_assign_sixplane = Some(modes.contains(&"6plane"));
            }
            Value::Object(m) => {
                p.v6_assign_zt = opt_bool(m, "zt")?;
                p.v6_assign_rfc4193 = opt_bool(m, "rfc4193")?;
                p.v6_assign_sixplane = opt_bool(m, "6plane")?;
            }
            _ => {
                return Err(bad(
                    "v6AssignMode",
                    v,
                    "expected an object like {\"rfc4193\": true}",
                ))
            }
        }
    }
    if let Some(v) = present(o, "ipAssignmentPools") {
        let mut pools = Vec::new();
        for (i, item) in array(v, "ipAssignmentPools")?.iter().enumerate() {
            let field = format!("ipAssignmentPools[{i}]");
            let po = object(item, &field)?;
            let start = req_ip(po, "ipRangeStart", &field)?;
            let end = req_ip(po, "ipRangeEnd", &field)?;
            pools.push(IpPool { start, end });
        }
        p.pools = Some(pools);
    }
    if let Some(v) = present(o, "routes") {
        let mut routes = Vec::new();
        for (i, item) in array(v, "routes")?.iter().enumerate() {
            let field = format!("routes[{i}]");
            let ro = object(item, &field)?;
            let target = match ro.get("target") {
                Some(Value::String(s)) if s.contains('/') => s
                    .parse::<IpPrefix>()
                    .map_err(|e| ModelError::Json(format!("{field}.target: {e}")))?,
                other => {
                    return Err(ModelError::Json(format!(
                        "{field}.target: expected \"address/bits\", got {}",
                        other.unwrap_or(&Value::Null)
                    )))
                }
            };
            let via = match ro.get("via") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(
                    parse_ip(s, "via")
                        .map_err(|e| ModelError::Json(format!("{field}.via: {e}")))?,
                ),
                Some(other) => {
                    return Err(bad(
                        &format!("{field}.via"),
                        other,
                        "expected an address or null",
                    ))
                }
            };
            routes.push(Route { target, via });
        }
        p.routes = Some(routes);
    }
    if let Some(v) = present(o, "dns") {
        p.dns = Some(match v {
            Value::Array(a) if a.is_empty() => Dns::default(),
            Value::Object(d) => Dns {
                domain: opt_string(d, "domain")?.unwrap_or_default(),
                servers: match present(d, "servers") {
                    None => Vec::new(),
                    Some(s) => array(s, "dns.servers")?
                        .iter()
                        .enumerate()
                        .map(|(i, s)| ip_value(s, &format!("dns.servers[{i}]")))
                        .collect::<Result<_, _>>()?,
                },
            },
            _ => {
                return Err(bad(
                    "dns",
                    v,
                    "expected {\"domain\": ..., \"servers\": [...]}",
                ))
            }
        });
    }
    if let Some(v) = present(o, "authTokens") {
        p.auth_tokens = Some(match v {
            Value::Array(a) if a.iter().all(Value::is_null) => Vec::new(),
            Value::Object(m) => m
                .iter()
                .map(|(t, e)| match e.as_u64() {
                    Some(e) => Ok((t.clone(), e)),
                    None => Err(bad(
                        &format!("authTokens.{t}"),
                        e,
                        "expected an expiry time in ms (0 = never)",
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("authTokens", v, "expected {\"<token>\": expiryMs}")),
        });
    }
    if let Some(v) = present(o, "rules") {
        let accept_all = matches!(v, Value::Array(a) if a.len() == 1 && is_plain_accept(&a[0]));
        if !accept_all {
            return Err(ModelError::Unsupported(
                "rules other than the default single ACTION_ACCEPT".into(),
            ));
        }
    }
    for field in ["capabilities", "tags"] {
        if let Some(v) = present(o, field) {
            if !matches!(v, Value::Array(a) if a.is_empty()) {
                return Err(ModelError::Unsupported(format!("network {field}")));
            }
        }
    }
    if opt_bool(o, "ssoEnabled")? == Some(true) {
        return Err(ModelError::Unsupported(
            "single sign-on (ssoEnabled)".into(),
        ));
    }
    Ok(p)
}

/// A stored network record (e.g. a zerotier-one `controller.d` file) as a [`Network`].
pub fn network_from_json(record: &Value) -> Result<Network, ModelError> {
    let o = object(record, "network")?;
    let id = match o.get("id").or_else(|| o.get("nwid")) {
        Some(Value::String(s)) => parse_network_id(s)?,
        _ => {
            return Err(ModelError::Json(
                "id: expected a 16-hex-digit network id".into(),
            ))
        }
    };
    let mut network = network_patch_from_json(record)?
        .apply(&Network::new(id, opt_i64(o, "creationTime")?.unwrap_or(0)))?;
    network.revision = opt_u64(o, "revision")?.unwrap_or(0);
    network.credential_window_ms = opt_u64(o, "certificateTimeoutWindowSize")?;
    Ok(network)
}

/// A POST body for `/controller/network/<nwid>/member/<addr>`, as a patch.
pub fn member_patch_from_json(body: &Value) -> Result<MemberPatch, ModelError> {
    let o = object(body, "member")?;
    let ip_assignments = match present(o, "ipAssignments") {
        None => None,
        Some(v) => Some(
            array(v, "ipAssignments")?
                .iter()
                .enumerate()
                .map(|(i, s)| ip_value(s, &format!("ipAssignments[{i}]")))
                .collect::<Result<Vec<IpAddr>, _>>()?,
        ),
    };
    for field in ["capabilities", "tags"] {
        if let Some(v) = present(o, field) {
            if !matches!(v, Value::Array(a) if a.is_empty()) {
                return Err(ModelError::Unsupported(format!("member {field}")));
            }
        }
    }
    Ok(MemberPatch {
        authorized: opt_bool(o, "authorized")?,
        active_bridge: opt_bool(o, "activeBridge")?,
        no_auto_assign_ips: opt_bool(o, "noAutoAssignIps")?,
        ip_assignments,
        name: opt_string(o, "name")?,
        remote_trace_target: opt_nullable_address(o, "remoteTraceTarget")?,
        remote_trace_level: opt_u32(o, "remoteTraceLevel")?,
        ..MemberPatch::default()
    })
}

/// A stored member record as a [`Member`].
pub fn member_from_json(record: &Value) -> Result<Member, ModelError> {
    let o = object(record, "member")?;
    let nwid = match o.get("nwid") {
        Some(Value::String(s)) => parse_network_id(s)?,
        _ => {
            return Err(ModelError::Json(
                "nwid: expected a 16-hex-digit network id".into(),
            ))
        }
    };
    let address = match o.get("address").or_else(|| o.get("id")) {
        Some(Value::String(s)) => parse_address(s)?,
        _ => return Err(ModelError::Json("address: expected 10 hex digits".into())),
    };
    let mut m = Member::new(nwid, address, opt_i64(o, "creationTime")?.unwrap_or(0));
    let patch = member_patch_from_json(record)?;
    // The patch's validation needs a network only for the routed-address check, which is off.
    m = patch.apply(&m, &Network::new(nwid, 0))?;
    m.identity = opt_string(o, "identity")?.filter(|s| !s.is_empty());
    m.revision = opt_u64(o, "revision")?.unwrap_or(0);
    m.last_authorized_time = opt_i64(o, "lastAuthorizedTime")?.unwrap_or(0);
    m.last_deauthorized_time = opt_i64(o, "lastDeauthorizedTime")?.unwrap_or(0);
    m.authorized_by = match opt_string(o, "lastAuthorizedCredentialType")?.as_deref() {
        None => None,
        Some("api") => Some(AuthorizedBy::Api),
        Some("public") => Some(AuthorizedBy::Public),
        Some("token") => Some(AuthorizedBy::Token),
        Some(other) => {
            return Err(ModelError::Json(format!(
            "lastAuthorizedCredentialType: unknown type {other:?} (expected api, public or token)"
        )))
        }
    };
    m.authorized_credential = opt_string(o, "lastAuthorizedCredential")?;
    let version_part = |k: &str| -> Result<Option<u32>, ModelError> {
        Ok(opt_i64(o, k)?.and_then(|v| u32::try_from(v).ok()))
    };
    m.version = match (
        version_part("vMajor")?,
        version_part("vMinor")?,
        version_part("vRev")?,
        version_part("vProto")?,
    ) {
        (Some(major), Some(minor), Some(revision), Some(protocol)) => Some(ClientVersion {
            major,
            minor,
            revision,
            protocol,
        }),
        _ => None,
    };
    Ok(m)
}

fn is_plain_accept(rule: &Value) -> bool {
    let Value::Object(r) = rule else { return false };
    r.get("type") == Some(&json!("ACTION_ACCEPT"))
        && r.get("not").unwrap_or(&Value::Bool(false)) == &Value::Bool(false)
        && r.get("or").unwrap_or(&Value::Bool(false)) == &Value::Bool(false)
}

fn parse_address(s: &str) -> Result<Address, ModelError> {
    s.parse()
        .map_err(|_| ModelError::InvalidAddress(s.to_string()))
}

fn bad(field: &str, got: &Value, expected: &str) -> ModelError {
    ModelError::Json(format!("{field}: {expected}, got {got}"))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ModelError> {
    v.as_object()
        .ok_or_else(|| bad(what, v, "expected a JSON object"))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, ModelError> {
    v.as_array()
        .ok_or_else(|| bad(what, v, "expected an array"))
}

/// A field that is present and not null.
fn present<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn opt_bool(o: &Map<String, Value>, k: &str) -> Result<Option<bool>, ModelError> {
    present(o, k)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| bad(k, v, "expected true or false"))
        })
        .transpose()
}

fn opt_string(o: &Map<String, Value>, k: &str) -> Result<Option<String>, ModelError> {
    present(o, k)
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(k, v, "expected a string"))
        })
        .transpose()
}

fn opt_u64(o: &Map<String, Value>, k: &str) -> Result<Option<u64>, ModelError> {
    present(o, k)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| bad(k, v, "expected a non-negative integer"))
        })
        .transpose()
}

fn opt_i64(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, ModelError> {
    present(o, k)
        .map(|v| v.as_i64().ok_or_else(|| bad(k, v, "expected an integer")))
        .transpose()
}

fn opt_u32(o: &Map<String, Value>, k: &str) -> Result<Option<u32>, ModelError> {
    opt_u64(o, k)?
        .map(|v| u32::try_from(v).map_err(|_| ModelError::Json(format!("{k}: {v} is too large"))))
        .transpose()
}

/// Absent → no change; null or "" → cleared; a 10-hex string → set.
fn opt_nullable_address(
    o: &Map<String, Value>,
    k: &str,
) -> Result<Option<Option<Address>>, ModelError> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(parse_address(s)?))),
        Some(v) => Err(bad(k, v, "expected a 10-hex-digit address or null")),
    }
}

fn ip_value(v: &Value, field: &str) -> Result<IpAddr, ModelError> {
    match v {
        // The reference stores plain addresses; tolerate an "/bits" suffix from hand-written files.
        Value::String(s) => parse_ip(s.split('/').next().unwrap_or(s), "address")
            .map_err(|e| ModelError::Json(format!("{field}: {e}"))),
        _ => Err(bad(field, v, "expected an address string")),
    }
}

fn req_ip(o: &Map<String, Value>, k: &str, parent: &str) -> Result<IpAddr, ModelError> {
    match o.get(k) {
        Some(v) => ip_value(v, &format!("{parent}.{k}")),
        None => Err(ModelError::Json(format!("{parent}.{k}: missing"))),
    }
}
