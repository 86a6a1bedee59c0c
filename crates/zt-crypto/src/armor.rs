//! Packet armor: per-packet MAC and encryption in place. PROTOCOL.md §3.2–3.6.
//!
//! Works on a whole assembled packet (header at offset 0, verb byte at 27). The caller sets
//! the flags byte (cipher bits, FRAGMENTED) before `armor`; hops must be 0.

/// Cipher suite numbers from the flags byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    /// 0: Poly1305 MAC, payload in clear.
    Poly1305None = 0,
    /// 1: Salsa20/12 encryption then Poly1305.
    Poly1305Salsa2012 = 1,
    /// 2: no crypto, trusted path.
    NoneTrustedPath = 2,
    /// 3: AES-256-GMAC-SIV.
    AesGmacSiv = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DearmorError {
    #[error("packet too short")]
    TooShort,
    #[error("MAC check failed")]
    BadMac,
    #[error("unsupported cipher suite {0}")]
    UnsupportedSuite(u8),
}

/// The 48-byte per-peer key plus the precomputed AES keys (KBKDF, §3.4).
#[derive(Clone)]
pub struct PeerKey {
    raw: [u8; 48],
}

impl PeerKey {
    pub fn new(raw: [u8; 48]) -> PeerKey {
        PeerKey { raw }
    }
    pub fn raw(&self) -> &[u8; 48] {
        &self.raw
    }
}

/// Armor `packet` in place with `suite` (sets the MAC, encrypts for suites 1 and 3; for suite 3
/// also rewrites the packet ID). The flags byte's cipher bits must already equal `suite`.
pub fn armor(_packet: &mut [u8], _key: &PeerKey, _suite: CipherSuite) {
    todo!()
}

/// Check and decrypt `packet` in place according to the cipher bits of its flags byte.
pub fn dearmor(_packet: &mut [u8], _key: &PeerKey) -> Result<CipherSuite, DearmorError> {
    todo!()
}

/// HELLO's encrypted moon tail (§3.6): XOR `range` with Salsa20/12 keyed by the raw key.
pub fn crypt_field(_key: &PeerKey, _packet_id: &[u8; 8], _data: &mut [u8]) {
    todo!()
}
