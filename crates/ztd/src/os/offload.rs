//! TAP offloads as pure byte functions: the `virtio_net_hdr` that prefixes every read and
//! write of a TAP opened with `IFF_VNET_HDR`, the cutting of a TCP super-frame the kernel hands
//! us (TSO) into frames of the network's MTU, the completion of a checksum the kernel left
//! partial, and the coalescing of received in-order TCP segments of one flow into one
//! super-frame the kernel takes in one write (the receive half, like GRO).
//!
//! ```text
//!   TAP read:  [vnet hdr][Ethernet][IP][TCP][payload up to ~64 KB]
//!                 └─ GSO_TCPV4/6 ─> TsoSuperFrame::write_segment(i) ─> frames of gso_size payload
//!                 └─ NEEDS_CSUM   ─> complete_checksum (in place)
//!   TAP write: frames of one receive batch ─> Coalescer ─> [vnet hdr GSO_TCPV4/6][super-frame]
//!                                                      or [zero vnet hdr][frame as received]
//! ```
//!
//! The TAP carries Ethernet frames, so every offset here (`csum_start`, `hdr_len`) counts from
//! the first byte of the Ethernet header. Nothing here allocates after construction: segments
//! are written into the caller's buffer and the coalescer's slots are allocated once. Bad input
//! (a header the kernel would never send, a truncated frame) is an [`OffloadError`], never a
//! panic. This is the OS edge of DESIGN.md's data path: no ZeroTier protocol rule lives here.

/// Size of the `virtio_net_hdr` we ask the TAP for (`TUNSETVNETHDRSZ`). The 12-byte variant
/// adds `num_buffers`, which only a virtio device with mergeable receive buffers uses; a TAP
/// ignores it, so the plain 10-byte header is all we need.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds only the
/// pseudo-header sum; whoever handles the frame must complete it.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`, or-ed into the GSO type: the super-frame carries CWR, which
/// belongs on its first segment only.
pub const GSO_ECN: u8 = 0x80;

const ETHERNET_HEADER_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPV6_HEADER_LEN: usize = 40;
const TCP_MIN_HEADER_LEN: usize = 20;
/// Where a TCP header keeps its checksum (`csum_offset` of a TCP frame).
const TCP_CHECKSUM_OFFSET: usize = 16;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;
/// Largest IPv4 total length / IPv6 payload length, the ceiling of a coalesced super-frame.
const MAX_IP_LEN: usize = 65_535;

/// Why a frame or header could not be handled (the frame is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("read shorter than the {VNET_HDR_LEN}-byte vnet header")]
    ShortHeader,
    #[error("unsupported GSO type {0:#x}")]
    UnsupportedGso(u8),
    #[error("GSO frame with segment size 0")]
    ZeroSegmentSize,
    #[error("checksum position {start}+{offset} outside a {len}-byte frame")]
    ChecksumOutOfFrame {
        start: usize,
        offset: usize,
        len: usize,
    },
    #[error("GSO frame is not TCP over IPv4/IPv6 as its type says: {0}")]
    NotTcp(&'static str),
    #[error("GSO frame truncated: {0}")]
    Truncated(&'static str),
    #[error("segment buffer of {have} bytes, {need} needed")]
    SegmentBufferTooSmall { have: usize, need: usize },
}

/// The `virtio_net_hdr` (legacy layout: the TAP uses the host's byte order unless told
/// otherwise with `TUNSETVNETLE/BE`, which we do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHeader {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of all headers (Ethernet through TCP), a hint.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHeader {
    /// The header of a frame that needs nothing done (what plain frames are written with).
    pub const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

    /// The header at the start of `read`.
    pub fn parse(read: &[u8]) -> Result<VnetHeader, OffloadError> {
        let b: &[u8; VNET_HDR_LEN] = read
            .get(..VNET_HDR_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(OffloadError::ShortHeader)?;
        let field = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Ok(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: field(2),
            gso_size: field(4),
            csum_start: field(6),
            csum_offset: field(8),
        })
    }

    /// The header's bytes.
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The GSO type without the ECN bit.
    pub fn gso_kind(&self) -> u8 {
        self.gso_type & !GSO_ECN
    }
}

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last byte is padded
/// with zero), added to `sum`; fold with [`fold`]. The hot part of cutting and coalescing
/// segments, so it sums native-endian 32-bit words (which the compiler vectorises) and swaps
/// the folded result once: the one's-complement sum commutes with byte swapping (RFC 1071).
/// A 64-bit accumulator of 32-bit words cannot overflow for any frame.
pub fn checksum_add(sum: u64, data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_ne_bytes(tail));
    let folded = fold(acc);
    sum + u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    })
}

/// The Internet checksum (RFC 1071) of `bytes`: the complemented one's-complement sum, as
/// an IPv4 header or an ICMP message carries it.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !fold(checksum_add(0, bytes))
}

/// Folds a sum from [`checksum_add`] into 16 bits (not complemented).
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Completes the checksum of a frame read with `F_NEEDS_CSUM`: the field at
/// `csum_start + csum_offset` holds the pseudo-header sum, and the checksum covers everything
/// from `csum_start` to the end of the frame. A result of 0 is written as 0xffff (the kernel
/// does the same: for UDP, 0 would mean "no checksum").
pub fn complete_checksum(
    frame: &mut [u8],
    csum_start: usize,
    csum_offset: usize,
) -> Result<(), OffloadError> {
    let at = csum_start + csum_offset;
    if at + 2 > frame.len() {
        return Err(OffloadError::ChecksumOutOfFrame {
            start: csum_start,
            offset: csum_offset,
            len: frame.len(),
        });
    }
    let sum = !fold(checksum_add(0, &frame[csum_start..]));
    let sum = if sum == 0 { 0xffff } else { sum };
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Where the layers of an Ethernet frame carrying TCP start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpLayout {
    /// Offset of the IP header.
    ip: usize,
    ipv6: bool,
    /// Offset of the TCP header.
    tcp: usize,
    /// Offset of the payload (end of the TCP header).
    payload: usize,
}

impl TcpLayout {
    /// The sum of the pseudo-header for a TCP segment of `tcp_len` bytes (header + payload).
    fn pseudo_header_sum(&self, frame: &[u8], tcp_len: usize) -> u64 {
        let addresses = if self.ipv6 {
            &frame[self.ip + 8..self.ip + 40]
        } else {
            &frame[self.ip + 12..self.ip + 20]
        };
        checksum_add(IPPROTO_TCP as u64 + tcp_len as u64, addresses)
    }
}

/// The IP header offset and whether it is IPv6, skipping up to two VLAN tags; `None` for
/// anything but IPv4/IPv6.
fn ip_offset(frame: &[u8]) -> Option<(usize, bool)> {
    let mut at = ETHERNET_HEADER_LEN - 2;
    for _ in 0..3 {
        let ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match ethertype {
            ETHERTYPE_IPV4 => return Some((at + 2, false)),
            ETHERTYPE_IPV6 => return Some((at + 2, true)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ => at += 4,
            _ => return None,
        }
    }
    None
}

/// A TCP super-frame read with `GSO_TCPV4`/`GSO_TCPV6`, validated once, cut into segments by
/// [`TsoSuperFrame::write_segment`].
#[derive(Debug, Clone, Copy)]
pub struct TsoSuperFrame {
    layout: TcpLayout,
    gso_size: usize,
    payload_len: usize,
}

impl TsoSuperFrame {
    /// Checks that `frame` (the read after the vnet header) is what `header` says: TCP over
    /// IPv4 or IPv6 with its TCP header at `csum_start`, headers complete.
    pub fn parse(header: &VnetHeader, frame: &[u8]) -> Result<TsoSuperFrame, OffloadError> {
        let ipv6 = match header.gso_kind() {
            GSO_TCPV4 => false,
            GSO_TCPV6 => true,
            other => return Err(OffloadError::UnsupportedGso(other)),
        };
        if header.gso_size == 0 {
            return Err(OffloadError::ZeroSegmentSize);
        }
        let (ip, frame_is_v6) =
            ip_offset(frame).ok_or(OffloadError::NotTcp("ethertype is not IPv4/IPv6"))?;
        if frame_is_v6 != ipv6 {
            return Err(OffloadError::NotTcp("IP version differs from the GSO type"));
        }
        let tcp = header.csum_start as usize;
        if ipv6 {
            if frame.len() < ip + IPV6_HEADER_LEN {
                return Err(OffloadError::Truncated("IPv6 header"));
            }
            // Extension headers may sit between; the kernel points csum_start past them.
            if tcp < ip + IPV6_HEADER_LEN {
                return Err(OffloadError::NotTcp("csum_start inside the IPv6 header"));
            }
        } else {
            let ihl = (*frame
                .get(ip)
                .ok_or(OffloadError::Truncated("IPv4 header"))?
                & 0x0f) as usize
                * 4;
            if ihl < 20 || frame.len() < ip + ihl {
                return Err(OffloadError::Truncated("IPv4 header"));
            }
            if frame[ip + 9] != IPPROTO_TCP {
                return Err(OffloadError::NotTcp("IPv4 protocol is not TCP"));
            }
            if tcp != ip + ihl {
                return Err(OffloadError::NotTcp(
                    "csum_start is not after the IPv4 header",
                ));
            }
        }
        let data_offset = frame
            .get(tcp + 12)
            .ok_or(OffloadError::Truncated("TCP header"))?;
        let tcp_header_len = (data_offset >> 4) as usize * 4;
        let payload = tcp + tcp_header_len;
        if tcp_header_len < TCP_MIN_HEADER_LEN || frame.len() < payload {
            return Err(OffloadError::Truncated("TCP header"));
        }
        Ok(TsoSuperFrame {
            layout: TcpLayout {
                ip,
                ipv6,
                tcp,
                payload,
            },
            gso_size: header.gso_size as usize,
            payload_len: frame.len() - payload,
        })
    }

    /// How many frames the super-frame becomes.
    pub fn segments(&self) -> usize {
        self.payload_len.div_ceil(self.gso_size).max(1)
    }

    /// The longest segment, for sizing the caller's buffer.
    pub fn max_segment_len(&self) -> usize {
        self.layout.payload + self.gso_size.min(self.payload_len)
    }

    /// Writes segment `index` of `frame` (the same bytes given to [`TsoSuperFrame::parse`])
    /// into `out` and returns its length: the headers copied with IPv4 total length, ID
    /// (+1 per segment) and header checksum, or IPv6 payload length, set for this segment;
    /// the TCP sequence number advanced; FIN and PSH kept only on the last segment and CWR
    /// only on the first; and the full TCP checksum computed.
    pub fn write_segment(
        &self,
        frame: &[u8],
        index: usize,
        out: &mut [u8],
    ) -> Result<usize, OffloadError> {
        let l = self.layout;
        let count = self.segments();
        if index >= count || frame.len() != l.payload + self.payload_len {
            return Err(OffloadError::Truncated("segment index or frame changed"));
        }
        let start = l.payload + index * self.gso_size;
        let end = (start + self.gso_size).min(frame.len());
        let len = l.payload + (end - start);
        if out.len() < len {
            return Err(OffloadError::SegmentBufferTooSmall {
                have: out.len(),
                need: len,
            });
        }
        let out = &mut out[..len];
        out[..l.payload].copy_from_slice(&frame[..l.payload]);
        out[l.payload..].copy_from_slice(&frame[start..end]);
        if l.ipv6 {
            let payload_len = (len - l.ip - IPV6_HEADER_LEN) as u16;
            out[l.ip + 4..l.ip + 6].copy_from_slice(&payload_len.to_be_bytes());
        } else {
            let total = (len - l.ip) as u16;
            out[l.ip + 2..l.ip + 4].copy_from_slice(&total.to_be_bytes());
            let id = u16::from_be_bytes([out[l.ip + 4], out[l.ip + 5]]).wrapping_add(index as u16);
            out[l.ip + 4..l.ip + 6].copy_from_slice(&id.to_be_bytes());
            out[l.ip + 10..l.ip + 12].fill(0);
            let sum = !fold(checksum_add(0, &out[l.ip..l.tcp]));
            out[l.ip + 10..l.ip + 12].copy_from_slice(&sum.to_be_bytes());
        }
        let seq = u32::from_be_bytes([
            out[l.tcp + 4],
            out[l.tcp + 5],
            out[l.tcp + 6],
            out[l.tcp + 7],
        ])
        .wrapping_add((index * self.gso_size) as u32);
        out[l.tcp + 4..l.tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = out[l.tcp + 13];
        if index + 1 < count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if index > 0 {
            flags &= !TCP_CWR;
        }
        out[l.tcp + 13] = flags;
        let checksum = l.tcp + TCP_CHECKSUM_OFFSET;
        out[checksum..checksum + 2].fill(0);
        let sum = checksum_add(l.pseudo_header_sum(out, len - l.tcp), &out[l.tcp..]);
        out[checksum..checksum + 2].copy_from_slice(&(!fold(sum)).to_be_bytes());
        Ok(len)
    }
}

/// What identifies a TCP flow for coalescing, and what must stay equal between its segments:
/// everything in the headers but lengths, IPv4 ID, header checksum, sequence number, TCP
/// checksum and PSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    ipv6: bool,
    /// The Ethernet header (and VLAN tags) as one value: 14..22 bytes, padded.
    link: [u8; 22],
    /// Source and destination address (IPv4 in the first 8 bytes).
    addresses: [u8; 32],
    /// Source and destination port.
    ports: [u8; 4],
}

/// A received TCP segment that may be coalesced.
#[derive(Debug, Clone, Copy)]
struct Segment {
    key: FlowKey,
    layout: TcpLayout,
    seq: u32,
    flags: u8,
    ipv4_id: u16,
    payload_len: usize,
}

/// A TCP segment fit for coalescing: an IPv4 (no options, not a fragment) or IPv6 (no
/// extension headers) TCP segment with payload, whose TCP checksum is right (a frame with a
/// bad checksum is written alone, and the kernel drops it as it would without offloads), and
/// with no SYN, RST, URG, FIN or CWR (those are written alone, in order).
fn coalescable(frame: &[u8]) -> Option<Segment> {
    let (ip, ipv6) = ip_offset(frame)?;
    let (tcp, ip_end) = if ipv6 {
        let header = frame.get(ip..ip + IPV6_HEADER_LEN)?;
        if header[6] != IPPROTO_TCP {
            return None;
        }
        let payload_len = u16::from_be_bytes([header[4], header[5]]) as usize;
        (ip + IPV6_HEADER_LEN, ip + IPV6_HEADER_LEN + payload_len)
    } else {
        let header = frame.get(ip..ip + 20)?;
        let fragment = u16::from_be_bytes([header[6], header[7]]);
        // Version 4, no options, TCP, neither MF nor a fragment offset.
        if header[0] != 0x45 || header[9] != IPPROTO_TCP || fragment & 0x3fff != 0 {
            return None;
        }
        let total = u16::from_be_bytes([header[2], header[3]]) as usize;
        (ip + 20, ip + total)
    };
    // Ethernet padding or a length that disagrees with the frame: leave it to the kernel.
    if ip_end != frame.len() {
        return None;
    }
    let tcp_header_len = (*frame.get(tcp + 12)? >> 4) as usize * 4;
    let payload = tcp + tcp_header_len;
    if tcp_header_len < TCP_MIN_HEADER_LEN || payload >= frame.len() {
        return None;
    }
    let flags = frame[tcp + 13];
    if flags & (TCP_SYN | TCP_RST | TCP_URG | TCP_FIN | TCP_CWR) != 0 {
        return None;
    }
    let layout = TcpLayout {
        ip,
        ipv6,
        tcp,
        payload,
    };
    let sum = checksum_add(
        layout.pseudo_header_sum(frame, frame.len() - tcp),
        &frame[tcp..],
    );
    if fold(sum) != 0xffff {
        return None;
    }
    let mut key = FlowKey {
        ipv6,
        link: [0; 22],
        addresses: [0; 32],
        ports: [0; 4],
    };
    key.link[..ip].copy_from_slice(&frame[..ip]);
    let addresses = if ipv6 {
        &frame[ip + 8..ip + 40]
    } else {
        &frame[ip + 12..ip + 20]
    };
    key.addresses[..addresses.len()].copy_from_slice(addresses);
    key.ports.copy_from_slice(&frame[tcp..tcp + 4]);
    Some(Segment {
        key,
        layout,
        seq: u32::from_be_bytes([
            frame[tcp + 4],
            frame[tcp + 5],
            frame[tcp + 6],
            frame[tcp + 7],
        ]),
        flags,
        ipv4_id: if ipv6 {
            0
        } else {
            u16::from_be_bytes([frame[ip + 4], frame[ip + 5]])
        },
        payload_len: frame.len() - payload,
    })
}

/// The header bytes that must be equal between segments of one super-frame, apart from the
/// fields that change per segment: for IPv4 the TOS, flags (DF) and TTL; for IPv6 the traffic
/// class, flow label and hop limit; for TCP the ACK number, data offset, flags but PSH, window
/// and urgent pointer, and every option byte.
fn same_headers(held: &[u8], next: &[u8], l: &TcpLayout) -> bool {
    let ip_same = if l.ipv6 {
        held[l.ip..l.ip + 4] == next[l.ip..l.ip + 4] && held[l.ip + 7] == next[l.ip + 7]
    } else {
        held[l.ip + 1] == next[l.ip + 1]
            && held[l.ip + 6] == next[l.ip + 6]
            && held[l.ip + 8] == next[l.ip + 8]
    };
    let t = l.tcp;
    ip_same
        && held[t + 8..t + 13] == next[t + 8..t + 13]
        && held[t + 13] & !TCP_PSH == next[t + 13] & !TCP_PSH
        && held[t + 14..t + 16] == next[t + 14..t + 16]
        && held[t + 18..l.payload] == next[t + 18..l.payload]
}

/// A super-frame being built: the first segment's headers followed by the payloads so far.
struct Slot {
    buf: Vec<u8>,
    len: usize,
    /// Segments in it (0: the slot is free).
    segments: usize,
    first: Segment,
    next_seq: u32,
    next_ipv4_id: u16,
    /// A shorter segment or PSH ended it: nothing more may follow.
    closed: bool,
    /// When it was started, to flush the oldest first.
    age: u64,
}

/// Coalesces the TCP segments of one receive batch into super-frames (see the module docs).
/// Frames come in with [`Coalescer::push`], and whatever is ready comes out through the
/// `write` callback as a vnet header and a frame, in each flow's order; call
/// [`Coalescer::flush`] at the end of the batch.
pub struct Coalescer {
    slots: Vec<Slot>,
    started: u64,
}

/// The largest super-frame a slot holds: Ethernet with two VLAN tags, an IPv6 header and
/// 64 KB of IP payload.
const SLOT_CAPACITY: usize = ETHERNET_HEADER_LEN + 8 + IPV6_HEADER_LEN + MAX_IP_LEN;

impl Coalescer {
    /// A coalescer for up to `flows` flows at once, its buffers allocated now.
    pub fn new(flows: usize) -> Coalescer {
        let empty = Segment {
            key: FlowKey {
                ipv6: false,
                link: [0; 22],
                addresses: [0; 32],
                ports: [0; 4],
            },
            layout: TcpLayout {
                ip: 0,
                ipv6: false,
                tcp: 0,
                payload: 0,
            },
            seq: 0,
            flags: 0,
            ipv4_id: 0,
            payload_len: 0,
        };
        Coalescer {
            slots: (0..flows.max(1))
                .map(|_| Slot {
                    buf: vec![0; SLOT_CAPACITY],
                    len: 0,
                    segments: 0,
                    first: empty,
                    next_seq: 0,
                    next_ipv4_id: 0,
                    closed: false,
                    age: 0,
                })
                .collect(),
            started: 0,
        }
    }

    /// Offers one received frame. It is held to be coalesced, or written now (after whatever
    /// is held of its flow, to keep the flow's order).
    pub fn push(&mut self, frame: &[u8], write: &mut impl FnMut(&[u8; VNET_HDR_LEN], &[u8])) {
        let Some(segment) = coalescable(frame) else {
            // A frame of a held flow (a FIN, a pure ACK) must not overtake its segments.
            if let Some(index) = self.slot_of_frame(frame) {
                self.flush_slot(index, write);
            }
            write(&VnetHeader::PLAIN, frame);
            return;
        };
        if let Some(index) = self
            .slots
            .iter()
            .position(|s| s.segments > 0 && s.first.key == segment.key)
        {
            if self.fits(index, &segment, frame) {
                self.append(index, &segment, frame);
                return;
            }
            self.flush_slot(index, write);
            self.start(index, segment, frame);
            return;
        }
        let index = match self.slots.iter().position(|s| s.segments == 0) {
            Some(free) => free,
            None => {
                let oldest = (0..self.slots.len())
                    .min_by_key(|&i| self.slots[i].age)
                    .unwrap_or(0);
                self.flush_slot(oldest, write);
                oldest
            }
        };
        self.start(index, segment, frame);
    }

    /// Writes everything held (the end of a receive batch).
    pub fn flush(&mut self, write: &mut impl FnMut(&[u8; VNET_HDR_LEN], &[u8])) {
        // Oldest first: flows are independent, but the order they started in is the fairest.
        while let Some(index) = (0..self.slots.len())
            .filter(|&i| self.slots[i].segments > 0)
            .min_by_key(|&i| self.slots[i].age)
        {
            self.flush_slot(index, write);
        }
    }

    /// The slot holding the flow of a frame that cannot be coalesced, if any.
    fn slot_of_frame(&self, frame: &[u8]) -> Option<usize> {
        let (ip, ipv6) = ip_offset(frame)?;
        let (addresses, ports) = if ipv6 {
            (frame.get(ip + 8..ip + 40)?, frame.get(ip + 40..ip + 44)?)
        } else {
            let ihl = (frame.get(ip)? & 0x0f) as usize * 4;
            (
                frame.get(ip + 12..ip + 20)?,
                frame.get(ip + ihl..ip + ihl + 4)?,
            )
        };
        self.slots.iter().position(|s| {
            let k = &s.first.key;
            s.segments > 0
                && k.ipv6 == ipv6
                && k.addresses[..addresses.len()] == *addresses
                && k.ports == *ports
        })
    }

    fn fits(&self, index: usize, segment: &Segment, frame: &[u8]) -> bool {
        let slot = &self.slots[index];
        let first = &slot.first;
        !slot.closed
            && segment.layout == first.layout
            && segment.seq == slot.next_seq
            && segment.payload_len <= first.payload_len
            && (first.layout.ipv6 || segment.ipv4_id == slot.next_ipv4_id)
            && slot.len + segment.payload_len - first.layout.ip
                <= MAX_IP_LEN
                    + if first.layout.ipv6 {
                        IPV6_HEADER_LEN
                    } else {
                        0
                    }
            && same_headers(&slot.buf[..first.layout.payload], frame, &first.layout)
    }

    fn start(&mut self, index: usize, segment: Segment, frame: &[u8]) {
        self.started += 1;
        let slot = &mut self.slots[index];
        slot.buf[..frame.len()].copy_from_slice(frame);
        slot.len = frame.len();
        slot.segments = 1;
        slot.first = segment;
        slot.next_seq = segment.seq.wrapping_add(segment.payload_len as u32);
        slot.next_ipv4_id = segment.ipv4_id.wrapping_add(1);
        slot.closed = segment.flags & TCP_PSH != 0;
        slot.age = self.started;
    }

    fn append(&mut self, index: usize, segment: &Segment, frame: &[u8]) {
        let slot = &mut self.slots[index];
        let payload = &frame[segment.layout.payload..];
        slot.buf[slot.len..slot.len + payload.len()].copy_from_slice(payload);
        slot.len += payload.len();
        slot.segments += 1;
        slot.next_seq = slot.next_seq.wrapping_add(payload.len() as u32);
        slot.next_ipv4_id = slot.next_ipv4_id.wrapping_add(1);
        let tcp = segment.layout.tcp;
        slot.buf[tcp + 13] |= segment.flags & TCP_PSH;
        slot.closed = segment.flags & TCP_PSH != 0 || segment.payload_len < slot.first.payload_len;
    }

    /// Writes slot `index` and frees it: a lone segment as it came, several as one GSO
    /// super-frame whose lengths are the sum and whose TCP checksum is left partial
    /// (`NEEDS_CSUM`, the pseudo-header sum in the field) for the kernel.
    fn flush_slot(&mut self, index: usize, write: &mut impl FnMut(&[u8; VNET_HDR_LEN], &[u8])) {
        let slot = &mut self.slots[index];
        let segments = std::mem::take(&mut slot.segments);
        if segments == 0 {
            return;
        }
        let frame = &mut slot.buf[..slot.len];
        if segments == 1 {
            write(&VnetHeader::PLAIN, frame);
            return;
        }
        let l = slot.first.layout;
        let len = frame.len();
        let gso_type = if l.ipv6 {
            let payload_len = (len - l.ip - IPV6_HEADER_LEN) as u16;
            frame[l.ip + 4..l.ip + 6].copy_from_slice(&payload_len.to_be_bytes());
            GSO_TCPV6
        } else {
            let total = (len - l.ip) as u16;
            frame[l.ip + 2..l.ip + 4].copy_from_slice(&total.to_be_bytes());
            frame[l.ip + 10..l.ip + 12].fill(0);
            let sum = !fold(checksum_add(0, &frame[l.ip..l.tcp]));
            frame[l.ip + 10..l.ip + 12].copy_from_slice(&sum.to_be_bytes());
            GSO_TCPV4
        };
        let partial = fold(l.pseudo_header_sum(frame, len - l.tcp));
        let checksum = l.tcp + TCP_CHECKSUM_OFFSET;
        frame[checksum..checksum + 2].copy_from_slice(&partial.to_be_bytes());
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: l.payload as u16,
            gso_size: slot.first.payload_len as u16,
            csum_start: l.tcp as u16,
            csum_offset: TCP_CHECKSUM_OFFSET as u16,
        };
        write(&header.emit(), frame);
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // the counting allocator of the allocation test
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [0x32, 0x11, 0x22, 0x33, 0x44, 0x55];
    const MAC_B: [u8; 6] = [0x32, 0x66, 0x77, 0x88, 0x99, 0xaa];
    const SEQ: u32 = 0xffff_f000; // wraps inside the tests' super-frames
    const ACK: u32 = 0x1234_5678;

    /// An Ethernet frame with a TCP segment (with a 12-byte timestamp option), IPv4 ID `id`
    /// (DF set) or IPv6, all lengths and checksums right.
    fn tcp_frame(ipv6: bool, seq: u32, id: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&MAC_A);
        let tcp_len = 32 + payload.len();
        if ipv6 {
            f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            f.extend_from_slice(&[IPPROTO_TCP, 64]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&[0x40, 0, 64, IPPROTO_TCP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            let sum = !fold(checksum_add(0, &f[14..34]));
            f[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        let tcp = f.len();
        f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ACK.to_be_bytes());
        f.extend_from_slice(&[0x80, flags | 0x10, 0x01, 0xf5, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        f.extend_from_slice(payload);
        let ip = 14;
        let layout = TcpLayout {
            ip,
            ipv6,
            tcp,
            payload: tcp + 32,
        };
        let sum = !fold(checksum_add(
            layout.pseudo_header_sum(&f, tcp_len),
            &f[tcp..],
        ));
        f[tcp + 16..tcp + 18].copy_from_slice(&sum.to_be_bytes());
        f
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn tcp_offset(ipv6: bool) -> usize {
        if ipv6 {
            54
        } else {
            34
        }
    }

    /// The TCP checksum of `frame` verifies (and the IPv4 header checksum).
    fn checksums_ok(frame: &[u8]) -> bool {
        let (ip, ipv6) = ip_offset(frame).unwrap();
        let tcp = tcp_offset(ipv6);
        let layout = TcpLayout {
            ip,
            ipv6,
            tcp,
            payload: tcp + 32,
        };
        let ip_ok = ipv6 || fold(checksum_add(0, &frame[ip..tcp])) == 0xffff;
        let sum = checksum_add(
            layout.pseudo_header_sum(frame, frame.len() - tcp),
            &frame[tcp..],
        );
        ip_ok && fold(sum) == 0xffff
    }

    /// A TSO read of `frame`: its checksum field left partial, as the kernel hands it over.
    fn tso_read(ipv6: bool, gso_size: u16, mut frame: Vec<u8>) -> (VnetHeader, Vec<u8>) {
        let tcp = tcp_offset(ipv6);
        let layout = TcpLayout {
            ip: 14,
            ipv6,
            tcp,
            payload: tcp + 32,
        };
        let partial = fold(layout.pseudo_header_sum(&frame, frame.len() - tcp));
        frame[tcp + 16..tcp + 18].copy_from_slice(&partial.to_be_bytes());
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: if ipv6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: (tcp + 32) as u16,
            gso_size,
            csum_start: tcp as u16,
            csum_offset: 16,
        };
        (header, frame)
    }

    fn segments_of(header: &VnetHeader, frame: &[u8]) -> Vec<Vec<u8>> {
        let tso = TsoSuperFrame::parse(header, frame).unwrap();
        let mut out = vec![0u8; tso.max_segment_len()];
        (0..tso.segments())
            .map(|i| {
                let len = tso.write_segment(frame, i, &mut out).unwrap();
                out[..len].to_vec()
            })
            .collect()
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(checksum_add(0, &data)), 0xddf2);
        // An odd length pads with zero; pieces of even length add up to the whole.
        assert_eq!(
            fold(checksum_add(0, &data[..7])),
            fold(checksum_add(
                0,
                &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0x00]
            ))
        );
        assert_eq!(
            fold(checksum_add(checksum_add(0, &data[..2]), &data[2..])),
            0xddf2
        );
    }

    #[test]
    fn vnet_header_round_trips_and_a_short_read_is_an_error() {
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 86,
            gso_size: 1428,
            csum_start: 54,
            csum_offset: 16,
        };
        assert_eq!(VnetHeader::parse(&header.emit()), Ok(header));
        assert_eq!(header.gso_kind(), GSO_TCPV6);
        assert_eq!(VnetHeader::parse(&[0; 9]), Err(OffloadError::ShortHeader));
        assert_eq!(
            VnetHeader::parse(&VnetHeader::PLAIN),
            Ok(VnetHeader::default())
        );
    }

    #[test]
    fn a_partial_checksum_is_completed_in_place() {
        for ipv6 in [false, true] {
            for len in [0, 1, 999, 1000] {
                let good = tcp_frame(ipv6, 1, 1, TCP_PSH, &payload(len));
                let (header, mut frame) = tso_read(ipv6, 1400, good.clone());
                assert_ne!(frame, good);
                complete_checksum(
                    &mut frame,
                    header.csum_start.into(),
                    header.csum_offset.into(),
                )
                .unwrap();
                assert_eq!(frame, good, "ipv6={ipv6} len={len}");
            }
        }
        let mut short = [0u8; 20];
        assert_eq!(
            complete_checksum(&mut short, 14, 6),
            Err(OffloadError::ChecksumOutOfFrame {
                start: 14,
                offset: 6,
                len: 20
            })
        );
    }

    #[test]
    fn a_super_frame_is_cut_into_segments_with_right_headers() {
        for ipv6 in [false, true] {
            // 3 full segments and an odd-length last one.
            let data = payload(3 * 1000 + 333);
            let (header, frame) = tso_read(
                ipv6,
                1000,
                tcp_frame(ipv6, SEQ, 0xfffe, TCP_PSH | TCP_FIN | TCP_CWR, &data),
            );
            let segments = segments_of(&header, &frame);
            assert_eq!(segments.len(), 4);
            let tcp = tcp_offset(ipv6);
            for (i, s) in segments.iter().enumerate() {
                let chunk = &data[i * 1000..((i + 1) * 1000).min(data.len())];
                let last = i == 3;
                let flags = (TCP_CWR * u8::from(i == 0)) | ((TCP_PSH | TCP_FIN) * u8::from(last));
                let id = 0xfffe_u16.wrapping_add(i as u16);
                let expected = tcp_frame(ipv6, SEQ.wrapping_add(i as u32 * 1000), id, flags, chunk);
                assert_eq!(s, &expected, "ipv6={ipv6} segment {i}");
                assert!(checksums_ok(s));
                assert_eq!(s[tcp + 13] & (TCP_PSH | TCP_FIN) != 0, last);
            }
        }
    }

    #[test]
    fn a_super_frame_with_exact_multiple_and_one_segment() {
        let (header, frame) = tso_read(false, 500, tcp_frame(false, 7, 1, TCP_PSH, &payload(1000)));
        let segments = segments_of(&header, &frame);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[1].len(), segments[0].len());
        let (header, frame) = tso_read(true, 1500, tcp_frame(true, 7, 1, 0, &payload(11)));
        let segments = segments_of(&header, &frame);
        assert_eq!(segments, vec![tcp_frame(true, 7, 1, 0, &payload(11))]);
    }

    #[test]
    fn bad_gso_reads_are_errors_not_panics() {
        let (header, frame) = tso_read(false, 1000, tcp_frame(false, 1, 1, 0, &payload(3000)));
        let mut udp = header;
        udp.gso_type = 5;
        assert_eq!(
            TsoSuperFrame::parse(&udp, &frame).unwrap_err(),
            OffloadError::UnsupportedGso(5)
        );
        let mut zero = header;
        zero.gso_size = 0;
        assert_eq!(
            TsoSuperFrame::parse(&zero, &frame).unwrap_err(),
            OffloadError::ZeroSegmentSize
        );
        let mut v6 = header;
        v6.gso_type = GSO_TCPV6;
        assert!(matches!(
            TsoSuperFrame::parse(&v6, &frame),
            Err(OffloadError::NotTcp(_))
        ));
        let mut inside = header;
        inside.csum_start = 20;
        assert!(matches!(
            TsoSuperFrame::parse(&inside, &frame),
            Err(OffloadError::NotTcp(_))
        ));
        // Every truncation of the headers is an error.
        for cut in 0..66 {
            assert!(
                TsoSuperFrame::parse(&header, &frame[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut not_ip = frame.clone();
        not_ip[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(TsoSuperFrame::parse(&header, &not_ip).is_err());
        // A segment buffer too small, an index past the end, a frame changed since parse.
        let tso = TsoSuperFrame::parse(&header, &frame).unwrap();
        let mut small = [0u8; 100];
        assert!(matches!(
            tso.write_segment(&frame, 0, &mut small),
            Err(OffloadError::SegmentBufferTooSmall { .. })
        ));
        let mut out = vec![0u8; tso.max_segment_len()];
        assert!(tso.write_segment(&frame, 3, &mut out).is_err());
        assert!(tso.write_segment(&frame[..100], 0, &mut out).is_err());
    }

    /// Runs `frames` through a coalescer as one batch; returns the (header, frame) writes.
    fn coalesce(flows: usize, frames: &[Vec<u8>]) -> Vec<(VnetHeader, Vec<u8>)> {
        let mut coalescer = Coalescer::new(flows);
        let mut written = Vec::new();
        let mut write = |h: &[u8; VNET_HDR_LEN], f: &[u8]| {
            written.push((VnetHeader::parse(h).unwrap(), f.to_vec()))
        };
        for f in frames {
            coalescer.push(f, &mut write);
        }
        coalescer.flush(&mut write);
        written
    }

    #[test]
    fn in_order_segments_become_one_super_frame_that_the_segmenter_undoes() {
        for ipv6 in [false, true] {
            let data = payload(4 * 1200 + 77);
            let (header, frame) = tso_read(ipv6, 1200, tcp_frame(ipv6, SEQ, 9, TCP_PSH, &data));
            let segments = segments_of(&header, &frame);
            let written = coalesce(4, &segments);
            assert_eq!(written.len(), 1, "ipv6={ipv6}");
            let (h, super_frame) = &written[0];
            assert_eq!(h.gso_kind(), if ipv6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(
                (h.flags, h.gso_size, h.csum_offset),
                (F_NEEDS_CSUM, 1200, 16)
            );
            assert_eq!(usize::from(h.csum_start), tcp_offset(ipv6));
            assert_eq!(usize::from(h.hdr_len), tcp_offset(ipv6) + 32);
            // What the kernel will do with it: the segments come back out unchanged.
            assert_eq!(segments_of(h, super_frame), segments);
            // And with the checksum completed it is the original super-frame.
            let mut whole = super_frame.clone();
            complete_checksum(&mut whole, h.csum_start.into(), 16).unwrap();
            assert_eq!(whole, tcp_frame(ipv6, SEQ, 9, TCP_PSH, &data));
        }
    }

    #[test]
    fn what_cannot_be_coalesced_is_written_alone_in_flow_order() {
        let p = payload(1000);
        let seg =
            |seq: u32, id: u16, flags: u8, data: &[u8]| tcp_frame(false, seq, id, flags, data);
        // A gap in sequence, a FIN, a pure ACK, a PSH that ends a run, a bad checksum.
        let mut bad = seg(5000, 5, 0, &p);
        bad[60] ^= 1;
        let frames = vec![
            seg(0, 0, 0, &p),
            seg(1000, 1, 0, &p),
            seg(3000, 2, 0, &p),       // gap: starts a new run
            seg(4000, 3, TCP_PSH, &p), // joins, and closes the run
            seg(5000, 4, 0, &[]),      // pure ACK: alone, after the run
            bad,                       // bad checksum: alone
            seg(6000, 6, TCP_FIN, &p), // FIN: alone
        ];
        let written = coalesce(4, &frames);
        let seqs: Vec<(u32, u8, usize)> = written
            .iter()
            .map(|(h, f)| {
                (
                    u32::from_be_bytes(f[38..42].try_into().unwrap()),
                    h.gso_type,
                    f.len(),
                )
            })
            .collect();
        assert_eq!(
            seqs,
            vec![
                (0, GSO_TCPV4, frames[0].len() + 1000),
                (3000, GSO_TCPV4, frames[0].len() + 1000),
                (5000, GSO_NONE, frames[4].len()),
                (5000, GSO_NONE, frames[5].len()),
                (6000, GSO_NONE, frames[6].len()),
            ]
        );
        assert_eq!(
            written[1].1[47] & TCP_PSH,
            TCP_PSH,
            "PSH kept on the run it ended"
        );
        assert_eq!(written[3].1, frames[5], "bad checksum written as received");
        // Not IP at all, and a segment with a different IPv4 ID step, stay as they are.
        let arp = vec![0u8; 60];
        let mut id_jump = vec![seg(0, 0, 0, &p), seg(1000, 7, 0, &p)];
        id_jump.insert(1, arp.clone());
        let written = coalesce(4, &id_jump);
        assert_eq!(written.len(), 3);
        assert!(written.iter().all(|(h, _)| h.gso_type == GSO_NONE));
        assert_eq!(
            written[0].1, arp,
            "ARP is written at once, the TCP flow waits"
        );
    }

    #[test]
    fn flows_are_kept_apart_and_a_longer_segment_starts_a_new_run() {
        let p = payload(800);
        let a = |seq: u32, id: u16| tcp_frame(false, seq, id, 0, &p);
        let b = |seq: u32| tcp_frame(true, seq, 0, 0, &p);
        let frames = vec![a(0, 0), b(100), a(800, 1), b(900), b(1700), a(1600, 2)];
        let written = coalesce(2, &frames);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].0.gso_type, GSO_TCPV4);
        assert_eq!(written[1].0.gso_type, GSO_TCPV6);
        // One slot for two flows: each flow is written whenever the other takes the slot, so
        // only B's two back-to-back segments meet.
        let written = coalesce(1, &frames);
        assert_eq!(written.len(), 5);
        assert_eq!(written[3].0.gso_type, GSO_TCPV6);
        // A segment longer than the run's segment size cannot join it.
        let written = coalesce(2, &[a(0, 0), tcp_frame(false, 800, 1, 0, &payload(900))]);
        assert_eq!(written.len(), 2);
        // A short segment ends a run: what follows starts another.
        let written = coalesce(
            2,
            &[
                a(0, 0),
                tcp_frame(false, 800, 1, 0, &payload(10)),
                a(810, 2),
            ],
        );
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].1.len(), frames[0].len() + 10);
    }

    #[test]
    fn a_run_stops_at_64_kilobytes_of_ip() {
        let p = payload(8000);
        let frames: Vec<Vec<u8>> = (0..10u16)
            .map(|i| tcp_frame(false, u32::from(i) * 8000, i, 0, &p))
            .collect();
        let written = coalesce(2, &frames);
        assert_eq!(written.len(), 2);
        assert!(written.iter().all(|(_, f)| f.len() - 14 <= MAX_IP_LEN));
        assert_eq!(segments_of(&written[0].0, &written[0].1).len(), 8);
    }

    #[test]
    fn malformed_frames_pass_through_without_panic() {
        let good = tcp_frame(false, 0, 0, 0, &payload(100));
        for cut in 0..good.len() {
            let written = coalesce(2, &[good[..cut].to_vec()]);
            assert_eq!(written, vec![(VnetHeader::default(), good[..cut].to_vec())]);
        }
        let good = tcp_frame(true, 0, 0, 0, &payload(100));
        for cut in 0..good.len() {
            assert_eq!(coalesce(2, &[good[..cut].to_vec()]).len(), 1);
        }
    }

    /// Counts the allocations of the current thread (unit tests run on several threads).
    struct CountingAllocator;

    thread_local! {
        static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; the thread-local
    // counter has a const initialiser and no destructor, so using it here never allocates.
    unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            std::alloc::System.alloc(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            std::alloc::System.dealloc(ptr, layout)
        }
        unsafe fn realloc(
            &self,
            ptr: *mut u8,
            layout: std::alloc::Layout,
            new_size: usize,
        ) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            std::alloc::System.realloc(ptr, layout, new_size)
        }
    }

    #[global_allocator]
    static GLOBAL: CountingAllocator = CountingAllocator;

    /// The steady state of both directions allocates nothing: a super-frame cut into the
    /// caller's buffer, and segments of two flows (and a frame that is not TCP) coalesced and
    /// written, batch after batch.
    #[test]
    fn segmenting_and_coalescing_allocate_nothing() {
        let (header, super_frame) = tso_read(
            false,
            1400,
            tcp_frame(false, SEQ, 1, TCP_PSH, &payload(40_000)),
        );
        let (other_header, other_frame) =
            tso_read(true, 1400, tcp_frame(true, 5, 0, 0, &payload(14_000)));
        let other = segments_of(&other_header, &other_frame);
        let arp = vec![0u8; 60];
        let mut segment = vec![0u8; 10_014];
        let mut coalescer = Coalescer::new(4);
        let mut written = 0usize;
        let batch = |coalescer: &mut Coalescer, segment: &mut [u8], written: &mut usize| {
            let mut write = |_: &[u8; VNET_HDR_LEN], f: &[u8]| *written += f.len();
            let tso = TsoSuperFrame::parse(&header, &super_frame).unwrap();
            for i in 0..tso.segments() {
                let len = tso.write_segment(&super_frame, i, segment).unwrap();
                coalescer.push(&segment[..len], &mut write);
                if let Some(o) = other.get(i) {
                    coalescer.push(o, &mut write);
                }
                coalescer.push(&arp, &mut write);
            }
            coalescer.flush(&mut write);
        };
        batch(&mut coalescer, &mut segment, &mut written);
        let before = ALLOCATIONS.with(std::cell::Cell::get);
        for _ in 0..10 {
            batch(&mut coalescer, &mut segment, &mut written);
        }
        assert_eq!(ALLOCATIONS.with(std::cell::Cell::get) - before, 0);
        assert!(written > 10 * 40_000);
    }
}
