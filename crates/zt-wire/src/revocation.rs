//! Revocation (PROTOCOL.md §6.6): a controller-signed statement that credentials of one type
//! and ID held by `target` with timestamp ≤ `threshold` are no longer valid.

use crate::credential::{self, CredentialType};
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::network_id::NetworkId;
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Address;

/// Forward this revocation to the network's other members at once.
pub const FLAG_FAST_PROPAGATE: u64 = 0x1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub id: u32,
    pub network_id: NetworkId,
    pub credential_id: u32,
    /// Milliseconds: credentials with timestamp ≤ this are revoked.
    pub threshold: u64,
    pub flags: u64,
    pub target: Address,
    pub signed_by: Address,
    pub credential_type: CredentialType,
    pub signature: [u8; SIGNATURE_LEN],
}

impl Revocation {
    /// An unsigned revocation; call [`sign`](Self::sign).
    pub fn new(
        id: u32,
        network_id: NetworkId,
        credential_id: u32,
        threshold: u64,
        flags: u64,
        target: Address,
        credential_type: CredentialType,
    ) -> Revocation {
        Revocation {
            id,
            network_id,
            credential_id,
            threshold,
            flags,
            target,
            signed_by: Address::default(),
            credential_type,
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    pub fn fast_propagate(&self) -> bool {
        self.flags & FLAG_FAST_PROPAGATE != 0
    }

    fn write_fields(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.id);
        out.put_u64(self.network_id.to_u64());
        out.put_u32(0);
        out.put_u32(self.credential_id);
        out.put_u64(self.threshold);
        out.put_u64(self.flags);
        out.put_address(self.target);
        out.put_address(self.signed_by);
        out.put_u8(self.credential_type.to_u8());
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Revocation, WireError> {
        r.skip(4, "revocation reserved")?;
        let id = r.u32("revocation id")?;
        let network_id = NetworkId(r.u64("revocation nwid")?);
        r.skip(4, "revocation reserved")?;
        let rev = Revocation {
            id,
            network_id,
            credential_id: r.u32("revocation credentialId")?,
            threshold: r.u64("revocation threshold")?,
            flags: r.u64("revocation flags")?,
            target: r.address("revocation target")?,
            signed_by: r.address("revocation signedBy")?,
            credential_type: CredentialType::from_u8(r.u8("revocation credential type")?),
            signature: [0u8; SIGNATURE_LEN],
        };
        let signature = credential::read_signature(r, "revocation signature")?;
        credential::skip_extension(r, "revocation extension")?;
        Ok(Revocation { signature, ..rev })
    }
}

credential::controller_signed_credential!(Revocation);
