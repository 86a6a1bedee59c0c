//! Packet armor against real traffic: packets of suites 0, 1 and 3 captured between
//! ZeroTier One 1.14.1 nodes and a libzt 1.8.4 node (`data/capture_packets.json`, extracted
//! from `interop/captures` together with the nodes' secret identities). Every packet is
//! dearmored with a key from our own agreement and compared with the plaintext the capture
//! decoder recorded; then the plaintext is armored again and must give the wire bytes back.
//! Plus round trips, tamper tests and the edge cases of the header.

use aes::cipher::{BlockDecrypt, KeyInit};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::Value;
use sha2::Sha384;
use zt_crypto::armor::{armor, crypt_field, dearmor, CipherSuite, DearmorError, PeerKey};
use zt_crypto::Identity;

struct Captured {
    name: String,
    cipher: u8,
    hops: u8,
    compressed: bool,
    crypt_field_offset: Option<usize>,
    wire: Vec<u8>,
    plaintext: Vec<u8>,
    receiver_key: PeerKey,
    sender_key: PeerKey,
}

fn captured_packets() -> Vec<Captured> {
    let path = format!(
        "{}/tests/data/capture_packets.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap();
    let identity = |addr: &Value| {
        let secret = v["identities"][addr.as_str().unwrap()].as_str().unwrap();
        Identity::from_string(secret).unwrap()
    };
    let hex = |x: &Value| hex::decode(x.as_str().unwrap()).unwrap();
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let (src, dst) = (identity(&p["src"]), identity(&p["dst"]));
            Captured {
                name: format!("{} frame {}", p["capture"], p["frame"]),
                cipher: p["cipher"].as_u64().unwrap() as u8,
                hops: p["hops"].as_u64().unwrap() as u8,
                compressed: p["compressed"].as_bool().unwrap(),
                crypt_field_offset: p["crypt_field_offset"].as_u64().map(|o| o as usize),
                wire: hex(&p["wire_hex"]),
                plaintext: hex(&p["plaintext_hex"]),
                receiver_key: PeerKey::new(dst.agree(&src).unwrap()),
                sender_key: PeerKey::new(src.agree(&dst).unwrap()),
            }
        })
        .collect()
}

/// Independent KBKDF (test oracle): AES key K1 for label '1'.
fn oracle_k1(raw: &[u8; 48]) -> [u8; 32] {
    let mut mac = <Hmac<Sha384> as Mac>::new_from_slice(raw).unwrap();
    mac.update(&[0, 0, 0, 0, b'Z', b'T', b'1', 0, 0, 0, 0, 0x01, 0x80]);
    mac.finalize().into_bytes()[..32].try_into().unwrap()
}

#[test]
fn captured_packets_cover_every_suite() {
    let packets = captured_packets();
    for suite in [0, 1, 3] {
        assert!(
            packets.iter().filter(|p| p.cipher == suite).count() >= 3,
            "suite {suite}"
        );
    }
    assert!(packets.iter().any(|p| p.hops > 0 && p.cipher == 1));
    assert!(packets.iter().any(|p| p.hops > 0 && p.cipher == 3));
    assert!(packets
        .iter()
        .any(|p| p.wire.len() > 1432 && p.wire[18] & 0x40 != 0));
}

#[test]
fn captured_packets_dearmor_to_the_recorded_plaintext() {
    for p in captured_packets() {
        // Both ends derive the same key.
        assert_eq!(p.receiver_key.raw(), p.sender_key.raw(), "{}", p.name);
        let mut pkt = p.wire.clone();
        let suite =
            dearmor(&mut pkt, &p.receiver_key).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(suite as u8, p.cipher, "{}", p.name);
        // The header (packet ID included) keeps its wire value.
        assert_eq!(pkt[..27], p.wire[..27], "{}", p.name);
        if let Some(offset) = p.crypt_field_offset {
            let id: [u8; 8] = pkt[..8].try_into().unwrap();
            crypt_field(&p.receiver_key, &id, &mut pkt[offset..]);
        }
        if p.compressed {
            assert_eq!(pkt[27] & 0x80, 0x80, "{}", p.name);
            assert_eq!(pkt[27] & 0x7f, p.plaintext[0], "{}", p.name);
        } else {
            assert_eq!(
                hex::encode(&pkt[27..]),
                hex::encode(&p.plaintext),
                "{}",
                p.name
            );
        }
    }
}

#[test]
fn captured_plaintext_armors_to_the_wire_bytes() {
    for p in captured_packets().into_iter().filter(|p| !p.compressed) {
        let mut pkt = p.wire[..27].to_vec();
        pkt.extend_from_slice(&p.plaintext);
        pkt[18] &= !0x07; // senders armor with hops 0
        pkt[19..27].fill(0);
        if p.cipher == 3 {
            // Recover the sender's random packet ID from the SIV block.
            let k1 = oracle_k1(p.sender_key.raw());
            let mut siv = aes::Block::default();
            siv[..8].copy_from_slice(&p.wire[..8]);
            siv[8..].copy_from_slice(&p.wire[19..27]);
            aes::Aes256::new((&k1).into()).decrypt_block(&mut siv);
            pkt[..8].copy_from_slice(&siv[..8]);
        }
        if let Some(offset) = p.crypt_field_offset {
            let id: [u8; 8] = pkt[..8].try_into().unwrap();
            crypt_field(&p.sender_key, &id, &mut pkt[offset..]);
        }
        let suite = CipherSuite::from_flags(pkt[18]).unwrap();
        armor(&mut pkt, &p.sender_key, suite);
        pkt[18] |= p.hops;
        assert_eq!(hex::encode(&pkt), hex::encode(&p.wire), "{}", p.name);
    }
}

#[test]
fn one_flipped_bit_anywhere_authenticated_is_rejected() {
    for p in captured_packets() {
        for byte in (0..p.wire.len()).filter(|&i| i != 18) {
            let mut pkt = p.wire.clone();
            pkt[byte] ^= 0x10;
            assert_eq!(
                dearmor(&mut pkt, &p.receiver_key),
                Err(DearmorError::BadMac),
                "{} byte {byte}",
                p.name
            );
        }
        // Flags: the hop count is not authenticated, the fragmented bit is.
        let mut pkt = p.wire.clone();
        pkt[18] ^= 0x02;
        assert!(
            dearmor(&mut pkt, &p.receiver_key).is_ok(),
            "{}: hops",
            p.name
        );
        let mut pkt = p.wire.clone();
        pkt[18] ^= 0x40;
        assert_eq!(
            dearmor(&mut pkt, &p.receiver_key),
            Err(DearmorError::BadMac),
            "{}",
            p.name
        );
        // A truncated or extended packet fails too (the length is authenticated).
        let mut pkt = p.wire[..p.wire.len() - 1].to_vec();
        assert_eq!(
            dearmor(&mut pkt, &p.receiver_key),
            Err(DearmorError::BadMac),
            "{}",
            p.name
        );
        // And another pair's key does not open it.
        let other = PeerKey::new([7u8; 48]);
        let mut pkt = p.wire.clone();
        assert_eq!(
            dearmor(&mut pkt, &other),
            Err(DearmorError::BadMac),
            "{}",
            p.name
        );
    }
}

fn packet(rng: &mut StdRng, len: usize, suite: CipherSuite, fragmented: bool) -> Vec<u8> {
    let mut pkt = vec![0u8; len];
    rng.fill_bytes(&mut pkt);
    let legacy = if suite == CipherSuite::Poly1305Salsa2012 {
        0x80
    } else {
        0
    };
    pkt[18] = legacy | if fragmented { 0x40 } else { 0 } | ((suite as u8) << 3);
    pkt
}

#[test]
fn round_trip_every_suite_and_size() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut raw = [0u8; 48];
    rng.fill_bytes(&mut raw);
    let key = PeerKey::new(raw);
    for suite in [
        CipherSuite::Poly1305None,
        CipherSuite::Poly1305Salsa2012,
        CipherSuite::AesGmacSiv,
    ] {
        for len in [28, 29, 43, 44, 45, 60, 91, 92, 93, 300, 1432, 2800, 10024] {
            for fragmented in [false, true] {
                let original = packet(&mut rng, len, suite, fragmented);
                let mut pkt = original.clone();
                armor(&mut pkt, &key, suite);
                match suite {
                    CipherSuite::Poly1305None => assert_eq!(pkt[27..], original[27..]),
                    _ if len > 40 => assert_ne!(pkt[27..], original[27..]),
                    _ => {}
                }
                if suite == CipherSuite::AesGmacSiv {
                    assert_ne!(pkt[..8], original[..8], "suite 3 rewrites the packet ID");
                }
                let wire_id = pkt[..8].to_vec();
                pkt[18] |= 2; // a relay bumped the hop count
                assert_eq!(dearmor(&mut pkt, &key), Ok(suite), "{suite:?} len {len}");
                assert_eq!(pkt[27..], original[27..], "{suite:?} len {len}");
                assert_eq!(pkt[..8], wire_id[..]);
            }
        }
    }
}

#[test]
fn header_edge_cases() {
    let key = PeerKey::new([3u8; 48]);
    for len in 0..28 {
        assert_eq!(
            dearmor(&mut vec![0u8; len], &key),
            Err(DearmorError::TooShort)
        );
    }
    for bits in 4..8u8 {
        let mut pkt = vec![0u8; 40];
        pkt[18] = bits << 3;
        assert_eq!(
            dearmor(&mut pkt, &key),
            Err(DearmorError::UnsupportedSuite(bits))
        );
    }
    let mut trusted = vec![0u8; 40];
    trusted[18] = 2 << 3;
    assert_eq!(
        dearmor(&mut trusted, &key),
        Err(DearmorError::UnsupportedSuite(2))
    );
    let before = trusted.clone();
    armor(&mut trusted, &key, CipherSuite::NoneTrustedPath);
    assert_eq!(trusted, before);
}

#[test]
fn crypt_field_ignores_the_low_nonce_bits_and_round_trips() {
    let key = PeerKey::new([9u8; 48]);
    let mut data = *b"moons and more moons";
    crypt_field(&key, &[1, 2, 3, 4, 5, 6, 7, 0xf8], &mut data);
    assert_ne!(&data, b"moons and more moons");
    // Bits 0..3 of the last nonce byte are cleared before use.
    crypt_field(&key, &[1, 2, 3, 4, 5, 6, 7, 0xff], &mut data);
    assert_eq!(&data, b"moons and more moons");
}
