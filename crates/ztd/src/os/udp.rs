//! The UDP edge's system calls that the socket crates do not offer: socket buffers larger
//! than `net.core.rmem_max`/`wmem_max` when the process may force them ([`set_buffer_sizes`]).
//!
//! A leaf that receives a fast TCP stream gets bursts of datagrams faster than one task
//! drains them; what the receive buffer cannot hold the kernel drops (`/proc/net/snmp`
//! `Udp: RcvbufErrors`), and TCP inside the tunnel backs off. The plain `SO_RCVBUF` is
//! capped by the sysctl (often 208 KiB); `SO_RCVBUFFORCE` (`CAP_NET_ADMIN`, which the
//! service has for its TAPs) is not. ztd never changes the sysctls itself.
#![allow(unsafe_code)] // setsockopt for the FORCE options
use std::io;
use std::os::fd::AsRawFd;

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
}
