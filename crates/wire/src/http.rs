//! The HTTP/1.x request head: method, request target and Host (RFC 9112 sections 3 and 3.2).
//!
//! [`parse_request`] reads the bytes seen so far at the start of a TCP stream. It answers with a
//! [`Request`] once the Host header has been read (the rest of the head is not needed), with
//! [`HttpError::Incomplete`] while the head may still be arriving, or with another error as soon
//! as the bytes cannot be an HTTP/1.x request, so the engine stops buffering early.

use thiserror::Error;

/// Longest request head read; a Host header further in is not looked for.
pub const MAX_HEAD: usize = 8192;

/// Why bytes are not (yet) an HTTP request with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not complete yet; more bytes may make it a request.
    #[error("incomplete HTTP request head")]
    Incomplete,
    /// The first bytes are not a request line.
    #[error("not an HTTP/1.x request line")]
    NotHttp,
    /// A header line without a colon, or a line ending without CR LF, at `offset`.
    #[error("malformed header line at byte {offset}")]
    BadHeader {
        /// Where the line starts.
        offset: usize,
    },
    /// The head ended (or passed [`MAX_HEAD`]) without a Host header or absolute-form target.
    #[error("request without a host")]
    NoHost,
}

/// A request head, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token.
    pub method: &'a str,
    /// The request target as sent (origin-form, absolute-form, authority-form or `*`).
    pub target: &'a str,
    /// The host, without port or brackets: from an absolute-form or authority-form target if
    /// present (RFC 9112 section 3.2.2 says it then wins over Host), else from the Host header.
    pub host: &'a str,
}

/// Methods accepted in a request line: the RFC 9110 set, WebDAV's common ones and PATCH. Other
/// tokens would be legal HTTP, but on an arbitrary port they are far likelier to be another
/// protocol, and an early "not HTTP" saves buffering.
pub const METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
];

/// Reads an HTTP/1.x request head from the start of a stream.
pub fn parse_request(buf: &[u8]) -> Result<Request<'_>, HttpError> {
    let head = &buf[..buf.len().min(MAX_HEAD)];
    // Method: check what has arrived against the known methods, so "not HTTP" is told early.
    let sp = head.iter().position(|&b| b == b' ');
    let method_bytes = &head[..sp.unwrap_or(head.len())];
    if !METHODS.iter().any(|m| m.as_bytes().starts_with(method_bytes)) || (sp.is_some() && method_bytes.is_empty()) {
        return Err(HttpError::NotHttp);
    }
    let Some(sp) = sp else { return Err(incomplete(buf)) };
    if !METHODS.iter().any(|m| m.as_bytes() == method_bytes) {
        return Err(HttpError::NotHttp);
    }
    let Some(line_end) = find_crlf(head, sp) else {
        if head[sp..].iter().any(|&b| b == b'\n' || b < 0x20 && b != b'\r') {
            return Err(HttpError::NotHttp);
        }
        return Err(incomplete(buf));
    };
    let line = &head[sp + 1..line_end];
    let Some(sp2) = line.iter().rposition(|&b| b == b' ') else { return Err(HttpError::NotHttp) };
    let (target, version) = (&line[..sp2], &line[sp2 + 1..]);
    if !matches!(version, b"HTTP/1.1" | b"HTTP/1.0") || target.is_empty() || target.contains(&b' ') {
        return Err(HttpError::NotHttp);
    }
    let method = ascii(method_bytes)?;
    let target_str = ascii(target)?;
    if let Some(host) = target_host(method, target_str) {
        return Ok(Request { method, target: target_str, host });
    }
    // Header fields (RFC 9112 section 5): name ":" OWS value OWS CRLF.
    let mut at = line_end + 2;
    loop {
        let Some(end) = find_crlf(head, at) else {
            return Err(if buf.len() >= MAX_HEAD { HttpError::NoHost } else { HttpError::Incomplete });
        };
        if end == at {
            return Err(HttpError::NoHost);
        }
        let field = &head[at..end];
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            return Err(HttpError::BadHeader { offset: at });
        };
        if field[..colon].eq_ignore_ascii_case(b"host") {
            let value = ascii(field[colon + 1..].trim_ascii())?;
            let host = strip_port(value);
            if host.is_empty() {
                return Err(HttpError::NoHost);
            }
            return Ok(Request { method, target: target_str, host });
        }
        at = end + 2;
    }
}

fn incomplete(buf: &[u8]) -> HttpError {
    if buf.len() >= MAX_HEAD {
        HttpError::NoHost
    } else {
        HttpError::Incomplete
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let lf = i + p;
        if lf > 0 && buf[lf - 1] == b'\r' {
            return Some(lf - 1);
        }
        i = lf + 1;
    }
    None
}

fn ascii(b: &[u8]) -> Result<&str, HttpError> {
    if !b.is_ascii() {
        return Err(HttpError::NotHttp);
    }
    std::str::from_utf8(b).map_err(|_| HttpError::NotHttp)
}

/// The host of an absolute-form (`http://host:port/path`) or authority-form (`host:port`, for
/// CONNECT) target (RFC 9112 sections 3.2.2 and 3.2.3).
fn target_host<'a>(method: &str, target: &'a str) -> Option<&'a str> {
    let authority = if method == "CONNECT" {
        target
    } else {
        let rest = target.split_once("://")?.1;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        &rest[..end]
    };
    // Drop userinfo (RFC 3986 section 3.2.1).
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = strip_port(authority);
    (!host.is_empty()).then_some(host)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` -> the host without brackets and port.
fn strip_port(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match value.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => value,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn host_header_as_curl_sends_it() {
        let req =
            b"GET /path?q=1 HTTP/1.1\r\nHost: www.Blocked.test:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
        let r = parse_request(req).unwrap();
        assert_eq!((r.method, r.target, r.host), ("GET", "/path?q=1", "www.Blocked.test"));
        // The Host line is enough; the rest of the head need not have arrived.
        let cut = req.iter().position(|&b| b == b'U').unwrap();
        assert_eq!(parse_request(&req[..cut]).unwrap().host, "www.Blocked.test");
    }

    #[test]
    fn target_forms() {
        let r = parse_request(b"GET http://user@proxy.example:3128/x HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
        assert_eq!(r.host, "proxy.example");
        let r = parse_request(b"CONNECT tunnel.example:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.host, "tunnel.example");
        let r = parse_request(b"GET / HTTP/1.0\r\nhOsT:[2001:db8::1]:80\r\n\r\n").unwrap();
        assert_eq!(r.host, "2001:db8::1");
    }

    #[test]
    fn prefixes_are_incomplete_until_the_host_line() {
        let req = b"POST /upload HTTP/1.1\r\nContent-Length: 3\r\nHost: h.example\r\n\r\nabc";
        let host_line_end = 23 + 19 + 17;
        for n in 0..req.len() {
            let r = parse_request(&req[..n]);
            if n < host_line_end {
                assert_eq!(r, Err(HttpError::Incomplete), "{n}");
            } else {
                assert_eq!(r.unwrap().host, "h.example", "{n}");
            }
        }
    }

    #[test]
    fn not_http_is_told_early() {
        assert_eq!(parse_request(b"\x16\x03\x01"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"SSH-2.0-OpenSSH"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"GE"), Err(HttpError::Incomplete));
        assert_eq!(parse_request(b"GETX / HTTP/1.1\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"GET / HTTP/2.0\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"GET / HTTP/1.1\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost\r\n\r\n"), Err(HttpError::BadHeader { offset: 16 }));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), Err(HttpError::NoHost));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: \r\n\r\n"), Err(HttpError::NoHost));
        // Found by the http_request fuzz target: nothing left once the port or bracket goes.
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), Err(HttpError::NoHost));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: [\r\n\r\n"), Err(HttpError::NoHost));
        let mut long = b"GET / HTTP/1.1\r\n".to_vec();
        while long.len() < MAX_HEAD + 10 {
            long.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse_request(&long), Err(HttpError::NoHost));
    }
}
