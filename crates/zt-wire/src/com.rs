//! CertificateOfMembership (PROTOCOL.md §6.6, agreement §6.8): a controller-signed list of
//! `(id, value, maxDelta)` qualifiers. Two members may talk on a private network when their
//! COMs agree: same network, timestamps within the window, and the identity-hash qualifiers
//! 3..6 matching the sender's real identity.

use crate::credential::Verification;
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::network_id::NetworkId;
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::{Address, Identity};

/// Most qualifiers a COM may carry (`ZT_NETWORK_COM_MAX_QUALIFIERS`).
pub const MAX_QUALIFIERS: usize = 8;

/// Qualifier IDs the reference controller issues.
pub const QUALIFIER_TIMESTAMP: u64 = 0;
pub const QUALIFIER_NETWORK_ID: u64 = 1;
pub const QUALIFIER_ISSUED_TO: u64 = 2;
/// IDs 3..=6 hold the first 32 bytes of `publicKeyHash(issuedTo)` as four BE words.
pub const QUALIFIER_IDENTITY_HASH: [u64; 4] = [3, 4, 5, 6];

const COM_VERSION: u8 = 1;

/// One `(id, value, maxDelta)` triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qualifier {
    pub id: u64,
    pub value: u64,
    pub max_delta: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOfMembership {
    /// Sorted by non-decreasing ID.
    pub qualifiers: Vec<Qualifier>,
    /// Zero when unsigned (then no signature is serialized).
    pub signed_by: Address,
    pub signature: [u8; SIGNATURE_LEN],
}

/// The four identity-hash words of `identity`.
pub fn identity_hash_words(identity: &Identity) -> [u64; 4] {
    let hash = identity.public_key_hash();
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(hash.chunks_exact(8)) {
        *word = u64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
    }
    words
}

impl CertificateOfMembership {
    /// The seven qualifiers the reference controller issues (unsigned; call [`sign`](Self::sign)).
    pub fn new(timestamp: u64, max_delta: u64, nwid: NetworkId, issued_to: &Identity) -> Self {
        let mut qualifiers = vec![
            Qualifier {
                id: QUALIFIER_TIMESTAMP,
                value: timestamp,
                max_delta,
            },
            Qualifier {
                id: QUALIFIER_NETWORK_ID,
                value: nwid.to_u64(),
                max_delta: 0,
            },
            Qualifier {
                id: QUALIFIER_ISSUED_TO,
                value: issued_to.address().to_u64(),
                max_delta: u64::MAX,
            },
        ];
        for (id, value) in QUALIFIER_IDENTITY_HASH
            .into_iter()
            .zip(identity_hash_words(issued_to))
        {
            qualifiers.push(Qualifier {
                id,
                value,
                max_delta: u64::MAX,
            });
        }
        CertificateOfMembership {
            qualifiers,
            signed_by: Address::default(),
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    pub fn qualifier(&self, id: u64) -> Option<&Qualifier> {
        self.qualifiers.iter().find(|q| q.id == id)
    }
    pub fn timestamp(&self) -> Option<u64> {
        self.qualifier(QUALIFIER_TIMESTAMP).map(|q| q.value)
    }
    pub fn network_id(&self) -> Option<NetworkId> {
        self.qualifier(QUALIFIER_NETWORK_ID)
            .map(|q| NetworkId(q.value))
    }
    pub fn issued_to(&self) -> Option<Address> {
        self.qualifier(QUALIFIER_ISSUED_TO)
            .and_then(|q| Address::new(q.value))
    }
    pub fn is_signed(&self) -> bool {
        self.signed_by != Address::default()
    }

    /// The signed bytes: the qualifier triples back to back.
    pub fn signed_form(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.qualifiers.len() * 24);
        for q in &self.qualifiers {
            out.put_u64(q.id);
            out.put_u64(q.value);
            out.put_u64(q.max_delta);
        }
        out
    }

    /// Sign as `controller` (it needs its private key).
    pub fn sign(&mut self, controller: &Identity) -> Result<(), WireError> {
        self.signature = controller.sign(&self.signed_form())?;
        self.signed_by = controller.address();
        Ok(())
    }

    /// Check the signature: the signer must be the controller of the network named in
    /// qualifier 1, and `controller` must be that identity.
    pub fn verify(&self, controller: &Identity) -> Verification {
        let Some(nwid) = self.network_id() else {
            return Verification::Invalid;
        };
        if !self.is_signed() || self.signed_by != nwid.controller() {
            return Verification::Invalid;
        }
        if controller.address() != self.signed_by {
            return Verification::NeedIdentity(self.signed_by);
        }
        if controller.verify(&self.signed_form(), &self.signature) {
            Verification::Valid
        } else {
            Verification::Invalid
        }
    }

    /// `agreesWith`: does `other` (a COM presented by `other_identity`) agree with ours?
    pub fn agrees_with(&self, other: &CertificateOfMembership, other_identity: &Identity) -> bool {
        if self.qualifiers.is_empty() || other.qualifiers.is_empty() {
            return false;
        }
        // With duplicate IDs the reference compares against the last one (a map insert).
        let theirs_by_id = |id: u64| other.qualifiers.iter().rev().find(|q| q.id == id);
        for mine in &self.qualifiers {
            let Some(theirs) = theirs_by_id(mine.id) else {
                return false;
            };
            if mine.value.abs_diff(theirs.value) > mine.max_delta {
                return false;
            }
        }
        // If we carry identity-hash qualifiers, theirs must be present and name the sender.
        if self
            .qualifiers
            .iter()
            .any(|q| QUALIFIER_IDENTITY_HASH.contains(&q.id))
        {
            let words = identity_hash_words(other_identity);
            for (id, word) in QUALIFIER_IDENTITY_HASH.into_iter().zip(words) {
                if theirs_by_id(id).map(|q| q.value) != Some(word) {
                    return false;
                }
            }
        }
        true
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(COM_VERSION);
        // Bounded by MAX_QUALIFIERS on read; a locally built COM has 7.
        out.put_u16(self.qualifiers.len() as u16);
        for q in &self.qualifiers {
            out.put_u64(q.id);
            out.put_u64(q.value);
            out.put_u64(q.max_delta);
        }
        out.put_address(self.signed_by);
        if self.is_signed() {
            out.put_bytes(&self.signature);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    pub fn read(r: &mut Reader<'_>) -> Result<CertificateOfMembership, WireError> {
        let version = r.u8("COM version")?;
        if version != COM_VERSION {
            return Err(WireError::invalid("COM version", format!("{version}")));
        }
        let count = r.u16("COM qualifier count")? as usize;
        if count > MAX_QUALIFIERS {
            return Err(WireError::TooLarge("COM qualifiers"));
        }
        let mut qualifiers: Vec<Qualifier> = Vec::with_capacity(count);
        for _ in 0..count {
            let q = Qualifier {
                id: r.u64("COM qualifier id")?,
                value: r.u64("COM qualifier value")?,
                max_delta: r.u64("COM qualifier maxDelta")?,
            };
            if qualifiers.last().is_some_and(|last| last.id > q.id) {
                return Err(WireError::invalid(
                    "COM qualifier id",
                    "qualifiers out of order",
                ));
            }
            qualifiers.push(q);
        }
        let signed_by = r.address("COM signedBy")?;
        let signature = if signed_by != Address::default() {
            r.array("COM signature")?
        } else {
            [0u8; SIGNATURE_LEN]
        };
        Ok(CertificateOfMembership {
            qualifiers,
            signed_by,
            signature,
        })
    }

    /// Parse a buffer holding exactly one COM (the config `C` value).
    pub fn parse(buf: &[u8]) -> Result<CertificateOfMembership, WireError> {
        let mut r = Reader::new(buf);
        let com = CertificateOfMembership::read(&mut r)?;
        if !r.is_empty() {
            return Err(WireError::invalid("COM", "trailing bytes"));
        }
        Ok(com)
    }
}
