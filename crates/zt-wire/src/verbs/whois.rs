//! WHOIS (0x04, PROTOCOL.md §4.5): a list of 5-byte addresses to look up. The answer is
//! OK(WHOIS) with the identities ([`super::OkBody::Whois`]).
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use zt_crypto::Address;

/// A WHOIS request. A partial address at the end is ignored, as the reference does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Whois {
    pub addresses: Vec<Address>,
}

impl Whois {
    pub const VERB: Verb = Verb::Whois;

    pub fn read(payload: &[u8]) -> Result<Whois, WireError> {
        let mut r = Reader::new(payload);
        let mut addresses = Vec::with_capacity(payload.len() / Address::LEN);
        while r.remaining() >= Address::LEN {
            addresses.push(r.address("WHOIS address")?);
        }
        Ok(Whois { addresses })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.addresses.iter().for_each(|a| out.put_address(*a));
    }
}
