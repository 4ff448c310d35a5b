//! Import and export of the standard formats blocking policy travels in: RPZ zones, hosts files,
//! plain domain lists and CIDR lists.
//!
//! Layers, bottom up:
//! - [`import`](mod@import): the streaming line driver, the [`Import`] result and the
//!   [`ImportReport`] that accounts for every line (added, duplicate, rejected with a reason,
//!   ignored). Bad lines never abort an import.
//! - [`lists`]: hosts files, domain lists and CIDR lists, one line at a time.
//! - `zone` and [`rpz`]: the RFC 1035 master-file syntax, and RPZ triggers and actions on top.
//! - [`export`]: a [`bawaba_policy::PolicySnapshot`] written as an RPZ zone for BIND or Unbound,
//!   with each record traced to its order in a comment ([`write_rpz`]), or the same zone as a
//!   list of records ([`rpz_records`]) for a zone-transfer server to put on the wire.
//!
//! Imports yield selectors and actions, never rules: the caller attaches them to an order.
//! Everything here is pure and synchronous: input is any `BufRead` or `&str`, output any `Write`.
//!
//! ```
//! use bawaba_formats::{import_str, Format};
//! use bawaba_policy::Action;
//!
//! let zone = "$ORIGIN rpz.example.\n\
//!             @ SOA ns. host. (1 3600 600 86400 60)\n\
//!             bank-login.test   CNAME .\n\
//!             *.bank-login.test CNAME .\n\
//!             32.1.18.18.198.rpz-ip CNAME rpz-drop.\n\
//!             slow.test CNAME rpz-tcp-only.\n";
//! let import = import_str(Format::Rpz, zone, None);
//! assert_eq!(import.entries[0].selector.to_string(), "bank-login.test"); // a subtree
//! assert_eq!(import.entries[1].action, Some(Action::Drop));
//! assert_eq!(import.report.rejected[0].line, 6);
//! assert_eq!(import.report.rejected[0].reason.to_string(), "tcp-only unsupported: bawaba has no 'answer only over TCP' action");
//! ```

use std::fmt;
use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

use bawaba_policy::{DomainName, IpPrefix};
use thiserror::Error;

pub mod error;
pub mod export;
pub mod import;
pub mod lists;
pub mod rpz;
mod zone;

pub use error::{ImportError, RejectReason, Verdict};
pub use export::{
    rpz_records, write_rpz, BlockPageTarget, ExportOptions, ExportStats, ExportWarning, RecordData, Soa, Source,
    ZoneRecord, ZoneRecords,
};
pub use import::{Duplicate, Import, ImportEntry, ImportReport, Progress, Rejected, MAX_EXCERPT_LEN, MAX_LINE_LEN};

use import::{drive, Collector, LineParser};

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// An RPZ zone file (see [`rpz`]).
    Rpz,
    /// A hosts file: `0.0.0.0 name [name...]`; each name an exact selector (see [`lists`]).
    Hosts,
    /// One selector per line: `name` (subtree), `*.name`, `exact:name` (see [`lists`]).
    Domains,
    /// One prefix or address per line (see [`lists`]).
    Cidr,
}

/// A format name that is not one of `rpz`, `hosts`, `domains`, `cidr`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown format {0:?}; expected one of: rpz, hosts, domains, cidr")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[Format::Rpz, Format::Hosts, Format::Domains, Format::Cidr];

    /// The name used on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Rpz => "rpz",
            Format::Hosts => "hosts",
            Format::Domains => "domains",
            Format::Cidr => "cidr",
        }
    }

    /// The format a file name suggests: `.rpz`, `.zone` → RPZ; `hosts`, `.hosts` → hosts;
    /// `.cidr`, `.netset`, `.ipset` → CIDR; `.domains` → domains. `None` when the name says
    /// nothing (`.txt`, `.list`, no extension).
    ///
    /// ```
    /// use bawaba_formats::Format;
    /// assert_eq!(Format::from_path("feeds/court.rpz".as_ref()), Some(Format::Rpz));
    /// assert_eq!(Format::from_path("/etc/hosts".as_ref()), Some(Format::Hosts));
    /// assert_eq!(Format::from_path("list.txt".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name == "hosts" {
            return Some(Format::Hosts);
        }
        match name.rsplit_once('.')?.1 {
            "rpz" | "zone" => Some(Format::Rpz),
            "hosts" => Some(Format::Hosts),
            "cidr" | "netset" | "ipset" => Some(Format::Cidr),
            "domains" => Some(Format::Domains),
            _ => None,
        }
    }

    /// The format the start of a file looks like. Zone syntax (`$ORIGIN`, `$TTL`, or an `SOA` or
    /// `CNAME` field) means RPZ; otherwise the majority of the first 100 data lines decides
    /// between hosts (`address name`), CIDR (one prefix) and domains (anything else).
    ///
    /// ```
    /// use bawaba_formats::Format;
    /// assert_eq!(Format::sniff(b"# ads\n0.0.0.0 ads.example\n"), Format::Hosts);
    /// assert_eq!(Format::sniff(b"198.18.0.0/15\n2001:db8::/32\n"), Format::Cidr);
    /// assert_eq!(Format::sniff(b"$TTL 60\n@ SOA a. b. 1 2 3 4 5\n"), Format::Rpz);
    /// assert_eq!(Format::sniff(b"example.test\n"), Format::Domains);
    /// ```
    pub fn sniff(sample: &[u8]) -> Format {
        let text = String::from_utf8_lossy(sample);
        let (mut hosts, mut cidr, mut other) = (0, 0, 0);
        let data = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', ';']));
        for line in data.take(100) {
            let mut fields = line.split_ascii_whitespace();
            let first = fields.next().unwrap_or("");
            if first.eq_ignore_ascii_case("$ORIGIN")
                || first.eq_ignore_ascii_case("$TTL")
                || line
                    .split_ascii_whitespace()
                    .any(|f| f.eq_ignore_ascii_case("SOA") || f.eq_ignore_ascii_case("CNAME"))
            {
                return Format::Rpz;
            }
            let second = fields.next();
            if second.is_some() && first.parse::<std::net::IpAddr>().is_ok() {
                hosts += 1;
            } else if second.is_none() && IpPrefix::parse(first).is_ok() {
                cidr += 1;
            } else {
                other += 1;
            }
        }
        if hosts > cidr && hosts >= other && hosts > 0 {
            Format::Hosts
        } else if cidr > other && cidr > 0 {
            Format::Cidr
        } else {
            Format::Domains
        }
    }

    /// [`Format::from_path`] when the name is telling, else [`Format::sniff`] on the sample.
    pub fn guess(path: Option<&Path>, sample: &[u8]) -> Format {
        path.and_then(Format::from_path).unwrap_or_else(|| Format::sniff(sample))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.iter().copied().find(|f| f.as_str().eq_ignore_ascii_case(s.trim())).ok_or(UnknownFormat(s.into()))
    }
}

/// What to import and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The input format.
    pub format: Format,
    /// RPZ: the zone name to read relative owner names against when the file has neither an SOA
    /// at the top nor `$ORIGIN` (see [`rpz`]). Ignored by the other formats.
    pub origin: Option<DomainName>,
}

impl ImportOptions {
    /// Options for `format`, with no origin.
    pub fn new(format: Format) -> Self {
        ImportOptions { format, origin: None }
    }

    /// Sets the RPZ origin.
    pub fn with_origin(mut self, origin: DomainName) -> Self {
        self.origin = Some(origin);
        self
    }
}

/// Imports `input` in `format`, calling `progress` every few thousand lines and at the end
/// (for a progress bar). Bad lines are reported in [`Import::report`]; only a read error fails.
pub fn import(format: Format, input: impl BufRead, progress: impl FnMut(Progress)) -> Result<Import, ImportError> {
    import_with(&ImportOptions::new(format), input, progress)
}

/// [`import()`] with full options.
pub fn import_with(
    options: &ImportOptions,
    input: impl BufRead,
    mut progress: impl FnMut(Progress),
) -> Result<Import, ImportError> {
    let mut out = Collector::new();
    match options.format {
        Format::Rpz => {
            let mut parser = rpz::RpzParser::new(options.origin.as_ref());
            let done = drive(input, &mut parser, &mut out, &mut progress)?;
            let merged = out.merge_subtrees();
            Ok(out.finish(Format::Rpz, parser.apex(), done, merged))
        }
        format => {
            let mut parser: Box<dyn LineParser> = match format {
                Format::Hosts => Box::new(lists::Hosts),
                Format::Cidr => Box::new(lists::Cidr),
                _ => Box::new(lists::Domains),
            };
            let done = drive(input, parser.as_mut(), &mut out, &mut progress)?;
            Ok(out.finish(format, None, done, 0))
        }
    }
}

/// Imports text already in memory (an RPZ `origin` as in [`ImportOptions::origin`]).
pub fn import_str(format: Format, text: &str, origin: Option<&DomainName>) -> Import {
    let options = ImportOptions { format, origin: origin.cloned() };
    import_with(&options, text.as_bytes(), |_| {}).expect("reading from a byte slice cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), *f);
        }
        assert_eq!(" RPZ ".parse::<Format>().unwrap(), Format::Rpz);
        let e = "csv".parse::<Format>().unwrap_err();
        assert_eq!(e.to_string(), "unknown format \"csv\"; expected one of: rpz, hosts, domains, cidr");
    }

    #[test]
    fn guesses() {
        assert_eq!(Format::guess(Some(Path::new("x.netset")), b"example.test"), Format::Cidr);
        assert_eq!(Format::guess(Some(Path::new("x.txt")), b"0.0.0.0 a.test\n0.0.0.0 b.test"), Format::Hosts);
        assert_eq!(Format::guess(None, b"a.test CNAME .\n"), Format::Rpz);
        assert_eq!(Format::guess(None, b""), Format::Domains);
        assert_eq!(Format::guess(None, b"a.test\n*.b.test\n198.18.0.0/24\n"), Format::Domains);
    }

    #[test]
    fn streaming_progress() {
        let text: String = (0..40_000).map(|i| format!("host{i}.example.test\n")).collect();
        let mut calls = Vec::new();
        let import = import(Format::Domains, text.as_bytes(), |p| calls.push(p)).unwrap();
        assert_eq!(import.entries.len(), 40_000);
        assert_eq!(calls.len(), 3, "every 16384 lines and at the end");
        assert_eq!(calls.last().unwrap().lines, 40_000);
        assert_eq!(calls.last().unwrap().bytes, text.len() as u64);
        assert_eq!(
            import.report.to_string(),
            format!("40000 lines ({} bytes) of domains: 40000 added, 0 duplicates, 0 rejected, 0 ignored", text.len())
        );
    }
}
