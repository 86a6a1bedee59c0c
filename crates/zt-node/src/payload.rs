//! The VL1 verb payloads the engine reads and writes (PROTOCOL.md §3.9, §4.2–4.6, §4.9,
//! §4.13). These are minimal codecs kept here until `zt-wire::verbs` carries typed versions;
//! every reader validates lengths and returns a [`WireError`], never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use zt_crypto::{Address, Identity};
use zt_wire::{Reader, WireError, Writer};

/// Reads an INETADDR. `Ok(None)` for the null address and the reserved types that are skipped.
pub fn read_inet(r: &mut Reader<'_>) -> Result<Option<SocketAddr>, WireError> {
    match r.u8("inetaddr type")? {
        0x00 => Ok(None),
        0x04 => {
            let ip: [u8; 4] = r.array("ipv4")?;
            let port = r.u16("ipv4 port")?;
            Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)))
        }
        0x06 => {
            let ip: [u8; 16] = r.array("ipv6")?;
            let port = r.u16("ipv6 port")?;
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)))
        }
        0x01 | 0x02 => {
            r.skip(6, "reserved inetaddr")?;
            Ok(None)
        }
        0x03 => {
            let n = r.u16("inetaddr ext length")? as usize;
            r.skip(n, "inetaddr ext")?;
            Ok(None)
        }
        t => Err(WireError::invalid("inetaddr type", format!("{t:#04x}"))),
    }
}

/// Writes an INETADDR; `None` is the single null byte. IPv4-mapped IPv6 is written as IPv4.
pub fn write_inet(out: &mut Vec<u8>, addr: Option<SocketAddr>) {
    match addr.map(canonical) {
        None => out.put_u8(0),
        Some(SocketAddr::V4(a)) => {
            out.put_u8(4);
            out.put_bytes(&a.ip().octets());
            out.put_u16(a.port());
        }
        Some(SocketAddr::V6(a)) => {
            out.put_u8(6);
            out.put_bytes(&a.ip().octets());
            out.put_u16(a.port());
        }
    }
}

/// IPv4-mapped IPv6 socket addresses (from dual-stack sockets) become plain IPv4.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// A moon entry in a HELLO's encrypted tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoonRef {
    pub id: u64,
    pub timestamp: u64,
}

/// HELLO payload (after the verb byte). The moon list is handled by the caller because it is
/// encrypted in place; `moon_tail_offset` is the payload offset where it starts, if present.
#[derive(Debug, Clone)]
pub struct Hello {
    pub protocol_version: u8,
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    pub timestamp: u64,
    pub identity: Identity,
    /// The address the sender sent this HELLO to (what it thinks our address is).
    pub destination: Option<SocketAddr>,
    pub planet: Option<(u64, u64)>,
    pub moon_tail_offset: Option<usize>,
}

impl Hello {
    pub fn read(payload: &[u8]) -> Result<Hello, WireError> {
        let mut r = Reader::new(payload);
        let protocol_version = r.u8("protocol version")?;
        let major = r.u8("major")?;
        let minor = r.u8("minor")?;
        let revision = r.u16("revision")?;
        let timestamp = r.u64("timestamp")?;
        let (identity, used) = Identity::read_binary(r.rest())?;
        r.skip(used, "identity")?;
        let destination = if r.is_empty() {
            None
        } else {
            read_inet(&mut r)?
        };
        let planet = if r.remaining() >= 16 {
            Some((r.u64("planet id")?, r.u64("planet timestamp")?))
        } else {
            None
        };
        let moon_tail_offset = (planet.is_some() && r.remaining() >= 2).then(|| r.position());
        Ok(Hello {
            protocol_version,
            major,
            minor,
            revision,
            timestamp,
            identity,
            destination,
            planet,
            moon_tail_offset,
        })
    }

    /// Writes the payload up to and including the plaintext moon list; returns the payload
    /// offset where the moon list starts (the caller encrypts from there).
    pub fn write(&self, out: &mut Vec<u8>, moons: &[MoonRef]) -> usize {
        out.put_u8(self.protocol_version);
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.revision);
        out.put_u64(self.timestamp);
        self.identity.write_binary(out, false);
        write_inet(out, self.destination);
        let (id, ts) = self.planet.unwrap_or((0, 0));
        out.put_u64(id);
        out.put_u64(ts);
        let tail = out.len();
        out.put_u16(moons.len() as u16);
        for m in moons {
            out.put_u8(zt_wire_world_type_moon());
            out.put_u64(m.id);
            out.put_u64(m.timestamp);
        }
        tail
    }
}

const fn zt_wire_world_type_moon() -> u8 {
    127
}

/// Reads the decrypted moon list of a HELLO (entries whose type is not 127 are ignored).
pub fn read_moon_list(tail: &[u8]) -> Result<Vec<MoonRef>, WireError> {
    let mut r = Reader::new(tail);
    let n = r.u16("moon count")?;
    let mut moons = Vec::new();
    for _ in 0..n {
        let kind = r.u8("moon type")?;
        let id = r.u64("moon id")?;
        let timestamp = r.u64("moon timestamp")?;
        if kind == zt_wire_world_type_moon() {
            moons.push(MoonRef { id, timestamp });
        }
    }
    Ok(moons)
}

/// OK(HELLO) body (after the in-re verb and packet ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkHello {
    pub timestamp: u64,
    pub protocol_version: u8,
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    /// Where the sender saw our HELLO come from.
    pub external: Option<SocketAddr>,
    /// Serialized worlds, concatenated.
    pub worlds: Vec<u8>,
}

impl OkHello {
    pub fn read(body: &[u8]) -> Result<OkHello, WireError> {
        let mut r = Reader::new(body);
        let timestamp = r.u64("timestamp")?;
        let protocol_version = r.u8("protocol version")?;
        let major = r.u8("major")?;
        let minor = r.u8("minor")?;
        let revision = r.u16("revision")?;
        let external = if r.is_empty() {
            None
        } else {
            read_inet(&mut r)?
        };
        let worlds = if r.remaining() >= 2 {
            let n = r.u16("world updates length")? as usize;
            r.bytes(n, "world updates")?.to_vec()
        } else {
            Vec::new()
        };
        Ok(OkHello {
            timestamp,
            protocol_version,
            major,
            minor,
            revision,
            external,
            worlds,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.timestamp);
        out.put_u8(self.protocol_version);
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.revision);
        write_inet(out, self.external);
        out.put_u16(self.worlds.len() as u16);
        out.put_bytes(&self.worlds);
    }
}

/// RENDEZVOUS payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendezvous {
    pub flags: u8,
    pub peer: Address,
    pub endpoint: SocketAddr,
}

impl Rendezvous {
    pub fn read(payload: &[u8]) -> Result<Rendezvous, WireError> {
        let mut r = Reader::new(payload);
        let flags = r.u8("flags")?;
        let peer = r.address("peer")?;
        let port = r.u16("port")?;
        let ip = match r.u8("address length")? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("ipv4")?)),
            16 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("ipv6")?)),
            n => return Err(WireError::invalid("address length", n.to_string())),
        };
        if port == 0 {
            return Err(WireError::invalid("port", "0"));
        }
        Ok(Rendezvous {
            flags,
            peer,
            endpoint: SocketAddr::new(ip, port),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.flags);
        out.put_address(self.peer);
        out.put_u16(self.endpoint.port());
        match canonical(self.endpoint).ip() {
            IpAddr::V4(ip) => {
                out.put_u8(4);
                out.put_bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(16);
                out.put_bytes(&ip.octets());
            }
        }
    }
}

pub const PUSH_FLAG_FORGET: u8 = 0x01;
pub const PUSH_FLAG_REDIRECT: u8 = 0x02;

/// One PUSH_DIRECT_PATHS record with an IP address (other address types are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushedPath {
    pub flags: u8,
    pub address: SocketAddr,
}

pub fn read_push_direct_paths(payload: &[u8]) -> Result<Vec<PushedPath>, WireError> {
    let mut r = Reader::new(payload);
    let count = r.u16("count")?;
    let mut out = Vec::new();
    for _ in 0..count {
        let flags = r.u8("flags")?;
        let ext = r.u16("extension length")? as usize;
        r.skip(ext, "extension")?;
        let kind = r.u8("address type")?;
        let len = r.u8("address length")? as usize;
        let addr = r.bytes(len, "address")?;
        let parsed = match (kind, len) {
            (4, 6) => Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
                u16::from_be_bytes([addr[4], addr[5]]),
            )),
            (6, 18) => {
                let ip: [u8; 16] = addr[..16].try_into().expect("length matched");
                Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(ip)),
                    u16::from_be_bytes([addr[16], addr[17]]),
                ))
            }
            _ => None,
        };
        if let Some(address) = parsed {
            out.push(PushedPath { flags, address });
        }
    }
    Ok(out)
}

/// Writes PUSH_DIRECT_PATHS payloads, each small enough for one packet under 1200 bytes.
pub fn write_push_direct_paths(addresses: &[SocketAddr], max_packet: usize) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut records: Vec<u8> = Vec::new();
    let mut count = 0u16;
    let flush = |records: &mut Vec<u8>, count: &mut u16, packets: &mut Vec<Vec<u8>>| {
        if *count > 0 {
            let mut p = Vec::with_capacity(2 + records.len());
            p.put_u16(*count);
            p.put_bytes(records);
            packets.push(p);
        }
        records.clear();
        *count = 0;
    };
    for a in addresses.iter().map(|a| canonical(*a)) {
        if crate::constants::HEADER_LEN + 2 + records.len() + 24 >= max_packet {
            flush(&mut records, &mut count, &mut packets);
        }
        records.put_u8(0);
        records.put_u16(0);
        match a.ip() {
            IpAddr::V4(ip) => {
                records.put_u8(4);
                records.put_u8(6);
                records.put_bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                records.put_u8(6);
                records.put_u8(18);
                records.put_bytes(&ip.octets());
            }
        }
        records.put_u16(a.port());
        count += 1;
    }
    flush(&mut records, &mut count, &mut packets);
    packets
}

/// OK / ERROR common prefix: in-re verb and in-re packet ID.
pub fn read_reply_prefix(payload: &[u8]) -> Result<(u8, u64, &[u8]), WireError> {
    let mut r = Reader::new(payload);
    let verb = r.u8("in-re verb")?;
    let id = r.u64("in-re packet id")?;
    Ok((verb, id, r.rest()))
}

pub fn write_reply_prefix(out: &mut Vec<u8>, in_re_verb: u8, in_re_packet_id: u64) {
    out.put_u8(in_re_verb);
    out.put_u64(in_re_packet_id);
}
