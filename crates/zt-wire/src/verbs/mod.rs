//! Verb payloads (PROTOCOL.md §4): one typed representation per verb, each with `read` (parse
//! the bytes after the verb byte, never panicking) and `write` (append them), plus the packet
//! builder and decoder in [`packet`].
//!
//! Parsing follows the reference's leniency: bytes after the last field a verb defines are
//! ignored, and trailing optional fields (HELLO, OK(HELLO)) may be absent. Bulk data (frame
//! payloads, ECHO data, inline COMs) is borrowed from the input, not copied.
//!
//! NETWORK_CREDENTIALS, NETWORK_CONFIG_REQUEST and the config chunk bodies (NETWORK_CONFIG and
//! OK(NETWORK_CONFIG_REQUEST)) are parsed in [`network`] (`NetworkCredentials::parse`,
//! `NetworkConfigRequest::parse`, `ConfigPayload::parse`); [`Payload`] hands their bytes
//! through unparsed.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use crate::mac::Mac;
use crate::network_id::NetworkId;

pub mod echo;
pub mod error;
pub mod frame;
pub mod hello;
pub mod multicast;
pub mod network;
pub mod ok;
pub mod packet;
pub mod push_direct_paths;
pub mod rendezvous;
pub mod user_message;
pub mod whois;

pub use echo::Echo;
pub use error::{ErrorBody, ErrorCode, ErrorPayload};
pub use frame::{ExtFrame, Frame};
pub use hello::{Hello, MoonRef, WorldRef};
pub use multicast::{
    GatherMembers, MulticastFrame, MulticastGather, MulticastGroup, MulticastLike,
};
pub use ok::{OkBody, OkHello, OkMulticastFrame, OkMulticastGather, OkPayload};
pub use packet::{build, decode, BuiltPacket, DecodeError, DecodedPacket, OutgoingPacket};
pub use push_direct_paths::{DirectPath, PathAddress, PushDirectPaths};
pub use rendezvous::Rendezvous;
pub use user_message::UserMessage;
pub use whois::Whois;

/// Largest qualifier count a COM may carry (`ZT_NETWORK_COM_MAX_QUALIFIERS`).
const COM_MAX_QUALIFIERS: u16 = 8;
const COM_QUALIFIER_LEN: usize = 24;
const COM_SIGNATURE_LEN: usize = 96;

/// Take the bytes of one serialized COM (§6.6) from `r` without interpreting them: the verbs
/// that embed a COM (EXT_FRAME, MULTICAST_GATHER, MULTICAST_FRAME) only need its extent;
/// `crate::com` parses and verifies it.
fn read_com_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let start = r.clone();
    if r.u8("COM marker")? != 1 {
        return Err(WireError::invalid("COM marker", "expected 0x01"));
    }
    let qualifiers = r.u16("COM qualifier count")?;
    if qualifiers > COM_MAX_QUALIFIERS {
        return Err(WireError::TooLarge("COM qualifier count"));
    }
    r.skip(qualifiers as usize * COM_QUALIFIER_LEN, "COM qualifiers")?;
    let signed_by = r.address("COM signer")?;
    if signed_by.to_u64() != 0 {
        r.skip(COM_SIGNATURE_LEN, "COM signature")?;
    }
    let len = r.position() - start.position();
    let mut whole = start;
    whole.bytes(len, "COM")
}

fn read_nwid(r: &mut Reader<'_>) -> Result<NetworkId, WireError> {
    Ok(NetworkId(r.u64("network id")?))
}

fn read_mac(r: &mut Reader<'_>, field: &'static str) -> Result<Mac, WireError> {
    Ok(Mac(r.array(field)?))
}

/// Any verb's payload, dispatched on the verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    Nop,
    Hello(Hello),
    Error(ErrorPayload<'a>),
    Ok(OkPayload<'a>),
    Whois(Whois),
    Rendezvous(Rendezvous),
    Frame(Frame<'a>),
    ExtFrame(ExtFrame<'a>),
    Echo(Echo<'a>),
    MulticastLike(MulticastLike),
    PushDirectPaths(PushDirectPaths<'a>),
    MulticastGather(MulticastGather<'a>),
    MulticastFrame(MulticastFrame<'a>),
    UserMessage(UserMessage<'a>),
    /// Verbs parsed elsewhere (NETWORK_CREDENTIALS, NETWORK_CONFIG_REQUEST, NETWORK_CONFIG),
    /// the bonding verbs, REMOTE_TRACE and unknown verbs: the raw payload.
    Unparsed(Verb, &'a [u8]),
}

impl<'a> Payload<'a> {
    /// Parse the payload of a packet whose verb is `verb`. For HELLO the moon section must
    /// already be decrypted (see [`hello::crypt_moon_section`]).
    pub fn parse(verb: Verb, payload: &'a [u8]) -> Result<Payload<'a>, WireError> {
        Ok(match verb {
            Verb::Nop => Payload::Nop,
            Verb::Hello => Payload::Hello(Hello::read(payload)?),
            Verb::Error => Payload::Error(ErrorPayload::read(payload)?),
            Verb::Ok => Payload::Ok(OkPayload::read(payload)?),
            Verb::Whois => Payload::Whois(Whois::read(payload)?),
            Verb::Rendezvous => Payload::Rendezvous(Rendezvous::read(payload)?),
            Verb::Frame => Payload::Frame(Frame::read(payload)?),
            Verb::ExtFrame => Payload::ExtFrame(ExtFrame::read(payload)?),
            Verb::Echo => Payload::Echo(Echo::read(payload)),
            Verb::MulticastLike => Payload::MulticastLike(MulticastLike::read(payload)?),
            Verb::PushDirectPaths => Payload::PushDirectPaths(PushDirectPaths::read(payload)?),
            Verb::MulticastGather => Payload::MulticastGather(MulticastGather::read(payload)?),
            Verb::MulticastFrame => Payload::MulticastFrame(MulticastFrame::read(payload)?),
            Verb::UserMessage => Payload::UserMessage(UserMessage::read(payload)?),
            other => Payload::Unparsed(other, payload),
        })
    }

    /// The verb this payload travels under.
    pub fn verb(&self) -> Verb {
        match self {
            Payload::Nop => Verb::Nop,
            Payload::Hello(_) => Verb::Hello,
            Payload::Error(_) => Verb::Error,
            Payload::Ok(_) => Verb::Ok,
            Payload::Whois(_) => Verb::Whois,
            Payload::Rendezvous(_) => Verb::Rendezvous,
            Payload::Frame(_) => Verb::Frame,
            Payload::ExtFrame(_) => Verb::ExtFrame,
            Payload::Echo(_) => Verb::Echo,
            Payload::MulticastLike(_) => Verb::MulticastLike,
            Payload::PushDirectPaths(_) => Verb::PushDirectPaths,
            Payload::MulticastGather(_) => Verb::MulticastGather,
            Payload::MulticastFrame(_) => Verb::MulticastFrame,
            Payload::UserMessage(_) => Verb::UserMessage,
            Payload::Unparsed(v, _) => *v,
        }
    }

    /// Append the payload bytes (not the verb byte).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Nop => {}
            Payload::Hello(p) => p.write(out),
            Payload::Error(p) => p.write(out),
            Payload::Ok(p) => p.write(out),
            Payload::Whois(p) => p.write(out),
            Payload::Rendezvous(p) => p.write(out),
            Payload::Frame(p) => p.write(out),
            Payload::ExtFrame(p) => p.write(out),
            Payload::Echo(p) => p.write(out),
            Payload::MulticastLike(p) => p.write(out),
            Payload::PushDirectPaths(p) => p.write(out),
            Payload::MulticastGather(p) => p.write(out),
            Payload::MulticastFrame(p) => p.write(out),
            Payload::UserMessage(p) => p.write(out),
            Payload::Unparsed(_, b) => out.put_bytes(b),
        }
    }

    /// The payload bytes as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}
