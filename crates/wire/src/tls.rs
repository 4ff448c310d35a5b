//! The TLS ClientHello: the server name a client asks for (RFC 6066 section 3), its ALPN list
//! (RFC 7301) and whether it offers Encrypted Client Hello (draft-ietf-tls-esni, extension
//! 0xfe0d), read from the start of a TCP stream or from the CRYPTO stream of a QUIC Initial.
//!
//! The parsers take the bytes seen so far and answer one of three things: a [`ClientHello`];
//! [`TlsError::Incomplete`] with how many bytes are needed in total, so the caller buffers more
//! segments and asks again; or another error meaning the stream is not a ClientHello at all.
//!
//! A ClientHello normally travels in one TLS record. When a client fragments it over several
//! records (RFC 8446 section 5.1 allows it), [`parse_records`] joins the fragments into a caller
//! buffer; otherwise nothing is copied.

use thiserror::Error;

/// Record content type "handshake" (RFC 8446 section 5.1).
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type "client_hello" (RFC 8446 section 4).
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Extension "server_name" (RFC 6066 section 3).
pub const EXT_SERVER_NAME: u16 = 0;
/// Extension "application_layer_protocol_negotiation" (RFC 7301 section 3.1).
pub const EXT_ALPN: u16 = 16;
/// Extension "encrypted_client_hello" (draft-ietf-tls-esni section 5).
pub const EXT_ECH: u16 = 0xfe0d;
/// Largest TLS plaintext record (RFC 8446 section 5.1).
pub const MAX_RECORD: usize = 1 << 14;

/// Why bytes are not (yet) a ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// More bytes are needed: the ClientHello is `needed` bytes long in total (counting from the
    /// start of the input), as far as the headers read so far tell.
    #[error("incomplete ClientHello: {needed} bytes needed")]
    Incomplete {
        /// Total input length needed.
        needed: usize,
    },
    /// The first record is not a TLS handshake record.
    #[error("not a TLS handshake record")]
    NotHandshake,
    /// The handshake message is not a ClientHello.
    #[error("handshake type {kind} is not a ClientHello")]
    NotClientHello {
        /// The handshake type byte.
        kind: u8,
    },
    /// A length field that runs past its container.
    #[error("bad {what} length at byte {offset}")]
    BadLength {
        /// Where the length field is, from the start of the handshake message.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// A fragmented ClientHello larger than the caller's buffer.
    #[error("fragmented ClientHello of {len} bytes exceeds the {capacity}-byte buffer")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The buffer size.
        capacity: usize,
    },
}

/// What the server-name extension holds (after rustls' `ServerNamePayload`): odd content is an
/// outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerName<'a> {
    /// No server_name extension.
    Absent,
    /// A host_name entry: the bytes as sent, not yet validated as a DNS name.
    HostName(&'a [u8]),
    /// An extension that is present but empty or malformed inside.
    Invalid,
}

impl<'a> ServerName<'a> {
    /// The host name as text, if it is present and ASCII.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ServerName::HostName(b) if b.is_ascii() => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// The parts of a ClientHello the engine uses; borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` from the hello (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The server name. With ECH this is the outer (public) name.
    pub server_name: ServerName<'a>,
    /// The ALPN extension's protocol list in wire form (length-prefixed strings), empty if absent.
    pub alpn: &'a [u8],
    /// The hello carries an encrypted_client_hello extension of the outer type: the real name
    /// is encrypted and `server_name` is the provider's public name.
    pub ech: bool,
    /// Bytes of input up to the end of the ClientHello (record headers included); never more
    /// than the input's length.
    pub consumed: usize,
}

impl<'a> ClientHello<'a> {
    /// The ALPN protocol names offered, in order.
    pub fn alpn_protocols(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.alpn;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let name = tail.get(..usize::from(len))?;
            rest = &tail[usize::from(len)..];
            Some(name)
        })
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a ClientHello from the start of a TLS byte stream: one or more records. Fragments over
/// several records are joined into `scratch`, which bounds the size accepted; a ClientHello in a
/// single record is read in place.
pub fn parse_records<'a>(stream: &'a [u8], scratch: &'a mut [u8]) -> Result<ClientHello<'a>, TlsError> {
    let record = record_header(stream, 0)?;
    let body = &stream[5..];
    if body.first().is_some_and(|&t| t != HANDSHAKE_CLIENT_HELLO) {
        return Err(TlsError::NotClientHello { kind: body[0] });
    }
    if record < 4 {
        // No client splits the 4-byte handshake header itself over records.
        return Err(TlsError::BadLength { offset: 3, what: "first record" });
    }
    if body.len() < 4 {
        return Err(TlsError::Incomplete { needed: 9 });
    }
    let message_len = 4 + (usize::from(body[1]) << 16 | usize::from(be16(body, 2)));
    if message_len <= record {
        // The usual case: the whole hello sits in the first record.
        if body.len() < message_len {
            return Err(TlsError::Incomplete { needed: 5 + message_len });
        }
        let mut hello = parse_handshake(&body[..message_len])?;
        // The message may end before its record does (nothing else follows a ClientHello).
        hello.consumed = 5 + message_len;
        return Ok(hello);
    }
    // Fragmented over several records: gather the handshake bytes.
    if message_len > scratch.len() {
        return Err(TlsError::TooLarge { len: message_len, capacity: scratch.len() });
    }
    let mut filled = 0;
    let mut at = 0;
    while filled < message_len {
        let len = record_header(stream, at)?;
        let fragment = &stream[at + 5..];
        if fragment.len() < len {
            // Needed: this record, plus at least the rest of the message in one more record.
            let rest = message_len - filled - len.min(message_len - filled);
            return Err(TlsError::Incomplete { needed: at + 5 + len + if rest > 0 { 5 + rest } else { 0 } });
        }
        let take = len.min(message_len - filled);
        scratch[filled..filled + take].copy_from_slice(&fragment[..take]);
        filled += take;
        at += 5 + len;
        if filled < message_len && stream.len() < at + 5 {
            return Err(TlsError::Incomplete { needed: at + 5 + (message_len - filled) });
        }
    }
    let mut hello = parse_handshake(&scratch[..message_len])?;
    hello.consumed = at;
    Ok(hello)
}

/// Validates the record header at `at` and returns the record's length.
fn record_header(stream: &[u8], at: usize) -> Result<usize, TlsError> {
    let Some(header) = stream.get(at..at + 5) else {
        // Reject early on what is visible: a wrong content type or version needs no more bytes.
        if let Some(&t) = stream.get(at) {
            if t != CONTENT_HANDSHAKE {
                return Err(TlsError::NotHandshake);
            }
        }
        if let Some(&major) = stream.get(at + 1) {
            if major != 3 {
                return Err(TlsError::NotHandshake);
            }
        }
        return Err(TlsError::Incomplete { needed: at + 5 });
    };
    // RFC 8446 section 5.1: legacy_record_version is 0x0301 (or 0x0300..0x0303 from old stacks).
    if header[0] != CONTENT_HANDSHAKE || header[1] != 3 || header[2] > 4 {
        return Err(TlsError::NotHandshake);
    }
    let len = usize::from(be16(header, 3));
    if len == 0 || len > MAX_RECORD {
        return Err(TlsError::BadLength { offset: at + 3, what: "record" });
    }
    Ok(len)
}

/// Reads a ClientHello handshake message (RFC 8446 section 4.1.2): the 4-byte handshake header
/// and body, without the record layer (as carried in QUIC CRYPTO frames). Bytes after the
/// message are ignored.
pub fn parse_handshake(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    if msg.len() < 4 {
        return Err(TlsError::Incomplete { needed: 4 });
    }
    if msg[0] != HANDSHAKE_CLIENT_HELLO {
        return Err(TlsError::NotClientHello { kind: msg[0] });
    }
    let len = 4 + (usize::from(msg[1]) << 16 | usize::from(be16(msg, 2)));
    if msg.len() < len {
        return Err(TlsError::Incomplete { needed: len });
    }
    let mut r = Reader { buf: &msg[..len], at: 4 };
    let legacy_version = r.u16("legacy_version")?;
    r.skip(32, "random")?;
    let session_id = r.u8("session_id")?;
    r.skip(usize::from(session_id), "session_id")?;
    let suites = r.u16("cipher_suites")?;
    r.skip(usize::from(suites), "cipher_suites")?;
    let compression = r.u8("compression_methods")?;
    r.skip(usize::from(compression), "compression_methods")?;
    let mut hello =
        ClientHello { legacy_version, server_name: ServerName::Absent, alpn: &[], ech: false, consumed: len };
    if r.at == r.buf.len() {
        // An SSL 3.0-style hello without extensions.
        return Ok(hello);
    }
    let ext_len = usize::from(r.u16("extensions")?);
    let mut ext = Reader { buf: r.take(ext_len, "extensions")?, at: 0 };
    while ext.at < ext.buf.len() {
        let kind = ext.u16("extension type")?;
        let len = usize::from(ext.u16("extension")?);
        let body = ext.take(len, "extension")?;
        match kind {
            EXT_SERVER_NAME => hello.server_name = server_name(body),
            EXT_ALPN => {
                hello.alpn = match body {
                    [_, _, rest @ ..] if usize::from(be16(body, 0)) == rest.len() => rest,
                    _ => &[],
                }
            }
            // The outer ECH extension starts with type 0 (outer); type 1 (inner) only ever
            // appears inside the encrypted payload.
            EXT_ECH => hello.ech = body.first() == Some(&0),
            _ => {}
        }
    }
    Ok(hello)
}

/// RFC 6066 section 3: a list of (type, name) entries; the first host_name entry wins.
fn server_name(body: &[u8]) -> ServerName<'_> {
    let mut r = Reader { buf: body, at: 0 };
    let Ok(list_len) = r.u16("server_name_list") else { return ServerName::Invalid };
    let Ok(list) = r.take(usize::from(list_len), "server_name_list") else { return ServerName::Invalid };
    let mut l = Reader { buf: list, at: 0 };
    while l.at < l.buf.len() {
        let (Ok(kind), Ok(len)) = (l.u8("name_type"), l.u16("name")) else { return ServerName::Invalid };
        let Ok(name) = l.take(usize::from(len), "name") else { return ServerName::Invalid };
        if kind == 0 && !name.is_empty() {
            return ServerName::HostName(name);
        }
    }
    ServerName::Invalid
}

/// A bounds-checked big-endian cursor over a handshake message.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TlsError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else { return Err(TlsError::BadLength { offset: self.at, what }) };
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), TlsError> {
        self.take(n, what).map(|_| ())
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TlsError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TlsError> {
        let b = self.take(2, what)?;
        Ok(be16(b, 0))
    }
}

/// Test and bench helper: builds a TLS 1.3-style ClientHello handshake message (no record
/// header) with the given server name, ALPN list, optional ECH outer extension and `padding`
/// extra bytes in a padding extension (RFC 7685), as clients shape them.
pub fn build_client_hello(server_name: Option<&str>, alpn: &[&str], ech: bool, padding: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut push = |kind: u16, body: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    };
    if let Some(name) = server_name {
        let mut b = Vec::new();
        b.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        b.push(0);
        b.extend_from_slice(&(name.len() as u16).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        push(EXT_SERVER_NAME, &b);
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut b = (list.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(&list);
        push(EXT_ALPN, &b);
    }
    // supported_versions: TLS 1.3
    push(43, &[2, 3, 4]);
    if ech {
        push(EXT_ECH, &[0, 0, 1, 0, 1, 7, 0, 32, 0, 0, 0, 0]);
    }
    if padding > 0 {
        push(21, &vec![0; padding]);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(32);
    body.extend_from_slice(&[0xa5; 32]);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO, (body.len() >> 16) as u8, (body.len() >> 8) as u8, body.len() as u8];
    msg.extend_from_slice(&body);
    msg
}

/// Test and bench helper: wraps a handshake message in TLS records of at most `max_record`
/// bytes each.
pub fn wrap_records(msg: &[u8], max_record: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(max_record.max(1)) {
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_alpn_and_consumed() {
        let stream = wrap_records(&build_client_hello(Some("Example.TEST"), &["h2", "http/1.1"], false, 0), 16384);
        let mut scratch = [0u8; 4096];
        let hello = parse_records(&stream, &mut scratch).unwrap();
        assert_eq!(hello.server_name.as_str(), Some("Example.TEST"));
        assert_eq!(hello.alpn_protocols().collect::<Vec<_>>(), vec![&b"h2"[..], b"http/1.1"]);
        assert!(!hello.ech);
        assert_eq!(hello.consumed, stream.len());
        assert_eq!(hello.legacy_version, 0x0303);
    }

    #[test]
    fn every_prefix_asks_for_more_and_the_answer_is_exact() {
        let stream = wrap_records(&build_client_hello(Some("split.example"), &["h2"], false, 1200), 16384);
        let mut scratch = [0u8; 4096];
        for n in 0..stream.len() {
            match parse_records(&stream[..n], &mut scratch) {
                Err(TlsError::Incomplete { needed }) => assert!(needed > n && needed <= stream.len(), "{n}: {needed}"),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
        assert!(parse_records(&stream, &mut scratch).is_ok());
    }

    #[test]
    fn fragmented_over_records_is_joined() {
        let msg = build_client_hello(Some("frag.example"), &[], false, 300);
        let stream = wrap_records(&msg, 100);
        let mut scratch = [0u8; 4096];
        let hello = parse_records(&stream, &mut scratch).unwrap();
        assert_eq!(hello.server_name.as_str(), Some("frag.example"));
        assert_eq!(hello.consumed, stream.len());
        for n in 0..stream.len() {
            assert!(matches!(parse_records(&stream[..n], &mut scratch), Err(TlsError::Incomplete { .. })), "{n}");
        }
        let mut small = [0u8; 64];
        assert!(matches!(parse_records(&stream, &mut small), Err(TlsError::TooLarge { .. })));
    }

    #[test]
    fn consumed_never_passes_the_input() {
        // Found by the tls_client_hello fuzz target: a record longer than the hello inside it.
        let msg = build_client_hello(Some("x.example"), &[], false, 0);
        let mut stream = wrap_records(&msg, 16384);
        stream[3..5].copy_from_slice(&((msg.len() + 100) as u16).to_be_bytes());
        let mut scratch = [0u8; 64];
        let hello = parse_records(&stream, &mut scratch).unwrap();
        assert_eq!(hello.consumed, stream.len());
    }

    #[test]
    fn ech_outer_and_odd_names_are_outcomes() {
        let msg = build_client_hello(Some("public.example"), &[], true, 0);
        let hello = parse_handshake(&msg).unwrap();
        assert!(hello.ech);
        assert_eq!(hello.server_name.as_str(), Some("public.example"));
        let msg = build_client_hello(None, &["h2"], false, 0);
        let none = parse_handshake(&msg).unwrap();
        assert_eq!(none.server_name, ServerName::Absent);
        assert_eq!(server_name(&[0, 5, 1, 0, 2, b'a', b'b']), ServerName::Invalid);
        assert_eq!(server_name(&[0, 9, 0, 0, 7]), ServerName::Invalid);
        assert_eq!(ServerName::HostName("é".as_bytes()).as_str(), None);
    }

    #[test]
    fn not_tls_is_told_early() {
        let mut scratch = [0u8; 64];
        assert_eq!(parse_records(b"GET / HTTP/1.1\r\n", &mut scratch), Err(TlsError::NotHandshake));
        assert_eq!(parse_records(b"G", &mut scratch), Err(TlsError::NotHandshake));
        assert_eq!(
            parse_records(&[22, 3, 3, 0, 5, 2, 0, 0, 1, 0], &mut scratch),
            Err(TlsError::NotClientHello { kind: 2 })
        );
        assert!(matches!(parse_records(&[22, 3, 1, 0, 0], &mut scratch), Err(TlsError::BadLength { .. })));
        let mut bad = build_client_hello(Some("x.example"), &[], false, 0);
        bad[4 + 2 + 32] = 200; // session id longer than the message
        assert!(matches!(parse_handshake(&bad), Err(TlsError::BadLength { what: "session_id", .. })));
    }
}
