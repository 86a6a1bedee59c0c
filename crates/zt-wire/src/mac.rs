//! Ethernet MAC addresses and their mapping to ZeroTier addresses on a network
//! (PROTOCOL.md §6.2).

use crate::error::WireError;
use crate::network_id::NetworkId;
use std::fmt;
use std::str::FromStr;
use zt_crypto::Address;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub fn from_u64(v: u64) -> Mac {
        let b = v.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    pub fn to_u64(self) -> u64 {
        self.0.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    }
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
    pub fn is_broadcast(self) -> bool {
        self == Mac::BROADCAST
    }
    /// Group bit of the first octet (multicast and broadcast).
    pub fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The first octet every member MAC on `nwid` has: locally administered, unicast, with
    /// 0x52 avoided (it collides with some hypervisors' prefix).
    pub fn first_octet_for(nwid: NetworkId) -> u8 {
        let first = (nwid.0 as u8 & 0xfe) | 0x02;
        if first == 0x52 {
            0x32
        } else {
            first
        }
    }

    /// The MAC a member with `address` has on `nwid`.
    pub fn from_address(address: Address, nwid: NetworkId) -> Mac {
        let mac = u64::from(Mac::first_octet_for(nwid)) << 40 | address.to_u64();
        Mac::from_u64(mac ^ xor_mask(nwid))
    }

    /// The ZeroTier address behind a member MAC on `nwid`, or `None` if the first octet is
    /// not this network's (then the MAC is behind a bridge, or multicast).
    pub fn to_address(self, nwid: NetworkId) -> Option<Address> {
        if self.0[0] != Mac::first_octet_for(nwid) {
            return None;
        }
        Address::new((self.to_u64() ^ xor_mask(nwid)) & 0xff_ffff_ffff)
    }
}

/// The five XOR terms from nwid bytes 1..5 (bits 8..47), applied to the low 40 bits.
fn xor_mask(nwid: NetworkId) -> u64 {
    let n = nwid.0;
    ((n >> 8) & 0xff) << 32
        | ((n >> 16) & 0xff) << 24
        | ((n >> 24) & 0xff) << 16
        | ((n >> 32) & 0xff) << 8
        | ((n >> 40) & 0xff)
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = WireError;
    /// `xx:xx:xx:xx:xx:xx` (either case; `-` also accepted as separator).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WireError::invalid("mac", format!("{s:?} is not xx:xx:xx:xx:xx:xx"));
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (slot, part) in out.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        Ok(Mac(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_lab_macs() {
        // captures/README.md "Nodes": the MAC each node had on network 51479cea31ccae5c.
        let nwid = NetworkId(0x51479cea31ccae5c);
        for (addr, mac) in [
            (0x51479cea31u64, "5e:ff:8b:ad:00:ad"),
            (0xa6c5664b6f, "5e:08:09:57:a1:f3"),
            (0x6ebff17e20, "5e:c0:73:c0:94:bc"),
        ] {
            let address = Address::new(addr).unwrap();
            let mac: Mac = mac.parse().unwrap();
            assert_eq!(Mac::from_address(address, nwid), mac);
            assert_eq!(mac.to_address(nwid), Some(address));
            assert_eq!(mac.to_string().parse::<Mac>().unwrap(), mac);
        }
        // The bridged host's own MAC is not a member MAC.
        assert_eq!(
            "06:12:a2:c6:47:0a".parse::<Mac>().unwrap().to_address(nwid),
            None
        );
    }

    #[test]
    fn first_octet_avoids_0x52() {
        assert_eq!(Mac::first_octet_for(NetworkId(0x50)), 0x32);
        assert_eq!(Mac::first_octet_for(NetworkId(0x51)), 0x32);
        assert_eq!(Mac::first_octet_for(NetworkId(0x01)), 0x02);
        assert!("5e:ff:8b:ad:00".parse::<Mac>().is_err());
        assert!("5e:ff:8b:ad:00:zz".parse::<Mac>().is_err());
    }
}
