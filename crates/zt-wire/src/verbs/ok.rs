//! OK (0x03, PROTOCOL.md §4 and §4.4): `[1] in-re verb [8] in-re packet ID` and a body chosen
//! by the in-re verb.
use super::multicast::{GatherMembers, MulticastGroup};
use super::network::ConfigAck;
use super::{read_com_bytes, read_nwid};
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use crate::inet::InetAddress;
use crate::network_id::NetworkId;
use zt_crypto::Identity;

/// An OK payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkPayload<'a> {
    pub in_re_verb: Verb,
    /// The wire packet ID of the request being answered.
    pub in_re_packet_id: u64,
    pub body: OkBody<'a>,
}

/// The in-re-verb specific part of an OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OkBody<'a> {
    Hello(OkHello<'a>),
    /// The identities the responder knew, in order (the reference uses only the first). At
    /// least one: a responder that knows none sends no OK.
    Whois(Vec<Identity>),
    /// OK(ECHO): the echoed bytes. Also the config-chunk ack quirk (§4.12), whose body is
    /// `[8] nwid [8] configUpdateId`: see [`OkBody::config_ack`].
    Echo(&'a [u8]),
    MulticastGather(OkMulticastGather),
    MulticastFrame(OkMulticastFrame<'a>),
    /// OK(EXT_FRAME) for the ACK flag: `[8] nwid`.
    ExtFrame(NetworkId),
    /// OK(NETWORK_CONFIG_REQUEST): a config chunk; parse with
    /// [`ConfigPayload::parse`](super::network::ConfigPayload::parse).
    NetworkConfig(&'a [u8]),
    /// Any other in-re verb: the raw body.
    Other(&'a [u8]),
}

impl OkBody<'_> {
    /// The body of an OK in-re ECHO read as a NETWORK_CONFIG acknowledgement. Only meaningful
    /// when the in-re packet ID names a config push we sent (an ordinary OK(ECHO) of 16+ bytes
    /// would read as one too).
    pub fn config_ack(&self) -> Option<ConfigAck> {
        match self {
            OkBody::Echo(b) => ConfigAck::parse(b).ok(),
            _ => None,
        }
    }
}

impl<'a> OkPayload<'a> {
    pub const VERB: Verb = Verb::Ok;

    pub fn read(payload: &'a [u8]) -> Result<OkPayload<'a>, WireError> {
        let mut r = Reader::new(payload);
        let in_re_verb = Verb::from(r.u8("OK in-re verb")?);
        let in_re_packet_id = r.u64("OK in-re packet id")?;
        let body = match in_re_verb {
            Verb::Hello => OkBody::Hello(OkHello::read(&mut r)?),
            Verb::Whois => {
                let mut ids = Vec::new();
                while !r.is_empty() {
                    let (id, used) = Identity::read_binary(r.rest())?;
                    if id.has_private() {
                        return Err(WireError::invalid(
                            "OK(WHOIS) identity",
                            "has a private key",
                        ));
                    }
                    r.skip(used, "OK(WHOIS) identity")?;
                    ids.push(id);
                }
                if ids.is_empty() {
                    return Err(WireError::Truncated("OK(WHOIS) identity"));
                }
                OkBody::Whois(ids)
            }
            Verb::Echo => OkBody::Echo(r.rest()),
            Verb::MulticastGather => OkBody::MulticastGather(OkMulticastGather::read(&mut r)?),
            Verb::MulticastFrame => OkBody::MulticastFrame(OkMulticastFrame::read(&mut r)?),
            Verb::ExtFrame => OkBody::ExtFrame(read_nwid(&mut r)?),
            Verb::NetworkConfigRequest => OkBody::NetworkConfig(r.rest()),
            _ => OkBody::Other(r.rest()),
        };
        Ok(OkPayload {
            in_re_verb,
            in_re_packet_id,
            body,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.in_re_verb.into());
        out.put_u64(self.in_re_packet_id);
        match &self.body {
            OkBody::Hello(h) => h.write(out),
            OkBody::Whois(ids) => ids.iter().for_each(|id| id.write_binary(out, false)),
            OkBody::Echo(b) | OkBody::NetworkConfig(b) | OkBody::Other(b) => out.put_bytes(b),
            OkBody::MulticastGather(g) => g.write(out),
            OkBody::MulticastFrame(f) => f.write(out),
            OkBody::ExtFrame(nwid) => out.put_u64(nwid.0),
        }
    }
}

/// OK(HELLO) body. The external address and world updates are optional for old senders;
/// `world_updates` may be present only with `physical_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkHello<'a> {
    /// The HELLO's timestamp, echoed.
    pub timestamp: u64,
    pub protocol_version: u8,
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    /// The physical address the responder received the HELLO from ("you are").
    pub physical_source: Option<InetAddress>,
    /// Zero or more serialized Worlds (`crate::world`), unparsed.
    pub world_updates: Option<&'a [u8]>,
}

impl<'a> OkHello<'a> {
    fn read(r: &mut Reader<'a>) -> Result<OkHello<'a>, WireError> {
        let mut ok = OkHello {
            timestamp: r.u64("OK(HELLO) timestamp")?,
            protocol_version: r.u8("OK(HELLO) protocol version")?,
            major: r.u8("OK(HELLO) major")?,
            minor: r.u8("OK(HELLO) minor")?,
            revision: r.u16("OK(HELLO) revision")?,
            physical_source: None,
            world_updates: None,
        };
        if r.is_empty() {
            return Ok(ok);
        }
        ok.physical_source = Some(InetAddress::read(r)?);
        if r.remaining() < 2 {
            return Ok(ok);
        }
        let len = r.u16("OK(HELLO) world update length")? as usize;
        ok.world_updates = Some(r.bytes(len, "OK(HELLO) world updates")?);
        Ok(ok)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.timestamp);
        out.put_u8(self.protocol_version);
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.revision);
        let Some(src) = &self.physical_source else {
            return;
        };
        src.write(out);
        let Some(worlds) = self.world_updates else {
            return;
        };
        let n = worlds.len().min(u16::MAX as usize);
        out.put_u16(n as u16);
        out.put_bytes(&worlds[..n]);
    }
}

/// OK(MULTICAST_GATHER) body: `[8] nwid [6] MAC [4] ADI` then the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkMulticastGather {
    pub nwid: NetworkId,
    pub group: MulticastGroup,
    pub gathered: GatherMembers,
}

impl OkMulticastGather {
    fn read(r: &mut Reader<'_>) -> Result<OkMulticastGather, WireError> {
        Ok(OkMulticastGather {
            nwid: read_nwid(r)?,
            group: MulticastGroup::read(r)?,
            gathered: GatherMembers::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.nwid.0);
        self.group.write(out);
        self.gathered.write(out);
    }
}

const OK_MULTICAST_FRAME_FLAG_COM: u8 = 0x01;
const OK_MULTICAST_FRAME_FLAG_GATHER: u8 = 0x02;

/// OK(MULTICAST_FRAME) body: `[8] nwid [6] MAC [4] ADI [1] flags`, then a COM if flags & 1
/// and gather results if flags & 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkMulticastFrame<'a> {
    pub nwid: NetworkId,
    pub group: MulticastGroup,
    /// Flag bits other than the two implied by `com` and `gathered`.
    pub flags: u8,
    pub com: Option<&'a [u8]>,
    pub gathered: Option<GatherMembers>,
}

impl<'a> OkMulticastFrame<'a> {
    fn read(r: &mut Reader<'a>) -> Result<OkMulticastFrame<'a>, WireError> {
        let nwid = read_nwid(r)?;
        let group = MulticastGroup::read(r)?;
        let flags = r.u8("OK(MULTICAST_FRAME) flags")?;
        let com = if flags & OK_MULTICAST_FRAME_FLAG_COM != 0 {
            Some(read_com_bytes(r)?)
        } else {
            None
        };
        let gathered = if flags & OK_MULTICAST_FRAME_FLAG_GATHER != 0 {
            Some(GatherMembers::read(r)?)
        } else {
            None
        };
        let implied = OK_MULTICAST_FRAME_FLAG_COM | OK_MULTICAST_FRAME_FLAG_GATHER;
        Ok(OkMulticastFrame {
            nwid,
            group,
            flags: flags & !implied,
            com,
            gathered,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let mut flags =
            self.flags & !(OK_MULTICAST_FRAME_FLAG_COM | OK_MULTICAST_FRAME_FLAG_GATHER);
        if self.com.is_some() {
            flags |= OK_MULTICAST_FRAME_FLAG_COM;
        }
        if self.gathered.is_some() {
            flags |= OK_MULTICAST_FRAME_FLAG_GATHER;
        }
        out.put_u64(self.nwid.0);
        self.group.write(out);
        out.put_u8(flags);
        if let Some(com) = self.com {
            out.put_bytes(com);
        }
        if let Some(g) = &self.gathered {
            g.write(out);
        }
    }
}
