//! A small client for this API, for other bawaba processes: a site's `bawaba serve` reporting its
//! enforcement points to the central console, and the CLI's commands that act on a running
//! `serve` (manual mitigations, exporters). HTTP/1.1 with `Connection: close`, plain or TLS
//! (rustls, trusting the CA certificates of a PEM file), authenticated with an API token.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base address is not `http://host:port` or `https://host:port`.
    #[error("{0:?}: give the console as http://HOST:PORT or https://HOST:PORT")]
    Url(String),
    /// HTTPS without a CA file to trust.
    #[error("https needs the CA certificate(s) to trust (a PEM file)")]
    NoCa,
    /// Reading the CA file or talking to the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The CA file holds nothing usable.
    #[error("{0}: no CA certificate in it")]
    Ca(String),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The answer is not HTTP.
    #[error("the server's answer is not HTTP: {0}")]
    Answer(String),
    /// No answer in time.
    #[error("no answer from {0} within 15 s")]
    Timeout(String),
}

/// A client for one console.
#[derive(Clone)]
pub struct ApiClient {
    host: String,
    port: u16,
    tls: Option<TlsConnector>,
    token: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl ApiClient {
    /// A client for the console at `base` (`http://host:port` or `https://host:port`), trusting
    /// the CA certificates in `ca` for HTTPS.
    pub fn new(base: &str, token: &str, ca: Option<&Path>) -> Result<ApiClient, ClientError> {
        let bad = || ClientError::Url(base.to_string());
        let (https, rest) = if let Some(r) = base.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = base.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (h, p.parse::<u16>().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        let tls = if https { Some(connector(ca.ok_or(ClientError::NoCa)?)?) } else { None };
        Ok(ApiClient { host, port, tls, token: token.to_string() })
    }

    /// Sends `method` to `/api/v1{path}` with an optional JSON body; returns the status and the
    /// body (JSON, or a JSON string when it is not JSON).
    pub async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), ClientError> {
        let target = format!("{}:{}", self.host, self.port);
        let work = async {
            let addr: SocketAddr = tokio::net::lookup_host((self.host.as_str(), self.port))
                .await?
                .next()
                .ok_or_else(|| ClientError::Answer(format!("{} does not resolve", self.host)))?;
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            match &self.tls {
                Some(tls) => {
                    let name =
                        ServerName::try_from(self.host.clone()).map_err(|_| ClientError::Url(self.host.clone()))?;
                    let stream = tls.connect(name, tcp).await?;
                    exchange(stream, &target, &self.token, method, path, body).await
                }
                None => exchange(tcp, &target, &self.token, method, path, body).await,
            }
        };
        tokio::time::timeout(Duration::from_secs(15), work).await.map_err(|_| ClientError::Timeout(target.clone()))?
    }
}

/// A TLS connector trusting the CA certificates in the PEM file `ca`.
pub fn connector(ca: &Path) -> Result<TlsConnector, ClientError> {
    let mut reader = std::io::BufReader::new(std::fs::File::open(ca)?);
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader).collect::<Result<_, _>>()?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(ClientError::Ca(ca.display().to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ClientError> {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} /api/v1{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // No API answer comes near this; a server that sends more is cut off, not buffered.
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut raw).await.or_else(|e| {
        // A TLS peer that closes without close_notify still sent a whole answer.
        if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() {
            Ok(0)
        } else {
            Err(e)
        }
    })?;
    parse_response(&raw)
}

/// The longest answer read, bytes.
const MAX_ANSWER: u64 = 16 << 20;

/// Reads a whole HTTP/1.1 answer (`Connection: close`): the status, and the body as JSON (a JSON
/// string when it is not JSON), chunked transfer coding removed. Never panics on what a server
/// sends.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Value), ClientError> {
    let end =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| ClientError::Answer("no header end".into()))?;
    let (head, rest) = (String::from_utf8_lossy(&raw[..end]), &raw[end + 4..]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Answer(head.lines().next().unwrap_or("").to_string()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    let body = String::from_utf8_lossy(&body);
    Ok((status, serde_json::from_str(&body).unwrap_or_else(|_| Value::String(body.into_owned()))))
}

/// Removes chunked transfer coding (RFC 9112 section 7.1), on bytes, so that a chunk's size
/// counts what was sent; chunk extensions (`;name=value`) are skipped. Stops at the last chunk
/// or at the first malformed one.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&s[..eol]);
        let size = line.split(';').next().unwrap_or_default().trim();
        let rest = &s[eol + 2..];
        let Ok(n) = usize::from_str_radix(size, 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        assert!(ApiClient::new("http://127.0.0.1:8080/", "t", None).is_ok());
        assert!(ApiClient::new("http://[2001:db8::1]:8080", "t", None).is_ok());
        assert!(matches!(ApiClient::new("https://console.example:443", "t", None), Err(ClientError::NoCa)));
        assert!(ApiClient::new("ftp://x:1", "t", None).is_err());
        assert!(ApiClient::new("http://x", "t", None).is_err());
        assert!(ApiClient::new("http://x:1/api", "t", None).is_err());
        assert_eq!(dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), b"hello world");
        // Sizes count bytes (here a two-byte letter), and chunk extensions are skipped.
        assert_eq!(dechunk("6;x=y\r\n\"\u{639}bc\"\r\n0\r\n\r\n".as_bytes()), "\"\u{639}bc\"".as_bytes());
        let (status, body) = parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((status, body["a"].as_i64()), (201, Some(1)));
        assert!(parse_response(b"garbage").is_err());
    }
}
