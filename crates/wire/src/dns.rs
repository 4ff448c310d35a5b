//! DNS messages: a validated zero-copy [`Message`] view and a [`Builder`] for answers.
//!
//! [`Message::parse`] walks every section once (RFC 1035 section 4.1), following compression
//! pointers (section 4.1.4) only backwards so that loops are impossible, and checks that each
//! name is at most 255 octets. It also finds the EDNS(0) OPT record (RFC 6891 section 6.1).
//! After that, the accessors and record iterators cannot fail.

use std::fmt;

use thiserror::Error;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form (RFC 1035 section 2.3.4).
pub const MAX_NAME_WIRE: usize = 255;

/// Why bytes are not a DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends inside a field.
    #[error("message truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// The field being read.
        what: &'static str,
    },
    /// A label type other than a normal label or a pointer (RFC 6891 retired the others).
    #[error("unsupported label type 0x{byte:02x} at byte {offset}")]
    LabelType {
        /// Where.
        offset: usize,
        /// The length byte.
        byte: u8,
    },
    /// A compression pointer that does not point backwards.
    #[error("compression pointer at byte {offset} does not point backwards")]
    BadPointer {
        /// Where.
        offset: usize,
    },
    /// A name longer than 255 octets.
    #[error("name at byte {offset} is longer than 255 octets")]
    NameTooLong {
        /// Where the name starts.
        offset: usize,
    },
    /// More than one question (no server answers those).
    #[error("{count} questions; exactly one is supported")]
    QuestionCount {
        /// QDCOUNT.
        count: u16,
    },
    /// More than one OPT record, or one outside the additional section (RFC 6891 section 6.1.1).
    #[error("misplaced or repeated OPT record at byte {offset}")]
    Opt {
        /// Where.
        offset: usize,
    },
    /// Bytes after the last record.
    #[error("{extra} bytes after the last record")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

macro_rules! codepoint {
    ($(#[$m:meta])* $name:ident($inner:ty) { $($(#[$vm:meta])* $konst:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);
        impl $name {
            $($(#[$vm])* pub const $konst: $name = $name($val);)*
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match *self {
                    $($name::$konst => f.write_str(stringify!($konst)),)*
                    $name(other) => write!(f, "{}{}", stringify!($name), other),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

codepoint!(
    /// Resource record type (IANA "Resource Record (RR) TYPEs"). Unknown values survive.
    Type(u16) {
        /// IPv4 address.
        A = 1, /// Name server.
        NS = 2, /// Canonical name.
        CNAME = 5, /// Start of authority.
        SOA = 6, /// Pointer.
        PTR = 12, /// Mail exchange.
        MX = 15, /// Text.
        TXT = 16, /// IPv6 address.
        AAAA = 28, /// Service.
        SRV = 33, /// Delegation name.
        DNAME = 39, /// EDNS(0) pseudo-record.
        OPT = 41, /// Delegation signer.
        DS = 43, /// Signature.
        RRSIG = 46, /// Next secure.
        NSEC = 47, /// DNS key.
        DNSKEY = 48, /// Incremental zone transfer.
        IXFR = 251, /// Full zone transfer.
        AXFR = 252, /// Any type.
        ANY = 255,
    }
);

codepoint!(
    /// Class.
    Class(u16) {
        /// Internet.
        IN = 1, /// Chaos.
        CH = 3, /// Any class.
        ANY = 255,
    }
);

codepoint!(
    /// Response code (the header's 4 bits; extended codes use the OPT record).
    Rcode(u8) {
        /// No error.
        NOERROR = 0, /// Format error.
        FORMERR = 1, /// Server failure.
        SERVFAIL = 2, /// Name does not exist.
        NXDOMAIN = 3, /// Not implemented.
        NOTIMP = 4, /// Refused.
        REFUSED = 5, /// Not authoritative.
        NOTAUTH = 9,
    }
);

codepoint!(
    /// Opcode.
    Opcode(u8) {
        /// Standard query.
        QUERY = 0, /// Zone change notification (RFC 1996).
        NOTIFY = 4,
    }
);

/// Header flag bits (RFC 1035 section 4.1.1, RFC 4035 section 3.2 for AD and CD).
pub mod flags {
    /// Response.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
    /// Authentic data.
    pub const AD: u16 = 0x0020;
    /// Checking disabled.
    pub const CD: u16 = 0x0010;
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Transaction id.
    pub id: u16,
    /// Flags, opcode and rcode.
    pub flags: u16,
    /// Question count.
    pub qdcount: u16,
    /// Answer count.
    pub ancount: u16,
    /// Authority count.
    pub nscount: u16,
    /// Additional count.
    pub arcount: u16,
}

impl Header {
    /// Reads the header from the first 12 bytes.
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated { offset: buf.len(), what: "header" });
        }
        let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Ok(Header { id: u(0), flags: u(2), qdcount: u(4), ancount: u(6), nscount: u(8), arcount: u(10) })
    }

    /// True for responses.
    pub fn is_response(&self) -> bool {
        self.flags & flags::QR != 0
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode(((self.flags >> 11) & 0xf) as u8)
    }

    /// The 4-bit rcode.
    pub fn rcode(&self) -> Rcode {
        Rcode((self.flags & 0xf) as u8)
    }

    /// Whether `flag` (see [`flags`]) is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A validated (possibly compressed) name inside a message.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    buf: &'a [u8],
    start: usize,
}

impl<'a> Name<'a> {
    /// Offset of the name's first byte in the message.
    pub fn offset(&self) -> usize {
        self.start
    }

    /// The labels, left to right, following compression pointers.
    pub fn labels(&self) -> Labels<'a> {
        Labels { buf: self.buf, pos: self.start }
    }

    /// Writes the name as lowercase dotted text without the trailing dot (`""` for the root) into
    /// `out` and returns it, or `None` when a label holds a byte that has no place in a host name
    /// (such a name can match no policy rule, which only holds letters, digits, `-` and `_`).
    pub fn to_text_lower<'o>(&self, out: &'o mut [u8; 256]) -> Option<&'o str> {
        let mut len = 0;
        for label in self.labels() {
            if len > 0 {
                out[len] = b'.';
                len += 1;
            }
            for &b in label {
                let b = b.to_ascii_lowercase();
                if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return None;
                }
                // A validated name has at most 255 wire octets, so its text fits in 256.
                out[len] = b;
                len += 1;
            }
        }
        std::str::from_utf8(&out[..len]).ok()
    }

    /// Appends the uncompressed, lowercased wire form (for cache keys and comparisons).
    pub fn write_wire_lower(&self, out: &mut Vec<u8>) {
        let from = out.len();
        match self.flat_len() {
            // Length octets are below 64, so ASCII lowercasing leaves them alone: the whole span
            // is copied and folded at once.
            Some(len) => {
                out.extend_from_slice(&self.buf[self.start..self.start + len]);
                out[from..].make_ascii_lowercase();
            }
            None => {
                for label in self.labels() {
                    out.push(label.len() as u8);
                    out.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                out.push(0);
            }
        }
    }

    /// The length of the name's wire form when it is stored whole at its start, with no
    /// compression pointer (a question name usually is), `None` otherwise.
    fn flat_len(&self) -> Option<usize> {
        let mut pos = self.start;
        loop {
            let len = *self.buf.get(pos)?;
            if len == 0 {
                return Some(pos + 1 - self.start);
            }
            if len & 0xC0 != 0 {
                return None;
            }
            pos += 1 + usize::from(len);
        }
    }

    /// Appends the uncompressed wire form, case preserved (for copying into another message).
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        for label in self.labels() {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }

    /// Case-insensitive equality of two names (possibly in different messages).
    pub fn eq_ignore_case(&self, other: &Name<'_>) -> bool {
        let mut a = self.labels();
        let mut b = other.labels();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                _ => return false,
            }
        }
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in self.labels() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            f.write_str(&String::from_utf8_lossy(label))?;
        }
        if first {
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Iterator over the labels of a validated name.
pub struct Labels<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        // The name was validated by `skip_name`; the bounds checks below only guard the invariant.
        loop {
            let len = *self.buf.get(self.pos)? as usize;
            if len & 0xc0 == 0xc0 {
                let lo = *self.buf.get(self.pos + 1)? as usize;
                self.pos = ((len & 0x3f) << 8) | lo;
                continue;
            }
            if len == 0 {
                return None;
            }
            let label = self.buf.get(self.pos + 1..self.pos + 1 + len)?;
            self.pos += 1 + len;
            return Some(label);
        }
    }
}

/// Validates the name at `start`; returns the offset just past it (past the first pointer, if
/// compressed). Pointers must point strictly before the label that holds them, so there are no
/// loops, and past the header; the expanded name must fit in 255 octets.
pub fn skip_name(buf: &[u8], start: usize) -> Result<usize, WireError> {
    let mut pos = start;
    let mut end = None;
    let mut wire_len = 1; // the root label
    loop {
        let &len = buf.get(pos).ok_or(WireError::Truncated { offset: pos, what: "name" })?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end.unwrap_or(pos + 1));
                }
                let next = pos + 1 + len as usize;
                if next > buf.len() {
                    return Err(WireError::Truncated { offset: buf.len(), what: "label" });
                }
                wire_len += 1 + len as usize;
                if wire_len > MAX_NAME_WIRE {
                    return Err(WireError::NameTooLong { offset: start });
                }
                pos = next;
            }
            0xc0 => {
                let &lo = buf.get(pos + 1).ok_or(WireError::Truncated { offset: pos + 1, what: "pointer" })?;
                let target = (((len & 0x3f) as usize) << 8) | lo as usize;
                // No name starts inside the header; a pointer there would also break any copy of
                // this name into another message (found by the dns_message fuzz target).
                if target >= pos || target < HEADER_LEN {
                    return Err(WireError::BadPointer { offset: pos });
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(WireError::LabelType { offset: pos, byte: len }),
        }
    }
}

/// The question.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// QNAME.
    pub name: Name<'a>,
    /// QTYPE.
    pub qtype: Type,
    /// QCLASS.
    pub qclass: Class,
}

/// A resource record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Owner name.
    pub name: Name<'a>,
    /// Type.
    pub rtype: Type,
    /// Class (for OPT: the UDP payload size).
    pub class: Class,
    /// TTL (for OPT: extended rcode, version and flags).
    pub ttl: u32,
    /// Offset of the TTL field, so a cache can rewrite it in place.
    pub ttl_offset: usize,
    /// RDATA.
    pub rdata: &'a [u8],
    /// Offset of RDATA in the message.
    pub rdata_offset: usize,
}

impl<'a> Record<'a> {
    /// For CNAME, DNAME, NS and PTR records: the target name.
    pub fn target_name(&self, msg: &Message<'a>) -> Option<Name<'a>> {
        match self.rtype {
            Type::CNAME | Type::DNAME | Type::NS | Type::PTR => Some(Name { buf: msg.buf, start: self.rdata_offset })
                .filter(|_| skip_name(msg.buf, self.rdata_offset).is_ok()),
            _ => None,
        }
    }

    /// For A and AAAA records: the address.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        match (self.rtype, self.rdata.len()) {
            (Type::A, 4) => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(self.rdata).ok()?)),
            (Type::AAAA, 16) => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(self.rdata).ok()?)),
            _ => None,
        }
    }
}

/// The EDNS(0) OPT record's fields (RFC 6891 section 6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns<'a> {
    /// Requestor's UDP payload size.
    pub udp_size: u16,
    /// Upper 8 bits of the extended rcode.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK (RFC 3225).
    pub dnssec_ok: bool,
    /// Raw options (code, length, data)*.
    pub options: &'a [u8],
    /// Offset of the OPT record in the message.
    pub offset: usize,
}

impl<'a> Edns<'a> {
    /// Iterates over (code, data) options; stops at the first malformed one.
    pub fn options(&self) -> impl Iterator<Item = (u16, &'a [u8])> {
        let mut rest = self.options;
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let code = u16::from_be_bytes([rest[0], rest[1]]);
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            let data = rest.get(4..4 + len)?;
            rest = &rest[4 + len..];
            Some((code, data))
        })
    }
}

/// A validated DNS message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    header: Header,
    question: Option<Question<'a>>,
    question_end: usize,
    sections: [usize; 3],
    edns: Option<Edns<'a>>,
}

impl<'a> Message<'a> {
    /// Validates `buf` as a whole message.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, WireError> {
        let header = Header::parse(buf)?;
        let mut pos = HEADER_LEN;
        let question = match header.qdcount {
            0 => None,
            1 => {
                let end = skip_name(buf, pos)?;
                let fixed = buf.get(end..end + 4).ok_or(WireError::Truncated { offset: end, what: "question" })?;
                let q = Question {
                    name: Name { buf, start: pos },
                    qtype: Type(u16::from_be_bytes([fixed[0], fixed[1]])),
                    qclass: Class(u16::from_be_bytes([fixed[2], fixed[3]])),
                };
                pos = end + 4;
                Some(q)
            }
            count => return Err(WireError::QuestionCount { count }),
        };
        let question_end = pos;
        let mut sections = [0; 3];
        let mut edns = None;
        for (i, count) in [header.ancount, header.nscount, header.arcount].into_iter().enumerate() {
            sections[i] = pos;
            for _ in 0..count {
                let (record, next) = read_record(buf, pos)?;
                if record.rtype == Type::OPT {
                    if i != 2 || edns.is_some() {
                        return Err(WireError::Opt { offset: pos });
                    }
                    edns = Some(Edns {
                        udp_size: record.class.0,
                        ext_rcode: (record.ttl >> 24) as u8,
                        version: (record.ttl >> 16) as u8,
                        dnssec_ok: record.ttl & 0x8000 != 0,
                        options: record.rdata,
                        offset: pos,
                    });
                }
                pos = next;
            }
        }
        if pos != buf.len() {
            return Err(WireError::TrailingBytes { extra: buf.len() - pos });
        }
        Ok(Message { buf, header, question, question_end, sections, edns })
    }

    /// The bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The question, if there is one.
    pub fn question(&self) -> Option<Question<'a>> {
        self.question
    }

    /// The question section's raw bytes (header excluded).
    pub fn question_bytes(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..self.question_end]
    }

    /// The EDNS(0) OPT record, if any.
    pub fn edns(&self) -> Option<Edns<'a>> {
        self.edns
    }

    /// Offset where the additional section starts.
    pub fn additional_offset(&self) -> usize {
        self.sections[2]
    }

    /// Answer records.
    pub fn answers(&self) -> Records<'a> {
        Records { buf: self.buf, pos: self.sections[0], left: self.header.ancount }
    }

    /// Authority records.
    pub fn authority(&self) -> Records<'a> {
        Records { buf: self.buf, pos: self.sections[1], left: self.header.nscount }
    }

    /// Additional records (including OPT).
    pub fn additional(&self) -> Records<'a> {
        Records { buf: self.buf, pos: self.sections[2], left: self.header.arcount }
    }

    /// All records of the three sections.
    pub fn records(&self) -> impl Iterator<Item = Record<'a>> {
        self.answers().chain(self.authority()).chain(self.additional())
    }
}

fn read_record(buf: &[u8], start: usize) -> Result<(Record<'_>, usize), WireError> {
    let end = skip_name(buf, start)?;
    let fixed = buf.get(end..end + 10).ok_or(WireError::Truncated { offset: end, what: "record header" })?;
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let rdata_offset = end + 10;
    let rdata = buf
        .get(rdata_offset..rdata_offset + rdlen)
        .ok_or(WireError::Truncated { offset: rdata_offset, what: "rdata" })?;
    let record = Record {
        name: Name { buf, start },
        rtype: Type(u16::from_be_bytes([fixed[0], fixed[1]])),
        class: Class(u16::from_be_bytes([fixed[2], fixed[3]])),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ttl_offset: end + 4,
        rdata,
        rdata_offset,
    };
    Ok((record, rdata_offset + rdlen))
}

/// Iterator over a validated section.
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    left: u16,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (record, next) = read_record(self.buf, self.pos).ok()?;
        self.pos = next;
        Some(record)
    }
}

/// EDNS option code of an Extended DNS Error (RFC 8914 section 2).
pub const EDE_OPTION: u16 = 15;

/// Extended DNS Error INFO-CODEs used for policy answers (RFC 8914 section 4).
pub mod ede {
    /// The server operator blocked the name (4.16).
    pub const BLOCKED: u16 = 15;
    /// An external requirement, such as a legal order, made the operator block it (4.17).
    pub const CENSORED: u16 = 16;
    /// The client asked for this filtering (4.18).
    pub const FILTERED: u16 = 17;
    /// Stale answer served (4.4).
    pub const STALE_ANSWER: u16 = 3;
    /// No upstream could be reached (4.23).
    pub const NO_REACHABLE_AUTHORITY: u16 = 22;
}

/// Writes messages: header, question copied from a query, records, and an OPT record.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    buf: Vec<u8>,
    counts: [u16; 4],
}

/// A section to add records to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Answer.
    Answer = 1,
    /// Authority.
    Authority = 2,
    /// Additional.
    Additional = 3,
}

impl Builder {
    /// Starts a response to `query`: same id, opcode, RD and CD, QR and RA set, the question copied.
    pub fn response_to(query: &Message<'_>, rcode: Rcode) -> Builder {
        let q = query.header();
        let flags = flags::QR | flags::RA | (q.flags & (flags::RD | flags::CD | 0x7800)) | u16::from(rcode.0 & 0xf);
        let mut b = Builder { buf: Vec::with_capacity(512), counts: [0; 4] };
        b.buf.extend_from_slice(&q.id.to_be_bytes());
        b.buf.extend_from_slice(&flags.to_be_bytes());
        b.buf.extend_from_slice(&[0; 8]);
        if query.question().is_some() {
            b.buf.extend_from_slice(query.question_bytes());
            b.counts[0] = 1;
        }
        b
    }

    /// Sets header flag bits.
    pub fn set_flags(&mut self, bits: u16) {
        let f = u16::from_be_bytes([self.buf[2], self.buf[3]]) | bits;
        self.buf[2..4].copy_from_slice(&f.to_be_bytes());
    }

    /// Adds a record whose owner is the question name (a compression pointer to offset 12).
    pub fn push_qname_record(&mut self, section: Section, rtype: Type, ttl: u32, rdata: &[u8]) {
        self.push_record_raw(section, &[0xc0, 0x0c], rtype, Class::IN, ttl, rdata);
    }

    /// Adds a record with an uncompressed owner name in wire form.
    pub fn push_record_raw(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: Type,
        class: Class,
        ttl: u32,
        rdata: &[u8],
    ) {
        self.buf.extend_from_slice(owner);
        self.buf.extend_from_slice(&rtype.0.to_be_bytes());
        self.buf.extend_from_slice(&class.0.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        // RDATA of what bawaba synthesises is far below 64 KiB; clamp rather than wrap.
        let len = rdata.len().min(u16::MAX as usize);
        self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        self.buf.extend_from_slice(&rdata[..len]);
        self.counts[section as usize] += 1;
    }

    /// Copies a record from another message, expanding compressed names in the owner and in the
    /// RDATA of types whose RDATA holds names (CNAME, DNAME, NS, PTR).
    pub fn copy_record(&mut self, section: Section, msg: &Message<'_>, record: &Record<'_>) {
        let mut owner = Vec::with_capacity(64);
        record.name.write_wire(&mut owner);
        match record.target_name(msg) {
            Some(target) => {
                let mut rdata = Vec::with_capacity(64);
                target.write_wire(&mut rdata);
                self.push_record_raw(section, &owner, record.rtype, record.class, record.ttl, &rdata);
            }
            None => self.push_record_raw(section, &owner, record.rtype, record.class, record.ttl, record.rdata),
        }
    }

    /// Adds an OPT record with the given UDP size, DO bit and options `(code, data)`.
    pub fn push_opt(&mut self, udp_size: u16, dnssec_ok: bool, options: &[(u16, &[u8])]) {
        let mut rdata = Vec::new();
        for (code, data) in options {
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len().min(u16::MAX as usize) as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        let ttl = if dnssec_ok { 0x8000 } else { 0 };
        self.push_record_raw(Section::Additional, &[0], Type::OPT, Class(udp_size), ttl, &rdata);
    }

    /// Finishes the message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }
}

/// An Extended DNS Error option payload: INFO-CODE then EXTRA-TEXT (UTF-8).
pub fn ede_option(info_code: u16, extra_text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + extra_text.len());
    v.extend_from_slice(&info_code.to_be_bytes());
    v.extend_from_slice(extra_text.as_bytes());
    v
}

/// Writes a query for `name` (dotted text, no escapes) into a new buffer.
pub fn build_query(id: u16, name: &str, qtype: Type, rd: bool, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&(if rd { flags::RD } else { 0 }).to_be_bytes());
    buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        buf.push(label.len().min(63) as u8);
        buf.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    buf.push(0);
    buf.extend_from_slice(&qtype.0.to_be_bytes());
    buf.extend_from_slice(&Class::IN.0.to_be_bytes());
    if let Some((size, dnssec_ok)) = edns {
        buf.extend_from_slice(&[0, 0, 41]);
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dig @127.0.0.1 www.example.test A +dnssec` answered with a CNAME to example.test and an A,
    /// compressed the way servers compress (captured bytes, ids changed).
    const RESPONSE: &[u8] = b"\xbe\xef\x81\x80\x00\x01\x00\x02\x00\x00\x00\x01\
        \x03www\x07example\x04test\x00\x00\x01\x00\x01\
        \xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x02\xc0\x10\
        \xc0\x10\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc6\x12\x00\x07\
        \x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00";

    #[test]
    fn parses_a_compressed_response() {
        let m = Message::parse(RESPONSE).unwrap();
        assert!(m.header().is_response());
        assert_eq!(m.header().rcode(), Rcode::NOERROR);
        let mut t = [0u8; 256];
        assert_eq!(m.question().unwrap().name.to_text_lower(&mut t), Some("www.example.test"));
        let answers: Vec<_> = m.answers().collect();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0].rtype, Type::CNAME);
        let target = answers[0].target_name(&m).unwrap();
        assert_eq!(target.to_text_lower(&mut t), Some("example.test"));
        assert_eq!(answers[1].address(), Some("198.18.0.7".parse().unwrap()));
        assert_eq!(answers[1].ttl, 3600);
        let edns = m.edns().unwrap();
        assert_eq!(edns.udp_size, 1232);
        assert!(edns.dnssec_ok);
    }

    #[test]
    fn refuses_bad_input_with_offsets() {
        assert!(matches!(Message::parse(&RESPONSE[..5]), Err(WireError::Truncated { offset: 5, .. })));
        for cut in 12..RESPONSE.len() {
            assert!(Message::parse(&RESPONSE[..cut]).is_err(), "cut at {cut}");
        }
        // A pointer to itself.
        let mut looped = RESPONSE.to_vec();
        looped[34..36].copy_from_slice(&[0xc0, 34]);
        assert!(matches!(Message::parse(&looped), Err(WireError::BadPointer { offset: 34 })));
        // Extended label type.
        let mut ext = RESPONSE.to_vec();
        ext[12] = 0x41;
        assert!(matches!(Message::parse(&ext), Err(WireError::LabelType { offset: 12, byte: 0x41 })));
        let mut trailing = RESPONSE.to_vec();
        trailing.push(0);
        assert_eq!(Message::parse(&trailing).unwrap_err(), WireError::TrailingBytes { extra: 1 });
    }

    #[test]
    fn pointers_into_the_header_are_refused() {
        // Found by fuzzing: a question name pointing at offset 0 parsed, and a response that
        // copied the question then did not.
        let input = b"\x01\x00\x00\xc0\x00\x01\x00\x00\x00\x01\x00\x00\xc0\x00\x01\x00\x01\x00\x00\x0a\x00\x3f\x01\x00\x00\x00\x01\x00\x00";
        assert_eq!(Message::parse(input).unwrap_err(), WireError::BadPointer { offset: 12 });
    }

    #[test]
    fn lowercased_wire_names_are_the_same_whole_or_compressed() {
        let m = Message::parse(RESPONSE).unwrap();
        let answers: Vec<_> = m.answers().collect();
        let target = answers[0].target_name(&m).unwrap(); // a pointer to "example.test"
        let mut whole = b"key:".to_vec();
        let mut pointed = Vec::new();
        m.question().unwrap().name.write_wire_lower(&mut whole);
        target.write_wire_lower(&mut pointed);
        assert_eq!(whole, b"key:\x03www\x07example\x04test\x00");
        assert_eq!(pointed, b"\x07example\x04test\x00");
        // Letters fold; length octets, digits and other bytes do not.
        let q = build_query(1, "MiXeD-9.Z_z.TEST", Type::A, true, None);
        let mut folded = Vec::new();
        Message::parse(&q).unwrap().question().unwrap().name.write_wire_lower(&mut folded);
        assert_eq!(folded, b"\x07mixed-9\x03z_z\x04test\x00");
        // The owner of the second answer record is a pointer to the question name.
        let mut owner = Vec::new();
        answers[1].name.write_wire_lower(&mut owner);
        assert_eq!(owner, pointed);
    }

    #[test]
    fn names_with_odd_bytes_have_no_text_form() {
        let q = build_query(1, "a.b", Type::A, true, None);
        let mut odd = q.clone();
        odd[13] = b'.';
        let m = Message::parse(&odd).unwrap();
        let mut t = [0u8; 256];
        assert_eq!(m.question().unwrap().name.to_text_lower(&mut t), None);
    }

    #[test]
    fn builds_a_policy_answer_that_parses() {
        let q = build_query(0x4242, "Blocked.Example.TEST", Type::A, true, Some((1232, true)));
        let query = Message::parse(&q).unwrap();
        let mut b = Builder::response_to(&query, Rcode::NXDOMAIN);
        b.push_opt(1232, true, &[(EDE_OPTION, &ede_option(ede::CENSORED, "order CFI-2026-0042"))]);
        let bytes = b.finish();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.header().id, 0x4242);
        assert_eq!(m.header().rcode(), Rcode::NXDOMAIN);
        assert!(m.header().has(flags::RD) && m.header().has(flags::QR));
        let (code, data) = m.edns().unwrap().options().next().unwrap();
        assert_eq!(code, EDE_OPTION);
        assert_eq!(&data[..2], &ede::CENSORED.to_be_bytes());
        assert_eq!(&data[2..], b"order CFI-2026-0042");
        let mut t = [0u8; 256];
        assert_eq!(m.question().unwrap().name.to_text_lower(&mut t), Some("blocked.example.test"));
    }

    #[test]
    fn copy_record_expands_compression() {
        let m = Message::parse(RESPONSE).unwrap();
        let q = build_query(7, "www.example.test", Type::A, true, None);
        let query = Message::parse(&q).unwrap();
        let mut b = Builder::response_to(&query, Rcode::NOERROR);
        for r in m.answers() {
            b.copy_record(Section::Answer, &m, &r);
        }
        let bytes = b.finish();
        let out = Message::parse(&bytes).unwrap();
        let cname = out.answers().next().unwrap();
        let mut t = [0u8; 256];
        assert_eq!(cname.target_name(&out).unwrap().to_text_lower(&mut t), Some("example.test"));
        assert_eq!(out.answers().nth(1).unwrap().address(), Some("198.18.0.7".parse().unwrap()));
    }
}
