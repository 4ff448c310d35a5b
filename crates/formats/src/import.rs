//! The import result, the report every import produces, and the streaming line driver.
//!
//! Every format parser sees the input one line at a time through `drive`, which reads bytes
//! into one reused buffer (lines are borrowed, never copied into new strings), checks UTF-8,
//! and reports progress. Parsers hand what they find to a `Collector`, which owns the
//! duplicate and conflict checks so that every format counts them the same way.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead};

use bawaba_policy::{Action, DomainName, Selector};
use hashbrown::HashTable;

use crate::error::{ImportError, RejectReason, Verdict};
use crate::Format;

/// Longest line read; longer lines are skipped and rejected (they are never valid in any format).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Longest excerpt of a rejected line kept in the report, in bytes.
pub const MAX_EXCERPT_LEN: usize = 200;

/// How often the progress callback runs, in lines.
const PROGRESS_EVERY: usize = 16 * 1024;

/// One selector found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry {
    /// 1-based line it came from (for a multi-line RPZ record, its first line; for a merged RPZ
    /// subtree, the earlier of its two records).
    pub line: usize,
    /// What to match.
    pub selector: Selector,
    /// The action the file states (RPZ), or `None` where the format has none and the caller's
    /// default applies (hosts, domain and CIDR lists).
    pub action: Option<Action>,
}

/// One line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line (for a multi-line RPZ record, its first line).
    pub line: usize,
    /// The line as written, cut to about [`MAX_EXCERPT_LEN`] bytes (invalid UTF-8 shown as U+FFFD).
    pub text: String,
    /// Why.
    pub reason: RejectReason,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} (in {:?})", self.line, self.reason, self.text)
    }
}

/// A selector that appeared again with the same action; the repeat was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The line of the repeat.
    pub line: usize,
    /// The line where the selector first appeared.
    pub first_line: usize,
    /// The selector.
    pub selector: Selector,
}

/// Progress of a streaming import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Lines read so far.
    pub lines: usize,
    /// Bytes read so far.
    pub bytes: u64,
}

/// What happened to every line of the input.
///
/// Blank lines, comments and RPZ directives (`$ORIGIN`, `$TTL`) have no outcome. Every other line
/// (an RPZ record spanning lines counts once; a hosts line once per name) has exactly one: an
/// entry (`added`, less one per `merged` pair), a `duplicates` item, a `rejected` item or an
/// `ignored` count. Nothing is dropped without being counted here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The format parsed.
    pub format: Format,
    /// RPZ: the zone apex that owner names were taken relative to.
    pub origin: Option<DomainName>,
    /// Lines read.
    pub lines: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Entries imported (blocks and passthrus).
    pub added: usize,
    /// Repeats of an earlier selector with the same action, dropped.
    pub duplicates: Vec<Duplicate>,
    /// RPZ: pairs `name` + `*.name` with the same action merged into one subtree entry.
    pub merged: usize,
    /// Records or names skipped on purpose: the RPZ SOA, apex NS and TXT records, extra local-data
    /// records of a trigger already imported, hosts entries such as `localhost`.
    pub ignored: usize,
    /// Lines refused, with reasons.
    pub rejected: Vec<Rejected>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines ({} bytes) of {}: {} added, {} duplicates, {} rejected, {} ignored",
            self.lines,
            self.bytes,
            self.format,
            self.added,
            self.duplicates.len(),
            self.rejected.len(),
            self.ignored
        )?;
        if self.merged > 0 {
            write!(f, ", {} name/wildcard pairs merged into subtrees", self.merged)?;
        }
        Ok(())
    }
}

/// The result of an import: what to block, what never to block, and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Import {
    /// Selectors to block, in input order.
    pub entries: Vec<ImportEntry>,
    /// RPZ `rpz-passthru.` triggers: candidates for the allowlist, in input order (their
    /// `action` is always `None`).
    pub passthru: Vec<ImportEntry>,
    /// What happened to every line.
    pub report: ImportReport,
}

/// The sink that format parsers feed: it deduplicates, detects conflicts and records rejections.
pub(crate) struct Collector {
    found: Vec<Found>,
    index: HashTable<usize>,
    hasher: RandomState,
    duplicates: Vec<Duplicate>,
    rejected: Vec<Rejected>,
    ignored: usize,
}

struct Found {
    line: usize,
    selector: Selector,
    verdict: Verdict,
    /// The selector's hash, kept so that growing the index never hashes a selector again.
    hash: u64,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Collector {
            found: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            duplicates: Vec::new(),
            rejected: Vec::new(),
            ignored: 0,
        }
    }

    /// Records a selector; a repeat is a duplicate (same verdict) or a conflict (different one).
    pub(crate) fn add(&mut self, line: usize, text: &str, selector: Selector, verdict: Verdict) {
        let hash = self.hasher.hash_one(&selector);
        let found = &self.found;
        if let Some(&i) = self.index.find(hash, |&i| found[i].selector == selector) {
            let first = &self.found[i];
            if first.verdict == verdict {
                self.duplicates.push(Duplicate { line, first_line: first.line, selector });
            } else {
                let reason = RejectReason::Conflict { selector, verdict, first: first.verdict, first_line: first.line };
                self.reject(line, text, reason);
            }
            return;
        }
        let i = self.found.len();
        self.found.push(Found { line, selector, verdict, hash });
        let found = &self.found;
        self.index.insert_unique(hash, i, |&j| found[j].hash);
    }

    /// Records a rejected line.
    pub(crate) fn reject(&mut self, line: usize, text: &str, reason: RejectReason) {
        self.rejected.push(Rejected { line, text: excerpt(text), reason });
    }

    /// Records a rejected line that is not UTF-8.
    pub(crate) fn reject_bytes(&mut self, line: usize, bytes: &[u8], reason: RejectReason) {
        let cut = &bytes[..bytes.len().min(MAX_EXCERPT_LEN + 4)];
        self.reject(line, &String::from_utf8_lossy(cut), reason);
    }

    /// Counts a record skipped on purpose.
    pub(crate) fn ignore(&mut self) {
        self.ignored += 1;
    }

    /// RPZ writes a subtree as two triggers, `name` and `*.name` (draft-vixie-dnsop-dns-rpz,
    /// "QNAME Trigger"). Merges every such pair with the same verdict into one
    /// [`Selector::Subtree`], kept at the position of the earlier record. Returns the number merged.
    pub(crate) fn merge_subtrees(&mut self) -> usize {
        let mut absorbed = vec![false; self.found.len()];
        let mut merged = 0;
        for i in 0..self.found.len() {
            let Selector::Exact(name) = &self.found[i].selector else { continue };
            let wildcard = Selector::Subdomains(name.clone());
            let hash = self.hasher.hash_one(&wildcard);
            let found = &self.found;
            let Some(&j) = self.index.find(hash, |&j| found[j].selector == wildcard) else { continue };
            if self.found[j].verdict != self.found[i].verdict {
                continue;
            }
            let (keep, drop) = if self.found[i].line <= self.found[j].line { (i, j) } else { (j, i) };
            self.found[keep].selector = Selector::Subtree(name.clone());
            self.found[keep].line = self.found[i].line.min(self.found[j].line);
            absorbed[drop] = true;
            merged += 1;
        }
        if merged > 0 {
            let mut flags = absorbed.into_iter();
            self.found.retain(|_| !flags.next().unwrap_or(false));
            // The index now points at stale positions; nothing reads it after merging.
            self.index.clear();
        }
        merged
    }

    /// Splits what was found into blocks and passthrus and writes the report.
    pub(crate) fn finish(
        self,
        format: Format,
        origin: Option<DomainName>,
        progress: Progress,
        merged: usize,
    ) -> Import {
        let mut entries = Vec::with_capacity(self.found.len());
        let mut passthru = Vec::new();
        for Found { line, selector, verdict, .. } in self.found {
            match verdict {
                Verdict::Block(action) => entries.push(ImportEntry { line, selector, action }),
                Verdict::Passthru => passthru.push(ImportEntry { line, selector, action: None }),
            }
        }
        let report = ImportReport {
            format,
            origin,
            lines: progress.lines,
            bytes: progress.bytes,
            added: entries.len() + passthru.len(),
            duplicates: self.duplicates,
            merged,
            ignored: self.ignored,
            rejected: self.rejected,
        };
        Import { entries, passthru, report }
    }
}

/// Cuts `text` to about [`MAX_EXCERPT_LEN`] bytes on a character boundary.
pub(crate) fn excerpt(text: &str) -> String {
    let text = text.trim_end();
    if text.len() <= MAX_EXCERPT_LEN {
        return text.to_string();
    }
    let mut end = MAX_EXCERPT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// One physical line as the driver hands it to a parser.
pub(crate) enum Line<'a> {
    /// A UTF-8 line without its line terminator.
    Text(&'a str),
    /// A line that is not UTF-8 or is too long: the parser must reject it.
    Bad(&'a [u8], RejectReason),
}

/// A format parser fed line by line.
pub(crate) trait LineParser {
    /// Handles line `number` (1-based).
    fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector);
    /// Called once after the last line.
    fn end(&mut self, _lines: usize, _out: &mut Collector) {}
}

/// Reads `input` line by line into `parser`, calling `progress` every few thousand lines and once
/// at the end. Returns the final progress.
pub(crate) fn drive<R: BufRead>(
    mut input: R,
    parser: &mut dyn LineParser,
    out: &mut Collector,
    progress: &mut dyn FnMut(Progress),
) -> Result<Progress, ImportError> {
    let mut buf = Vec::with_capacity(256);
    let mut done = Progress::default();
    loop {
        buf.clear();
        let (consumed, too_long) = read_line(&mut input, &mut buf).map_err(|source| ImportError::Io {
            line: done.lines + 1,
            offset: done.bytes,
            source,
        })?;
        if consumed == 0 {
            break;
        }
        done.lines += 1;
        done.bytes += consumed as u64;
        let mut bytes = buf.as_slice();
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        if done.lines == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let line = if too_long {
            Line::Bad(bytes, RejectReason::LineTooLong { limit: MAX_LINE_LEN })
        } else {
            match std::str::from_utf8(bytes) {
                Ok(text) => Line::Text(text),
                Err(e) => Line::Bad(bytes, RejectReason::InvalidUtf8 { column: e.valid_up_to() + 1 }),
            }
        };
        parser.line(done.lines, line, out);
        if done.lines % PROGRESS_EVERY == 0 {
            progress(done);
        }
    }
    parser.end(done.lines, out);
    progress(done);
    Ok(done)
}

/// Reads one line into `buf` (without the `\n`), keeping at most [`MAX_LINE_LEN`] bytes of it.
/// Returns the bytes consumed (0 at the end of input) and whether the line was cut.
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((consumed, too_long));
        }
        let (chunk, used, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = MAX_LINE_LEN.saturating_sub(buf.len());
        if chunk.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        input.consume(used);
        consumed += used;
        if done {
            return Ok((consumed, too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(Vec<(usize, String)>);
    impl LineParser for Echo {
        fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector) {
            match line {
                Line::Text(t) => self.0.push((number, t.to_string())),
                Line::Bad(bytes, reason) => out.reject_bytes(number, bytes, reason),
            }
        }
    }

    fn run(input: &[u8]) -> (Echo, Collector, Progress, Vec<Progress>) {
        let mut parser = Echo(Vec::new());
        let mut out = Collector::new();
        let mut calls = Vec::new();
        let done = drive(input, &mut parser, &mut out, &mut |p| calls.push(p)).unwrap();
        (parser, out, done, calls)
    }

    #[test]
    fn splits_lines_and_strips_crlf_and_bom() {
        let (echo, out, done, calls) = run(b"\xEF\xBB\xBFone\r\ntwo\n\nthree");
        assert_eq!(echo.0, vec![(1, "one".into()), (2, "two".into()), (3, String::new()), (4, "three".into())]);
        assert!(out.rejected.is_empty());
        assert_eq!(done, Progress { lines: 4, bytes: 18 });
        assert_eq!(calls.last(), Some(&done));
    }

    #[test]
    fn rejects_invalid_utf8_and_overlong_lines_and_goes_on() {
        let mut input = b"ok\nbad \xFF byte\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_LEN + 10));
        input.extend(b"\nafter\n");
        let (echo, out, done, _) = run(&input);
        assert_eq!(echo.0, vec![(1, "ok".into()), (4, "after".into())]);
        assert_eq!(out.rejected[0].line, 2);
        assert_eq!(out.rejected[0].reason, RejectReason::InvalidUtf8 { column: 5 });
        assert_eq!(out.rejected[0].text, "bad \u{FFFD} byte");
        assert_eq!(out.rejected[1].reason, RejectReason::LineTooLong { limit: MAX_LINE_LEN });
        assert!(out.rejected[1].text.len() <= MAX_EXCERPT_LEN + 3);
        assert_eq!(done.lines, 4);
    }

    #[test]
    fn io_errors_name_the_line() {
        struct Failing(usize);
        impl io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[..2].copy_from_slice(b"a\n");
                Ok(2)
            }
        }
        let mut out = Collector::new();
        let e = drive(io::BufReader::new(Failing(2)), &mut Echo(Vec::new()), &mut out, &mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "reading line 3 (byte 4): disk on fire");
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        let long = "ب".repeat(150);
        let cut = excerpt(&long);
        assert!(cut.ends_with("...") && cut.len() <= MAX_EXCERPT_LEN + 3);
    }
}
