//! MULTICAST_LIKE (0x09), MULTICAST_GATHER (0x0d) and MULTICAST_FRAME (0x0e), PROTOCOL.md
//! §4.10, §4.14, §4.15, and the gather result list their OKs share.
use std::net::IpAddr;

use super::{read_com_bytes, read_mac, read_nwid};
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use crate::mac::Mac;
use crate::network_id::NetworkId;
use zt_crypto::Address;

/// A multicast group: a MAC plus a 32-bit "additional distinguishing information" (ADI; for
/// ARP, the IPv4 address being resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MulticastGroup {
    pub mac: Mac,
    pub adi: u32,
}

impl MulticastGroup {
    /// The group a host listens to so that neighbours can resolve `ip` to its MAC (ZeroTier's
    /// address-resolution group). IPv4 ARP requests are Ethernet broadcasts, so the group is
    /// the broadcast MAC narrowed by the IPv4 address as ADI: only the owner of the address
    /// gets the request, not every member. IPv6 neighbour solicitations already go to the
    /// solicited-node MAC `33:33:ff` + the low 24 bits of the address, with ADI 0.
    pub fn for_address_resolution(ip: IpAddr) -> MulticastGroup {
        match ip {
            IpAddr::V4(v4) => MulticastGroup {
                mac: Mac::BROADCAST,
                adi: u32::from(v4),
            },
            IpAddr::V6(v6) => {
                let [.., a, b, c] = v6.octets();
                MulticastGroup {
                    mac: Mac([0x33, 0x33, 0xff, a, b, c]),
                    adi: 0,
                }
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<MulticastGroup, WireError> {
        Ok(MulticastGroup {
            mac: read_mac(r, "multicast MAC")?,
            adi: r.u32("multicast ADI")?,
        })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.mac.0);
        out.put_u32(self.adi);
    }
}

const LIKE_ENTRY_LEN: usize = 18;

/// MULTICAST_LIKE: subscriptions, one `(network, group)` per 18-byte tuple. A partial tuple
/// at the end is ignored, as the reference does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MulticastLike {
    pub entries: Vec<(NetworkId, MulticastGroup)>,
}

impl MulticastLike {
    pub const VERB: Verb = Verb::MulticastLike;

    pub fn read(payload: &[u8]) -> Result<MulticastLike, WireError> {
        let mut r = Reader::new(payload);
        let mut entries = Vec::with_capacity(payload.len() / LIKE_ENTRY_LEN);
        while r.remaining() >= LIKE_ENTRY_LEN {
            entries.push((read_nwid(&mut r)?, MulticastGroup::read(&mut r)?));
        }
        Ok(MulticastLike { entries })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        for (nwid, group) in &self.entries {
            out.put_u64(nwid.0);
            group.write(out);
        }
    }
}

/// Flag shared by the multicast verbs: an inline COM follows.
const FLAG_COM: u8 = 0x01;

/// MULTICAST_GATHER: ask for up to `gather_limit` members of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastGather<'a> {
    pub nwid: NetworkId,
    /// Flag bits other than "COM attached", which is implied by `com`.
    pub flags: u8,
    pub group: MulticastGroup,
    pub gather_limit: u32,
    /// The attached COM, unparsed (see `crate::com`).
    pub com: Option<&'a [u8]>,
}

impl<'a> MulticastGather<'a> {
    pub const VERB: Verb = Verb::MulticastGather;

    pub fn read(payload: &'a [u8]) -> Result<MulticastGather<'a>, WireError> {
        let mut r = Reader::new(payload);
        let nwid = read_nwid(&mut r)?;
        let flags = r.u8("MULTICAST_GATHER flags")?;
        let group = MulticastGroup::read(&mut r)?;
        let gather_limit = r.u32("MULTICAST_GATHER limit")?;
        let com = if flags & FLAG_COM != 0 {
            Some(read_com_bytes(&mut r)?)
        } else {
            None
        };
        Ok(MulticastGather {
            nwid,
            flags: flags & !FLAG_COM,
            group,
            gather_limit,
            com,
        })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.nwid.0);
        out.put_u8(self.flags & !FLAG_COM | if self.com.is_some() { FLAG_COM } else { 0 });
        self.group.write(out);
        out.put_u32(self.gather_limit);
        if let Some(com) = self.com {
            out.put_bytes(com);
        }
    }
}

/// The member list of a gather answer: `[4] total known [2] n [5·n] addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatherMembers {
    /// How many members the responder knows in total (may exceed `members.len()`).
    pub total_known: u32,
    pub members: Vec<Address>,
}

impl GatherMembers {
    pub fn read(r: &mut Reader<'_>) -> Result<GatherMembers, WireError> {
        let total_known = r.u32("gather total known")?;
        let n = r.u16("gather member count")? as usize;
        let mut members = Vec::with_capacity(n.min(r.remaining() / 5));
        for _ in 0..n {
            members.push(r.address("gather member")?);
        }
        Ok(GatherMembers {
            total_known,
            members,
        })
    }
    /// Writes at most 65535 members (the count is 16 bits).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u32(self.total_known);
        let n = self.members.len().min(u16::MAX as usize);
        out.put_u16(n as u16);
        for a in &self.members[..n] {
            out.put_address(*a);
        }
    }
}

const FLAG_GATHER_LIMIT: u8 = 0x02;
const FLAG_SOURCE_MAC: u8 = 0x04;
/// MULTICAST_FRAME flag 0x08: the receiver is asked to replicate the frame.
pub const MULTICAST_FRAME_FLAG_REPLICATE: u8 = 0x08;
const MULTICAST_FRAME_IMPLIED_FLAGS: u8 = FLAG_COM | FLAG_GATHER_LIMIT | FLAG_SOURCE_MAC;

/// MULTICAST_FRAME: an Ethernet frame to a multicast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastFrame<'a> {
    pub nwid: NetworkId,
    /// Flag bits not implied by the optional fields (e.g. [`MULTICAST_FRAME_FLAG_REPLICATE`]).
    pub flags: u8,
    /// Deprecated inline COM, unparsed.
    pub com: Option<&'a [u8]>,
    pub gather_limit: Option<u32>,
    /// Present when the frame's source is not the sender's derived MAC (bridging).
    pub source: Option<Mac>,
    pub group: MulticastGroup,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> MulticastFrame<'a> {
    pub const VERB: Verb = Verb::MulticastFrame;

    pub fn read(payload: &'a [u8]) -> Result<MulticastFrame<'a>, WireError> {
        let mut r = Reader::new(payload);
        let nwid = read_nwid(&mut r)?;
        let flags = r.u8("MULTICAST_FRAME flags")?;
        let com = if flags & FLAG_COM != 0 {
            Some(read_com_bytes(&mut r)?)
        } else {
            None
        };
        let gather_limit = if flags & FLAG_GATHER_LIMIT != 0 {
            Some(r.u32("MULTICAST_FRAME gather limit")?)
        } else {
            None
        };
        let source = if flags & FLAG_SOURCE_MAC != 0 {
            Some(read_mac(&mut r, "MULTICAST_FRAME source MAC")?)
        } else {
            None
        };
        let group = MulticastGroup::read(&mut r)?;
        let ethertype = r.u16("MULTICAST_FRAME ethertype")?;
        Ok(MulticastFrame {
            nwid,
            flags: flags & !MULTICAST_FRAME_IMPLIED_FLAGS,
            com,
            gather_limit,
            source,
            group,
            ethertype,
            payload: r.rest(),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        let mut flags = self.flags & !MULTICAST_FRAME_IMPLIED_FLAGS;
        if self.com.is_some() {
            flags |= FLAG_COM;
        }
        if self.gather_limit.is_some() {
            flags |= FLAG_GATHER_LIMIT;
        }
        if self.source.is_some() {
            flags |= FLAG_SOURCE_MAC;
        }
        out.put_u64(self.nwid.0);
        out.put_u8(flags);
        if let Some(com) = self.com {
            out.put_bytes(com);
        }
        if let Some(limit) = self.gather_limit {
            out.put_u32(limit);
        }
        if let Some(mac) = self.source {
            out.put_bytes(&mac.0);
        }
        self.group.write(out);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(ip: &str) -> MulticastGroup {
        MulticastGroup::for_address_resolution(ip.parse().unwrap())
    }

    #[test]
    fn ipv4_resolution_is_broadcast_narrowed_by_the_address() {
        assert_eq!(
            group_of("10.147.17.5"),
            MulticastGroup {
                mac: Mac::BROADCAST,
                adi: 0x0a93_1105,
            }
        );
        // 0.0.0.0 would be plain broadcast; the derivation does not special-case it.
        assert_eq!(group_of("0.0.0.0").adi, 0);
    }

    #[test]
    fn ipv6_resolution_is_the_solicited_node_group() {
        assert_eq!(
            group_of("fd00::1234:5678"),
            MulticastGroup {
                mac: Mac([0x33, 0x33, 0xff, 0x34, 0x56, 0x78]),
                adi: 0,
            }
        );
        assert_eq!(
            group_of("fe80::a8bb:ccff:fedd:eeff").mac,
            Mac([0x33, 0x33, 0xff, 0xdd, 0xee, 0xff])
        );
    }
}
