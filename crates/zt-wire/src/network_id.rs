//! The 64-bit network ID (PROTOCOL.md §6.1), its controller address, ad-hoc networks, and the
//! per-member IPv6 addresses derived from it (6plane and RFC 4193, §6.10).

use crate::error::WireError;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use zt_crypto::Address;

/// Prefix length announced with an RFC 4193 address.
pub const RFC4193_PREFIX_BITS: u8 = 88;
/// Prefix length announced with a 6plane address (each host owns a /80 inside it).
pub const SIXPLANE_PREFIX_BITS: u8 = 40;

/// A network ID: controller address (top 40 bits) and network number (low 24 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NetworkId(pub u64);

/// What an ad-hoc (`0xff…`) network ID means (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdHoc {
    /// `ffSSSSEEEE000000`: IPv6-only, traffic allowed to destination ports start..=end.
    /// `end < start` is representable (the ID exists) but such a network has no config.
    PortRange { start: u16, end: u16 },
    /// `ffAAhhhhhhhhhh01`: IPv4 `AA.x.y.z/8` plus 6plane, everything accepted. `specialist`
    /// is the (role-less) `hhhhhhhhhh` field.
    Ipv4 { first_octet: u8, specialist: u64 },
}

impl NetworkId {
    pub fn new(v: u64) -> Self {
        NetworkId(v)
    }
    pub fn to_u64(self) -> u64 {
        self.0
    }
    /// The controller's address: `nwid >> 24`.
    pub fn controller(self) -> Address {
        Address::new(self.0 >> 24).expect("a u64 shifted right by 24 has at most 40 bits")
    }
    /// The low 24 bits.
    pub fn network_number(self) -> u32 {
        (self.0 & 0xff_ffff) as u32
    }

    /// The ad-hoc port-range network for `start..=end`.
    pub fn adhoc_port_range(start: u16, end: u16) -> NetworkId {
        NetworkId(0xff << 56 | u64::from(start) << 40 | u64::from(end) << 24)
    }

    /// The ad-hoc interpretation of this ID, if it is an ad-hoc ID the reference understands.
    pub fn adhoc(self) -> Option<AdHoc> {
        if self.0 >> 56 != 0xff {
            return None;
        }
        if self.0 & 0xff_ffff == 0 {
            Some(AdHoc::PortRange {
                start: (self.0 >> 40) as u16,
                end: (self.0 >> 24) as u16,
            })
        } else if self.0 & 0xff == 0x01 {
            Some(AdHoc::Ipv4 {
                first_octet: (self.0 >> 48) as u8,
                specialist: (self.0 >> 8) & 0xff_ffff_ffff,
            })
        } else {
            None
        }
    }

    /// True for any `0xff…` ID: such networks never ask a controller.
    pub fn is_adhoc(self) -> bool {
        self.0 >> 56 == 0xff
    }

    /// `fd` ‖ nwid ‖ `99 93` ‖ address: the member's RFC 4193 address (announced as /88).
    pub fn rfc4193_address(self, member: Address) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b[0] = 0xfd;
        b[1..9].copy_from_slice(&self.0.to_be_bytes());
        b[9] = 0x99;
        b[10] = 0x93;
        b[11..16].copy_from_slice(&member.to_bytes());
        Ipv6Addr::from(b)
    }

    /// `fc` ‖ (nwid folded to 32 bits) ‖ address ‖ `::1`: the member's 6plane address (/40).
    pub fn sixplane_address(self, member: Address) -> Ipv6Addr {
        let folded = ((self.0 ^ (self.0 >> 32)) & 0xffff_ffff) as u32;
        let mut b = [0u8; 16];
        b[0] = 0xfc;
        b[1..5].copy_from_slice(&folded.to_be_bytes());
        b[5..10].copy_from_slice(&member.to_bytes());
        b[15] = 1;
        Ipv6Addr::from(b)
    }

    /// If `ip` lies in this network's RFC 4193 /88, the member address it names.
    pub fn rfc4193_member(self, ip: &Ipv6Addr) -> Option<Address> {
        let b = ip.octets();
        let prefix = self.rfc4193_address(Address::default()).octets();
        (b[..11] == prefix[..11]).then(|| Address::from_bytes(&b[11..16].try_into().expect("5")))
    }

    /// If `ip` lies in this network's 6plane /40, the member address it names.
    pub fn sixplane_member(self, ip: &Ipv6Addr) -> Option<Address> {
        let b = ip.octets();
        let prefix = self.sixplane_address(Address::default()).octets();
        (b[..5] == prefix[..5]).then(|| Address::from_bytes(&b[5..10].try_into().expect("5")))
    }

    /// The IPv4 address of `member` on an `ffAA…01` ad-hoc network: `AA.b.c.d/8`.
    pub fn adhoc_ipv4_address(self, member: Address) -> Option<Ipv4Addr> {
        match self.adhoc()? {
            AdHoc::Ipv4 { first_octet, .. } => {
                let low = member.to_bytes();
                Some(Ipv4Addr::new(first_octet, low[2], low[3], low[4]))
            }
            AdHoc::PortRange { .. } => None,
        }
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({:016x})", self.0)
    }
}

impl FromStr for NetworkId {
    type Err = WireError;
    /// Exactly 16 hex digits, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WireError::invalid(
                "network id",
                format!("{s:?} is not 16 hex digits"),
            ));
        }
        u64::from_str_radix(s, 16)
            .map(NetworkId)
            .map_err(|e| WireError::invalid("network id", e.to_string()))
    }
}

impl From<u64> for NetworkId {
    fn from(v: u64) -> Self {
        NetworkId(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_lab_addresses() {
        // captures/README.md: network 51479cea31ccae5c, controller 51479cea31.
        let nwid: NetworkId = "51479cea31ccae5c".parse().unwrap();
        let controller = Address::new(0x51479cea31).unwrap();
        assert_eq!(nwid.controller(), controller);
        assert_eq!(nwid.network_number(), 0xccae5c);
        assert_eq!(
            nwid.rfc4193_address(controller),
            "fd51:479c:ea31:ccae:5c99:9351:479c:ea31"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(
            nwid.sixplane_address(controller),
            "fc60:8b32:b651:479c:ea31::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            nwid.rfc4193_member(&nwid.rfc4193_address(controller)),
            Some(controller)
        );
        assert_eq!(
            nwid.sixplane_member(&nwid.sixplane_address(controller)),
            Some(controller)
        );
        assert_eq!(
            nwid.sixplane_member(&nwid.rfc4193_address(controller)),
            None
        );
        assert!(nwid.adhoc().is_none());
        assert_eq!(nwid.to_string(), "51479cea31ccae5c");
        assert!("51479cea31ccae5".parse::<NetworkId>().is_err());
        assert!("51479cea31ccae5g".parse::<NetworkId>().is_err());
    }

    #[test]
    fn adhoc_ipv4() {
        let nwid = NetworkId(0xff0a_0000_0000_0001);
        assert_eq!(
            nwid.adhoc(),
            Some(AdHoc::Ipv4 {
                first_octet: 10,
                specialist: 0
            })
        );
        let member = Address::new(0x89e92ceee5).unwrap();
        assert_eq!(
            nwid.adhoc_ipv4_address(member),
            Some(Ipv4Addr::new(10, 0x2c, 0xee, 0xe5))
        );
        assert_eq!(NetworkId(0xff0a_0000_0000_0002).adhoc(), None);
        assert_eq!(
            NetworkId(0xff0a_1234_5678_9a01).adhoc(),
            Some(AdHoc::Ipv4 {
                first_octet: 10,
                specialist: 0x12_3456_789a
            })
        );
        assert!(NetworkId(0xff0a_0000_0000_0002).is_adhoc());
    }
}
