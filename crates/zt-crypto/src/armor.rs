//! Packet armor: per-packet MAC and encryption in place. PROTOCOL.md §3.2–3.6.
//!
//! Works on a whole assembled packet (header at offset 0, verb byte at 27). The caller sets
//! the flags byte (cipher bits, FRAGMENTED) before `armor`; hops must be 0.
//!
//! Everything runs on the caller's buffer and the stack: no heap allocation per packet.
#[cfg(target_arch = "x86_64")]
use crate::aes_ctr_vaes::CtrKey;
#[cfg(target_arch = "x86_64")]
use crate::ghash_clmul::GhashKey;
use crate::poly1305;
use crate::salsa::Salsa12;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes256Gcm;
use hmac::{Hmac, Mac};
use sha2::Sha384;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Bytes of the packet header; the verb byte follows.
pub const HEADER_LEN: usize = 28;
/// Offset of the 8-byte packet ID (the Salsa20 nonce, or half the SIV for suite 3).
const PACKET_ID: std::ops::Range<usize> = 0..8;
/// Offset of the flags byte.
const FLAGS: usize = 18;
/// Offset of the 8-byte MAC field.
const MAC: std::ops::Range<usize> = 19..27;
/// Offset of the verb byte, where the authenticated/encrypted envelope starts.
const VERB: usize = 27;
/// The hop count (low 3 bits of the flags byte) is the only field relays change; it is never
/// authenticated.
const HOPS_MASK: u8 = 0x07;

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

impl CipherSuite {
    /// The suite named by the cipher bits (5..3) of a flags byte.
    pub fn from_flags(flags: u8) -> Result<CipherSuite, DearmorError> {
        match (flags >> 3) & 7 {
            0 => Ok(CipherSuite::Poly1305None),
            1 => Ok(CipherSuite::Poly1305Salsa2012),
            2 => Ok(CipherSuite::NoneTrustedPath),
            3 => Ok(CipherSuite::AesGmacSiv),
            other => Err(DearmorError::UnsupportedSuite(other)),
        }
    }
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
    /// AES-256-GCM keyed with K0 (label '0'), used with an empty plaintext as GMAC.
    gmac: Aes256Gcm,
    /// AES-256 keyed with K1 (label '1'): the SIV block cipher and the CTR keystream.
    siv: Aes256,
    /// The fast GMAC path, when the CPU has carry-less multiply: AES-256 keyed with K0 (for
    /// the tag mask E(J0)) and the GHASH key powers. `None` falls back to `gmac`.
    #[cfg(target_arch = "x86_64")]
    gmac_clmul: Option<(Aes256, GhashKey)>,
    /// The fast CTR keystream (K1), when the CPU has VAES; `None` falls back to `siv`.
    #[cfg(target_arch = "x86_64")]
    ctr_vaes: Option<CtrKey>,
}

impl PeerKey {
    pub fn new(raw: [u8; 48]) -> PeerKey {
        let mut k0 = kbkdf_hmac_sha384(&raw, b'0');
        let mut k1 = kbkdf_hmac_sha384(&raw, b'1');
        let gmac = Aes256Gcm::new((&k0[..32]).into());
        let siv = Aes256::new((&k1[..32]).into());
        #[cfg(target_arch = "x86_64")]
        let gmac_clmul = {
            let gmac_block = Aes256::new((&k0[..32]).into());
            // The GCM hash subkey H = E_K0(0¹²⁸).
            let mut h = aes::Block::default();
            gmac_block.encrypt_block(&mut h);
            let mut h_bytes: [u8; 16] = h.into();
            let ghash = GhashKey::new(&h_bytes);
            h_bytes.zeroize();
            ghash.map(|ghash| (gmac_block, ghash))
        };
        #[cfg(target_arch = "x86_64")]
        let ctr_vaes = {
            let mut k1_aes = [0u8; 32];
            k1_aes.copy_from_slice(&k1[..32]);
            let ctr = CtrKey::new(&k1_aes);
            k1_aes.zeroize();
            ctr
        };
        k0.zeroize();
        k1.zeroize();
        PeerKey {
            raw,
            gmac,
            siv,
            #[cfg(target_arch = "x86_64")]
            gmac_clmul,
            #[cfg(target_arch = "x86_64")]
            ctr_vaes,
        }
    }
    pub fn raw(&self) -> &[u8; 48] {
        &self.raw
    }

    /// The 32 bytes used by Salsa20/12 and Poly1305.
    fn salsa_key(&self) -> &[u8; 32] {
        self.raw[..32]
            .try_into()
            .expect("48-byte key has 32 leading bytes")
    }
}

impl Drop for PeerKey {
    fn drop(&mut self) {
        self.raw.zeroize();
    }
}

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerKey(..)")
    }
}

/// One KBKDF (NIST SP 800-108 counter mode, HMAC-SHA-384) output for `label` (§3.4).
fn kbkdf_hmac_sha384(key: &[u8; 48], label: u8) -> [u8; 48] {
    // BE32 counter 0, "ZT", label, separator 0, context 0, BE32 output length 384 bits.
    let msg = [0, 0, 0, 0, b'Z', b'T', label, 0, 0, 0, 0, 0x01, 0x80];
    let mut mac = <Hmac<Sha384> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&msg);
    mac.finalize().into_bytes().into()
}

/// Armor `packet` in place with `suite` (sets the MAC, encrypts for suites 1 and 3; for suite 3
/// also rewrites the packet ID). The flags byte's cipher bits must already equal `suite`.
///
/// Suite 2 (trusted path) has no cryptography: the packet is left as it is and the caller
/// writes the trusted-path ID into the MAC field.
///
/// # Panics
/// If `packet` is shorter than the 28-byte header: the caller builds the packet, so that is a
/// programming error, never a property of received data.
pub fn armor(packet: &mut [u8], key: &PeerKey, suite: CipherSuite) {
    assert!(
        packet.len() >= HEADER_LEN,
        "armor: packet shorter than its header"
    );
    debug_assert_eq!(
        CipherSuite::from_flags(packet[FLAGS]),
        Ok(suite),
        "flags disagree with suite"
    );
    match suite {
        CipherSuite::Poly1305None | CipherSuite::Poly1305Salsa2012 => {
            let encrypt = suite == CipherSuite::Poly1305Salsa2012;
            let mut stream = salsa_for_packet(packet, key);
            let mac_key = poly1305_key(&mut stream);
            if encrypt {
                stream.apply_keystream(&mut packet[VERB..]);
            }
            let tag = poly1305::tag(&mac_key, &packet[VERB..]);
            packet[MAC].copy_from_slice(&tag[..8]);
        }
        CipherSuite::NoneTrustedPath => {}
        CipherSuite::AesGmacSiv => armor_aes_gmac_siv(packet, key),
    }
}

/// Check and decrypt `packet` in place according to the cipher bits of its flags byte.
///
/// On error the packet must be dropped: after a failed suite-3 check the payload has already
/// been CTR-decrypted and is garbage. On success the packet ID keeps its wire value.
pub fn dearmor(packet: &mut [u8], key: &PeerKey) -> Result<CipherSuite, DearmorError> {
    if packet.len() < HEADER_LEN {
        return Err(DearmorError::TooShort);
    }
    let suite = CipherSuite::from_flags(packet[FLAGS])?;
    match suite {
        CipherSuite::Poly1305None | CipherSuite::Poly1305Salsa2012 => {
            let mut stream = salsa_for_packet(packet, key);
            let mac_key = poly1305_key(&mut stream);
            let tag = poly1305::tag(&mac_key, &packet[VERB..]);
            if !bool::from(tag[..8].ct_eq(&packet[MAC])) {
                return Err(DearmorError::BadMac);
            }
            if suite == CipherSuite::Poly1305Salsa2012 {
                stream.apply_keystream(&mut packet[VERB..]);
            }
        }
        // Trusted paths need the physical source to be checked against local configuration,
        // which a bare key cannot do.
        CipherSuite::NoneTrustedPath => return Err(DearmorError::UnsupportedSuite(2)),
        CipherSuite::AesGmacSiv => dearmor_aes_gmac_siv(packet, key)?,
    }
    Ok(suite)
}

/// HELLO's encrypted moon tail (§3.6): XOR `range` with Salsa20/12 keyed by the raw key.
pub fn crypt_field(key: &PeerKey, packet_id: &[u8; 8], data: &mut [u8]) {
    let mut nonce = *packet_id;
    nonce[7] &= 0xf8;
    Salsa12::new(key.salsa_key(), &nonce).apply_keystream(data);
}

/// The Salsa20/12 stream of one packet: key mangled with the header and total length (§3.3),
/// nonce = packet ID, positioned at keystream byte 0.
fn salsa_for_packet(packet: &[u8], key: &PeerKey) -> Salsa12 {
    let mut mangled = *key.salsa_key();
    for (k, p) in mangled.iter_mut().zip(&packet[..FLAGS]) {
        *k ^= p;
    }
    mangled[FLAGS] ^= packet[FLAGS] & !HOPS_MASK;
    // The length is mixed in as 16 bits, low byte first, as the reference does; packets are
    // at most 10024 bytes.
    let len = packet.len();
    mangled[19] ^= (len & 0xff) as u8;
    mangled[20] ^= ((len >> 8) & 0xff) as u8;
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&packet[PACKET_ID]);
    let stream = Salsa12::new(&mangled, &nonce);
    mangled.zeroize();
    stream
}

/// Consume keystream block 0: its first 32 bytes are the Poly1305 one-time key and the rest
/// is discarded, so payload encryption starts at keystream byte 64.
fn poly1305_key(stream: &mut Salsa12) -> [u8; 32] {
    let mut block0 = [0u8; 64];
    stream.apply_keystream(&mut block0);
    let mut mac_key = [0u8; 32];
    mac_key.copy_from_slice(&block0[..32]);
    block0.zeroize();
    mac_key
}

/// The GMAC of the packet (§3.5 step 3), folded to 8 bytes: AES-GCM with key K0, nonce
/// `iv8 ‖ 0⁴`, empty plaintext and AAD = header bytes 8..19 (hops zeroed) padded to 16 bytes,
/// then the plaintext from the verb byte on.
fn gmac_folded(packet: &mut [u8], key: &PeerKey, iv8: &[u8; 8]) -> [u8; 8] {
    let mut aad16 = [0u8; 16];
    aad16[..11].copy_from_slice(&packet[8..19]);
    aad16[10] &= !HOPS_MASK;
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(iv8);

    #[cfg(target_arch = "x86_64")]
    let tag = match &key.gmac_clmul {
        Some((gmac_block, ghash)) => gmac_clmul(gmac_block, ghash, &nonce, &aad16, &packet[VERB..]),
        None => gmac_portable(packet, key, &nonce, &aad16),
    };
    #[cfg(not(target_arch = "x86_64"))]
    let tag = gmac_portable(packet, key, &nonce, &aad16);

    let mut folded = [0u8; 8];
    for (i, f) in folded.iter_mut().enumerate() {
        *f = tag[i] ^ tag[i + 8];
    }
    folded
}

/// The GMAC tag by the `aes-gcm` crate.
///
/// To hand GCM the AAD (`aad16` then the payload) as one slice without copying the payload,
/// bytes 11..27 (which sit right before the verb) are temporarily overwritten with `aad16`,
/// then restored.
fn gmac_portable(packet: &mut [u8], key: &PeerKey, nonce: &[u8; 12], aad16: &[u8; 16]) -> [u8; 16] {
    const AAD_START: usize = VERB - 16;
    let mut saved = [0u8; 16];
    saved.copy_from_slice(&packet[AAD_START..VERB]);
    packet[AAD_START..VERB].copy_from_slice(aad16);
    let tag = key
        .gmac
        .encrypt_in_place_detached(nonce.into(), &packet[AAD_START..], &mut [])
        .expect("GCM accepts any AAD below 2^36 bytes");
    packet[AAD_START..VERB].copy_from_slice(&saved);
    tag.into()
}

/// The same GCM tag as [`gmac_portable`], spelled out (SP 800-38D §7.1 with an empty
/// plaintext): GHASH over the AAD zero-padded to whole blocks, then the length block
/// (AAD bits ‖ 0 plaintext bits); XORed with E_K0(J0), J0 = nonce ‖ 0x00000001.
#[cfg(target_arch = "x86_64")]
fn gmac_clmul(
    gmac_block: &Aes256,
    ghash: &GhashKey,
    nonce: &[u8; 12],
    aad16: &[u8; 16],
    payload: &[u8],
) -> [u8; 16] {
    let aad_bits = (16 + payload.len() as u64) * 8;
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&aad_bits.to_be_bytes());
    let mut y = ghash.absorb(0, aad16);
    y = ghash.absorb(y, payload);
    y = ghash.absorb(y, &lengths);

    let mut mask = aes::Block::default();
    mask[..12].copy_from_slice(nonce);
    mask[15] = 1;
    gmac_block.encrypt_block(&mut mask);
    let mut tag = y.to_be_bytes();
    for (t, m) in tag.iter_mut().zip(mask.iter()) {
        *t ^= m;
    }
    tag
}

/// AES-256-CTR with key K1 over `data`; the counter is the last 32 bits of `iv`, big-endian.
fn aes_ctr(key: &PeerKey, iv: &[u8; 16], data: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(ctr) = &key.ctr_vaes {
        ctr.apply_keystream(iv, data);
        return;
    }
    /// Blocks encrypted per batch, enough for the AES-NI backend's 8-way pipelining.
    const BATCH: usize = 16;
    let prefix = &iv[..12];
    let mut counter = u32::from_be_bytes([iv[12], iv[13], iv[14], iv[15]]);
    let mut keystream = [aes::Block::default(); BATCH];
    for chunk in data.chunks_mut(BATCH * 16) {
        let blocks = chunk.len().div_ceil(16);
        for block in &mut keystream[..blocks] {
            block[..12].copy_from_slice(prefix);
            block[12..].copy_from_slice(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        key.siv.encrypt_blocks(&mut keystream[..blocks]);
        for (bytes, ks) in chunk.chunks_mut(16).zip(&keystream) {
            for (b, k) in bytes.iter_mut().zip(ks.iter()) {
                *b ^= k;
            }
        }
    }
}

/// The CTR IV is the SIV block with bit 31 of the counter word cleared (§3.5 step 6).
fn ctr_iv(siv: &[u8; 16]) -> [u8; 16] {
    let mut iv = *siv;
    iv[12] &= 0x7f;
    iv
}

fn armor_aes_gmac_siv(packet: &mut [u8], key: &PeerKey) {
    let mut iv8 = [0u8; 8];
    iv8.copy_from_slice(&packet[PACKET_ID]);
    let tag8 = gmac_folded(packet, key, &iv8);

    let mut siv = aes::Block::default();
    siv[..8].copy_from_slice(&iv8);
    siv[8..].copy_from_slice(&tag8);
    key.siv.encrypt_block(&mut siv);
    packet[PACKET_ID].copy_from_slice(&siv[..8]);
    packet[MAC].copy_from_slice(&siv[8..]);

    aes_ctr(key, &ctr_iv(&siv.into()), &mut packet[VERB..]);
}

fn dearmor_aes_gmac_siv(packet: &mut [u8], key: &PeerKey) -> Result<(), DearmorError> {
    let mut siv = aes::Block::default();
    siv[..8].copy_from_slice(&packet[PACKET_ID]);
    siv[8..].copy_from_slice(&packet[MAC]);
    aes_ctr(key, &ctr_iv(&siv.into()), &mut packet[VERB..]);

    key.siv.decrypt_block(&mut siv);
    let mut iv8 = [0u8; 8];
    iv8.copy_from_slice(&siv[..8]);
    let expected = gmac_folded(packet, key, &iv8);
    if bool::from(expected.ct_eq(&siv[8..])) {
        Ok(())
    } else {
        Err(DearmorError::BadMac)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    /// The PCLMULQDQ GMAC equals the `aes-gcm` GMAC for every payload length 0..2000, with
    /// random keys, headers (hop bits included) and packet IDs.
    #[test]
    fn clmul_gmac_matches_aes_gcm() {
        let mut rng = StdRng::seed_from_u64(0x51f);
        for payload_len in 0..2000 {
            let mut raw = [0u8; 48];
            rng.fill_bytes(&mut raw);
            let key = PeerKey::new(raw);
            let Some((gmac_block, ghash)) = &key.gmac_clmul else {
                panic!("this test needs a CPU with PCLMULQDQ");
            };
            let mut packet = vec![0u8; VERB + payload_len];
            rng.fill_bytes(&mut packet);
            let original = packet.clone();
            let mut iv8 = [0u8; 8];
            rng.fill_bytes(&mut iv8);
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&iv8);
            let mut aad16 = [0u8; 16];
            aad16[..11].copy_from_slice(&packet[8..19]);
            aad16[10] &= !HOPS_MASK;

            let fast = gmac_clmul(gmac_block, ghash, &nonce, &aad16, &packet[VERB..]);
            let portable = gmac_portable(&mut packet, &key, &nonce, &aad16);
            assert_eq!(fast, portable, "payload length {payload_len}");
            assert_eq!(packet, original, "the portable path restores the packet");
        }
    }
}
