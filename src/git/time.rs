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
/// assert_eq!(promptreg::git::time::rfc3339(0, 0), "1970-01-01T00:00:00Z");
/// assert_eq!(promptreg::git::time::rfc3339(1_700_000_000, 60), "2023-11-14T23:13:20+01:00");
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

/// Days since 1970-01-01 of a civil date, proleptic Gregorian (the inverse of `civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A date as git takes it in `GIT_AUTHOR_DATE` and `GIT_COMMITTER_DATE`: git's internal form
/// (`@1700000000 +0100`, or without the `@`), or ISO 8601 / RFC 3339
/// (`2024-05-01T12:30:00+02:00`, `2024-05-01 12:30:00 +0200`, `...Z`). Returns seconds since
/// the epoch and the offset in minutes.
///
/// ```
/// use promptreg::git::time::parse_git_date;
/// assert_eq!(parse_git_date("@1700000000 +0100"), Some((1_700_000_000, 60)));
/// assert_eq!(parse_git_date("1700000000 -0130"), Some((1_700_000_000, -90)));
/// assert_eq!(parse_git_date("2023-11-14T23:13:20+01:00"), Some((1_700_000_000, 60)));
/// assert_eq!(parse_git_date("2023-11-14 22:13:20 Z"), Some((1_700_000_000, 0)));
/// assert_eq!(parse_git_date("yesterday"), None);
/// ```
pub fn parse_git_date(text: &str) -> Option<(i64, i32)> {
    let text = text.trim();
    let offset = |tz: &str| -> Option<i32> {
        let tz = tz.trim();
        if tz.is_empty() || tz == "Z" || tz == "z" {
            return Some(0);
        }
        let (sign, rest) = match tz.as_bytes().first()? {
            b'+' => (1, &tz[1..]),
            b'-' => (-1, &tz[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i32 = digits[..2].parse().ok()?;
        let minutes: i32 = digits[2..].parse().ok()?;
        (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
    };
    let raw = text.strip_prefix('@').unwrap_or(text);
    let (secs, tz) = raw.split_once(' ').unwrap_or((raw, ""));
    if !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()) {
        return Some((secs.parse().ok()?, offset(tz)?));
    }
    // YYYY-MM-DD[T ]HH:MM:SS[.fff][zone]
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| bytes[i] != c)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = offset(rest)?;
    let local = days_from_civil(year, month as u32, day as u32) * 86_400
        + hour * 3600
        + minute * 60
        + second;
    Some((local - i64::from(offset) * 60, offset))
}

#[cfg(test)]
mod tests {
    use crate::git::time::*;

    #[test]
    fn formats_dates_around_leap_years() {
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_709_164_800, -330), "2024-02-28T18:30:00-05:30");
    }
}
