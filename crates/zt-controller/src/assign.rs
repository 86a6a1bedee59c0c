//! Address assignment: the computed IPv6 addresses (rfc4193, 6plane; PROTOCOL.md §6.10) and
//! the pool walk of PROTOCOL.md §7.2.
//!
//! Everything here is a pure function of the network, the member address and which addresses
//! are already taken, so the same member always gets the same address from the same state, and
//! a stored assignment is never recomputed (stable across restarts and pool edits).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zt_crypto::Address;
use zt_wire::network_id::NetworkId as WireNetworkId;

use crate::model::{ip_to_u128, IpPool, Network, NetworkId};

/// Prefix length announced with an RFC 4193 address.
pub const RFC4193_PREFIX_BITS: u8 = 88;
/// Prefix length announced with a 6plane address (each member owns a /80 inside it).
pub const SIXPLANE_PREFIX_BITS: u8 = 40;
/// Most candidates tried in one pool before giving up on it (the reference's bound).
pub const MAX_POOL_TRIALS: u32 = 1000;

/// The member's RFC 4193 address (computed by zt-wire, §6.10).
pub fn rfc4193_address(nwid: NetworkId, member: Address) -> Ipv6Addr {
    WireNetworkId(nwid).rfc4193_address(member)
}

/// The member's 6plane address (computed by zt-wire, §6.10).
pub fn sixplane_address(nwid: NetworkId, member: Address) -> Ipv6Addr {
    WireNetworkId(nwid).sixplane_address(member)
}

/// Result of walking the pools of one family for one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOutcome {
    /// This address, issued with this prefix length.
    Assigned(IpAddr, u8),
    /// There are usable pools but every candidate tried was taken: the pools have run out (or
    /// the 1000-trial bound was hit in a nearly full pool).
    Exhausted,
    /// No pool of this family can yield an address (none configured, or none inside a route).
    NoPool,
}

/// Walks the IPv4 pools in order (PROTOCOL.md §7.2). `taken` says whether an address already
/// belongs to some member of the network (including this one).
pub fn assign_ipv4<E>(
    network: &Network,
    member: Address,
    mut taken: impl FnMut(IpAddr) -> Result<bool, E>,
) -> Result<PoolOutcome, E> {
    let mut any_usable_pool = false;
    for pool in network.v4_pools() {
        let (start, end) = match (pool.start, pool.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => (u32::from(s), u32::from(e)),
            _ => continue,
        };
        if end < start || start == 0 {
            continue;
        }
        let len = end - start;
        // The walk starts at the low 32 bits of the member address, so members spread over the
        // pool and each one's first choice depends only on its own address.
        let mut counter = (member.to_u64() & 0xffff_ffff) as u32;
        let trials = MAX_POOL_TRIALS.min(len.saturating_add(1));
        for _ in 0..trials {
            let ip = if len > 0 {
                start + counter % len
            } else {
                start
            };
            counter = counter.wrapping_add(1);
            if ip & 0xff == 0xff {
                continue;
            }
            let candidate = IpAddr::V4(Ipv4Addr::from(ip));
            let Some(bits) = ipv4_route_bits(network, candidate) else {
                continue;
            };
            any_usable_pool = true;
            if !taken(candidate)? {
                return Ok(PoolOutcome::Assigned(candidate, bits));
            }
        }
    }
    Ok(if any_usable_pool {
        PoolOutcome::Exhausted
    } else {
        PoolOutcome::NoPool
    })
}

/// The prefix of the first IPv4 route (config order) whose non-empty prefix contains `ip`.
/// A /0 route never qualifies: a pool address must sit in a real on-link network.
fn ipv4_route_bits(network: &Network, ip: IpAddr) -> Option<u8> {
    network
        .routes
        .iter()
        .find(|r| r.target.is_ipv4() && r.target.bits() > 0 && r.target.contains(ip))
        .map(|r| r.target.bits())
}

/// The prefix for an IPv6 pool: the last via-less IPv6 route containing the pool start.
fn ipv6_pool_bits(network: &Network, pool: &IpPool) -> Option<u8> {
    network
        .routes
        .iter()
        .rev()
        .find(|r| !r.target.is_ipv4() && r.via.is_none() && r.target.contains(pool.start))
        .map(|r| r.target.bits())
        .filter(|&bits| bits > 0)
}

/// Walks the IPv6 pools in order (PROTOCOL.md §7.2). The reference draws the later candidates
/// at random; we draw them from a counter-based generator seeded by network and member, so the
/// outcome is deterministic for a given state.
pub fn assign_ipv6<E>(
    network: &Network,
    member: Address,
    mut taken: impl FnMut(IpAddr) -> Result<bool, E>,
) -> Result<PoolOutcome, E> {
    let mut any_usable_pool = false;
    let mut draw = SplitMix64(network.id ^ member.to_u64().rotate_left(24));
    for pool in network.v6_pools() {
        let (start, end) = (ip_to_u128(pool.start), ip_to_u128(pool.end));
        if end < start {
            continue;
        }
        let Some(bits) = ipv6_pool_bits(network, pool) else {
            continue;
        };
        any_usable_pool = true;
        let (start_hi, start_lo) = ((start >> 64) as u64, start as u64);
        let (end_hi, end_lo) = ((end >> 64) as u64, end as u64);
        for trial in 0..MAX_POOL_TRIALS {
            let candidate: u128 = if trial == 0 {
                // First choice: the member address in the low 40 bits, if the range spans it.
                if end_lo > start_lo && end_lo - start_lo >= (1u64 << 40) - 1 {
                    (u128::from(start_hi) << 64)
                        | u128::from(start_lo.wrapping_add(member.to_u64()))
                } else {
                    continue;
                }
            } else {
                let hi = if end_hi > start_hi {
                    start_hi + draw.next() % (end_hi - start_hi)
                } else {
                    start_hi
                };
                let lo = if end_lo > start_lo {
                    start_lo + draw.next() % (end_lo - start_lo)
                } else {
                    start_lo
                };
                (u128::from(hi) << 64) | u128::from(lo)
            };
            // `end` itself is never chosen, unless the pool is a single address.
            if candidate < start || candidate > end || (candidate == end && start != end) {
                continue;
            }
            let ip = IpAddr::V6(Ipv6Addr::from(candidate));
            if !taken(ip)? {
                return Ok(PoolOutcome::Assigned(ip, bits));
            }
        }
    }
    Ok(if any_usable_pool {
        PoolOutcome::Exhausted
    } else {
        PoolOutcome::NoPool
    })
}

/// A small deterministic generator (SplitMix64): good spread, no state beyond one word.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IpPool, Route};
    use std::collections::HashSet;
    use std::convert::Infallible;

    fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    /// The capture lab network (captures/network.json).
    fn lab() -> Network {
        let mut n = Network::new(0x51479cea31ccae5c, 0);
        n.v4_assign = true;
        n.pools = vec![IpPool {
            start: "172.27.27.10".parse().unwrap(),
            end: "172.27.27.20".parse().unwrap(),
        }];
        n.routes = vec![Route {
            target: "172.27.27.0/24".parse().unwrap(),
            via: None,
        }];
        n
    }

    #[test]
    fn computed_ipv6_match_the_capture() {
        // captures/README.md, "Assigned addresses".
        let nwid = 0x51479cea31ccae5c;
        assert_eq!(
            rfc4193_address(nwid, addr("51479cea31")).to_string(),
            "fd51:479c:ea31:ccae:5c99:9351:479c:ea31"
        );
        assert_eq!(
            rfc4193_address(nwid, addr("a6c5664b6f")).to_string(),
            "fd51:479c:ea31:ccae:5c99:93a6:c566:4b6f"
        );
        assert_eq!(
            sixplane_address(nwid, addr("51479cea31")).to_string(),
            "fc60:8b32:b651:479c:ea31::1"
        );
    }

    #[test]
    fn ipv4_walk_reproduces_the_capture_assignments() {
        // The real controller gave .15 to itself first, then .16 to the member (whose first
        // choice .15 was taken), then .10 to the libzt node.
        let net = lab();
        let mut used: HashSet<IpAddr> = HashSet::new();
        for (member, expect) in [
            ("51479cea31", "172.27.27.15"),
            ("a6c5664b6f", "172.27.27.16"),
            ("6ebff17e20", "172.27.27.10"),
        ] {
            let out = assign_ipv4(&net, addr(member), |ip| {
                Ok::<_, Infallible>(used.contains(&ip))
            })
            .unwrap();
            assert_eq!(
                out,
                PoolOutcome::Assigned(expect.parse().unwrap(), 24),
                "{member}"
            );
            used.insert(expect.parse().unwrap());
        }
    }

    #[test]
    fn ipv4_pool_runs_out_and_never_gives_end_or_dot_255() {
        let mut net = lab();
        net.pools = vec![IpPool {
            start: "172.27.27.250".parse().unwrap(),
            end: "172.27.27.255".parse().unwrap(),
        }];
        let mut used: HashSet<IpAddr> = HashSet::new();
        let mut n = 0u64;
        loop {
            n += 1;
            let member = Address::new(0x1000000000 + n * 7919).unwrap();
            match assign_ipv4(&net, member, |ip| Ok::<_, Infallible>(used.contains(&ip))).unwrap() {
                PoolOutcome::Assigned(ip, _) => assert!(used.insert(ip)),
                PoolOutcome::Exhausted => break,
                PoolOutcome::NoPool => panic!("pool is routed"),
            }
            assert!(n < 100, "must run out");
        }
        // .250 to .254: five addresses; .255 is both the end and a .255.
        assert_eq!(used.len(), 5);
        assert!(!used.contains(&"172.27.27.255".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn unrouted_or_default_routed_pool_yields_nothing() {
        let mut net = lab();
        net.routes = vec![Route {
            target: "0.0.0.0/0".parse().unwrap(),
            via: None,
        }];
        let out = assign_ipv4(&net, addr("a6c5664b6f"), |_| Ok::<_, Infallible>(false)).unwrap();
        assert_eq!(out, PoolOutcome::NoPool);
        // A later, real route is still found after the /0.
        net.routes.push(Route {
            target: "172.27.0.0/16".parse().unwrap(),
            via: None,
        });
        let out = assign_ipv4(&net, addr("a6c5664b6f"), |_| Ok::<_, Infallible>(false)).unwrap();
        assert_eq!(
            out,
            PoolOutcome::Assigned("172.27.27.15".parse().unwrap(), 16)
        );
    }

    #[test]
    fn single_address_pool() {
        let mut net = lab();
        net.pools = vec![IpPool {
            start: "172.27.27.7".parse().unwrap(),
            end: "172.27.27.7".parse().unwrap(),
        }];
        let out = assign_ipv4(&net, addr("a6c5664b6f"), |_| Ok::<_, Infallible>(false)).unwrap();
        assert_eq!(
            out,
            PoolOutcome::Assigned("172.27.27.7".parse().unwrap(), 24)
        );
    }

    #[test]
    fn ipv6_pool_first_choice_embeds_the_address_and_is_deterministic() {
        let mut net = lab();
        net.pools = vec![IpPool {
            start: "fd00:feed:feed:beef::".parse().unwrap(),
            end: "fd00:feed:feed:beef:ffff:ffff:ffff:ffff".parse().unwrap(),
        }];
        net.routes.push(Route {
            target: "fd00:feed:feed:beef::/64".parse().unwrap(),
            via: None,
        });
        let m = addr("a6c5664b6f");
        let out = assign_ipv6(&net, m, |_| Ok::<_, Infallible>(false)).unwrap();
        assert_eq!(
            out,
            PoolOutcome::Assigned("fd00:feed:feed:beef::a6:c566:4b6f".parse().unwrap(), 64)
        );
        // When the first choice is taken, later draws are deterministic and inside the pool.
        let first = assign_ipv6(&net, m, |ip: IpAddr| {
            Ok::<_, Infallible>(ip.to_string().ends_with("4b6f"))
        })
        .unwrap();
        let again = assign_ipv6(&net, m, |ip: IpAddr| {
            Ok::<_, Infallible>(ip.to_string().ends_with("4b6f"))
        })
        .unwrap();
        assert_eq!(first, again);
        match first {
            PoolOutcome::Assigned(ip, 64) => assert!(net.pools[0].contains(ip)),
            other => panic!("{other:?}"),
        }
        // A route with a gateway does not make the pool usable.
        net.routes.pop();
        net.routes.push(Route {
            target: "fd00:feed:feed:beef::/64".parse().unwrap(),
            via: Some("fd00::1".parse().unwrap()),
        });
        assert_eq!(
            assign_ipv6(&net, m, |_| Ok::<_, Infallible>(false)).unwrap(),
            PoolOutcome::NoPool
        );
    }
}
