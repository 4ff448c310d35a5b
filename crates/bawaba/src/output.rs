//! Human and JSON output helpers.

use anyhow::Result;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Unix seconds as RFC 3339 UTC.
pub fn when(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t).ok().and_then(|d| d.format(&Rfc3339).ok()).unwrap_or_else(|| t.to_string())
}

/// Unix seconds as a date (YYYY-MM-DD, UTC).
pub fn date(t: i64) -> String {
    let full = when(t);
    full.get(..10).map_or(full.clone(), str::to_string)
}

/// Prints rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Parses a time argument: `now`, `+Nd` (days from now), `YYYY-MM-DD` (midnight UTC) or RFC 3339.
pub fn parse_time(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(days) = text.strip_prefix('+').and_then(|d| d.strip_suffix('d')) {
        let days: i64 = days.parse().map_err(|_| anyhow::anyhow!("invalid relative time {text:?}; use +90d"))?;
        return Ok(now + days * 86_400);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(text, &format) {
        Ok(d) => Ok(d.midnight().assume_utc().unix_timestamp()),
        Err(_) => anyhow::bail!("invalid time {text:?}: use YYYY-MM-DD, RFC 3339 (2026-11-28T09:00:00Z), now or +Nd"),
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arguments() {
        assert_eq!(parse_time("now", 5).unwrap(), 5);
        assert_eq!(parse_time("+2d", 5).unwrap(), 5 + 2 * 86_400);
        assert_eq!(parse_time("2026-11-28", 0).unwrap(), 1_795_824_000);
        assert_eq!(parse_time("2026-11-28T03:00:00+03:00", 0).unwrap(), 1_795_824_000);
        assert!(parse_time("28/11/2026", 0).is_err());
        assert_eq!(date(1_795_824_000), "2026-11-28");
    }
}
