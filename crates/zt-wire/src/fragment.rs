//! Fragmentation (PROTOCOL.md §3.8): the 16-byte fragment header, splitting an armored packet
//! for a path MTU, and a sans-I/O reassembly queue.
//!
//! The queue takes the current time as a parameter and bounds its memory (32 entries, each at
//! most 7 datagrams), so no input can make it panic or grow without limit.
use crate::cursor::Writer;
use crate::error::WireError;
use crate::header::{
    field, PacketHeader, FRAGMENT_INDICATOR, FRAGMENT_INDICATOR_OFFSET, MAX_PACKET_LEN,
    MAX_PHYS_PAYLOAD, MIN_PACKET_LEN,
};
use zt_crypto::Address;

/// Length of the fragment header; `ZT_PROTO_MIN_FRAGMENT_LENGTH`.
pub const FRAGMENT_HEADER_LEN: usize = 16;
/// `ZT_MAX_PACKET_FRAGMENTS`: head plus at most 6 fragments.
pub const MAX_PIECES: usize = 7;
/// `ZT_RX_QUEUE_SIZE`: packets being reassembled at once.
pub const RX_QUEUE_SIZE: usize = 32;
/// `ZT_RECEIVE_QUEUE_TIMEOUT`: an incomplete packet is dropped after this long.
pub const RX_QUEUE_TIMEOUT_MS: u64 = 5000;

const TOTAL_AND_NUMBER: usize = 14;
const HOPS: usize = 15;

/// A zero-copy view of a fragment datagram.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Fragment<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Fragment { buffer }
    }

    /// Wrap after checking the fragment indicator and that at least one data byte follows the
    /// header (`Switch::onRemotePacket` requires more than 16 bytes).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() <= FRAGMENT_HEADER_LEN {
            return Err(WireError::Truncated("fragment"));
        }
        if b.len() > MAX_PHYS_PAYLOAD {
            return Err(WireError::TooLarge("fragment"));
        }
        if b[FRAGMENT_INDICATOR_OFFSET] != FRAGMENT_INDICATOR {
            return Err(WireError::invalid(
                "fragment indicator",
                "byte 13 is not 0xff",
            ));
        }
        Ok(Fragment { buffer })
    }

    pub fn packet_id_bytes(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.buffer.as_ref()[field::PACKET_ID]);
        id
    }
    /// The packet ID of the head this belongs to (the post-armor wire value).
    pub fn packet_id(&self) -> u64 {
        u64::from_be_bytes(self.packet_id_bytes())
    }
    pub fn destination(&self) -> Address {
        let mut a = [0u8; 5];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        Address::from_bytes(&a)
    }
    /// Total pieces including the head (high nibble of byte 14).
    pub fn total(&self) -> u8 {
        self.buffer.as_ref()[TOTAL_AND_NUMBER] >> 4
    }
    /// This fragment's number, 1.. (low nibble of byte 14).
    pub fn number(&self) -> u8 {
        self.buffer.as_ref()[TOTAL_AND_NUMBER] & 0x0f
    }
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[HOPS]
    }
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[FRAGMENT_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Fragment<T> {
    /// Set the hop byte. A relay writes `(old + 1) & 7`.
    pub fn set_hops(&mut self, hops: u8) {
        self.buffer.as_mut()[HOPS] = hops & 0x07;
    }
}

/// A fragment as values, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentRepr<'a> {
    pub packet_id: u64,
    pub destination: Address,
    pub total: u8,
    pub number: u8,
    pub hops: u8,
    pub data: &'a [u8],
}

impl<'a> FragmentRepr<'a> {
    pub fn parse(view: &Fragment<&'a [u8]>) -> FragmentRepr<'a> {
        let buf: &'a [u8] = view.buffer;
        FragmentRepr {
            packet_id: view.packet_id(),
            destination: view.destination(),
            total: view.total(),
            number: view.number(),
            hops: view.hops(),
            data: &buf[FRAGMENT_HEADER_LEN..],
        }
    }

    /// Append header and data. `total` and `number` keep only their low 4 bits.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.packet_id);
        out.put_address(self.destination);
        out.put_u8(FRAGMENT_INDICATOR);
        out.put_u8(((self.total & 0x0f) << 4) | (self.number & 0x0f));
        out.put_u8(self.hops);
        out.put_bytes(self.data);
    }
}

/// Whether a packet of `packet_len` bytes must be fragmented on a path of `mtu`; the sender
/// sets FRAGMENTED accordingly *before* armoring.
pub fn needs_fragmentation(packet_len: usize, mtu: usize) -> bool {
    packet_len > mtu
}

/// How many datagrams (head included) `packet_len` bytes become on a path of `mtu`.
pub fn piece_count(packet_len: usize, mtu: usize) -> Result<usize, WireError> {
    if mtu < MIN_PACKET_LEN || mtu <= FRAGMENT_HEADER_LEN {
        return Err(WireError::invalid("mtu", format!("{mtu} is too small")));
    }
    if packet_len <= mtu {
        return Ok(1);
    }
    let rest = packet_len - mtu;
    Ok(1 + rest.div_ceil(mtu - FRAGMENT_HEADER_LEN))
}

/// Split an armored packet into its head (the first `mtu` bytes) and fragments carrying up to
/// `mtu − 16` bytes each (§3.8). A packet that fits is returned whole. Fails if the packet is
/// not a valid head, if FRAGMENTED disagrees with the need to split (the MAC covers that
/// bit), or if more than 7 pieces would be needed (receivers drop those).
pub fn split(packet: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, WireError> {
    let head = PacketHeader::new_checked(packet)?;
    if packet.len() > MAX_PACKET_LEN {
        return Err(WireError::TooLarge("packet"));
    }
    let pieces = piece_count(packet.len(), mtu)?;
    if head.is_fragmented() != (pieces > 1) {
        return Err(WireError::invalid(
            "flags",
            "FRAGMENTED must be set exactly when the packet exceeds the MTU",
        ));
    }
    if pieces > MAX_PIECES {
        return Err(WireError::TooLarge("fragment count"));
    }
    if pieces == 1 {
        return Ok(vec![packet.to_vec()]);
    }
    let mut out = Vec::with_capacity(pieces);
    out.push(packet[..mtu].to_vec());
    for (i, chunk) in packet[mtu..].chunks(mtu - FRAGMENT_HEADER_LEN).enumerate() {
        let mut d = Vec::with_capacity(FRAGMENT_HEADER_LEN + chunk.len());
        FragmentRepr {
            packet_id: head.packet_id(),
            destination: head.destination(),
            total: pieces as u8,
            number: (i + 1) as u8,
            hops: 0,
            data: chunk,
        }
        .emit(&mut d);
        out.push(d);
    }
    Ok(out)
}

#[derive(Debug)]
struct Entry {
    packet_id: u64,
    created_ms: u64,
    /// Total pieces, learned from the first fragment; 0 until then.
    total: u8,
    head: Option<Vec<u8>>,
    /// Fragment data by number (index 0 unused: that is the head).
    fragments: [Option<Vec<u8>>; MAX_PIECES],
}

impl Entry {
    fn new(packet_id: u64, now_ms: u64) -> Entry {
        Entry {
            packet_id,
            created_ms: now_ms,
            total: 0,
            head: None,
            fragments: Default::default(),
        }
    }

    fn is_complete(&self) -> bool {
        self.total != 0
            && self.head.is_some()
            && (1..self.total as usize).all(|n| self.fragments[n].is_some())
    }

    fn assemble(self) -> Result<Vec<u8>, WireError> {
        let head = self.head.unwrap_or_default();
        let len = head.len() + self.fragments.iter().flatten().map(Vec::len).sum::<usize>();
        if len > MAX_PACKET_LEN {
            return Err(WireError::TooLarge("reassembled packet"));
        }
        let mut out = head;
        out.reserve(len - out.len());
        for f in self.fragments.into_iter().flatten() {
            out.extend_from_slice(&f);
        }
        Ok(out)
    }
}

/// What happened to a datagram given to the [`Reassembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembly {
    /// The packet is whole: head plus all fragments, in order.
    Complete(Vec<u8>),
    /// Stored; more pieces are needed.
    Pending,
    /// Already had this piece (or the packet already completed); nothing changed.
    Duplicate,
}

/// Reassembles fragmented packets keyed by packet ID (`Switch::onRemotePacket` RX queue).
///
/// Holds at most [`RX_QUEUE_SIZE`] packets; when full, the oldest entry is replaced. Entries
/// older than [`RX_QUEUE_TIMEOUT_MS`] are dropped whenever the queue is touched.
#[derive(Debug, Default)]
pub struct Reassembler {
    entries: Vec<Entry>,
    /// IDs of recently completed packets, so a late duplicate does not start a new entry.
    completed: Vec<(u64, u64)>,
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Packets currently being assembled.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop entries older than the timeout.
    pub fn expire(&mut self, now_ms: u64) {
        self.entries
            .retain(|e| now_ms.saturating_sub(e.created_ms) < RX_QUEUE_TIMEOUT_MS);
        self.completed
            .retain(|&(_, t)| now_ms.saturating_sub(t) < RX_QUEUE_TIMEOUT_MS);
    }

    /// Offer a packet head whose FRAGMENTED flag is set.
    pub fn on_head(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Reassembly, WireError> {
        let head = PacketHeader::new_checked(datagram)?;
        if !head.is_fragmented() {
            return Err(WireError::invalid("flags", "head is not marked FRAGMENTED"));
        }
        let id = head.packet_id();
        self.expire(now_ms);
        if self.was_completed(id) {
            return Ok(Reassembly::Duplicate);
        }
        let i = self.entry_index(id, now_ms);
        if self.entries[i].head.is_some() {
            return Ok(Reassembly::Duplicate);
        }
        self.entries[i].head = Some(datagram.to_vec());
        self.finish_if_complete(i, now_ms)
    }

    /// Offer a fragment datagram.
    pub fn on_fragment(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Reassembly, WireError> {
        let frag = Fragment::new_checked(datagram)?;
        let (total, number) = (frag.total(), frag.number());
        if !(2..=MAX_PIECES as u8).contains(&total) {
            return Err(WireError::invalid("fragment total", format!("{total}")));
        }
        if number == 0 || number >= total {
            return Err(WireError::invalid(
                "fragment number",
                format!("{number} of {total}"),
            ));
        }
        let id = frag.packet_id();
        self.expire(now_ms);
        if self.was_completed(id) {
            return Ok(Reassembly::Duplicate);
        }
        let i = self.entry_index(id, now_ms);
        let entry = &mut self.entries[i];
        if entry.total != 0 && entry.total != total {
            return Err(WireError::invalid(
                "fragment total",
                "disagrees with earlier fragments",
            ));
        }
        if entry.fragments[number as usize].is_some() {
            return Ok(Reassembly::Duplicate);
        }
        entry.total = total;
        entry.fragments[number as usize] = Some(frag.data().to_vec());
        self.finish_if_complete(i, now_ms)
    }

    fn was_completed(&self, id: u64) -> bool {
        self.completed.iter().any(|&(c, _)| c == id)
    }

    /// Index of the entry for `id`, creating it (replacing the oldest if full).
    fn entry_index(&mut self, id: u64, now_ms: u64) -> usize {
        if let Some(i) = self.entries.iter().position(|e| e.packet_id == id) {
            return i;
        }
        if self.entries.len() < RX_QUEUE_SIZE {
            self.entries.push(Entry::new(id, now_ms));
            return self.entries.len() - 1;
        }
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.created_ms)
            .map_or(0, |(i, _)| i);
        self.entries[oldest] = Entry::new(id, now_ms);
        oldest
    }

    fn finish_if_complete(&mut self, i: usize, now_ms: u64) -> Result<Reassembly, WireError> {
        if !self.entries[i].is_complete() {
            return Ok(Reassembly::Pending);
        }
        let entry = self.entries.swap_remove(i);
        if self.completed.len() >= RX_QUEUE_SIZE {
            self.completed.remove(0);
        }
        self.completed.push((entry.packet_id, now_ms));
        entry.assemble().map(Reassembly::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{HeaderRepr, PacketFlags, Verb};

    fn packet(len: usize, fragmented: bool) -> Vec<u8> {
        let mut p = Vec::new();
        HeaderRepr {
            packet_id: 0x1122334455667788,
            destination: Address::new(0x51479cea31).unwrap(),
            source: Address::new(0xa6c5664b6f).unwrap(),
            flags: PacketFlags(if fragmented { 0x58 } else { 0x18 }),
            mac: [0; 8],
            verb: Verb::Frame,
            compressed: false,
        }
        .emit_to_vec(&mut p);
        p.extend((0..len - 28).map(|i| i as u8));
        p
    }

    #[test]
    fn split_then_reassemble_in_any_order() {
        let p = packet(2066, true);
        let pieces = split(&p, 1432).unwrap();
        assert_eq!(
            pieces.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1432, 650]
        );
        let f = Fragment::new_checked(&pieces[1][..]).unwrap();
        assert_eq!((f.total(), f.number(), f.hops()), (2, 1, 0));
        let mut q = Reassembler::new();
        assert_eq!(q.on_fragment(0, &pieces[1]).unwrap(), Reassembly::Pending);
        assert_eq!(q.on_fragment(1, &pieces[1]).unwrap(), Reassembly::Duplicate);
        assert_eq!(
            q.on_head(2, &pieces[0]).unwrap(),
            Reassembly::Complete(p.clone())
        );
        assert!(q.is_empty());
        assert_eq!(q.on_fragment(3, &pieces[1]).unwrap(), Reassembly::Duplicate);
    }

    #[test]
    fn max_pieces_is_enforced() {
        let mtu = 1432;
        let fits = mtu + 6 * (mtu - FRAGMENT_HEADER_LEN);
        assert_eq!(split(&packet(fits, true), mtu).unwrap().len(), 7);
        assert!(split(&packet(fits + 1, true), mtu).is_err());
        assert!(
            split(&packet(1000, true), mtu).is_err(),
            "flag set but no split needed"
        );
        assert!(split(&packet(2000, false), mtu).is_err(), "flag missing");
        assert_eq!(split(&packet(1000, false), mtu).unwrap().len(), 1);
    }

    #[test]
    fn entries_expire_and_the_queue_is_bounded() {
        let mut q = Reassembler::new();
        let p = packet(3000, true);
        let pieces = split(&p, 1432).unwrap();
        q.on_head(0, &pieces[0]).unwrap();
        q.on_fragment(4999, &pieces[1]).unwrap();
        // At 5000 ms the entry is gone, so the last fragment alone cannot complete it.
        assert_eq!(
            q.on_fragment(5000, &pieces[2]).unwrap(),
            Reassembly::Pending
        );
        for id in 0..100u64 {
            let mut h = pieces[0].clone();
            h[..8].copy_from_slice(&id.to_be_bytes());
            q.on_head(6000 + id, &h).unwrap();
        }
        assert_eq!(q.len(), RX_QUEUE_SIZE);
    }

    #[test]
    fn bad_fragment_numbers_are_errors() {
        let mut q = Reassembler::new();
        for (total, number) in [(1u8, 0u8), (8, 1), (2, 0), (2, 2), (3, 7), (15, 15)] {
            let mut d = Vec::new();
            FragmentRepr {
                packet_id: 1,
                destination: Address::new(1).unwrap(),
                total,
                number,
                hops: 0,
                data: &[1],
            }
            .emit(&mut d);
            assert!(q.on_fragment(0, &d).is_err(), "{total}/{number}");
        }
        assert!(q.is_empty());
    }
}
