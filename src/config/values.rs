//! Value types that deserialize from configuration strings and check themselves while doing
//! so, so that an error carries the TOML span of the value (file, line, column).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use super::units;

/// A string with `${NAME}` replaced by the environment variable NAME. An unset variable is an
/// error; every substituted value is registered as a secret and never shown.
#[derive(Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct EnvString(pub String);

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", crate::secrets::mask(&self.0))
    }
}

impl EnvString {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Expand `${NAME}` references. `$` not followed by `{` is kept as is (templates use `$1`).
/// In a URL written with its scheme (`http://...${PASS}...`) a value is percent-encoded for
/// the part it lands in: user info, path segment, query value or fragment (a value in the
/// scheme or host, such as `${SERVER}`, is taken as written: it is URL syntax itself).
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name `{name}`"));
        }
        let value =
            lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        crate::secrets::register(&value);
        rest = &after[end + 1..];
        if url_part_encodes(&out, rest) {
            let encoded = percent_encode(&value);
            crate::secrets::register(&encoded);
            out.push_str(&encoded);
        } else {
            out.push_str(&value);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a value between `before` (expanded so far) and `after` (the raw rest) sits in a part
/// of a URL that takes percent-encoded data: anywhere after the authority, or in the user
/// info (the authority up to an `@`).
fn url_part_encodes(before: &str, after: &str) -> bool {
    let Some((scheme, tail)) = before.split_once("://") else {
        return false;
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return false;
    }
    if tail.contains(['/', '?', '#']) {
        return true;
    }
    // Still in the authority: user info when an `@` follows before it ends.
    let authority_rest = after.split(['/', '?', '#']).next().unwrap_or_default();
    authority_rest.contains('@')
}

/// Percent-encode everything but RFC 3986 unreserved characters: safe in user info, a path
/// segment and a query value.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        expand_env(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(de::Error::custom)
    }
}

/// A non-negative duration such as `"30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        units::parse_duration(&raw)
            .map(DurationValue)
            .map_err(de::Error::custom)
    }
}

/// A signed duration in milliseconds such as `"-2h"` (an EPG `shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShiftValue(pub i64);

impl<'de> Deserialize<'de> for ShiftValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        units::parse_signed_millis(&raw)
            .map(ShiftValue)
            .map_err(de::Error::custom)
    }
}

/// A size in bytes such as `"512MiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeValue(pub u64);

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        units::parse_size(&raw)
            .map(SizeValue)
            .map_err(de::Error::custom)
    }
}

/// A share such as `"50%"` (a `max_shrink`): 0 to 100 percent, decimals allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl Percent {
    /// Parse `"50%"`, `"12.5%"`; the `%` is required so that `0.5` is never read as 0.5%.
    pub fn parse(raw: &str) -> Result<Percent, String> {
        let invalid = || format!("invalid percentage `{raw}` (expected 0% to 100%, e.g. \"50%\")");
        let number = raw.trim().strip_suffix('%').ok_or_else(invalid)?;
        let value: f64 = number.trim().parse().map_err(|_| invalid())?;
        if !(0.0..=100.0).contains(&value) {
            return Err(invalid());
        }
        Ok(Percent(value))
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Percent::parse(&raw).map_err(de::Error::custom)
    }
}

/// A name of a source, guide, filter, mapping or proxy: letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(pub String);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw.is_empty()
            || !raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(de::Error::custom(format!(
                "invalid name `{raw}`: use letters, digits, '-' and '_'"
            )));
        }
        Ok(Name(raw))
    }
}

/// A file mode written in octal, such as `"0644"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        u32::from_str_radix(raw.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map(FileMode)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid file mode `{raw}` (expected octal, e.g. \"0644\")"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let lookup = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand_env("a${A}b$1", lookup).unwrap(), "axb$1");
        assert!(
            expand_env("${B}", lookup)
                .unwrap_err()
                .contains("`B` is not set")
        );
        assert!(expand_env("${A", lookup).is_err());
    }

    #[test]
    fn url_values_are_encoded_for_their_part() {
        let lookup = |n: &str| {
            Some(match n {
                "P" => "a b&c#d@e/f:g\u{e9}".to_string(),
                "HOST" => "h.example:8080".to_string(),
                "BASE" => "http://h.example/x".to_string(),
                _ => "u".to_string(),
            })
        };
        let enc = "a%20b%26c%23d%40e%2Ff%3Ag%C3%A9";
        let cases = [
            ("http://${U}:${P}@h/x", format!("http://u:{enc}@h/x")),
            (
                "http://${HOST}/get.php",
                "http://h.example:8080/get.php".into(),
            ),
            (
                "http://h/live/${P}/1.ts",
                format!("http://h/live/{enc}/1.ts"),
            ),
            (
                "http://h/get.php?u=me&p=${P}",
                format!("http://h/get.php?u=me&p={enc}"),
            ),
            ("${BASE}/y?p=${P}", format!("http://h.example/x/y?p={enc}")),
            ("Bearer ${P}", "Bearer a b&c#d@e/f:g\u{e9}".into()),
        ];
        for (raw, want) in cases {
            assert_eq!(expand_env(raw, lookup).unwrap(), want, "{raw}");
        }
    }
}
