//! The rules engine (PROTOCOL.md §6.7; `Network::_doZtFilter`): a network's rules, then the
//! capabilities, decide whether a frame is sent or delivered, and which copies go where.
//!
//! Evaluation walks the list keeping one "set matches" flag: a match rule ANDs into it (ORs
//! with its OR bit), after XOR with its NOT bit; an action rule fires if the set matched and
//! then starts a new set. DROP and ACCEPT end the walk, BREAK ends it without a verdict,
//! TEE/WATCH add a copy and go on, REDIRECT sends the frame elsewhere. No verdict from the
//! network's rules nor any capability means DROP.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use zt_crypto::Address;
use zt_wire::mac::Mac;
use zt_wire::rules::{Forward, Rule, RuleKind, TagOp};
use zt_wire::tag::Tag;

/// Frame characteristic bits for the CHARACTERISTICS match (`ZT_RULE_PACKET_CHARACTERISTICS_*`).
pub const CHARACTERISTIC_INBOUND: u64 = 0x8000_0000_0000_0000;
pub const CHARACTERISTIC_MULTICAST: u64 = 0x4000_0000_0000_0000;
pub const CHARACTERISTIC_BROADCAST: u64 = 0x2000_0000_0000_0000;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// What the rules said about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Drop,
    /// `super_accept`: we are the TEE/WATCH/REDIRECT target, so bridging checks are skipped.
    Accept {
        super_accept: bool,
    },
    /// Send (outbound) or hand (inbound) the frame to this member instead.
    Redirect(Forward),
}

/// The verdict plus the TEE/WATCH copies to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    /// (target, copy length limit or 0, is a WATCH).
    pub copies: Vec<(Forward, bool)>,
}

/// A frame as the rules see it.
pub(crate) struct FrameFacts<'a> {
    pub inbound: bool,
    pub us: Address,
    pub zt_source: Address,
    /// The member the frame goes to; zero for multicast.
    pub zt_dest: Address,
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub ethertype: u16,
    pub payload: &'a [u8],
    /// Tags of the sender and of the receiver, when known.
    pub sender_tags: TagValues<'a>,
    pub receiver_tags: TagValues<'a>,
    /// The config's "result of an unsupported match" flag.
    pub unsupported_match_result: bool,
    /// A random draw for the RANDOM match.
    pub random: u32,
}

/// One side's tags, looked up where they are kept: a frame builds no table of its own, and
/// only a TAGS match looks at them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TagValues<'a> {
    /// No tags known (a multicast receiver, a member that sent none).
    Unknown,
    /// Ours, in the config's order.
    Config(&'a [Tag]),
    /// A member's, as accepted from its credentials, by ID.
    Member(&'a HashMap<u32, Tag>),
}

impl TagValues<'_> {
    /// The value of tag `id`. A repeated ID in a config list takes its last value, as a
    /// table built from the list would.
    pub fn value(&self, id: u32) -> Option<u32> {
        match self {
            TagValues::Unknown => None,
            TagValues::Config(tags) => tags.iter().rev().find(|t| t.id == id).map(|t| t.value),
            TagValues::Member(tags) => tags.get(&id).map(|t| t.value),
        }
    }
}

enum Walk {
    Verdict(Verdict),
    NoMatch,
}

/// Network rules first; if they reach no verdict, each capability's rules in turn.
pub(crate) fn evaluate<'r>(
    facts: &FrameFacts<'_>,
    rules: &[Rule],
    capabilities: impl Iterator<Item = &'r [Rule]>,
) -> Outcome {
    let mut copies = Vec::new();
    if let Walk::Verdict(v) = walk(facts, rules, &mut copies) {
        return Outcome { verdict: v, copies };
    }
    for cap in capabilities {
        let mut cap_copies = Vec::new();
        if let Walk::Verdict(v) = walk(facts, cap, &mut cap_copies) {
            if matches!(v, Verdict::Accept { .. } | Verdict::Redirect(_)) {
                copies.extend(cap_copies);
                return Outcome { verdict: v, copies };
            }
        }
    }
    Outcome {
        verdict: Verdict::Drop,
        copies,
    }
}

fn walk(facts: &FrameFacts<'_>, rules: &[Rule], copies: &mut Vec<(Forward, bool)>) -> Walk {
    let mut set_matches = true;
    for rule in rules {
        if rule.is_action() {
            if set_matches {
                match &rule.kind {
                    RuleKind::Drop => return Walk::Verdict(Verdict::Drop),
                    RuleKind::Accept => {
                        return Walk::Verdict(Verdict::Accept {
                            super_accept: false,
                        })
                    }
                    RuleKind::Break => return Walk::NoMatch,
                    RuleKind::Tee(f) | RuleKind::Watch(f) | RuleKind::Redirect(f) => {
                        let watch = matches!(rule.kind, RuleKind::Watch(_));
                        if f.address == facts.zt_source {
                            // The copy would go back to where the frame came from.
                        } else if f.address == facts.us {
                            if facts.inbound {
                                // We are the target: accept past the bridging checks.
                                return Walk::Verdict(Verdict::Accept { super_accept: true });
                            }
                        } else if f.address == facts.zt_dest {
                            // Already going there.
                        } else if matches!(rule.kind, RuleKind::Redirect(_)) {
                            return Walk::Verdict(Verdict::Redirect(*f));
                        } else {
                            // One copy per evaluation: a later TEE/WATCH replaces an earlier.
                            copies.clear();
                            copies.push((*f, watch));
                        }
                    }
                    // PRIORITY (QoS) and actions this version does not know change nothing.
                    _ => {}
                }
            }
            set_matches = true;
            continue;
        }
        if !set_matches && !rule.or {
            continue;
        }
        let this = matches(facts, &rule.kind) != rule.not;
        if rule.or {
            set_matches |= this;
        } else {
            set_matches &= this;
        }
    }
    Walk::NoMatch
}

/// IP facts of the frame: (source, destination, TOS, protocol, layer-4 offset).
enum Ip {
    V4(Ipv4Addr, Ipv4Addr, u8, u8, usize),
    V6(Ipv6Addr, Ipv6Addr, u8, u8, usize),
}

fn ip_facts(ethertype: u16, p: &[u8]) -> Option<Ip> {
    match ethertype {
        ETHERTYPE_IPV4 if p.len() >= 20 && p[0] >> 4 == 4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            Some(Ip::V4(src, dst, p[1], p[9], ihl))
        }
        ETHERTYPE_IPV6 if p.len() >= 40 && p[0] >> 4 == 6 => {
            let src: [u8; 16] = p[8..24].try_into().ok()?;
            let dst: [u8; 16] = p[24..40].try_into().ok()?;
            let tos = (p[0] << 4) | (p[1] >> 4);
            // Skip the extension headers to the upper-layer protocol.
            let mut next = p[6];
            let mut at = 40usize;
            loop {
                let len = match next {
                    0 | 43 | 60 | 135 => (usize::from(*p.get(at + 1)?) + 1) * 8,
                    44 => 8,
                    51 => (usize::from(*p.get(at + 1)?) + 2) * 4,
                    _ => break,
                };
                next = *p.get(at)?;
                at += len;
            }
            Some(Ip::V6(src.into(), dst.into(), tos, next, at))
        }
        _ => None,
    }
}

fn prefix_v4(ip: Ipv4Addr, net: Ipv4Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits.min(32)))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn prefix_v6(ip: Ipv6Addr, net: Ipv6Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits.min(128)))
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The ports of TCP, UDP, SCTP or UDP-Lite.
fn ports(p: &[u8], protocol: u8, l4: usize) -> Option<(u16, u16)> {
    if !matches!(protocol, 6 | 17 | 132 | 136) {
        return None;
    }
    let h = p.get(l4..l4 + 4)?;
    Some((
        u16::from_be_bytes([h[0], h[1]]),
        u16::from_be_bytes([h[2], h[3]]),
    ))
}

fn characteristics(facts: &FrameFacts<'_>) -> u64 {
    let mut c = 0;
    if facts.inbound {
        c |= CHARACTERISTIC_INBOUND;
    }
    if facts.dst_mac.is_multicast() {
        c |= CHARACTERISTIC_MULTICAST;
    }
    if facts.dst_mac.is_broadcast() {
        c |= CHARACTERISTIC_BROADCAST;
    }
    let tcp = match ip_facts(facts.ethertype, facts.payload) {
        Some(Ip::V4(_, _, _, 6, l4)) | Some(Ip::V6(_, _, _, 6, l4)) => Some(l4),
        _ => None,
    };
    if let Some(h) = tcp.and_then(|l4| facts.payload.get(l4 + 12..l4 + 14)) {
        c |= (u64::from(h[0] & 0x0f) << 8) | u64::from(h[1]);
    }
    c
}

fn integer_at(p: &[u8], index: u16, format: u8) -> Option<u64> {
    let bits = u32::from(format & 0x3f) + 1;
    let bytes = bits.div_ceil(8) as usize;
    let raw = p.get(usize::from(index)..usize::from(index) + bytes)?;
    let mut v: u64 = 0;
    if format & 0x80 != 0 {
        for b in raw.iter().rev() {
            v = (v << 8) | u64::from(*b);
        }
    } else {
        for b in raw {
            v = (v << 8) | u64::from(*b);
        }
    }
    if bits < 64 {
        v &= (1u64 << bits) - 1;
    }
    Some(v)
}

fn tags_match(facts: &FrameFacts<'_>, op: TagOp, id: u32, value: u32) -> bool {
    let sender = facts.sender_tags.value(id);
    let receiver = facts.receiver_tags.value(id);
    match op {
        TagOp::Sender => sender == Some(value),
        TagOp::Receiver => receiver == Some(value),
        _ => {
            let (Some(a), Some(b)) = (sender, receiver) else {
                return false;
            };
            match op {
                TagOp::Difference => a.abs_diff(b) <= value,
                TagOp::BitwiseAnd => a & b == value,
                TagOp::BitwiseOr => a | b == value,
                TagOp::BitwiseXor => a ^ b == value,
                TagOp::Equal => a == value && b == value,
                TagOp::Sender | TagOp::Receiver => false,
            }
        }
    }
}

fn matches(facts: &FrameFacts<'_>, kind: &RuleKind) -> bool {
    let p = facts.payload;
    let ip = || ip_facts(facts.ethertype, p);
    match kind {
        RuleKind::SourceZeroTierAddress(a) => *a == facts.zt_source,
        RuleKind::DestZeroTierAddress(a) => *a == facts.zt_dest,
        // Frames reach us without 802.1Q tags: VLAN ID, PCP and DEI are all 0.
        RuleKind::VlanId(v) => *v == 0,
        RuleKind::VlanPcp(v) | RuleKind::VlanDei(v) => *v == 0,
        RuleKind::MacSource(m) => *m == facts.src_mac,
        RuleKind::MacDest(m) => *m == facts.dst_mac,
        RuleKind::Ipv4Source { ip: net, bits } => {
            matches!(ip(), Some(Ip::V4(s, ..)) if prefix_v4(s, *net, *bits))
        }
        RuleKind::Ipv4Dest { ip: net, bits } => {
            matches!(ip(), Some(Ip::V4(_, d, ..)) if prefix_v4(d, *net, *bits))
        }
        RuleKind::Ipv6Source { ip: net, bits } => {
            matches!(ip(), Some(Ip::V6(s, ..)) if prefix_v6(s, *net, *bits))
        }
        RuleKind::Ipv6Dest { ip: net, bits } => {
            matches!(ip(), Some(Ip::V6(_, d, ..)) if prefix_v6(d, *net, *bits))
        }
        RuleKind::IpTos { mask, start, end } => match ip() {
            Some(Ip::V4(_, _, tos, ..)) | Some(Ip::V6(_, _, tos, ..)) => {
                let t = tos & mask;
                *start <= t && t <= *end
            }
            None => false,
        },
        RuleKind::IpProtocol(proto) => match ip() {
            Some(Ip::V4(_, _, _, p, _)) | Some(Ip::V6(_, _, _, p, _)) => p == *proto,
            None => false,
        },
        RuleKind::Ethertype(e) => *e == facts.ethertype,
        RuleKind::Icmp {
            icmp_type,
            code,
            flags,
        } => {
            let header = match ip() {
                Some(Ip::V4(_, _, _, 1, l4)) | Some(Ip::V6(_, _, _, 58, l4)) => p.get(l4..l4 + 2),
                _ => None,
            };
            header.is_some_and(|h| h[0] == *icmp_type && (flags & 0x01 == 0 || h[1] == *code))
        }
        RuleKind::IpSourcePortRange { start, end } => match ip() {
            Some(Ip::V4(_, _, _, proto, l4)) | Some(Ip::V6(_, _, _, proto, l4)) => {
                ports(p, proto, l4).is_some_and(|(s, _)| *start <= s && s <= *end)
            }
            None => false,
        },
        RuleKind::IpDestPortRange { start, end } => match ip() {
            Some(Ip::V4(_, _, _, proto, l4)) | Some(Ip::V6(_, _, _, proto, l4)) => {
                ports(p, proto, l4).is_some_and(|(_, d)| *start <= d && d <= *end)
            }
            None => false,
        },
        RuleKind::Characteristics(bits) => characteristics(facts) & bits != 0,
        RuleKind::FrameSizeRange { start, end } => {
            let len = p.len();
            usize::from(*start) <= len && len <= usize::from(*end)
        }
        RuleKind::Random(probability) => facts.random <= *probability,
        RuleKind::Tags { op, id, value } => tags_match(facts, *op, *id, *value),
        RuleKind::IntegerRange {
            start,
            end,
            index,
            format,
        } => integer_at(p, *index, *format).is_some_and(|v| *start <= v && v <= *end),
        RuleKind::Unknown { .. } => facts.unsupported_match_result,
        // Actions never get here.
        RuleKind::Drop
        | RuleKind::Accept
        | RuleKind::Tee(_)
        | RuleKind::Watch(_)
        | RuleKind::Redirect(_)
        | RuleKind::Break
        | RuleKind::Priority => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_wire::netconf::NetworkConfig;
    use zt_wire::network_id::NetworkId;

    fn facts(ethertype: u16, payload: &[u8]) -> FrameFacts<'_> {
        FrameFacts {
            inbound: true,
            us: Address::new(0x1111111111).unwrap(),
            zt_source: Address::new(0x2222222222).unwrap(),
            zt_dest: Address::new(0x1111111111).unwrap(),
            src_mac: Mac::from_u64(0x0a00_0000_0002),
            dst_mac: Mac::from_u64(0x0a00_0000_0001),
            ethertype,
            payload,
            sender_tags: TagValues::Unknown,
            receiver_tags: TagValues::Unknown,
            unsupported_match_result: false,
            random: 0,
        }
    }

    /// An IPv6 packet with the given next header and layer-4 bytes.
    fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, l4.len() as u8, next, 64];
        p.extend_from_slice(&[0xfc; 16]);
        p.extend_from_slice(&[0xfd; 16]);
        p.extend_from_slice(l4);
        p
    }

    fn tcp(dst_port: u16, flags: u8) -> Vec<u8> {
        let mut h = vec![0x30, 0x39];
        h.extend_from_slice(&dst_port.to_be_bytes());
        h.extend_from_slice(&[0; 8]);
        h.push(0x50);
        h.push(flags);
        h.extend_from_slice(&[0; 6]);
        h
    }

    /// The port-range ad-hoc network's 14 rules (§6.1) allow exactly what they say.
    #[test]
    fn adhoc_port_range_rules() {
        let nwid = NetworkId::adhoc_port_range(7000, 7999);
        let config = NetworkConfig::adhoc(nwid, Address::new(0x1111111111).unwrap(), 1).unwrap();
        let verdict = |ethertype: u16, payload: &[u8]| {
            evaluate(
                &facts(ethertype, payload),
                &config.rules,
                std::iter::empty(),
            )
            .verdict
        };
        let accept = Verdict::Accept {
            super_accept: false,
        };
        // IPv4 is dropped; ICMPv6 is fine.
        assert_eq!(verdict(0x0800, &[0x45; 40]), Verdict::Drop);
        assert_eq!(verdict(0x86dd, &ipv6(58, &[128, 0, 0, 0])), accept);
        // UDP and TCP SYN into the range; outside it, SYN is refused but not other TCP.
        let mut udp = 0x1234u16.to_be_bytes().to_vec();
        udp.extend_from_slice(&7500u16.to_be_bytes());
        udp.extend_from_slice(&[0, 8, 0, 0]);
        assert_eq!(verdict(0x86dd, &ipv6(17, &udp)), accept);
        assert_eq!(verdict(0x86dd, &ipv6(6, &tcp(7000, 0x02))), accept);
        assert_eq!(verdict(0x86dd, &ipv6(6, &tcp(22, 0x02))), Verdict::Drop);
        assert_eq!(verdict(0x86dd, &ipv6(6, &tcp(22, 0x10))), accept);
        assert_eq!(verdict(0x86dd, &ipv6(6, &tcp(22, 0x12))), accept);
        // Rule 4 ("NOT TCP SYN → ACCEPT") lets any non-SYN packet through, UDP included.
        let mut udp_out = 0x1234u16.to_be_bytes().to_vec();
        udp_out.extend_from_slice(&53u16.to_be_bytes());
        udp_out.extend_from_slice(&[0, 8, 0, 0]);
        assert_eq!(verdict(0x86dd, &ipv6(17, &udp_out)), accept);
    }

    #[test]
    fn no_rules_drop_and_capabilities_can_accept() {
        let f = facts(0x0800, &[0x45; 40]);
        assert_eq!(evaluate(&f, &[], std::iter::empty()).verdict, Verdict::Drop);
        let cap = vec![Rule::new(RuleKind::Ethertype(0x0800)), Rule::accept()];
        let caps = [cap.as_slice()];
        assert_eq!(
            evaluate(&f, &[], caps.iter().copied()).verdict,
            Verdict::Accept {
                super_accept: false
            }
        );
    }

    #[test]
    fn tee_copies_redirect_diverts_and_tags_compare() {
        let target = Address::new(0x3333333333).unwrap();
        let forward = Forward {
            address: target,
            flags: 0,
            length: 64,
        };
        let f = facts(0x0806, &[0; 28]);
        let out = evaluate(
            &f,
            &[Rule::new(RuleKind::Tee(forward)), Rule::accept()],
            std::iter::empty(),
        );
        assert_eq!(out.copies, vec![(forward, false)]);
        let redirected = evaluate(
            &f,
            &[Rule::new(RuleKind::Redirect(forward)), Rule::accept()],
            std::iter::empty(),
        );
        assert_eq!(redirected.verdict, Verdict::Redirect(forward));

        let nwid = NetworkId(0x8056c2e21c000001);
        let tag = |id: u32, value: u32| Tag::new(nwid, 1, id, value, target);
        // Ours as a config lists them (a repeated ID takes its last value); theirs by ID.
        let ours = [tag(7, 3), tag(9, 1), tag(7, 10)];
        let theirs: HashMap<u32, Tag> = [(7, tag(7, 12))].into();
        let tagged = FrameFacts {
            sender_tags: TagValues::Config(&ours),
            receiver_tags: TagValues::Member(&theirs),
            ..facts(0x0806, &[0; 28])
        };
        let rules = |op, value| {
            vec![
                Rule::new(RuleKind::Tags { op, id: 7, value }).negated(),
                Rule::drop(),
                Rule::accept(),
            ]
        };
        let v = |op, value| evaluate(&tagged, &rules(op, value), std::iter::empty()).verdict;
        assert_ne!(v(TagOp::Difference, 2), Verdict::Drop);
        assert_eq!(v(TagOp::Difference, 1), Verdict::Drop);
        assert_ne!(v(TagOp::Sender, 10), Verdict::Drop);
        assert_ne!(v(TagOp::Receiver, 12), Verdict::Drop);
        assert_ne!(v(TagOp::BitwiseAnd, 8), Verdict::Drop);
        assert_eq!(v(TagOp::Equal, 10), Verdict::Drop);
    }
}
