//! Linux TAP devices through `/dev/net/tun`: the one module of ztd that needs `unsafe`.
//!
//! A TAP device is created by opening `/dev/net/tun` and naming it with the `TUNSETIFF`
//! ioctl (`IFF_TAP | IFF_NO_PI`: whole Ethernet frames, no packet-information header). The
//! device lives as long as the descriptor: dropping [`TapDevice`] deletes the interface with
//! its addresses and routes, which is how leaving a network cleans up even after an error.
//! Frames are read and written with non-blocking I/O driven by tokio's [`AsyncFd`].
//!
//! With offloads ([`TapMode::Offload`], the default where the kernel allows it) the TAP is
//! opened with `IFF_VNET_HDR`, told the header is the 10-byte `virtio_net_hdr`
//! (`TUNSETVNETHDRSZ`) and that we take checksum and TCP segmentation offload
//! (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`): every read and write then
//! starts with that header, reads may be TCP super-frames of up to 64 KB, and writes may be
//! too (see [`super::offload`] for the bytes). If any of those ioctls fails the device is
//! opened again without them ([`TapMode::Plain`]); `ZTD_TAP_OFFLOAD=off` asks for plain frames.
//!
//! Everything else about the link (MAC, MTU, up, addresses, routes) is configured over
//! rtnetlink by [`super::iproute`], which needs no `unsafe`.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

use super::offload::{VnetHeader, VNET_HDR_LEN};

/// `TUNSETIFF` = `_IOW('T', 202, int)` on Linux (the same on every architecture Rust's libc
/// supports for us).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETOFFLOAD` = `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUNSETVNETHDRSZ` = `_IOW('T', 216, int)`.
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;

/// The environment variable that turns TAP offloads off (`off`, `0`, `no`).
pub const TAP_OFFLOAD_ENV: &str = "ZTD_TAP_OFFLOAD";

/// How a TAP's reads and writes look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapMode {
    /// One Ethernet frame per read and write.
    Plain,
    /// A `virtio_net_hdr` before every frame, TCP super-frames and partial checksums both ways.
    Offload,
}

/// The mode asked for by [`TAP_OFFLOAD_ENV`]: offloads unless it says `off`, `0` or `no`.
pub fn requested_mode() -> TapMode {
    match std::env::var(TAP_OFFLOAD_ENV).as_deref() {
        Ok("off" | "0" | "no") => TapMode::Plain,
        _ => TapMode::Offload,
    }
}

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
    mode: TapMode,
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

/// `ioctl(fd, request, arg)` for the requests here that take an integer by value.
fn ioctl_value(file: &File, request: libc::c_ulong, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: `file` is an open /dev/net/tun descriptor, and the requests passed here
    // (TUNSETOFFLOAD) take their argument by value, so no memory is read or written.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Open `/dev/net/tun` as TAP `name` with `extra` flags besides `IFF_TAP | IFF_NO_PI`.
fn open_tap(name: &str, extra: libc::c_short) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let mut request = InterfaceRequest {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | extra,
        _pad: [0; 22],
    };
    for (slot, byte) in request.name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: `file` is an open /dev/net/tun descriptor; TUNSETIFF reads and writes one
    // `struct ifreq`, and `request` is a live, properly aligned `#[repr(C)]` value at
    // least as large as `struct ifreq` (16-byte name + 24-byte union) with a
    // NUL-terminated name (the caller's validity check keeps it below IFNAMSIZ bytes).
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
    Ok(file)
}

/// Open TAP `name` with the vnet header and TCP/checksum offloads, or say which step failed.
fn open_with_offloads(name: &str) -> Result<File, (&'static str, io::Error)> {
    let file = open_tap(name, IFF_VNET_HDR).map_err(|e| ("IFF_VNET_HDR", e))?;
    let size: libc::c_int = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer, which points at `size`,
    // alive for the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            TUNSETVNETHDRSZ as _,
            &size as *const libc::c_int,
        )
    };
    if rc < 0 {
        return Err(("TUNSETVNETHDRSZ", io::Error::last_os_error()));
    }
    let offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    ioctl_value(&file, TUNSETOFFLOAD, offloads.into()).map_err(|e| ("TUNSETOFFLOAD", e))?;
    Ok(file)
}

impl TapDevice {
    /// Create (or attach to) the TAP device `name` in `mode`; offloads fall back to plain
    /// frames if the kernel refuses them (logged once, at INFO, with the step that failed).
    /// Must run inside a tokio runtime.
    pub fn create(name: &str, mode: TapMode) -> io::Result<TapDevice> {
        if !valid_interface_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?}"),
            ));
        }
        let (file, mode) = match mode {
            TapMode::Plain => {
                tracing::info!(interface = name, "tap without offloads (plain frames)");
                (open_tap(name, 0)?, TapMode::Plain)
            }
            TapMode::Offload => match open_with_offloads(name) {
                Ok(file) => {
                    tracing::info!(
                        interface = name,
                        "tap offloads on (vnet header, checksum, TSO4/6)"
                    );
                    (file, TapMode::Offload)
                }
                // The half-configured descriptor is closed first (the `Err` owns no file), so
                // the plain open below creates the device afresh.
                Err((step, error)) => {
                    tracing::info!(interface = name, step, %error, "tap offloads refused by the kernel; plain frames");
                    (open_tap(name, 0)?, TapMode::Plain)
                }
            },
        };
        // SAFETY: `file` is owned by the `AsyncFd` for its whole life, so its descriptor stays
        // open and refers to the same TAP queue until the `AsyncFd` is dropped; `File` always
        // returns that one descriptor from `as_raw_fd`.
        let file = unsafe { AsyncFd::register(file) }?;
        Ok(TapDevice {
            file,
            name: name.to_string(),
            mode,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether reads and writes carry a vnet header.
    pub fn mode(&self) -> TapMode {
        self.mode
    }

    /// Read once if the TAP is ready, registering for readiness otherwise (for a task that
    /// polls several sources in one future). A read is one frame, or with offloads a vnet
    /// header followed by a frame or TCP super-frame.
    pub fn poll_read(
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

    /// Read once if the kernel has something now (`None` when the queue is empty), to drain
    /// a ready TAP without going back to the scheduler for each read. As [`Self::poll_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.file.get_ref().read(buf) {
            Ok(len) => Ok(Some(len)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write one Ethernet frame if the kernel takes it now (behind an all-zero vnet header
    /// with offloads); frames the kernel cannot queue are dropped (as a switch port drops on
    /// congestion) instead of stalling the caller.
    pub fn try_write_frame(&self, frame: &[u8]) -> io::Result<bool> {
        match self.mode {
            TapMode::Plain => self.try_write(&[frame]),
            TapMode::Offload => self.try_write(&[&VnetHeader::PLAIN, frame]),
        }
    }

    /// Write a frame or super-frame behind vnet header `header` (offload mode only; a plain
    /// TAP takes the frame as is if `header` asks for nothing, and refuses it otherwise).
    pub fn try_write_offloaded(
        &self,
        header: &[u8; VNET_HDR_LEN],
        frame: &[u8],
    ) -> io::Result<bool> {
        match self.mode {
            TapMode::Offload => self.try_write(&[header, frame]),
            TapMode::Plain if *header == VnetHeader::PLAIN => self.try_write(&[frame]),
            TapMode::Plain => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an offloaded frame for a TAP without offloads",
            )),
        }
    }

    /// One `writev` of `parts` (the kernel takes a TAP write as one frame); `false` if the
    /// queue is full.
    fn try_write(&self, parts: &[&[u8]]) -> io::Result<bool> {
        let slices: [io::IoSlice<'_>; 2] = [
            io::IoSlice::new(parts.first().copied().unwrap_or_default()),
            io::IoSlice::new(parts.get(1).copied().unwrap_or_default()),
        ];
        let count = parts.len().min(slices.len());
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix; `slices[..count]`
        // are live borrows of the caller's buffers for the duration of the call, and the
        // kernel only reads from them.
        let rc = unsafe {
            libc::writev(
                self.file.get_ref().as_raw_fd(),
                slices.as_ptr() as *const libc::iovec,
                count as libc::c_int,
            )
        };
        if rc >= 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return Ok(false);
        }
        Err(error)
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
