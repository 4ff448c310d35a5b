//! What can go wrong while decoding a datagram, with the byte offset where it went wrong.

use bawaba_wire::packet::PacketError;
use thiserror::Error;

/// Why (part of) a datagram could not be decoded. Every variant carries the offset from the
/// start of the datagram where the problem was found.
///
/// [`crate::decode`] returns one of these when the datagram's framing is broken (header, or a
/// set or sample whose length runs past the datagram) and it cannot go on. Problems confined to
/// one set or sample (a data set whose template is unknown, a template that cannot be stored, a
/// record that overruns its set) are handed to [`crate::Visitor::problem`] instead, and decoding
/// goes on with the next set or sample.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The bytes end inside a field.
    #[error("truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// The field being read.
        what: &'static str,
    },
    /// A length field that contradicts its container (a set shorter than its header, a
    /// message length beyond the datagram, a field longer than its record).
    #[error("bad {what} length {length} at byte {offset}")]
    BadLength {
        /// Where the length field is.
        offset: usize,
        /// Which length.
        what: &'static str,
        /// Its value.
        length: usize,
    },
    /// The first bytes name no export protocol this crate reads.
    #[error("unknown export version {version} at byte {offset}")]
    UnknownVersion {
        /// Where the version field is (0).
        offset: usize,
        /// The version field (a u16 for NetFlow/IPFIX, the u32 for sFlow when the first two
        /// bytes are zero).
        version: u32,
    },
    /// A data set whose template has not been received (yet) from this exporter and
    /// observation domain. RFC 7011 section 8 allows data to arrive before its template over
    /// UDP; the set is skipped and counted.
    #[error("no template {template_id} for observation domain {domain}: data set at byte {offset} skipped")]
    TemplateMissing {
        /// Where the set starts.
        offset: usize,
        /// The set id, which names the template.
        template_id: u16,
        /// The observation domain (IPFIX) or source id (NetFlow v9).
        domain: u32,
    },
    /// A template or options template record that contradicts itself (id below 256, scope
    /// count above field count, records of zero length).
    #[error("bad template {template_id} at byte {offset}: {reason}")]
    BadTemplate {
        /// Where the template record starts.
        offset: usize,
        /// Its id.
        template_id: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// A template that would exceed the cache's limits ([`crate::CacheLimits`]); not stored.
    #[error("template {template_id} at byte {offset} not stored: cache limit reached")]
    TemplateLimit {
        /// Where the template record starts.
        offset: usize,
        /// Its id.
        template_id: u16,
    },
    /// A field whose value is out of its range (an sFlow address type other than 1 or 2).
    #[error("bad {what} value {value} at byte {offset}")]
    BadValue {
        /// Where the field is.
        offset: usize,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// An sFlow sampled packet header that does not dissect as Ethernet/IP.
    #[error("sampled packet header at byte {offset}: {source}")]
    BadPacket {
        /// Where the header bytes start.
        offset: usize,
        /// Why it does not dissect (offsets inside are relative to the header).
        source: PacketError,
    },
}

/// The kind of a [`FlowError`], for counters and metric labels (a bounded set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`FlowError::Truncated`].
    Truncated,
    /// [`FlowError::BadLength`].
    BadLength,
    /// [`FlowError::UnknownVersion`].
    UnknownVersion,
    /// [`FlowError::TemplateMissing`].
    TemplateMissing,
    /// [`FlowError::BadTemplate`].
    BadTemplate,
    /// [`FlowError::TemplateLimit`].
    TemplateLimit,
    /// [`FlowError::BadValue`].
    BadValue,
    /// [`FlowError::BadPacket`].
    BadPacket,
}

impl ErrorKind {
    /// Every kind, for pre-registering counters.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Truncated,
        ErrorKind::BadLength,
        ErrorKind::UnknownVersion,
        ErrorKind::TemplateMissing,
        ErrorKind::BadTemplate,
        ErrorKind::TemplateLimit,
        ErrorKind::BadValue,
        ErrorKind::BadPacket,
    ];

    /// A snake_case name, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::UnknownVersion => "unknown_version",
            ErrorKind::TemplateMissing => "template_missing",
            ErrorKind::BadTemplate => "bad_template",
            ErrorKind::TemplateLimit => "template_limit",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadPacket => "bad_packet",
        }
    }
}

impl FlowError {
    /// The kind, for counting.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FlowError::Truncated { .. } => ErrorKind::Truncated,
            FlowError::BadLength { .. } => ErrorKind::BadLength,
            FlowError::UnknownVersion { .. } => ErrorKind::UnknownVersion,
            FlowError::TemplateMissing { .. } => ErrorKind::TemplateMissing,
            FlowError::BadTemplate { .. } => ErrorKind::BadTemplate,
            FlowError::TemplateLimit { .. } => ErrorKind::TemplateLimit,
            FlowError::BadValue { .. } => ErrorKind::BadValue,
            FlowError::BadPacket { .. } => ErrorKind::BadPacket,
        }
    }

    /// The byte offset in the datagram where the problem was found.
    pub fn offset(&self) -> usize {
        match *self {
            FlowError::Truncated { offset, .. }
            | FlowError::BadLength { offset, .. }
            | FlowError::UnknownVersion { offset, .. }
            | FlowError::TemplateMissing { offset, .. }
            | FlowError::BadTemplate { offset, .. }
            | FlowError::TemplateLimit { offset, .. }
            | FlowError::BadValue { offset, .. }
            | FlowError::BadPacket { offset, .. } => offset,
        }
    }
}
