//! The DNS master-file ("zone file") text format of RFC 1035 section 5.1: records split into
//! tokens, `;` comments, `(` `)` grouping across lines, quoted strings and `\` escapes.
//!
//! [`RecordBuffer`] is fed one physical line at a time and says when a record is complete. The
//! record's text lives in one reused `String`; tokens are byte ranges into it, so a record costs
//! no allocation once the buffer has grown to the longest record.

use std::ops::Range;

/// A syntax error: 1-based byte column in the offending line and what is wrong.
pub(crate) type SyntaxError = (usize, &'static str);

/// What a fed line did to the current record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// The line holds no tokens (blank or comment) and no record is open.
    Empty,
    /// A `(` is still open: the record continues on the next line.
    Open,
    /// The record is complete; read it with [`RecordBuffer::tokens`].
    Complete,
}

/// Accumulates the tokens of one record, which may span several lines.
#[derive(Debug, Default)]
pub(crate) struct RecordBuffer {
    text: String,
    tokens: Vec<Range<usize>>,
    depth: usize,
    first_line: usize,
    owner_omitted: bool,
}

impl RecordBuffer {
    /// True while a parenthesised record waits for more lines.
    pub(crate) fn is_open(&self) -> bool {
        self.depth > 0
    }

    /// The line the current record started on.
    pub(crate) fn first_line(&self) -> usize {
        self.first_line
    }

    /// True when the record's first line starts with a blank: the owner is the previous record's
    /// (RFC 1035 section 5.1: "If the line begins with a blank, then the owner is assumed to be the
    /// same as that of the previous RR").
    pub(crate) fn owner_omitted(&self) -> bool {
        self.owner_omitted
    }

    /// The record as written (lines joined by a space), for reports.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The record's tokens; quoted strings without their quotes, escapes left as written.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens.iter().map(|r| self.text.get(r.clone()).unwrap_or(""))
    }

    /// Drops any open record (after an error).
    pub(crate) fn reset(&mut self) {
        self.depth = 0;
        self.text.clear();
        self.tokens.clear();
    }

    /// Adds line `number`. On error the caller rejects the record and calls [`Self::reset`].
    pub(crate) fn feed(&mut self, number: usize, line: &str) -> Result<Fed, SyntaxError> {
        if self.depth == 0 {
            self.text.clear();
            self.tokens.clear();
            self.first_line = number;
            self.owner_omitted = line.starts_with([' ', '\t']);
        } else {
            self.text.push(' ');
        }
        let base = self.text.len();
        self.text.push_str(line);
        let bytes = line.as_bytes();
        let mut start: Option<usize> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b';' | b' ' | b'\t' | b'(' | b')' | b'"' => {
                    if let Some(s) = start.take() {
                        self.tokens.push(base + s..base + i);
                    }
                    match b {
                        b';' => break,
                        b'(' => self.depth += 1,
                        b')' => {
                            if self.depth == 0 {
                                return Err((i + 1, "')' without '('"));
                            }
                            self.depth -= 1;
                        }
                        b'"' => {
                            let end = closing_quote(bytes, i + 1).ok_or((i + 1, "unterminated quoted string"))?;
                            self.tokens.push(base + i + 1..base + end);
                            i = end;
                        }
                        _ => {}
                    }
                }
                // `\X` and `\DDD` (RFC 1035 section 5.1): the next character loses any special
                // meaning; the escape stays in the token as written.
                b'\\' => {
                    start.get_or_insert(i);
                    i += 1;
                }
                _ => {
                    start.get_or_insert(i);
                }
            }
            i += 1;
        }
        if let Some(s) = start {
            self.tokens.push(base + s..base + bytes.len().min(i));
        }
        Ok(if self.depth > 0 {
            Fed::Open
        } else if self.tokens.is_empty() {
            Fed::Empty
        } else {
            Fed::Complete
        })
    }
}

/// Index of the `"` closing a quoted string that starts at `from`, skipping `\"` escapes.
fn closing_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Parses a TTL: seconds, or BIND's unit form such as `1h30m` or `2W` (units s, m, h, d, w).
pub(crate) fn parse_ttl(text: &str) -> Option<u32> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            let n = number.unwrap_or(0).checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            number = Some(n);
        } else {
            let unit = match b.to_ascii_lowercase() {
                b's' => 1,
                b'm' => 60,
                b'h' => 3_600,
                b'd' => 86_400,
                b'w' => 604_800,
                _ => return None,
            };
            total = total.checked_add(number.take()?.checked_mul(unit)?)?;
        }
    }
    total = total.checked_add(number.unwrap_or(0))?;
    u32::try_from(total).ok()
}

/// True for a class mnemonic (RFC 1035 section 3.2.4) or the RFC 3597 `CLASSnnn` form.
pub(crate) fn is_class(text: &str) -> bool {
    ["IN", "CH", "CS", "HS", "NONE", "ANY"].iter().any(|c| c.eq_ignore_ascii_case(text))
        || generic_number(text, "CLASS").is_some()
}

/// True for class IN, written as a mnemonic or as `CLASS1`.
pub(crate) fn is_class_in(text: &str) -> bool {
    text.eq_ignore_ascii_case("IN") || generic_number(text, "CLASS") == Some(1)
}

/// The number in an RFC 3597 generic name such as `TYPE65534` or `CLASS1`.
pub(crate) fn generic_number(text: &str, prefix: &str) -> Option<u16> {
    let head = text.get(..prefix.len())?;
    let digits = text.get(prefix.len()..)?;
    if !head.eq_ignore_ascii_case(prefix) || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(buf: &RecordBuffer) -> Vec<&str> {
        buf.tokens().collect()
    }

    #[test]
    fn single_line_with_comment_and_quotes() {
        let mut buf = RecordBuffer::default();
        assert_eq!(buf.feed(1, "www  60 IN TXT \"a ; (b)\" \"\" ; why"), Ok(Fed::Complete));
        assert_eq!(tokens(&buf), ["www", "60", "IN", "TXT", "a ; (b)", ""]);
        assert!(!buf.owner_omitted());
        assert_eq!(buf.feed(2, "   ; only a comment"), Ok(Fed::Empty));
        assert_eq!(buf.feed(3, "\tIN NS ns1"), Ok(Fed::Complete));
        assert!(buf.owner_omitted());
    }

    #[test]
    fn parentheses_span_lines() {
        let mut buf = RecordBuffer::default();
        assert_eq!(buf.feed(4, "@ IN SOA ns. host. ( 2026112801 ; serial"), Ok(Fed::Open));
        assert_eq!(buf.feed(5, "      3600 600"), Ok(Fed::Open));
        assert_eq!(buf.feed(6, "      86400 60 )"), Ok(Fed::Complete));
        assert_eq!(tokens(&buf), ["@", "IN", "SOA", "ns.", "host.", "2026112801", "3600", "600", "86400", "60"]);
        assert_eq!(buf.first_line(), 4);
        assert!(buf.text().starts_with("@ IN SOA") && buf.text().contains("86400 60 )"));
    }

    #[test]
    fn escapes_keep_special_characters() {
        let mut buf = RecordBuffer::default();
        assert_eq!(buf.feed(1, r"a\;b\(c CNAME \065."), Ok(Fed::Complete));
        assert_eq!(tokens(&buf), [r"a\;b\(c", "CNAME", r"\065."]);
        assert_eq!(buf.feed(2, r#"x TXT "say \"hi\"""#), Ok(Fed::Complete));
        assert_eq!(tokens(&buf), ["x", "TXT", r#"say \"hi\""#]);
        assert_eq!(buf.feed(3, "trailing\\"), Ok(Fed::Complete));
        assert_eq!(tokens(&buf), ["trailing\\"]);
    }

    #[test]
    fn syntax_errors_have_columns() {
        let mut buf = RecordBuffer::default();
        assert_eq!(buf.feed(1, "a CNAME . )"), Err((11, "')' without '('")));
        buf.reset();
        assert_eq!(buf.feed(2, "a TXT \"open"), Err((7, "unterminated quoted string")));
        buf.reset();
        assert!(!buf.is_open());
    }

    #[test]
    fn ttls_and_classes() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("2W"), Some(1_209_600));
        assert_eq!(parse_ttl("1d2"), Some(86_402));
        assert_eq!(parse_ttl("h"), None);
        assert_eq!(parse_ttl("99999999999"), None);
        assert!(is_class("in") && is_class("CLASS3") && !is_class("CNAME"));
        assert!(is_class_in("CLASS1") && !is_class_in("CH"));
        assert_eq!(generic_number("TYPE28", "TYPE"), Some(28));
        assert_eq!(generic_number("TYPE", "TYPE"), None);
    }
}
