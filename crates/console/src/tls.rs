//! HTTPS for the console: a rustls acceptor from PEM files and a listener that completes the
//! handshake before handing the connection to the HTTP server. Handshakes run side by side, so a
//! client that stalls its handshake holds up nobody else.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The file holds no certificate or key.
    #[error("{0}: no PEM certificate or private key in it")]
    Empty(String),
    /// rustls refused the pair.
    #[error("certificate and key do not make a TLS server: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the acceptor (TLS 1.2 and 1.3, HTTP/1.1 over ALPN) from PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|source| TlsError::Io { path: p.display().to_string(), source })
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Io { path: cert.display().to_string(), source })?;
    if certs.is_empty() {
        return Err(TlsError::Empty(cert.display().to_string()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|source| TlsError::Io { path: key.display().to_string(), source })?
        .ok_or_else(|| TlsError::Empty(key.display().to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at most; connections beyond are closed at once (and logged).
const MAX_HANDSHAKES: usize = 256;

/// A TCP listener whose connections are TLS sessions. A background task accepts connections and
/// runs each handshake in a task of its own (at most 256 at once, each for at most 10 s);
/// finished sessions wait here for the HTTP server. A client that fails or stalls its handshake
/// is dropped and logged; the others go on meanwhile.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: std::io::Result<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Wraps `tcp` and starts accepting (on the current tokio runtime).
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        let local = tcp.local_addr();
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(handshakes(tcp, acceptor, tx));
        TlsListener { ready, local, task }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections and hands each to a handshake task.
async fn handshakes(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: tokio::sync::mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "console accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%addr, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // The HTTP server is gone when this fails: nothing left to do.
                    let _ = ready.send((tls, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
            drop(slot);
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(session) => session,
            // The accepting task ended (it only does when aborted): wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}
