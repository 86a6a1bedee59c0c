//! USER_MESSAGE (0x14, PROTOCOL.md §4.17): `[8] type ID` and application data.
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;

/// Type IDs up to this value are reserved for ZeroTier itself.
pub const RESERVED_TYPE_ID_MAX: u64 = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserMessage<'a> {
    pub type_id: u64,
    pub data: &'a [u8],
}

impl<'a> UserMessage<'a> {
    pub const VERB: Verb = Verb::UserMessage;

    pub fn read(payload: &'a [u8]) -> Result<UserMessage<'a>, WireError> {
        let mut r = Reader::new(payload);
        let type_id = r.u64("USER_MESSAGE type id")?;
        Ok(UserMessage {
            type_id,
            data: r.rest(),
        })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.type_id);
        out.put_bytes(self.data);
    }
}
