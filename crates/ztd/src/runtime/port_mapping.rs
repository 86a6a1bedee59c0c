//! Port mapping: asks the gateway of the default route to forward a UDP port to us (the
//! instance's tertiary port, bound for this alone, see [`super::engine::PortRole`]), so that
//! peers behind NATs that could not reach us otherwise (a symmetric NAT on our side) can send
//! to the mapped address. As zerotier-one's `PortMapper` (libnatpmp, then miniupnpc): NAT-PMP
//! (RFC 6886, spoken here) first, and where the gateway does not answer it, UPnP-IGD through
//! the `igd-next` crate (SSDP search, then SOAP `AddPortMapping`).
//!
//! Blocking, with short deadlines: meant for a worker thread, never the I/O loop.
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The gateway's NAT-PMP port (RFC 6886 §3).
pub const NAT_PMP_PORT: u16 = 5351;
/// How long a mapping is asked for, in seconds: twice the renewal period, as zerotier-one
/// (`ZT_PORTMAPPER_REFRESH_DELAY` × 2), so one lost renewal does not drop it.
pub const LEASE_SECONDS: u32 = 600;
/// How often a mapping is renewed (zerotier-one's `ZT_PORTMAPPER_REFRESH_DELAY`).
pub const RENEW_EVERY: Duration = Duration::from_secs(300);
/// The first retransmission wait; doubled after each try (RFC 6886 §3.1). We stop after
/// [`TRIES`] (3.75 s in all) instead of the RFC's nine: a gateway that did not answer
/// by then is not going to, and the worker retries at the next renewal anyway.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const TRIES: u32 = 4;

const VERSION: u8 = 0;
const OP_EXTERNAL_ADDRESS: u8 = 0;
const OP_MAP_UDP: u8 = 1;
/// A response's opcode is the request's plus 128.
const OP_RESPONSE: u8 = 128;

/// A port forwarded by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub internal_port: u16,
    /// The gateway's external address and the port it forwards to `internal_port`.
    pub external: SocketAddrV4,
    /// Seconds the gateway keeps it (may be shorter than asked).
    pub lifetime: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("no default IPv4 route, so no gateway to ask")]
    NoGateway,
    #[error("NAT-PMP socket: {0}")]
    Io(#[from] io::Error),
    #[error("the gateway did not answer NAT-PMP")]
    NoAnswer,
    /// The gateway's result code (RFC 6886 §3.5: 2 not authorized, 3 network failure,
    /// 4 out of resources, …).
    #[error("the gateway refused: NAT-PMP result code {0}")]
    Refused(u16),
    /// Neither protocol made a mapping: what each said.
    #[error("{nat_pmp}; UPnP-IGD: {upnp}")]
    Neither {
        nat_pmp: Box<MappingError>,
        upnp: String,
    },
}

/// The gateway of the default IPv4 route in `/proc/net/route` text (destination and mask
/// 0, gateway in the kernel's little-endian hex); `None` if there is none or the text is
/// not what we expect.
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway, mask) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        if *destination != "00000000" || *mask != "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        (raw != 0).then(|| Ipv4Addr::from(raw.to_le_bytes()))
    })
}

/// The default gateway of this host (its network namespace).
pub fn host_gateway() -> Result<Ipv4Addr, MappingError> {
    let table = std::fs::read_to_string("/proc/net/route")?;
    default_gateway(&table).ok_or(MappingError::NoGateway)
}

/// A request to map UDP `internal_port` to `suggested_external` (0: any) for `lifetime`
/// seconds; a lifetime of 0 (with suggested port 0) deletes the mapping.
pub fn map_request(internal_port: u16, suggested_external: u16, lifetime: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0] = VERSION;
    out[1] = OP_MAP_UDP;
    // Bytes 2..4 are reserved (zero).
    out[4..6].copy_from_slice(&internal_port.to_be_bytes());
    out[6..8].copy_from_slice(&suggested_external.to_be_bytes());
    out[8..12].copy_from_slice(&lifetime.to_be_bytes());
    out
}

/// The header every response starts with: version, opcode, result code, epoch (§3.2).
fn response_result(response: &[u8], opcode: u8) -> Option<Result<&[u8], MappingError>> {
    if response.len() < 8 || response[0] != VERSION || response[1] != OP_RESPONSE + opcode {
        return None;
    }
    let result = u16::from_be_bytes([response[2], response[3]]);
    Some(if result == 0 {
        Ok(&response[8..])
    } else {
        Err(MappingError::Refused(result))
    })
}

/// The external address in a response to the external address request; `None` for a
/// datagram that is not one.
pub fn parse_address_response(response: &[u8]) -> Option<Result<Ipv4Addr, MappingError>> {
    if response.len() < 12 {
        return None;
    }
    Some(
        response_result(response, OP_EXTERNAL_ADDRESS)?
            .map(|rest| Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3])),
    )
}

/// (external port, lifetime) in a response to a UDP mapping request for `internal_port`;
/// `None` for a datagram that is not one (another port's answer is not ours).
pub fn parse_map_response(
    response: &[u8],
    internal_port: u16,
) -> Option<Result<(u16, u32), MappingError>> {
    if response.len() < 16 || u16::from_be_bytes([response[8], response[9]]) != internal_port {
        return None;
    }
    Some(response_result(response, OP_MAP_UDP)?.map(|rest| {
        let external = u16::from_be_bytes([rest[2], rest[3]]);
        let lifetime = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        (external, lifetime)
    }))
}

/// Sends `request` to `gateway` and waits for the first datagram from it that `accept`
/// recognises, retransmitting with doubling waits.
fn exchange<T>(
    gateway: SocketAddr,
    request: &[u8],
    mut accept: impl FnMut(&[u8]) -> Option<Result<T, MappingError>>,
) -> Result<T, MappingError> {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    let mut wait = FIRST_WAIT;
    let mut buf = [0u8; 64];
    for _ in 0..TRIES {
        socket.send_to(request, gateway)?;
        socket.set_read_timeout(Some(wait))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match socket.recv_from(&mut buf) {
                Ok((len, from)) if from == gateway => {
                    if let Some(answer) = accept(&buf[..len]) {
                        return answer;
                    }
                }
                // Someone else's datagram: ignore it, keep waiting.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e.into()),
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
        }
        wait *= 2;
    }
    Err(MappingError::NoAnswer)
}

/// Asks `gateway` (its NAT-PMP address) for its external address and for UDP
/// `internal_port` to be forwarded, preferably from the same external port.
pub fn map_udp(gateway: SocketAddr, internal_port: u16) -> Result<Mapping, MappingError> {
    let address = exchange(
        gateway,
        &[VERSION, OP_EXTERNAL_ADDRESS],
        parse_address_response,
    )?;
    let request = map_request(internal_port, internal_port, LEASE_SECONDS);
    let (port, lifetime) = exchange(gateway, &request, |r| parse_map_response(r, internal_port))?;
    Ok(Mapping {
        internal_port,
        external: SocketAddrV4::new(address, port),
        lifetime,
    })
}

/// Asks `gateway` to drop the mapping of UDP `internal_port` (on exit).
pub fn unmap_udp(gateway: SocketAddr, internal_port: u16) -> Result<(), MappingError> {
    let request = map_request(internal_port, 0, 0);
    exchange(gateway, &request, |r| parse_map_response(r, internal_port)).map(|_| ())
}

/// How long the SSDP search for a UPnP-IGD gateway may take, and one answer to it.
const UPNP_SEARCH: Duration = Duration::from_secs(3);
const UPNP_ANSWER: Duration = Duration::from_secs(1);
/// The mapping's description on the gateway (what its web page lists).
const UPNP_DESCRIPTION: &str = "zt (ZeroTier)";

/// A gateway a mapping was made on: what renewing and deleting it needs.
enum MappedOn {
    NatPmp(SocketAddr),
    Upnp(Box<igd_next::Gateway>),
}

impl MappedOn {
    fn protocol(&self) -> &'static str {
        match self {
            MappedOn::NatPmp(_) => "NAT-PMP",
            MappedOn::Upnp(_) => "UPnP-IGD",
        }
    }

    fn unmap(&self, mapping: &Mapping) -> Result<(), String> {
        match self {
            MappedOn::NatPmp(gateway) => {
                unmap_udp(*gateway, mapping.internal_port).map_err(|e| e.to_string())
            }
            MappedOn::Upnp(gateway) => gateway
                .remove_port(igd_next::PortMappingProtocol::UDP, mapping.external.port())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Finds the UPnP-IGD gateway of this LAN and has it forward UDP `internal_port`, from the
/// same external port if it is free, else from one the gateway picks.
fn upnp_map_udp(internal_port: u16) -> Result<(igd_next::Gateway, Mapping), String> {
    let options = igd_next::SearchOptions {
        timeout: Some(UPNP_SEARCH),
        single_search_timeout: Some(UPNP_ANSWER),
        ..Default::default()
    };
    let gateway = igd_next::search_gateway(options).map_err(|e| e.to_string())?;
    let external_ip = match gateway.get_external_ip().map_err(|e| e.to_string())? {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(ip) => return Err(format!("external address {ip} is not IPv4")),
    };
    // Our address towards the gateway: the one the forward must point at.
    let probe = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .and_then(|s| s.connect(gateway.addr).and(s.local_addr()))
        .map_err(|e| e.to_string())?;
    let local = SocketAddr::new(probe.ip(), internal_port);
    let udp = igd_next::PortMappingProtocol::UDP;
    let external_port =
        match gateway.add_port(udp, internal_port, local, LEASE_SECONDS, UPNP_DESCRIPTION) {
            Ok(()) => internal_port,
            Err(_) => gateway
                .add_any_port(udp, local, LEASE_SECONDS, UPNP_DESCRIPTION)
                .map_err(|e| e.to_string())?,
        };
    let mapping = Mapping {
        internal_port,
        external: SocketAddrV4::new(external_ip, external_port),
        lifetime: LEASE_SECONDS,
    };
    Ok((gateway, mapping))
}

/// NAT-PMP on the default gateway, else UPnP-IGD on the LAN.
fn map_on_some_gateway(internal_port: u16) -> Result<(MappedOn, Mapping), MappingError> {
    let gateway = SocketAddr::from((host_gateway()?, NAT_PMP_PORT));
    let nat_pmp = match map_udp(gateway, internal_port) {
        Ok(mapping) => return Ok((MappedOn::NatPmp(gateway), mapping)),
        Err(error) => error,
    };
    match upnp_map_udp(internal_port) {
        Ok((gateway, mapping)) => Ok((MappedOn::Upnp(Box::new(gateway)), mapping)),
        Err(upnp) => Err(MappingError::Neither {
            nat_pmp: Box::new(nat_pmp),
            upnp,
        }),
    }
}

/// Keeps UDP `internal_port` mapped on the default gateway while it lives: a thread of its
/// own maps it, renews it every [`RENEW_EVERY`] (sooner if the gateway grants a shorter
/// lease), tries again after failures, and deletes the mapping when the mapper is dropped
/// (instance disabled or daemon stopping).
pub struct PortMapper {
    mapped: Arc<Mutex<Option<SocketAddr>>>,
    /// Dropping it wakes the thread, which then deletes the mapping and ends.
    stop: Option<mpsc::Sender<()>>,
    /// Closed by the thread when it ends.
    done: mpsc::Receiver<()>,
}

/// How long dropping a mapper waits for the deletion: enough for a gateway that answers,
/// short enough not to hold up the instance's driver behind one that does not.
const UNMAP_WAIT: Duration = Duration::from_secs(1);

impl PortMapper {
    /// Starts mapping `internal_port` for the instance named `instance` (for the log).
    pub fn start(instance: String, internal_port: u16) -> io::Result<PortMapper> {
        let mapped = Arc::new(Mutex::new(None));
        let (stop, stopped) = mpsc::channel::<()>();
        let (finished, done) = mpsc::channel::<()>();
        let shared = mapped.clone();
        std::thread::Builder::new()
            .name(format!("{instance}-portmap"))
            .spawn(move || {
                keep_mapped(&instance, internal_port, &shared, &stopped);
                drop(finished);
            })?;
        Ok(PortMapper {
            mapped,
            stop: Some(stop),
            done,
        })
    }

    /// The external address the gateway forwards to us, while it does.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped.lock().ok().and_then(|m| *m)
    }
}

impl Drop for PortMapper {
    fn drop(&mut self) {
        self.stop = None;
        // A stopping daemon should not leave the mapping behind, so give the deletion a
        // moment; past that the thread finishes on its own.
        let _ = self.done.recv_timeout(UNMAP_WAIT);
    }
}

/// The mapper thread: map, wait for the renewal (or the stop), repeat; unmap at the end.
fn keep_mapped(
    instance: &str,
    internal_port: u16,
    mapped: &Mutex<Option<SocketAddr>>,
    stopped: &mpsc::Receiver<()>,
) {
    let mut in_use: Option<(MappedOn, Mapping)> = None;
    let mut last_error = String::new();
    loop {
        let wait = match map_on_some_gateway(internal_port) {
            Ok((on, mapping)) => {
                let external = SocketAddr::V4(mapping.external);
                let previous = mapped.lock().ok().and_then(|mut m| m.replace(external));
                if previous != Some(external) {
                    let protocol = on.protocol();
                    tracing::info!(instance, %external, internal_port, protocol, "port mapped");
                }
                let renew = Duration::from_secs(u64::from(mapping.lifetime / 2).max(1));
                // A mapping on another gateway (or port) than before: the old one goes.
                if let Some((old_on, old)) = in_use.replace((on, mapping)) {
                    if old.external != mapping.external {
                        let _ = old_on.unmap(&old);
                    }
                }
                last_error.clear();
                RENEW_EVERY.min(renew)
            }
            Err(error) => {
                if let Ok(mut m) = mapped.lock() {
                    *m = None;
                }
                // Most hosts have no mapping gateway: say so once, not at every retry.
                let text = error.to_string();
                if text != last_error {
                    tracing::info!(instance, %error, "no port mapping");
                    last_error = text;
                }
                RENEW_EVERY
            }
        };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => break,
        }
    }
    if let Some((on, mapping)) = in_use {
        if let Err(error) = on.unmap(&mapping) {
            tracing::info!(instance, %error, "could not delete the port mapping");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
";

    #[test]
    fn the_default_gateway_is_read_from_the_route_table() {
        assert_eq!(default_gateway(ROUTES), Some(Ipv4Addr::new(192, 168, 1, 1)));
        let no_default = ROUTES.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(default_gateway(&no_default), None);
        assert_eq!(default_gateway(""), None);
        assert_eq!(
            default_gateway("header\n garbage 00000000 zz x x x x 00000000"),
            None
        );
    }

    #[test]
    fn a_mapping_request_is_twelve_bytes_in_network_order() {
        assert_eq!(
            map_request(9993, 9993, 600),
            [0, 1, 0, 0, 0x27, 0x09, 0x27, 0x09, 0, 0, 0x02, 0x58]
        );
    }

    #[test]
    fn responses_are_parsed_and_anything_else_is_ignored_without_panicking() {
        // As miniupnpd answered in the lab: result 0, epoch 1, 9993 → 9993 for 120 s.
        let ok = [
            0, 0x81, 0, 0, 0, 0, 0, 1, 0x27, 0x09, 0x27, 0x0a, 0, 0, 0, 120,
        ];
        assert!(matches!(
            parse_map_response(&ok, 9993),
            Some(Ok((9994, 120)))
        ));
        assert!(
            parse_map_response(&ok, 9995).is_none(),
            "another port's answer"
        );
        let mut refused = ok;
        refused[3] = 3;
        assert!(matches!(
            parse_map_response(&refused, 9993),
            Some(Err(MappingError::Refused(3)))
        ));
        let address = [0, 0x80, 0, 0, 0, 0, 0, 1, 203, 0, 113, 7];
        assert!(matches!(
            parse_address_response(&address),
            Some(Ok(a)) if a == Ipv4Addr::new(203, 0, 113, 7)
        ));
        for len in 0..ok.len() {
            assert!(parse_map_response(&ok[..len], 9993).is_none());
        }
        for len in 0..address.len() {
            assert!(parse_address_response(&address[..len]).is_none());
        }
        assert!(
            parse_map_response(&[0xff; 16], 0xffff).is_none(),
            "wrong version"
        );
        assert!(
            parse_address_response(&ok[..12]).is_none(),
            "a map answer is no address"
        );
    }

    /// A gateway on loopback that answers like miniupnpd, after ignoring the first
    /// datagram of each exchange (so the retransmission is exercised).
    fn fake_gateway(external: Ipv4Addr) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut seen = 0;
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                seen += 1;
                if seen % 2 == 1 {
                    continue;
                }
                let request = &buf[..len];
                let mut answer = vec![0, OP_RESPONSE + request[1], 0, 0, 0, 0, 0, 9];
                if request[1] == OP_EXTERNAL_ADDRESS {
                    answer.extend_from_slice(&external.octets());
                } else {
                    answer.extend_from_slice(&request[4..6]);
                    let lifetime = u32::from_be_bytes(request[8..12].try_into().unwrap());
                    // Asked to delete: external port 0; else the next port up.
                    let port = if lifetime == 0 {
                        0
                    } else {
                        u16::from_be_bytes([request[6], request[7]]) + 1
                    };
                    answer.extend_from_slice(&port.to_be_bytes());
                    answer.extend_from_slice(&lifetime.min(120).to_be_bytes());
                }
                let _ = socket.send_to(&answer, from);
            }
        });
        address
    }

    #[test]
    fn a_port_is_mapped_and_unmapped_through_a_gateway_that_drops_first_tries() {
        let gateway = fake_gateway(Ipv4Addr::new(203, 0, 113, 9));
        let mapping = map_udp(gateway, 9993).unwrap();
        assert_eq!(
            mapping,
            Mapping {
                internal_port: 9993,
                external: "203.0.113.9:9994".parse().unwrap(),
                lifetime: 120,
            }
        );
        unmap_udp(gateway, 9993).unwrap();
    }

    #[test]
    fn a_silent_gateway_is_given_up_on() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = std::time::Instant::now();
        let result = map_udp(silent.local_addr().unwrap(), 9993);
        assert!(matches!(result, Err(MappingError::NoAnswer)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}
