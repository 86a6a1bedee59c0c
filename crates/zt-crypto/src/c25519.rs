//! Raw C25519 key pairs (64-byte public X25519 ‖ Ed25519, 64-byte private), used directly
//! for World (planet/moon) signing keys, and the 96-byte signature scheme. PROTOCOL.md §2.5.
//!
//! A C25519 private key is an X25519 scalar (bytes 0..32, stored unclamped) followed by an
//! Ed25519 seed (bytes 32..64); the public key is the matching X25519 public key followed by
//! the Ed25519 public key. Identities (§2) use exactly this key material.
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroize;

/// Length of a C25519 public or private key.
pub const KEY_LEN: usize = 64;
/// Length of the 96-byte C25519 signature (Ed25519 64 ‖ SHA-512 prefix 32).
pub const SIGNATURE_LEN: usize = 96;

/// A raw C25519 key pair as stored in `*.c25519` files: public 64 ‖ private 64.
#[derive(Clone)]
pub struct KeyPair {
    pub public: [u8; 64],
    pub private: [u8; 64],
}

impl KeyPair {
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> KeyPair {
        let mut private = [0u8; 64];
        rng.fill_bytes(&mut private);
        KeyPair {
            public: public_from_private(&private),
            private,
        }
    }
    /// From 128 bytes public ‖ private. `None` if the length is not 128 or the public half
    /// does not belong to the private half (a corrupt key file must not sign anything).
    pub fn from_bytes(b: &[u8]) -> Option<KeyPair> {
        let b: &[u8; 128] = b.try_into().ok()?;
        let mut public = [0u8; 64];
        let mut private = [0u8; 64];
        public.copy_from_slice(&b[..64]);
        private.copy_from_slice(&b[64..]);
        let derived = public_from_private(&private);
        bool::from(derived.ct_eq(&public)).then_some(KeyPair { public, private })
    }
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut out = [0u8; 128];
        out[..64].copy_from_slice(&self.public);
        out[64..].copy_from_slice(&self.private);
        out
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 96] {
        sign_with_public(&self.private, &self.public, msg)
    }
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

/// Derive the 64-byte public key (X25519 ‖ Ed25519) from a 64-byte private key.
pub fn public_from_private(private: &[u8; 64]) -> [u8; 64] {
    let mut public = [0u8; 64];
    public[..32].copy_from_slice(&x25519_public(first_half(private)));
    public[32..].copy_from_slice(&ed25519_public(second_half(private)));
    public
}

/// The X25519 public key of a (possibly unclamped) scalar; clamping happens inside.
pub(crate) fn x25519_public(scalar: &[u8; 32]) -> [u8; 32] {
    X25519Public::from(&StaticSecret::from(*scalar)).to_bytes()
}

/// The standard Ed25519 public key of a seed.
pub(crate) fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Key agreement: SHA-512 of the X25519 shared secret of our private scalar (bytes 0..32 of
/// `private`) and their X25519 public key (bytes 0..32 of `their_public`). All 64 bytes of the
/// digest are returned; identities keep the first 48 (§2.6).
///
/// Like the reference, a low-order peer key is not rejected: the result is then a fixed value,
/// which only hurts the owner of such a key.
pub fn agree(private: &[u8; 64], their_public: &[u8; 64]) -> [u8; 64] {
    let secret = StaticSecret::from(*first_half(private));
    let shared = secret.diffie_hellman(&X25519Public::from(*first_half(their_public)));
    Sha512::digest(shared.as_bytes()).into()
}

/// The 32-byte value that is actually Ed25519-signed: the first half of SHA-512(msg).
fn signed_digest(msg: &[u8]) -> [u8; 32] {
    let full = Sha512::digest(msg);
    let mut h = [0u8; 32];
    h.copy_from_slice(&full[..32]);
    h
}

/// Sign with a 64-byte C25519 private key (the Ed25519 seed is bytes 32..64).
pub fn sign(private: &[u8; 64], msg: &[u8]) -> [u8; 96] {
    let h = signed_digest(msg);
    let signature = SigningKey::from_bytes(second_half(private)).sign(&h);
    signature_bytes(&signature, &h)
}

/// [`sign`] for a key pair whose public half is at hand (identities, `KeyPair`).
///
/// WHY: building a `SigningKey` from the seed re-derives the Ed25519 public key, a
/// base-point multiplication costing about as much as the signature itself. Decompressing
/// the known public key is much cheaper. Ed25519 signatures are deterministic, so the bytes
/// are exactly those of [`sign`] whenever `public` belongs to `private`; if the public half
/// does not decode as a point, this falls back to [`sign`].
pub(crate) fn sign_with_public(private: &[u8; 64], public: &[u8; 64], msg: &[u8]) -> [u8; 96] {
    let Ok(verifying_key) = VerifyingKey::from_bytes(second_half(public)) else {
        return sign(private, msg);
    };
    let h = signed_digest(msg);
    let expanded = ExpandedSecretKey::from(second_half(private));
    let signature = raw_sign::<Sha512>(&expanded, &h, &verifying_key);
    signature_bytes(&signature, &h)
}

/// The 96-byte wire form: Ed25519 signature ‖ the signed digest.
fn signature_bytes(signature: &ed25519_dalek::Signature, h: &[u8; 32]) -> [u8; 96] {
    let mut out = [0u8; 96];
    out[..64].copy_from_slice(&signature.to_bytes());
    out[64..].copy_from_slice(h);
    out
}

/// Verify a 96-byte signature with a 64-byte C25519 public key.
///
/// Uses ed25519-dalek's non-strict `verify` (cofactorless, like the reference's ref10 code).
/// One known difference: dalek rejects a non-reduced `S` (≥ the group order) that the
/// reference would reduce and accept; honest signers never produce one.
pub fn verify(public: &[u8; 64], msg: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    let h = signed_digest(msg);
    if !bool::from(signature[64..].ct_eq(&h)) {
        return false;
    }
    let Ok(key) = VerifyingKey::from_bytes(second_half(public)) else {
        return false;
    };
    let mut sig64 = [0u8; 64];
    sig64.copy_from_slice(&signature[..64]);
    // `Verifier::verify` is the non-strict check; `verify_strict` would also reject
    // small-order keys and R values that the reference accepts.
    ed25519_dalek::Verifier::verify(&key, &h, &ed25519_dalek::Signature::from_bytes(&sig64)).is_ok()
}

pub(crate) fn first_half(k: &[u8; 64]) -> &[u8; 32] {
    k[..32]
        .try_into()
        .expect("64-byte key has a 32-byte first half")
}

pub(crate) fn second_half(k: &[u8; 64]) -> &[u8; 32] {
    k[32..]
        .try_into()
        .expect("64-byte key has a 32-byte second half")
}
