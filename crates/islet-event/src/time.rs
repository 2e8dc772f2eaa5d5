//! Timestamps: nanoseconds since the Unix epoch, formatted as Suricata formats them.

/// Write `ns` as `2017-03-02T18:59:02.397616+0000` (microseconds, UTC).
pub fn write_iso(buf: &mut Vec<u8>, ns: u64) {
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

#[cfg(test)]
mod test {
    use super::*;

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
