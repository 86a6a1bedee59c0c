//! zt-crypto: the cryptography of ZeroTier 1.x, byte-for-byte compatible with ZeroTier One.
//!
//! Sits at the bottom of the stack (see `DESIGN.md`): identities and their 40-bit addresses,
//! the 96-byte C25519 signature, key agreement to the 48-byte per-peer key, and the packet
//! ciphers (suites 0/1: Salsa20/12 + Poly1305, suite 3: AES-GMAC-SIV) that armor packets in
//! place on caller-owned buffers. No I/O, no clocks; randomness is passed in.
#![deny(unsafe_code)]

pub mod address;
pub mod armor;
pub mod c25519;
// The only modules with `unsafe`: calls into runtime-detected PCLMULQDQ and VAES code, and
// (VAES) unaligned vector loads and stores; see their docs.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod aes_ctr_vaes;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod ghash_clmul;
pub mod identity;
mod poly1305;
mod salsa;

pub use address::Address;
pub use armor::{CipherSuite, DearmorError, PeerKey};
pub use identity::{Identity, IdentityError};
