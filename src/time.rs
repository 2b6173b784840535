//! Formatting commit times without a date library: RFC 3339 and plain dates in the commit's own
//! offset.

/// Days since 1970-01-01 to a civil (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parts(secs: i64, offset_minutes: i32) -> (i64, u32, u32, i64, i64, i64) {
    let local = secs + i64::from(offset_minutes) * 60;
    let (y, m, d) = civil(local.div_euclid(86_400));
    let rem = local.rem_euclid(86_400);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2024-05-01T12:30:00+02:00`.
///
/// ```
/// assert_eq!(promptreg::time::rfc3339(0, 0), "1970-01-01T00:00:00Z");
/// assert_eq!(promptreg::time::rfc3339(1_700_000_000, 60), "2023-11-14T23:13:20+01:00");
/// ```
pub fn rfc3339(secs: i64, offset_minutes: i32) -> String {
    let (y, m, d, hh, mm, ss) = parts(secs, offset_minutes);
    let offset = if offset_minutes == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let abs = offset_minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{offset}")
}

/// `2024-05-01`, in the commit's own offset.
pub fn date(secs: i64, offset_minutes: i32) -> String {
    let (y, m, d, ..) = parts(secs, offset_minutes);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_around_leap_years() {
        assert_eq!(date(951_782_400, 0), "2000-02-29");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_709_164_800, -330), "2024-02-28T18:30:00-05:30");
    }
}
