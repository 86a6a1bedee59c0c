//! The ZeroTier `Dictionary`: `key=value` lines carrying network configs and config-request
//! metadata (PROTOCOL.md §6.3).
//!
//! Values are arbitrary bytes; the five bytes NUL, CR, LF, `\` and `=` are escaped on write.
//! Integers are hex, written as 16 zero-padded lowercase digits. The reference keeps a
//! dictionary in a fixed C buffer, so a serialized dictionary (plus its terminating NUL) must fit
//! the receiver's capacity: [`NETWORK_CONFIG_CAPACITY`] for configs, [`METADATA_CAPACITY`] for
//! request metadata.

use crate::error::WireError;
use zt_crypto::Address;

/// Capacity of a request-metadata dictionary at the controller
/// (`ZT_NETWORKCONFIG_METADATA_DICT_CAPACITY`). Bytes past this are lost by the reference.
pub const METADATA_CAPACITY: usize = 1024;

/// Capacity of a network-config dictionary in an x86-64 Linux build of the reference
/// (`ZT_NETWORKCONFIG_DICT_CAPACITY`); a config whose size is ≥ this is rejected.
pub const NETWORK_CONFIG_CAPACITY: usize = 484_520;

/// An ordered list of key/value pairs. Duplicate keys are kept in order; lookups return the
/// first, as the reference does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dictionary {
    entries: Vec<(String, Vec<u8>)>,
}

fn key_is_valid(key: &str) -> bool {
    !key.is_empty() && !key.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n' | b'='))
}

impl Dictionary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse dictionary text. Parsing stops at the first NUL (the C string terminator). Lines
    /// without `=` or with an empty key carry nothing the reference could look up and are
    /// skipped; a key that is not UTF-8 is skipped for the same reason (no reader asks for it).
    /// Never fails: the reference's reader accepts any bytes.
    pub fn parse(text: &[u8]) -> Dictionary {
        let text = match text.iter().position(|&b| b == 0) {
            Some(end) => &text[..end],
            None => text,
        };
        let mut entries = Vec::new();
        for line in text.split(|&b| b == b'\n' || b == b'\r') {
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (raw_key, raw_value) = (&line[..eq], &line[eq + 1..]);
            let Ok(key) = std::str::from_utf8(raw_key) else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            entries.push((key.to_string(), unescape(raw_value)));
        }
        Dictionary { entries }
    }

    /// Serialize (no trailing NUL, entries separated by `\n`, no trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            escape_into(value, &mut out);
        }
        out
    }

    /// Length of [`to_bytes`](Self::to_bytes) without building it.
    pub fn encoded_len(&self) -> usize {
        let separators = self.entries.len().saturating_sub(1);
        separators
            + self
                .entries
                .iter()
                .map(|(k, v)| {
                    k.len() + 1 + v.len() + v.iter().filter(|&&b| needs_escape(b)).count()
                })
                .sum::<usize>()
    }

    /// True if the serialized form plus its terminating NUL fits a reference buffer of
    /// `capacity` bytes.
    pub fn fits(&self, capacity: usize) -> bool {
        self.encoded_len() < capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The value as text (lossy only for invalid UTF-8, which no config string should hold).
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// A hex integer of any length (at least one digit). A value that is not hex is an error.
    pub fn get_u64(&self, key: &'static str) -> Result<Option<u64>, WireError> {
        self.get(key).map(|v| parse_hex_u64(key, v)).transpose()
    }

    /// A signed hex integer: optional `-` then hex digits.
    pub fn get_i64(&self, key: &'static str) -> Result<Option<i64>, WireError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let (negative, digits) = match v.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, v),
        };
        let magnitude = parse_hex_u64(key, digits)?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value
            .map(Some)
            .ok_or_else(|| WireError::invalid(key, "signed integer out of range"))
    }

    /// `1`, `t` or `T` is true; any other value is false.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| matches!(v.first(), Some(b'1' | b't' | b'T')))
    }

    /// An address written as hex (10 or 16 digits); the value must fit in 40 bits.
    pub fn get_address(&self, key: &'static str) -> Result<Option<Address>, WireError> {
        match self.get_u64(key)? {
            None => Ok(None),
            Some(v) => Address::new(v)
                .map(Some)
                .ok_or_else(|| WireError::invalid(key, "address wider than 40 bits")),
        }
    }

    /// Append a raw value. Keys that the format cannot carry are refused.
    pub fn add_bytes(&mut self, key: &str, value: &[u8]) -> Result<(), WireError> {
        if !key_is_valid(key) {
            return Err(WireError::invalid(
                "dictionary key",
                format!("{key:?} cannot be encoded"),
            ));
        }
        self.entries.push((key.to_string(), value.to_vec()));
        Ok(())
    }
    pub fn add_str(&mut self, key: &str, value: &str) -> Result<(), WireError> {
        self.add_bytes(key, value.as_bytes())
    }
    /// 16 zero-padded lowercase hex digits.
    pub fn add_u64(&mut self, key: &str, value: u64) -> Result<(), WireError> {
        self.add_str(key, &format!("{value:016x}"))
    }
    /// Hex with a `-` prefix when negative.
    pub fn add_i64(&mut self, key: &str, value: i64) -> Result<(), WireError> {
        let text = if value < 0 {
            format!("-{:016x}", value.unsigned_abs())
        } else {
            format!("{value:016x}")
        };
        self.add_str(key, &text)
    }
    pub fn add_bool(&mut self, key: &str, value: bool) -> Result<(), WireError> {
        self.add_str(key, if value { "1" } else { "0" })
    }
    /// 10 hex digits, as the config writer does for `id` and `tt`.
    pub fn add_address(&mut self, key: &str, value: Address) -> Result<(), WireError> {
        self.add_str(key, &value.to_string())
    }

    /// Remove every entry under `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }
}

/// Parse hex digits (any count ≥ 1, at most 16 significant) into a u64.
pub fn parse_hex_u64(field: &'static str, digits: &[u8]) -> Result<u64, WireError> {
    if digits.is_empty() {
        return Err(WireError::invalid(field, "empty integer"));
    }
    let mut value: u64 = 0;
    for &d in digits {
        let nibble = (d as char)
            .to_digit(16)
            .ok_or_else(|| WireError::invalid(field, "not a hex integer"))?;
        if value >> 60 != 0 {
            return Err(WireError::invalid(field, "integer wider than 64 bits"));
        }
        value = (value << 4) | u64::from(nibble);
    }
    Ok(value)
}

fn needs_escape(b: u8) -> bool {
    matches!(b, 0 | b'\r' | b'\n' | b'\\' | b'=')
}

fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            0 => out.extend_from_slice(b"\\0"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'=' => out.extend_from_slice(b"\\e"),
            other => out.push(other),
        }
    }
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        // A backslash at the very end escapes nothing and is dropped, as in the reference.
        match bytes.next() {
            Some(b'0') => out.push(0),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b'e') => out.push(b'='),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_five_bytes_and_round_trips() {
        let mut d = Dictionary::new();
        let value = [0u8, b'\r', b'\n', b'\\', b'=', b'x', 0xff];
        d.add_bytes("C", &value).unwrap();
        d.add_u64("v", 7).unwrap();
        let text = d.to_bytes();
        assert_eq!(
            text,
            b"C=\\0\\r\\n\\\\\\ex\xff\nv=0000000000000007".to_vec()
        );
        assert_eq!(d.encoded_len(), text.len());
        let back = Dictionary::parse(&text);
        assert_eq!(back, d);
        assert_eq!(back.get("C"), Some(&value[..]));
        assert_eq!(back.get_u64("v"), Ok(Some(7)));
    }

    #[test]
    fn reader_rules() {
        let d = Dictionary::parse(b"a=1\r\nnoequals\n=x\nb=\\q\\\nb=second\nc=t\0d=after-nul");
        assert_eq!(d.get("a"), Some(&b"1"[..]));
        assert_eq!(
            d.get("b"),
            Some(&b"q"[..]),
            "unknown escape yields the char; first key wins"
        );
        assert_eq!(d.get_bool("c"), Some(true));
        assert_eq!(d.get("d"), None, "NUL ends the text");
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn integers() {
        let mut d = Dictionary::new();
        d.add_i64("n", -5).unwrap();
        d.add_i64("p", 5).unwrap();
        d.add_address("id", Address::new(0xa6c5664b6f).unwrap())
            .unwrap();
        let d = Dictionary::parse(&d.to_bytes());
        assert_eq!(d.get_i64("n"), Ok(Some(-5)));
        assert_eq!(d.get_i64("p"), Ok(Some(5)));
        assert_eq!(d.get("id"), Some(&b"a6c5664b6f"[..]));
        assert_eq!(d.get_address("id"), Ok(Address::new(0xa6c5664b6f)));
        let bad = Dictionary::parse(b"x=zz\ny=\nz=11111111111111111");
        assert!(bad.get_u64("x").is_err());
        assert!(bad.get_u64("y").is_err());
        assert!(bad.get_u64("z").is_err());
        assert_eq!(bad.get_u64("missing"), Ok(None));
    }

    #[test]
    fn refuses_unencodable_keys_and_checks_capacity() {
        let mut d = Dictionary::new();
        assert!(d.add_str("a=b", "x").is_err());
        assert!(d.add_str("", "x").is_err());
        assert!(d.add_str("a\nb", "x").is_err());
        d.add_bytes("k", &[b'='; 10]).unwrap();
        assert_eq!(d.encoded_len(), 2 + 20);
        assert!(d.fits(23));
        assert!(!d.fits(22), "the terminating NUL needs room too");
    }
}
