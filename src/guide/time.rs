//! XMLTV times: `YYYYMMDDhhmmss +hhmm`, where the DTD lets a guide drop trailing fields
//! (`YYYYMMDDhhmm`, `YYYYMMDD`, ... down to `YYYY`) and the offset (then the time is UTC).
//! Times are kept as UTC epoch seconds plus the offset they were written with, so that the
//! written guide shows the same wall-clock times and offsets as its source.

use std::fmt;

/// A point in time as a guide wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XmltvTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub utc: i64,
    /// The offset it was written with, in seconds east of UTC.
    pub offset: i32,
}

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid XMLTV time `{text}`: {reason}")]
pub struct TimeError {
    pub text: String,
    pub reason: &'static str,
}

impl XmltvTime {
    /// Read a time as written in `start`, `stop` or `previously-shown@start`.
    pub fn parse(text: &str) -> Result<XmltvTime, TimeError> {
        let err = |reason| TimeError {
            text: text.to_string(),
            reason,
        };
        let s = text.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if !matches!(digits, 4 | 6 | 8 | 10 | 12 | 14) {
            return Err(err("expected YYYY[MM[DD[hh[mm[ss]]]]]"));
        }
        let field = |at: usize, default: i64| -> i64 {
            if at + 2 <= digits {
                s[at..at + 2].parse().unwrap_or(default)
            } else {
                default
            }
        };
        let year: i64 = s[..4].parse().map_err(|_| err("bad year"))?;
        let (month, day) = (field(4, 1), field(6, 1));
        let (hour, minute) = (field(8, 0), field(10, 0));
        // A leap second is folded into the second before it rather than rejected.
        let second = field(12, 0).min(59);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("date out of range"));
        }
        if hour > 23 || minute > 59 {
            return Err(err("time of day out of range"));
        }
        let offset = parse_offset(s[digits..].trim()).ok_or_else(|| err("bad offset"))?;
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Ok(XmltvTime {
            utc: local - i64::from(offset),
            offset,
        })
    }

    /// The same instant moved by `seconds`, keeping the written offset.
    pub fn shifted(self, seconds: i64) -> XmltvTime {
        XmltvTime {
            utc: self.utc + seconds,
            offset: self.offset,
        }
    }
}

/// `+hhmm`, `-hhmm`, `+hh:mm`, `+hh`, `Z`, `UTC`, `GMT` or nothing (UTC, as the DTD says).
fn parse_offset(s: &str) -> Option<i32> {
    if s.is_empty() || s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    if s.eq_ignore_ascii_case("gmt") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let rest = rest.replace(':', "");
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = match rest.len() {
        2 => (rest.parse().ok()?, 0),
        4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

impl XmltvTime {
    /// `YYYYMMDDhhmmss +hhmm` (as [`fmt::Display`] writes it) into `out` without the
    /// formatting machinery: the guide writer formats two times per programme. `None` for a
    /// year outside 0..=9999 or an offset of 100 hours or more (then use `Display`).
    pub fn format_into(self, out: &mut [u8; 20]) -> Option<&[u8]> {
        let local = self.utc.checked_add(i64::from(self.offset))?;
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let off = i64::from(self.offset.unsigned_abs());
        if !(0..=9999).contains(&y) || off >= 100 * 3600 {
            return None;
        }
        let mut put = |at: usize, value: i64, width: usize| {
            let mut v = value;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, y, 4);
        put(4, m, 2);
        put(6, d, 2);
        put(8, secs / 3600, 2);
        put(10, secs / 60 % 60, 2);
        put(12, secs % 60, 2);
        put(16, off / 3600, 2);
        put(18, off / 60 % 60, 2);
        out[14] = b' ';
        out[15] = if self.offset < 0 { b'-' } else { b'+' };
        Some(&out[..])
    }
}

impl fmt::Display for XmltvTime {
    /// `YYYYMMDDhhmmss +hhmm`, in the offset the time was written with.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.utc + i64::from(self.offset);
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let sign = if self.offset < 0 { '-' } else { '+' };
        let off = self.offset.unsigned_abs();
        write!(
            f,
            "{y:04}{m:02}{d:02}{:02}{:02}{:02} {sign}{:02}{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            off / 3600,
            off / 60 % 60
        )
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm). Used wherever lineup prints a date.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> XmltvTime {
        XmltvTime::parse(s).unwrap()
    }

    #[test]
    fn full_form_with_offset_keeps_wall_clock() {
        let x = t("20240301123000 +0100");
        assert_eq!(x.utc, 1_709_292_600); // 2024-03-01T11:30:00Z
        assert_eq!(x.offset, 3600);
        assert_eq!(x.to_string(), "20240301123000 +0100");
        assert_eq!(
            t("20240301123000 -0530").to_string(),
            "20240301123000 -0530"
        );
        assert_eq!(t("20240301123000+01:00"), x);
    }

    #[test]
    fn missing_offset_is_utc_and_short_prefixes_fill_with_zero() {
        assert_eq!(t("20240301123000").to_string(), "20240301123000 +0000");
        assert_eq!(t("202403011230").to_string(), "20240301123000 +0000");
        assert_eq!(t("2024030112 +0200").to_string(), "20240301120000 +0200");
        assert_eq!(t("20240301").to_string(), "20240301000000 +0000");
        assert_eq!(t("202403").to_string(), "20240301000000 +0000");
        assert_eq!(t("2024").to_string(), "20240101000000 +0000");
        assert_eq!(t("20240301123000 Z"), t("20240301123000 GMT"));
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(t("19700101000000 +0000").utc, 0);
        assert_eq!(
            t("20240229235959 +0000").to_string(),
            "20240229235959 +0000"
        );
        assert_eq!(t("20000101000000 +0100").utc, 946_681_200);
        // Crossing midnight and the year when shifted.
        assert_eq!(
            t("20231231233000 +0000").shifted(3600).to_string(),
            "20240101003000 +0000"
        );
        assert_eq!(t("19691231235959 +0000").utc, -1);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024030",
            "20240230000000",
            "20241301000000",
            "20240301250000",
            "x2024",
            "20240301000000 +2500",
            "20240301000000 CET",
            "2024030100000000",
        ] {
            assert!(XmltvTime::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn format_into_matches_display() {
        for (utc, offset) in [
            (0, 0),
            (1_709_294_400, 3600),
            (1_709_294_400, -(5 * 3600 + 30 * 60)),
            (-86_400 * 365, 0),
            (253_402_300_799, 0),
        ] {
            let t = XmltvTime { utc, offset };
            let mut buf = [0; 20];
            let text = t.format_into(&mut buf).unwrap();
            assert_eq!(std::str::from_utf8(text).unwrap(), t.to_string());
        }
        let far = XmltvTime {
            utc: 253_402_300_800,
            offset: 0,
        };
        assert!(far.format_into(&mut [0; 20]).is_none());
    }
}
