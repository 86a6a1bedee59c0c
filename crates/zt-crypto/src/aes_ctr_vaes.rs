//! AES-256-CTR on x86-64 VAES (four blocks per 512-bit instruction), for suite 3's payload.
//!
//! WHY this exists: once GHASH was aggregated, the CTR keystream from the `aes` crate (one
//! 128-bit AES-NI round instruction per block and round) became the largest cost of
//! AES-GMAC-SIV. With VAES one instruction runs a round on four blocks, and sixteen blocks
//! are kept in flight to cover the instruction latency.
//!
//! The key schedule is FIPS-197 §5.2 for Nk = 8, built with AESKEYGENASSIST; it is checked
//! against the `aes` crate in the tests.
//!
//! Safety: calls into the `#[target_feature]` functions happen only through a [`CtrKey`],
//! which exists only after runtime detection of those features. Inside, the unsafe calls are
//! the unaligned loads and stores, each on an array or a slice of exactly the vector's size.
use std::arch::x86_64::{
    __m128i, __m512i, _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_broadcast_i32x4,
    _mm512_loadu_si512, _mm512_set_epi32, _mm512_setzero_si512, _mm512_storeu_si512,
    _mm512_xor_si512, _mm_aeskeygenassist_si128, _mm_cvtsi128_si64, _mm_loadu_si128,
    _mm_set_epi64x, _mm_shuffle_epi32, _mm_slli_si128, _mm_unpackhi_epi64, _mm_xor_si128,
};
use zeroize::Zeroize;

/// AES-256 has 14 rounds, so 15 round keys.
const ROUND_KEYS: usize = 15;
/// Four 128-bit blocks per 512-bit vector.
const VECTOR_BYTES: usize = 64;
/// Vectors in flight per step.
const PARALLEL: usize = 4;
/// Bytes of keystream per step.
const STEP_BYTES: usize = VECTOR_BYTES * PARALLEL;

/// The expanded AES-256 encryption key.
#[derive(Clone)]
pub(crate) struct CtrKey {
    /// Round keys, each as the 16 bytes an AES-NI instruction takes (FIPS-197 byte order).
    round_keys: [[u8; 16]; ROUND_KEYS],
}

impl CtrKey {
    /// `None` if the CPU lacks VAES or AVX-512F; the caller then uses its portable path.
    pub(crate) fn new(key: &[u8; 32]) -> Option<CtrKey> {
        if !vaes_supported() {
            return None;
        }
        // SAFETY: `vaes_supported()` returned true, which includes AES-NI and SSE2.
        let mut expanded = unsafe { expand_key(key) };
        let round_keys = expanded.map(u128::to_le_bytes);
        expanded.zeroize();
        Some(CtrKey { round_keys })
    }

    /// XOR `data` with the AES-CTR keystream starting at counter block `iv` (the counter is
    /// the last 32 bits, big-endian, wrapping).
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        // SAFETY: a `CtrKey` exists only if `new` saw `vaes_supported()` return true.
        unsafe { apply_keystream(self, iv, data) }
    }

    /// One block encrypted with this key (for the tests).
    #[cfg(test)]
    fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        // The first keystream block of CTR at counter block `block` is E(block).
        let mut out = [0u8; 16];
        self.apply_keystream(block, &mut out);
        out
    }
}

impl Drop for CtrKey {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

fn vaes_supported() -> bool {
    std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("sse2")
}

#[target_feature(enable = "sse2")]
fn to_u128(v: __m128i) -> u128 {
    let low = _mm_cvtsi128_si64(v) as u64;
    let high = _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)) as u64;
    (u128::from(high) << 64) | u128::from(low)
}

#[target_feature(enable = "sse2")]
fn from_u128(a: u128) -> __m128i {
    _mm_set_epi64x((a >> 64) as i64, a as i64)
}

/// w[i-8] ⊕ w[i-7] … prefix XOR of the four words of `previous`, plus `broadcast` in each
/// word: the next four schedule words (FIPS-197 §5.2, KeyExpansion).
#[target_feature(enable = "sse2")]
fn next_four_words(previous: __m128i, broadcast: __m128i) -> __m128i {
    let mut words = previous;
    words = _mm_xor_si128(words, _mm_slli_si128(words, 4));
    words = _mm_xor_si128(words, _mm_slli_si128(words, 8));
    _mm_xor_si128(words, broadcast)
}

#[target_feature(enable = "aes,sse2")]
fn expand_key(key: &[u8; 32]) -> [u128; ROUND_KEYS] {
    /// Rcon for the schedule words i = 8, 16, …, 56.
    const RCON: [i32; 7] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40];
    let mut first = [0u8; 16];
    let mut second = [0u8; 16];
    first.copy_from_slice(&key[..16]);
    second.copy_from_slice(&key[16..]);
    let mut keys = [0u128; ROUND_KEYS];
    keys[0] = u128::from_le_bytes(first);
    keys[1] = u128::from_le_bytes(second);
    first.zeroize();
    second.zeroize();
    let mut even = from_u128(keys[0]);
    let mut odd = from_u128(keys[1]);
    for (i, rcon) in RCON.into_iter().enumerate() {
        // Word i ≡ 0 (mod 8): SubWord(RotWord(w[i-1])) ⊕ Rcon, w[i-1] = last word of `odd`.
        // AESKEYGENASSIST's word 3 is RotWord(SubWord(word 3)) ⊕ rcon; broadcast it.
        let assist = match rcon {
            0x01 => _mm_aeskeygenassist_si128(odd, 0x01),
            0x02 => _mm_aeskeygenassist_si128(odd, 0x02),
            0x04 => _mm_aeskeygenassist_si128(odd, 0x04),
            0x08 => _mm_aeskeygenassist_si128(odd, 0x08),
            0x10 => _mm_aeskeygenassist_si128(odd, 0x10),
            0x20 => _mm_aeskeygenassist_si128(odd, 0x20),
            _ => _mm_aeskeygenassist_si128(odd, 0x40),
        };
        even = next_four_words(even, _mm_shuffle_epi32(assist, 0xff));
        keys[2 + 2 * i] = to_u128(even);
        if 3 + 2 * i < ROUND_KEYS {
            // Word i ≡ 4 (mod 8): SubWord(w[i-1]), w[i-1] = last word of the new `even`.
            // AESKEYGENASSIST's word 2 is SubWord(word 3).
            let assist = _mm_aeskeygenassist_si128(even, 0);
            odd = next_four_words(odd, _mm_shuffle_epi32(assist, 0xaa));
            keys[3 + 2 * i] = to_u128(odd);
        }
    }
    keys
}

/// Four consecutive counter blocks `prefix ‖ BE32(counter + k)`, k = 0..4, in one vector.
/// `prefix` holds the IV's first twelve bytes as little-endian 32-bit words.
#[target_feature(enable = "avx512f")]
fn counter_blocks(prefix: [i32; 3], counter: u32) -> __m512i {
    let word = |k: u32| counter.wrapping_add(k).swap_bytes() as i32;
    let [p0, p1, p2] = prefix;
    _mm512_set_epi32(
        word(3),
        p2,
        p1,
        p0,
        word(2),
        p2,
        p1,
        p0,
        word(1),
        p2,
        p1,
        p0,
        word(0),
        p2,
        p1,
        p0,
    )
}

/// XOR one chunk of `VECTORS` × 64 bytes with the keystream from `counter` on.
#[target_feature(enable = "vaes,avx512f")]
fn crypt_step<const VECTORS: usize>(
    round_keys: &[__m512i; ROUND_KEYS],
    prefix: [i32; 3],
    counter: u32,
    chunk: &mut [u8],
) {
    let mut blocks = [_mm512_setzero_si512(); VECTORS];
    for (k, block) in blocks.iter_mut().enumerate() {
        let first = counter.wrapping_add((4 * k) as u32);
        *block = _mm512_xor_si512(counter_blocks(prefix, first), round_keys[0]);
    }
    for round_key in &round_keys[1..ROUND_KEYS - 1] {
        for block in &mut blocks {
            *block = _mm512_aesenc_epi128(*block, *round_key);
        }
    }
    for (block, bytes) in blocks.iter_mut().zip(chunk.chunks_exact_mut(VECTOR_BYTES)) {
        let keystream = _mm512_aesenclast_epi128(*block, round_keys[ROUND_KEYS - 1]);
        // SAFETY: `bytes` is exactly 64 bytes long (chunks_exact_mut), and the load/store
        // are the unaligned variants.
        let data = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
        // SAFETY: as above.
        unsafe {
            _mm512_storeu_si512(bytes.as_mut_ptr().cast(), _mm512_xor_si512(data, keystream))
        };
    }
}

#[target_feature(enable = "vaes,avx512f,aes,sse2")]
fn apply_keystream(key: &CtrKey, iv: &[u8; 16], data: &mut [u8]) {
    let round_keys = key.round_keys.each_ref().map(|k| {
        // SAFETY: `k` is 16 readable bytes; the load is the unaligned variant.
        _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(k.as_ptr().cast()) })
    });
    let word = |i: usize| i32::from_le_bytes([iv[i], iv[i + 1], iv[i + 2], iv[i + 3]]);
    let prefix = [word(0), word(4), word(8)];
    let mut counter = u32::from_be_bytes([iv[12], iv[13], iv[14], iv[15]]);

    let mut steps = data.chunks_exact_mut(STEP_BYTES);
    for chunk in &mut steps {
        crypt_step::<PARALLEL>(&round_keys, prefix, counter, chunk);
        counter = counter.wrapping_add((STEP_BYTES / 16) as u32);
    }
    let rest = steps.into_remainder();
    if !rest.is_empty() {
        // Only as many vectors as the rest needs; the keystream past the data is thrown away.
        // (Keystream of counters no data uses reveals nothing: AES is a pseudorandom
        // permutation, and the CTR IV is never reused.)
        let mut padded = [0u8; STEP_BYTES];
        padded[..rest.len()].copy_from_slice(rest);
        let vectors = rest.len().div_ceil(VECTOR_BYTES);
        let used = &mut padded[..vectors * VECTOR_BYTES];
        match vectors {
            1 => crypt_step::<1>(&round_keys, prefix, counter, used),
            2 => crypt_step::<2>(&round_keys, prefix, counter, used),
            3 => crypt_step::<3>(&round_keys, prefix, counter, used),
            _ => crypt_step::<PARALLEL>(&round_keys, prefix, counter, used),
        }
        rest.copy_from_slice(&padded[..rest.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockEncrypt, KeyInit};
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    /// FIPS-197 Appendix C.3 (AES-256).
    #[test]
    fn fips197_aes256_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let plain: [u8; 16] = hex::decode("00112233445566778899aabbccddeeff")
            .expect("hex")
            .try_into()
            .expect("16 bytes");
        let key = CtrKey::new(&key).expect("a CPU with VAES and AVX-512F");
        assert_eq!(
            hex::encode(key.encrypt_block(&plain)),
            "8ea2b7ca516745bfeafc49904b496089"
        );
    }

    /// The keystream equals the `aes` crate's block encryptions of successive counter blocks,
    /// for random keys and IVs (counters near the 2³² wrap included), every length 0..1100.
    #[test]
    fn matches_aes_crate_ctr() {
        let mut rng = StdRng::seed_from_u64(0xc7);
        for len in 0..1100 {
            let mut key_bytes = [0u8; 32];
            rng.fill_bytes(&mut key_bytes);
            let mut iv = [0u8; 16];
            rng.fill_bytes(&mut iv);
            if len % 3 == 0 {
                iv[12..].copy_from_slice(&(u32::MAX - (len as u32 % 40)).to_be_bytes());
            }
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);

            let mut expected = data.clone();
            let reference = aes::Aes256::new(&key_bytes.into());
            let mut counter = u32::from_be_bytes([iv[12], iv[13], iv[14], iv[15]]);
            for chunk in expected.chunks_mut(16) {
                let mut block = aes::Block::default();
                block[..12].copy_from_slice(&iv[..12]);
                block[12..].copy_from_slice(&counter.to_be_bytes());
                reference.encrypt_block(&mut block);
                for (d, k) in chunk.iter_mut().zip(block.iter()) {
                    *d ^= k;
                }
                counter = counter.wrapping_add(1);
            }

            let key = CtrKey::new(&key_bytes).expect("a CPU with VAES and AVX-512F");
            key.apply_keystream(&iv, &mut data);
            assert_eq!(data, expected, "length {len}");
        }
    }
}
