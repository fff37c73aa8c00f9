//! Times and windows as the tool writes and reads them: ISO 8601 with an offset
//! (`answered_at`, the history's messages), whole-unit durations (`--reuse-within 7d`,
//! `--prune 30d`), and the one calendar conversion of the crate. Pure functions but
//! [`unix_ms_now`]; the history re-exports them.

use std::time::Duration;

/// Parses a window or an age: a whole number with `s`, `m`, `h` or `d` (`90m`, `12h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if seconds_per > 0 && n > 0 => n
            .checked_mul(seconds_per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long")),
        _ => Err(format!(
            "{text:?} is not a duration: use a whole number and a unit, such as 12h or 7d (s, m, h, d)"
        )),
    }
}

/// A window as [`parse_duration`] reads it, in the largest unit that divides it: `7d`, `36h`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(per, _)| seconds > 0 && seconds.is_multiple_of(*per))
    {
        Some((per, unit)) => format!("{}{unit}", seconds / per),
        None => format!("{seconds}s"),
    }
}

/// Unix milliseconds now, from the system clock.
pub fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// ISO 8601 with an offset, in UTC, to the second: `2026-12-01T22:39:55+00:00`.
pub fn format_time(unix_ms: i64) -> String {
    let mut text = String::with_capacity(25);
    write_time(&mut text, unix_ms);
    text
}

/// [`format_time`] appended to `out`, without allocating.
pub fn write_time(out: &mut String, unix_ms: i64) {
    use std::fmt::Write as _;
    let seconds = unix_ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// Reads an ISO 8601 time with an offset (`Z`, `+08:00`, `-0500`), to the millisecond, as
/// [`format_time`] and other tools write it; `None` for anything else.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b' ') {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 6 {
                return None;
            }
            let (hours, minutes): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's days-to-civil); the one calendar conversion of the crate.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        for bad in ["", "7", "d", "0d", "1.5h", "7 days", "-1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        for text in ["7d", "36h", "90m", "61s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(86_400 * 2)), "2d");
    }

    #[test]
    fn times_are_iso_8601_with_an_offset_and_read_back() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00+00:00");
        let at = 1_796_164_795_000; // 2026-12-01T22:39:55Z
        assert_eq!(format_time(at), "2026-12-01T22:39:55+00:00");
        assert_eq!(parse_time("2026-12-01T22:39:55+00:00"), Some(at));
        assert_eq!(parse_time("2026-12-01T22:39:55Z"), Some(at));
        assert_eq!(parse_time("2026-12-02T06:39:55+08:00"), Some(at));
        assert_eq!(parse_time("2026-12-02T06:39:55.250+0800"), Some(at + 250));
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z").map(format_time),
            Some("2024-02-29T00:00:00+00:00".into())
        );
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T22:39:55",
            "2026-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
        for ms in [-86_400_000_i64, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms));
        }
    }
}
