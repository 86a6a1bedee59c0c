//! ZeroTier identities (type 0, C25519): key layout, string and binary forms, address
//! derivation (memory-hard hashcash), validation, signatures and key agreement.
//! PROTOCOL.md §2.
use crate::address::Address;

/// Length of the combined public key (X25519 ‖ Ed25519).
pub const PUBLIC_KEY_LEN: usize = 64;
/// Length of the combined private key (X25519 scalar ‖ Ed25519 seed).
pub const PRIVATE_KEY_LEN: usize = 64;
/// Length of a C25519 signature (Ed25519 64 ‖ SHA-512 prefix 32).
pub const SIGNATURE_LEN: usize = 96;
/// Length of the per-peer symmetric key.
pub const PEER_KEY_LEN: usize = 48;
/// Length of a public identity in binary form (address, type, key, private length 0).
pub const PUBLIC_BINARY_LEN: usize = 71;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("malformed identity: {0}")]
    Malformed(&'static str),
    #[error("identity is truncated")]
    Truncated,
    #[error("unsupported identity type {0}")]
    UnsupportedType(u8),
    #[error("identity has no private key")]
    NoPrivateKey,
    #[error("reserved address")]
    ReservedAddress,
}

/// A ZeroTier identity: address, public key and optionally the private key.
#[derive(Clone)]
pub struct Identity {
    address: Address,
    public: [u8; PUBLIC_KEY_LEN],
    private: Option<Box<[u8; PRIVATE_KEY_LEN]>>,
}

impl Identity {
    /// Generate a new identity whose address satisfies the memory-hard criterion.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(_rng: &mut R) -> Identity {
        todo!("zt-crypto helper")
    }
    pub fn address(&self) -> Address {
        self.address
    }
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }
    pub fn private_key(&self) -> Option<&[u8; PRIVATE_KEY_LEN]> {
        self.private.as_deref()
    }
    pub fn has_private(&self) -> bool {
        self.private.is_some()
    }
    /// Parse `addr:0:pub` or `addr:0:pub:priv` (format only; call `locally_validate`).
    pub fn from_string(_s: &str) -> Result<Identity, IdentityError> {
        todo!()
    }
    /// `addr:0:pub`.
    pub fn to_public_string(&self) -> String {
        todo!()
    }
    /// `addr:0:pub:priv`; `None` without a private key.
    pub fn to_secret_string(&self) -> Option<String> {
        todo!()
    }
    /// Parse the binary form; returns the identity and the number of bytes consumed.
    pub fn read_binary(_b: &[u8]) -> Result<(Identity, usize), IdentityError> {
        todo!()
    }
    /// Append the binary form (71 bytes public; 135 with the private key if asked and present).
    pub fn write_binary(&self, _out: &mut Vec<u8>, _include_private: bool) {
        todo!()
    }
    /// The public part only.
    pub fn to_public(&self) -> Identity {
        Identity { address: self.address, public: self.public, private: None }
    }
    /// The address-derivation check plus reserved-address check (expensive: ~2 MiB hash).
    /// Also checks the private key matches the public key when present.
    pub fn locally_validate(&self) -> bool {
        todo!()
    }
    /// 96-byte signature over `msg`.
    pub fn sign(&self, _msg: &[u8]) -> Result<[u8; SIGNATURE_LEN], IdentityError> {
        todo!()
    }
    pub fn verify(&self, _msg: &[u8], _signature: &[u8]) -> bool {
        todo!()
    }
    /// The 48-byte long-term key shared with `other`.
    pub fn agree(&self, _other: &Identity) -> Result<[u8; PEER_KEY_LEN], IdentityError> {
        todo!()
    }
    /// SHA-384(address ‖ public key), used in COM qualifiers.
    pub fn public_key_hash(&self) -> [u8; 48] {
        todo!()
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address && self.public == other.public
    }
}
impl Eq for Identity {}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.address)
    }
}
