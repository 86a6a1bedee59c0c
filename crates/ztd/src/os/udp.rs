//! The UDP edge's system calls that the socket crates do not offer: socket buffers larger
//! than `net.core.rmem_max`/`wmem_max` when the process may force them ([`set_buffer_sizes`]),
//! and the datagrams of many packets sent with one `sendmmsg` ([`SendBatch`]).
//!
//! A leaf that receives a fast TCP stream gets bursts of datagrams faster than one task
//! drains them; what the receive buffer cannot hold the kernel drops (`/proc/net/snmp`
//! `Udp: RcvbufErrors`), and TCP inside the tunnel backs off. The plain `SO_RCVBUF` is
//! capped by the sysctl (often 208 KiB); `SO_RCVBUFFORCE` (`CAP_NET_ADMIN`, which the
//! service has for its TAPs) is not. ztd never changes the sysctls itself.
//!
//! A TCP super-frame read from a TAP becomes 20–45 frames, each a packet of one or more
//! datagrams to the same peer. Sent one `sendmsg` per packet, the system call is paid per
//! frame; a [`SendBatch`] gathers the packets of a whole TAP batch in one caller-owned
//! buffer, and one `sendmmsg` per socket sends them in order, each message still cut by the
//! kernel into datagrams (UDP GSO, `UDP_SEGMENT`) where it can.
#![allow(unsafe_code)] // setsockopt for the FORCE options; sendmmsg with control messages
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// The buffer sizes a socket ended up with, as the kernel reports them (its accounting
/// counts bookkeeping too, so it shows twice what was asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSizes {
    pub receive: usize,
    pub send: usize,
    /// Whether the sizes were forced past the sysctl caps; `false` means the plain options
    /// were used (the process lacks `CAP_NET_ADMIN`).
    pub forced: bool,
}

/// Ask for `bytes` of receive and send buffer on `socket`: forced when the process may, else
/// the plain options, which the kernel caps at `net.core.rmem_max`/`wmem_max`. A refusal
/// of both is not an error (the kernel's defaults stay); what was granted is returned.
pub fn set_buffer_sizes(socket: &socket2::Socket, bytes: usize) -> io::Result<BufferSizes> {
    let forced = force(socket, libc::SO_RCVBUFFORCE, bytes).is_ok()
        & force(socket, libc::SO_SNDBUFFORCE, bytes).is_ok();
    if !forced {
        let _ = socket.set_recv_buffer_size(bytes);
        let _ = socket.set_send_buffer_size(bytes);
    }
    Ok(BufferSizes {
        receive: socket.recv_buffer_size()?,
        send: socket.send_buffer_size()?,
        forced,
    })
}

/// `setsockopt(SOL_SOCKET, option, bytes)` for an option socket2 has no setter for.
fn force(socket: &socket2::Socket, option: libc::c_int, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is open for the life of `socket`, and the option value is a
    // c_int whose size is passed alongside it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Most messages one [`SendBatch`] holds (one `sendmmsg`).
pub const SEND_BATCH_MESSAGES: usize = 64;

/// Most bytes one message holds: the UDP payload of one IPv4 datagram, which the kernel also
/// takes as the limit of a segmented send.
const MAX_MESSAGE_BYTES: usize = 65_507;

/// Control-message room for one `UDP_SEGMENT` (a `u16`), aligned as `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct SegmentControl([u8; 32]);

/// One message of a batch: `bytes[range]`, cut by the kernel into datagrams of
/// `segment_size` when it holds more than one (the last may be shorter).
#[derive(Debug, Clone)]
struct Message {
    range: Range<usize>,
    segment_size: usize,
    socket: usize,
    remote: SocketAddr,
    /// `remote` as the kernel takes it, converted once when the message is added.
    name: SockAddr,
}

/// Packets to send, gathered into one buffer allocated once: the caller writes a packet's
/// datagrams into [`SendBatch::free`], records them with [`SendBatch::push`], and at the end
/// of its batch sends runs of messages of one socket with [`SendBatch::send`], in the order
/// they were pushed (so each peer's packets keep their order).
pub struct SendBatch {
    bytes: Vec<u8>,
    used: usize,
    messages: Vec<Message>,
}

impl SendBatch {
    /// A batch of `capacity` bytes (at most [`SEND_BATCH_MESSAGES`] messages).
    pub fn new(capacity: usize) -> SendBatch {
        SendBatch {
            bytes: vec![0; capacity],
            used: 0,
            messages: Vec::with_capacity(SEND_BATCH_MESSAGES),
        }
    }

    /// The unused bytes, when at least `bytes` of them and room for `messages` more
    /// messages are left; `None` means: send the batch first.
    pub fn free(&mut self, bytes: usize, messages: usize) -> Option<&mut [u8]> {
        let fits = self.bytes.len() - self.used >= bytes
            && SEND_BATCH_MESSAGES - self.messages.len() >= messages;
        fits.then(|| &mut self.bytes[self.used..])
    }

    /// Record the `len` bytes just written at the start of [`SendBatch::free`]: datagrams of
    /// `segment_size` bytes (the last may be shorter) for `remote` from the caller's socket
    /// `socket`, at most `per_message` of them in one message (1 when the socket cannot
    /// segment), continuing the last message when they can. Returns `false`, recording
    /// nothing, if they do not fit (the caller sends the batch and writes them again).
    pub fn push(
        &mut self,
        socket: usize,
        remote: SocketAddr,
        len: usize,
        segment_size: usize,
        per_message: usize,
    ) -> bool {
        let segment_size = segment_size.clamp(1, len.max(1));
        let per_message = per_message
            .max(1)
            .min((MAX_MESSAGE_BYTES / segment_size).max(1));
        if self.extend_last(socket, remote, len, segment_size, per_message) {
            return true;
        }
        let message_len = segment_size.saturating_mul(per_message);
        let needed = len.div_ceil(message_len).max(1);
        if self.bytes.len() - self.used < len || SEND_BATCH_MESSAGES - self.messages.len() < needed
        {
            return false;
        }
        let name = SockAddr::from(remote);
        let end = self.used + len;
        let mut start = self.used;
        loop {
            let stop = (start + message_len).min(end);
            self.messages.push(Message {
                range: start..stop,
                segment_size,
                socket,
                remote,
                name: name.clone(),
            });
            start = stop;
            if start >= end {
                break;
            }
        }
        self.used = end;
        true
    }

    /// Append the `len` bytes just written to the last message when they continue it: same
    /// socket, destination and datagram size, the last message's datagrams all full, and
    /// room for them in one segmented send. Back-to-back packets to one peer then leave as
    /// one buffer the kernel cuts, not one message each.
    fn extend_last(
        &mut self,
        socket: usize,
        remote: SocketAddr,
        len: usize,
        segment_size: usize,
        per_message: usize,
    ) -> bool {
        let free = self.bytes.len() - self.used;
        let Some(last) = self.messages.last_mut() else {
            return false;
        };
        // Messages lie back to back, so the last one ends where the new bytes start.
        let held = last.range.len();
        let continues = last.socket == socket
            && last.remote == remote
            && last.segment_size == segment_size
            && held.is_multiple_of(segment_size)
            && (held + len).div_ceil(segment_size) <= per_message
            && free >= len;
        if continues {
            last.range.end += len;
            self.used += len;
        }
        continues
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The caller's socket of message `index`.
    pub fn socket(&self, index: usize) -> usize {
        self.messages[index].socket
    }

    /// Where message `index` goes.
    pub fn remote(&self, index: usize) -> SocketAddr {
        self.messages[index].remote
    }

    /// Whether message `index` holds more than one datagram (asks the kernel to segment).
    pub fn segmented(&self, index: usize) -> bool {
        let message = &self.messages[index];
        message.range.len() > message.segment_size
    }

    /// The datagrams of message `index`, for sending them one by one.
    pub fn datagrams(&self, index: usize) -> std::slice::Chunks<'_, u8> {
        let message = &self.messages[index];
        self.bytes[message.range.clone()].chunks(message.segment_size)
    }

    /// The end of the run of messages from `start` on that share its socket.
    pub fn run_end(&self, start: usize) -> usize {
        let socket = self.messages[start].socket;
        self.messages[start..]
            .iter()
            .position(|m| m.socket != socket)
            .map_or(self.messages.len(), |n| start + n)
    }

    /// Send `messages` (one socket's, see [`SendBatch::run_end`]) through `socket` with one
    /// `sendmmsg`: how many the kernel took (at least one), or the error of the first.
    /// A partly sent run is sent on by calling again from where it stopped.
    pub fn send(&self, socket: &impl AsRawFd, messages: Range<usize>) -> io::Result<usize> {
        let batch = &self.messages[messages];
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        let mut iovecs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; SEND_BATCH_MESSAGES];
        let mut controls = [SegmentControl([0; 32]); SEND_BATCH_MESSAGES];
        // SAFETY: mmsghdr is plain data for which all-zero is a valid (empty) value.
        let mut headers: [libc::mmsghdr; SEND_BATCH_MESSAGES] = unsafe { std::mem::zeroed() };
        for (i, message) in batch.iter().enumerate() {
            let payload = &self.bytes[message.range.clone()];
            iovecs[i].iov_base = payload.as_ptr() as *mut libc::c_void;
            iovecs[i].iov_len = payload.len();
            let header = &mut headers[i].msg_hdr;
            header.msg_name = message.name.as_ptr() as *mut libc::c_void;
            header.msg_namelen = message.name.len();
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
            if payload.len() > message.segment_size {
                let control = &mut controls[i];
                header.msg_control = control.0.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE of a u16 (24 bytes on 64-bit) fits the 32-byte buffer.
                header.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
                // SAFETY: msg_control/msg_controllen describe `control`, which has room for
                // one header and a u16, aligned for cmsghdr.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(header);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
                    std::ptr::write_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u16>(),
                        message.segment_size as u16,
                    );
                }
            }
        }
        loop {
            // SAFETY: `headers[..count]` point at names, iovecs, payloads and controls that
            // all live until this call returns; the kernel only reads them (and writes
            // msg_len).
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    count as libc::c_uint,
                    0,
                )
            };
            if sent >= 0 {
                return Ok(sent as usize);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    /// Forget every message (after sending them), keeping the buffers.
    pub fn clear(&mut self) {
        self.messages.clear();
        self.used = 0;
    }
}

/// Whether a send failed because the kernel cannot segment for this socket or route (UDP
/// GSO on a device without checksum offload gives EIO, some kernels EINVAL): the datagrams
/// then go one by one, and the socket stops asking for segmentation.
pub fn segmentation_refused(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};

    fn udp() -> Socket {
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap()
    }

    /// Forced (root here) or not, the granted size is what the kernel reports, and a forced
    /// one is not capped by the sysctl.
    #[test]
    fn buffer_sizes_report_what_the_kernel_granted() {
        let socket = udp();
        let asked = 6 << 20;
        let granted = set_buffer_sizes(&socket, asked).unwrap();
        assert_eq!(granted.receive, socket.recv_buffer_size().unwrap());
        assert_eq!(granted.send, socket.send_buffer_size().unwrap());
        if granted.forced {
            // Linux doubles the value for its bookkeeping.
            assert!(granted.receive >= asked, "{granted:?}");
            assert!(granted.send >= asked, "{granted:?}");
        } else {
            let cap: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(granted.receive <= 2 * cap.max(asked), "{granted:?}");
        }
    }

    /// A descriptor the options do not apply to is an error returned, never a panic.
    #[test]
    fn a_descriptor_that_is_no_socket_is_an_error() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // /dev/null is no socket: ENOTSOCK.
        let not_a_socket = Socket::from(std::os::fd::OwnedFd::from(file));
        assert!(force(&not_a_socket, libc::SO_RCVBUFFORCE, 1 << 20).is_err());
        assert!(set_buffer_sizes(&not_a_socket, 1 << 20).is_err());
    }

    /// A receiving socket on loopback that gives up after a while instead of hanging.
    fn receiver() -> (std::net::UdpSocket, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        (socket, address)
    }

    fn recv(socket: &std::net::UdpSocket) -> Vec<u8> {
        let mut buffer = [0u8; 2048];
        let len = socket.recv(&mut buffer).expect("a datagram in time");
        buffer[..len].to_vec()
    }

    /// `count` datagrams of a packet laid out as the data path lays them out: all but the
    /// last `segment` bytes long, each byte telling its packet and datagram apart.
    fn write_packet(out: &mut [u8], tag: u8, count: usize, segment: usize, last: usize) -> usize {
        let len = (count - 1) * segment + last;
        for (i, byte) in out[..len].iter_mut().enumerate() {
            *byte = tag.wrapping_add((i / segment) as u8);
        }
        len
    }

    fn push_packet(
        batch: &mut SendBatch,
        socket: usize,
        to: SocketAddr,
        tag: u8,
        count: usize,
        per_message: usize,
    ) {
        let free = batch.free(3 * 1400, 7).expect("room");
        let len = write_packet(free, tag, count, 1400, 300);
        assert!(batch.push(socket, to, len, 1400, per_message));
    }

    /// Send every run of the batch as the driver does, from `sockets[socket]`.
    fn send_all(batch: &SendBatch, sockets: &[&std::net::UdpSocket]) {
        let mut next = 0;
        while next < batch.len() {
            let end = batch.run_end(next);
            next += batch.send(sockets[batch.socket(next)], next..end).unwrap();
        }
    }

    /// Packets of several datagrams (segmented by the kernel), single datagrams, two
    /// destinations and two sending sockets: every datagram arrives whole, from the socket
    /// it was pushed for, and each destination sees them in the order pushed.
    #[test]
    fn one_batch_sends_every_datagram_in_order() {
        let (a, a_address) = receiver();
        let (b, b_address) = receiver();
        let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let second = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(64 * 1024);
        push_packet(&mut batch, 0, a_address, 10, 3, 64); // one message, kernel-cut
        push_packet(&mut batch, 0, b_address, 20, 1, 64);
        push_packet(&mut batch, 0, a_address, 30, 2, 1); // no segmentation: two messages
        push_packet(&mut batch, 1, a_address, 40, 2, 64);
        assert_eq!(batch.len(), 5);
        assert!(batch.segmented(0) && !batch.segmented(1) && !batch.segmented(2));
        assert_eq!(batch.run_end(0), 4);
        assert_eq!(batch.run_end(4), 5);
        send_all(&batch, &[&first, &second]);

        let mut from_a = Vec::new();
        for _ in 0..7 {
            let mut buffer = [0u8; 2048];
            let (len, from) = a.recv_from(&mut buffer).expect("a datagram in time");
            from_a.push((buffer[0], len, from));
        }
        let (one, two) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        assert_eq!(
            from_a,
            vec![
                (10, 1400, one),
                (11, 1400, one),
                (12, 300, one),
                (30, 1400, one),
                (31, 300, one),
                (40, 1400, two),
                (41, 300, two),
            ]
        );
        let only = recv(&b);
        assert_eq!((only[0], only.len()), (20, 300));
        assert!(only.iter().all(|&byte| byte == 20));

        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.free(64 * 1024, SEND_BATCH_MESSAGES).is_some());
    }

    /// Back-to-back packets whose datagrams are all full-size join one message (one buffer
    /// the kernel cuts) up to the segment limit; a short last datagram, another destination
    /// or another datagram size starts a new message; every datagram arrives, in order.
    #[test]
    fn full_packets_to_one_peer_share_a_message() {
        let (a, a_address) = receiver();
        let (b, b_address) = receiver();
        let from = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(256 * 1024);
        let mut push = |to: SocketAddr, tag: u8, last: usize, per_message: usize| {
            let free = batch.free(3 * 1400, 7).expect("room");
            let len = write_packet(free, tag, 2, 1400, last);
            assert!(batch.push(0, to, len, 1400, per_message));
        };
        push(a_address, 10, 1400, 64);
        push(a_address, 20, 1400, 64);
        push(a_address, 30, 300, 64); // joins, but its short datagram ends the message
        push(a_address, 40, 1400, 64);
        push(b_address, 50, 1400, 64); // another destination
        push(b_address, 60, 1400, 3); // at most 3 datagrams a message: a new one
        assert_eq!(batch.len(), 4);
        assert!((0..4).all(|m| batch.segmented(m)));
        assert_eq!(batch.datagrams(0).count(), 6);
        // 47 datagrams of 1,400 bytes would pass the 65,507-byte limit of one message.
        let mut big = SendBatch::new(256 * 1024);
        for _ in 0..24 {
            let free = big.free(2800, 2).expect("room");
            let len = write_packet(free, 1, 2, 1400, 1400);
            assert!(big.push(0, a_address, len, 1400, 64));
        }
        assert_eq!(big.len(), 2);
        assert_eq!(big.datagrams(0).count(), 46);

        send_all(&batch, &[&from]);
        let mut from_a = Vec::new();
        for _ in 0..8 {
            let datagram = recv(&a);
            from_a.push((datagram[0], datagram.len()));
        }
        assert_eq!(
            from_a,
            vec![
                (10, 1400),
                (11, 1400),
                (20, 1400),
                (21, 1400),
                (30, 1400),
                (31, 300),
                (40, 1400),
                (41, 1400),
            ]
        );
        let from_b: Vec<u8> = (0..4).map(|_| recv(&b)[0]).collect();
        assert_eq!(from_b, vec![50, 51, 60, 61]);
    }

    /// A batch says when it is full, in bytes or in messages, and a packet that does not fit
    /// is refused whole, never half recorded.
    #[test]
    fn a_full_batch_refuses_more() {
        let (_a, to) = receiver();
        let mut batch = SendBatch::new(4000);
        assert!(batch.free(4001, 1).is_none());
        let free = batch.free(2000, 1).expect("room");
        let len = write_packet(free, 1, 2, 1400, 300);
        assert!(batch.push(0, to, len, 1400, 64));
        // 1,700 of 4,000 bytes used: 2,300 left.
        assert!(batch.free(2300, 1).is_some());
        assert!(batch.free(2301, 1).is_none());
        assert!(!batch.push(0, to, 2301, 1400, 64));
        assert_eq!(batch.len(), 1);
        let mut messages = SendBatch::new(1 << 20);
        for i in 0..SEND_BATCH_MESSAGES {
            let free = messages.free(100, 1).expect("room");
            free[0] = i as u8;
            assert!(messages.push(0, to, 100, 100, 1));
        }
        assert!(messages.free(100, 1).is_none());
        assert!(!messages.push(0, to, 100, 100, 1));
    }

    /// Sending a batch from a socket that cannot reach its destination's family is an error
    /// returned for the first message, not a panic, and the batch stays usable.
    #[test]
    fn a_refused_send_is_an_error() {
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(8192);
        let to: SocketAddr = "[::1]:9".parse().unwrap();
        let free = batch.free(100, 1).unwrap();
        free[..100].fill(7);
        assert!(batch.push(0, to, 100, 100, 1));
        assert!(batch.send(&v4, 0..1).is_err());
        assert_eq!(batch.send(&v4, 0..0).unwrap(), 0);
    }

    /// Filling and sending batch after batch allocates nothing.
    #[test]
    fn batches_allocate_nothing() {
        let (a, to) = receiver();
        let from = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new(64 * 1024);
        let round = |batch: &mut SendBatch| {
            for tag in 0..8 {
                push_packet(batch, 0, to, tag * 16, 2, 64);
            }
            send_all(batch, &[&from]);
            batch.clear();
            let mut buffer = [0u8; 2048];
            for _ in 0..16 {
                a.recv(&mut buffer).expect("a datagram in time");
            }
        };
        round(&mut batch);
        let before = crate::os::test_allocations::count();
        for _ in 0..10 {
            round(&mut batch);
        }
        assert_eq!(crate::os::test_allocations::count() - before, 0);
    }
}
