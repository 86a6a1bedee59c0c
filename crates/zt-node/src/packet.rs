//! Packet plumbing for the engine: header field access on assembled packets, building,
//! compression, armor-and-fragment on send, and the fragment reassembly queue.
//! PROTOCOL.md §3.1, §3.7, §3.8.
//!
//! Every accessor here assumes a length check was done by the caller (`len >= HEADER_LEN`
//! for heads, `>= FRAGMENT_HEADER_LEN` for fragments); the receive path does it once at the
//! entry point.

use crate::constants::*;
use zt_crypto::{armor, Address, CipherSuite, PeerKey};

/// Verb numbers (PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Nop = 0x00,
    Hello = 0x01,
    Error = 0x02,
    Ok = 0x03,
    Whois = 0x04,
    Rendezvous = 0x05,
    Frame = 0x06,
    ExtFrame = 0x07,
    Echo = 0x08,
    MulticastLike = 0x09,
    NetworkCredentials = 0x0a,
    NetworkConfigRequest = 0x0b,
    NetworkConfig = 0x0c,
    MulticastGather = 0x0d,
    MulticastFrame = 0x0e,
    PushDirectPaths = 0x10,
    Ack = 0x12,
    QosMeasurement = 0x13,
    UserMessage = 0x14,
    RemoteTrace = 0x15,
    PathNegotiationRequest = 0x16,
}

impl Verb {
    pub fn from_u8(v: u8) -> Option<Verb> {
        use Verb::*;
        Some(match v {
            0x00 => Nop,
            0x01 => Hello,
            0x02 => Error,
            0x03 => Ok,
            0x04 => Whois,
            0x05 => Rendezvous,
            0x06 => Frame,
            0x07 => ExtFrame,
            0x08 => Echo,
            0x09 => MulticastLike,
            0x0a => NetworkCredentials,
            0x0b => NetworkConfigRequest,
            0x0c => NetworkConfig,
            0x0d => MulticastGather,
            0x0e => MulticastFrame,
            0x10 => PushDirectPaths,
            0x12 => Ack,
            0x13 => QosMeasurement,
            0x14 => UserMessage,
            0x15 => RemoteTrace,
            0x16 => PathNegotiationRequest,
            _ => return None,
        })
    }

    /// Verbs the reference compresses when they are worth it (PROTOCOL.md §3.7).
    pub fn compressed_by_default(self) -> bool {
        matches!(
            self,
            Verb::NetworkConfigRequest
                | Verb::NetworkConfig
                | Verb::MulticastLike
                | Verb::NetworkCredentials
                | Verb::PushDirectPaths
                | Verb::MulticastFrame
                | Verb::UserMessage
                | Verb::RemoteTrace
        )
    }
}

/// ERROR codes (PROTOCOL.md §4).
pub mod error_code {
    pub const INVALID_REQUEST: u8 = 0x01;
    pub const BAD_PROTOCOL_VERSION: u8 = 0x02;
    pub const OBJ_NOT_FOUND: u8 = 0x03;
    pub const IDENTITY_COLLISION: u8 = 0x04;
    pub const UNSUPPORTED_OPERATION: u8 = 0x05;
}

pub const FLAG_LEGACY_ENCRYPTED: u8 = 0x80;
pub const FLAG_FRAGMENTED: u8 = 0x40;
pub const VERB_FLAG_COMPRESSED: u8 = 0x80;
pub const VERB_MASK: u8 = 0x1f;
/// Byte 13 of a fragment; no valid source address starts with it.
pub const FRAGMENT_INDICATOR: u8 = 0xff;

pub fn packet_id(p: &[u8]) -> u64 {
    u64::from_be_bytes(p[0..8].try_into().expect("caller checked length"))
}
pub fn destination(p: &[u8]) -> Address {
    Address::from_bytes(p[8..13].try_into().expect("caller checked length"))
}
pub fn source(p: &[u8]) -> Address {
    Address::from_bytes(p[13..18].try_into().expect("caller checked length"))
}
pub fn hops(p: &[u8]) -> u8 {
    p[18] & 0x07
}
pub fn cipher_bits(p: &[u8]) -> u8 {
    (p[18] >> 3) & 0x07
}
pub fn is_fragmented(p: &[u8]) -> bool {
    p[18] & FLAG_FRAGMENTED != 0
}
pub fn verb_byte(p: &[u8]) -> u8 {
    p[27]
}
pub fn is_fragment(datagram: &[u8]) -> bool {
    datagram.len() > 13 && datagram[13] == FRAGMENT_INDICATOR
}

/// Increments the hop count of a head (byte 18) or fragment (byte 15) in place.
pub fn increment_hops(datagram: &mut [u8], fragment: bool) {
    if fragment {
        datagram[15] = (datagram[15].wrapping_add(1)) & 0x07;
    } else {
        datagram[18] = (datagram[18] & 0xf8) | ((datagram[18].wrapping_add(1)) & 0x07);
    }
}

pub fn fragment_hops(f: &[u8]) -> u8 {
    f[15] & 0x07
}

/// Flags byte for an unfragmented packet sent with `suite` (legacy bit set only for suite 1).
pub fn flags_for(suite: CipherSuite) -> u8 {
    let s = suite as u8;
    (s << 3) | if s == 1 { FLAG_LEGACY_ENCRYPTED } else { 0 }
}

/// Builds a plaintext packet: header with a zero MAC, verb byte, payload.
pub fn build(packet_id: u64, dest: Address, src: Address, verb: Verb, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_LEN + payload.len() + 16);
    p.extend_from_slice(&packet_id.to_be_bytes());
    p.extend_from_slice(&dest.to_bytes());
    p.extend_from_slice(&src.to_bytes());
    p.push(0);
    p.extend_from_slice(&[0u8; 8]);
    p.push(verb as u8);
    p.extend_from_slice(payload);
    p
}

/// LZ4-compresses the payload in place when it is long enough and the result strictly smaller.
pub fn compress(packet: &mut Vec<u8>) {
    let payload = &packet[HEADER_LEN..];
    if payload.len() <= COMPRESSION_MIN_PAYLOAD {
        return;
    }
    let compressed = lz4_flex::block::compress(payload);
    if compressed.len() < payload.len() {
        packet.truncate(HEADER_LEN);
        packet.extend_from_slice(&compressed);
        packet[27] |= VERB_FLAG_COMPRESSED;
    }
}

/// Decompresses a dearmored packet in place if its compressed flag is set.
pub fn decompress(packet: &mut Vec<u8>) -> Result<(), DecompressError> {
    if packet[27] & VERB_FLAG_COMPRESSED == 0 {
        return Ok(());
    }
    let mut out = vec![0u8; MAX_PACKET_LEN - HEADER_LEN];
    let n = lz4_flex::block::decompress_into(&packet[HEADER_LEN..], &mut out)
        .map_err(|_| DecompressError)?;
    packet.truncate(HEADER_LEN);
    packet.extend_from_slice(&out[..n]);
    packet[27] &= !VERB_FLAG_COMPRESSED;
    Ok(())
}

/// Armors `packet` with `suite` and splits it into datagrams no longer than `mtu`.
/// Returns the datagrams and the wire packet ID (which suite 3 rewrites).
pub fn armor_and_fragment(
    mut packet: Vec<u8>,
    key: &PeerKey,
    suite: CipherSuite,
    mtu: usize,
) -> Result<(Vec<Vec<u8>>, u64), PacketTooLarge> {
    let fragment_payload = mtu - FRAGMENT_HEADER_LEN;
    let fragmented = packet.len() > mtu;
    let fragments_needed = if fragmented {
        1 + (packet.len() - mtu).div_ceil(fragment_payload)
    } else {
        1
    };
    if fragments_needed > MAX_FRAGMENTS || packet.len() > MAX_PACKET_LEN {
        return Err(PacketTooLarge);
    }
    packet[18] = flags_for(suite) | if fragmented { FLAG_FRAGMENTED } else { 0 };
    armor::armor(&mut packet, key, suite);
    let wire_id = packet_id(&packet);
    if !fragmented {
        return Ok((vec![packet], wire_id));
    }
    let total = fragments_needed as u8;
    let mut out = Vec::with_capacity(fragments_needed);
    out.push(packet[..mtu].to_vec());
    for (i, chunk) in packet[mtu..].chunks(fragment_payload).enumerate() {
        let mut f = Vec::with_capacity(FRAGMENT_HEADER_LEN + chunk.len());
        f.extend_from_slice(&packet[0..13]);
        f.push(FRAGMENT_INDICATOR);
        f.push((total << 4) | (i as u8 + 1));
        f.push(0);
        f.extend_from_slice(chunk);
        out.push(f);
    }
    Ok((out, wire_id))
}

/// The LZ4 payload was corrupt or would exceed the maximum packet size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecompressError;

/// The packet would need more than the allowed number of fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketTooLarge;

/// One packet being reassembled.
struct Slot {
    packet_id: u64,
    created: u64,
    head: Option<Vec<u8>>,
    /// Fragment numbers 1..=6 (index 0 unused).
    fragments: [Option<Vec<u8>>; MAX_FRAGMENTS],
    /// Total pieces including the head, once a fragment told us.
    total: u8,
}

/// Reassembly of fragmented packets (PROTOCOL.md §3.8): a small fixed set of slots keyed by
/// packet ID, oldest replaced first, entries time out.
#[derive(Default)]
pub struct Reassembler {
    slots: Vec<Slot>,
}

/// Result of offering a piece to the reassembler.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly {
    Complete(Vec<u8>),
    Pending,
    Duplicate,
}

impl Reassembler {
    fn slot(&mut self, now: u64, packet_id: u64) -> &mut Slot {
        if let Some(i) = self.slots.iter().position(|s| s.packet_id == packet_id) {
            return &mut self.slots[i];
        }
        let fresh = Slot {
            packet_id,
            created: now,
            head: None,
            fragments: Default::default(),
            total: 0,
        };
        if self.slots.len() < RX_QUEUE_SIZE {
            self.slots.push(fresh);
            let last = self.slots.len() - 1;
            return &mut self.slots[last];
        }
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.created)
            .map(|(i, _)| i)
            .unwrap_or(0);
        self.slots[oldest] = fresh;
        &mut self.slots[oldest]
    }

    /// Offers a fragmented head (a full datagram with the FRAGMENTED flag).
    pub fn add_head(&mut self, now: u64, head: &[u8]) -> Reassembly {
        let slot = self.slot(now, packet_id(head));
        if slot.head.is_some() {
            return Reassembly::Duplicate;
        }
        slot.head = Some(head.to_vec());
        self.try_complete(packet_id(head))
    }

    /// Offers a fragment datagram whose header the caller validated
    /// (`1 < total <= 7`, `1 <= number < total`).
    pub fn add_fragment(&mut self, now: u64, fragment: &[u8], number: u8, total: u8) -> Reassembly {
        let id = packet_id(fragment);
        let slot = self.slot(now, id);
        if slot.total != 0 && slot.total != total {
            return Reassembly::Duplicate;
        }
        slot.total = total;
        let entry = &mut slot.fragments[number as usize];
        if entry.is_some() {
            return Reassembly::Duplicate;
        }
        *entry = Some(fragment[FRAGMENT_HEADER_LEN..].to_vec());
        self.try_complete(id)
    }

    fn try_complete(&mut self, id: u64) -> Reassembly {
        let Some(i) = self.slots.iter().position(|s| s.packet_id == id) else {
            return Reassembly::Pending;
        };
        let s = &self.slots[i];
        if s.head.is_none()
            || s.total == 0
            || (1..s.total as usize).any(|n| s.fragments[n].is_none())
        {
            return Reassembly::Pending;
        }
        let s = self.slots.swap_remove(i);
        let mut packet = s.head.unwrap_or_default();
        for f in s.fragments.into_iter().take(s.total as usize).flatten() {
            packet.extend_from_slice(&f);
        }
        Reassembly::Complete(packet)
    }

    /// Drops entries older than the reassembly timeout; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.slots.len();
        self.slots
            .retain(|s| now.saturating_sub(s.created) < REASSEMBLY_TIMEOUT);
        before - self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
