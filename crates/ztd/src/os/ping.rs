//! ICMP echo (`/ping`): IPv4 and IPv6, from ztd's own network stack.
//!
//! An unprivileged ICMP datagram socket (`SOCK_DGRAM`/`IPPROTO_ICMP`, allowed by
//! `net.ipv4.ping_group_range`) is tried first; without it a raw socket (root or
//! `CAP_NET_RAW`, which the service has). With a datagram socket the kernel owns the echo
//! identifier and the checksum; with a raw one we set both and skip other processes' replies.
//! The hop limit of a reply (RouterOS's TTL column) comes from a control message
//! (`IP_RECVTTL` / `IPV6_RECVHOPLIMIT`). Blocking: run it on a blocking thread.
#![allow(unsafe_code)] // socket options and recvmsg with control messages
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::offload::internet_checksum;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRequest {
    pub address: IpAddr,
    pub count: u16,
    /// Time between two requests.
    pub interval: Duration,
    /// Bytes of echo data (iputils' `-s`; the reply's SIZE).
    pub size: usize,
    /// How long a request waits for its reply.
    pub timeout: Duration,
}

/// One echo reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Bytes of echo data received.
    pub size: usize,
    /// The reply's TTL / hop limit, when the kernel reported it.
    pub ttl: Option<u8>,
    pub rtt: Duration,
}

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const ICMP_HEADER: usize = 8;

struct IcmpSocket {
    socket: Socket,
    /// A raw socket: we pick the identifier and see every echo reply of the host.
    raw: bool,
    v6: bool,
    identifier: u16,
}

impl IcmpSocket {
    fn open(address: IpAddr) -> io::Result<IcmpSocket> {
        let (domain, protocol, v6) = match address {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, false),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, true),
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => (socket, false),
            Err(_) => (Socket::new(domain, Type::RAW, Some(protocol))?, true),
        };
        let (level, option) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
        } else {
            (libc::IPPROTO_IP, libc::IP_RECVTTL)
        };
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the size given.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                option,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(IcmpSocket {
            socket,
            raw,
            v6,
            identifier: rand::random(),
        })
    }

    fn send(&self, to: &SockAddr, seq: u16, size: usize) -> io::Result<()> {
        let mut packet = vec![0u8; ICMP_HEADER + size];
        packet[0] = if self.v6 {
            ECHO_REQUEST_V6
        } else {
            ECHO_REQUEST_V4
        };
        packet[4..6].copy_from_slice(&self.identifier.to_be_bytes());
        packet[6..8].copy_from_slice(&seq.to_be_bytes());
        for (i, byte) in packet[ICMP_HEADER..].iter_mut().enumerate() {
            *byte = i as u8;
        }
        // The kernel sums ICMPv6 itself and fixes the checksum of datagram sockets.
        if self.raw && !self.v6 {
            let sum = internet_checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        self.socket.send_to(&packet, to)?;
        Ok(())
    }

    /// The next echo reply for us until `deadline`: (sequence, data size, TTL).
    fn receive(
        &self,
        from: IpAddr,
        deadline: Instant,
    ) -> io::Result<Option<(u16, usize, Option<u8>)>> {
        let mut buffer = [0u8; 65_536];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let (length, source, ttl) = match self.recv(&mut buffer) {
                Ok(got) => got,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if source != Some(from) {
                continue;
            }
            let mut packet = &buffer[..length];
            if self.raw && !self.v6 {
                // A raw IPv4 socket hands over the IP header too.
                let header = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
                packet = packet.get(header..).unwrap_or_default();
            }
            if packet.len() < ICMP_HEADER {
                continue;
            }
            let reply_type = if self.v6 {
                ECHO_REPLY_V6
            } else {
                ECHO_REPLY_V4
            };
            if packet[0] != reply_type {
                continue;
            }
            // Datagram sockets only deliver our own replies (the kernel rewrote the id).
            let identifier = u16::from_be_bytes([packet[4], packet[5]]);
            if self.raw && identifier != self.identifier {
                continue;
            }
            let seq = u16::from_be_bytes([packet[6], packet[7]]);
            return Ok(Some((seq, packet.len() - ICMP_HEADER, ttl)));
        }
    }

    /// One datagram, its source address and the TTL / hop limit control message.
    fn recv(&self, buffer: &mut [u8]) -> io::Result<(usize, Option<IpAddr>, Option<u8>)> {
        let mut source = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        // SAFETY: zeroed msghdr is a valid initial value; every pointer below outlives the call.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_name = source.as_mut_ptr().cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: a valid socket and a msghdr whose buffers are live and sized as declared.
        let length = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut message, 0) };
        if length < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: recvmsg wrote the sender's address (or left the zeroed storage).
        let source = source_ip(unsafe { &source.assume_init() });
        let mut ttl = None;
        // SAFETY: walking the control buffer recvmsg filled, with the libc macros.
        unsafe {
            let mut header = libc::CMSG_FIRSTHDR(&message);
            while !header.is_null() {
                let h = &*header;
                let wanted = (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                    || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT);
                if wanted {
                    let value =
                        std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>());
                    ttl = u8::try_from(value).ok();
                }
                header = libc::CMSG_NXTHDR(&message, header);
            }
        }
        Ok((length as usize, source, ttl))
    }
}

/// The IP address of a `sockaddr_storage` holding an IPv4 or IPv6 socket address.
fn source_ip(storage: &libc::sockaddr_storage) -> Option<IpAddr> {
    let pointer: *const libc::sockaddr_storage = storage;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let v4 = unsafe { &*pointer.cast::<libc::sockaddr_in>() };
            Some(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*pointer.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::from(v6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// Send `count` echo requests, `interval` apart, each waiting up to `timeout` for its reply;
/// `on_result` sees each sequence number's outcome in order (`None`: timeout).
pub fn ping(
    request: &PingRequest,
    mut on_result: impl FnMut(u16, Option<EchoReply>),
) -> io::Result<()> {
    let socket = IcmpSocket::open(request.address)?;
    let to = SockAddr::from(SocketAddr::new(request.address, 0));
    let start = Instant::now();
    for seq in 0..request.count {
        let sent_at = start + request.interval * u32::from(seq);
        if let Some(wait) = sent_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_at = Instant::now();
        let outcome = match socket.send(&to, seq, request.size) {
            // Unreachable right away (no route): a timeout as RouterOS shows it.
            Err(_) => None,
            Ok(()) => {
                let deadline = sent_at + request.timeout;
                let mut outcome = None;
                while let Some((got, size, ttl)) = socket.receive(request.address, deadline)? {
                    if got == seq {
                        outcome = Some(EchoReply {
                            size,
                            ttl,
                            rtt: sent_at.elapsed(),
                        });
                        break;
                    }
                }
                outcome
            }
        };
        on_result(seq, outcome);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        // Type 8, id 0x1234, seq 1, no data: 0xffff - (0x0800 + 0x1234 + 0x0001).
        let packet = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(internet_checksum(&packet), !(0x0800u16 + 0x1234 + 0x0001));
        // An odd length pads with a zero byte.
        assert_eq!(internet_checksum(&[0xff]), !0xff00u16);
    }
}
