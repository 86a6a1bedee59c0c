//! Salsa20 keystream (20 rounds for the identity hash, 12 for packets), written for speed
//! without `unsafe`: four blocks are computed side by side, one per lane of `wide`'s safe
//! 4×u32 vectors (SSE2 on x86-64, where it is part of the baseline; plain arrays elsewhere).
//!
//! The `salsa20` crate only has a one-block-at-a-time portable backend, which is several
//! times slower. Standard Salsa20: "expand 32-byte k" constants, 8-byte nonce, 64-bit
//! little-endian block counter.

use wide::u32x4;

/// Blocks computed per batch.
const LANES: usize = 4;
const BLOCK: usize = 64;

/// A Salsa20 stream with `ROUNDS` rounds.
#[derive(Clone)]
pub(crate) struct Salsa<const ROUNDS: usize> {
    /// The input words with the block counter (words 8, 9) left at zero.
    input: [u32; 16],
    /// Next block to compute.
    counter: u64,
    /// Keystream computed but not used yet: `batch[used..]`.
    batch: [u8; LANES * BLOCK],
    used: usize,
}

pub(crate) type Salsa12 = Salsa<12>;
pub(crate) type Salsa20 = Salsa<20>;

impl<const ROUNDS: usize> Salsa<ROUNDS> {
    pub(crate) fn new(key: &[u8; 32], nonce: &[u8; 8]) -> Self {
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut input = [0u32; 16];
        input[0] = 0x6170_7865;
        input[5] = 0x3320_646e;
        input[10] = 0x7962_2d32;
        input[15] = 0x6b20_6574;
        for i in 0..4 {
            input[1 + i] = word(&key[4 * i..]);
            input[11 + i] = word(&key[16 + 4 * i..]);
        }
        input[6] = word(&nonce[..4]);
        input[7] = word(&nonce[4..]);
        Salsa {
            input,
            counter: 0,
            batch: [0; LANES * BLOCK],
            used: LANES * BLOCK,
        }
    }

    /// XOR `data` with the next `data.len()` keystream bytes.
    pub(crate) fn apply_keystream(&mut self, data: &mut [u8]) {
        let leftover = (LANES * BLOCK - self.used).min(data.len());
        let (head, data) = data.split_at_mut(leftover);
        xor(head, &self.batch[self.used..]);
        self.used += leftover;

        let mut chunks = data.chunks_exact_mut(LANES * BLOCK);
        for chunk in &mut chunks {
            self.xor_blocks4(chunk.try_into().expect("exact chunk"));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            self.batch = [0; LANES * BLOCK];
            let mut batch = self.batch;
            self.xor_blocks4(&mut batch);
            self.batch = batch;
            xor(rest, &self.batch);
            self.used = rest.len();
        }
    }

    /// XOR `data` with the next four keystream blocks.
    fn xor_blocks4(&mut self, data: &mut [u8; LANES * BLOCK]) {
        let mut x = [u32x4::ZERO; 16];
        for (w, lanes) in x.iter_mut().enumerate() {
            *lanes = u32x4::splat(self.input[w]);
        }
        let c = self.counter;
        let counters: [u64; LANES] = core::array::from_fn(|lane| c.wrapping_add(lane as u64));
        x[8] = u32x4::new(counters.map(|c| c as u32));
        x[9] = u32x4::new(counters.map(|c| (c >> 32) as u32));
        self.counter = c.wrapping_add(LANES as u64);
        let start = x;

        for _ in 0..ROUNDS / 2 {
            // Column round.
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 5, 9, 13, 1);
            quarter(&mut x, 10, 14, 2, 6);
            quarter(&mut x, 15, 3, 7, 11);
            // Row round.
            quarter(&mut x, 0, 1, 2, 3);
            quarter(&mut x, 5, 6, 7, 4);
            quarter(&mut x, 10, 11, 8, 9);
            quarter(&mut x, 15, 12, 13, 14);
        }

        // x[w] holds word w of all four blocks; a 4×4 transpose of words 4q..4q+3 gives each
        // block's 16 contiguous keystream bytes at 16q, XORed into the data as one vector
        // instead of word by word.
        for quad in 0..4 {
            let words: [u32x4; 4] = core::array::from_fn(|j| x[4 * quad + j] + start[4 * quad + j]);
            for (lane, keystream) in u32x4::transpose(words).iter().enumerate() {
                let at = lane * BLOCK + 16 * quad;
                let bytes = &mut data[at..at + 16];
                let d: [u32; 4] = core::array::from_fn(|i| {
                    u32::from_le_bytes([
                        bytes[4 * i],
                        bytes[4 * i + 1],
                        bytes[4 * i + 2],
                        bytes[4 * i + 3],
                    ])
                });
                let mixed = (u32x4::new(d) ^ *keystream).to_array();
                for (chunk, word) in bytes.chunks_exact_mut(4).zip(mixed) {
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }
}

fn xor(data: &mut [u8], keystream: &[u8]) {
    for (d, k) in data.iter_mut().zip(keystream) {
        *d ^= k;
    }
}

#[inline(always)]
fn quarter(x: &mut [u32x4; 16], a: usize, b: usize, c: usize, d: usize) {
    step::<7, 25>(x, b, a, d);
    step::<9, 23>(x, c, b, a);
    step::<13, 19>(x, d, c, b);
    step::<18, 14>(x, a, d, c);
}

/// `x[t] ^= (x[p] + x[q]) <<< L`, in all lanes at once (`R` = 32 - `L`).
#[inline(always)]
fn step<const L: u32, const R: u32>(x: &mut [u32x4; 16], t: usize, p: usize, q: usize) {
    let sum = x[p] + x[q];
    x[t] ^= (sum << L) | (sum >> R);
}

#[cfg(test)]
mod tests {
    use super::*;
    use salsa20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

    /// Same bytes as the `salsa20` crate for every length and starting block.
    #[test]
    fn matches_the_salsa20_crate() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let nonce = [9, 8, 7, 6, 5, 4, 3, 2];
        for len in [0, 1, 63, 64, 65, 255, 256, 257, 1000, 1432] {
            for skip in [0usize, 1, 3, 5] {
                let mut ours = vec![0x5au8; len];
                let mut s = Salsa12::new(&key, &nonce);
                s.apply_keystream(&mut vec![0u8; skip * 64]);
                s.apply_keystream(&mut ours);
                let mut theirs = vec![0x5au8; len];
                let mut r = salsa20::Salsa12::new(&key.into(), &nonce.into());
                r.seek(skip * 64);
                r.apply_keystream(&mut theirs);
                assert_eq!(ours, theirs, "len {len} skip {skip}");

                let mut ours20 = vec![0u8; len];
                let mut s = Salsa20::new(&key, &nonce);
                s.apply_keystream(&mut vec![0u8; skip * 64]);
                s.apply_keystream(&mut ours20);
                let mut theirs20 = vec![0u8; len];
                let mut r = salsa20::Salsa20::new(&key.into(), &nonce.into());
                r.seek(skip * 64);
                r.apply_keystream(&mut theirs20);
                assert_eq!(ours20, theirs20, "20 rounds, len {len} skip {skip}");
            }
        }
    }

    /// Splitting the data over several calls gives the same bytes as one call.
    #[test]
    fn stream_position_carries_over_calls() {
        let mut whole = vec![0u8; 1500];
        Salsa12::new(&[4; 32], &[5; 8]).apply_keystream(&mut whole);
        for split in [[1, 63, 700], [64, 192, 5], [10, 300, 256], [256, 256, 1]] {
            let mut pieces = vec![0u8; 1500];
            let mut s = Salsa12::new(&[4; 32], &[5; 8]);
            let (a, rest) = pieces.split_at_mut(split[0]);
            let (b, rest) = rest.split_at_mut(split[1]);
            let (c, d) = rest.split_at_mut(split[2]);
            for part in [a, b, c, d] {
                s.apply_keystream(part);
            }
            assert_eq!(pieces, whole, "{split:?}");
        }
    }

    /// The Salsa20/20 and Salsa20/12 keystream vectors of ZeroTierOne's `selftest.cpp`.
    #[test]
    fn selftest_vectors() {
        let key = hex32("0f62b5085bae0154a7fa4da0f34699ec3f92e5388bde3184d72a7dd02376c91c");
        let nonce = [0x28, 0x8f, 0xf6, 0x5d, 0xc4, 0x2b, 0x92, 0xf9];
        let mut ks20 = [0u8; 64];
        Salsa20::new(&key, &nonce).apply_keystream(&mut ks20);
        assert_eq!(
            hex::encode(ks20),
            "5e5e71f90199340304abb22a37b6625bf883fb89ce3b21f54a10b81066ef87da\
             30b77699aa7379da595c77dd59542da208e5954f89e40eb7aa80a84a6176663f"
        );
        let mut ks12 = [0u8; 64];
        Salsa12::new(&key, &nonce).apply_keystream(&mut ks12);
        assert_eq!(
            hex::encode(ks12),
            "99db33ad11ce0ccb3bfdbf8d0c18160452d014cde989b4c411a559ff7c20a169\
             e6dc9909d816becedc4063ce07cea828f44bf9b6c9a0a0b200e1b52af41859c5"
        );
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }
}
