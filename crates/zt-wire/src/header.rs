//! The 28-byte packet header (PROTOCOL.md §3.1): verbs, the flags byte, and a zero-copy view.
//!
//! [`PacketHeader`] wraps a caller-owned buffer holding one whole (assembled) packet and reads
//! or writes header fields in place; [`HeaderRepr`] is the same header as plain values.
//! Construction through [`PacketHeader::new_checked`] validates the length once, so the
//! accessors after it never panic.
use crate::error::WireError;
use std::fmt;
use zt_crypto::{Address, CipherSuite};

/// Length of the header up to and including the verb byte; also the minimum packet length.
pub const HEADER_LEN: usize = 28;
/// `ZT_PROTO_MIN_PACKET_LENGTH`.
pub const MIN_PACKET_LEN: usize = HEADER_LEN;
/// `ZT_PROTO_MAX_PACKET_LENGTH`: 7 × 1432, the largest assembled packet.
pub const MAX_PACKET_LEN: usize = 10024;
/// The largest verb payload (everything after the verb byte) an assembled packet can carry.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - HEADER_LEN;
/// `ZT_DEFAULT_PHYSMTU`: the UDP payload size used unless a path says otherwise.
pub const DEFAULT_PHYS_MTU: usize = 1432;
/// `ZT_MIN_PHYSMTU`.
pub const MIN_PHYS_MTU: usize = 1400;
/// `ZT_MAX_PHYSPAYLOAD`: the largest UDP payload the reference service accepts.
pub const MAX_PHYS_PAYLOAD: usize = 10100;
/// Length of the legacy LAN beacon datagram (§3.1), which carries only an address at 8..13.
pub const LEGACY_BEACON_LEN: usize = 13;
/// Byte 13 of a fragment; no valid source address starts with it.
pub const FRAGMENT_INDICATOR: u8 = 0xff;
/// Offset of [`FRAGMENT_INDICATOR`] (the first byte of a head's source address).
pub const FRAGMENT_INDICATOR_OFFSET: usize = 13;
/// `ZT_RELAY_MAX_HOPS`: a relay forwards only while the hop count is below this.
pub const RELAY_MAX_HOPS: u8 = 3;
/// The protocol version we speak (`ZT_PROTO_VERSION`).
pub const PROTOCOL_VERSION: u8 = 12;
/// Peers below this protocol version are ignored (`ZT_PROTO_VERSION_MIN`).
pub const PROTOCOL_VERSION_MIN: u8 = 4;

/// What `--version` of the zt programs prints after their name: the package version and the
/// wire protocol, so an operator can tell at once which ZeroTier nodes it speaks with.
pub fn version_text(package_version: &str) -> String {
    format!("{package_version} (ZeroTier protocol {PROTOCOL_VERSION}, as ZeroTier One 1.14)")
}

/// Byte 18, bit 7: legacy "encrypted" flag, set exactly when the suite is Salsa20/12.
pub const FLAG_LEGACY_ENCRYPTED: u8 = 0x80;
/// Byte 18, bit 6: more fragments follow the head.
pub const FLAG_FRAGMENTED: u8 = 0x40;
const CIPHER_MASK: u8 = 0x38;
const CIPHER_SHIFT: u8 = 3;
const HOPS_MASK: u8 = 0x07;
/// Byte 27, bit 7: the payload is LZ4-compressed.
pub const VERB_FLAG_COMPRESSED: u8 = 0x80;
/// Byte 27, bits 4..0: the verb number.
pub const VERB_MASK: u8 = 0x1f;

/// Byte ranges of the header fields.
pub mod field {
    use std::ops::Range;
    pub const PACKET_ID: Range<usize> = 0..8;
    pub const DESTINATION: Range<usize> = 8..13;
    pub const SOURCE: Range<usize> = 13..18;
    pub const FLAGS: usize = 18;
    pub const MAC: Range<usize> = 19..27;
    pub const VERB: usize = 27;
    pub const PAYLOAD: usize = 28;
}

/// A verb number (§4). Numbers with no assigned meaning are kept as [`Verb::Unknown`] so that
/// any byte survives a parse/emit round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Nop,
    Hello,
    Error,
    Ok,
    Whois,
    Rendezvous,
    Frame,
    ExtFrame,
    Echo,
    MulticastLike,
    NetworkCredentials,
    NetworkConfigRequest,
    NetworkConfig,
    MulticastGather,
    MulticastFrame,
    PushDirectPaths,
    Ack,
    QosMeasurement,
    UserMessage,
    RemoteTrace,
    PathNegotiationRequest,
    /// Any other value (unused 0x0f, the old circuit test 0x11, 0x17.., or a full in-re byte).
    Unknown(u8),
}

impl From<u8> for Verb {
    fn from(n: u8) -> Verb {
        match n {
            0x00 => Verb::Nop,
            0x01 => Verb::Hello,
            0x02 => Verb::Error,
            0x03 => Verb::Ok,
            0x04 => Verb::Whois,
            0x05 => Verb::Rendezvous,
            0x06 => Verb::Frame,
            0x07 => Verb::ExtFrame,
            0x08 => Verb::Echo,
            0x09 => Verb::MulticastLike,
            0x0a => Verb::NetworkCredentials,
            0x0b => Verb::NetworkConfigRequest,
            0x0c => Verb::NetworkConfig,
            0x0d => Verb::MulticastGather,
            0x0e => Verb::MulticastFrame,
            0x10 => Verb::PushDirectPaths,
            0x12 => Verb::Ack,
            0x13 => Verb::QosMeasurement,
            0x14 => Verb::UserMessage,
            0x15 => Verb::RemoteTrace,
            0x16 => Verb::PathNegotiationRequest,
            other => Verb::Unknown(other),
        }
    }
}

impl From<Verb> for u8 {
    fn from(v: Verb) -> u8 {
        match v {
            Verb::Nop => 0x00,
            Verb::Hello => 0x01,
            Verb::Error => 0x02,
            Verb::Ok => 0x03,
            Verb::Whois => 0x04,
            Verb::Rendezvous => 0x05,
            Verb::Frame => 0x06,
            Verb::ExtFrame => 0x07,
            Verb::Echo => 0x08,
            Verb::MulticastLike => 0x09,
            Verb::NetworkCredentials => 0x0a,
            Verb::NetworkConfigRequest => 0x0b,
            Verb::NetworkConfig => 0x0c,
            Verb::MulticastGather => 0x0d,
            Verb::MulticastFrame => 0x0e,
            Verb::PushDirectPaths => 0x10,
            Verb::Ack => 0x12,
            Verb::QosMeasurement => 0x13,
            Verb::UserMessage => 0x14,
            Verb::RemoteTrace => 0x15,
            Verb::PathNegotiationRequest => 0x16,
            Verb::Unknown(n) => n,
        }
    }
}

impl Verb {
    /// The verb carried in a header's verb byte (compression and reserved bits masked off).
    pub fn from_verb_byte(b: u8) -> Verb {
        Verb::from(b & VERB_MASK)
    }

    /// The reference's upper-case name, as used in traces and the capture decodes.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Nop => "NOP",
            Verb::Hello => "HELLO",
            Verb::Error => "ERROR",
            Verb::Ok => "OK",
            Verb::Whois => "WHOIS",
            Verb::Rendezvous => "RENDEZVOUS",
            Verb::Frame => "FRAME",
            Verb::ExtFrame => "EXT_FRAME",
            Verb::Echo => "ECHO",
            Verb::MulticastLike => "MULTICAST_LIKE",
            Verb::NetworkCredentials => "NETWORK_CREDENTIALS",
            Verb::NetworkConfigRequest => "NETWORK_CONFIG_REQUEST",
            Verb::NetworkConfig => "NETWORK_CONFIG",
            Verb::MulticastGather => "MULTICAST_GATHER",
            Verb::MulticastFrame => "MULTICAST_FRAME",
            Verb::PushDirectPaths => "PUSH_DIRECT_PATHS",
            Verb::Ack => "ACK",
            Verb::QosMeasurement => "QOS_MEASUREMENT",
            Verb::UserMessage => "USER_MESSAGE",
            Verb::RemoteTrace => "REMOTE_TRACE",
            Verb::PathNegotiationRequest => "PATH_NEGOTIATION_REQUEST",
            Verb::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verb::Unknown(n) => write!(f, "UNKNOWN({n:#04x})"),
            v => f.write_str(v.name()),
        }
    }
}

/// The cipher suite for a 3-bit suite number; `None` for 4..7, which no sender uses.
pub fn cipher_suite_from_bits(bits: u8) -> Option<CipherSuite> {
    match bits {
        0 => Some(CipherSuite::Poly1305None),
        1 => Some(CipherSuite::Poly1305Salsa2012),
        2 => Some(CipherSuite::NoneTrustedPath),
        3 => Some(CipherSuite::AesGmacSiv),
        _ => None,
    }
}

/// The header's flags byte (byte 18): legacy bit, FRAGMENTED, cipher suite and hop count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PacketFlags(pub u8);

impl PacketFlags {
    /// The flags a sender writes before armor (`Packet::setCipher`): the suite, the legacy bit
    /// exactly for suite 1, FRAGMENTED if asked, hops 0.
    pub fn for_sending(suite: CipherSuite, fragmented: bool) -> PacketFlags {
        let mut b = (suite as u8) << CIPHER_SHIFT;
        if suite == CipherSuite::Poly1305Salsa2012 {
            b |= FLAG_LEGACY_ENCRYPTED;
        }
        if fragmented {
            b |= FLAG_FRAGMENTED;
        }
        PacketFlags(b)
    }
    pub fn cipher_bits(self) -> u8 {
        (self.0 & CIPHER_MASK) >> CIPHER_SHIFT
    }
    pub fn cipher_suite(self) -> Option<CipherSuite> {
        cipher_suite_from_bits(self.cipher_bits())
    }
    pub fn hops(self) -> u8 {
        self.0 & HOPS_MASK
    }
    pub fn is_fragmented(self) -> bool {
        self.0 & FLAG_FRAGMENTED != 0
    }
    pub fn is_legacy_encrypted(self) -> bool {
        self.0 & FLAG_LEGACY_ENCRYPTED != 0
    }
    /// The same flags with the hop count replaced (only the low 3 bits of `hops` are kept).
    pub fn with_hops(self, hops: u8) -> PacketFlags {
        PacketFlags((self.0 & !HOPS_MASK) | (hops & HOPS_MASK))
    }
    pub fn with_fragmented(self, fragmented: bool) -> PacketFlags {
        if fragmented {
            PacketFlags(self.0 | FLAG_FRAGMENTED)
        } else {
            PacketFlags(self.0 & !FLAG_FRAGMENTED)
        }
    }
}

/// What a received UDP datagram is, judged from its length and byte 13 (§3.1, §3.8), the way
/// `Switch::onRemotePacket` sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    /// Exactly 13 bytes: the legacy LAN beacon.
    LegacyBeacon,
    /// A fragment (byte 13 is 0xff and at least one data byte follows the 16-byte header).
    Fragment,
    /// A packet head: at least 28 bytes and not a fragment.
    Head,
    /// Anything else (too short, e.g. the 4-byte hole-punch junk).
    Junk,
}

/// Sort a datagram into [`DatagramKind`].
pub fn classify_datagram(datagram: &[u8]) -> DatagramKind {
    if datagram.len() == LEGACY_BEACON_LEN {
        DatagramKind::LegacyBeacon
    } else if datagram.len() > crate::fragment::FRAGMENT_HEADER_LEN {
        if datagram[FRAGMENT_INDICATOR_OFFSET] == FRAGMENT_INDICATOR {
            DatagramKind::Fragment
        } else if datagram.len() >= MIN_PACKET_LEN {
            DatagramKind::Head
        } else {
            DatagramKind::Junk
        }
    } else {
        DatagramKind::Junk
    }
}

/// True if `datagram` is a fragment rather than a packet head (byte 13 == 0xff).
pub fn is_fragment(datagram: &[u8]) -> bool {
    classify_datagram(datagram) == DatagramKind::Fragment
}

/// A zero-copy view of a packet (head or whole assembled packet) in a caller-owned buffer.
#[derive(Debug, Clone, Copy)]
pub struct PacketHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PacketHeader<T> {
    /// Wrap without checks. Accessors may panic if the buffer is shorter than 28 bytes; use
    /// [`PacketHeader::new_checked`] for anything from the wire.
    pub fn new_unchecked(buffer: T) -> Self {
        PacketHeader { buffer }
    }

    /// Wrap after checking that the buffer is a packet head: 28..=10100 bytes (a head may be
    /// a single datagram up to the largest physical payload, an assembled packet up to 10024),
    /// and not a fragment.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_PACKET_LEN {
            return Err(WireError::Truncated("packet header"));
        }
        if b.len() > MAX_PHYS_PAYLOAD {
            return Err(WireError::TooLarge("packet"));
        }
        if b[FRAGMENT_INDICATOR_OFFSET] == FRAGMENT_INDICATOR {
            return Err(WireError::invalid(
                "source address",
                "0xff prefix marks a fragment",
            ));
        }
        Ok(PacketHeader { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packet ID bytes as on the wire.
    pub fn packet_id_bytes(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.buffer.as_ref()[field::PACKET_ID]);
        id
    }
    /// The packet ID as a big-endian integer (the form replies echo and reassembly keys on).
    pub fn packet_id(&self) -> u64 {
        u64::from_be_bytes(self.packet_id_bytes())
    }
    pub fn destination(&self) -> Address {
        address_at(self.buffer.as_ref(), field::DESTINATION.start)
    }
    pub fn source(&self) -> Address {
        address_at(self.buffer.as_ref(), field::SOURCE.start)
    }
    pub fn flags(&self) -> PacketFlags {
        PacketFlags(self.buffer.as_ref()[field::FLAGS])
    }
    pub fn cipher_bits(&self) -> u8 {
        self.flags().cipher_bits()
    }
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.flags().cipher_suite()
    }
    pub fn hops(&self) -> u8 {
        self.flags().hops()
    }
    pub fn is_fragmented(&self) -> bool {
        self.flags().is_fragmented()
    }
    pub fn mac(&self) -> [u8; 8] {
        let mut m = [0u8; 8];
        m.copy_from_slice(&self.buffer.as_ref()[field::MAC]);
        m
    }
    /// The raw verb byte. Only meaningful in plaintext (suite 0/2, or after dearmor).
    pub fn verb_byte(&self) -> u8 {
        self.buffer.as_ref()[field::VERB]
    }
    pub fn verb(&self) -> Verb {
        Verb::from_verb_byte(self.verb_byte())
    }
    pub fn is_compressed(&self) -> bool {
        self.verb_byte() & VERB_FLAG_COMPRESSED != 0
    }
    /// The bytes after the verb byte.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PacketHeader<T> {
    pub fn set_packet_id(&mut self, id: u64) {
        self.buffer.as_mut()[field::PACKET_ID].copy_from_slice(&id.to_be_bytes());
    }
    pub fn set_destination(&mut self, a: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.to_bytes());
    }
    pub fn set_source(&mut self, a: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.to_bytes());
    }
    pub fn set_flags(&mut self, f: PacketFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }
    /// Set the hop count (low 3 bits), the one field a relay may change.
    pub fn set_hops(&mut self, hops: u8) {
        let f = self.flags().with_hops(hops);
        self.set_flags(f);
    }
    pub fn set_mac(&mut self, mac: [u8; 8]) {
        self.buffer.as_mut()[field::MAC].copy_from_slice(&mac);
    }
    pub fn set_verb_byte(&mut self, b: u8) {
        self.buffer.as_mut()[field::VERB] = b;
    }
    pub fn set_verb(&mut self, verb: Verb, compressed: bool) {
        let b = (u8::from(verb) & VERB_MASK) | if compressed { VERB_FLAG_COMPRESSED } else { 0 };
        self.set_verb_byte(b);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

fn address_at(b: &[u8], at: usize) -> Address {
    let mut a = [0u8; 5];
    a.copy_from_slice(&b[at..at + 5]);
    Address::from_bytes(&a)
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub packet_id: u64,
    pub destination: Address,
    pub source: Address,
    pub flags: PacketFlags,
    pub mac: [u8; 8],
    pub verb: Verb,
    pub compressed: bool,
}

impl HeaderRepr {
    /// Read the header of a checked view. Reserved verb bits 6..5 are dropped, as the
    /// reference ignores them.
    pub fn parse<T: AsRef<[u8]>>(view: &PacketHeader<T>) -> HeaderRepr {
        HeaderRepr {
            packet_id: view.packet_id(),
            destination: view.destination(),
            source: view.source(),
            flags: view.flags(),
            mac: view.mac(),
            verb: view.verb(),
            compressed: view.is_compressed(),
        }
    }

    /// Write all header fields into `view` (which must be at least 28 bytes long).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, view: &mut PacketHeader<T>) {
        view.set_packet_id(self.packet_id);
        view.set_destination(self.destination);
        view.set_source(self.source);
        view.set_flags(self.flags);
        view.set_mac(self.mac);
        view.set_verb(self.verb, self.compressed);
    }

    /// Append the 28 header bytes to `out`.
    pub fn emit_to_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        self.emit(&mut PacketHeader::new_unchecked(&mut out[start..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_numbers_round_trip_for_every_byte() {
        for b in 0..=255u8 {
            assert_eq!(u8::from(Verb::from(b)), b);
        }
        assert_eq!(Verb::from_verb_byte(0x8b), Verb::NetworkConfigRequest);
        assert_eq!(Verb::from(0x0f), Verb::Unknown(0x0f));
    }

    #[test]
    fn sender_flags_match_the_reference_bytes() {
        // Values seen in the captures: HELLO 0x00, Salsa 0x88, AES 0x18, AES+FRAGMENTED 0x58.
        assert_eq!(
            PacketFlags::for_sending(CipherSuite::Poly1305None, false).0,
            0x00
        );
        assert_eq!(
            PacketFlags::for_sending(CipherSuite::Poly1305Salsa2012, false).0,
            0x88
        );
        assert_eq!(
            PacketFlags::for_sending(CipherSuite::AesGmacSiv, false).0,
            0x18
        );
        assert_eq!(
            PacketFlags::for_sending(CipherSuite::AesGmacSiv, true).0,
            0x58
        );
        let f = PacketFlags(0x58).with_hops(9);
        assert_eq!((f.hops(), f.cipher_bits(), f.is_fragmented()), (1, 3, true));
    }

    #[test]
    fn classify_sorts_heads_fragments_beacons_and_junk() {
        let mut head = [0u8; 28];
        head[13] = 0x12;
        assert_eq!(classify_datagram(&head), DatagramKind::Head);
        let mut frag = [0u8; 17];
        frag[13] = 0xff;
        assert_eq!(classify_datagram(&frag), DatagramKind::Fragment);
        assert_eq!(classify_datagram(&frag[..16]), DatagramKind::Junk);
        assert_eq!(classify_datagram(&[0u8; 13]), DatagramKind::LegacyBeacon);
        assert_eq!(classify_datagram(&[0u8; 4]), DatagramKind::Junk);
        assert_eq!(classify_datagram(&[0u8; 20]), DatagramKind::Junk);
    }

    #[test]
    fn repr_emit_then_parse_is_identity() {
        let repr = HeaderRepr {
            packet_id: 0x0102030405060708,
            destination: Address::new(0xae2436cf84).unwrap(),
            source: Address::new(0x51479cea31).unwrap(),
            flags: PacketFlags(0x5b),
            mac: [9, 8, 7, 6, 5, 4, 3, 2],
            verb: Verb::MulticastFrame,
            compressed: true,
        };
        let mut buf = Vec::new();
        repr.emit_to_vec(&mut buf);
        assert_eq!(buf.len(), HEADER_LEN);
        assert_eq!(buf[27], 0x8e);
        let view = PacketHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(HeaderRepr::parse(&view), repr);
        assert!(PacketHeader::new_checked(&buf[..27]).is_err());
    }
}
