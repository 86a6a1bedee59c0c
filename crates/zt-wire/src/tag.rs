//! Tag (PROTOCOL.md §6.6): a controller-signed `(id, value)` pair attached to one member, used
//! by tag rules.

use crate::credential;
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::network_id::NetworkId;
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Address;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub network_id: NetworkId,
    pub timestamp: u64,
    pub id: u32,
    pub value: u32,
    pub issued_to: Address,
    pub signed_by: Address,
    /// All zeros when unsigned.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Tag {
    /// An unsigned tag; call [`sign`](Self::sign).
    pub fn new(
        network_id: NetworkId,
        timestamp: u64,
        id: u32,
        value: u32,
        issued_to: Address,
    ) -> Tag {
        Tag {
            network_id,
            timestamp,
            id,
            value,
            issued_to,
            signed_by: Address::default(),
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    fn write_fields(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.to_u64());
        out.put_u64(self.timestamp);
        out.put_u32(self.id);
        out.put_u32(self.value);
        out.put_address(self.issued_to);
        out.put_address(self.signed_by);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Tag, WireError> {
        let tag = Tag {
            network_id: NetworkId(r.u64("tag nwid")?),
            timestamp: r.u64("tag timestamp")?,
            id: r.u32("tag id")?,
            value: r.u32("tag value")?,
            issued_to: r.address("tag issuedTo")?,
            signed_by: r.address("tag signedBy")?,
            signature: [0u8; SIGNATURE_LEN],
        };
        let signature = credential::read_signature(r, "tag signature")?;
        credential::skip_extension(r, "tag extension")?;
        Ok(Tag { signature, ..tag })
    }
}

credential::controller_signed_credential!(Tag);
