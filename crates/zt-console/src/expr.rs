//! `where` expressions: the tree the parser builds and its evaluation against one item.

use std::cmp::Ordering;
use std::net::Ipv4Addr;

use regex::Regex;

use crate::duration::parse_duration_ms;

/// Comparison operators of `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    /// `~`: unanchored regular-expression match.
    Matches,
    /// `in`: the address lies inside the given prefix.
    In,
}

/// A parsed `where` expression.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// A bare property name: true when set to `yes`, or when set to any non-empty value.
    Present(String),
    Compare {
        property: String,
        op: CompareOp,
        value: String,
        /// Compiled once for `~`.
        regex: Option<Regex>,
    },
}

impl Expr {
    /// Build a comparison; fails only for a `~` with an invalid pattern.
    pub fn compare(property: String, op: CompareOp, value: String) -> Result<Expr, regex::Error> {
        let regex = match op {
            CompareOp::Matches => Some(Regex::new(&value)?),
            _ => None,
        };
        Ok(Expr::Compare {
            property,
            op,
            value,
            regex,
        })
    }

    /// Evaluate against an item; `lookup` gives a property's console form (`yes`/`no` for
    /// booleans), `None` when unset.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(lookup) && b.matches(lookup),
            Expr::Or(a, b) => a.matches(lookup) || b.matches(lookup),
            Expr::Not(inner) => !inner.matches(lookup),
            Expr::Present(name) => match lookup(name) {
                Some(value) => value != "no" && !value.is_empty(),
                None => false,
            },
            Expr::Compare {
                property,
                op,
                value,
                regex,
            } => {
                let actual = lookup(property).unwrap_or_default();
                match op {
                    CompareOp::Equal => actual == *value,
                    CompareOp::NotEqual => actual != *value,
                    CompareOp::Matches => regex.as_ref().is_some_and(|r| r.is_match(&actual)),
                    CompareOp::In => address_in(&actual, value),
                    CompareOp::Less => compare_values(&actual, value) == Ordering::Less,
                    CompareOp::Greater => compare_values(&actual, value) == Ordering::Greater,
                    CompareOp::LessOrEqual => compare_values(&actual, value) != Ordering::Greater,
                    CompareOp::GreaterOrEqual => compare_values(&actual, value) != Ordering::Less,
                }
            }
        }
    }
}

/// Order two values as numbers, addresses or times when both read as such, else as text.
fn compare_values(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (parse_prefix(a), parse_prefix(b)) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (parse_duration_ms(a), parse_duration_ms(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

/// `a.b.c.d[/len]` → (address, prefix length).
fn parse_prefix(text: &str) -> Option<(u32, u8)> {
    let (address, length) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32)?),
        None => (text, 32),
    };
    Some((u32::from(address.parse::<Ipv4Addr>().ok()?), length))
}

fn address_in(actual: &str, prefix: &str) -> bool {
    let (Some((address, _)), Some((network, length))) =
        (parse_prefix(actual), parse_prefix(prefix))
    else {
        return false;
    };
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(length))
    };
    address & mask == network & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn comparisons() {
        let lookup = item(&[
            ("interface", "zerotier1"),
            ("address", "192.168.192.105/24"),
            ("distance", "10"),
            ("disabled", "no"),
            ("latency", "186ms"),
        ]);
        let cmp = |p: &str, op, v: &str| {
            Expr::compare(p.into(), op, v.into())
                .unwrap()
                .matches(&lookup)
        };
        assert!(cmp("interface", CompareOp::Matches, "zero"));
        assert!(!cmp("interface", CompareOp::Matches, "Zero"));
        assert!(cmp("interface", CompareOp::Equal, "zerotier1"));
        assert!(cmp("interface", CompareOp::NotEqual, "zerotier"));
        assert!(cmp("distance", CompareOp::Greater, "9"));
        assert!(cmp("distance", CompareOp::LessOrEqual, "10"));
        assert!(!cmp("distance", CompareOp::Less, "10"));
        assert!(cmp("latency", CompareOp::Less, "1s"));
        assert!(cmp("address", CompareOp::In, "192.168.0.0/16"));
        assert!(!cmp("address", CompareOp::In, "10.0.0.0/8"));
        assert!(cmp("address", CompareOp::In, "0.0.0.0/0"));
        assert!(!Expr::Present("disabled".into()).matches(&lookup));
        assert!(Expr::Present("interface".into()).matches(&lookup));
        assert!(!Expr::Present("nothing".into()).matches(&lookup));
    }
}
