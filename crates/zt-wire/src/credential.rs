//! What the signed network credentials (PROTOCOL.md §6.6) have in common: the credential type
//! numbers, the signature block `[1] type [2] length [len] signature`, the
//! `7F×8 … [2] 0 7F×8` signed-form framing, and the outcome of a verification.

use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Address;

/// Credential type numbers (used by revocations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialType {
    Null,
    CertificateOfMembership,
    Capability,
    Tag,
    CertificateOfOwnership,
    Revocation,
    /// A number the reference does not define; kept so a revocation round-trips.
    Other(u8),
}

impl CredentialType {
    pub fn from_u8(b: u8) -> CredentialType {
        match b {
            0 => CredentialType::Null,
            1 => CredentialType::CertificateOfMembership,
            2 => CredentialType::Capability,
            3 => CredentialType::Tag,
            4 => CredentialType::CertificateOfOwnership,
            6 => CredentialType::Revocation,
            other => CredentialType::Other(other),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            CredentialType::Null => 0,
            CredentialType::CertificateOfMembership => 1,
            CredentialType::Capability => 2,
            CredentialType::Tag => 3,
            CredentialType::CertificateOfOwnership => 4,
            CredentialType::Revocation => 6,
            CredentialType::Other(b) => b,
        }
    }
}

/// The result of checking a credential's signature(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Valid,
    /// Wrong signer, or a signature that does not verify.
    Invalid,
    /// The signer's identity is needed: look it up (WHOIS) and try again.
    NeedIdentity(Address),
}

/// The only signature type the reference writes: a 96-byte C25519 signature.
pub(crate) const SIGNATURE_TYPE_C25519: u8 = 1;
pub(crate) const SIGNED_FORM_MARKER: [u8; 8] = [0x7f; 8];

/// Read `[1] type [2] length [length] bytes`. Type 1 must carry exactly 96 bytes; any other
/// type is skipped and leaves the signature all zeros (unsigned), as the reference does.
pub(crate) fn read_signature(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<[u8; SIGNATURE_LEN], WireError> {
    let kind = r.u8(field)?;
    let len = r.u16(field)? as usize;
    if kind == SIGNATURE_TYPE_C25519 {
        if len != SIGNATURE_LEN {
            return Err(WireError::invalid(
                field,
                format!("signature length {len}, expected 96"),
            ));
        }
        r.array(field)
    } else {
        r.skip(len, field)?;
        Ok([0u8; SIGNATURE_LEN])
    }
}

pub(crate) fn write_signature(out: &mut Vec<u8>, signature: &[u8; SIGNATURE_LEN]) {
    out.put_u8(SIGNATURE_TYPE_C25519);
    out.put_u16(SIGNATURE_LEN as u16);
    out.put_bytes(signature);
}

/// Skip the `[2] length [length]` extension section that ends every credential.
pub(crate) fn skip_extension(r: &mut Reader<'_>, field: &'static str) -> Result<(), WireError> {
    let len = r.u16(field)? as usize;
    r.skip(len, field)
}

/// `7F×8 | body | [2] 0 | 7F×8`: the bytes a credential signature covers.
pub(crate) fn signed_form(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 18);
    out.put_bytes(&SIGNED_FORM_MARKER);
    out.put_bytes(body);
    out.put_u16(0);
    out.put_bytes(&SIGNED_FORM_MARKER);
    out
}

/// The check every controller-signed credential shares.
pub(crate) fn verify_by_controller(
    network_id: crate::network_id::NetworkId,
    signed_by: Address,
    controller: &zt_crypto::Identity,
    signed_form: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Verification {
    if signed_by != network_id.controller() {
        return Verification::Invalid;
    }
    if controller.address() != signed_by {
        return Verification::NeedIdentity(signed_by);
    }
    if controller.verify(signed_form, signature) {
        Verification::Valid
    } else {
        Verification::Invalid
    }
}

/// The methods of a credential signed by its network's controller and written as
/// `fields | signature block | [2] 0`: tags, revocations and certificates of ownership.
/// The type must have `network_id`, `signed_by` and `signature` fields and a
/// `write_fields(&self, &mut Vec<u8>)` method that writes everything before the signature.
macro_rules! controller_signed_credential {
    ($type:ty) => {
        impl $type {
            /// The bytes the controller's signature covers.
            pub fn signed_form(&self) -> Vec<u8> {
                let mut body = Vec::new();
                self.write_fields(&mut body);
                $crate::credential::signed_form(&body)
            }

            pub fn sign(
                &mut self,
                controller: &zt_crypto::Identity,
            ) -> Result<(), $crate::error::WireError> {
                self.signed_by = controller.address();
                self.signature = controller.sign(&self.signed_form())?;
                Ok(())
            }

            /// Signed by the network's controller, and `controller` is that identity.
            pub fn verify(
                &self,
                controller: &zt_crypto::Identity,
            ) -> $crate::credential::Verification {
                $crate::credential::verify_by_controller(
                    self.network_id,
                    self.signed_by,
                    controller,
                    &self.signed_form(),
                    &self.signature,
                )
            }

            pub fn write(&self, out: &mut Vec<u8>) {
                self.write_fields(out);
                $crate::credential::write_signature(out, &self.signature);
                $crate::cursor::Writer::put_u16(out, 0);
            }
        }
    };
}
pub(crate) use controller_signed_credential;
