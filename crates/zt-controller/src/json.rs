//! The zerotier-one controller JSON (PROTOCOL.md §7.4, §9.2): records as `GET
//! /controller/network/<nwid>[/member/<addr>]` returns them, and POST bodies as partial updates.
//!
//! Output has the reference's field names, defaults and value shapes (keys come out sorted, as
//! nlohmann's do).
//!
//! Input is read the way zerotier-one reads it (`networkUpdateFromPostData` and the member POST
//! handler of `EmbeddedNetworkController.cpp`), because the UIs built for it (ztncui, zero-ui,
//! ZTNet) send what it accepts and some crash on a 4xx:
//! - scalars through [`crate::lenient`]: `"true"`, `1` and `"1"` are booleans, `"32"` is a
//!   number; a value of the wrong kind falls back to the reference's default for that field;
//! - `mtu` is clamped to 1280..10000 and `multicastLimit` to what fits, not refused;
//! - an array entry that cannot be used (a route without a valid target, a pool whose ends are
//!   of different families, an address that does not parse) is left out and the rest is kept;
//!   each one left out is named in [`JsonInput::ignored`], for the caller to log;
//! - unknown fields are ignored.
//!
//! Rules, capabilities and tags are stored and enforced ([`crate::rules_json`]). A `rulesSource`
//! posted without `rules` is compiled ([`crate::rules_language`]) into rules, capabilities and
//! tags (those posted alongside win). What is refused with an error: text that does not compile
//! (the message names line and column), a rule that cannot be read (see `rules_json` for why),
//! values no config could carry (a name over 127 bytes, more than 1024 rules), and single
//! sign-on, which this controller does not implement.
use std::net::IpAddr;

use serde_json::{json, Map, Value};
use zt_crypto::Address;

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::lenient::{json_bool, json_int, json_string};
use crate::model::{
    format_network_id, parse_network_id, AuthorizedBy, CapabilityDef, ClientVersion, Dns, IpPool,
    IpPrefix, Member, Network, Route, TagDef, MAX_ASSIGNED_IPS, MAX_DNS_SERVERS, MAX_MTU,
    MAX_POOLS, MAX_ROUTES, MIN_MTU,
};
use crate::patch::{MemberPatch, NetworkPatch};
use crate::rules_json::{rules_from_json, rules_to_json};

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
        "capabilities": n.capabilities.iter().map(|c| json!({
            "default": c.default,
            "id": c.id,
            "rules": rules_to_json(&c.rules),
        })).collect::<Vec<_>>(),
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
        "rules": network_rules_json(n),
        "rulesSource": n.rules_source,
        "ssoEnabled": false,
        "tags": n.tags.iter().map(|t| json!({"default": t.default, "id": t.id})).collect::<Vec<_>>(),
        "v4AssignMode": {"zt": n.v4_assign},
        "v6AssignMode": {"6plane": n.v6_assign.sixplane, "rfc4193": n.v6_assign.rfc4193, "zt": n.v6_assign.zt},
    });
    if let (Some(window), Value::Object(map)) = (n.credential_window_ms, &mut v) {
        map.insert("certificateTimeoutWindowSize".into(), json!(window));
    }
    v
}

/// The network's rules. The untouched default reads as `DB::initNetwork` writes it (with `not`
/// and `or` on the ACCEPT); rules that were posted read back in the canonical form.
fn network_rules_json(n: &Network) -> Value {
    match &n.rules {
        None => json!([{"not": false, "or": false, "type": "ACTION_ACCEPT"}]),
        Some(rules) => rules_to_json(rules),
    }
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
        "capabilities": m.capabilities,
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
        "tags": m.tags.iter().map(|(id, value)| json!([id, value])).collect::<Vec<_>>(),
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

/// A POST body read as zerotier-one reads it: the patch to apply, and each array entry that was
/// left out because it could not be used (one line each, naming the entry), for the caller to
/// log. zerotier-one leaves such entries out silently; we say so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonInput<P> {
    pub patch: P,
    pub ignored: Vec<String>,
}

/// A POST body for `/controller/network/<nwid>`, as a patch. Read-only fields (`id`, `nwid`,
/// `creationTime`, `revision`, `objtype`) are ignored, and so is a body that is not an object
/// (zerotier-one changes nothing then either).
pub fn network_patch_from_json(body: &Value) -> Result<JsonInput<NetworkPatch>, ModelError> {
    let o = match body_object(body) {
        Ok(o) => o,
        Err(nothing) => return Ok(nothing),
    };
    let mut ignored = Vec::new();
    let mut p = NetworkPatch::default();
    if let Some(v) = o.get("name") {
        p.name = Some(json_string(v).unwrap_or_default());
    }
    if let Some(v) = o.get("private") {
        p.private = Some(json_bool(v).unwrap_or(true));
    }
    if let Some(v) = o.get("enableBroadcast") {
        p.enable_broadcast = Some(json_bool(v).unwrap_or(false));
    }
    if let Some(v) = o.get("multicastLimit") {
        let limit = json_int(v).unwrap_or(u64::from(crate::model::DEFAULT_MULTICAST_LIMIT));
        p.multicast_limit = Some(u32::try_from(limit).unwrap_or(u32::MAX));
    }
    if let Some(v) = o.get("mtu") {
        // The reference narrows to 32 bits first, then clamps.
        let mtu = json_int(v).unwrap_or(u64::from(crate::model::DEFAULT_MTU)) as u32;
        p.mtu = Some(mtu.clamp(MIN_MTU, MAX_MTU));
    }
    if let Some(v) = o.get("remoteTraceTarget") {
        p.remote_trace_target = Some(trace_target(v, &mut ignored));
    }
    if let Some(v) = o.get("remoteTraceLevel") {
        p.remote_trace_level = Some(saturating_u32(json_int(v).unwrap_or(0)));
    }
    if let Some(v) = o.get("v4AssignMode") {
        p.v4_assign = Some(match v {
            // The legacy form: the string "zt".
            Value::String(s) => s == "zt",
            Value::Object(m) => m.get("zt").and_then(json_bool).unwrap_or(false),
            _ => false,
        });
    }
    if let Some(v) = o.get("v6AssignMode") {
        // The posted object replaces the stored one, so a mode it leaves out is off.
        let (zt, rfc4193, sixplane) = match v {
            Value::String(s) => {
                let modes: Vec<&str> = s.split(',').map(str::trim).collect();
                (
                    modes.contains(&"zt"),
                    modes.contains(&"rfc4193"),
                    modes.contains(&"6plane"),
                )
            }
            Value::Object(m) => {
                let mode = |k: &str| m.get(k).and_then(json_bool).unwrap_or(false);
                (mode("zt"), mode("rfc4193"), mode("6plane"))
            }
            _ => (false, false, false),
        };
        p.v6_assign_zt = Some(zt);
        p.v6_assign_rfc4193 = Some(rfc4193);
        p.v6_assign_sixplane = Some(sixplane);
    }
    if let Some(Value::Array(items)) = o.get("routes") {
        p.routes = Some(routes(items, &mut ignored));
    }
    if let Some(Value::Array(items)) = o.get("ipAssignmentPools") {
        p.pools = Some(pools(items, &mut ignored));
    }
    if let Some(Value::Object(d)) = o.get("dns") {
        p.dns = Some(dns(d, &mut ignored));
    }
    if let Some(v) = o.get("authTokens") {
        p.auth_tokens = Some(auth_tokens(v, &mut ignored));
    }
    if let Some(Value::Array(items)) = o.get("rules") {
        p.rules = Some(Some(rule_list(items, "rules", &mut ignored)?));
    }
    match o.get("rulesSource") {
        // Text alone is compiled here. UIs that compile it themselves post `rules` with it, and
        // those rules win, as zerotier-one reads only them; the text is then kept as given.
        Some(Value::String(source)) if !o.contains_key("rules") => p
            .set_rules_source(source)
            .map_err(|error| ModelError::RulesLanguage {
                property: "rulesSource",
                error,
            })?,
        Some(v) => p.rules_source = Some(json_string(v).unwrap_or_default()),
        None => {}
    }
    if let Some(Value::Array(items)) = o.get("capabilities") {
        p.capabilities = Some(capabilities(items, &mut ignored)?);
    }
    if let Some(Value::Array(items)) = o.get("tags") {
        p.tags = Some(tag_defs(items, &mut ignored));
    }
    if o.get("ssoEnabled").and_then(json_bool) == Some(true) {
        return Err(ModelError::Unsupported(
            "single sign-on (ssoEnabled)".into(),
        ));
    }
    Ok(JsonInput { patch: p, ignored })
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
        .patch
        .apply(&Network::new(id, opt_i64(o, "creationTime")?.unwrap_or(0)))?;
    // zerotier-one writes the default rule set into every record (`DB::initNetwork`); a record
    // that still holds exactly that has never had rules set.
    if o.get("rules") == Some(&json!([{"not": false, "or": false, "type": "ACTION_ACCEPT"}])) {
        network.rules = None;
    }
    network.revision = opt_u64(o, "revision")?.unwrap_or(0);
    network.credential_window_ms = opt_u64(o, "certificateTimeoutWindowSize")?;
    Ok(network)
}

/// A POST body for `/controller/network/<nwid>/member/<addr>`, as a patch.
pub fn member_patch_from_json(body: &Value) -> Result<JsonInput<MemberPatch>, ModelError> {
    let o = match body_object(body) {
        Ok(o) => o,
        Err(nothing) => return Ok(nothing),
    };
    let mut ignored = Vec::new();
    let flag = |k: &str| o.get(k).map(|v| json_bool(v).unwrap_or(false));
    let mut p = MemberPatch {
        authorized: flag("authorized"),
        active_bridge: flag("activeBridge"),
        no_auto_assign_ips: flag("noAutoAssignIps"),
        name: o.get("name").map(|v| json_string(v).unwrap_or_default()),
        remote_trace_level: o
            .get("remoteTraceLevel")
            .map(|v| saturating_u32(json_int(v).unwrap_or(0))),
        ..MemberPatch::default()
    };
    if let Some(v) = o.get("remoteTraceTarget") {
        p.remote_trace_target = Some(trace_target(v, &mut ignored));
    }
    if let Some(Value::Array(items)) = o.get("ipAssignments") {
        p.ip_assignments = Some(member_ips(items, &mut ignored));
    }
    if let Some(Value::Array(items)) = o.get("tags") {
        // `[[id, value], ...]`; a later pair for the same ID wins, and they come out by ID.
        let mut by_id = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Array(pair) if pair.len() == 2 => {
                    let id = json_int(&pair[0]).unwrap_or(0) as u32;
                    let value = json_int(&pair[1]).unwrap_or(0) as u32;
                    by_id.insert(id, value);
                }
                other => ignored.push(format!("tags[{i}]: expected [id, value], got {other}")),
            }
        }
        p.tags = Some(by_id.into_iter().collect());
    }
    if let Some(Value::Array(items)) = o.get("capabilities") {
        let mut ids: Vec<u32> = items
            .iter()
            .map(|v| json_int(v).unwrap_or(0) as u32)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        p.capabilities = Some(ids);
    }
    Ok(JsonInput { patch: p, ignored })
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
    let patch = member_patch_from_json(record)?.patch;
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

/// The body's fields, or (for a body that is not an object) an input that changes nothing and
/// says so.
fn body_object<P: Default>(body: &Value) -> Result<&Map<String, Value>, JsonInput<P>> {
    body.as_object().ok_or_else(|| JsonInput {
        patch: P::default(),
        ignored: vec![format!(
            "body: expected a JSON object, got {body}; nothing changed"
        )],
    })
}

/// `remoteTraceTarget`: 10 hex digits set it; anything else clears it (as the reference does).
fn trace_target(v: &Value, ignored: &mut Vec<String>) -> Option<Address> {
    let text = json_string(v).unwrap_or_default();
    if text.len() != 10 {
        return None;
    }
    match parse_address(&text) {
        Ok(a) => Some(a),
        Err(e) => {
            ignored.push(format!("remoteTraceTarget: {e}; cleared"));
            None
        }
    }
}

fn saturating_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// An address string; a `/bits` suffix (as in a hand-written file) is dropped.
fn ip_text(v: &Value) -> Option<IpAddr> {
    let text = json_string(v)?;
    text.split('/').next()?.trim().parse().ok()
}

fn routes(items: &[Value], ignored: &mut Vec<String>) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let target = match item.get("target") {
            Some(Value::String(s)) if s.contains('/') => s.parse::<IpPrefix>(),
            other => {
                ignored.push(format!(
                    "routes[{i}]: target {} is not \"address/bits\"",
                    other.unwrap_or(&Value::Null)
                ));
                continue;
            }
        };
        let target = match target {
            Ok(t) if t.is_network_address() => t,
            Ok(t) => {
                ignored.push(format!(
                    "routes[{i}]: {t} has host bits set; the network address is {}",
                    t.network()
                ));
                continue;
            }
            Err(e) => {
                ignored.push(format!("routes[{i}]: {e}"));
                continue;
            }
        };
        // A gateway of another family, or none that parses, means "no gateway" (as the
        // reference stores it); the unspecified address would be no gateway either.
        let via = item
            .get("via")
            .and_then(ip_text)
            .filter(|via| via.is_ipv4() == target.is_ipv4() && !via.is_unspecified());
        if out.len() == MAX_ROUTES {
            ignored.push(format!(
                "routes[{i}]: a config carries at most {MAX_ROUTES} routes"
            ));
            continue;
        }
        out.push(Route { target, via });
    }
    out
}

fn pools(items: &[Value], ignored: &mut Vec<String>) -> Vec<IpPool> {
    let mut out: Vec<IpPool> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (Some(start), Some(end)) = (
            item.get("ipRangeStart").and_then(ip_text),
            item.get("ipRangeEnd").and_then(ip_text),
        ) else {
            ignored.push(format!(
                "ipAssignmentPools[{i}]: expected {{\"ipRangeStart\": address, \"ipRangeEnd\": address}}, got {item}"
            ));
            continue;
        };
        let pool = IpPool { start, end };
        let problem = if start.is_ipv4() != end.is_ipv4() {
            Some("first and last address are of different families".to_string())
        } else if crate::model::ip_to_u128(start) > crate::model::ip_to_u128(end) {
            Some("the first address is above the last".to_string())
        } else if start.is_unspecified() {
            Some("it may not start at the unspecified address".to_string())
        } else if let Some(other) = out.iter().find(|p| p.overlaps(&pool)) {
            Some(format!("it overlaps {other}"))
        } else if out.len() == MAX_POOLS {
            Some(format!("at most {MAX_POOLS} ranges are kept"))
        } else {
            None
        };
        match problem {
            Some(why) => ignored.push(format!("ipAssignmentPools[{i}] {pool}: {why}")),
            None => out.push(pool),
        }
    }
    out
}

fn dns(d: &Map<String, Value>, ignored: &mut Vec<String>) -> Dns {
    let mut servers = Vec::new();
    if let Some(Value::Array(items)) = d.get("servers") {
        for (i, item) in items.iter().enumerate() {
            match ip_text(item) {
                Some(ip) if servers.len() < MAX_DNS_SERVERS => servers.push(ip),
                Some(ip) => ignored.push(format!(
                    "dns.servers[{i}] {ip}: a config carries at most {MAX_DNS_SERVERS} servers"
                )),
                None => ignored.push(format!("dns.servers[{i}]: {item} is not an address")),
            }
        }
    }
    Dns {
        domain: d.get("domain").and_then(json_string).unwrap_or_default(),
        servers,
    }
}

fn auth_tokens(v: &Value, ignored: &mut Vec<String>) -> Vec<(String, u64)> {
    let Value::Object(m) = v else {
        // The reference resets the tokens when they are not an object.
        return Vec::new();
    };
    m.iter()
        .filter_map(|(token, expiry)| match expiry.as_u64() {
            Some(e) => Some((token.clone(), e)),
            None => {
                ignored.push(format!(
                    "authTokens.{token}: {expiry} is not an expiry time in ms (0 = never)"
                ));
                None
            }
        })
        .collect()
}

/// A rule list: entries that are not objects are skipped (as the reference does); an object
/// that is not a readable rule fails the list (see [`crate::rules_json`]).
fn rule_list(
    items: &[Value],
    what: &str,
    ignored: &mut Vec<String>,
) -> Result<Vec<zt_wire::rules::Rule>, ModelError> {
    let mut objects = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.is_object() {
            objects.push(item.clone());
        } else {
            ignored.push(format!("{what}[{i}]: {item} is not a rule object"));
        }
    }
    rules_from_json(&objects, what).map_err(ModelError::Json)
}

/// `capabilities: [{id, default, rules}]`, by ID (a later one with the same ID wins).
fn capabilities(
    items: &[Value],
    ignored: &mut Vec<String>,
) -> Result<Vec<CapabilityDef>, ModelError> {
    let mut by_id = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(c) = item else {
            ignored.push(format!("capabilities[{i}]: {item} is not an object"));
            continue;
        };
        let id = c.get("id").and_then(json_int).unwrap_or(0) as u32;
        let rules = match c.get("rules") {
            Some(Value::Array(rules)) => {
                rule_list(rules, &format!("capabilities[{i}].rules"), ignored)?
            }
            _ => Vec::new(),
        };
        by_id.insert(
            id,
            CapabilityDef {
                id,
                default: c.get("default").and_then(json_bool).unwrap_or(false),
                rules,
            },
        );
    }
    Ok(by_id.into_values().collect())
}

/// `tags: [{id, default}]`, by ID; a null or absent default means none.
fn tag_defs(items: &[Value], ignored: &mut Vec<String>) -> Vec<TagDef> {
    let mut by_id = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(t) = item else {
            ignored.push(format!("tags[{i}]: {item} is not an object"));
            continue;
        };
        let id = t.get("id").and_then(json_int).unwrap_or(0) as u32;
        let default = match t.get("default") {
            None | Some(Value::Null) => None,
            Some(v) => Some(json_int(v).unwrap_or(0) as u32),
        };
        by_id.insert(id, TagDef { id, default });
    }
    by_id.into_values().collect()
}

fn member_ips(items: &[Value], ignored: &mut Vec<String>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let problem = match ip_text(item) {
            None => Some(format!("{item} is not an address")),
            Some(ip) if ip.is_unspecified() || ip.is_multicast() => {
                Some(format!("{ip} cannot be assigned"))
            }
            Some(ip) if out.contains(&ip) => Some(format!("{ip} is listed twice")),
            Some(ip) if out.len() == MAX_ASSIGNED_IPS => Some(format!(
                "{ip}: a member holds at most {MAX_ASSIGNED_IPS} addresses"
            )),
            Some(ip) => {
                out.push(ip);
                None
            }
        };
        if let Some(why) = problem {
            ignored.push(format!("ipAssignments[{i}]: {why}"));
        }
    }
    out
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

/// A field that is present and not null.
fn present<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
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
