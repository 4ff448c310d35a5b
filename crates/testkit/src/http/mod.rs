//! A minimal blocking HTTP/1.1 client for tests that drive bawaba's web console and API over
//! loopback: one TCP connection per request (`Connection: close`), a cookie jar, default headers,
//! form and JSON bodies, `Content-Length` and chunked responses, and a deadline on every request
//! so a hung server fails the test instead of hanging it. Redirects are not followed: a test
//! asserts on the `303` and its `Location` itself.
//!
//! ```no_run
//! use bawaba_testkit::http::{form_value, Client};
//!
//! let console = Client::new("127.0.0.1:8080".parse().unwrap());
//! let login = console.get("/login").unwrap();
//! let csrf = form_value(&login.text(), "csrf").unwrap();
//! let done = console.post_form("/login", &[("csrf", &csrf), ("user", "alice")]).unwrap();
//! assert_eq!(done.status, 303);
//! assert!(console.cookie("session").is_some());
//! ```

mod cookie;
mod form;

pub use form::{form_urldecode, form_urlencode, form_value};

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a request may take, from connecting to the last byte of the response, unless
/// [`Client::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest status line, header line or chunk-size line the client reads.
const MAX_LINE: u64 = 64 * 1024;

/// A blocking HTTP/1.1 client for one server at a fixed address, with a cookie jar and default
/// headers. Requests take `&self` (the jar is behind a mutex), so one client can be shared by
/// threads, or by several helpers at once.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    headers: Vec<(String, String)>,
    jar: Mutex<cookie::Jar>,
    timeout: Duration,
}

/// A response: status, headers in the order received, and the body with any chunked transfer
/// coding removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200 or 303.
    pub status: u16,
    /// Header (name, value) pairs as received: names keep their case, values are trimmed.
    pub headers: Vec<(String, String)>,
    /// The body after transfer decoding; empty for `HEAD`, 204 and 304.
    pub body: Vec<u8>,
}

impl Client {
    /// A client for the server at `addr`, with an empty cookie jar, no default headers and the
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, headers: Vec::new(), jar: Mutex::new(cookie::Jar::default()), timeout: DEFAULT_TIMEOUT }
    }

    /// Adds a default header sent with every request, replacing a default of the same name
    /// (for example `("Authorization", "Bearer ...")` or `("X-CSRF-Token", ...)`).
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.set_header(name, value);
        self
    }

    /// Sets the per-request deadline (connect, send, and read the whole response).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sets a default header, replacing one of the same name (names compare case-insensitively).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Removes the default header `name`, if set.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The server address requests go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value of the cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar().get(name).map(str::to_string)
    }

    /// Every cookie in the jar as (name, value), in the order first set.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.jar().all().to_vec()
    }

    /// Puts a cookie in the jar by hand (as if the server had set it).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar().set(name, value);
    }

    /// Empties the cookie jar.
    pub fn clear_cookies(&self) {
        self.jar().clear();
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn get(&self, path: &str) -> io::Result<Response> {
        self.request("GET", path, &[], b"")
    }

    /// `POST path` with `fields` as an `application/x-www-form-urlencoded` body, encoded as a
    /// browser does (UTF-8, then percent-encoding; see [`form_urlencode`]).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> io::Result<Response> {
        let body = form_urlencode(fields);
        self.request("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
    }

    /// `POST path` with `value` as an `application/json` body.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn post_json(&self, path: &str, value: &serde_json::Value) -> io::Result<Response> {
        let body = serde_json::to_vec(value).map_err(io::Error::other)?;
        self.request("POST", path, &[("Content-Type", "application/json")], &body)
    }

    /// Sends `method path` with `body`, then reads the whole response and stores the cookies it
    /// sets. Headers, later ones replacing earlier ones of the same name: `Host`, `Connection:
    /// close`, the defaults, `Cookie` from the jar (when not empty), `Content-Length` (when there
    /// is a body or the method is `POST`, `PUT` or `PATCH`), then `headers`.
    ///
    /// # Errors
    /// A header or the path containing CR or LF (or the path a space); failing to connect,
    /// send or read within the timeout (kind `TimedOut`); a response that is not HTTP/1.x. The
    /// message names the method, path and server.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let context = |e: io::Error| io::Error::new(e.kind(), format!("{method} {path} to {}: {e}", self.addr));
        let head = self.request_head(method, path, headers, body).map_err(context)?;
        let deadline = Instant::now() + self.timeout;
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout).map_err(context)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(context)?;
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.write_all(&request).map_err(context)?;
        let mut reader = BufReader::new(DeadlineReader { stream, deadline, timeout: self.timeout });
        let response = read_response(&mut reader, method.eq_ignore_ascii_case("HEAD")).map_err(context)?;
        let mut jar = self.jar();
        for set_cookie in response.headers_all("set-cookie") {
            jar.store(set_cookie);
        }
        Ok(response)
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, cookie::Jar> {
        self.jar.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_head(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> io::Result<String> {
        if path.is_empty()
            || path.contains(['\r', '\n', ' '])
            || method.is_empty()
            || method.contains(['\r', '\n', ' '])
        {
            return Err(invalid_input(format!("bad request line {method:?} {path:?}")));
        }
        let mut merged: Vec<(String, String)> = Vec::new();
        let mut layer = |layer: Vec<(String, String)>| {
            merged.retain(|(n, _)| !layer.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)));
            merged.extend(layer);
        };
        layer(vec![("Host".into(), self.addr.to_string()), ("Connection".into(), "close".into())]);
        layer(self.headers.clone());
        if let Some(cookie) = self.jar().header() {
            layer(vec![("Cookie".into(), cookie)]);
        }
        if !body.is_empty() || ["POST", "PUT", "PATCH"].iter().any(|m| m.eq_ignore_ascii_case(method)) {
            layer(vec![("Content-Length".into(), body.len().to_string())]);
        }
        layer(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect());
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &merged {
            if name.is_empty() || name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                return Err(invalid_input(format!("bad header {name:?}: {value:?}")));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        Ok(head)
    }
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (case-insensitive), in the order received (`Set-Cookie`).
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (invalid UTF-8 becomes U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When the body is not JSON; the message shows the status and the body.
    pub fn json(&self) -> serde_json::Value {
        self.try_json().unwrap_or_else(|e| panic!("response is not JSON ({e}): {self:?}"))
    }

    /// The body parsed as JSON, or the parse error.
    ///
    /// # Errors
    /// When the body is not JSON.
    pub fn try_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Shows the body as text, cut at 4096 characters, so a failed assertion on a response is
/// readable.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        let body = match text.char_indices().nth(4096) {
            Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], self.body.len()),
            None => text,
        };
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

/// A socket whose every read gets only the time left until the request's deadline.
struct DeadlineReader {
    stream: TcpStream,
    deadline: Instant,
    timeout: Duration,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timed_out =
            || io::Error::new(io::ErrorKind::TimedOut, format!("no complete response within {:?}", self.timeout));
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
            _ => e,
        })
    }
}

/// Reads one response (RFC 9112 §4-§7), skipping interim 1xx responses. `head_only` is set for
/// a `HEAD` request, whose response has no body whatever its headers say.
fn read_response(reader: &mut impl BufRead, head_only: bool) -> io::Result<Response> {
    loop {
        let status_line = read_line(reader)?.ok_or_else(|| eof("before the status line"))?;
        let status = parse_status_line(&status_line)?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?.ok_or_else(|| eof("in the header section"))?;
            if line.is_empty() {
                break;
            }
            let (name, value) =
                line.split_once(':').ok_or_else(|| invalid_data(format!("header line without ':': {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(response);
        }
        // RFC 9112 §6.3: chunked as the final transfer coding wins over Content-Length.
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")));
        if chunked {
            response.body = read_chunked(reader)?;
        } else if let Some(length) = response.header("content-length") {
            let length: u64 = length.parse().map_err(|_| invalid_data(format!("bad Content-Length {length:?}")))?;
            reader.take(length).read_to_end(&mut response.body)?;
            if (response.body.len() as u64) < length {
                return Err(eof(&format!("after {} of {length} body bytes", response.body.len())));
            }
        } else {
            reader.read_to_end(&mut response.body)?;
        }
        return Ok(response);
    }
}

/// `HTTP/1.1 303 See Other` -> 303.
fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(invalid_data(format!("bad status line {line:?}")));
    }
    code.parse().map_err(|_| invalid_data(format!("bad status line {line:?}")))
}

/// The chunked transfer coding (RFC 9112 §7.1): hex size lines (extensions ignored), data, and
/// a trailer section, which is read and dropped.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| eof("before a chunk size"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid_data(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            while !read_line(reader)?.ok_or_else(|| eof("in the trailer section"))?.is_empty() {}
            return Ok(body);
        }
        let before = body.len() as u64;
        reader.take(size).read_to_end(&mut body)?;
        if body.len() as u64 - before < size {
            return Err(eof("inside a chunk"));
        }
        if read_line(reader)?.as_deref() != Some("") {
            return Err(invalid_data("chunk data not followed by CRLF".into()));
        }
    }
}

/// One line without its CRLF (or bare LF); `None` at end of stream before any byte.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(eof("inside a line (or the line is longer than 64 KiB)"));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|e| invalid_data(format!("line is not UTF-8: {e}")))
}

fn eof(place: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed {place}"))
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> io::Result<Response> {
        read_response(&mut &raw[..], false)
    }

    #[test]
    fn content_length_body_stops_at_the_length() -> io::Result<()> {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhelloEXTRA")?;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.header("X-a"), Some("1"));
        assert_eq!(r.headers_all("x-A"), ["1", "2"]);
        Ok(())
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() -> io::Result<()> {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n\
                    4;name=value\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n";
        assert_eq!(parse(raw)?.body, b"Wikipedia in \r\n\r\nchunks.");
        Ok(())
    }

    #[test]
    fn truncated_responses_are_errors() {
        let chunk = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nshort");
        assert_eq!(chunk.map_err(|e| e.kind()).err(), Some(io::ErrorKind::UnexpectedEof));
        let length = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        assert_eq!(length.map_err(|e| e.kind()).err(), Some(io::ErrorKind::UnexpectedEof));
        let nothing = parse(b"");
        assert_eq!(nothing.map_err(|e| e.kind()).err(), Some(io::ErrorKind::UnexpectedEof));
        let garbage = parse(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert_eq!(garbage.map_err(|e| e.kind()).err(), Some(io::ErrorKind::InvalidData));
    }

    #[test]
    fn interim_responses_are_skipped_and_bodiless_statuses_read_no_body() -> io::Result<()> {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n")?;
        assert_eq!((r.status, r.body.len()), (204, 0));
        let head = read_response(&mut &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"[..], true)?;
        assert_eq!((head.status, head.body.len()), (200, 0));
        Ok(())
    }

    #[test]
    fn body_without_length_runs_to_the_end_of_the_stream() -> io::Result<()> {
        assert_eq!(parse(b"HTTP/1.0 200 OK\nServer: x\n\nall of it")?.body, b"all of it");
        Ok(())
    }

    #[test]
    fn request_head_layers_headers() -> io::Result<()> {
        let client = Client::new(SocketAddr::from(([127, 0, 0, 1], 8080)))
            .with_header("Authorization", "Bearer one")
            .with_header("authorization", "Bearer two");
        client.set_cookie("session", "abc");
        let head = client.request_head("POST", "/x?y=1", &[("Connection", "keep-alive")], b"")?;
        assert_eq!(
            head,
            "POST /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nauthorization: Bearer two\r\nCookie: session=abc\r\n\
             Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        assert!(client.request_head("GET", "/a b", &[], b"").is_err());
        assert!(client.request_head("GET", "/", &[("X", "a\r\nInjected: 1")], b"").is_err());
        Ok(())
    }
}
