//! Timestamps: nanoseconds since the Unix epoch, formatted as Suricata formats them.

/// Write `ns` as `2017-03-02T18:59:02.397616+0000` (microseconds, UTC).
#[inline]
pub fn write_iso(buf: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let days = secs / 86_400;
    // Consecutive events share their day: remember the last one's "YYYY-MM-DDT".
    thread_local!(static DAY: std::cell::Cell<(u64, [u8; 11])> = const { std::cell::Cell::new((u64::MAX, [0; 11])) });
    let (cached, date) = DAY.with(|d| d.get());
    let date = if cached == days {
        date
    } else {
        let mut tmp = Vec::with_capacity(40);
        write_iso_slow(&mut tmp, ns);
        let mut date = [0u8; 11];
        date.copy_from_slice(&tmp[1..12]);
        DAY.with(|d| d.set((days, date)));
        date
    };
    let sod = (secs % 86_400) as u32;
    let micros = ((ns % 1_000_000_000) / 1_000) as u32;
    let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut out = [0u8; 33];
    out[0] = b'"';
    out[1..12].copy_from_slice(&date);
    out[12] = b'0' + (h / 10) as u8;
    out[13] = b'0' + (h % 10) as u8;
    out[14] = b':';
    out[15] = b'0' + (m / 10) as u8;
    out[16] = b'0' + (m % 10) as u8;
    out[17] = b':';
    out[18] = b'0' + (s / 10) as u8;
    out[19] = b'0' + (s % 10) as u8;
    out[20] = b'.';
    let mut v = micros;
    for i in (21..27).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out[27..33].copy_from_slice(b"+0000\"");
    buf.extend_from_slice(&out);
}

fn write_iso_slow(buf: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    buf.push(b'"');
    push2(buf, y / 100);
    push2(buf, y % 100);
    buf.push(b'-');
    push2(buf, m);
    buf.push(b'-');
    push2(buf, d);
    buf.push(b'T');
    push2(buf, (sod / 3600) as u32);
    buf.push(b':');
    push2(buf, (sod / 60 % 60) as u32);
    buf.push(b':');
    push2(buf, (sod % 60) as u32);
    buf.push(b'.');
    let mut us = [b'0'; 6];
    let mut v = micros;
    for i in (0..6).rev() {
        us[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&us);
    buf.extend_from_slice(b"+0000\"");
}

fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse an EVE timestamp (`2026-01-06T10:10:00.004000+0000`, also `Z` and `+00:00`) to
/// Unix ms; the offset is applied.
pub fn parse_iso_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut n = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 3 {
                ms = ms * 10 + i64::from(c - b'0');
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            ms *= 10;
        }
    }
    let offset_min = match b.get(i) {
        None | Some(b'Z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &t[i + 1..];
            let (oh, om) = match rest.len() {
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                5 if rest.as_bytes()[2] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                _ => return None,
            };
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + ms)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn cached_day_matches_the_slow_path() {
        for ns in [
            1_488_481_142_397_616_123u64,
            1_488_481_142_997_616_123,
            1_488_499_999_000_001_000,
            951_782_400_000_000_000,
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_iso(&mut a, ns);
            write_iso_slow(&mut b, ns);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn known_instants() {
        let mut b = Vec::new();
        write_iso(&mut b, 1_488_481_142_397_616_123);
        assert_eq!(b, b"\"2017-03-02T18:59:02.397616+0000\"");
        b.clear();
        write_iso(&mut b, 0);
        assert_eq!(b, b"\"1970-01-01T00:00:00.000000+0000\"");
        b.clear();
        // 2000-02-29, a leap day in a century year divisible by 400.
        write_iso(&mut b, 951_782_400_000_000_000);
        assert_eq!(b, b"\"2000-02-29T00:00:00.000000+0000\"");
    }
}
