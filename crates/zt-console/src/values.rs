//! Checking typed values and converting between console form (`yes`) and REST form (`true`).
//!
//! Shared by the console (before it calls the backend) and [`crate::MemoryBackend`] (which, like
//! the daemon, must not trust its REST clients).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::duration::parse_duration_ms;
use crate::error::ConsoleError;
use crate::schema::{Property, ValueType};

/// Check a value typed for `property` and return its REST form. `reference_names` lists the
/// names a [`ValueType::Reference`] may take (the items of the referenced menu).
pub fn validate(
    property: &Property,
    text: &str,
    reference_names: &mut dyn FnMut(&'static str) -> Result<Vec<String>, ConsoleError>,
) -> Result<String, ConsoleError> {
    let name = property.name;
    let optional_empty = text.is_empty() && !property.required;
    match property.kind {
        ValueType::Text | ValueType::WordList => Ok(text.to_string()),
        ValueType::YesNo => match text {
            "yes" | "true" => Ok("true".into()),
            "no" | "false" => Ok("false".into()),
            _ => Err(ConsoleError::no_match(name)),
        },
        ValueType::Number { min, max } => {
            let number = parse_number(text).ok_or_else(|| ConsoleError::invalid_value(name))?;
            if number < i128::from(min) || number > i128::from(max) {
                return Err(ConsoleError::Failure(format!(
                    "value of {name} is out of range ({min} .. {max})"
                )));
            }
            Ok(number.to_string())
        }
        ValueType::Enum(choices) => {
            if choices.contains(&text) {
                return Ok(text.to_string());
            }
            let mut matching = choices
                .iter()
                .filter(|c| c.starts_with(text) && !text.is_empty());
            match (matching.next(), matching.next()) {
                (Some(one), None) => Ok(one.to_string()),
                (Some(_), Some(_)) => Err(ConsoleError::Failure(format!(
                    "ambiguous value of {name}, more than one possible value matches input"
                ))),
                _ => Err(ConsoleError::no_match(name)),
            }
        }
        ValueType::Reference(path) => {
            let names = reference_names(path)?;
            if names.iter().any(|n| n == text) {
                Ok(text.to_string())
            } else {
                Err(ConsoleError::no_match(name))
            }
        }
        ValueType::Hex(digits) => {
            if text.len() == digits && text.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(text.to_ascii_lowercase())
            } else {
                Err(ConsoleError::invalid_value(name))
            }
        }
        ValueType::Ipv4 => check(text.parse::<Ipv4Addr>().is_ok(), name, text),
        ValueType::Ipv4Prefix => check(is_ipv4_prefix(text), name, text),
        ValueType::Ipv4Range if optional_empty => Ok(String::new()),
        ValueType::Ipv4Range => check(is_range::<Ipv4Addr>(text), name, text),
        ValueType::Ipv6Range if optional_empty => Ok(String::new()),
        ValueType::Ipv6Range => check(is_range::<Ipv6Addr>(text), name, text),
        ValueType::Ipv4List => check(
            text.is_empty() || text.split(',').all(|a| a.parse::<Ipv4Addr>().is_ok()),
            name,
            text,
        ),
        ValueType::RouteList => check(text.is_empty() || text.split(',').all(is_route), name, text),
        ValueType::AutoOrTime if text == "auto" => Ok(text.to_string()),
        ValueType::AutoOrTime | ValueType::Time => {
            check(parse_duration_ms(text).is_some(), name, text)
        }
    }
}

fn check(ok: bool, name: &str, text: &str) -> Result<String, ConsoleError> {
    if ok {
        Ok(text.to_string())
    } else {
        Err(ConsoleError::invalid_value(name))
    }
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

fn is_ipv4_prefix(text: &str) -> bool {
    match text.split_once('/') {
        Some((address, length)) => {
            address.parse::<Ipv4Addr>().is_ok() && length.parse::<u8>().is_ok_and(|l| l <= 32)
        }
        None => text.parse::<Ipv4Addr>().is_ok(),
    }
}

fn is_range<A: std::str::FromStr + PartialOrd>(text: &str) -> bool {
    match text.split_once('-') {
        Some((first, last)) => match (first.parse::<A>(), last.parse::<A>()) {
            (Ok(first), Ok(last)) => first <= last,
            _ => false,
        },
        None => text.parse::<A>().is_ok(),
    }
}

fn is_route(route: &str) -> bool {
    match route.split_once('@') {
        Some((destination, gateway)) => {
            is_ipv4_prefix(destination) && gateway.parse::<Ipv4Addr>().is_ok()
        }
        None => is_ipv4_prefix(route),
    }
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
        assert!(check_value(ctl, "ip6-range", "fd00::1-fd00::ff").is_ok());
        let member = "/zerotier/controller/member";
        assert!(check_value(member, "ip-address", "172.27.27.15,172.27.27.16").is_ok());
        assert!(check_value(member, "ip-address", "172.27.27.300").is_err());
    }

    #[test]
    fn console_form_of_booleans() {
        assert_eq!(console_form(Some(ValueType::YesNo), "true"), "yes");
        assert_eq!(console_form(Some(ValueType::Text), "true"), "true");
        assert_eq!(console_form(None, "x"), "x");
    }
}
