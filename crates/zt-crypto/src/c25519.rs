//! Raw C25519 key pairs (64-byte public X25519 ‖ Ed25519, 64-byte private), used directly
//! for World (planet/moon) signing keys, and the 96-byte signature scheme. PROTOCOL.md §2.5.

/// A raw C25519 key pair as stored in `*.c25519` files: public 64 ‖ private 64.
#[derive(Clone)]
pub struct KeyPair {
    pub public: [u8; 64],
    pub private: [u8; 64],
}

impl KeyPair {
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(_rng: &mut R) -> KeyPair {
        todo!()
    }
    /// From 128 bytes public ‖ private.
    pub fn from_bytes(_b: &[u8]) -> Option<KeyPair> {
        todo!()
    }
    pub fn to_bytes(&self) -> [u8; 128] {
        todo!()
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 96] {
        sign(&self.private, msg)
    }
}

/// Sign with a 64-byte C25519 private key (the Ed25519 seed is bytes 32..64).
pub fn sign(_private: &[u8; 64], _msg: &[u8]) -> [u8; 96] {
    todo!()
}

/// Verify a 96-byte signature with a 64-byte C25519 public key.
pub fn verify(_public: &[u8; 64], _msg: &[u8], _signature: &[u8]) -> bool {
    todo!()
}
