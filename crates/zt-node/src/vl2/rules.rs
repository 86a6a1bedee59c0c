//! The rules engine (PROTOCOL.md §6.7; `Network::_doZtFilter`): a network's rules, then the
//! capabilities, decide whether a frame is sent or delivered, and which copies go where.
//!
//! Evaluation walks the list keeping one "set matches" flag: a match rule ANDs into it (ORs
//! with its OR bit), after XOR with its NOT bit; an action rule fires if the set matched and
//! then starts a new set. DROP and ACCEPT end the walk, BREAK ends it without a verdict,
//! TEE/WATCH add a copy and go on, REDIRECT sends the frame elsewhere. No verdict from the
//! network's rules nor any capability means DROP.
//!
//! Every member of a network evaluates the same rules, real ZeroTier nodes included, so the
//! quirks of ZeroTier's filter are kept on purpose: some results are final whatever the NOT bit
//! says ([`Match::Hard`]: an IPv4 match never matches an ARP frame, `not` or not), a tag match
//! on a sent frame whose receiver's tags are not known yet lets the frame out past the next
//! DROP (the receiver filters it), and a TEE/WATCH/REDIRECT to us in a set that did not match
//! makes a later ACCEPT a super-accept.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use zt_crypto::Address;
use zt_wire::coo::{CertificateOfOwnership, Thing};
use zt_wire::inet::InetAddress;
use zt_wire::mac::Mac;
use zt_wire::netconf::NetworkConfig;
use zt_wire::rules::{Forward, Rule, RuleKind, TagOp};
use zt_wire::tag::Tag;

/// Frame characteristic bits for the CHARACTERISTICS match (`ZT_RULE_PACKET_CHARACTERISTICS_*`).
pub const CHARACTERISTIC_INBOUND: u64 = 0x8000_0000_0000_0000;
pub const CHARACTERISTIC_MULTICAST: u64 = 0x4000_0000_0000_0000;
pub const CHARACTERISTIC_BROADCAST: u64 = 0x2000_0000_0000_0000;
pub const CHARACTERISTIC_SENDER_IP_AUTHENTICATED: u64 = 0x1000_0000_0000_0000;
pub const CHARACTERISTIC_SENDER_MAC_AUTHENTICATED: u64 = 0x0800_0000_0000_0000;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 0x3a;
const NEIGHBOR_SOLICITATION: u8 = 0x87;
const NEIGHBOR_ADVERTISEMENT: u8 = 0x88;

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
    /// Our tags (the config's) and the other member's, when known.
    pub our_tags: TagValues<'a>,
    pub their_tags: TagValues<'a>,
    /// What proves the sender owns its addresses (CHARACTERISTICS' authenticated bits).
    pub ownership: Ownership<'a>,
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

/// The certificates of ownership that vouch for a frame's source: for a received frame, the
/// sending member's; for a sent one, our config's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ownership<'a> {
    None,
    Member {
        certificates: &'a HashMap<u32, CertificateOfOwnership>,
        /// With NDP emulation on and a 6plane address of ours, ZeroTier treats every IPv6
        /// source in our 6plane /40 as owned (`Membership::_isV6NDPEmulated`).
        ndp_emulated_prefix: Option<[u8; 5]>,
    },
    Config(&'a [CertificateOfOwnership]),
}

impl Ownership<'_> {
    fn owns(&self, thing: &Thing) -> bool {
        match self {
            Ownership::None => false,
            Ownership::Member {
                certificates,
                ndp_emulated_prefix,
            } => {
                certificates.values().any(|c| c.owns(thing))
                    || matches!((thing, ndp_emulated_prefix),
                        (Thing::Ipv6(ip), Some(prefix)) if ip.octets()[..5] == prefix[..])
            }
            Ownership::Config(certificates) => certificates.iter().any(|c| c.owns(thing)),
        }
    }
}

/// The /40 that ZeroTier's NDP emulation vouches for: our 6plane prefix, when the config turns
/// emulation on and assigns us our 6plane address.
pub(crate) fn ndp_emulated_prefix(config: &NetworkConfig) -> Option<[u8; 5]> {
    if !config.ndp_emulation() {
        return None;
    }
    let sixplane = config.network_id.sixplane_address(config.issued_to);
    config
        .static_ips
        .iter()
        .any(|ip| matches!(ip, InetAddress::V6(a) if *a.ip() == sixplane))
        .then(|| sixplane.octets()[..5].try_into().expect("5 of 16 octets"))
}

enum Walk {
    Verdict(Verdict),
    NoMatch,
}

/// A match rule's result as ZeroTier's filter computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Inverted by the rule's NOT bit.
    Is(bool),
    /// Final whatever the NOT bit says (ZeroTier's `hardYes`/`hardNo`).
    Hard(bool),
}

/// What one walk of a rule list carries from rule to rule besides the set's flag.
#[derive(Default)]
struct WalkState {
    /// A TEE/WATCH/REDIRECT to us was seen in a set that did not match: ACCEPT super-accepts.
    super_accept: bool,
    /// A tag match could not be decided on a sent frame: the next DROP is passed over.
    skip_drop: bool,
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
    let mut state = WalkState::default();
    for rule in rules {
        if rule.is_action() {
            if set_matches {
                match &rule.kind {
                    RuleKind::Drop if std::mem::take(&mut state.skip_drop) => continue,
                    RuleKind::Drop => return Walk::Verdict(Verdict::Drop),
                    RuleKind::Accept => {
                        return Walk::Verdict(Verdict::Accept {
                            super_accept: state.super_accept,
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
            } else if let RuleKind::Tee(f) | RuleKind::Watch(f) | RuleKind::Redirect(f) = &rule.kind
            {
                // Frames sent to us by such a rule are accepted past the addressing checks,
                // if they are accepted at all (ZeroTier sets this on a set that did not match).
                if facts.inbound && f.address == facts.us {
                    state.super_accept = true;
                }
            }
            set_matches = true;
            continue;
        }
        if !set_matches && !rule.or {
            continue;
        }
        let this = match matches(facts, &rule.kind, &mut state) {
            Match::Is(m) => m != rule.not,
            Match::Hard(m) => m,
        };
        if rule.or {
            set_matches |= this;
        } else {
            set_matches &= this;
        }
    }
    Walk::NoMatch
}

/// An IPv4 frame as ZeroTier's filter accepts one: the ethertype says so and the payload holds
/// a header's worth of bytes (the version nibble is not looked at).
fn ipv4<'a>(facts: &FrameFacts<'a>) -> Option<&'a [u8]> {
    (facts.ethertype == ETHERTYPE_IPV4 && facts.payload.len() >= 20).then_some(facts.payload)
}

fn ipv6<'a>(facts: &FrameFacts<'a>) -> Option<&'a [u8]> {
    (facts.ethertype == ETHERTYPE_IPV6 && facts.payload.len() >= 40).then_some(facts.payload)
}

/// The upper-layer protocol of an IPv6 packet and where it starts, past hop-by-hop, routing,
/// destination and mobility options (`_ipv6GetPayload`: fragments, AH and ESP end the walk
/// and are the protocol). `None` for a packet too short for what it says.
fn ipv6_payload(p: &[u8]) -> Option<(u8, usize)> {
    if p.len() < 40 {
        return None;
    }
    let mut at = 40;
    let mut next = p[6];
    while at <= p.len() {
        match next {
            0 | 43 | 60 | 135 => {
                if at + 8 > p.len() {
                    return None;
                }
                next = p[at];
                at += usize::from(p[at + 1]) * 8 + 8;
            }
            _ => return Some((next, at)),
        }
    }
    None
}

/// (protocol, layer-4 offset) of an IP frame, `None` for anything else.
fn layer4(facts: &FrameFacts<'_>) -> Option<(u8, usize)> {
    if let Some(p) = ipv4(facts) {
        return Some((p[9], usize::from(p[0] & 0x0f) * 4));
    }
    if facts.ethertype == ETHERTYPE_IPV6 {
        return ipv6_payload(facts.payload);
    }
    None
}

fn ipv4_at(p: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3])
}

fn ipv6_at(p: &[u8], at: usize) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = p.get(at..at + 16)?.try_into().ok()?;
    Some(octets.into())
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

/// A port of a TCP, UDP, SCTP or UDP-Lite frame. `Hard(false)` for a frame that is not IP.
fn port_in_range(facts: &FrameFacts<'_>, destination: bool, start: u16, end: u16) -> Match {
    let Some((protocol, l4)) = layer4(facts) else {
        return Match::Hard(false);
    };
    let p = facts.payload;
    let port = (matches!(protocol, 6 | 17 | 132 | 136) && p.len() > l4 + 4).then(|| {
        let at = l4 + if destination { 2 } else { 0 };
        u16::from_be_bytes([p[at], p[at + 1]])
    });
    // ZeroTier's IPv6 branch takes no port 0; its IPv4 branch does.
    let usable = port.filter(|&port| facts.ethertype == ETHERTYPE_IPV4 || port > 0);
    Match::Is(usable.is_some_and(|port| start <= port && port <= end))
}

fn icmp(facts: &FrameFacts<'_>, icmp_type: u8, code: u8, flags: u8) -> Match {
    let p = facts.payload;
    let header = match layer4(facts) {
        Some((1, l4)) if facts.ethertype == ETHERTYPE_IPV4 => p.get(l4..l4 + 2),
        Some((ICMPV6, l4)) if facts.ethertype == ETHERTYPE_IPV6 => p.get(l4..l4 + 2),
        _ => None,
    };
    match header {
        Some(h) if h[0] == icmp_type => {
            if flags & 0x01 != 0 {
                Match::Is(h[1] == code)
            } else {
                Match::Hard(true)
            }
        }
        _ => Match::Hard(false),
    }
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
    c |= authenticated_sender(facts);
    // ZeroTier reads an IPv6 packet's TCP flags only when more than the flags is there.
    let tcp_flags = match layer4(facts) {
        Some((6, l4)) if facts.ethertype == ETHERTYPE_IPV4 || facts.payload.len() > l4 + 14 => {
            facts.payload.get(l4 + 12..l4 + 14)
        }
        _ => None,
    };
    if let Some(h) = tcp_flags {
        c |= (u64::from(h[0] & 0x0f) << 8) | u64::from(h[1]);
    }
    c
}

/// The "sender IP/MAC authenticated" characteristics: the frame's source address is one a
/// certificate of ownership vouches for. An IPv6 neighbour solicitation counts as
/// authenticated (its source may not be assigned yet); an advertisement is judged by the
/// address it advertises.
fn authenticated_sender(facts: &FrameFacts<'_>) -> u64 {
    let p = facts.payload;
    let mut bits = 0;
    let mut source: Option<IpAddr> = None;
    if let Some(p) = ipv4(facts) {
        source = Some(ipv4_at(p, 12).into());
    } else if let Some(p) = ipv6(facts) {
        let neighbor_message = p.len() >= 40 + 8 + 16 && p[6] == ICMPV6;
        if neighbor_message && p[40] == NEIGHBOR_SOLICITATION {
            bits |= CHARACTERISTIC_SENDER_IP_AUTHENTICATED;
        } else if neighbor_message && p[40] == NEIGHBOR_ADVERTISEMENT {
            source = ipv6_at(p, 48).map(IpAddr::V6);
        } else {
            source = ipv6_at(p, 8).map(IpAddr::V6);
        }
    } else if facts.ethertype == ETHERTYPE_ARP && p.len() >= 28 {
        source = Some(ipv4_at(p, 14).into());
    }
    let source = source.map(|ip| match ip {
        IpAddr::V4(v4) => Thing::Ipv4(v4),
        IpAddr::V6(v6) => Thing::Ipv6(v6),
    });
    if source.is_some_and(|s| facts.ownership.owns(&s)) {
        bits |= CHARACTERISTIC_SENDER_IP_AUTHENTICATED;
    }
    // (NDP emulation in `owns` vouches for IPv6 addresses only, never for a MAC.)
    if facts.ownership.owns(&Thing::Mac(facts.src_mac)) {
        bits |= CHARACTERISTIC_SENDER_MAC_AUTHENTICATED;
    }
    bits
}

/// ZeroTier reads a big-endian integer of `bytes` bytes at `index + 8 - bytes` (its
/// `Network.cpp` does so, and every member must read the same bytes) and keeps its low bits; a
/// little-endian one at `index`, keeping its high bits. Out of the frame, the integer is 0.
fn integer_at(p: &[u8], index: u16, format: u8) -> u64 {
    let bits = u32::from(format & 0x3f) + 1;
    let bytes = bits.div_ceil(8) as usize;
    let little_endian = format & 0x80 != 0;
    let at = usize::from(index) + if little_endian { 0 } else { 8 - bytes };
    let Some(raw) = p.get(at..at + bytes) else {
        return 0;
    };
    let mut v: u64 = 0;
    if little_endian {
        for b in raw.iter().rev() {
            v = (v << 8) | u64::from(*b);
        }
        v >> (bytes as u32 * 8 - bits)
    } else {
        for b in raw {
            v = (v << 8) | u64::from(*b);
        }
        if bits < 64 {
            v &= (1u64 << bits) - 1;
        }
        v
    }
}

/// The INTEGER_RANGE match: ZeroTier keeps the range as a start and a 32-bit span.
fn integer_in_range(v: u64, start: u64, end: u64) -> bool {
    let span = u64::from(end.wrapping_sub(start) as u32);
    start <= v && v <= start.wrapping_add(span)
}

fn tags_match(
    facts: &FrameFacts<'_>,
    op: TagOp,
    id: u32,
    value: u32,
    state: &mut WalkState,
) -> Match {
    let local = facts.our_tags.value(id);
    let remote = facts.their_tags.value(id);
    // Unknown remote tag on a sent frame: let it out past the next DROP (the receiver, which
    // knows our tags, filters it); on a received one, no match.
    let undecided = |state: &mut WalkState| {
        if facts.inbound && !state.super_accept {
            Match::Hard(false)
        } else {
            state.skip_drop = true;
            Match::Hard(true)
        }
    };
    match op {
        TagOp::Sender | TagOp::Receiver => {
            if state.super_accept {
                state.skip_drop = true;
                return Match::Hard(true);
            }
            let theirs = (op == TagOp::Sender) == facts.inbound;
            if theirs {
                match remote {
                    Some(v) => Match::Is(v == value),
                    None if op == TagOp::Receiver => {
                        state.skip_drop = true;
                        Match::Hard(true)
                    }
                    None => Match::Hard(false),
                }
            } else {
                local.map_or(Match::Hard(false), |v| Match::Is(v == value))
            }
        }
        _ => {
            let Some(a) = local else {
                return Match::Hard(false);
            };
            let Some(b) = remote else {
                return undecided(state);
            };
            Match::Is(match op {
                TagOp::Difference => a.abs_diff(b) <= value,
                TagOp::BitwiseAnd => a & b == value,
                TagOp::BitwiseOr => a | b == value,
                TagOp::BitwiseXor => a ^ b == value,
                TagOp::Equal => a == value && b == value,
                TagOp::Sender | TagOp::Receiver => false,
            })
        }
    }
}

fn matches(facts: &FrameFacts<'_>, kind: &RuleKind, state: &mut WalkState) -> Match {
    use Match::{Hard, Is};
    let p = facts.payload;
    match kind {
        RuleKind::SourceZeroTierAddress(a) => Is(*a == facts.zt_source),
        RuleKind::DestZeroTierAddress(a) => Is(*a == facts.zt_dest),
        // Frames reach us without 802.1Q tags: VLAN ID, PCP and DEI are all 0.
        RuleKind::VlanId(v) => Is(*v == 0),
        RuleKind::VlanPcp(v) | RuleKind::VlanDei(v) => Is(*v == 0),
        RuleKind::MacSource(m) => Is(*m == facts.src_mac),
        RuleKind::MacDest(m) => Is(*m == facts.dst_mac),
        RuleKind::Ipv4Source { ip: net, bits } => {
            ipv4(facts).map_or(Hard(false), |p| Is(prefix_v4(ipv4_at(p, 12), *net, *bits)))
        }
        RuleKind::Ipv4Dest { ip: net, bits } => {
            ipv4(facts).map_or(Hard(false), |p| Is(prefix_v4(ipv4_at(p, 16), *net, *bits)))
        }
        RuleKind::Ipv6Source { ip: net, bits } => ipv6(facts)
            .and_then(|p| ipv6_at(p, 8))
            .map_or(Hard(false), |s| Is(prefix_v6(s, *net, *bits))),
        RuleKind::Ipv6Dest { ip: net, bits } => ipv6(facts)
            .and_then(|p| ipv6_at(p, 24))
            .map_or(Hard(false), |d| Is(prefix_v6(d, *net, *bits))),
        RuleKind::IpTos { mask, start, end } => {
            let tos = if ipv4(facts).is_some() {
                p[1]
            } else if ipv6(facts).is_some() {
                (p[0] << 4) | (p[1] >> 4)
            } else {
                return Hard(false);
            };
            let t = tos & mask;
            Is(*start <= t && t <= *end)
        }
        RuleKind::IpProtocol(proto) => layer4(facts).map_or(Hard(false), |(p, _)| Is(p == *proto)),
        RuleKind::Ethertype(e) => Is(*e == facts.ethertype),
        RuleKind::Icmp {
            icmp_type,
            code,
            flags,
        } => icmp(facts, *icmp_type, *code, *flags),
        RuleKind::IpSourcePortRange { start, end } => port_in_range(facts, false, *start, *end),
        RuleKind::IpDestPortRange { start, end } => port_in_range(facts, true, *start, *end),
        RuleKind::Characteristics(bits) => Is(characteristics(facts) & bits != 0),
        RuleKind::FrameSizeRange { start, end } => {
            let len = p.len();
            Is(usize::from(*start) <= len && len <= usize::from(*end))
        }
        RuleKind::Random(probability) => Is(facts.random <= *probability),
        RuleKind::Tags { op, id, value } => tags_match(facts, *op, *id, *value, state),
        RuleKind::IntegerRange {
            start,
            end,
            index,
            format,
        } => Is(integer_in_range(
            integer_at(p, *index, *format),
            *start,
            *end,
        )),
        RuleKind::Unknown { .. } => Is(facts.unsupported_match_result),
        // Actions never get here.
        RuleKind::Drop
        | RuleKind::Accept
        | RuleKind::Tee(_)
        | RuleKind::Watch(_)
        | RuleKind::Redirect(_)
        | RuleKind::Break
        | RuleKind::Priority => Is(false),
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
            our_tags: TagValues::Unknown,
            their_tags: TagValues::Unknown,
            ownership: Ownership::None,
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
        let received = FrameFacts {
            our_tags: TagValues::Config(&ours),
            their_tags: TagValues::Member(&theirs),
            ..facts(0x0806, &[0; 28])
        };
        let rules = |op, value| {
            vec![
                Rule::new(RuleKind::Tags { op, id: 7, value }).negated(),
                Rule::drop(),
                Rule::accept(),
            ]
        };
        let v = |op, value| evaluate(&received, &rules(op, value), std::iter::empty()).verdict;
        assert_ne!(v(TagOp::Difference, 2), Verdict::Drop);
        assert_eq!(v(TagOp::Difference, 1), Verdict::Drop);
        // Received: the sender is them, the receiver us.
        assert_ne!(v(TagOp::Sender, 12), Verdict::Drop);
        assert_eq!(v(TagOp::Sender, 10), Verdict::Drop);
        assert_ne!(v(TagOp::Receiver, 10), Verdict::Drop);
        assert_ne!(v(TagOp::BitwiseAnd, 8), Verdict::Drop);
        assert_eq!(v(TagOp::Equal, 10), Verdict::Drop);
    }

    fn verdict(facts: &FrameFacts<'_>, rules: &[Rule]) -> Verdict {
        evaluate(facts, rules, std::iter::empty()).verdict
    }

    const ACCEPT: Verdict = Verdict::Accept {
        super_accept: false,
    };

    /// ZeroTier's "hard" results ignore NOT: an IP match never matches a frame that is not
    /// IP, and an ICMP type match without a code is true even under NOT.
    #[test]
    fn hard_results_ignore_the_not_bit() {
        let not_from_ten = [
            Rule::new(RuleKind::Ipv4Source {
                ip: Ipv4Addr::new(10, 0, 0, 0),
                bits: 8,
            })
            .negated(),
            Rule::drop(),
            Rule::accept(),
        ];
        let mut v4 = vec![0x45u8; 20];
        v4[12..16].copy_from_slice(&[192, 168, 1, 1]);
        assert_eq!(verdict(&facts(0x0800, &v4), &not_from_ten), Verdict::Drop);
        v4[12] = 10;
        assert_eq!(verdict(&facts(0x0800, &v4), &not_from_ten), ACCEPT);
        // ARP is not IPv4: the negated match is still no match.
        assert_eq!(verdict(&facts(0x0806, &[0; 28]), &not_from_ten), ACCEPT);
        // Too short for an IPv4 header: the same.
        assert_eq!(verdict(&facts(0x0800, &[0x45; 19]), &not_from_ten), ACCEPT);

        let not_echo_request = [
            Rule::new(RuleKind::Icmp {
                icmp_type: 8,
                code: 0,
                flags: 0,
            })
            .negated(),
            Rule::drop(),
            Rule::accept(),
        ];
        let mut ping = vec![0u8; 28];
        ping[0] = 0x45;
        ping[9] = 1;
        ping[20] = 8;
        assert_eq!(
            verdict(&facts(0x0800, &ping), &not_echo_request),
            Verdict::Drop
        );
        ping[20] = 0;
        assert_eq!(verdict(&facts(0x0800, &ping), &not_echo_request), ACCEPT);
    }

    /// Tag matches that cannot be decided: a sent frame goes out past the next DROP (its
    /// receiver filters it), a received one does not match; without a tag of our own, no match.
    #[test]
    fn undecided_tag_matches_follow_zerotier() {
        let nwid = NetworkId(0x8056c2e21c000001);
        let member = Address::new(0x3333333333).unwrap();
        let ours = [Tag::new(nwid, 1, 1000, 1, member)];
        let theirs: HashMap<u32, Tag> = [(1000, Tag::new(nwid, 1, 1000, 2, member))].into();
        let same_department = [
            Rule::new(RuleKind::Tags {
                op: TagOp::Difference,
                id: 1000,
                value: 0,
            })
            .negated(),
            Rule::drop(),
            Rule::accept(),
        ];
        let frame = |inbound: bool, their_tags| FrameFacts {
            inbound,
            our_tags: TagValues::Config(&ours),
            their_tags,
            ..facts(0x0800, &[0x45; 20])
        };
        let known = TagValues::Member(&theirs);
        assert_eq!(
            verdict(&frame(true, known), &same_department),
            Verdict::Drop
        );
        assert_eq!(
            verdict(&frame(false, known), &same_department),
            Verdict::Drop
        );
        assert_eq!(
            verdict(&frame(false, TagValues::Unknown), &same_department),
            ACCEPT
        );
        assert_eq!(
            verdict(&frame(true, TagValues::Unknown), &same_department),
            ACCEPT
        );
        // Skipping a DROP lasts for one DROP only.
        let twice = [
            Rule::new(RuleKind::Tags {
                op: TagOp::Difference,
                id: 1000,
                value: 0,
            }),
            Rule::drop(),
            Rule::drop(),
        ];
        assert_eq!(
            verdict(&frame(false, TagValues::Unknown), &twice),
            Verdict::Drop
        );
        // No tag 1000 of ours: never a match, NOT or not.
        let untagged = FrameFacts {
            our_tags: TagValues::Unknown,
            ..frame(true, known)
        };
        assert_eq!(verdict(&untagged, &same_department), ACCEPT);
        // The receiver's tag on a sent frame, unknown: out it goes.
        let receiver_is_2 = [
            Rule::new(RuleKind::Tags {
                op: TagOp::Receiver,
                id: 1000,
                value: 2,
            })
            .negated(),
            Rule::drop(),
            Rule::accept(),
        ];
        assert_eq!(
            verdict(&frame(false, TagValues::Unknown), &receiver_is_2),
            ACCEPT
        );
        assert_eq!(verdict(&frame(false, known), &receiver_is_2), ACCEPT);
        // Received: the receiver is us (1), so the negated match holds.
        assert_eq!(verdict(&frame(true, known), &receiver_is_2), Verdict::Drop);
    }

    /// A TEE to us in a set that did not match makes a later ACCEPT a super-accept.
    #[test]
    fn an_unmatched_tee_to_us_super_accepts() {
        let us = Address::new(0x1111111111).unwrap();
        let rules = [
            Rule::new(RuleKind::Ethertype(0x86dd)),
            Rule::new(RuleKind::Tee(Forward {
                address: us,
                flags: 0,
                length: 0,
            })),
            Rule::accept(),
        ];
        assert_eq!(
            verdict(&facts(0x0800, &[0x45; 20]), &rules),
            Verdict::Accept { super_accept: true }
        );
        let sent = FrameFacts {
            inbound: false,
            ..facts(0x0800, &[0x45; 20])
        };
        assert_eq!(verdict(&sent, &rules), ACCEPT);
    }

    /// Integers are read where ZeroTier reads them: big-endian ones `8 - bytes` further on,
    /// keeping their low bits; little-endian ones keeping their high bits; 0 out of the frame.
    #[test]
    fn integers_are_read_as_zerotier_reads_them() {
        let p: Vec<u8> = (0u8..16).collect();
        assert_eq!(integer_at(&p, 0, 15), 0x0607);
        assert_eq!(integer_at(&p, 0, 63), 0x0001_0203_0405_0607);
        assert_eq!(integer_at(&p, 2, 0x80 | 15), 0x0302);
        assert_eq!(integer_at(&p, 2, 0x80 | 11), 0x030);
        assert_eq!(integer_at(&p, 2, 7), 0x09);
        assert_eq!(integer_at(&p, 10, 15), 0);
        assert!(integer_in_range(5, 5, 5));
        assert!(integer_in_range(u64::MAX, u64::MAX - 1, u64::MAX));
        assert!(!integer_in_range(4, 5, 9));
        // The span is 32 bits wide on the wire's readers.
        assert!(!integer_in_range(1 << 33, 0, 1 << 33));
    }

    /// The authenticated-sender characteristics come from certificates of ownership.
    #[test]
    fn sender_authenticated_by_certificates_of_ownership() {
        let nwid = NetworkId(0x8056c2e21c000001);
        let member = Address::new(0x2222222222).unwrap();
        let coo = CertificateOfOwnership::new(
            nwid,
            1,
            1,
            vec![
                Thing::Ipv4(Ipv4Addr::new(10, 9, 0, 2)),
                Thing::Mac(Mac::from_u64(0x0a00_0000_0002)),
            ],
            member,
        )
        .unwrap();
        let certificates: HashMap<u32, CertificateOfOwnership> = [(1, coo)].into();
        let mut v4 = vec![0x45u8; 20];
        v4[12..16].copy_from_slice(&[10, 9, 0, 2]);
        let owned = FrameFacts {
            ownership: Ownership::Member {
                certificates: &certificates,
                ndp_emulated_prefix: None,
            },
            ..facts(0x0800, &v4)
        };
        let both = CHARACTERISTIC_SENDER_IP_AUTHENTICATED | CHARACTERISTIC_SENDER_MAC_AUTHENTICATED;
        assert_eq!(characteristics(&owned) & both, both);
        let mut other = v4.clone();
        other[15] = 3;
        let other_ip = FrameFacts {
            payload: &other,
            ..owned
        };
        assert_eq!(
            characteristics(&other_ip) & both,
            CHARACTERISTIC_SENDER_MAC_AUTHENTICATED
        );
        assert_eq!(characteristics(&facts(0x0800, &other)) & both, 0);
        // A neighbour solicitation is taken as authenticated.
        let mut solicitation = ipv6(58, &[0x87; 24]);
        solicitation[6] = 58;
        assert_eq!(
            characteristics(&facts(0x86dd, &solicitation)) & both,
            CHARACTERISTIC_SENDER_IP_AUTHENTICATED
        );
    }

    /// IPv6 extension headers as ZeroTier walks them: a fragment header ends the walk.
    #[test]
    fn ipv6_payload_walk() {
        let mut hop_by_hop = vec![17, 0, 0, 0, 0, 0, 0, 0];
        hop_by_hop.extend_from_slice(&[0; 8]);
        assert_eq!(ipv6_payload(&ipv6(0, &hop_by_hop)), Some((17, 48)));
        assert_eq!(
            ipv6_payload(&ipv6(44, &[17, 0, 0, 0, 0, 0, 0, 0])),
            Some((44, 40))
        );
        assert_eq!(ipv6_payload(&ipv6(0, &[17, 0, 0])), None);
        assert_eq!(ipv6_payload(&[0x60; 39]), None);
    }
}
