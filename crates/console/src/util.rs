//! Small helpers: comparisons, dates.

use time::OffsetDateTime;

/// Compares two secrets without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
pub fn date(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => secs.to_string(),
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn datetime(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{} {:02}:{:02} UTC", date(secs), t.hour(), t.minute()),
        Err(_) => secs.to_string(),
    }
}

/// `YYYY-MM` (UTC) of Unix seconds.
pub fn month(secs: i64) -> String {
    let d = date(secs);
    d.get(..7).unwrap_or(&d).to_string()
}

/// Parses a date as the console's forms send it: `YYYY-MM-DD` (midnight UTC), RFC 3339, `now`,
/// `+Nd` (days from now) or Unix seconds.
pub fn parse_date(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() || s == "now" {
        return Ok(now);
    }
    if let Some(days) = s.strip_prefix('+').and_then(|d| d.strip_suffix('d')) {
        let days: i64 = days
            .parse()
            .ok()
            .filter(|d| (0..=36_500).contains(d) && !days.starts_with(['+', '-']))
            .ok_or_else(|| format!("{s:?}: +N days expects a number of days up to 36500, such as +90d"))?;
        return Ok(now + days * 86_400);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(s, &fmt) {
        Ok(d) => Ok(d.midnight().assume_utc().unix_timestamp()),
        Err(_) => Err(format!("{s:?} is not a date: use YYYY-MM-DD, +90d or now")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(parse_date("2026-11-28", 0), Ok(1_795_824_000));
        assert_eq!(date(1_795_824_000), "2026-11-28");
        assert_eq!(parse_date("+2d", 10), Ok(10 + 172_800));
        assert!(parse_date("28/11/2026", 0).is_err());
        // Found by the console_input fuzz target: an overflowing day count.
        assert!(parse_date("++202290290229022d", 0).is_err());
        assert!(parse_date("+-5d", 0).is_err());
        assert_eq!(month(1_795_824_000), "2026-11");
    }

    #[test]
    fn secrets_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
