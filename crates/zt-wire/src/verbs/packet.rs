//! Whole packets: build (header, optional compression, cipher flags, HELLO moon cipher, armor,
//! fragmentation) and decode (dearmor, decompress, HELLO moon cipher), PROTOCOL.md §3.
//!
//! The caller supplies the random packet ID and the peer key, so this stays free of RNG and
//! key storage.
use super::hello;
use crate::compress::{compress_packet, decompress_packet};
use crate::error::WireError;
use crate::fragment::{needs_fragmentation, split};
use crate::header::{
    field, HeaderRepr, PacketFlags, PacketHeader, Verb, HEADER_LEN, MAX_PACKET_LEN,
};
use zt_crypto::armor::{armor, dearmor, PeerKey};
use zt_crypto::{Address, CipherSuite, DearmorError};

/// Everything needed to build one packet.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingPacket<'a> {
    pub destination: Address,
    pub source: Address,
    pub verb: Verb,
    /// The plaintext payload (for HELLO, with the moon list in clear).
    pub payload: &'a [u8],
    /// A fresh random ID from the caller. With AES-GMAC-SIV the wire ID will differ.
    pub packet_id: u64,
    /// 0, 1 or 3. Suite 2 (trusted path) is not built here.
    pub suite: CipherSuite,
    /// Compress if the rules allow (§3.7). Ignored for HELLO, which is never compressed.
    pub compress: bool,
    /// Path MTU; packets longer than this are fragmented.
    pub mtu: usize,
}

/// A built packet, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPacket {
    /// The packet ID as on the wire after armor: what replies will name in their in-re field.
    pub wire_packet_id: u64,
    /// The head, then any fragments, each one UDP payload.
    pub datagrams: Vec<Vec<u8>>,
}

/// Build, armor and fragment a packet.
pub fn build(p: &OutgoingPacket<'_>, key: &PeerKey) -> Result<BuiltPacket, WireError> {
    if p.suite == CipherSuite::NoneTrustedPath {
        return Err(WireError::invalid(
            "cipher suite",
            "trusted-path packets are not built here",
        ));
    }
    let mut packet = Vec::with_capacity(HEADER_LEN + p.payload.len());
    HeaderRepr {
        packet_id: p.packet_id,
        destination: p.destination,
        source: p.source,
        flags: PacketFlags::for_sending(p.suite, false),
        mac: [0; 8],
        verb: p.verb,
        compressed: false,
    }
    .emit_to_vec(&mut packet);
    packet.extend_from_slice(p.payload);
    if p.compress && p.verb != Verb::Hello {
        compress_packet(&mut packet);
    }
    let wire_packet_id = seal(&mut packet, p.suite, p.mtu, key)?;
    let datagrams = split(&packet, p.mtu)?;
    Ok(BuiltPacket {
        wire_packet_id,
        datagrams,
    })
}

/// Finish a plaintext packet in place (header already emitted with its cipher bits, payload
/// after it, compressed or not): set FRAGMENTED when it exceeds `mtu`, encrypt a HELLO's moon
/// list, and armor it with `key` under `suite`. Returns the packet ID as on the wire (what
/// replies name). This is the one place a packet is sealed, for [`build`] and for callers that
/// assemble packets in their own buffers.
pub fn seal(
    packet: &mut [u8],
    suite: CipherSuite,
    mtu: usize,
    key: &PeerKey,
) -> Result<u64, WireError> {
    if suite == CipherSuite::NoneTrustedPath {
        return Err(WireError::invalid(
            "cipher suite",
            "trusted-path packets are not built here",
        ));
    }
    if packet.len() > MAX_PACKET_LEN {
        return Err(WireError::TooLarge("packet"));
    }
    let fragmented = needs_fragmentation(packet.len(), mtu);
    let mut header = PacketHeader::new_checked(&mut packet[..])?;
    header.set_flags(PacketFlags::for_sending(suite, fragmented));
    if header.verb() == Verb::Hello {
        hello::crypt_moon_section(packet, key)?;
    }
    armor(packet, key, suite);
    Ok(PacketHeader::new_unchecked(&packet[..]).packet_id())
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("dearmor: {0}")]
    Dearmor(#[from] DearmorError),
}

/// A decoded packet: the header as received and the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPacket {
    /// The header as it arrived (wire packet ID, hops, the original MAC), with `verb` and
    /// `compressed` from the decrypted verb byte.
    pub header: HeaderRepr,
    /// The suite the packet was armored with.
    pub suite: CipherSuite,
    /// The whole packet after dearmor and decompression (compressed flag cleared; for HELLO,
    /// the moon list decrypted).
    pub plaintext: Vec<u8>,
}

impl DecodedPacket {
    pub fn verb(&self) -> Verb {
        Verb::from_verb_byte(self.plaintext[field::VERB])
    }
    /// The verb payload (bytes after the verb byte).
    pub fn payload(&self) -> &[u8] {
        &self.plaintext[field::PAYLOAD..]
    }
}

/// Check and decrypt an assembled packet with the peer key, then decompress (never for HELLO)
/// and, for HELLO, decrypt the moon list.
pub fn decode(mut packet: Vec<u8>, key: &PeerKey) -> Result<DecodedPacket, DecodeError> {
    let (header, suite) = decode_in_place(&mut packet, key)?;
    Ok(DecodedPacket {
        header,
        suite,
        plaintext: packet,
    })
}

/// [`decode`] in the caller's buffer: `packet` becomes the plaintext (the payload after the
/// header; a compressed payload is replaced by its decompressed form, which allocates, and is
/// never the case for unicast frames). Returns the header as received, with `verb` and
/// `compressed` from the decrypted verb byte, and the suite.
pub fn decode_in_place(
    packet: &mut Vec<u8>,
    key: &PeerKey,
) -> Result<(HeaderRepr, CipherSuite), DecodeError> {
    let received = HeaderRepr::parse(&PacketHeader::new_checked(&packet[..])?);
    if packet.len() > MAX_PACKET_LEN {
        return Err(WireError::TooLarge("packet").into());
    }
    let suite = dearmor(packet, key)?;
    let verb = Verb::from_verb_byte(packet[field::VERB]);
    let header = HeaderRepr {
        verb,
        compressed: packet[field::VERB] & crate::header::VERB_FLAG_COMPRESSED != 0,
        ..received
    };
    if verb == Verb::Hello {
        hello::crypt_moon_section(packet, key)?;
    } else {
        decompress_packet(packet)?;
    }
    Ok((header, suite))
}
