//! PUSH_DIRECT_PATHS (0x10, PROTOCOL.md §4.13): physical endpoints a peer can be reached at.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// Record flag: forget this path (the receiver ignores the record).
pub const PATH_FLAG_FORGET: u8 = 0x01;
/// Record flag: cluster redirect (try it and prefer it over the path it came in on).
pub const PATH_FLAG_CLUSTER_REDIRECT: u8 = 0x02;

const ADDR_TYPE_IPV4: u8 = 4;
const ADDR_TYPE_IPV6: u8 = 6;

/// The address of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathAddress<'a> {
    V4(SocketAddrV4),
    V6(SocketAddrV6),
    /// An address type the receiver skips (kept so the record re-serializes unchanged).
    Other {
        kind: u8,
        bytes: &'a [u8],
    },
}

/// One record: `[1] flags [2] extLen [ext] [1] addrType [1] addrLen [addr]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectPath<'a> {
    pub flags: u8,
    /// Extension bytes; ignored by receivers, empty from the reference.
    pub extension: &'a [u8],
    pub address: PathAddress<'a>,
}

/// A PUSH_DIRECT_PATHS payload: `[2] count` records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushDirectPaths<'a> {
    pub paths: Vec<DirectPath<'a>>,
}

impl<'a> PushDirectPaths<'a> {
    pub const VERB: Verb = Verb::PushDirectPaths;

    pub fn read(payload: &'a [u8]) -> Result<PushDirectPaths<'a>, WireError> {
        let mut r = Reader::new(payload);
        let count = r.u16("PUSH_DIRECT_PATHS count")? as usize;
        // Each record is at least 5 bytes, which bounds the allocation by the input size.
        let mut paths = Vec::with_capacity(count.min(r.remaining() / 5));
        for _ in 0..count {
            let flags = r.u8("path flags")?;
            let ext_len = r.u16("path extension length")? as usize;
            let extension = r.bytes(ext_len, "path extension")?;
            let kind = r.u8("path address type")?;
            let len = r.u8("path address length")? as usize;
            let bytes = r.bytes(len, "path address")?;
            let address = match (kind, len) {
                (ADDR_TYPE_IPV4, 6) => {
                    let mut a = Reader::new(bytes);
                    let ip = Ipv4Addr::from(a.array::<4>("path IPv4")?);
                    PathAddress::V4(SocketAddrV4::new(ip, a.u16("path port")?))
                }
                (ADDR_TYPE_IPV6, 18) => {
                    let mut a = Reader::new(bytes);
                    let ip = Ipv6Addr::from(a.array::<16>("path IPv6")?);
                    PathAddress::V6(SocketAddrV6::new(ip, a.u16("path port")?, 0, 0))
                }
                (ADDR_TYPE_IPV4 | ADDR_TYPE_IPV6, _) => {
                    return Err(WireError::invalid("path address length", format!("{len}")));
                }
                _ => PathAddress::Other { kind, bytes },
            };
            paths.push(DirectPath {
                flags,
                extension,
                address,
            });
        }
        Ok(PushDirectPaths { paths })
    }

    /// Writes at most 65535 records; an over-long extension or address is cut to its limit.
    pub fn write(&self, out: &mut Vec<u8>) {
        let n = self.paths.len().min(u16::MAX as usize);
        out.put_u16(n as u16);
        for p in &self.paths[..n] {
            out.put_u8(p.flags);
            let ext = &p.extension[..p.extension.len().min(u16::MAX as usize)];
            out.put_u16(ext.len() as u16);
            out.put_bytes(ext);
            match p.address {
                PathAddress::V4(a) => {
                    out.put_u8(ADDR_TYPE_IPV4);
                    out.put_u8(6);
                    out.put_bytes(&a.ip().octets());
                    out.put_u16(a.port());
                }
                PathAddress::V6(a) => {
                    out.put_u8(ADDR_TYPE_IPV6);
                    out.put_u8(18);
                    out.put_bytes(&a.ip().octets());
                    out.put_u16(a.port());
                }
                PathAddress::Other { kind, bytes } => {
                    let b = &bytes[..bytes.len().min(u8::MAX as usize)];
                    out.put_u8(kind);
                    out.put_u8(b.len() as u8);
                    out.put_bytes(b);
                }
            }
        }
    }
}
