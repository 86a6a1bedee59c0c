//! ECHO (0x08, PROTOCOL.md §4.9): arbitrary bytes, returned unchanged in OK(ECHO).
use crate::cursor::Writer;
use crate::header::Verb;

/// An ECHO payload (often empty: the keepalive probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo<'a> {
    pub data: &'a [u8],
}

impl<'a> Echo<'a> {
    pub const VERB: Verb = Verb::Echo;

    /// Every byte string is a valid ECHO payload.
    pub fn read(payload: &'a [u8]) -> Echo<'a> {
        Echo { data: payload }
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.data);
    }
}
