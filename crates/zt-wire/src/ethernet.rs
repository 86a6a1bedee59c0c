//! The Ethernet II header of frames on a virtual network's TAP (VL2 carries the MACs and the
//! ethertype in its own fields, so frames cross the TAP boundary through this one codec).
use crate::mac::Mac;

/// Destination MAC, source MAC, ethertype.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// The header of an Ethernet frame (no 802.1Q tag: ZeroTier carries the ethertype as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    pub destination: Mac,
    pub source: Mac,
    pub ethertype: u16,
}

impl EthernetHeader {
    /// The header of `frame`; `None` for a frame shorter than a header.
    pub fn parse(frame: &[u8]) -> Option<EthernetHeader> {
        let header: &[u8; ETHERNET_HEADER_LEN] =
            frame.get(..ETHERNET_HEADER_LEN)?.try_into().ok()?;
        let mut destination = [0u8; 6];
        let mut source = [0u8; 6];
        destination.copy_from_slice(&header[0..6]);
        source.copy_from_slice(&header[6..12]);
        Some(EthernetHeader {
            destination: Mac(destination),
            source: Mac(source),
            ethertype: u16::from_be_bytes([header[12], header[13]]),
        })
    }

    /// Write the header into the first [`ETHERNET_HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8; ETHERNET_HEADER_LEN]) {
        out[0..6].copy_from_slice(&self.destination.0);
        out[6..12].copy_from_slice(&self.source.0);
        out[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_runts_are_refused() {
        let header = EthernetHeader {
            destination: Mac([0x33, 0x33, 0, 0, 0, 1]),
            source: Mac([0x32, 1, 2, 3, 4, 5]),
            ethertype: 0x86dd,
        };
        let mut frame = [0u8; 20];
        header.emit((&mut frame[..ETHERNET_HEADER_LEN]).try_into().unwrap());
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(EthernetHeader::parse(&frame), Some(header));
        assert_eq!(EthernetHeader::parse(&frame[..13]), None);
    }
}
