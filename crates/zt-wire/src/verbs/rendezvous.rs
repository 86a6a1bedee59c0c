//! RENDEZVOUS (0x05, PROTOCOL.md §4.6): a relay tells us another peer's physical endpoint.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use zt_crypto::Address;

/// `[1] flags [5] peer [2] port [1] address length (4 or 16) [4|16] IP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendezvous {
    /// Always 0 from the reference.
    pub flags: u8,
    pub peer: Address,
    /// The peer's endpoint. Port 0 is representable; receivers ignore such a RENDEZVOUS.
    pub endpoint: SocketAddr,
}

impl Rendezvous {
    pub const VERB: Verb = Verb::Rendezvous;

    pub fn read(payload: &[u8]) -> Result<Rendezvous, WireError> {
        let mut r = Reader::new(payload);
        let flags = r.u8("RENDEZVOUS flags")?;
        let peer = r.address("RENDEZVOUS peer")?;
        let port = r.u16("RENDEZVOUS port")?;
        let ip = match r.u8("RENDEZVOUS address length")? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("RENDEZVOUS IPv4")?)),
            16 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("RENDEZVOUS IPv6")?)),
            n => {
                return Err(WireError::invalid(
                    "RENDEZVOUS address length",
                    format!("{n}"),
                ))
            }
        };
        Ok(Rendezvous {
            flags,
            peer,
            endpoint: SocketAddr::new(ip, port),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.flags);
        out.put_address(self.peer);
        out.put_u16(self.endpoint.port());
        match self.endpoint.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(4);
                out.put_bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(16);
                out.put_bytes(&ip.octets());
            }
        }
    }
}
