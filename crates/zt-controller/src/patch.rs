//! Partial updates: [`NetworkPatch`] and [`MemberPatch`] carry only the fields a user set (from
//! RouterOS properties or a zerotier JSON POST body). `apply` returns a new, validated record
//! and leaves the old one untouched, so a failed update writes nothing.
use std::net::IpAddr;

use zt_crypto::Address;

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::rules_language::CompileError;
use zt_wire::rules::Rule;

use crate::model::{CapabilityDef, Dns, IpPool, IpPrefix, Member, Network, Route, TagDef};

/// Fields of a network an update may set. `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkPatch {
    pub name: Option<String>,
    pub private: Option<bool>,
    pub enable_broadcast: Option<bool>,
    pub mtu: Option<u32>,
    pub multicast_limit: Option<u32>,
    pub v4_assign: Option<bool>,
    pub v6_assign_zt: Option<bool>,
    pub v6_assign_rfc4193: Option<bool>,
    pub v6_assign_sixplane: Option<bool>,
    /// Replaces every pool (zerotier `ipAssignmentPools`).
    pub pools: Option<Vec<IpPool>>,
    /// Replaces the IPv4 pools only (RouterOS `ip-range`).
    pub ipv4_pools: Option<Vec<IpPool>>,
    /// Replaces the IPv6 pools only (RouterOS `ip6-range`).
    pub ipv6_pools: Option<Vec<IpPool>>,
    pub routes: Option<Vec<Route>>,
    pub dns: Option<Dns>,
    pub auth_tokens: Option<Vec<(String, u64)>>,
    /// `Some(None)` resets to the default accept-all rule set.
    pub rules: Option<Option<Vec<Rule>>>,
    pub rules_source: Option<String>,
    pub capabilities: Option<Vec<CapabilityDef>>,
    pub tags: Option<Vec<TagDef>>,
    pub remote_trace_target: Option<Option<Address>>,
    pub remote_trace_level: Option<u32>,
    pub comment: Option<String>,
    pub disabled: Option<bool>,
    /// Also require every pool to lie inside a route (RouterOS input, where a pool nobody can
    /// get an address from is certainly a mistake). The zerotier API allows setting pools
    /// before routes, so it leaves this off.
    pub require_routed_pools: bool,
}

impl NetworkPatch {
    /// The patched copy of `network`, validated.
    pub fn apply(&self, network: &Network) -> Result<Network, ModelError> {
        let mut n = network.clone();
        set(&mut n.name, &self.name);
        set(&mut n.private, &self.private);
        set(&mut n.enable_broadcast, &self.enable_broadcast);
        set(&mut n.mtu, &self.mtu);
        set(&mut n.multicast_limit, &self.multicast_limit);
        set(&mut n.v4_assign, &self.v4_assign);
        set(&mut n.v6_assign.zt, &self.v6_assign_zt);
        set(&mut n.v6_assign.rfc4193, &self.v6_assign_rfc4193);
        set(&mut n.v6_assign.sixplane, &self.v6_assign_sixplane);
        set(&mut n.pools, &self.pools);
        if let Some(v4) = &self.ipv4_pools {
            if let Some(p) = v4.iter().find(|p| !p.start.is_ipv4() || !p.end.is_ipv4()) {
                return Err(ModelError::PoolWrongFamily(p.to_string(), "IPv6", "IPv4"));
            }
            n.pools.retain(|p| !p.is_ipv4());
            n.pools.splice(0..0, v4.iter().copied());
        }
        if let Some(v6) = &self.ipv6_pools {
            if let Some(p) = v6.iter().find(|p| p.start.is_ipv4() || p.end.is_ipv4()) {
                return Err(ModelError::PoolWrongFamily(p.to_string(), "IPv4", "IPv6"));
            }
            n.pools.retain(|p| p.is_ipv4());
            n.pools.extend(v6.iter().copied());
        }
        set(&mut n.routes, &self.routes);
        set(&mut n.dns, &self.dns);
        set(&mut n.auth_tokens, &self.auth_tokens);
        set(&mut n.rules, &self.rules);
        set(&mut n.rules_source, &self.rules_source);
        set(&mut n.capabilities, &self.capabilities);
        set(&mut n.tags, &self.tags);
        set(&mut n.remote_trace_target, &self.remote_trace_target);
        set(&mut n.remote_trace_level, &self.remote_trace_level);
        set(&mut n.comment, &self.comment);
        set(&mut n.disabled, &self.disabled);
        n.validate()?;
        if self.require_routed_pools {
            for pool in &n.pools {
                let routed = n.routes.iter().any(|r| {
                    r.target.bits() > 0
                        && r.target.contains(pool.start)
                        && r.target.contains(pool.end)
                });
                if !routed {
                    return Err(ModelError::PoolNotRouted {
                        pool: pool.to_string(),
                        suggestion: suggest_route(pool),
                    });
                }
            }
        }
        Ok(n)
    }
}

impl NetworkPatch {
    /// Sets the rules, capabilities and tags that rules-language `source` defines, and keeps
    /// the text. A text that defines nothing (empty, or only comments) resets to the default
    /// accept-all rule set: an empty rule list would drop every frame, which nobody means by
    /// clearing the text.
    pub fn set_rules_source(&mut self, source: &str) -> Result<(), CompileError> {
        let compiled = crate::rules_language::compile(source)?;
        let defines_nothing = compiled.rules.is_empty()
            && compiled.capabilities.is_empty()
            && compiled.tags.is_empty();
        self.rules = Some((!defines_nothing).then_some(compiled.rules));
        // By ID, ascending, as the model keeps them; a tag ID used twice keeps the later one,
        // as a posted `tags` list does.
        let capabilities: BTreeMap<u32, CapabilityDef> = compiled
            .capabilities
            .into_iter()
            .map(|c| {
                let def = CapabilityDef {
                    id: c.id,
                    default: c.default,
                    rules: c.rules,
                };
                (c.id, def)
            })
            .collect();
        let tags: BTreeMap<u32, TagDef> = compiled
            .tags
            .into_iter()
            .map(|t| {
                let def = TagDef {
                    id: t.id,
                    default: t.default,
                };
                (t.id, def)
            })
            .collect();
        self.capabilities = Some(capabilities.into_values().collect());
        self.tags = Some(tags.into_values().collect());
        self.rules_source = Some(source.to_string());
        Ok(())
    }
}

/// The smallest prefix holding both ends of a pool, as a route to suggest.
fn suggest_route(pool: &IpPool) -> String {
    let (s, e) = (
        crate::model::ip_to_u128(pool.start),
        crate::model::ip_to_u128(pool.end),
    );
    let width: u32 = if pool.is_ipv4() { 32 } else { 128 };
    let common = ((s ^ e) << (128 - width)).leading_zeros().min(width);
    // A pool start is never 0, so the prefix is at least a real network.
    let bits = if pool.is_ipv4() {
        common.min(24)
    } else {
        common.min(64)
    };
    IpPrefix::new(pool.start, bits as u8)
        .map(|p| p.network().to_string())
        .unwrap_or_else(|_| pool.start.to_string())
}

/// Fields of a member an update may set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberPatch {
    pub authorized: Option<bool>,
    pub active_bridge: Option<bool>,
    pub no_auto_assign_ips: Option<bool>,
    /// Replaces the member's addresses (static assignment by hand).
    pub ip_assignments: Option<Vec<IpAddr>>,
    /// Replaces the member's tag values, `(id, value)` ascending by ID.
    pub tags: Option<Vec<(u32, u32)>>,
    /// Replaces the capability IDs the member holds, ascending.
    pub capabilities: Option<Vec<u32>>,
    pub name: Option<String>,
    pub comment: Option<String>,
    pub disabled: Option<bool>,
    pub remote_trace_target: Option<Option<Address>>,
    pub remote_trace_level: Option<u32>,
    /// Also require every address to lie inside a route of the network (RouterOS input: an
    /// unrouted address would silently never be issued).
    pub require_routed_ips: bool,
}

impl MemberPatch {
    /// The patched copy of `member`, validated against `network`. Uniqueness of addresses across
    /// members is checked by the storage, inside the same transaction that stores the record.
    pub fn apply(&self, member: &Member, network: &Network) -> Result<Member, ModelError> {
        let mut m = member.clone();
        set(&mut m.authorized, &self.authorized);
        set(&mut m.active_bridge, &self.active_bridge);
        set(&mut m.no_auto_assign_ips, &self.no_auto_assign_ips);
        set(&mut m.ip_assignments, &self.ip_assignments);
        set(&mut m.tags, &self.tags);
        set(&mut m.capabilities, &self.capabilities);
        set(&mut m.name, &self.name);
        set(&mut m.comment, &self.comment);
        set(&mut m.disabled, &self.disabled);
        set(&mut m.remote_trace_target, &self.remote_trace_target);
        set(&mut m.remote_trace_level, &self.remote_trace_level);
        m.validate()?;
        if self.require_routed_ips {
            if let Some(ip) = m
                .ip_assignments
                .iter()
                .find(|ip| network.static_ip_prefix(**ip).is_none())
            {
                return Err(ModelError::IpNotRouted(ip.to_string()));
            }
        }
        Ok(m)
    }
}

fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}
