//! Payload compression (PROTOCOL.md §3.7): LZ4 block format over the bytes after the verb
//! byte, flagged by bit 0x80 of the verb byte. Compress before armor, decompress after dearmor.
use crate::error::WireError;
use crate::header::{field, MAX_PAYLOAD_LEN, MIN_PACKET_LEN, VERB_FLAG_COMPRESSED};

/// Payloads this long or shorter are never compressed.
pub const COMPRESSION_THRESHOLD: usize = 64;

/// LZ4-compress `payload` if the rules allow it: longer than 64 bytes and the result strictly
/// smaller. `None` means "send it uncompressed".
pub fn compress_payload(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() <= COMPRESSION_THRESHOLD {
        return None;
    }
    let c = lz4_flex::block::compress(payload);
    (c.len() < payload.len()).then_some(c)
}

/// Decompress an LZ4 block whose output may be at most `max_len` bytes
/// (`LZ4_decompress_safe` semantics: any malformed or oversized input is an error).
pub fn decompress_payload(compressed: &[u8], max_len: usize) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; max_len];
    let n = lz4_flex::block::decompress_into(compressed, &mut out)
        .map_err(|e| WireError::invalid("compressed payload", e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

/// Compress a whole plaintext packet's payload in place and set the compressed flag, if the
/// rules allow. Returns whether it did. Packets shorter than a header are left alone.
pub fn compress_packet(packet: &mut Vec<u8>) -> bool {
    if packet.len() < MIN_PACKET_LEN || packet[field::VERB] & VERB_FLAG_COMPRESSED != 0 {
        return false;
    }
    match compress_payload(&packet[field::PAYLOAD..]) {
        Some(c) => {
            packet.truncate(field::PAYLOAD);
            packet.extend_from_slice(&c);
            packet[field::VERB] |= VERB_FLAG_COMPRESSED;
            true
        }
        None => false,
    }
}

/// If a dearmored packet's compressed flag is set, decompress its payload in place (bounded by
/// 10024 − 28 bytes) and clear the flag. Fails, and the packet must be dropped, on bad data.
pub fn decompress_packet(packet: &mut Vec<u8>) -> Result<(), WireError> {
    if packet.len() < MIN_PACKET_LEN {
        return Err(WireError::Truncated("packet header"));
    }
    if packet[field::VERB] & VERB_FLAG_COMPRESSED == 0 {
        return Ok(());
    }
    let plain = decompress_payload(&packet[field::PAYLOAD..], MAX_PAYLOAD_LEN)?;
    packet.truncate(field::PAYLOAD);
    packet.extend_from_slice(&plain);
    packet[field::VERB] &= !VERB_FLAG_COMPRESSED;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_or_incompressible_payloads_stay_plain() {
        assert_eq!(compress_payload(&[0u8; 64]), None);
        assert!(compress_payload(&[0u8; 65]).is_some());
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(compress_payload(&noise), None);
    }

    #[test]
    fn packet_round_trip_sets_and_clears_the_flag() {
        let mut p = vec![0u8; 28];
        p[27] = 0x09;
        p.extend(std::iter::repeat_n(b"abcdefgh".iter().copied(), 40).flatten());
        let orig = p.clone();
        assert!(compress_packet(&mut p));
        assert_eq!(p[27], 0x89);
        assert!(p.len() < orig.len());
        decompress_packet(&mut p).unwrap();
        assert_eq!(p, orig);
    }

    #[test]
    fn decompression_is_bounded_and_rejects_garbage() {
        let big = vec![7u8; MAX_PAYLOAD_LEN + 1];
        let c = lz4_flex::block::compress(&big);
        assert!(decompress_payload(&c, MAX_PAYLOAD_LEN).is_err());
        assert!(decompress_payload(&[0xff, 0xff, 0xff], 100).is_err());
        let mut p = vec![0u8; 28];
        p[27] = 0x86;
        p.extend_from_slice(&[0xf0, 1, 2]);
        assert!(decompress_packet(&mut p).is_err());
    }
}
