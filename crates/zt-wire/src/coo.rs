//! CertificateOfOwnership (PROTOCOL.md §6.6): a controller-signed list of MACs and IPs a
//! member owns. The reference controller issues one (id 1) listing all assigned IPs.

use crate::credential;
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::mac::Mac;
use crate::network_id::NetworkId;
use std::net::{Ipv4Addr, Ipv6Addr};
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Address;

/// Most things one certificate lists (`ZT_CERTIFICATEOFOWNERSHIP_MAX_THINGS`).
pub const MAX_THINGS: usize = 16;
/// Most certificates of ownership a config carries.
pub const MAX_PER_CONFIG: usize = 4;

/// One owned thing, stored on the wire as `[1] type [16] value` (zero-padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Thing {
    Mac(Mac),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Type 0 (null) or an unknown type, kept as is.
    Other {
        thing_type: u8,
        value: [u8; 16],
    },
}

impl Thing {
    fn write(&self, out: &mut Vec<u8>) {
        let mut value = [0u8; 16];
        let thing_type = match self {
            Thing::Mac(m) => {
                value[..6].copy_from_slice(&m.octets());
                1
            }
            Thing::Ipv4(ip) => {
                value[..4].copy_from_slice(&ip.octets());
                2
            }
            Thing::Ipv6(ip) => {
                value = ip.octets();
                3
            }
            Thing::Other {
                thing_type,
                value: v,
            } => {
                value = *v;
                *thing_type
            }
        };
        out.put_u8(thing_type);
        out.put_bytes(&value);
    }

    fn read(r: &mut Reader<'_>) -> Result<Thing, WireError> {
        let thing_type = r.u8("COO thing type")?;
        let value: [u8; 16] = r.array("COO thing value")?;
        let head = |n: usize| value[..n].to_vec();
        Ok(match thing_type {
            1 => Thing::Mac(Mac(head(6).try_into().expect("6 bytes"))),
            2 => Thing::Ipv4(Ipv4Addr::from(
                <[u8; 4]>::try_from(head(4)).expect("4 bytes"),
            )),
            3 => Thing::Ipv6(Ipv6Addr::from(value)),
            other => Thing::Other {
                thing_type: other,
                value,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOfOwnership {
    pub network_id: NetworkId,
    pub timestamp: u64,
    pub flags: u64,
    pub id: u32,
    pub things: Vec<Thing>,
    pub issued_to: Address,
    pub signed_by: Address,
    pub signature: [u8; SIGNATURE_LEN],
}

impl CertificateOfOwnership {
    /// An unsigned certificate; call [`sign`](Self::sign).
    pub fn new(
        network_id: NetworkId,
        timestamp: u64,
        id: u32,
        things: Vec<Thing>,
        issued_to: Address,
    ) -> Result<CertificateOfOwnership, WireError> {
        if things.len() > MAX_THINGS {
            return Err(WireError::TooLarge("COO things"));
        }
        Ok(CertificateOfOwnership {
            network_id,
            timestamp,
            flags: 0,
            id,
            things,
            issued_to,
            signed_by: Address::default(),
            signature: [0u8; SIGNATURE_LEN],
        })
    }

    pub fn owns(&self, thing: &Thing) -> bool {
        self.things.contains(thing)
    }

    fn write_fields(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.to_u64());
        out.put_u64(self.timestamp);
        out.put_u64(self.flags);
        out.put_u32(self.id);
        // Bounded by MAX_THINGS in new() and read().
        out.put_u16(self.things.len() as u16);
        for thing in &self.things {
            thing.write(out);
        }
        out.put_address(self.issued_to);
        out.put_address(self.signed_by);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<CertificateOfOwnership, WireError> {
        let network_id = NetworkId(r.u64("COO nwid")?);
        let timestamp = r.u64("COO timestamp")?;
        let flags = r.u64("COO flags")?;
        let id = r.u32("COO id")?;
        let count = r.u16("COO thing count")? as usize;
        if count > MAX_THINGS {
            return Err(WireError::TooLarge("COO things"));
        }
        let things = (0..count)
            .map(|_| Thing::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        let issued_to = r.address("COO issuedTo")?;
        let signed_by = r.address("COO signedBy")?;
        let signature = credential::read_signature(r, "COO signature")?;
        credential::skip_extension(r, "COO extension")?;
        Ok(CertificateOfOwnership {
            network_id,
            timestamp,
            flags,
            id,
            things,
            issued_to,
            signed_by,
            signature,
        })
    }
}

credential::controller_signed_credential!(CertificateOfOwnership);
