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

/// Where [`write_datagrams`] put the datagrams of one packet: back to back at the start of
/// the output, each exactly `segment_size` bytes except the last (which may be shorter),
/// the layout UDP segmentation offload (`UDP_SEGMENT`) takes as one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramLayout {
    /// Datagrams (head included).
    pub count: usize,
    /// Bytes of output used.
    pub len: usize,
    /// Length of every datagram but the last (at most the path MTU).
    pub segment_size: usize,
}

impl DatagramLayout {
    /// The datagrams as slices of the buffer they were written to.
    pub fn datagrams<'a>(&self, out: &'a [u8]) -> std::slice::Chunks<'a, u8> {
        out[..self.len].chunks(self.segment_size.max(1))
    }
}

/// Output bytes [`write_datagrams`] needs for a packet of `packet_len` on a path of `mtu`.
pub fn datagrams_len(packet_len: usize, mtu: usize) -> Result<usize, WireError> {
    Ok(packet_len + (piece_count(packet_len, mtu)? - 1) * FRAGMENT_HEADER_LEN)
}

/// Lay out an armored packet as the datagrams that carry it (§3.8): its head, then fragments
/// of it behind a fragment header, back to back in `out` (see [`DatagramLayout`]). A packet
/// that fits `mtu` is copied whole; a longer one takes as many datagrams as the MTU requires,
/// all of one size (the last may be shorter): receivers take a head and fragments of any
/// size, and equal datagrams let the kernel send the datagrams of several back-to-back
/// packets as one buffer (UDP segmentation offload needs every datagram but the last of a
/// buffer to be the same size). Fails if the packet is not a valid head, if FRAGMENTED
/// disagrees with the need to split (the MAC covers that bit), if more than 7 pieces would
/// be needed (receivers drop those), or if `out` is shorter than [`datagrams_len`].
pub fn write_datagrams(
    packet: &[u8],
    mtu: usize,
    out: &mut [u8],
) -> Result<DatagramLayout, WireError> {
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
    let len = datagrams_len(packet.len(), mtu)?;
    if out.len() < len {
        return Err(WireError::TooLarge("packet for the output buffer"));
    }
    if pieces == 1 {
        out[..packet.len()].copy_from_slice(packet);
        return Ok(DatagramLayout {
            count: 1,
            len,
            segment_size: packet.len(),
        });
    }
    // `len` spread evenly: never more than `mtu`, since `pieces` datagrams of `mtu` hold it.
    let segment_size = len.div_ceil(pieces);
    let chunk = segment_size - FRAGMENT_HEADER_LEN;
    let fragments = (packet.len() - segment_size).div_ceil(chunk);
    out[..segment_size].copy_from_slice(&packet[..segment_size]);
    let mut at = segment_size;
    for (i, data) in packet[segment_size..].chunks(chunk).enumerate() {
        let header = &mut out[at..at + FRAGMENT_HEADER_LEN];
        header[field::PACKET_ID].copy_from_slice(&head.packet_id_bytes());
        header[field::DESTINATION].copy_from_slice(&head.destination().to_bytes());
        header[FRAGMENT_INDICATOR_OFFSET] = FRAGMENT_INDICATOR;
        header[TOTAL_AND_NUMBER] = (((fragments + 1) as u8 & 0x0f) << 4) | ((i + 1) as u8 & 0x0f);
        header[HOPS] = 0;
        at += FRAGMENT_HEADER_LEN;
        out[at..at + data.len()].copy_from_slice(data);
        at += data.len();
    }
    Ok(DatagramLayout {
        count: fragments + 1,
        len: at,
        segment_size,
    })
}

/// [`write_datagrams`] into one `Vec` per datagram (for callers off the data path).
pub fn split(packet: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, WireError> {
    let mut out = vec![0u8; datagrams_len(packet.len(), mtu)?];
    let layout = write_datagrams(packet, mtu, &mut out)?;
    Ok(layout.datagrams(&out).map(<[u8]>::to_vec).collect())
}

/// One packet being reassembled. Entries and their piece buffers are reused, so a warm
/// queue reassembles without allocating.
#[derive(Debug, Default)]
struct Entry {
    in_use: bool,
    packet_id: u64,
    created_ms: u64,
    /// Total pieces, learned from the first fragment; 0 until then.
    total: u8,
    /// Bit n: piece n is here (bit 0: the head).
    have: u8,
    /// Piece data by number (0: the whole head datagram; n: fragment n's data).
    pieces: [Vec<u8>; MAX_PIECES],
}

impl Entry {
    fn start(&mut self, packet_id: u64, now_ms: u64) {
        self.in_use = true;
        self.packet_id = packet_id;
        self.created_ms = now_ms;
        self.total = 0;
        self.have = 0;
    }

    fn has(&self, piece: usize) -> bool {
        self.have & (1 << piece) != 0
    }

    fn store(&mut self, piece: usize, data: &[u8]) {
        self.pieces[piece].clear();
        self.pieces[piece].extend_from_slice(data);
        self.have |= 1 << piece;
    }

    fn is_complete(&self) -> bool {
        self.total != 0 && (0..self.total as usize).all(|n| self.has(n))
    }

    fn assemble_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let pieces = &self.pieces[..self.total as usize];
        if pieces.iter().map(Vec::len).sum::<usize>() > MAX_PACKET_LEN {
            return Err(WireError::TooLarge("reassembled packet"));
        }
        out.clear();
        for piece in pieces {
            out.extend_from_slice(piece);
        }
        Ok(())
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

/// A whole packet waiting in the [`Reassembler`] for [`Reassembler::assemble_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(usize);

/// What happened to a datagram given to [`Reassembler::offer_head`] or
/// [`Reassembler::offer_fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// The packet is whole: fetch it with [`Reassembler::assemble_into`] before the next offer.
    Complete(Whole),
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
    /// At most [`RX_QUEUE_SIZE`]; free ones (`!in_use`) are reused with their buffers.
    entries: Vec<Entry>,
    /// IDs of recently completed packets, so a late duplicate does not start a new entry.
    completed: std::collections::VecDeque<(u64, u64)>,
    /// When the oldest entry or completed ID times out ([`Reassembler::expire`] does
    /// nothing before).
    next_expiry_ms: u64,
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Packets currently being assembled.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.in_use).count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop entries older than the timeout. Cheap when nothing is due (every offer calls it).
    pub fn expire(&mut self, now_ms: u64) {
        if now_ms < self.next_expiry_ms {
            return;
        }
        let mut oldest = u64::MAX;
        for e in self.entries.iter_mut().filter(|e| e.in_use) {
            if now_ms.saturating_sub(e.created_ms) >= RX_QUEUE_TIMEOUT_MS {
                e.in_use = false;
            } else {
                oldest = oldest.min(e.created_ms);
            }
        }
        self.completed
            .retain(|&(_, t)| now_ms.saturating_sub(t) < RX_QUEUE_TIMEOUT_MS);
        if let Some(&(_, t)) = self.completed.front() {
            oldest = oldest.min(t);
        }
        self.next_expiry_ms = oldest.saturating_add(RX_QUEUE_TIMEOUT_MS);
    }

    /// Offer a packet head whose FRAGMENTED flag is set.
    pub fn on_head(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Reassembly, WireError> {
        let offered = self.offer_head(now_ms, datagram)?;
        self.owned(offered)
    }

    /// Offer a fragment datagram.
    pub fn on_fragment(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Reassembly, WireError> {
        let offered = self.offer_fragment(now_ms, datagram)?;
        self.owned(offered)
    }

    fn owned(&mut self, offered: Offered) -> Result<Reassembly, WireError> {
        Ok(match offered {
            Offered::Complete(whole) => {
                let mut packet = Vec::new();
                self.assemble_into(whole, &mut packet)?;
                Reassembly::Complete(packet)
            }
            Offered::Pending => Reassembly::Pending,
            Offered::Duplicate => Reassembly::Duplicate,
        })
    }

    /// Write a packet [`Offered::Complete`] named into `out` (replacing its contents; no
    /// allocation when `out` has room for a whole packet) and free its entry.
    pub fn assemble_into(&mut self, whole: Whole, out: &mut Vec<u8>) -> Result<(), WireError> {
        let entry = self
            .entries
            .get_mut(whole.0)
            .filter(|e| e.in_use && e.is_complete())
            .ok_or_else(|| WireError::invalid("reassembly", "no such complete packet"))?;
        entry.in_use = false;
        entry.assemble_into(out)
    }

    /// Offer a packet head whose FRAGMENTED flag is set (copied in; the caller's buffer is
    /// free again when this returns).
    pub fn offer_head(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Offered, WireError> {
        let head = PacketHeader::new_checked(datagram)?;
        if !head.is_fragmented() {
            return Err(WireError::invalid("flags", "head is not marked FRAGMENTED"));
        }
        let id = head.packet_id();
        self.expire(now_ms);
        if self.was_completed(id) {
            return Ok(Offered::Duplicate);
        }
        let i = self.entry_index(id, now_ms);
        if self.entries[i].has(0) {
            return Ok(Offered::Duplicate);
        }
        self.entries[i].store(0, datagram);
        self.finish_if_complete(i, now_ms)
    }

    /// Offer a fragment datagram (copied in, as by [`Reassembler::offer_head`]).
    pub fn offer_fragment(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Offered, WireError> {
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
            return Ok(Offered::Duplicate);
        }
        let i = self.entry_index(id, now_ms);
        let entry = &mut self.entries[i];
        if entry.total != 0 && entry.total != total {
            return Err(WireError::invalid(
                "fragment total",
                "disagrees with earlier fragments",
            ));
        }
        if entry.has(number as usize) {
            return Ok(Offered::Duplicate);
        }
        entry.total = total;
        entry.store(number as usize, frag.data());
        self.finish_if_complete(i, now_ms)
    }

    fn was_completed(&self, id: u64) -> bool {
        self.completed.iter().any(|&(c, _)| c == id)
    }

    /// Index of the entry for `id`, starting one (in a free slot, a new one while under the
    /// limit, else the oldest's) if there is none.
    fn entry_index(&mut self, id: u64, now_ms: u64) -> usize {
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.in_use && e.packet_id == id)
        {
            return i;
        }
        let i = match self.entries.iter().position(|e| !e.in_use) {
            Some(free) => free,
            None if self.entries.len() < RX_QUEUE_SIZE => {
                self.entries.push(Entry::default());
                self.entries.len() - 1
            }
            None => self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.created_ms)
                .map_or(0, |(i, _)| i),
        };
        self.entries[i].start(id, now_ms);
        self.next_expiry_ms = self
            .next_expiry_ms
            .min(now_ms.saturating_add(RX_QUEUE_TIMEOUT_MS));
        i
    }

    fn finish_if_complete(&mut self, i: usize, now_ms: u64) -> Result<Offered, WireError> {
        let entry = &self.entries[i];
        if !entry.is_complete() {
            return Ok(Offered::Pending);
        }
        if self.completed.len() >= RX_QUEUE_SIZE {
            self.completed.pop_front();
        }
        self.completed.push_back((entry.packet_id, now_ms));
        self.next_expiry_ms = self
            .next_expiry_ms
            .min(now_ms.saturating_add(RX_QUEUE_TIMEOUT_MS));
        Ok(Offered::Complete(Whole(i)))
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
        // 2,066 bytes and one fragment header over two datagrams of one size.
        assert_eq!(
            pieces.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1041, 1041]
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
    fn datagrams_are_of_one_size_within_the_mtu_and_reassemble() {
        for mtu in [576, 1432, 1500] {
            let largest = (mtu + 6 * (mtu - FRAGMENT_HEADER_LEN)).min(MAX_PACKET_LEN);
            for len in (mtu - 2..=largest).step_by(7).chain([mtu + 1, largest]) {
                let p = packet(len, len > mtu);
                let mut out = vec![0u8; datagrams_len(len, mtu).unwrap()];
                let layout = write_datagrams(&p, mtu, &mut out).unwrap();
                let pieces: Vec<&[u8]> = layout.datagrams(&out).collect();
                assert_eq!(pieces.len(), piece_count(len, mtu).unwrap(), "{mtu}/{len}");
                assert_eq!(layout.count, pieces.len());
                assert!(layout.segment_size <= mtu, "{mtu}/{len}");
                let (last, rest) = pieces.split_last().unwrap();
                assert!(rest.iter().all(|d| d.len() == layout.segment_size));
                assert!(!last.is_empty() && last.len() <= layout.segment_size);
                // Even: a packet of even length over two datagrams fills both exactly.
                if pieces.len() == 2 && (len + FRAGMENT_HEADER_LEN).is_multiple_of(2) {
                    assert_eq!(last.len(), layout.segment_size, "{mtu}/{len}");
                }
                if pieces.len() == 1 {
                    assert_eq!(pieces[0], &p[..]);
                    continue;
                }
                let mut q = Reassembler::new();
                let mut whole = None;
                for (i, d) in pieces.iter().enumerate().rev() {
                    let offered = if i == 0 {
                        q.on_head(0, d)
                    } else {
                        q.on_fragment(0, d)
                    };
                    if let Reassembly::Complete(p) = offered.unwrap() {
                        whole = Some(p);
                    }
                }
                assert_eq!(whole.as_deref(), Some(&p[..]), "{mtu}/{len}");
            }
        }
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
