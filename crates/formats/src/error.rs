//! Why an import failed as a whole ([`ImportError`]) or refused one line ([`RejectReason`]).
//!
//! A bad line is a normal outcome: it becomes a [`crate::Rejected`] in the report, with its line
//! number and one of the reasons below, and the import goes on. Only a failure to read the input
//! at all ends an import early.

use std::io;

use bawaba_policy::{Action, NameError, PolicyError, PrefixError, Selector};
use thiserror::Error;

/// The input could not be read; nothing after `line` was imported.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The reader failed.
    #[error("reading line {line} (byte {offset}): {source}")]
    Io {
        /// The 1-based line being read when the error happened.
        line: usize,
        /// Bytes consumed before it.
        offset: u64,
        /// The reader's error.
        source: io::Error,
    },
}

/// What an entry does, as the duplicate and conflict checks compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Block, with the format's action or `None` for the caller's default.
    Block(Option<Action>),
    /// Never block (RPZ `rpz-passthru.`).
    Passthru,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Block(Some(action)) => write!(f, "{action}"),
            Verdict::Block(None) => f.write_str("block (default action)"),
            Verdict::Passthru => f.write_str("passthru"),
        }
    }
}

/// Why one line (or one multi-line RPZ record, or one name on a hosts line) was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The line is not UTF-8.
    #[error("not valid UTF-8 (first bad byte at column {column})")]
    InvalidUtf8 {
        /// 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// The line is longer than [`crate::MAX_LINE_LEN`]; it was skipped unread.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A domain name does not parse.
    #[error("invalid domain name {name:?}: {source}")]
    Name {
        /// The name as written.
        name: String,
        /// Why.
        source: NameError,
    },
    /// A prefix or address does not parse (host bits set: the reason suggests the fix).
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// A selector does not parse.
    #[error(transparent)]
    Selector(#[from] PolicyError),
    /// A domain list holds an IP prefix.
    #[error("{text} is an IP prefix, not a domain; import prefixes as a cidr list")]
    PrefixInDomainList {
        /// The text.
        text: String,
    },
    /// A domain-list line that looks like a hosts-file line.
    #[error("{text:?} looks like a hosts-file line; import the file with format hosts")]
    LooksLikeHosts {
        /// The line's data.
        text: String,
    },
    /// A line has more fields than its format allows.
    #[error("unexpected text {rest:?} after {expected}")]
    TrailingText {
        /// What was expected alone on the line.
        expected: &'static str,
        /// What followed it.
        rest: String,
    },
    /// A hosts line does not start with an address.
    #[error("{text:?} is not an IP address; a hosts line is `0.0.0.0 name [name...]`")]
    HostsAddress {
        /// The first field.
        text: String,
    },
    /// A hosts line maps names to a real address: that is a redirection, not a block.
    #[error("maps names to {address}, which is not a sinkhole (0.0.0.0, 127.0.0.1, ::, ::1); not a block")]
    HostsRedirect {
        /// The address.
        address: std::net::IpAddr,
    },
    /// A hosts line has an address and no names.
    #[error("address without names")]
    HostsNoNames,
    /// The same selector appears earlier with a different action.
    #[error("{selector} is {verdict} here but {first} on line {first_line}; the first one is kept")]
    Conflict {
        /// The selector.
        selector: Selector,
        /// What this line says.
        verdict: Verdict,
        /// What the earlier line said.
        first: Verdict,
        /// The earlier line.
        first_line: usize,
    },
    /// RPZ: a syntax error in the master-file text (RFC 1035 section 5.1).
    #[error("zone syntax at column {column}: {message}")]
    Syntax {
        /// 1-based byte column in the line (for multi-line records, in the record's first line
        /// or the line named in the message).
        column: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// RPZ: a record before any owner name was given.
    #[error("the record has no owner name and no earlier record to take it from")]
    NoOwner,
    /// RPZ: no origin is known, so relative names cannot be resolved.
    #[error("no zone origin: add `$ORIGIN name.` or an SOA record at the top, or pass the origin")]
    NoOrigin,
    /// RPZ: the owner name lies outside the policy zone.
    #[error("owner {owner} is not inside the policy zone {origin}")]
    OutsideZone {
        /// The absolute owner.
        owner: String,
        /// The zone apex.
        origin: String,
    },
    /// RPZ: the owner (trigger plus origin) is longer than a DNS name may be.
    #[error("owner name is {len} octets long, the limit is 253")]
    OwnerTooLong {
        /// Its length.
        len: usize,
    },
    /// RPZ: a TTL or `$TTL` value is not a number of seconds (or BIND units such as `1h30m`).
    #[error("invalid TTL {ttl:?}")]
    Ttl {
        /// The text.
        ttl: String,
    },
    /// RPZ: a class other than IN.
    #[error("class {class} is not supported; policy zones are class IN")]
    Class {
        /// The class as written.
        class: String,
    },
    /// RPZ: a record without type or without the data its type needs.
    #[error("incomplete {what} record: {message}")]
    Incomplete {
        /// The record type (or "resource" when the type itself is missing).
        what: String,
        /// What is missing.
        message: &'static str,
    },
    /// RPZ: a record type this parser does not know.
    #[error("unknown record type {rtype:?}")]
    UnknownType {
        /// The type as written.
        rtype: String,
    },
    /// RPZ: `$INCLUDE`, `$GENERATE` or another directive this pure parser does not run.
    #[error("directive {directive} is not supported")]
    Directive {
        /// The directive.
        directive: String,
    },
    /// RPZ: an A or AAAA record whose address does not parse.
    #[error("invalid {rtype} address {text:?}")]
    Address {
        /// A or AAAA.
        rtype: &'static str,
        /// The text.
        text: String,
    },
    /// RPZ: a trigger bawaba cannot enforce (nameserver name/address, client address).
    #[error("unsupported trigger {trigger}: bawaba enforces QNAME and response-IP (rpz-ip) triggers only")]
    UnsupportedTrigger {
        /// `rpz-nsdname`, `rpz-nsip` or `rpz-client-ip`.
        trigger: &'static str,
    },
    /// RPZ: the `rpz-tcp-only.` action.
    #[error("tcp-only unsupported: bawaba has no 'answer only over TCP' action")]
    TcpOnly,
    /// RPZ: an rpz-ip owner that is not `<len>.<reversed address>`.
    #[error("invalid rpz-ip trigger {owner:?}: {message}")]
    RpzIp {
        /// The trigger labels (relative to the zone).
        owner: String,
        /// What is wrong.
        message: &'static str,
    },
    /// RPZ: a policy record at the zone apex, where it has no trigger.
    #[error("{rtype} record at the zone apex: only SOA, NS and TXT belong there")]
    AtApex {
        /// The record type.
        rtype: String,
    },
    /// RPZ: an SOA or NS record below the apex.
    #[error("{rtype} record below the zone apex is not a policy")]
    BelowApex {
        /// The record type.
        rtype: &'static str,
    },
    /// RPZ: a CNAME target that looks like an RPZ keyword but lacks its trailing dot.
    #[error(
        "CNAME target {target} has no trailing dot, so it means {target}.<origin>, a rewrite; \
         write `{target}.`"
    )]
    RelativeKeyword {
        /// The target as written.
        target: String,
    },
    /// RPZ: a parenthesised record still open at the end of the input.
    #[error("record opened with '(' is not closed before the end of the input")]
    Unterminated,
}
