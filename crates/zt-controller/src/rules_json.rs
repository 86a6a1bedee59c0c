//! Flow rules in zerotier-one's controller JSON (PROTOCOL.md §7.4 "Rule JSON") and their wire
//! form ([`zt_wire::rules::Rule`], PROTOCOL.md §6.7).
//!
//! zerotier-one parses every posted rule into its wire form and stores what it renders back, so
//! a rule reads back in one canonical shape: `type`, the type's own fields, and for matches
//! `not` and `or`. We do the same, which also means what the API shows is exactly what members
//! enforce. Numbers are read leniently (a number, a decimal string, a boolean), as zerotier-one
//! reads them.
//!
//! Where zerotier-one would quietly turn a malformed rule into a different one (an unparsable
//! `ip` into `0.0.0.0/0`, which matches everything; an unknown `type` dropped from the list), we
//! refuse the rule set instead: dropping or widening one rule changes what the whole list
//! allows, and a network engineer expects the rules they wrote or an error, not a third thing.
use std::net::IpAddr;

use serde_json::{json, Map, Value};
use zt_crypto::Address;
use zt_wire::mac::Mac;
use zt_wire::rules::{Forward, Rule, RuleKind, TagOp};

use crate::lenient::{json_bool, json_int, json_int_hex, json_string};

/// Why one rule object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleJsonError {
    #[error("expected a rule object, got {0}")]
    NotAnObject(String),
    #[error("unknown rule type {0:?}")]
    UnknownType(String),
    #[error("{field}: {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
}

fn bad(field: &'static str, problem: impl Into<String>) -> RuleJsonError {
    RuleJsonError::BadField {
        field,
        problem: problem.into(),
    }
}

/// The tag-comparing match types and their JSON names.
const TAG_TYPES: [(&str, TagOp); 7] = [
    ("MATCH_TAGS_DIFFERENCE", TagOp::Difference),
    ("MATCH_TAGS_BITWISE_AND", TagOp::BitwiseAnd),
    ("MATCH_TAGS_BITWISE_OR", TagOp::BitwiseOr),
    ("MATCH_TAGS_BITWISE_XOR", TagOp::BitwiseXor),
    ("MATCH_TAGS_EQUAL", TagOp::Equal),
    ("MATCH_TAG_SENDER", TagOp::Sender),
    ("MATCH_TAG_RECEIVER", TagOp::Receiver),
];

/// One rule object as its wire rule.
pub fn rule_from_json(v: &Value) -> Result<Rule, RuleJsonError> {
    let Value::Object(o) = v else {
        return Err(RuleJsonError::NotAnObject(v.to_string()));
    };
    let null = Value::Null;
    let field = |k: &str| o.get(k).unwrap_or(&null);
    let int = |k: &str, default: u64| json_int(field(k)).unwrap_or(default);
    let type_name = json_string(field("type")).unwrap_or_default();
    let not = json_bool(field("not")).unwrap_or(false);
    let or = json_bool(field("or")).unwrap_or(false);

    let forward = |with_length: bool| -> Result<Forward, RuleJsonError> {
        Ok(Forward {
            address: zt_address(field("address"), "address")?,
            flags: int("flags", 0) as u32,
            length: if with_length {
                int("length", 0) as u16
            } else {
                0
            },
        })
    };
    let range = |start_key: &str, end_key: &str| -> (u16, u16) {
        let start = int(start_key, 0) as u16;
        let end = int(end_key, u64::from(start)) as u16;
        (start, end)
    };

    let kind = match type_name.as_str() {
        "ACTION_DROP" => RuleKind::Drop,
        "ACTION_ACCEPT" => RuleKind::Accept,
        "ACTION_BREAK" => RuleKind::Break,
        "ACTION_TEE" => RuleKind::Tee(forward(true)?),
        "ACTION_WATCH" => RuleKind::Watch(forward(true)?),
        "ACTION_REDIRECT" => RuleKind::Redirect(forward(false)?),
        "MATCH_SOURCE_ZEROTIER_ADDRESS" => {
            RuleKind::SourceZeroTierAddress(zt_address(field("zt"), "zt")?)
        }
        "MATCH_DEST_ZEROTIER_ADDRESS" => {
            RuleKind::DestZeroTierAddress(zt_address(field("zt"), "zt")?)
        }
        "MATCH_VLAN_ID" => RuleKind::VlanId(int("vlanId", 0) as u16),
        "MATCH_VLAN_PCP" => RuleKind::VlanPcp(int("vlanPcp", 0) as u8),
        "MATCH_VLAN_DEI" => RuleKind::VlanDei(int("vlanDei", 0) as u8),
        "MATCH_MAC_SOURCE" => RuleKind::MacSource(mac(field("mac"))?),
        "MATCH_MAC_DEST" => RuleKind::MacDest(mac(field("mac"))?),
        "MATCH_IPV4_SOURCE" | "MATCH_IPV4_DEST" => {
            let (ip, bits) = match ip_with_bits(field("ip"))? {
                (IpAddr::V4(ip), bits) => (ip, bits.min(32)),
                (IpAddr::V6(_), _) => return Err(bad("ip", "expected an IPv4 address/bits")),
            };
            if type_name == "MATCH_IPV4_SOURCE" {
                RuleKind::Ipv4Source { ip, bits }
            } else {
                RuleKind::Ipv4Dest { ip, bits }
            }
        }
        "MATCH_IPV6_SOURCE" | "MATCH_IPV6_DEST" => {
            let (ip, bits) = match ip_with_bits(field("ip"))? {
                (IpAddr::V6(ip), bits) => (ip, bits.min(128)),
                (IpAddr::V4(_), _) => return Err(bad("ip", "expected an IPv6 address/bits")),
            };
            if type_name == "MATCH_IPV6_SOURCE" {
                RuleKind::Ipv6Source { ip, bits }
            } else {
                RuleKind::Ipv6Dest { ip, bits }
            }
        }
        "MATCH_IP_TOS" => RuleKind::IpTos {
            mask: int("mask", 0) as u8,
            start: int("start", 0) as u8,
            end: int("end", 0) as u8,
        },
        "MATCH_IP_PROTOCOL" => RuleKind::IpProtocol(int("ipProtocol", 0) as u8),
        "MATCH_ETHERTYPE" => RuleKind::Ethertype(int("etherType", 0) as u16),
        "MATCH_ICMP" => {
            // A null (or absent) code means "any code": the flag says whether it counts.
            let code = field("icmpCode");
            let (code, flags) = if code.is_null() {
                (0, 0)
            } else {
                (json_int(code).unwrap_or(0) as u8, 0x01)
            };
            RuleKind::Icmp {
                icmp_type: int("icmpType", 0) as u8,
                code,
                flags,
            }
        }
        "MATCH_IP_SOURCE_PORT_RANGE" => {
            let (start, end) = range("start", "end");
            RuleKind::IpSourcePortRange { start, end }
        }
        "MATCH_IP_DEST_PORT_RANGE" => {
            let (start, end) = range("start", "end");
            RuleKind::IpDestPortRange { start, end }
        }
        "MATCH_FRAME_SIZE_RANGE" => {
            let (start, end) = range("start", "end");
            RuleKind::FrameSizeRange { start, end }
        }
        "MATCH_CHARACTERISTICS" => {
            // The canonical form is a 16-hex-digit string; a plain number is taken too.
            RuleKind::Characteristics(json_int_hex(field("mask")).unwrap_or(0))
        }
        "MATCH_RANDOM" => RuleKind::Random(int("probability", 0) as u32),
        "INTEGER_RANGE" => {
            let start = json_int_hex(field("start")).unwrap_or(0);
            let end = json_int_hex(field("end")).unwrap_or(0);
            // The wire carries the range as start and a 32-bit length.
            let span = end.wrapping_sub(start) as u32;
            let bits = int("bits", 1).wrapping_sub(1) & 63;
            let little = json_bool(field("little")).unwrap_or(false);
            RuleKind::IntegerRange {
                start,
                end: start.wrapping_add(u64::from(span)),
                index: int("idx", 0) as u16,
                format: if little { 0x80 } else { 0 } | bits as u8,
            }
        }
        other => match TAG_TYPES.iter().find(|(name, _)| *name == other) {
            Some((_, op)) => RuleKind::Tags {
                op: *op,
                id: int("id", 0) as u32,
                value: int("value", 0) as u32,
            },
            None => return Err(RuleJsonError::UnknownType(other.to_string())),
        },
    };
    let rule = Rule { not, or, kind };
    // NOT and OR only mean something on matches; the canonical form drops them on actions.
    Ok(if rule.is_action() {
        Rule::new(rule.kind)
    } else {
        rule
    })
}

/// A wire rule in the canonical JSON form (the one zerotier-one stores and returns).
pub fn rule_to_json(rule: &Rule) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    let forward = |put: &mut dyn FnMut(&str, Value), f: &Forward, with_length: bool| {
        put("address", json!(f.address.to_string()));
        put("flags", json!(f.flags));
        if with_length {
            put("length", json!(f.length));
        }
    };
    match &rule.kind {
        RuleKind::Drop => put("type", json!("ACTION_DROP")),
        RuleKind::Accept => put("type", json!("ACTION_ACCEPT")),
        RuleKind::Break => put("type", json!("ACTION_BREAK")),
        RuleKind::Tee(f) => {
            put("type", json!("ACTION_TEE"));
            forward(&mut put, f, true);
        }
        RuleKind::Watch(f) => {
            put("type", json!("ACTION_WATCH"));
            forward(&mut put, f, true);
        }
        RuleKind::Redirect(f) => {
            put("type", json!("ACTION_REDIRECT"));
            forward(&mut put, f, false);
        }
        // Never produced from JSON (zerotier-one's JSON has no name for them); shown by number
        // so that nothing is hidden should one ever be stored.
        RuleKind::Priority | RuleKind::Unknown { .. } => {
            put("type", json!(format!("RULE_TYPE_{}", rule.rule_type())));
        }
        RuleKind::SourceZeroTierAddress(a) => {
            put("type", json!("MATCH_SOURCE_ZEROTIER_ADDRESS"));
            put("zt", json!(a.to_string()));
        }
        RuleKind::DestZeroTierAddress(a) => {
            put("type", json!("MATCH_DEST_ZEROTIER_ADDRESS"));
            put("zt", json!(a.to_string()));
        }
        RuleKind::VlanId(v) => {
            put("type", json!("MATCH_VLAN_ID"));
            put("vlanId", json!(v));
        }
        RuleKind::VlanPcp(v) => {
            put("type", json!("MATCH_VLAN_PCP"));
            put("vlanPcp", json!(v));
        }
        RuleKind::VlanDei(v) => {
            put("type", json!("MATCH_VLAN_DEI"));
            put("vlanDei", json!(v));
        }
        RuleKind::MacSource(m) => {
            put("type", json!("MATCH_MAC_SOURCE"));
            put("mac", json!(mac_text(*m)));
        }
        RuleKind::MacDest(m) => {
            put("type", json!("MATCH_MAC_DEST"));
            put("mac", json!(mac_text(*m)));
        }
        RuleKind::Ipv4Source { ip, bits } => {
            put("type", json!("MATCH_IPV4_SOURCE"));
            put("ip", json!(format!("{ip}/{bits}")));
        }
        RuleKind::Ipv4Dest { ip, bits } => {
            put("type", json!("MATCH_IPV4_DEST"));
            put("ip", json!(format!("{ip}/{bits}")));
        }
        RuleKind::Ipv6Source { ip, bits } => {
            put("type", json!("MATCH_IPV6_SOURCE"));
            put("ip", json!(format!("{ip}/{bits}")));
        }
        RuleKind::Ipv6Dest { ip, bits } => {
            put("type", json!("MATCH_IPV6_DEST"));
            put("ip", json!(format!("{ip}/{bits}")));
        }
        RuleKind::IpTos { mask, start, end } => {
            put("type", json!("MATCH_IP_TOS"));
            put("mask", json!(mask));
            put("start", json!(start));
            put("end", json!(end));
        }
        RuleKind::IpProtocol(p) => {
            put("type", json!("MATCH_IP_PROTOCOL"));
            put("ipProtocol", json!(p));
        }
        RuleKind::Ethertype(e) => {
            put("type", json!("MATCH_ETHERTYPE"));
            put("etherType", json!(e));
        }
        RuleKind::Icmp {
            icmp_type,
            code,
            flags,
        } => {
            put("type", json!("MATCH_ICMP"));
            put("icmpType", json!(icmp_type));
            put(
                "icmpCode",
                if flags & 0x01 != 0 {
                    json!(code)
                } else {
                    Value::Null
                },
            );
        }
        RuleKind::IpSourcePortRange { start, end } => {
            put("type", json!("MATCH_IP_SOURCE_PORT_RANGE"));
            put("start", json!(start));
            put("end", json!(end));
        }
        RuleKind::IpDestPortRange { start, end } => {
            put("type", json!("MATCH_IP_DEST_PORT_RANGE"));
            put("start", json!(start));
            put("end", json!(end));
        }
        RuleKind::FrameSizeRange { start, end } => {
            put("type", json!("MATCH_FRAME_SIZE_RANGE"));
            put("start", json!(start));
            put("end", json!(end));
        }
        RuleKind::Characteristics(mask) => {
            put("type", json!("MATCH_CHARACTERISTICS"));
            put("mask", json!(format!("{mask:016x}")));
        }
        RuleKind::Random(p) => {
            put("type", json!("MATCH_RANDOM"));
            put("probability", json!(p));
        }
        RuleKind::Tags { op, id, value } => {
            let name = TAG_TYPES
                .iter()
                .find(|(_, o)| o == op)
                .map_or("MATCH_TAGS_EQUAL", |(name, _)| *name);
            put("type", json!(name));
            put("id", json!(id));
            put("value", json!(value));
        }
        RuleKind::IntegerRange {
            start,
            end,
            index,
            format,
        } => {
            put("type", json!("INTEGER_RANGE"));
            put("start", json!(format!("{start:016x}")));
            put("end", json!(format!("{end:016x}")));
            put("idx", json!(index));
            put("little", json!(format & 0x80 != 0));
            put("bits", json!((format & 63) + 1));
        }
    }
    if !rule.is_action() {
        o.insert("not".into(), json!(rule.not));
        o.insert("or".into(), json!(rule.or));
    }
    Value::Object(o)
}

/// A rule array: each rule read in order; the first bad one fails the whole list, naming its
/// index (`what[3]: ...`).
pub fn rules_from_json(v: &[Value], what: &str) -> Result<Vec<Rule>, String> {
    v.iter()
        .enumerate()
        .map(|(i, r)| rule_from_json(r).map_err(|e| format!("{what}[{i}]: {e}")))
        .collect()
}

/// Rules in canonical JSON.
pub fn rules_to_json(rules: &[Rule]) -> Value {
    Value::Array(rules.iter().map(rule_to_json).collect())
}

fn zt_address(v: &Value, field: &'static str) -> Result<Address, RuleJsonError> {
    let text = json_string(v).ok_or_else(|| bad(field, "missing ZeroTier address"))?;
    let text = text.trim();
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            field,
            format!("{text:?} is not a ZeroTier address (10 hex digits)"),
        ));
    }
    let n = u64::from_str_radix(text, 16).map_err(|e| bad(field, e.to_string()))?;
    Address::new(n).ok_or_else(|| bad(field, format!("{text:?} is wider than 40 bits")))
}

fn mac(v: &Value) -> Result<Mac, RuleJsonError> {
    let text = json_string(v).ok_or_else(|| bad("mac", "missing MAC address"))?;
    let digits: Vec<u8> = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("mac", format!("{text:?} is not a MAC address")))?;
    if digits.len() != 12 {
        return Err(bad("mac", format!("{text:?} is not a MAC address")));
    }
    let mut octets = [0u8; 6];
    for (i, o) in octets.iter_mut().enumerate() {
        *o = digits[2 * i] << 4 | digits[2 * i + 1];
    }
    Ok(Mac(octets))
}

fn mac_text(m: Mac) -> String {
    let o = m.octets();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        o[0], o[1], o[2], o[3], o[4], o[5]
    )
}

/// `address/bits`; a bare address means a single host.
fn ip_with_bits(v: &Value) -> Result<(IpAddr, u8), RuleJsonError> {
    let text = json_string(v).ok_or_else(|| bad("ip", "missing address/bits"))?;
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text.as_str(), None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| bad("ip", format!("{text:?} is not an address/bits")))?;
    let host_bits = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => host_bits,
        Some(b) => b
            .trim()
            .parse::<u8>()
            .map_err(|_| bad("ip", format!("{text:?} is not an address/bits")))?,
    };
    Ok((addr, bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    /// Every rule type zerotier-one's JSON knows: (canonical JSON, wire rule). The JSON is what
    /// zerotier-one renders, so it must also be what we render.
    fn every_type() -> Vec<(Value, Rule)> {
        let fwd = |length| Forward {
            address: addr("51479cea31"),
            flags: 3,
            length,
        };
        let m = |kind| Rule::new(kind);
        vec![
            (json!({"type": "ACTION_DROP"}), Rule::drop()),
            (json!({"type": "ACTION_ACCEPT"}), Rule::accept()),
            (json!({"type": "ACTION_BREAK"}), m(RuleKind::Break)),
            (
                json!({"type": "ACTION_TEE", "address": "51479cea31", "flags": 3, "length": 64}),
                m(RuleKind::Tee(fwd(64))),
            ),
            (
                json!({"type": "ACTION_WATCH", "address": "51479cea31", "flags": 3, "length": 0}),
                m(RuleKind::Watch(fwd(0))),
            ),
            (
                json!({"type": "ACTION_REDIRECT", "address": "51479cea31", "flags": 3}),
                m(RuleKind::Redirect(fwd(0))),
            ),
            (
                json!({"type": "MATCH_SOURCE_ZEROTIER_ADDRESS", "zt": "deba5dc5b1", "not": false, "or": false}),
                m(RuleKind::SourceZeroTierAddress(addr("deba5dc5b1"))),
            ),
            (
                json!({"type": "MATCH_DEST_ZEROTIER_ADDRESS", "zt": "deba5dc5b1", "not": true, "or": false}),
                m(RuleKind::DestZeroTierAddress(addr("deba5dc5b1"))).negated(),
            ),
            (
                json!({"type": "MATCH_VLAN_ID", "vlanId": 42, "not": false, "or": true}),
                m(RuleKind::VlanId(42)).or(),
            ),
            (
                json!({"type": "MATCH_VLAN_PCP", "vlanPcp": 5, "not": true, "or": true}),
                m(RuleKind::VlanPcp(5)).negated().or(),
            ),
            (
                json!({"type": "MATCH_VLAN_DEI", "vlanDei": 1, "not": false, "or": false}),
                m(RuleKind::VlanDei(1)),
            ),
            (
                json!({"type": "MATCH_MAC_SOURCE", "mac": "02:aa:bb:cc:dd:ee", "not": false, "or": false}),
                m(RuleKind::MacSource(Mac([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]))),
            ),
            (
                json!({"type": "MATCH_MAC_DEST", "mac": "ff:ff:ff:ff:ff:ff", "not": false, "or": false}),
                m(RuleKind::MacDest(Mac::BROADCAST)),
            ),
            (
                json!({"type": "MATCH_IPV4_SOURCE", "ip": "10.0.0.0/8", "not": false, "or": false}),
                m(RuleKind::Ipv4Source {
                    ip: Ipv4Addr::new(10, 0, 0, 0),
                    bits: 8,
                }),
            ),
            (
                json!({"type": "MATCH_IPV4_DEST", "ip": "172.27.27.5/32", "not": false, "or": false}),
                m(RuleKind::Ipv4Dest {
                    ip: Ipv4Addr::new(172, 27, 27, 5),
                    bits: 32,
                }),
            ),
            (
                json!({"type": "MATCH_IPV6_SOURCE", "ip": "fd00::/8", "not": false, "or": false}),
                m(RuleKind::Ipv6Source {
                    ip: "fd00::".parse().unwrap(),
                    bits: 8,
                }),
            ),
            (
                json!({"type": "MATCH_IPV6_DEST", "ip": "::1/128", "not": false, "or": false}),
                m(RuleKind::Ipv6Dest {
                    ip: Ipv6Addr::LOCALHOST,
                    bits: 128,
                }),
            ),
            (
                json!({"type": "MATCH_IP_TOS", "mask": 252, "start": 8, "end": 16, "not": false, "or": false}),
                m(RuleKind::IpTos {
                    mask: 252,
                    start: 8,
                    end: 16,
                }),
            ),
            (
                json!({"type": "MATCH_IP_PROTOCOL", "ipProtocol": 6, "not": false, "or": false}),
                m(RuleKind::IpProtocol(6)),
            ),
            (
                json!({"type": "MATCH_ETHERTYPE", "etherType": 2048, "not": true, "or": false}),
                m(RuleKind::Ethertype(0x0800)).negated(),
            ),
            (
                json!({"type": "MATCH_ICMP", "icmpType": 8, "icmpCode": null, "not": false, "or": false}),
                m(RuleKind::Icmp {
                    icmp_type: 8,
                    code: 0,
                    flags: 0,
                }),
            ),
            (
                json!({"type": "MATCH_ICMP", "icmpType": 3, "icmpCode": 4, "not": false, "or": false}),
                m(RuleKind::Icmp {
                    icmp_type: 3,
                    code: 4,
                    flags: 1,
                }),
            ),
            (
                json!({"type": "MATCH_IP_SOURCE_PORT_RANGE", "start": 1, "end": 1023, "not": false, "or": false}),
                m(RuleKind::IpSourcePortRange {
                    start: 1,
                    end: 1023,
                }),
            ),
            (
                json!({"type": "MATCH_IP_DEST_PORT_RANGE", "start": 22, "end": 22, "not": false, "or": false}),
                m(RuleKind::IpDestPortRange { start: 22, end: 22 }),
            ),
            (
                json!({"type": "MATCH_CHARACTERISTICS", "mask": "8000000000000002", "not": false, "or": false}),
                m(RuleKind::Characteristics(0x8000_0000_0000_0002)),
            ),
            (
                json!({"type": "MATCH_FRAME_SIZE_RANGE", "start": 64, "end": 1500, "not": false, "or": false}),
                m(RuleKind::FrameSizeRange {
                    start: 64,
                    end: 1500,
                }),
            ),
            (
                json!({"type": "MATCH_RANDOM", "probability": 2147483648u32, "not": false, "or": false}),
                m(RuleKind::Random(0x8000_0000)),
            ),
            (
                json!({"type": "INTEGER_RANGE", "start": "0000000000000005", "end": "000000000000000a", "idx": 14, "little": true, "bits": 16, "not": false, "or": false}),
                m(RuleKind::IntegerRange {
                    start: 5,
                    end: 10,
                    index: 14,
                    format: 0x8f,
                }),
            ),
        ]
        .into_iter()
        .chain(TAG_TYPES.iter().enumerate().map(|(i, (name, op))| {
            (
                json!({"type": name, "id": 100 + i, "value": 7, "not": false, "or": i % 2 == 1}),
                Rule {
                    not: false,
                    or: i % 2 == 1,
                    kind: RuleKind::Tags {
                        op: *op,
                        id: 100 + i as u32,
                        value: 7,
                    },
                },
            )
        }))
        .collect()
    }

    #[test]
    fn every_rule_type_reads_to_its_wire_rule_and_renders_back() {
        let cases = every_type();
        // Every wire type zerotier-one's JSON names is covered (PRIORITY has no JSON name).
        let mut types: Vec<u8> = cases.iter().map(|(_, r)| r.rule_type()).collect();
        types.sort_unstable();
        types.dedup();
        let expected: Vec<u8> = [0, 1, 2, 3, 4, 5].into_iter().chain(24..=51).collect();
        assert_eq!(types, expected);
        for (text, wire) in cases {
            assert_eq!(rule_from_json(&text).unwrap(), wire, "{text}");
            assert_eq!(rule_to_json(&wire), text, "{wire:?}");
        }
    }

    #[test]
    fn not_and_or_become_the_type_bits_on_the_wire() {
        let rules = rules_from_json(
            &[
                json!({"type": "MATCH_ETHERTYPE", "etherType": 2048, "not": true}),
                json!({"type": "MATCH_ETHERTYPE", "etherType": 2054, "or": "true"}),
                json!({"type": "MATCH_ETHERTYPE", "etherType": 34525, "not": 1, "or": 1}),
                json!({"type": "ACTION_DROP", "not": true, "or": true}),
            ],
            "rules",
        )
        .unwrap();
        let mut wire = Vec::new();
        zt_wire::rules::write_all(&rules, &mut wire);
        // 0x25 is MATCH_ETHERTYPE; NOT is 0x80, OR is 0x40; the action keeps neither.
        let text: String = wire.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, "a502080065020806e50286dd0000");
    }

    #[test]
    fn numbers_are_read_as_zerotier_one_reads_them() {
        let lenient = [
            json!({"type": "MATCH_ETHERTYPE", "etherType": "2048"}),
            json!({"type": "MATCH_IP_DEST_PORT_RANGE", "start": "22"}),
            json!({"type": "MATCH_CHARACTERISTICS", "mask": 2}),
            json!({"type": "MATCH_ICMP", "icmpType": 8}),
        ];
        let read: Vec<RuleKind> = lenient
            .iter()
            .map(|r| rule_from_json(r).unwrap().kind)
            .collect();
        assert_eq!(
            read,
            [
                RuleKind::Ethertype(0x0800),
                // An absent end is the start: a single port.
                RuleKind::IpDestPortRange { start: 22, end: 22 },
                RuleKind::Characteristics(2),
                RuleKind::Icmp {
                    icmp_type: 8,
                    code: 0,
                    flags: 0
                },
            ]
        );
    }

    #[test]
    fn unreadable_rules_are_errors_not_other_rules() {
        let cases = [
            (
                json!("ACTION_DROP"),
                "expected a rule object, got \"ACTION_DROP\"",
            ),
            (
                json!({"type": "ACTION_PRIORITY"}),
                "unknown rule type \"ACTION_PRIORITY\"",
            ),
            (json!({}), "unknown rule type \"\""),
            (
                json!({"type": "MATCH_IPV4_DEST", "ip": "fd00::/8"}),
                "ip: expected an IPv4 address/bits",
            ),
            (
                json!({"type": "MATCH_IPV6_DEST"}),
                "ip: missing address/bits",
            ),
            (
                json!({"type": "MATCH_SOURCE_ZEROTIER_ADDRESS", "zt": "xyz"}),
                "zt: \"xyz\" is not a ZeroTier address (10 hex digits)",
            ),
            (
                json!({"type": "ACTION_TEE", "address": "12345678901"}),
                "address: \"12345678901\" is not a ZeroTier address (10 hex digits)",
            ),
            (
                json!({"type": "MATCH_MAC_DEST", "mac": "02:00:00:00:00"}),
                "mac: \"02:00:00:00:00\" is not a MAC address",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                rule_from_json(&rule).unwrap_err().to_string(),
                expected,
                "{rule}"
            );
        }
    }
}
