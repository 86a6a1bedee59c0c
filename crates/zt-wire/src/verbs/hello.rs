//! HELLO (0x01, PROTOCOL.md §4.2): version, clock, identity and the optional trailing fields.
//!
//! The moon list at the end is hidden with `cryptField` (§3.6). [`Hello`] holds it in clear;
//! [`crypt_moon_section`] applies (or removes, it is an XOR) the cipher on a whole packet.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::{field, Verb, MIN_PACKET_LEN};
use crate::inet::InetAddress;
use zt_crypto::armor::{crypt_field, PeerKey};
use zt_crypto::Identity;

/// World type number of a moon.
pub const WORLD_TYPE_MOON: u8 = 127;
/// Bytes of one moon list entry: type, world ID, timestamp.
const MOON_ENTRY_LEN: usize = 17;

/// A world (planet) named by ID and revision timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorldRef {
    pub id: u64,
    pub timestamp: u64,
}

/// One moon list entry. Receivers ignore entries whose type is not 127, but keep the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoonRef {
    pub world_type: u8,
    pub id: u64,
    /// 0 for a moon that is wanted but not yet fetched.
    pub timestamp: u64,
}

/// A HELLO payload. Each optional field may be present only if the one before it is
/// (`physical_destination`, then `planet`, then `moons`); `write` stops at the first absent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u8,
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    /// The sender's clock in ms, echoed back in OK(HELLO).
    pub timestamp: u64,
    /// Public identity of the sender (71 bytes on the wire).
    pub identity: Identity,
    /// The physical address the packet was sent to; `Some(InetAddress::Nil)` when unknown.
    pub physical_destination: Option<InetAddress>,
    pub planet: Option<WorldRef>,
    /// The moon list, in clear.
    pub moons: Option<Vec<MoonRef>>,
}

impl Hello {
    pub const VERB: Verb = Verb::Hello;

    pub fn read(payload: &[u8]) -> Result<Hello, WireError> {
        let mut r = Reader::new(payload);
        let (fixed, identity) = read_fixed(&mut r)?;
        let mut hello = Hello {
            protocol_version: fixed.protocol_version,
            major: fixed.major,
            minor: fixed.minor,
            revision: fixed.revision,
            timestamp: fixed.timestamp,
            identity,
            physical_destination: None,
            planet: None,
            moons: None,
        };
        if r.is_empty() {
            return Ok(hello);
        }
        hello.physical_destination = Some(InetAddress::read(&mut r)?);
        if r.remaining() < 16 {
            return Ok(hello);
        }
        hello.planet = Some(WorldRef {
            id: r.u64("HELLO planet id")?,
            timestamp: r.u64("HELLO planet ts")?,
        });
        if r.remaining() < 2 {
            return Ok(hello);
        }
        let count = r.u16("HELLO moon count")? as usize;
        let mut moons = Vec::with_capacity(count.min(r.remaining() / MOON_ENTRY_LEN));
        for _ in 0..count {
            moons.push(MoonRef {
                world_type: r.u8("HELLO moon type")?,
                id: r.u64("HELLO moon id")?,
                timestamp: r.u64("HELLO moon timestamp")?,
            });
        }
        hello.moons = Some(moons);
        Ok(hello)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.protocol_version);
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.revision);
        out.put_u64(self.timestamp);
        self.identity.write_binary(out, false);
        let Some(dest) = &self.physical_destination else {
            return;
        };
        dest.write(out);
        let Some(planet) = &self.planet else { return };
        out.put_u64(planet.id);
        out.put_u64(planet.timestamp);
        let Some(moons) = &self.moons else { return };
        out.put_u16(moons.len().min(u16::MAX as usize) as u16);
        for m in moons.iter().take(u16::MAX as usize) {
            out.put_u8(m.world_type);
            out.put_u64(m.id);
            out.put_u64(m.timestamp);
        }
    }
}

struct FixedPart {
    protocol_version: u8,
    major: u8,
    minor: u8,
    revision: u16,
    timestamp: u64,
}

fn read_fixed(r: &mut Reader<'_>) -> Result<(FixedPart, Identity), WireError> {
    let fixed = FixedPart {
        protocol_version: r.u8("HELLO protocol version")?,
        major: r.u8("HELLO major version")?,
        minor: r.u8("HELLO minor version")?,
        revision: r.u16("HELLO revision")?,
        timestamp: r.u64("HELLO timestamp")?,
    };
    let (identity, used) = Identity::read_binary(r.rest())?;
    if identity.has_private() {
        return Err(WireError::invalid(
            "HELLO identity",
            "carries a private key",
        ));
    }
    r.skip(used, "HELLO identity")?;
    Ok((fixed, identity))
}

/// The sender's identity, read without touching the (still encrypted) moon list. A receiver
/// needs it to derive the key before it can check the MAC of a HELLO from an unknown peer.
pub fn peek_identity(payload: &[u8]) -> Result<Identity, WireError> {
    read_fixed(&mut Reader::new(payload)).map(|(_, id)| id)
}

/// Offset within the HELLO payload where the `cryptField` section (moon count onward)
/// starts, or `None` if the payload ends before it.
pub fn moon_section_offset(payload: &[u8]) -> Result<Option<usize>, WireError> {
    let mut r = Reader::new(payload);
    read_fixed(&mut r)?;
    if r.is_empty() {
        return Ok(None);
    }
    InetAddress::read(&mut r)?;
    if r.remaining() < 16 {
        return Ok(None);
    }
    r.skip(16, "HELLO planet")?;
    Ok((!r.is_empty()).then_some(r.position()))
}

/// XOR the moon section of a whole HELLO packet (header included) with `cryptField` keyed by
/// the raw peer key and the packet's current ID (low 3 bits of byte 7 cleared, §3.6). The
/// sender calls it before armor; the receiver after dearmor. Does nothing if the packet has
/// no moon section.
pub fn crypt_moon_section(packet: &mut [u8], key: &PeerKey) -> Result<(), WireError> {
    if packet.len() < MIN_PACKET_LEN {
        return Err(WireError::Truncated("packet header"));
    }
    let Some(offset) = moon_section_offset(&packet[field::PAYLOAD..])? else {
        return Ok(());
    };
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&packet[field::PACKET_ID]);
    nonce[7] &= 0xf8;
    crypt_field(key, &nonce, &mut packet[field::PAYLOAD + offset..]);
    Ok(())
}
