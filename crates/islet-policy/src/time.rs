//! RFC 3339 timestamps (`2024-05-01T12:00:00Z`, `…+02:00`, fractional seconds) as Unix
//! nanoseconds, as Kubernetes writes `creationTimestamp` and islet's files write validity.

use std::fmt;

/// Why a text is not a time islet can represent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// The text is not an RFC 3339 date-time.
    NotRfc3339 { text: String },
    /// The time is outside the years 1678 to 2261 that Unix nanoseconds in an i64 hold.
    OutOfRange { text: String },
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::NotRfc3339 { text } => write!(
                f,
                "{text:?} is not an RFC 3339 time (like 2024-05-01T12:00:00Z)"
            ),
            TimeError::OutOfRange { text } => write!(
                f,
                "{text:?} is outside the years 1678 to 2261 that islet represents"
            ),
        }
    }
}

impl std::error::Error for TimeError {}

/// Bridge for callers that still carry errors as text.
impl From<TimeError> for String {
    fn from(e: TimeError) -> String {
        e.to_string()
    }
}

/// Parse an RFC 3339 date-time into Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, TimeError> {
    let err = || TimeError::NotRfc3339 {
        text: s.to_string(),
    };
    let b = s.trim().as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimeError> {
        let t = std::str::from_utf8(&b[r]).map_err(|_| err())?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        t.parse::<i64>().map_err(|_| err())
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(err());
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                frac_ns = frac_ns * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        for _ in (i - start).min(9)..9 {
            frac_ns *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if c == b'+' { o } else { -o }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    // Nanoseconds in an i64 reach from 1677 to 2262.
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(|| TimeError::OutOfRange {
            text: s.to_string(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00Z"),
            Ok(1_714_564_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Ok(1_714_564_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5Z"),
            Ok(1_714_564_800_500_000_000)
        );
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        // Found by the `policy` fuzz target: a year past 2262 overflowed the nanoseconds.
        assert!(
            parse_rfc3339("3020-01-01T00:00:00Z")
                .unwrap_err()
                .to_string()
                .contains("outside the years")
        );
        assert!(parse_rfc3339("1600-01-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}

/// Unix nanoseconds as RFC 3339 UTC with whole seconds (`2024-05-01T12:00:00Z`).
pub fn format_rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for ns in [
            0,
            1_714_564_800_000_000_000,
            4_102_444_800_000_000_000,
            -86_400_000_000_000,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ns)), Ok(ns));
        }
        assert_eq!(
            format_rfc3339(1_714_564_800_000_000_000),
            "2024-05-01T12:00:00Z"
        );
    }
}
