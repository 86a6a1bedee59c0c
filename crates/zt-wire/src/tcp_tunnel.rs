//! The TCP fallback tunnel of zerotier-one (`service/OneService.cpp`, `tcp-proxy/`): how a
//! node whose UDP is blocked sends its datagrams over one TCP connection to a relay, which
//! forwards them as UDP and sends the answers back.
//!
//! The stream is a sequence of records dressed as TLS 1.2 application data, so that
//! middleboxes which let TLS through let it through:
//!
//! ```text
//!   0x17 0x03 0x03  len:u16 (big endian)  payload[len]
//! ```
//!
//! A payload of exactly [`HELLO_LEN`] bytes is the client's hello (its version: major,
//! minor, revision:u16), sent once after connecting; it tells the relay that every later
//! payload starts with an address. Otherwise a payload is an address then a ZeroTier
//! datagram: from the client, where the relay is to send it; from the relay, where it came
//! from. Addresses are `4, ip[4], port:u16`, `6, ip[16], port:u16`, or `0` (none).
//! An empty payload carries nothing and is skipped.
//!
//! zerotier-one does not look at the three header bytes; the decoder here refuses any other
//! value, because nothing but a ZeroTier tunnel sends records on this stream and a stream
//! that goes wrong never resynchronises.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::WireError;

/// The TLS record header every record starts with: content type 23 (application data),
/// version 3.3 (TLS 1.2).
pub const RECORD_PREFIX: [u8; 3] = [0x17, 0x03, 0x03];
/// The record header: [`RECORD_PREFIX`] and the payload length.
pub const RECORD_HEADER_LEN: usize = 5;
/// The largest payload a record can carry (its length field is 16 bits).
pub const MAX_RECORD_PAYLOAD: usize = u16::MAX as usize;
/// Length of the hello payload (major, minor, revision:u16).
pub const HELLO_LEN: usize = 4;

const ADDRESS_NONE: u8 = 0;
const ADDRESS_IPV4: u8 = 4;
const ADDRESS_IPV6: u8 = 6;
/// Type byte, IPv4 address, port.
const IPV4_ADDRESS_LEN: usize = 1 + 4 + 2;
/// Type byte, IPv6 address, port.
const IPV6_ADDRESS_LEN: usize = 1 + 16 + 2;

/// The version a client announces in its hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelVersion {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
}

/// One record of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// The client's greeting (ignored by clients when a relay would send one).
    Hello(TunnelVersion),
    /// A datagram with its address: the destination when the client sent it, the source
    /// when the relay did. `None` for the "no address" form.
    Datagram {
        address: Option<SocketAddr>,
        payload: &'a [u8],
    },
    /// A record with an empty payload (carries nothing; skipped by both ends).
    Empty,
}

/// Appends the client's hello record.
pub fn encode_hello(out: &mut Vec<u8>, version: TunnelVersion) {
    out.extend_from_slice(&RECORD_PREFIX);
    out.extend_from_slice(&(HELLO_LEN as u16).to_be_bytes());
    out.push(version.major);
    out.push(version.minor);
    out.extend_from_slice(&version.revision.to_be_bytes());
}

/// Appends one datagram record. Fails (appending nothing) when the address and datagram
/// do not fit one record.
pub fn encode_datagram(
    out: &mut Vec<u8>,
    address: Option<SocketAddr>,
    datagram: &[u8],
) -> Result<(), WireError> {
    let address_len = match address {
        None => 1,
        Some(SocketAddr::V4(_)) => IPV4_ADDRESS_LEN,
        Some(SocketAddr::V6(_)) => IPV6_ADDRESS_LEN,
    };
    let len = address_len + datagram.len();
    if len > MAX_RECORD_PAYLOAD {
        return Err(WireError::TooLarge("tunnel record"));
    }
    out.reserve(RECORD_HEADER_LEN + len);
    out.extend_from_slice(&RECORD_PREFIX);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    match address {
        None => out.push(ADDRESS_NONE),
        Some(SocketAddr::V4(v4)) => {
            out.push(ADDRESS_IPV4);
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&v4.port().to_be_bytes());
        }
        Some(SocketAddr::V6(v6)) => {
            out.push(ADDRESS_IPV6);
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.port().to_be_bytes());
        }
    }
    out.extend_from_slice(datagram);
    Ok(())
}

/// Parses a record's payload (what follows the five header bytes).
pub fn parse_payload(payload: &[u8]) -> Result<Record<'_>, WireError> {
    if payload.is_empty() {
        return Ok(Record::Empty);
    }
    // A hello is recognised by its length alone, as both zerotier-one ends do: no datagram
    // with an address is this short.
    if let [major, minor, rev_high, rev_low] = *payload {
        return Ok(Record::Hello(TunnelVersion {
            major,
            minor,
            revision: u16::from_be_bytes([rev_high, rev_low]),
        }));
    }
    let (address, rest) = match payload[0] {
        ADDRESS_NONE => (None, &payload[1..]),
        ADDRESS_IPV4 => {
            let Some(fields) = payload.get(1..IPV4_ADDRESS_LEN) else {
                return Err(WireError::Truncated("tunnel IPv4 address"));
            };
            let ip = Ipv4Addr::new(fields[0], fields[1], fields[2], fields[3]);
            let port = u16::from_be_bytes([fields[4], fields[5]]);
            (
                Some(SocketAddr::new(IpAddr::V4(ip), port)),
                &payload[IPV4_ADDRESS_LEN..],
            )
        }
        ADDRESS_IPV6 => {
            let Some(fields) = payload.get(1..IPV6_ADDRESS_LEN) else {
                return Err(WireError::Truncated("tunnel IPv6 address"));
            };
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&fields[..16]);
            let port = u16::from_be_bytes([fields[16], fields[17]]);
            (
                Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port)),
                &payload[IPV6_ADDRESS_LEN..],
            )
        }
        other => {
            return Err(WireError::invalid(
                "tunnel address type",
                format!("{other:#04x}"),
            ))
        }
    };
    Ok(Record::Datagram {
        address,
        payload: rest,
    })
}

/// Cuts a TCP byte stream into records, however the reads split it. Holds at most one
/// incomplete record plus the bytes of the last [`TunnelDecoder::push`].
#[derive(Debug, Default)]
pub struct TunnelDecoder {
    buffer: Vec<u8>,
    /// Where the next record starts in `buffer` (records already returned lie before it).
    start: usize,
}

impl TunnelDecoder {
    pub fn new() -> TunnelDecoder {
        TunnelDecoder::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        // Records already handed out are dropped here, not in `next_record`, whose result
        // borrows the buffer.
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record, `Ok(None)` until more bytes arrive. An error means the
    /// stream is not a tunnel (or is corrupt): the connection should be closed, and the
    /// decoder returns the same error from then on.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, WireError> {
        let Some(payload) = self.complete_payload()? else {
            return Ok(None);
        };
        // Checked before moving on, so that a bad record stays in place and keeps failing.
        parse_payload(&self.buffer[payload.clone()])?;
        self.start = payload.end;
        parse_payload(&self.buffer[payload]).map(Some)
    }

    /// The next complete record's payload, unparsed (for a relay, which skips records it
    /// cannot forward rather than closing). Errors only on a bad record header.
    pub fn next_payload(&mut self) -> Result<Option<&[u8]>, WireError> {
        let Some(payload) = self.complete_payload()? else {
            return Ok(None);
        };
        self.start = payload.end;
        Ok(Some(&self.buffer[payload]))
    }

    /// Where the payload of the next record lies in `buffer`, once all of it is there.
    fn complete_payload(&self) -> Result<Option<std::ops::Range<usize>>, WireError> {
        let pending = &self.buffer[self.start..];
        let prefix_len = pending.len().min(RECORD_PREFIX.len());
        if pending[..prefix_len] != RECORD_PREFIX[..prefix_len] {
            return Err(WireError::invalid(
                "tunnel record header",
                "not a TLS application data record",
            ));
        }
        if pending.len() < RECORD_HEADER_LEN {
            return Ok(None);
        }
        let len = u16::from_be_bytes([pending[3], pending[4]]) as usize;
        if pending.len() < RECORD_HEADER_LEN + len {
            return Ok(None);
        }
        let payload_start = self.start + RECORD_HEADER_LEN;
        Ok(Some(payload_start..payload_start + len))
    }

    /// Bytes held that do not yet make a record.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: TunnelVersion = TunnelVersion {
        major: 1,
        minor: 14,
        revision: 0x0102,
    };

    fn v4(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn hello_has_zerotier_ones_nine_bytes() {
        let mut out = Vec::new();
        encode_hello(&mut out, VERSION);
        assert_eq!(out, [0x17, 0x03, 0x03, 0x00, 0x04, 1, 14, 0x01, 0x02]);
    }

    #[test]
    fn an_ipv4_datagram_record_carries_the_address_in_network_order() {
        let mut out = Vec::new();
        encode_datagram(&mut out, v4("10.1.2.3:9993"), &[0xaa; 16]).unwrap();
        let mut expected = vec![0x17, 0x03, 0x03, 0x00, 23, 4, 10, 1, 2, 3, 0x27, 0x09];
        expected.extend_from_slice(&[0xaa; 16]);
        assert_eq!(out, expected);
    }

    #[test]
    fn records_survive_any_split_of_the_stream() {
        let mut stream = Vec::new();
        encode_hello(&mut stream, VERSION);
        encode_datagram(&mut stream, v4("203.0.113.9:9993"), b"0123456789abcdefXYZ").unwrap();
        encode_datagram(
            &mut stream,
            Some("[2001:db8::7]:21000".parse().unwrap()),
            b"v6",
        )
        .unwrap();
        encode_datagram(&mut stream, None, b"nowhere").unwrap();
        stream.extend_from_slice(&RECORD_PREFIX);
        stream.extend_from_slice(&[0, 0]);
        for chunk in 1..=stream.len() {
            let mut decoder = TunnelDecoder::new();
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece);
                while let Some(record) = decoder.next_record().unwrap() {
                    seen.push(format!("{record:?}"));
                }
            }
            assert_eq!(
                seen,
                [
                    format!("{:?}", Record::Hello(VERSION)),
                    format!(
                        "{:?}",
                        Record::Datagram {
                            address: v4("203.0.113.9:9993"),
                            payload: b"0123456789abcdefXYZ"
                        }
                    ),
                    format!(
                        "{:?}",
                        Record::Datagram {
                            address: Some("[2001:db8::7]:21000".parse().unwrap()),
                            payload: b"v6"
                        }
                    ),
                    format!(
                        "{:?}",
                        Record::Datagram {
                            address: None,
                            payload: b"nowhere"
                        }
                    ),
                    format!("{:?}", Record::Empty),
                ],
                "split every {chunk} bytes"
            );
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn bad_streams_are_errors_that_stay_errors() {
        let cases: [&[u8]; 5] = [
            // Not a TLS application data record (an HTTP request, say).
            b"GET / HTTP/1.1\r\n",
            // A wrong version byte is refused before the record is complete.
            &[0x17, 0x03, 0x01],
            // Unknown address type.
            &[0x17, 0x03, 0x03, 0x00, 0x05, 9, 1, 2, 3, 4],
            // Address types cut short.
            &[0x17, 0x03, 0x03, 0x00, 0x06, 4, 1, 2, 3, 4, 5],
            &[0x17, 0x03, 0x03, 0x00, 0x05, 6, 1, 2, 3, 4],
        ];
        for bytes in cases {
            let mut decoder = TunnelDecoder::new();
            decoder.push(bytes);
            assert!(decoder.next_record().is_err(), "{bytes:?}");
            decoder.push(&[0x17, 0x03, 0x03, 0, 0]);
            assert!(decoder.next_record().is_err(), "{bytes:?} stays refused");
        }
    }

    #[test]
    fn a_relay_reads_payloads_it_cannot_parse_and_moves_on() {
        let mut decoder = TunnelDecoder::new();
        decoder.push(&[
            0x17, 0x03, 0x03, 0x00, 0x02, 9, 9, 0x17, 0x03, 0x03, 0x00, 0x00,
        ]);
        assert_eq!(decoder.next_payload().unwrap(), Some(&[9u8, 9][..]));
        assert_eq!(decoder.next_payload().unwrap(), Some(&[][..]));
        assert_eq!(decoder.next_payload().unwrap(), None);
        decoder.push(b"HTTP");
        assert!(decoder.next_payload().is_err());
    }

    #[test]
    fn a_record_that_cannot_fit_is_refused_without_writing() {
        let mut out = vec![1, 2, 3];
        let too_big = vec![0u8; MAX_RECORD_PAYLOAD - IPV4_ADDRESS_LEN + 1];
        assert!(encode_datagram(&mut out, v4("10.0.0.1:1"), &too_big).is_err());
        assert_eq!(out, [1, 2, 3]);
        let fits = &too_big[1..];
        encode_datagram(&mut out, v4("10.0.0.1:1"), fits).unwrap();
        assert_eq!(out.len(), 3 + RECORD_HEADER_LEN + MAX_RECORD_PAYLOAD);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: every byte value in every position of short
        // streams, fed in pieces of varying size.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|i| (state >> ((i % 8) * 8)) as u8 ^ i as u8)
                .collect();
            // Half of the streams start with a valid header so the payload parser is reached.
            if state & 1 == 0 && bytes.len() >= 5 {
                bytes[..3].copy_from_slice(&RECORD_PREFIX);
                bytes[3] = 0;
                bytes[4] = (state >> 40) as u8 % 36;
            }
            let mut decoder = TunnelDecoder::new();
            for piece in bytes.chunks(1 + (state >> 50) as usize % 7) {
                decoder.push(piece);
                while let Ok(Some(_)) = decoder.next_record() {}
            }
        }
    }
}
