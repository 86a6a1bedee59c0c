//! ZeroTier identities (type 0, C25519): key layout, string and binary forms, address
//! derivation (memory-hard hashcash), validation, signatures and key agreement.
//! PROTOCOL.md §2.
use crate::address::Address;
use crate::c25519;
use crate::salsa::Salsa20;
use sha2::{Digest, Sha384, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

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

/// The only identity type of ZeroTier 1.x (C25519).
const IDENTITY_TYPE_C25519: u8 = 0;
/// Size of the memory-hard hash's scratch buffer (`ZT_IDENTITY_GEN_MEMORY`).
const MEMORY_HARD_BYTES: usize = 2 * 1024 * 1024;
/// A derived digest is acceptable only if its first byte is below this.
const MEMORY_HARD_DIGEST_LIMIT: u8 = 17;

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
    ///
    /// The Ed25519 half is drawn once; the X25519 scalar is redrawn until the derived digest
    /// qualifies and names a non-reserved address (on average about 15 hashes).
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Identity {
        let mut scratch = MemoryHardScratch::new();
        let mut private = Box::new([0u8; PRIVATE_KEY_LEN]);
        rng.fill_bytes(&mut private[32..]);
        let ed_public = c25519::ed25519_public(c25519::second_half(&private));
        loop {
            rng.fill_bytes(&mut private[..32]);
            let mut public = [0u8; PUBLIC_KEY_LEN];
            public[..32].copy_from_slice(&c25519::x25519_public(c25519::first_half(&private)));
            public[32..].copy_from_slice(&ed_public);
            let digest = scratch.hash(&public);
            if digest[0] >= MEMORY_HARD_DIGEST_LIMIT {
                continue;
            }
            let address = address_from_digest(&digest);
            if address.is_reserved() {
                continue;
            }
            return Identity {
                address,
                public,
                private: Some(private),
            };
        }
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
    ///
    /// Stricter than the reference parser on field lengths: the address must be exactly 10
    /// hex digits and each key exactly 128. Hex digits of either case are accepted.
    pub fn from_string(s: &str) -> Result<Identity, IdentityError> {
        let mut fields = s.trim().split(':');
        let (Some(address), Some(kind), Some(public)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(IdentityError::Malformed("fewer than 3 fields"));
        };
        let private = fields.next();
        if fields.next().is_some() {
            return Err(IdentityError::Malformed("more than 4 fields"));
        }
        let address: Address = address
            .parse()
            .map_err(|_| IdentityError::Malformed("address is not 10 hex digits"))?;
        if address.is_reserved() {
            return Err(IdentityError::ReservedAddress);
        }
        if kind != "0" {
            return Err(match kind.parse::<u8>() {
                Ok(t) => IdentityError::UnsupportedType(t),
                Err(_) => IdentityError::Malformed("identity type is not a number"),
            });
        }
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(public, &mut public_key)
            .map_err(|_| IdentityError::Malformed("public key is not 128 hex digits"))?;
        let private = match private {
            None => None,
            Some(p) => {
                let mut key = Box::new([0u8; PRIVATE_KEY_LEN]);
                hex::decode_to_slice(p, &mut key[..])
                    .map_err(|_| IdentityError::Malformed("private key is not 128 hex digits"))?;
                Some(key)
            }
        };
        Ok(Identity {
            address,
            public: public_key,
            private,
        })
    }
    /// `addr:0:pub`.
    pub fn to_public_string(&self) -> String {
        format!(
            "{}:{}:{}",
            self.address,
            IDENTITY_TYPE_C25519,
            hex::encode(self.public)
        )
    }
    /// `addr:0:pub:priv`; `None` without a private key.
    pub fn to_secret_string(&self) -> Option<String> {
        let private = self.private.as_deref()?;
        Some(format!(
            "{}:{}",
            self.to_public_string(),
            hex::encode(private)
        ))
    }
    /// Parse the binary form; returns the identity and the number of bytes consumed.
    ///
    /// Rejects a type other than 0, a private-key length other than 0 or 64, and a reserved
    /// address (which can never belong to a valid identity).
    pub fn read_binary(b: &[u8]) -> Result<(Identity, usize), IdentityError> {
        if b.len() < PUBLIC_BINARY_LEN {
            return Err(IdentityError::Truncated);
        }
        let address = Address::from_slice(b).ok_or(IdentityError::Truncated)?;
        if b[5] != IDENTITY_TYPE_C25519 {
            return Err(IdentityError::UnsupportedType(b[5]));
        }
        if address.is_reserved() {
            return Err(IdentityError::ReservedAddress);
        }
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(&b[6..70]);
        let private_len = usize::from(b[70]);
        let private = match private_len {
            0 => None,
            PRIVATE_KEY_LEN => {
                let bytes = b
                    .get(PUBLIC_BINARY_LEN..PUBLIC_BINARY_LEN + PRIVATE_KEY_LEN)
                    .ok_or(IdentityError::Truncated)?;
                let mut key = Box::new([0u8; PRIVATE_KEY_LEN]);
                key.copy_from_slice(bytes);
                Some(key)
            }
            _ => {
                return Err(IdentityError::Malformed(
                    "private key length is not 0 or 64",
                ))
            }
        };
        Ok((
            Identity {
                address,
                public,
                private,
            },
            PUBLIC_BINARY_LEN + private_len,
        ))
    }
    /// Append the binary form (71 bytes public; 135 with the private key if asked and present).
    pub fn write_binary(&self, out: &mut Vec<u8>, include_private: bool) {
        out.extend_from_slice(&self.address.to_bytes());
        out.push(IDENTITY_TYPE_C25519);
        out.extend_from_slice(&self.public);
        match self.private.as_deref() {
            Some(private) if include_private => {
                out.push(PRIVATE_KEY_LEN as u8);
                out.extend_from_slice(private);
            }
            _ => out.push(0),
        }
    }
    /// The public part only.
    pub fn to_public(&self) -> Identity {
        Identity {
            address: self.address,
            public: self.public,
            private: None,
        }
    }
    /// The address-derivation check plus reserved-address check (expensive: ~2 MiB hash).
    /// Also checks the private key matches the public key when present.
    ///
    /// The private-key check goes beyond the reference `Identity::locallyValidate`, which
    /// looks at the public half only; `to_public().locally_validate()` gives its verdict.
    pub fn locally_validate(&self) -> bool {
        if self.address.is_reserved() {
            return false;
        }
        if let Some(private) = self.private.as_deref() {
            let derived = c25519::public_from_private(private);
            if !bool::from(derived.ct_eq(&self.public)) {
                return false;
            }
        }
        let digest = MemoryHardScratch::new().hash(&self.public);
        digest[0] < MEMORY_HARD_DIGEST_LIMIT && address_from_digest(&digest) == self.address
    }
    /// 96-byte signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; SIGNATURE_LEN], IdentityError> {
        let private = self.private.as_deref().ok_or(IdentityError::NoPrivateKey)?;
        Ok(c25519::sign_with_public(private, &self.public, msg))
    }
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        c25519::verify(&self.public, msg, signature)
    }
    /// The 48-byte long-term key shared with `other`.
    pub fn agree(&self, other: &Identity) -> Result<[u8; PEER_KEY_LEN], IdentityError> {
        let private = self.private.as_deref().ok_or(IdentityError::NoPrivateKey)?;
        let mut full = c25519::agree(private, &other.public);
        let mut key = [0u8; PEER_KEY_LEN];
        key.copy_from_slice(&full[..PEER_KEY_LEN]);
        full.zeroize();
        Ok(key)
    }
    /// SHA-384(address ‖ public key), used in COM qualifiers.
    pub fn public_key_hash(&self) -> [u8; 48] {
        let mut h = Sha384::new();
        h.update(self.address.to_bytes());
        h.update(self.public);
        h.finalize().into()
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        if let Some(private) = self.private.as_deref_mut() {
            private.zeroize();
        }
    }
}

/// The address is the last 5 bytes of the memory-hard digest.
fn address_from_digest(digest: &[u8; 64]) -> Address {
    Address::from_slice(&digest[59..]).expect("digest has 5 trailing bytes")
}

/// The 2 MiB scratch buffer of the memory-hard hash, reusable across hashes (identity
/// generation runs many in a row).
struct MemoryHardScratch {
    memory: Vec<u8>,
}

impl MemoryHardScratch {
    fn new() -> MemoryHardScratch {
        MemoryHardScratch {
            memory: vec![0u8; MEMORY_HARD_BYTES],
        }
    }

    /// The memory-hard digest of a public key (PROTOCOL.md §2.4).
    fn hash(&mut self, public: &[u8; PUBLIC_KEY_LEN]) -> [u8; 64] {
        const WORDS: u64 = (MEMORY_HARD_BYTES / 8) as u64;
        let mut digest: [u8; 64] = Sha512::digest(public).into();
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest[..32]);
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&digest[32..40]);
        let mut stream = Salsa20::new(&key, &nonce);

        // Block i is block i-1 encrypted with the continuing stream. Encrypting the whole
        // zeroed buffer in one call yields the raw keystream blocks in order; a running XOR
        // then turns keystream block i into K0 ^ ... ^ Ki, which is the same thing.
        let memory = &mut self.memory[..];
        memory.fill(0);
        stream.apply_keystream(memory);
        for i in 64..MEMORY_HARD_BYTES {
            memory[i] ^= memory[i - 64];
        }

        // Walk the buffer two words at a time; each pair picks a digest word and a buffer word
        // to swap (indices read big-endian at the moment of use), then the digest is
        // re-encrypted with the same stream.
        for pair in 0..MEMORY_HARD_BYTES / 16 {
            let at = pair * 16;
            let digest_word = (read_be64(memory, at) % 8) as usize * 8;
            let memory_word = (read_be64(memory, at + 8) % WORDS) as usize * 8;
            let mut tmp = [0u8; 8];
            tmp.copy_from_slice(&memory[memory_word..memory_word + 8]);
            memory[memory_word..memory_word + 8]
                .copy_from_slice(&digest[digest_word..digest_word + 8]);
            digest[digest_word..digest_word + 8].copy_from_slice(&tmp);
            stream.apply_keystream(&mut digest);
        }
        digest
    }
}

fn read_be64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(w)
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
