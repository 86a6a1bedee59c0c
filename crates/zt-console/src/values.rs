//! The typed values of the router model: text of a property's [`ValueType`] is checked once
//! into a [`Value`], which every face uses from then on.
//!
//! The console checks what the user typed before it calls the backend; [`crate::MemoryBackend`]
//! and the daemon (which must not trust their REST clients) check what arrives the same way,
//! and the daemon's menus take typed values ([`Value`]) instead of re-reading strings. A
//! value's REST form (its [`std::fmt::Display`]) parses back to the same value.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use zt_crypto::Address;
use zt_wire::network_id::NetworkId;

use crate::duration::{format_duration_ms, parse_duration_ms};
use crate::error::ConsoleError;
use crate::schema::{IpFamily, Property, ValueType};

/// `first-last` addresses of one family (`first == last` for a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub first: IpAddr,
    pub last: IpAddr,
}

/// Always `first-last`, a single address too (`10.0.0.5-10.0.0.5`): how the controller
/// prints the pool it keeps.
impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// `dst/bits[@gateway]`; a bare destination address is a host route (/32, /128). The gateway
/// is of the destination's family. Whether host bits are set is the controller's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub destination: IpAddr,
    pub bits: u8,
    pub gateway: Option<IpAddr>,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.destination, self.bits)?;
        if let Some(gateway) = self.gateway {
            write!(f, "@{gateway}")?;
        }
        Ok(())
    }
}

/// A checked property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// [`ValueType::Text`], [`ValueType::Name`], [`ValueType::Reference`] (the name referred
    /// to) and [`ValueType::Enum`] (the full word).
    Text(String),
    Number(i64),
    Bool(bool),
    NetworkId(NetworkId),
    ZtAddress(Address),
    Ipv4(Ipv4Addr),
    /// [`ValueType::Ipv4Prefix`]: address and prefix length.
    Ipv4Prefix(Ipv4Addr, u8),
    Ranges(Vec<IpRange>),
    Addresses(Vec<IpAddr>),
    Routes(Vec<RouteSpec>),
    /// `auto` of [`ValueType::AutoOrTime`].
    Auto,
    /// A time, in milliseconds.
    Duration(u64),
    Words(Vec<String>),
    /// An optional property given the empty value: not set (`tcp-relay=""`).
    Unset,
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// The REST form: what `print` shows and what [`parse`] reads back.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn joined<T: fmt::Display>(f: &mut fmt::Formatter<'_>, list: &[T]) -> fmt::Result {
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Value::Text(text) => f.write_str(text),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::NetworkId(id) => write!(f, "{:016x}", id.0),
            Value::ZtAddress(address) => write!(f, "{address}"),
            Value::Ipv4(address) => write!(f, "{address}"),
            Value::Ipv4Prefix(address, bits) => write!(f, "{address}/{bits}"),
            Value::Ranges(ranges) => joined(f, ranges),
            Value::Addresses(addresses) => joined(f, addresses),
            Value::Routes(routes) => joined(f, routes),
            Value::Auto => f.write_str("auto"),
            Value::Duration(ms) => f.write_str(&format_duration_ms(*ms)),
            Value::Words(words) => joined(f, words),
            Value::Unset => Ok(()),
        }
    }
}

/// Check a value typed for `property` and return it typed. `reference_names` lists the names
/// a [`ValueType::Reference`] may take (the items of the referenced menu).
pub fn parse(
    property: &Property,
    text: &str,
    reference_names: &mut dyn FnMut(&'static str) -> Result<Vec<String>, ConsoleError>,
) -> Result<Value, ConsoleError> {
    let name = property.name;
    let invalid = || ConsoleError::invalid_value(name);
    // Empty clears an optional property that has no default (`tcp-relay=""`).
    let optional_empty = text.is_empty() && !property.required && property.default.is_none();
    match property.kind {
        ValueType::Text => Ok(Value::Text(text.to_string())),
        ValueType::WordList => Ok(Value::Words(list(text).map(str::to_string).collect())),
        ValueType::Name { max_len, limit } => {
            if text.len() > max_len {
                return Err(ConsoleError::Failure(format!(
                    "invalid value for argument {name}: {text:?} is longer than {max_len} characters ({limit})"
                )));
            }
            if !is_os_name(text) {
                return Err(invalid());
            }
            Ok(Value::Text(text.to_string()))
        }
        ValueType::YesNo => match text {
            "yes" | "true" => Ok(Value::Bool(true)),
            "no" | "false" => Ok(Value::Bool(false)),
            _ => Err(ConsoleError::no_match(name)),
        },
        ValueType::Number { .. } if optional_empty => Ok(Value::Unset),
        ValueType::Number { min, max } => {
            let number = parse_number(text).ok_or_else(invalid)?;
            if number < i128::from(min) || number > i128::from(max) {
                return Err(ConsoleError::Failure(format!(
                    "value of {name} is out of range ({min} .. {max})"
                )));
            }
            i64::try_from(number)
                .map(Value::Number)
                .map_err(|_| invalid())
        }
        ValueType::Enum(choices) => {
            if let Some(exact) = choices.iter().find(|c| **c == text) {
                return Ok(Value::Text(exact.to_string()));
            }
            let mut matching = choices
                .iter()
                .filter(|c| c.starts_with(text) && !text.is_empty());
            match (matching.next(), matching.next()) {
                (Some(one), None) => Ok(Value::Text(one.to_string())),
                (Some(_), Some(_)) => Err(ConsoleError::Failure(format!(
                    "ambiguous value of {name}, more than one possible value matches input"
                ))),
                _ => Err(ConsoleError::no_match(name)),
            }
        }
        ValueType::Reference(path) => {
            let names = reference_names(path)?;
            if names.iter().any(|n| n == text) {
                Ok(Value::Text(text.to_string()))
            } else {
                Err(ConsoleError::no_match(name))
            }
        }
        ValueType::NetworkId if optional_empty => Ok(Value::Unset),
        ValueType::NetworkId => text
            .parse::<NetworkId>()
            .map(Value::NetworkId)
            .map_err(|_| invalid()),
        ValueType::ZtAddress => text
            .parse::<Address>()
            .map(Value::ZtAddress)
            .map_err(|_| invalid()),
        ValueType::Ipv4 => text.parse().map(Value::Ipv4).map_err(|_| invalid()),
        ValueType::Ipv4Prefix => {
            let (address, bits) = parse_prefix(text).ok_or_else(invalid)?;
            match address {
                IpAddr::V4(v4) => Ok(Value::Ipv4Prefix(v4, bits)),
                IpAddr::V6(_) => Err(invalid()),
            }
        }
        ValueType::IpRanges(family) => list(text)
            .map(|part| parse_range(part, family).ok_or_else(invalid))
            .collect::<Result<_, _>>()
            .map(Value::Ranges),
        ValueType::IpList => list(text)
            .map(|part| part.parse::<IpAddr>().map_err(|_| invalid()))
            .collect::<Result<_, _>>()
            .map(Value::Addresses),
        ValueType::RouteList => list(text)
            .map(|part| parse_route(part).ok_or_else(invalid))
            .collect::<Result<_, _>>()
            .map(Value::Routes),
        ValueType::AutoOrTime if text == "auto" => Ok(Value::Auto),
        ValueType::AutoOrTime | ValueType::Time => parse_duration_ms(text)
            .map(Value::Duration)
            .ok_or_else(invalid),
    }
}

/// What `unset` gives `property`: its default, or, without one, its empty value (a cleared
/// list, text or optional number). A property with neither (a mandatory one) cannot be unset.
pub fn unset_value(property: &Property) -> Result<Value, ConsoleError> {
    let text = property.default.unwrap_or("");
    // A default of a reference (`instance=zt1`) is taken as it is.
    parse(property, text, &mut |_| Ok(vec![text.to_string()]))
        .map_err(|_| ConsoleError::Failure(format!("failure: {} can not be unset", property.name)))
}

/// Check a value typed for `property` and return its REST form (see [`parse`]).
pub fn validate(
    property: &Property,
    text: &str,
    reference_names: &mut dyn FnMut(&'static str) -> Result<Vec<String>, ConsoleError>,
) -> Result<String, ConsoleError> {
    parse(property, text, reference_names).map(|value| value.to_string())
}

/// Non-empty comma-separated items, trimmed.
fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// See [`ValueType::Name`].
fn is_os_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && !text.starts_with('*')
        && !text
            .chars()
            .any(|c| matches!(c, '/' | ',' | ':') || c.is_whitespace() || c.is_control())
}

/// Decimal, `0x` hexadecimal or leading-zero octal, as RouterOS reads numbers.
fn parse_number(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8).ok()?
    } else {
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// `address[/bits]`; a bare address is a host prefix.
fn parse_prefix(text: &str) -> Option<(IpAddr, u8)> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address.parse::<IpAddr>().ok()?, Some(bits)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => bits.parse::<u8>().ok()?,
        Some(_) => return None,
        None => max,
    };
    (bits <= max).then_some((address, bits))
}

fn parse_range(text: &str, family: IpFamily) -> Option<IpRange> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
        None => {
            let address: IpAddr = text.parse().ok()?;
            (address, address)
        }
    };
    let fits = |a: IpAddr| a.is_ipv4() == (family == IpFamily::V4);
    (fits(first) && fits(last) && first <= last).then_some(IpRange { first, last })
}

fn parse_route(text: &str) -> Option<RouteSpec> {
    let (destination, gateway) = match text.split_once('@') {
        Some((destination, gateway)) => (destination, Some(gateway.parse::<IpAddr>().ok()?)),
        None => (text, None),
    };
    let (destination, bits) = parse_prefix(destination)?;
    if gateway.is_some_and(|g| g.is_ipv4() != destination.is_ipv4() || g.is_unspecified()) {
        return None;
    }
    Some(RouteSpec {
        destination,
        bits,
        gateway,
    })
}

/// The console form of a REST value: booleans become `yes`/`no`.
pub fn console_form(kind: Option<ValueType>, rest: &str) -> String {
    match (kind, rest) {
        (Some(ValueType::YesNo), "true") => "yes".into(),
        (Some(ValueType::YesNo), "false") => "no".into(),
        _ => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::menu;

    fn check_value(path: &str, property: &str, text: &str) -> Result<String, String> {
        let property = menu(path).unwrap().property(property).unwrap();
        validate(property, text, &mut |_| Ok(vec!["zt1".to_string()])).map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_checked_and_normalised() {
        let iface = "/zerotier/interface";
        assert_eq!(check_value(iface, "allow-global", "yes"), Ok("true".into()));
        assert_eq!(
            check_value(iface, "allow-global", "false"),
            Ok("false".into())
        );
        assert_eq!(
            check_value(iface, "allow-global", "maybe"),
            Err("input does not match any value of allow-global".into())
        );
        assert_eq!(
            check_value(iface, "network", "1D71939404912B40"),
            Ok("1d71939404912b40".into())
        );
        assert_eq!(
            check_value(iface, "network", "1d7193940491"),
            Err("invalid value for argument network".into())
        );
        assert_eq!(check_value(iface, "instance", "zt1"), Ok("zt1".into()));
        assert_eq!(
            check_value(iface, "instance", "zt9"),
            Err("input does not match any value of instance".into())
        );
        assert_eq!(check_value(iface, "arp-timeout", "auto"), Ok("auto".into()));
        assert_eq!(check_value(iface, "arp-timeout", "30s"), Ok("30s".into()));
        assert!(check_value(iface, "arp-timeout", "soon").is_err());
        assert_eq!(
            check_value("/zerotier", "port", "0x2709"),
            Ok("9993".into())
        );
        assert_eq!(
            check_value("/zerotier", "port", "70000"),
            Err("value of port is out of range (1 .. 65535)".into())
        );
        assert_eq!(
            check_value("/zerotier", "port", "99a"),
            Err("invalid value for argument port".into())
        );
        let ctl = "/zerotier/controller";
        assert!(check_value(ctl, "ip-range", "172.27.27.10-172.27.27.20").is_ok());
        assert!(check_value(ctl, "ip-range", "172.27.27.20-172.27.27.10").is_err());
        assert!(check_value(ctl, "ip-range", "").is_ok());
        assert!(check_value(ctl, "routes", "172.27.27.0/24,0.0.0.0/0@172.27.27.1").is_ok());
        assert!(check_value(ctl, "routes", "172.27.27.0/33").is_err());
        assert!(check_value(ctl, "routes", "10.0.0.0/24@fd00::1").is_err());
        assert_eq!(
            check_value(
                ctl,
                "routes",
                "fd00:feed:feed:beef::/64,10.1.0.0/16@10.0.0.1,10.9.9.9"
            ),
            Ok("fd00:feed:feed:beef::/64,10.1.0.0/16@10.0.0.1,10.9.9.9/32".into())
        );
        assert!(check_value(ctl, "ip6-range", "fd00::1-fd00::ff").is_ok());
        assert!(check_value(ctl, "ip6-range", "10.0.0.1-10.0.0.9").is_err());
        assert!(check_value(ctl, "ip-range", "fd00::1-fd00::ff").is_err());
        assert_eq!(
            check_value(ctl, "ip-range", "10.0.0.1-10.0.0.9, 10.0.1.5"),
            Ok("10.0.0.1-10.0.0.9,10.0.1.5-10.0.1.5".into())
        );
        assert_eq!(
            check_value(iface, "name", "zerotier-office-1"),
            Err("invalid value for argument name: \"zerotier-office-1\" is longer than 15 characters (Linux interface names have at most 15 characters)".into())
        );
        assert!(check_value(iface, "name", "a/b").is_err());
        assert_eq!(
            check_value("/zerotier", "route-distance", "0"),
            Err("value of route-distance is out of range (1 .. 255)".into())
        );
        assert_eq!(check_value("/zerotier", "tcp-relay", ""), Ok("".into()));
        assert!(check_value("/zerotier", "port", "").is_err());
        let member = "/zerotier/controller/member";
        assert!(check_value(member, "ip-address", "172.27.27.15,172.27.27.16").is_ok());
        assert!(check_value(member, "ip-address", "172.27.27.300").is_err());
        assert!(check_value(member, "ip-address", "fd00::5").is_ok());
        assert!(check_value(member, "zt-address", "00000000ff").is_ok());
        assert!(check_value(member, "zt-address", "00000000f").is_err());
    }

    #[test]
    fn console_form_of_booleans() {
        assert_eq!(console_form(Some(ValueType::YesNo), "true"), "yes");
        assert_eq!(console_form(Some(ValueType::Text), "true"), "true");
        assert_eq!(console_form(None, "x"), "x");
    }
}
