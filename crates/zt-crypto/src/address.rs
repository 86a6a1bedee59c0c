//! The 40-bit ZeroTier address.
use std::fmt;
use std::str::FromStr;

/// A 40-bit ZeroTier node address (stored in the low 40 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(u64);

/// Error for address parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ZeroTier address: {0}")]
pub struct AddressError(pub String);

impl Address {
    pub const LEN: usize = 5;

    /// Build from the low 40 bits of `v`; `None` if higher bits are set.
    pub fn new(v: u64) -> Option<Address> {
        (v >> 40 == 0).then_some(Address(v))
    }
    pub fn from_bytes(b: &[u8; 5]) -> Address {
        Address(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }
    /// Reads 5 bytes; `None` if the slice is shorter.
    pub fn from_slice(b: &[u8]) -> Option<Address> {
        b.get(..5)
            .map(|s| Address::from_bytes(s.try_into().expect("5 bytes")))
    }
    pub fn to_bytes(self) -> [u8; 5] {
        let v = self.0.to_be_bytes();
        [v[3], v[4], v[5], v[6], v[7]]
    }
    pub fn to_u64(self) -> u64 {
        self.0
    }
    /// Reserved addresses (zero, or the 0xff prefix used for fragments) never name a node.
    pub fn is_reserved(self) -> bool {
        self.0 == 0 || (self.0 >> 32) == 0xff
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({:010x})", self.0)
    }
}
impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .ok()
            .and_then(Address::new)
            .ok_or_else(|| AddressError(s.to_string()))
    }
}
