//! Durations (`"30s"`, `"10m"`, `"6h"`, `"-2h"`) and sizes (`"512MiB"`, `"2GiB"`) as written in
//! the configuration and on the command line.

use std::fmt;
use std::time::Duration;

/// Parse a duration: an optional sign, then one or more `NUMBER UNIT` parts (`1h30m`), units
/// `ms`, `s`, `m`, `h`, `d`. A bare `0` is zero. Returns signed milliseconds.
pub fn parse_signed_millis(text: &str) -> Result<i64, String> {
    let err =
        || format!("invalid duration `{text}` (expected e.g. \"30s\", \"10m\", \"6h\", \"1h30m\")");
    let trimmed = text.trim();
    let (sign, body) = match trimmed.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1i64, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(err());
    }
    let mut total: i64 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let millis = number * factor;
        if !millis.is_finite() || millis > 1e15 {
            return Err(err());
        }
        total = total.checked_add(millis.round() as i64).ok_or_else(err)?;
    }
    Ok(sign * total)
}

/// Parse a non-negative duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let millis = parse_signed_millis(text)?;
    if millis < 0 {
        return Err(format!("duration `{text}` must not be negative"));
    }
    Ok(Duration::from_millis(millis as u64))
}

/// Parse a size: a number with an optional unit `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`,
/// `TB`/`TiB` (decimal units are powers of 1000, binary ones of 1024; case-insensitive).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let err = || format!("invalid size `{text}` (expected e.g. \"512MiB\", \"2GiB\", \"100MB\")");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    if split == 0 {
        return Err(err());
    }
    let number: f64 = trimmed[..split].parse().map_err(|_| err())?;
    let unit = trimmed[split..].trim().to_ascii_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        _ => return Err(err()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes > 1.8e19 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Bytes for humans: `1.5 MiB`.
pub struct HumanBytes(pub u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_signed_millis("-2h").unwrap(), -7_200_000);
        assert_eq!(parse_signed_millis("0").unwrap(), 0);
        for bad in ["", "s", "10", "10x", "1.2.3s", "-", "h1"] {
            assert!(parse_signed_millis(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        for bad in ["", "MiB", "12XB", "-1MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
