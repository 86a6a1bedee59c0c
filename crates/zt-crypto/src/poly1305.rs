//! One-shot Poly1305 (RFC 8439) with 44/44/42-bit limbs and 128-bit products.
//!
//! ZeroTier keys Poly1305 afresh for every packet. The `poly1305` crate's AVX2 backend spends
//! about a microsecond on that key setup, more than it then saves on a 1432-byte packet, so
//! this plain 64-bit version with no setup cost is faster for packet-sized messages.

const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;

/// The 16-byte Poly1305 tag of `msg` under the one-time `key` (r ‖ s).
pub(crate) fn tag(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    let le64 = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        u64::from_le_bytes(w)
    };
    // r, clamped, split into limbs of 44, 44 and 42 bits.
    let (t0, t1) = (le64(&key[0..]), le64(&key[8..]));
    let r0 = t0 & 0xffc_0fff_ffff;
    let r1 = ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff;
    let r2 = (t1 >> 24) & 0x00f_ffff_fc0f;

    let r = [r0, r1, r2];
    let s = [r1 * 20, r2 * 20];
    // r², for absorbing two blocks per step: h ← (h + m1)·r² + m2·r. The two products are
    // independent, so the CPU works on both at once instead of waiting on one long chain.
    let rr = carry(mul(r, r, s));
    let ss = [rr[1] * 20, rr[2] * 20];
    // r³ and r⁴ likewise for four blocks per step: four independent products, one carry.
    // Bounds: every product term is below 2⁴⁵·2⁵⁰, so four summed products stay far below
    // 2¹²⁸, and `carry` brings the limbs back to 44/44/42 bits (plus a few) as before.
    let r3 = carry(mul(rr, r, s));
    let s3 = [r3[1] * 20, r3[2] * 20];
    let r4 = carry(mul(rr, rr, ss));
    let s4 = [r4[1] * 20, r4[2] * 20];

    let limbs = |block: &[u8], high_bit: u64| {
        let (t0, t1) = (le64(&block[0..]), le64(&block[8..]));
        [
            t0 & MASK44,
            ((t0 >> 44) | (t1 << 20)) & MASK44,
            ((t1 >> 24) & MASK42) | high_bit,
        ]
    };
    const FULL: u64 = 1 << 40;

    let mut h = [0u64; 3];
    let mut quads = msg.chunks_exact(64);
    for quad in &mut quads {
        let m1 = limbs(&quad[..16], FULL);
        let m2 = limbs(&quad[16..32], FULL);
        let m3 = limbs(&quad[32..48], FULL);
        let m4 = limbs(&quad[48..], FULL);
        let a = [h[0] + m1[0], h[1] + m1[1], h[2] + m1[2]];
        let (w, x) = (mul(a, r4, s4), mul(m2, r3, s3));
        let (y, z) = (mul(m3, rr, ss), mul(m4, r, s));
        h = carry(core::array::from_fn(|i| w[i] + x[i] + y[i] + z[i]));
    }
    let mut pairs = quads.remainder().chunks_exact(32);
    for pair in &mut pairs {
        let (m1, m2) = (limbs(&pair[..16], FULL), limbs(&pair[16..], FULL));
        let a = [h[0] + m1[0], h[1] + m1[1], h[2] + m1[2]];
        let (x, y) = (mul(a, rr, ss), mul(m2, r, s));
        h = carry([x[0] + y[0], x[1] + y[1], x[2] + y[2]]);
    }
    let rest = pairs.remainder();
    let mut absorb = |m: [u64; 3]| {
        h = carry(mul([h[0] + m[0], h[1] + m[1], h[2] + m[2]], r, s));
    };
    let (full, partial) = rest.split_at(rest.len() / 16 * 16);
    if !full.is_empty() {
        absorb(limbs(full, FULL));
    }
    if !partial.is_empty() {
        let mut last = [0u8; 16];
        last[..partial.len()].copy_from_slice(partial);
        last[partial.len()] = 1;
        absorb(limbs(&last, 0));
    }
    let [mut h0, mut h1, mut h2] = h;

    // Fully carry h, then compute h - p and keep it if it did not go negative.
    let mut c = h1 >> 44;
    h1 &= MASK44;
    h2 += c;
    c = h2 >> 42;
    h2 &= MASK42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= MASK44;
    h1 += c;
    c = h1 >> 44;
    h1 &= MASK44;
    h2 += c;
    c = h2 >> 42;
    h2 &= MASK42;
    h0 += c * 5;
    c = h0 >> 44;
    h0 &= MASK44;
    h1 += c;

    let mut g0 = h0 + 5;
    c = g0 >> 44;
    g0 &= MASK44;
    let mut g1 = h1 + c;
    c = g1 >> 44;
    g1 &= MASK44;
    let mut g2 = (h2 + c).wrapping_sub(1 << 42);
    // All ones if h ≥ p (no borrow), else zero: choose without branching.
    let take_g = (g2 >> 63).wrapping_sub(1);
    g0 &= take_g;
    g1 &= take_g;
    g2 &= take_g;
    h0 = (h0 & !take_g) | g0;
    h1 = (h1 & !take_g) | g1;
    h2 = (h2 & !take_g) | g2;

    // Add s modulo 2^128.
    let (s_lo, s_hi) = (le64(&key[16..]), le64(&key[24..]));
    h0 += s_lo & MASK44;
    c = h0 >> 44;
    h0 &= MASK44;
    h1 += (((s_lo >> 44) | (s_hi << 20)) & MASK44) + c;
    c = h1 >> 44;
    h1 &= MASK44;
    h2 += ((s_hi >> 24) & MASK42) + c;
    h2 &= MASK42;

    let lo = h0 | (h1 << 44);
    let hi = (h1 >> 20) | (h2 << 24);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&lo.to_le_bytes());
    out[8..].copy_from_slice(&hi.to_le_bytes());
    out
}

/// The unreduced product h·r of limb vectors. 2^130 ≡ 5 (mod p) and the limb positions make
/// the wrap factor 5·4 = 20, so `s` = [r1·20, r2·20].
#[inline(always)]
fn mul(h: [u64; 3], r: [u64; 3], s: [u64; 2]) -> [u128; 3] {
    let m = |a: u64, b: u64| u128::from(a) * u128::from(b);
    [
        m(h[0], r[0]) + m(h[1], s[1]) + m(h[2], s[0]),
        m(h[0], r[1]) + m(h[1], r[0]) + m(h[2], s[1]),
        m(h[0], r[2]) + m(h[1], r[1]) + m(h[2], r[0]),
    ]
}

/// Carry an unreduced product back into 44/44/42-bit limbs (the top limb may keep a few
/// extra bits until the final reduction).
#[inline(always)]
fn carry(d: [u128; 3]) -> [u64; 3] {
    let [d0, mut d1, mut d2] = d;
    d1 += d0 >> 44;
    let mut h0 = (d0 as u64) & MASK44;
    d2 += d1 >> 44;
    let mut h1 = (d1 as u64) & MASK44;
    let top = (d2 >> 42) as u64;
    let h2 = (d2 as u64) & MASK42;
    h0 += top * 5;
    h1 += h0 >> 44;
    h0 &= MASK44;
    [h0, h1, h2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use poly1305::universal_hash::KeyInit;

    #[test]
    fn rfc8439_vector() {
        let key: [u8; 32] =
            hex::decode("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            hex::encode(tag(&key, b"Cryptographic Forum Research Group")),
            "a8061dc1305136c6c22b8baf0c0127a9"
        );
    }

    /// The vectors of ZeroTierOne's `selftest.cpp`.
    #[test]
    fn selftest_vectors() {
        let key: [u8; 32] = *b"this is 32-byte key for Poly1305";
        assert_eq!(
            hex::encode(tag(&key, &[0u8; 32])),
            "49ec78090e481ec6c26b33b91ccc0307"
        );
        assert_eq!(
            hex::encode(tag(&key, b"Hello world!")),
            "a6f745008f81c916a20dcc74eef2b2f0"
        );
    }

    /// Same tags as the `poly1305` crate, including keys and messages that push the limbs
    /// to their limits (all-ones blocks, r at its clamped maximum, h just above p).
    #[test]
    fn matches_the_poly1305_crate() {
        let mut keys: Vec<[u8; 32]> = vec![[0xff; 32], [0; 32]];
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for _ in 0..20 {
            keys.push(core::array::from_fn(|_| next()));
        }
        for key in &keys {
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 64, 100, 1432, 2800] {
                for fill in [None, Some(0xffu8), Some(0)] {
                    let msg: Vec<u8> = (0..len).map(|_| fill.unwrap_or_else(&mut next)).collect();
                    let expected = poly1305::Poly1305::new(key.into()).compute_unpadded(&msg);
                    assert_eq!(tag(key, &msg)[..], expected[..], "len {len}");
                }
            }
        }
    }
}
