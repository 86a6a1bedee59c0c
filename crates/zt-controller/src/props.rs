//! RouterOS properties of `/zerotier/controller` and `/zerotier/controller/member` (ROUTEROS.md
//! §8.3–8.4): parsing `name=value` pairs into patches, and rendering records back as values.
//!
//! `instance`, `network`, `zt-address` and `copy-from` select or create the item, so they are
//! the caller's (the console/daemon), not properties of a record; they are refused here like any
//! unknown name, to make a forgotten case visible.
//!
//! Value grammar:
//! - booleans: `yes`/`no` (also `true`/`false`);
//! - `ip-range`: `first-last[,first-last…]`, IPv4; a single address means a range of one; empty
//!   clears. `ip6-range` is the same for IPv6. Setting a range turns assignment from ranges of
//!   that family on, clearing it turns it off;
//! - `routes`: `dst[@gw][,dst[@gw]…]`, dst as `address/bits` (a bare address is a host route);
//!   empty clears;
//! - `rules`: the flow rules in ZeroTier's rules language ([`crate::rules_language`]), e.g.
//!   `drop not ethertype ipv4 and not ethertype arp and not ethertype ipv6; accept;`; it sets
//!   the rules, capabilities and tags it defines, and the text is what prints back; empty resets
//!   to the default accept-all rules;
//! - `ip-address` (member): `address[,address…]`; empty clears.
use std::net::IpAddr;

use crate::error::ModelError;
use crate::model::{parse_ip, IpPool, IpPrefix, Member, Network, Route};
use crate::patch::{MemberPatch, NetworkPatch};

/// A patch for a network from RouterOS `name=value` pairs.
pub fn network_patch_from_properties(props: &[(&str, &str)]) -> Result<NetworkPatch, ModelError> {
    let mut p = NetworkPatch {
        require_routed_pools: true,
        ..NetworkPatch::default()
    };
    for &(name, value) in props {
        match name {
            "name" => p.name = Some(value.to_string()),
            "comment" => p.comment = Some(value.to_string()),
            "disabled" => p.disabled = Some(parse_bool(name, value)?),
            "private" => p.private = Some(parse_bool(name, value)?),
            "broadcast" => p.enable_broadcast = Some(parse_bool(name, value)?),
            "mtu" => p.mtu = Some(parse_u32(name, value)?),
            "multicast-limit" => p.multicast_limit = Some(parse_u32(name, value)?),
            "ip-range" => {
                let pools = parse_ranges(value, Family::V4)?;
                p.v4_assign = Some(!pools.is_empty());
                p.ipv4_pools = Some(pools);
            }
            "ip6-range" => {
                let pools = parse_ranges(value, Family::V6)?;
                p.v6_assign_zt = Some(!pools.is_empty());
                p.ipv6_pools = Some(pools);
            }
            "ip6-rfc4193" => p.v6_assign_rfc4193 = Some(parse_bool(name, value)?),
            "ip6-6plane" => p.v6_assign_sixplane = Some(parse_bool(name, value)?),
            "routes" => p.routes = Some(parse_routes(value)?),
            "rules" => {
                p.set_rules_source(value)
                    .map_err(|error| ModelError::RulesLanguage {
                        property: "rules",
                        error,
                    })?;
            }
            "inactive" => return Err(ModelError::ReadOnly(name.to_string())),
            _ => return Err(ModelError::UnknownProperty(name.to_string())),
        }
    }
    Ok(p)
}

/// A patch for a member from RouterOS `name=value` pairs.
pub fn member_patch_from_properties(props: &[(&str, &str)]) -> Result<MemberPatch, ModelError> {
    let mut p = MemberPatch {
        require_routed_ips: true,
        ..MemberPatch::default()
    };
    for &(name, value) in props {
        match name {
            "name" => p.name = Some(value.to_string()),
            "comment" => p.comment = Some(value.to_string()),
            "disabled" => p.disabled = Some(parse_bool(name, value)?),
            "authorized" => p.authorized = Some(parse_bool(name, value)?),
            "bridge" => p.active_bridge = Some(parse_bool(name, value)?),
            "ip-address" => p.ip_assignments = Some(parse_ip_list(value)?),
            "last-seen" | "inactive" | "lost" => {
                return Err(ModelError::ReadOnly(name.to_string()))
            }
            _ => return Err(ModelError::UnknownProperty(name.to_string())),
        }
    }
    Ok(p)
}

/// A network's settable properties as RouterOS prints them, in menu order.
pub fn network_properties(n: &Network) -> Vec<(&'static str, String)> {
    let join_pools = |v4: bool| {
        n.pools
            .iter()
            .filter(|p| p.is_ipv4() == v4)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        ("name", n.name.clone()),
        ("network", crate::model::format_network_id(n.id)),
        ("private", yes_no(n.private)),
        ("broadcast", yes_no(n.enable_broadcast)),
        ("mtu", n.mtu.to_string()),
        ("multicast-limit", n.multicast_limit.to_string()),
        ("ip-range", join_pools(true)),
        ("ip6-range", join_pools(false)),
        ("ip6-rfc4193", yes_no(n.v6_assign.rfc4193)),
        ("ip6-6plane", yes_no(n.v6_assign.sixplane)),
        (
            "routes",
            n.routes
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("rules", n.rules_source.clone()),
        ("comment", n.comment.clone()),
        ("disabled", yes_no(n.disabled)),
    ]
}

/// A member's settable properties as RouterOS prints them.
pub fn member_properties(m: &Member) -> Vec<(&'static str, String)> {
    vec![
        ("zt-address", m.address.to_string()),
        ("authorized", yes_no(m.authorized)),
        ("bridge", yes_no(m.active_bridge)),
        (
            "ip-address",
            m.ip_assignments
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("name", m.name.clone()),
        ("comment", m.comment.clone()),
        ("disabled", yes_no(m.disabled)),
    ]
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

pub fn parse_bool(property: &str, value: &str) -> Result<bool, ModelError> {
    match value {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(ModelError::InvalidBool {
            property: property.to_string(),
            value: value.to_string(),
        }),
    }
}

fn parse_u32(property: &str, value: &str) -> Result<u32, ModelError> {
    value.trim().parse().map_err(|_| ModelError::InvalidValue {
        property: property.to_string(),
        value: value.to_string(),
        reason: "expected a whole number".to_string(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// `first-last[,first-last…]`, each end of `family`.
fn parse_ranges(value: &str, family: Family) -> Result<Vec<IpPool>, ModelError> {
    let mut pools = Vec::new();
    for part in list(value) {
        let (start, end) = match part.split_once('-') {
            Some((s, e)) => (s.trim(), e.trim()),
            None => (part, part),
        };
        if start.is_empty() || end.is_empty() || end.contains('-') {
            return Err(ModelError::InvalidRange(part.to_string()));
        }
        let start = parse_ip(start, "range start")?;
        let end = parse_ip(end, "range end")?;
        let pool = IpPool { start, end };
        let (want, other) = match family {
            Family::V4 => ("IPv4", "IPv6"),
            Family::V6 => ("IPv6", "IPv4"),
        };
        if start.is_ipv4() != end.is_ipv4() {
            return Err(ModelError::PoolMixedFamily(pool.to_string()));
        }
        let fits = |ip: IpAddr| ip.is_ipv4() == (family == Family::V4);
        if !fits(start) || !fits(end) {
            return Err(ModelError::PoolWrongFamily(pool.to_string(), other, want));
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// `dst[@gw][,dst[@gw]…]`.
fn parse_routes(value: &str) -> Result<Vec<Route>, ModelError> {
    list(value)
        .map(|part| {
            let (dst, gw) = match part.split_once('@') {
                Some((d, g)) => (d.trim(), Some(g.trim())),
                None => (part, None),
            };
            let target: IpPrefix = dst.parse()?;
            let via = gw.map(|g| parse_ip(g, "gateway")).transpose()?;
            Ok(Route { target, via })
        })
        .collect()
}

fn parse_ip_list(value: &str) -> Result<Vec<IpAddr>, ModelError> {
    list(value).map(|s| parse_ip(s, "ip-address")).collect()
}

/// Non-empty comma-separated items, trimmed.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Network;

    fn apply(props: &[(&str, &str)]) -> Result<Network, ModelError> {
        network_patch_from_properties(props)?.apply(&Network::new(0x879c0b5265a99e4b, 0))
    }

    #[test]
    fn seed_example_parses() {
        // ROUTEROS seed: controller/add name=ZT-private instance=zt1 ip-range=172.27.27.10-172.27.27.20
        //   private=yes routes=172.27.27.0/24 (instance is the caller's).
        let n = apply(&[
            ("name", "ZT-private"),
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("private", "yes"),
            ("routes", "172.27.27.0/24"),
        ])
        .unwrap();
        assert_eq!(n.name, "ZT-private");
        assert!(n.private && n.v4_assign && n.enable_broadcast);
        assert_eq!(n.mtu, 2800);
        assert_eq!(n.multicast_limit, 32);
        let props = network_properties(&n);
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("ip-range"), "172.27.27.10-172.27.27.20");
        assert_eq!(get("routes"), "172.27.27.0/24");
        assert_eq!(get("network"), "879c0b5265a99e4b");
        assert_eq!(get("ip6-6plane"), "no");
    }

    #[test]
    fn rest_sample_parses_and_renders_back() {
        // ROUTEROS.md §8.3 REST sample (ip6-range there is elided; a real one is used).
        let n = apply(&[
            ("broadcast", "false"),
            ("comment", "Something"),
            ("ip-range", "192.168.88.200-192.168.88.220"),
            (
                "ip6-range",
                "fd00:feed:feed:beef::-fd00:feed:feed:beef:ffff:ffff:ffff:ffff",
            ),
            (
                "routes",
                "192.168.88.0/24@192.168.88.1,0.0.0.0/0@192.168.88.1,fd00:feed:feed:beef::/64",
            ),
            ("mtu", "1598"),
            ("name", "test"),
        ])
        .unwrap();
        assert!(!n.enable_broadcast && n.v6_assign.zt);
        assert_eq!(n.routes.len(), 3);
        assert_eq!(n.routes[1].via, Some("192.168.88.1".parse().unwrap()));
        let props = network_properties(&n);
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(
            get("routes"),
            "192.168.88.0/24@192.168.88.1,0.0.0.0/0@192.168.88.1,fd00:feed:feed:beef::/64"
        );
        assert_eq!(
            get("ip6-range"),
            "fd00:feed:feed:beef::-fd00:feed:feed:beef:ffff:ffff:ffff:ffff"
        );
        assert_eq!(get("mtu"), "1598");
    }

    #[test]
    fn several_ranges_and_clearing() {
        let n = apply(&[
            (
                "ip-range",
                "10.0.0.10-10.0.0.20, 10.0.1.10-10.0.1.20,10.0.2.5",
            ),
            ("routes", "10.0.0.0/16"),
        ])
        .unwrap();
        assert_eq!(n.pools.len(), 3);
        assert_eq!(n.pools[2].start, n.pools[2].end);
        let cleared = network_patch_from_properties(&[("ip-range", "")])
            .unwrap()
            .apply(&n)
            .unwrap();
        assert!(cleared.pools.is_empty() && !cleared.v4_assign);
    }

    #[test]
    fn ip6_range_keeps_ipv4_ranges() {
        let n = apply(&[
            ("ip-range", "10.0.0.10-10.0.0.20"),
            ("routes", "10.0.0.0/24,fd00::/64"),
        ])
        .unwrap();
        let n = network_patch_from_properties(&[("ip6-range", "fd00::10-fd00::ffff")])
            .unwrap()
            .apply(&n)
            .unwrap();
        assert_eq!(n.pools.len(), 2);
        assert!(n.v4_assign && n.v6_assign.zt);
    }

    /// Every error case, with the text the user sees.
    #[test]
    fn error_matrix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ip-range", "10.0.0.20-10.0.0.10"), ("routes", "10.0.0.0/24")], "range 10.0.0.20-10.0.0.10: the first address is above the last"),
            (&[("ip-range", "10.0.0.1-")], "invalid range \"10.0.0.1-\": expected first-last, e.g. 172.27.27.10-172.27.27.20"),
            (&[("ip-range", "10.0.0.1-10.0.0.5-10.0.0.9")], "invalid range \"10.0.0.1-10.0.0.5-10.0.0.9\": expected first-last, e.g. 172.27.27.10-172.27.27.20"),
            (&[("ip-range", "10.0.0.300-10.0.0.310")], "invalid range start \"10.0.0.300\": expected an IPv4 or IPv6 address"),
            (&[("ip-range", "fd00::1-fd00::9")], "range fd00::1-fd00::9 is an IPv6 range in an IPv4 property"),
            (&[("ip6-range", "10.0.0.1-10.0.0.9")], "range 10.0.0.1-10.0.0.9 is an IPv4 range in an IPv6 property"),
            (&[("ip-range", "10.0.0.1-fd00::9")], "range 10.0.0.1-fd00::9: first and last address are of different families"),
            (&[("ip-range", "0.0.0.0-0.0.0.9"), ("routes", "0.0.0.0/24")], "range 0.0.0.0-0.0.0.9: it may not start at the unspecified address"),
            (&[("ip-range", "10.0.0.1-10.0.0.50,10.0.0.40-10.0.0.60"), ("routes", "10.0.0.0/24")], "range 10.0.0.40-10.0.0.60 overlaps range 10.0.0.1-10.0.0.50"),
            (&[("ip-range", "10.0.0.1-10.0.0.50")], "range 10.0.0.1-10.0.0.50 is not inside any route, so members could get no address from it; add a route such as 10.0.0.0/24"),
            (&[("ip-range", "10.0.0.1-10.0.1.50"), ("routes", "10.0.0.0/24")], "range 10.0.0.1-10.0.1.50 is not inside any route, so members could get no address from it; add a route such as 10.0.0.0/23"),
            (&[("ip-range", "10.0.0.1-10.0.0.9"), ("routes", "0.0.0.0/0@10.0.0.254")], "range 10.0.0.1-10.0.0.9 is not inside any route, so members could get no address from it; add a route such as 10.0.0.0/24"),
            (&[("routes", "10.0.0.1/24")], "10.0.0.1/24 has host bits set; the network address is 10.0.0.0/24"),
            (&[("routes", "10.0.0.0/33")], "invalid prefix \"10.0.0.0/33\": expected address/bits with bits at most 32 (IPv4) or 128 (IPv6)"),
            (&[("routes", "10.0.0.0/x")], "invalid prefix \"10.0.0.0/x\": expected address/bits with bits at most 32 (IPv4) or 128 (IPv6)"),
            (&[("routes", "10.0.0.0/24@fd00::1")], "route 10.0.0.0/24: gateway fd00::1 is not of the same address family"),
            (&[("routes", "10.0.0.0/24@gw")], "invalid gateway \"gw\": expected an IPv4 or IPv6 address"),
            (&[("routes", "10.0.0.0/24@0.0.0.0")], "invalid gateway \"0.0.0.0\": expected an IPv4 or IPv6 address"),
            (&[("mtu", "1000")], "mtu 1000 is out of range (1280..10000)"),
            (&[("mtu", "big")], "invalid value \"big\" for mtu: expected a whole number"),
            (&[("multicast-limit", "-1")], "invalid value \"-1\" for multicast-limit: expected a whole number"),
            (&[("private", "maybe")], "invalid value \"maybe\" for private: expected yes or no"),
            (&[("name", &"x".repeat(128))], "name is longer than 127 bytes"),
            (&[("name", "a\nb")], "name may not contain NUL, CR or LF"),
            (&[("instance", "zt1")], "unknown property \"instance\""),
            (&[("inactive", "yes")], "inactive is read-only"),
        ];
        for (props, expected) in cases {
            let err = apply(props).expect_err(&format!("{props:?} must fail"));
            assert_eq!(err.to_string(), *expected, "{props:?}");
        }
    }

    #[test]
    fn rules_are_set_in_the_rules_language_and_print_back_as_text() {
        let text = "drop not ethertype ipv4 and not ethertype arp and not ethertype ipv6; accept;";
        let n = apply(&[("rules", text)]).unwrap();
        assert_eq!(n.rules.as_ref().map(Vec::len), Some(5));
        let props = network_properties(&n);
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("rules"), text);
        // Empty: the default accept-all set again.
        let cleared = network_patch_from_properties(&[("rules", "")])
            .unwrap()
            .apply(&n)
            .unwrap();
        assert_eq!(cleared.rules, None);
        assert_eq!(cleared.rules_source, "");
        let err = apply(&[("rules", "drop vlan x;")]).unwrap_err();
        assert!(
            err.to_string().starts_with("rules: line 1, column 11: "),
            "{err}"
        );
    }

    #[test]
    fn failed_update_leaves_the_record_untouched() {
        let n = apply(&[
            ("ip-range", "10.0.0.10-10.0.0.20"),
            ("routes", "10.0.0.0/24"),
            ("name", "a"),
        ])
        .unwrap();
        let before = n.clone();
        // The name is fine but the range is not: nothing of the patch applies.
        let err =
            network_patch_from_properties(&[("name", "b"), ("ip-range", "10.0.0.30-10.0.0.1")])
                .unwrap()
                .apply(&n);
        assert!(err.is_err());
        assert_eq!(n, before);
    }

    #[test]
    fn member_properties_parse() {
        let net = apply(&[
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("routes", "172.27.27.0/24"),
        ])
        .unwrap();
        let m = Member::new(net.id, "deba5dc5b1".parse().unwrap(), 0);
        let p = member_patch_from_properties(&[
            ("authorized", "yes"),
            ("bridge", "no"),
            ("ip-address", "172.27.27.13"),
        ])
        .unwrap();
        let m = p.apply(&m, &net).unwrap();
        assert!(m.authorized && !m.active_bridge);
        assert_eq!(
            member_properties(&m)[3],
            ("ip-address", "172.27.27.13".to_string())
        );

        let errors: &[(&[(&str, &str)], &str)] = &[
            (&[("ip-address", "10.9.9.9")], "10.9.9.9 is not inside any route of the network, so it would never be issued; add a route that contains it first"),
            (&[("ip-address", "172.27.27.13,172.27.27.13")], "172.27.27.13 is listed twice"),
            (&[("ip-address", "172.27.27.x")], "invalid ip-address \"172.27.27.x\": expected an IPv4 or IPv6 address"),
            (&[("authorized", "1")], "invalid value \"1\" for authorized: expected yes or no"),
            (&[("last-seen", "1s")], "last-seen is read-only"),
            (&[("zt-address", "deba5dc5b1")], "unknown property \"zt-address\""),
        ];
        for (props, expected) in errors {
            let err = member_patch_from_properties(props)
                .and_then(|p| p.apply(&m, &net))
                .expect_err("must fail");
            assert_eq!(err.to_string(), *expected, "{props:?}");
        }
    }
}
