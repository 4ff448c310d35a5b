//! The cookie jar of one [`Client`](super::Client): `Set-Cookie` name and value (RFC 6265 §5.2),
//! deletion by `Max-Age` <= 0 or an `Expires` in the past (§5.2.1-§5.2.2, with the lenient date
//! parser of §5.1.1). One server, so `Domain`, `Path` and `Secure` are not kept: every cookie
//! goes with every request.

use std::time::{SystemTime, UNIX_EPOCH};

/// Cookies as (name, value), in the order first set.
#[derive(Debug, Default)]
pub(super) struct Jar(Vec<(String, String)>);

impl Jar {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn all(&self) -> &[(String, String)] {
        &self.0
    }

    pub(super) fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// The `Cookie` request header value, or `None` for an empty jar.
    pub(super) fn header(&self) -> Option<String> {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Applies one `Set-Cookie` header value: stores the cookie, or deletes it when it has
    /// expired. A value without `=` or with an empty name is ignored (§5.2 steps 2 and 5).
    pub(super) fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut max_age = None;
        let mut expires = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim(), val.trim());
            if key.eq_ignore_ascii_case("max-age") {
                // §5.2.2: a first character other than a digit or '-' means ignore the attribute.
                if let Ok(seconds) = val.parse::<i64>() {
                    max_age = Some(seconds);
                }
            } else if key.eq_ignore_ascii_case("expires") {
                expires = parse_cookie_date(val).or(expires);
            }
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        // §5.3 step 3: Max-Age wins over Expires.
        let expired = match (max_age, expires) {
            (Some(seconds), _) => seconds <= 0,
            (None, Some(at)) => at <= now,
            (None, None) => false,
        };
        if expired {
            self.0.retain(|(n, _)| n != name);
        } else {
            self.set(name, value);
        }
    }
}

/// A cookie date (RFC 6265 §5.1.1) as Unix seconds: tokens split on delimiters, the first
/// `hh:mm:ss`, the first 1-2 digit day, the first month name, the first 2-4 digit year.
fn parse_cookie_date(text: &str) -> Option<i64> {
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|t| !t.is_empty()) {
        let digits = token.bytes().all(|b| b.is_ascii_digit());
        if time.is_none() && token.contains(':') {
            let fields: Vec<Option<i64>> = token.split(':').map(|f| f.parse().ok()).collect();
            if let [Some(h), Some(m), Some(s)] = fields[..] {
                time = Some(h * 3600 + m * 60 + s);
                continue;
            }
        }
        let month_index = token.get(..3).and_then(|p| months.iter().position(|m| p.eq_ignore_ascii_case(m)));
        if day.is_none() && digits && token.len() <= 2 {
            day = token.parse::<i64>().ok();
        } else if let (None, Some(i)) = (month, month_index) {
            month = Some(i as i64 + 1);
        } else if year.is_none() && digits && (2..=4).contains(&token.len()) {
            year = token.parse::<i64>().ok().map(|y| match y {
                70..=99 => y + 1900,
                0..=69 => y + 2000,
                _ => y,
            });
        }
    }
    let (day, month, year, time) = (day?, month?, year?, time?);
    if !(1..=31).contains(&day) || year < 1601 || time >= 24 * 3600 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + time)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_formats_servers_send() {
        assert_eq!(parse_cookie_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_cookie_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_cookie_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_cookie_date("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse_cookie_date("Wed, 29 Feb 2040 23:59:59 GMT"), Some(2_214_172_799));
        assert_eq!(parse_cookie_date("never"), None);
    }

    #[test]
    fn set_cookie_stores_replaces_and_deletes() {
        let mut jar = Jar::default();
        jar.store("session=abc; Path=/; HttpOnly; SameSite=Strict");
        jar.store("lang = ar ; Max-Age=3600");
        jar.store("session=def; Expires=Fri, 01 Jan 2100 00:00:00 GMT");
        jar.store("no-equals-sign; Path=/");
        jar.store("=nameless");
        assert_eq!(jar.header().as_deref(), Some("session=def; lang=ar"));
        jar.store("session=; Max-Age=0");
        jar.store("lang=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(jar.header(), None);
        jar.store("kept=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        jar.store("gone=1; Max-Age=-1");
        assert_eq!(jar.all(), [("kept".to_string(), "1".to_string())]);
    }
}
