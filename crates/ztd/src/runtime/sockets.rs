//! Binding an instance's UDP ports (PROTOCOL.md §9.1): the primary port on `0.0.0.0` and
//! `[::]` (IPv6 socket with IPV6_V6ONLY so the two never overlap), a secondary port, and,
//! with port mapping on, a tertiary port (the one the gateway is asked to forward); the
//! last two either configured or picked at random the way zerotier-one 1.8+ does.
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::engine::PortRole;

/// Lowest port of the random port range (secondary and tertiary ports).
pub const RANDOM_PORT_BASE: u16 = 20000;
/// Size of the random port range (`20000 + rand % 45500`).
pub const RANDOM_PORT_SPAN: u32 = 45500;
/// How many ports the random-port search tries before giving up.
pub const RANDOM_PORT_TRIES: u32 = 1000;

/// Requested UDP socket buffer size, each of receive and send. A leaf receiving a fast
/// TCP stream dropped ~20,000 datagrams in 10 s for a full 1 MiB receive buffer
/// (`/proc/net/snmp` RcvbufErrors) and none with 8 MiB (bench/results/2026-12-07-udp-batching.md);
/// memory is only used while datagrams wait.
const SOCKET_BUFFER: usize = 8 << 20;

/// Why an instance's sockets could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind UDP port {port}: {source}")]
    Port { port: u16, source: io::Error },
    #[error("no free UDP port for the {} port after {RANDOM_PORT_TRIES} tries", .0.name())]
    NoFreePort(PortRole),
}

/// A bound but not yet registered (std) socket with its role.
#[derive(Debug)]
pub struct BoundSocket {
    pub socket: StdUdpSocket,
    pub bound: SocketAddr,
    pub role: PortRole,
}

/// Bind the IPv4 and (when the host has IPv6) IPv6 wildcard sockets of one port.
/// IPv6 being unavailable (EAFNOSUPPORT / EADDRNOTAVAIL) is not an error; any other failure is.
pub fn bind_port(port: u16, role: PortRole) -> Result<Vec<BoundSocket>, BindError> {
    let v4 = bind_one(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        .map_err(|source| BindError::Port { port, source })?;
    let mut sockets = vec![BoundSocket {
        bound: v4
            .local_addr()
            .map_err(|source| BindError::Port { port, source })?,
        socket: v4,
        role,
    }];
    match bind_one(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(v6) => {
            let bound = v6
                .local_addr()
                .map_err(|source| BindError::Port { port, source })?;
            sockets.push(BoundSocket {
                socket: v6,
                bound,
                role,
            });
        }
        Err(e) if ipv6_unavailable(&e) => {
            tracing::warn!(port, error = %e, "IPv6 unavailable; UDP bound on IPv4 only");
        }
        Err(source) => return Err(BindError::Port { port, source }),
    }
    Ok(sockets)
}

/// Bind the secondary or tertiary port: the configured one, or the first free port found by
/// stepping upward from a random start (first candidate is start + 1, wrapping 65535 →
/// 20000), skipping ports in `avoid` (other instances' configured ports). zerotier-one picks
/// both ports this way (`_getRandomPort`).
pub fn bind_random_port(
    role: PortRole,
    configured: Option<u16>,
    random_start: u32,
    avoid: &[u16],
) -> Result<Vec<BoundSocket>, BindError> {
    if let Some(port) = configured {
        return bind_port(port, role);
    }
    let mut candidate = RANDOM_PORT_BASE as u32 + random_start % RANDOM_PORT_SPAN;
    for _ in 0..RANDOM_PORT_TRIES {
        candidate += 1;
        if candidate > u16::MAX as u32 {
            candidate = RANDOM_PORT_BASE as u32;
        }
        let port = candidate as u16;
        if avoid.contains(&port) {
            continue;
        }
        match bind_port(port, role) {
            Ok(sockets) => return Ok(sockets),
            Err(BindError::Port { source, .. }) if source.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    }
    Err(BindError::NoFreePort(role))
}

fn bind_one(addr: SocketAddr) -> io::Result<StdUdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Large buffers absorb bursts; the kernel may grant less, which is fine: this is a
    // request, not a requirement.
    let granted = crate::os::udp::set_buffer_sizes(&socket, SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    match granted {
        Ok(sizes) => {
            tracing::debug!(%addr, asked = SOCKET_BUFFER, receive = sizes.receive, send = sizes.send, forced = sizes.forced, "UDP socket buffers granted")
        }
        Err(error) => tracing::debug!(%addr, %error, "UDP socket buffer sizes unknown"),
    }
    Ok(socket.into())
}

/// The host has no IPv6 (or not the address asked for): binding it is skipped, not an error.
pub fn ipv6_unavailable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == 97 /* EAFNOSUPPORT */ || code == 99 /* EADDRNOTAVAIL */)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_binds_v4_and_v6_and_conflicts_are_reported() {
        // Port 0 asks the OS for a free port; then binding that port again must fail.
        let first = bind_port(0, PortRole::Primary).unwrap();
        assert!(first[0].bound.is_ipv4());
        let port = first[0].bound.port();
        drop(first);
        let held = bind_port(port, PortRole::Primary).unwrap();
        if held.len() == 2 {
            assert!(held[1].bound.is_ipv6());
            assert_eq!(held[1].bound.port(), port);
        }
        match bind_port(port, PortRole::Primary) {
            Err(BindError::Port { port: p, source }) => {
                assert_eq!(p, port);
                assert_eq!(source.kind(), io::ErrorKind::AddrInUse);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn random_secondary_starts_above_start_and_skips_avoided_ports() {
        // start 0 → first candidate 20001; avoid it, so 20002 or later is chosen.
        let sockets = bind_random_port(PortRole::Secondary, None, 0, &[20001]).unwrap();
        let port = sockets[0].bound.port();
        assert!(
            (20002..20002 + RANDOM_PORT_TRIES as u16).contains(&port),
            "{port}"
        );
        assert_eq!(sockets[0].role, PortRole::Secondary);
    }

    #[test]
    fn a_random_port_wraps_to_base() {
        // start = 45499 → first candidate 65500 ... 65535 then 20000.
        let taken: Vec<u16> = (65500..=65535).collect();
        let sockets = bind_random_port(PortRole::Tertiary, None, 45499, &taken).unwrap();
        let port = sockets[0].bound.port();
        assert!((20000..21000).contains(&port), "{port}");
        assert!(sockets.iter().all(|s| s.role == PortRole::Tertiary));
    }

    #[test]
    fn a_taken_random_port_is_skipped() {
        // The tertiary search from the same start as a secondary already bound goes past it,
        // as zerotier-one's trial bind does.
        let start = rand::random::<u32>();
        let secondary = bind_random_port(PortRole::Secondary, None, start, &[]).unwrap();
        let tertiary = bind_random_port(PortRole::Tertiary, None, start, &[]).unwrap();
        assert_ne!(secondary[0].bound.port(), tertiary[0].bound.port());
    }
}
