//! FRAME (0x06) and EXT_FRAME (0x07), PROTOCOL.md §4.7–4.8: Ethernet frames on a network.
use super::{read_com_bytes, read_mac, read_nwid};
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use crate::mac::Mac;
use crate::network_id::NetworkId;

/// FRAME: a unicast frame between the two ends' derived MACs. `[8] nwid [2] ethertype [..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub nwid: NetworkId,
    pub ethertype: u16,
    /// The Ethernet payload (no Ethernet header).
    pub payload: &'a [u8],
}

/// Bytes of a FRAME payload before the Ethernet payload: network ID and ethertype.
pub const FRAME_PREFIX_LEN: usize = 10;

impl<'a> Frame<'a> {
    pub const VERB: Verb = Verb::Frame;

    /// Write the network ID and ethertype into the [`FRAME_PREFIX_LEN`] bytes before an
    /// Ethernet payload that is already in place (the data path builds FRAMEs around frames
    /// read from a TAP without moving them).
    pub fn emit_prefix(nwid: NetworkId, ethertype: u16, out: &mut [u8; FRAME_PREFIX_LEN]) {
        out[..8].copy_from_slice(&nwid.0.to_be_bytes());
        out[8..].copy_from_slice(&ethertype.to_be_bytes());
    }

    pub fn read(payload: &'a [u8]) -> Result<Frame<'a>, WireError> {
        let mut r = Reader::new(payload);
        let nwid = read_nwid(&mut r)?;
        let ethertype = r.u16("FRAME ethertype")?;
        Ok(Frame {
            nwid,
            ethertype,
            payload: r.rest(),
        })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.nwid.0);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}

/// EXT_FRAME flag: an inline COM follows the flags (deprecated, still parsed).
const FLAG_COM: u8 = 0x01;
/// EXT_FRAME flag: the sender wants OK(EXT_FRAME).
pub const EXT_FRAME_FLAG_ACK_REQUESTED: u8 = 0x10;

/// EXT_FRAME: a frame with explicit MACs (bridging, TEE/WATCH/REDIRECT copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtFrame<'a> {
    pub nwid: NetworkId,
    /// Flag bits other than "COM attached", which `com` implies.
    pub flags: u8,
    /// Inline COM, unparsed (see `crate::com`).
    pub com: Option<&'a [u8]>,
    pub destination: Mac,
    pub source: Mac,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> ExtFrame<'a> {
    pub const VERB: Verb = Verb::ExtFrame;

    pub fn read(payload: &'a [u8]) -> Result<ExtFrame<'a>, WireError> {
        let mut r = Reader::new(payload);
        let nwid = read_nwid(&mut r)?;
        let flags = r.u8("EXT_FRAME flags")?;
        let com = if flags & FLAG_COM != 0 {
            Some(read_com_bytes(&mut r)?)
        } else {
            None
        };
        let destination = read_mac(&mut r, "EXT_FRAME destination MAC")?;
        let source = read_mac(&mut r, "EXT_FRAME source MAC")?;
        let ethertype = r.u16("EXT_FRAME ethertype")?;
        Ok(ExtFrame {
            nwid,
            flags: flags & !FLAG_COM,
            com,
            destination,
            source,
            ethertype,
            payload: r.rest(),
        })
    }

    pub fn ack_requested(&self) -> bool {
        self.flags & EXT_FRAME_FLAG_ACK_REQUESTED != 0
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.nwid.0);
        out.put_u8(self.flags & !FLAG_COM | if self.com.is_some() { FLAG_COM } else { 0 });
        if let Some(com) = self.com {
            out.put_bytes(com);
        }
        out.put_bytes(&self.destination.0);
        out.put_bytes(&self.source.0);
        out.put_u16(self.ethertype);
        out.put_bytes(self.payload);
    }
}
