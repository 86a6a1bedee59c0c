//! How zerotier-one reads scalar values on its JSON API (`OSUtils::jsonBool`, `jsonInt`,
//! `jsonString` in `osdep/OSUtils.cpp`), so that the UIs written against it (ztncui, zero-ui,
//! ZTNet) get the same answers from us. ztncui sends `{"authorized":"true"}`, zero-ui sends
//! `{"private":0}`: zerotier-one takes both, and a client that gets a 400 instead may crash.
//!
//! Each reader returns `None` where zerotier-one falls back to the caller's default (null,
//! arrays, objects), so every call site states that default.
//!
//! Only the zerotier JSON face uses these; the RouterOS property parser ([`crate::props`]) keeps
//! its strict `yes`/`no`.
use serde_json::Value;

/// A boolean: JSON `true`/`false`; a number is true when its unsigned value is non-zero; a
/// string is true when it starts with `t`, `T` or `1` (so `"true"`, `"True"`, `"1"`, but not
/// `"yes"` or `"on"`). Anything else is `None` (the caller's default).
pub fn json_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(_) => number_as_u64(v).map(|n| n > 0),
        Value::String(s) => Some(matches!(s.as_bytes().first(), Some(b't' | b'T' | b'1'))),
        _ => None,
    }
}

/// An unsigned integer: a JSON number (negative integers wrap, as the reference's cast to
/// `uint64_t` does; fractions are cut), a decimal string read like C's `strtoull` (leading
/// digits only, `"12px"` is 12, `"abc"` is 0), or a boolean as 1/0. Anything else is `None`.
pub fn json_int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(_) => number_as_u64(v),
        Value::String(s) => Some(strtoull(s, 10)),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

/// Like [`json_int`], but a string is read as hexadecimal (an optional `0x` is allowed).
pub fn json_int_hex(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => Some(strtoull(s, 16)),
        other => json_int(other),
    }
}

/// A string: a JSON string as it is, a number in decimal, a boolean as `"1"`/`"0"`. Anything
/// else is `None`.
pub fn json_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) => number_as_u64(v).map(|n| n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// A JSON number as the reference's `(uint64_t)` cast gives it.
fn number_as_u64(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    if let Some(n) = v.as_i64() {
        // Negative: two's complement wrap, as a C cast of int64 to uint64.
        return Some(n as u64);
    }
    // A fraction is cut toward zero; the sign is kept by way of i64 so that -1.5 behaves like -1.
    v.as_f64().map(|f| {
        if f >= 0.0 {
            f as u64
        } else {
            (f as i64) as u64
        }
    })
}

/// C's `strtoull(s, NULL, radix)` for radix 10 or 16: leading whitespace, an optional sign, for
/// radix 16 an optional `0x`, then as many digits as there are. No digits gives 0; overflow gives
/// `u64::MAX`; a minus sign negates (wrapping), as C does.
pub fn strtoull(s: &str, radix: u32) -> u64 {
    let mut rest = s.trim_start();
    let negative = match rest.as_bytes().first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if radix == 16 {
        if let Some(after) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            if after.starts_with(|c: char| c.is_ascii_hexdigit()) {
                rest = after;
            }
        }
    }
    let mut value: u64 = 0;
    let mut overflow = false;
    for c in rest.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        match value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_as_zerotier_one_reads_them() {
        let table = [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!(64), Some(true)),
            (json!(-1), Some(true)),
            (json!(0.5), Some(false)),
            (json!(2.5), Some(true)),
            (json!("true"), Some(true)),
            (json!("True"), Some(true)),
            (json!("TRUE"), Some(true)),
            (json!("t"), Some(true)),
            (json!("1"), Some(true)),
            (json!("10"), Some(true)),
            (json!("false"), Some(false)),
            (json!("0"), Some(false)),
            (json!("yes"), Some(false)),
            (json!("on"), Some(false)),
            (json!(" true"), Some(false)),
            (json!(""), Some(false)),
            (json!(null), None),
            (json!([]), None),
            (json!({}), None),
        ];
        for (input, expected) in table {
            assert_eq!(json_bool(&input), expected, "{input}");
        }
    }

    #[test]
    fn integers_as_zerotier_one_reads_them() {
        let table = [
            (json!(32), Some(32)),
            (json!("32"), Some(32)),
            (json!(" 32"), Some(32)),
            (json!("+7"), Some(7)),
            (json!("1500bytes"), Some(1500)),
            (json!("abc"), Some(0)),
            (json!(""), Some(0)),
            (json!("-1"), Some(u64::MAX)),
            (json!("99999999999999999999999"), Some(u64::MAX)),
            (json!(-2), Some(u64::MAX - 1)),
            (json!(12.9), Some(12)),
            (json!(true), Some(1)),
            (json!(false), Some(0)),
            (json!(null), None),
            (json!([1]), None),
            (json!({"a": 1}), None),
        ];
        for (input, expected) in table {
            assert_eq!(json_int(&input), expected, "{input}");
        }
        assert_eq!(json_int_hex(&json!("ff")), Some(255));
        assert_eq!(json_int_hex(&json!("0x86dd")), Some(0x86dd));
        assert_eq!(json_int_hex(&json!("8000000000000000")), Some(1 << 63));
        assert_eq!(json_int_hex(&json!(16)), Some(16));
        assert_eq!(json_int_hex(&json!("zz")), Some(0));
    }

    #[test]
    fn strings_as_zerotier_one_reads_them() {
        let table = [
            (json!("net"), Some("net")),
            (json!(""), Some("")),
            (json!(42), Some("42")),
            (json!(true), Some("1")),
            (json!(false), Some("0")),
            (json!(null), None),
            (json!(["x"]), None),
        ];
        for (input, expected) in table {
            assert_eq!(json_string(&input).as_deref(), expected, "{input}");
        }
    }
}
