//! Network rules (PROTOCOL.md §6.7): the binary form used in the config `R` key and inside
//! capabilities. Each rule is `[1] type [1] value length [len] value`; the type byte carries
//! NOT (bit 7) and OR (bit 6) on top of the 6-bit rule type.
//!
//! Evaluation belongs to the node; this module only encodes.

use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::mac::Mac;
use std::net::{Ipv4Addr, Ipv6Addr};
use zt_crypto::Address;

/// Most rules in a network config (`ZT_MAX_NETWORK_RULES`).
pub const MAX_NETWORK_RULES: usize = 1024;
/// Most rules in one capability (`ZT_MAX_CAPABILITY_RULES`).
pub const MAX_CAPABILITY_RULES: usize = 64;

const NOT_BIT: u8 = 0x80;
const OR_BIT: u8 = 0x40;
const TYPE_MASK: u8 = 0x3f;

/// How a tag rule compares the sender's and receiver's tag values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagOp {
    Difference,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    Equal,
    Sender,
    Receiver,
}

impl TagOp {
    const FIRST_TYPE: u8 = 44;
    fn from_type(t: u8) -> Option<TagOp> {
        Some(match t {
            44 => TagOp::Difference,
            45 => TagOp::BitwiseAnd,
            46 => TagOp::BitwiseOr,
            47 => TagOp::BitwiseXor,
            48 => TagOp::Equal,
            49 => TagOp::Sender,
            50 => TagOp::Receiver,
            _ => return None,
        })
    }
    fn to_type(self) -> u8 {
        Self::FIRST_TYPE
            + match self {
                TagOp::Difference => 0,
                TagOp::BitwiseAnd => 1,
                TagOp::BitwiseOr => 2,
                TagOp::BitwiseXor => 3,
                TagOp::Equal => 4,
                TagOp::Sender => 5,
                TagOp::Receiver => 6,
            }
    }
}

/// TEE, WATCH and REDIRECT: where the copy goes. `length` is how many bytes of the frame a
/// TEE/WATCH copy carries (0 = all); REDIRECT ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Forward {
    pub address: Address,
    pub flags: u32,
    pub length: u16,
}

/// A rule's action or match, with its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Drop,
    Accept,
    Tee(Forward),
    Watch(Forward),
    Redirect(Forward),
    Break,
    /// The QoS bucket is not serialized by the reference, so it does not survive the wire.
    Priority,
    SourceZeroTierAddress(Address),
    DestZeroTierAddress(Address),
    VlanId(u16),
    VlanPcp(u8),
    VlanDei(u8),
    MacSource(Mac),
    MacDest(Mac),
    Ipv4Source {
        ip: Ipv4Addr,
        bits: u8,
    },
    Ipv4Dest {
        ip: Ipv4Addr,
        bits: u8,
    },
    Ipv6Source {
        ip: Ipv6Addr,
        bits: u8,
    },
    Ipv6Dest {
        ip: Ipv6Addr,
        bits: u8,
    },
    IpTos {
        mask: u8,
        start: u8,
        end: u8,
    },
    IpProtocol(u8),
    Ethertype(u16),
    /// `flags & 0x01`: the code is significant.
    Icmp {
        icmp_type: u8,
        code: u8,
        flags: u8,
    },
    IpSourcePortRange {
        start: u16,
        end: u16,
    },
    IpDestPortRange {
        start: u16,
        end: u16,
    },
    Characteristics(u64),
    FrameSizeRange {
        start: u16,
        end: u16,
    },
    /// Probability out of 2^32.
    Random(u32),
    Tags {
        op: TagOp,
        id: u32,
        value: u32,
    },
    /// `end` is absolute (the wire holds `start` and `start + offset`). `format`: bit 7
    /// little-endian, bits 5..0 = bit count − 1.
    IntegerRange {
        start: u64,
        end: u64,
        index: u16,
        format: u8,
    },
    /// A type this version does not know; readers skip it by its length, and it is kept so the
    /// rule list round-trips.
    Unknown {
        rule_type: u8,
        value: Vec<u8>,
    },
}

/// One rule: NOT/OR modifiers and the match or action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub not: bool,
    pub or: bool,
    pub kind: RuleKind,
}

impl Rule {
    pub fn new(kind: RuleKind) -> Rule {
        Rule {
            not: false,
            or: false,
            kind,
        }
    }
    pub fn accept() -> Rule {
        Rule::new(RuleKind::Accept)
    }
    pub fn drop() -> Rule {
        Rule::new(RuleKind::Drop)
    }
    pub fn negated(mut self) -> Rule {
        self.not = true;
        self
    }
    pub fn or(mut self) -> Rule {
        self.or = true;
        self
    }

    /// The 6-bit rule type number.
    pub fn rule_type(&self) -> u8 {
        match &self.kind {
            RuleKind::Drop => 0,
            RuleKind::Accept => 1,
            RuleKind::Tee(_) => 2,
            RuleKind::Watch(_) => 3,
            RuleKind::Redirect(_) => 4,
            RuleKind::Break => 5,
            RuleKind::Priority => 6,
            RuleKind::SourceZeroTierAddress(_) => 24,
            RuleKind::DestZeroTierAddress(_) => 25,
            RuleKind::VlanId(_) => 26,
            RuleKind::VlanPcp(_) => 27,
            RuleKind::VlanDei(_) => 28,
            RuleKind::MacSource(_) => 29,
            RuleKind::MacDest(_) => 30,
            RuleKind::Ipv4Source { .. } => 31,
            RuleKind::Ipv4Dest { .. } => 32,
            RuleKind::Ipv6Source { .. } => 33,
            RuleKind::Ipv6Dest { .. } => 34,
            RuleKind::IpTos { .. } => 35,
            RuleKind::IpProtocol(_) => 36,
            RuleKind::Ethertype(_) => 37,
            RuleKind::Icmp { .. } => 38,
            RuleKind::IpSourcePortRange { .. } => 39,
            RuleKind::IpDestPortRange { .. } => 40,
            RuleKind::Characteristics(_) => 41,
            RuleKind::FrameSizeRange { .. } => 42,
            RuleKind::Random(_) => 43,
            RuleKind::Tags { op, .. } => op.to_type(),
            RuleKind::IntegerRange { .. } => 51,
            RuleKind::Unknown { rule_type, .. } => rule_type & TYPE_MASK,
        }
    }

    /// Actions are types 0..=15; the rest are matches.
    pub fn is_action(&self) -> bool {
        self.rule_type() < 16
    }

    /// Append `[1] type [1] len [len] value`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut type_byte = self.rule_type();
        if self.not {
            type_byte |= NOT_BIT;
        }
        if self.or {
            type_byte |= OR_BIT;
        }
        out.put_u8(type_byte);
        let len_at = out.len();
        out.put_u8(0);
        match &self.kind {
            RuleKind::Drop | RuleKind::Accept | RuleKind::Break | RuleKind::Priority => {}
            RuleKind::Tee(f) | RuleKind::Watch(f) | RuleKind::Redirect(f) => {
                out.put_u64(f.address.to_u64());
                out.put_u32(f.flags);
                out.put_u16(f.length);
            }
            RuleKind::SourceZeroTierAddress(a) | RuleKind::DestZeroTierAddress(a) => {
                out.put_address(*a)
            }
            RuleKind::VlanId(v) => out.put_u16(*v),
            RuleKind::VlanPcp(v) | RuleKind::VlanDei(v) | RuleKind::IpProtocol(v) => out.put_u8(*v),
            RuleKind::MacSource(m) | RuleKind::MacDest(m) => out.put_bytes(&m.octets()),
            RuleKind::Ipv4Source { ip, bits } | RuleKind::Ipv4Dest { ip, bits } => {
                out.put_bytes(&ip.octets());
                out.put_u8(*bits);
            }
            RuleKind::Ipv6Source { ip, bits } | RuleKind::Ipv6Dest { ip, bits } => {
                out.put_bytes(&ip.octets());
                out.put_u8(*bits);
            }
            RuleKind::IpTos { mask, start, end } => out.put_bytes(&[*mask, *start, *end]),
            RuleKind::Ethertype(v) => out.put_u16(*v),
            RuleKind::Icmp {
                icmp_type,
                code,
                flags,
            } => out.put_bytes(&[*icmp_type, *code, *flags]),
            RuleKind::IpSourcePortRange { start, end }
            | RuleKind::IpDestPortRange { start, end }
            | RuleKind::FrameSizeRange { start, end } => {
                out.put_u16(*start);
                out.put_u16(*end);
            }
            RuleKind::Characteristics(v) => out.put_u64(*v),
            RuleKind::Random(v) => out.put_u32(*v),
            RuleKind::Tags { id, value, .. } => {
                out.put_u32(*id);
                out.put_u32(*value);
            }
            RuleKind::IntegerRange {
                start,
                end,
                index,
                format,
            } => {
                out.put_u64(*start);
                out.put_u64(*end);
                out.put_u16(*index);
                out.put_u8(*format);
            }
            // The length field is one byte; a longer value cannot be carried.
            RuleKind::Unknown { value, .. } => {
                out.put_bytes(&value[..value.len().min(u8::MAX as usize)])
            }
        }
        // Every known value is at most 19 bytes; an unknown one was cut to 255 above.
        out[len_at] = u8::try_from(out.len() - len_at - 1).unwrap_or(u8::MAX);
    }

    /// Read one rule. A known type whose value is shorter than its format needs is an error;
    /// extra value bytes are skipped (a future version may append fields).
    pub fn read(r: &mut Reader<'_>) -> Result<Rule, WireError> {
        let type_byte = r.u8("rule type")?;
        let len = r.u8("rule value length")? as usize;
        let value = r.bytes(len, "rule value")?;
        let mut v = Reader::new(value);
        let rule_type = type_byte & TYPE_MASK;
        let fwd = |v: &mut Reader<'_>| -> Result<Forward, WireError> {
            let raw = v.u64("rule forward address")?;
            let address = Address::new(raw)
                .ok_or_else(|| WireError::invalid("rule forward address", "wider than 40 bits"))?;
            Ok(Forward {
                address,
                flags: v.u32("rule forward flags")?,
                length: v.u16("rule forward length")?,
            })
        };
        let kind = match rule_type {
            0 => RuleKind::Drop,
            1 => RuleKind::Accept,
            2 => RuleKind::Tee(fwd(&mut v)?),
            3 => RuleKind::Watch(fwd(&mut v)?),
            4 => RuleKind::Redirect(fwd(&mut v)?),
            5 => RuleKind::Break,
            6 => RuleKind::Priority,
            24 => RuleKind::SourceZeroTierAddress(v.address("rule address")?),
            25 => RuleKind::DestZeroTierAddress(v.address("rule address")?),
            26 => RuleKind::VlanId(v.u16("rule vlan id")?),
            27 => RuleKind::VlanPcp(v.u8("rule vlan pcp")?),
            28 => RuleKind::VlanDei(v.u8("rule vlan dei")?),
            29 => RuleKind::MacSource(Mac(v.array("rule mac")?)),
            30 => RuleKind::MacDest(Mac(v.array("rule mac")?)),
            31 | 32 => {
                let ip = Ipv4Addr::from(v.array::<4>("rule ipv4")?);
                let bits = v.u8("rule ipv4 bits")?;
                if rule_type == 31 {
                    RuleKind::Ipv4Source { ip, bits }
                } else {
                    RuleKind::Ipv4Dest { ip, bits }
                }
            }
            33 | 34 => {
                let ip = Ipv6Addr::from(v.array::<16>("rule ipv6")?);
                let bits = v.u8("rule ipv6 bits")?;
                if rule_type == 33 {
                    RuleKind::Ipv6Source { ip, bits }
                } else {
                    RuleKind::Ipv6Dest { ip, bits }
                }
            }
            35 => {
                let [mask, start, end] = v.array("rule ip tos")?;
                RuleKind::IpTos { mask, start, end }
            }
            36 => RuleKind::IpProtocol(v.u8("rule ip protocol")?),
            37 => RuleKind::Ethertype(v.u16("rule ethertype")?),
            38 => {
                let [icmp_type, code, flags] = v.array("rule icmp")?;
                RuleKind::Icmp {
                    icmp_type,
                    code,
                    flags,
                }
            }
            39 | 40 | 42 => {
                let start = v.u16("rule range start")?;
                let end = v.u16("rule range end")?;
                match rule_type {
                    39 => RuleKind::IpSourcePortRange { start, end },
                    40 => RuleKind::IpDestPortRange { start, end },
                    _ => RuleKind::FrameSizeRange { start, end },
                }
            }
            41 => RuleKind::Characteristics(v.u64("rule characteristics")?),
            43 => RuleKind::Random(v.u32("rule random")?),
            44..=50 => RuleKind::Tags {
                op: TagOp::from_type(rule_type).expect("44..=50 are tag ops"),
                id: v.u32("rule tag id")?,
                value: v.u32("rule tag value")?,
            },
            51 => RuleKind::IntegerRange {
                start: v.u64("rule integer range")?,
                end: v.u64("rule integer range")?,
                index: v.u16("rule integer range")?,
                format: v.u8("rule integer range")?,
            },
            _ => RuleKind::Unknown {
                rule_type,
                value: value.to_vec(),
            },
        };
        Ok(Rule {
            not: type_byte & NOT_BIT != 0,
            or: type_byte & OR_BIT != 0,
            kind,
        })
    }
}

/// Read rules until `r` is exhausted (the config `R` value), refusing more than `max`.
pub fn read_all(r: &mut Reader<'_>, max: usize) -> Result<Vec<Rule>, WireError> {
    let mut rules = Vec::new();
    while !r.is_empty() {
        if rules.len() == max {
            return Err(WireError::TooLarge("rules"));
        }
        rules.push(Rule::read(r)?);
    }
    Ok(rules)
}

/// Read exactly `count` rules.
pub fn read_count(r: &mut Reader<'_>, count: usize) -> Result<Vec<Rule>, WireError> {
    (0..count).map(|_| Rule::read(r)).collect()
}

/// Append every rule, back to back.
pub fn write_all(rules: &[Rule], out: &mut Vec<u8>) {
    for rule in rules {
        rule.write(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Rule> {
        let fwd = Forward {
            address: Address::new(0x51479cea31).unwrap(),
            flags: 3,
            length: 100,
        };
        let kinds = vec![
            RuleKind::Drop,
            RuleKind::Accept,
            RuleKind::Tee(fwd),
            RuleKind::Watch(fwd),
            RuleKind::Redirect(fwd),
            RuleKind::Break,
            RuleKind::Priority,
            RuleKind::SourceZeroTierAddress(fwd.address),
            RuleKind::DestZeroTierAddress(fwd.address),
            RuleKind::VlanId(42),
            RuleKind::VlanPcp(3),
            RuleKind::VlanDei(1),
            RuleKind::MacSource(Mac([1, 2, 3, 4, 5, 6])),
            RuleKind::MacDest(Mac::BROADCAST),
            RuleKind::Ipv4Source {
                ip: Ipv4Addr::new(10, 0, 0, 0),
                bits: 8,
            },
            RuleKind::Ipv4Dest {
                ip: Ipv4Addr::new(172, 27, 27, 0),
                bits: 24,
            },
            RuleKind::Ipv6Source {
                ip: Ipv6Addr::LOCALHOST,
                bits: 128,
            },
            RuleKind::Ipv6Dest {
                ip: Ipv6Addr::UNSPECIFIED,
                bits: 0,
            },
            RuleKind::IpTos {
                mask: 0xfc,
                start: 8,
                end: 16,
            },
            RuleKind::IpProtocol(58),
            RuleKind::Ethertype(0x86dd),
            RuleKind::Icmp {
                icmp_type: 8,
                code: 0,
                flags: 1,
            },
            RuleKind::IpSourcePortRange {
                start: 1,
                end: 1024,
            },
            RuleKind::IpDestPortRange { start: 22, end: 22 },
            RuleKind::Characteristics(0x8000_0000_0000_0002),
            RuleKind::FrameSizeRange {
                start: 64,
                end: 1500,
            },
            RuleKind::Random(0x8000_0000),
            RuleKind::Tags {
                op: TagOp::Difference,
                id: 1,
                value: 2,
            },
            RuleKind::Tags {
                op: TagOp::Receiver,
                id: 7,
                value: 9,
            },
            RuleKind::IntegerRange {
                start: 5,
                end: 10,
                index: 14,
                format: 0x8f,
            },
            RuleKind::Unknown {
                rule_type: 60,
                value: vec![1, 2, 3],
            },
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| Rule {
                not: i % 2 == 1,
                or: i % 3 == 1,
                kind: k,
            })
            .collect()
    }

    #[test]
    fn every_rule_kind_round_trips() {
        let rules = every_kind();
        let mut bytes = Vec::new();
        write_all(&rules, &mut bytes);
        let back = read_all(&mut Reader::new(&bytes), MAX_NETWORK_RULES).unwrap();
        assert_eq!(back, rules);
        let mut again = Vec::new();
        write_all(&back, &mut again);
        assert_eq!(again, bytes);
    }

    #[test]
    fn wire_values_match_the_reference_layout() {
        let mut b = Vec::new();
        Rule::accept().write(&mut b);
        Rule::new(RuleKind::Ethertype(0x86dd))
            .negated()
            .write(&mut b);
        Rule::new(RuleKind::IpProtocol(6)).or().write(&mut b);
        Rule::new(RuleKind::IntegerRange {
            start: 1,
            end: 3,
            index: 2,
            format: 7,
        })
        .write(&mut b);
        assert_eq!(
            hex::encode(&b),
            "0100a50286dd640106331300000000000000010000000000000003000207"
        );
    }

    #[test]
    fn short_values_are_errors_and_counts_are_bounded() {
        assert!(Rule::read(&mut Reader::new(&[37, 1, 0x86])).is_err());
        assert!(
            Rule::read(&mut Reader::new(&[37, 3, 0x86])).is_err(),
            "length beyond input"
        );
        let mut many = Vec::new();
        for _ in 0..3 {
            Rule::accept().write(&mut many);
        }
        assert_eq!(
            read_all(&mut Reader::new(&many), 2),
            Err(WireError::TooLarge("rules"))
        );
        // A TEE address with bits above 40 is not a ZeroTier address.
        let tee = [2u8, 14, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(Rule::read(&mut Reader::new(&tee)).is_err());
    }
}
