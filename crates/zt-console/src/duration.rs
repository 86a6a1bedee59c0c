//! RouterOS time values: `186ms`, `4s526ms`, `1m3s`, `1d2h`, `2w1d`.

const UNITS: &[(&str, u64)] = &[
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Format milliseconds the way RouterOS prints times: largest units first, zero units left
/// out, `0ms` for zero.
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0ms".into();
    }
    let mut rest = ms;
    let mut text = String::new();
    for (unit, size) in UNITS {
        let count = rest / size;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(unit);
            rest %= size;
        }
    }
    text
}

/// Format microseconds as RouterOS prints round-trip times: `407us`, `1ms404us`, `12ms`.
pub fn format_duration_us(us: u64) -> String {
    match (us / 1000, us % 1000) {
        (0, micros) => format!("{micros}us"),
        (ms, 0) => format_duration_ms(ms),
        (ms, micros) => format!("{}{micros}us", format_duration_ms(ms)),
    }
}

/// Read a RouterOS time: unit form (`1m30s`, `4s526ms`), a plain number of seconds (`90`),
/// or clock form (`01:02:03`, `1d01:02:03`).
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return seconds.checked_mul(1000);
    }
    if text.contains(':') {
        return parse_clock(text);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let count: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let size = UNITS.iter().find(|(u, _)| *u == &rest[..unit_len])?.1;
        total = total.checked_add(count.checked_mul(size)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn parse_clock(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('d') {
        Some((d, c)) => (d.parse::<u64>().ok()?, c),
        None => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    let (seconds, fraction) = match s.split_once('.') {
        Some((s, f)) => (s, f),
        None => (*s, ""),
    };
    let seconds: u64 = seconds.parse().ok()?;
    let millis: u64 = if fraction.is_empty() {
        0
    } else {
        let padded = format!("{fraction:0<3}");
        padded.get(..3)?.parse().ok()?
    };
    if m >= 60 || seconds >= 60 {
        return None;
    }
    Some(((days * 24 + h) * 60 + m) * 60_000 + seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_times_print_with_microseconds() {
        assert_eq!(format_duration_us(407), "407us");
        assert_eq!(format_duration_us(1_450), "1ms450us");
        assert_eq!(format_duration_us(12_000), "12ms");
        assert_eq!(format_duration_us(0), "0us");
    }

    #[test]
    fn formats_like_routeros() {
        assert_eq!(format_duration_ms(186), "186ms");
        assert_eq!(format_duration_ms(4_526), "4s526ms");
        assert_eq!(format_duration_ms(4_055), "4s55ms");
        assert_eq!(format_duration_ms(63_000), "1m3s");
        assert_eq!(format_duration_ms(0), "0ms");
        assert_eq!(format_duration_ms(9 * 86_400_000 + 3_600_000), "1w2d1h");
    }

    #[test]
    fn parses_every_form() {
        for ms in [0, 1, 186, 4_526, 63_000, 90_061_001, 1_000_000_000] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Some(ms));
        }
        assert_eq!(parse_duration_ms("90"), Some(90_000));
        assert_eq!(parse_duration_ms("00:01:30"), Some(90_000));
        assert_eq!(parse_duration_ms("1d00:00:10"), Some(86_410_000));
        assert_eq!(parse_duration_ms("1.5s"), None);
        assert_eq!(parse_duration_ms("5x"), None);
        assert_eq!(parse_duration_ms("ms"), None);
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("99999999999999999999w"), None);
    }
}
