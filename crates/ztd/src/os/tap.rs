//! Linux TAP devices through `/dev/net/tun`: the one module of ztd that needs `unsafe`.
//!
//! A TAP device is created by opening `/dev/net/tun` and naming it with the `TUNSETIFF`
//! ioctl (`IFF_TAP | IFF_NO_PI`: whole Ethernet frames, no packet-information header). The
//! device lives as long as the descriptor: dropping [`TapDevice`] deletes the interface with
//! its addresses and routes, which is how leaving a network cleans up even after an error.
//! Frames are read and written with non-blocking I/O driven by tokio's [`AsyncFd`].
//!
//! Everything else about the link (MAC, MTU, up, addresses, routes) is configured over
//! rtnetlink by [`super::iproute`], which needs no `unsafe`.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

/// `TUNSETIFF` = `_IOW('T', 202, int)` on Linux (the same on every architecture Rust's libc
/// supports for us).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// The interface request `TUNSETIFF` takes: a name and flags, padded to `struct ifreq`'s size.
#[repr(C)]
struct InterfaceRequest {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TAP device.
#[derive(Debug)]
pub struct TapDevice {
    file: AsyncFd<File>,
    name: String,
}

/// Interface names Linux accepts: 1..15 bytes, no `/`, whitespace or `:` (aliases).
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

impl TapDevice {
    /// Create (or attach to) the TAP device `name`. Must run inside a tokio runtime.
    pub fn create(name: &str) -> io::Result<TapDevice> {
        if !valid_interface_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?}"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut request = InterfaceRequest {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        for (slot, byte) in request.name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        // SAFETY: `file` is an open /dev/net/tun descriptor; TUNSETIFF reads and writes one
        // `struct ifreq`, and `request` is a live, properly aligned `#[repr(C)]` value at
        // least as large as `struct ifreq` (16-byte name + 24-byte union) with a
        // NUL-terminated name (the validity check keeps it below IFNAMSIZ bytes).
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                TUNSETIFF as _,
                &mut request as *mut InterfaceRequest,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `file` is owned by the `AsyncFd` for its whole life, so its descriptor stays
        // open and refers to the same TAP queue until the `AsyncFd` is dropped; `File` always
        // returns that one descriptor from `as_raw_fd`.
        let file = unsafe { AsyncFd::register(file) }?;
        Ok(TapDevice {
            file,
            name: name.to_string(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read one Ethernet frame (without FCS) into `buf`; returns its length.
    pub async fn read_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.file.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Read one frame if one is ready, registering for readiness otherwise (for a task that
    /// polls several sources in one future).
    pub fn poll_read_frame(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        loop {
            let mut guard = match self.file.poll_read_ready(cx) {
                std::task::Poll::Ready(Ok(guard)) => guard,
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            };
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return std::task::Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    /// Read one frame if the kernel has one now (`None` when the queue is empty), to drain a
    /// ready TAP without going back to the scheduler for each frame.
    pub fn try_read_frame(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.file.get_ref().read(buf) {
            Ok(len) => Ok(Some(len)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write one Ethernet frame. A frame the kernel cannot take right now (queue full) waits.
    pub async fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.file.writable().await?;
            match guard.try_io(|fd| fd.get_ref().write(frame)) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Write one frame if the kernel takes it now; frames the kernel cannot queue are dropped
    /// (as a switch port drops on congestion) instead of stalling the caller.
    pub fn try_write_frame(&self, frame: &[u8]) -> io::Result<bool> {
        match self.file.get_ref().write(frame) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_linux_rules() {
        assert!(valid_interface_name("zerotier1"));
        assert!(valid_interface_name("zt-a.b_c"));
        assert!(!valid_interface_name(""));
        assert!(!valid_interface_name("0123456789abcdef"));
        assert!(valid_interface_name("0123456789abcde"));
        assert!(!valid_interface_name("a/b"));
        assert!(!valid_interface_name("a b"));
        assert!(!valid_interface_name("eth0:1"));
        assert!(!valid_interface_name(".."));
    }
}
