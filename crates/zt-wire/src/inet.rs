//! Serialized InetAddress (PROTOCOL.md §3.9): an optional IPv4/IPv6 address with a 16-bit port.
//!
//! In network configs the "port" of an assigned address or route target is a netmask bit
//! count; [`InetAddress::bits`] and the `ip/bits` text form serve that use.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

const TYPE_NIL: u8 = 0x00;
const TYPE_IPV4: u8 = 0x04;
const TYPE_IPV6: u8 = 0x06;
/// Ethernet and Bluetooth endpoint types: 6 bytes that the reference skips.
const TYPE_SKIPPED_ETHERNET: u8 = 0x01;
const TYPE_SKIPPED_BLUETOOTH: u8 = 0x02;
/// A length-prefixed endpoint type the reference skips.
const TYPE_SKIPPED_LENGTH_PREFIXED: u8 = 0x03;

/// An IP address with a port (or netmask bits), or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InetAddress {
    /// The one-byte `0x00` form: unknown or absent.
    #[default]
    Nil,
    V4(SocketAddrV4),
    V6(SocketAddrV6),
}

impl InetAddress {
    pub fn new(ip: IpAddr, port: u16) -> InetAddress {
        InetAddress::from(SocketAddr::new(ip, port))
    }

    /// Read one serialized address. Types 1, 2 and 3 are consumed and read as [`Nil`], as the
    /// reference does; any other unknown type is an error.
    ///
    /// [`Nil`]: InetAddress::Nil
    pub fn read(r: &mut Reader<'_>) -> Result<InetAddress, WireError> {
        match r.u8("inet address type")? {
            TYPE_NIL => Ok(InetAddress::Nil),
            TYPE_IPV4 => {
                let ip: [u8; 4] = r.array("inet address IPv4")?;
                let port = r.u16("inet address port")?;
                Ok(InetAddress::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
            }
            TYPE_IPV6 => {
                let ip: [u8; 16] = r.array("inet address IPv6")?;
                let port = r.u16("inet address port")?;
                Ok(InetAddress::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    0,
                    0,
                )))
            }
            TYPE_SKIPPED_ETHERNET | TYPE_SKIPPED_BLUETOOTH => {
                r.skip(6, "skipped inet address")?;
                Ok(InetAddress::Nil)
            }
            TYPE_SKIPPED_LENGTH_PREFIXED => {
                let len = r.u16("skipped inet address length")?;
                r.skip(len as usize, "skipped inet address")?;
                Ok(InetAddress::Nil)
            }
            other => Err(WireError::invalid(
                "inet address type",
                format!("{other:#04x}"),
            )),
        }
    }

    /// Parse exactly one address from `buf` (trailing bytes are an error).
    pub fn parse(buf: &[u8]) -> Result<InetAddress, WireError> {
        let mut r = Reader::new(buf);
        let a = InetAddress::read(&mut r)?;
        if !r.is_empty() {
            return Err(WireError::invalid("inet address", "trailing bytes"));
        }
        Ok(a)
    }

    /// Append the serialized form (1, 7 or 19 bytes).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            InetAddress::Nil => out.put_u8(TYPE_NIL),
            InetAddress::V4(a) => {
                out.put_u8(TYPE_IPV4);
                out.put_bytes(&a.ip().octets());
                out.put_u16(a.port());
            }
            InetAddress::V6(a) => {
                out.put_u8(TYPE_IPV6);
                out.put_bytes(&a.ip().octets());
                out.put_u16(a.port());
            }
        }
    }

    /// Length of [`InetAddress::write`]'s output.
    pub fn wire_len(&self) -> usize {
        match self {
            InetAddress::Nil => 1,
            InetAddress::V4(_) => 7,
            InetAddress::V6(_) => 19,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, InetAddress::Nil)
    }
    pub fn ip(&self) -> Option<IpAddr> {
        self.socket_addr().map(|s| s.ip())
    }
    /// The port; 0 for [`InetAddress::Nil`].
    pub fn port(&self) -> u16 {
        self.socket_addr().map_or(0, |s| s.port())
    }
    /// The port field read as a netmask bit count (its meaning inside network configs).
    pub fn bits(&self) -> u16 {
        self.port()
    }
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match *self {
            InetAddress::Nil => None,
            InetAddress::V4(a) => Some(SocketAddr::V4(a)),
            InetAddress::V6(a) => Some(SocketAddr::V6(a)),
        }
    }
    /// The same address with another port (or bit count).
    pub fn with_port(&self, port: u16) -> InetAddress {
        match self.ip() {
            Some(ip) => InetAddress::new(ip, port),
            None => InetAddress::Nil,
        }
    }
}

impl From<SocketAddr> for InetAddress {
    /// IPv6 flow info and scope ID have no place on the wire and are dropped.
    fn from(s: SocketAddr) -> InetAddress {
        match s {
            SocketAddr::V4(a) => InetAddress::V4(a),
            SocketAddr::V6(a) => InetAddress::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0)),
        }
    }
}

impl TryFrom<InetAddress> for SocketAddr {
    type Error = WireError;
    fn try_from(a: InetAddress) -> Result<SocketAddr, WireError> {
        a.socket_addr()
            .ok_or_else(|| WireError::invalid("inet address", "nil has no socket address"))
    }
}

impl fmt::Display for InetAddress {
    /// The reference's `ip/port` text (also `ip/bits` in configs); `nil` for nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InetAddress::Nil => f.write_str("nil"),
            InetAddress::V4(a) => write!(f, "{}/{}", a.ip(), a.port()),
            InetAddress::V6(a) => write!(f, "{}/{}", a.ip(), a.port()),
        }
    }
}

impl FromStr for InetAddress {
    type Err = WireError;
    /// Parse `ip/port` or `ip/bits` (the [`Display`](fmt::Display) form). `nil` is Nil.
    fn from_str(s: &str) -> Result<InetAddress, WireError> {
        if s == "nil" {
            return Ok(InetAddress::Nil);
        }
        let (ip, port) = s
            .rsplit_once('/')
            .ok_or_else(|| WireError::invalid("inet address", "missing '/'"))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| WireError::invalid("inet address", "bad IP"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| WireError::invalid("inet address", "bad port or bits"))?;
        Ok(InetAddress::new(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_bytes_match_the_capture() {
        // OK(HELLO) in zt114-join frame 3 reports "you are 10.77.0.3/9993".
        let wire = hex::decode("040a4d00032709").unwrap();
        let a = InetAddress::parse(&wire).unwrap();
        assert_eq!(a.to_string(), "10.77.0.3/9993");
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out, wire);
        assert_eq!(a.wire_len(), 7);
    }

    #[test]
    fn ipv6_round_trips_and_converts() {
        let s: SocketAddr = "[fd51:479c:ea31:ccae:5c99:9351:479c:ea31]:9993"
            .parse()
            .unwrap();
        let a = InetAddress::from(s);
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out.len(), 19);
        assert_eq!(InetAddress::parse(&out).unwrap(), a);
        assert_eq!(SocketAddr::try_from(a).unwrap(), s);
        assert_eq!(a.to_string().parse::<InetAddress>().unwrap(), a);
    }

    #[test]
    fn skipped_types_consume_their_bytes() {
        let mut r = Reader::new(&[0x01, 1, 2, 3, 4, 5, 6, 0x03, 0, 2, 9, 9, 0x00, 0x07]);
        assert_eq!(InetAddress::read(&mut r).unwrap(), InetAddress::Nil);
        assert_eq!(InetAddress::read(&mut r).unwrap(), InetAddress::Nil);
        assert_eq!(InetAddress::read(&mut r).unwrap(), InetAddress::Nil);
        assert!(InetAddress::read(&mut r).is_err());
    }

    #[test]
    fn every_prefix_of_a_valid_address_is_an_error() {
        let mut out = Vec::new();
        InetAddress::new("::1".parse().unwrap(), 7).write(&mut out);
        for n in 0..out.len() {
            assert!(InetAddress::parse(&out[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn bits_are_the_port_field() {
        let a: InetAddress = "172.27.27.0/24".parse().unwrap();
        assert_eq!(a.bits(), 24);
        assert_eq!(a.ip(), Some("172.27.27.0".parse().unwrap()));
        assert!(SocketAddr::try_from(InetAddress::Nil).is_err());
    }
}
