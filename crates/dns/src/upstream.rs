//! Forwarding to upstream resolvers: one connected UDP socket per upstream, answers matched to
//! queries by id and question, TCP retry when an answer comes back truncated (RFC 7766), servers
//! tried in order with a timeout each, and identical questions in flight de-duplicated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bawaba_wire::dns::{flags, Message, Type};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{oneshot, watch};

use crate::cache::CacheKey;
use crate::metrics::DnsMetrics;

/// Why no upstream answered.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Every server timed out or failed.
    #[error("no upstream answered ({tried} tried)")]
    Unreachable {
        /// How many servers were tried.
        tried: usize,
    },
    /// No upstream is configured.
    #[error("no upstream resolver configured")]
    NoneConfigured,
}

struct Server {
    addr: SocketAddr,
    socket: Arc<UdpSocket>,
    pending: Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>,
}

type Waiters = watch::Sender<Option<Result<Arc<[u8]>, UpstreamError>>>;

/// The upstream forwarder.
pub struct Upstream {
    servers: Vec<Arc<Server>>,
    timeout: Duration,
    inflight: Mutex<HashMap<CacheKey, Waiters>>,
    rng: Mutex<u64>,
    metrics: Arc<DnsMetrics>,
}

impl Upstream {
    /// Opens a socket to each server and starts its receive task. Must run inside a Tokio runtime.
    pub async fn connect(
        addrs: &[SocketAddr],
        timeout: Duration,
        metrics: Arc<DnsMetrics>,
    ) -> std::io::Result<Upstream> {
        let mut servers = Vec::new();
        for &addr in addrs {
            let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(addr).await?;
            let server = Arc::new(Server { addr, socket: Arc::new(socket), pending: Mutex::new(HashMap::new()) });
            tokio::spawn(receive(Arc::clone(&server)));
            servers.push(server);
        }
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Upstream {
            servers,
            timeout,
            inflight: Mutex::new(HashMap::new()),
            rng: Mutex::new(u64::from_le_bytes(seed) | 1),
            metrics,
        })
    }

    fn next_id(&self) -> u16 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // xorshift64: ids must be unpredictable enough that an off-path spoofer has to guess.
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 24) as u16
    }

    /// Resolves `query` (a validated client query) upstream. Concurrent calls with the same key
    /// share one upstream exchange.
    pub async fn resolve(&self, key: CacheKey, query: &Message<'_>) -> Result<Arc<[u8]>, UpstreamError> {
        let mut rx = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(tx) => {
                    self.metrics.dedup_join();
                    Some(tx.subscribe())
                }
                None => {
                    inflight.insert(key.clone(), watch::channel(None).0);
                    None
                }
            }
        };
        if let Some(rx) = rx.as_mut() {
            let result = rx.wait_for(Option::is_some).await;
            return match result {
                Ok(v) => v.clone().unwrap_or(Err(UpstreamError::Unreachable { tried: 0 })),
                Err(_) => Err(UpstreamError::Unreachable { tried: 0 }),
            };
        }
        let result = self.exchange(query).await;
        let tx = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        if let Some(tx) = tx {
            let _ = tx.send(Some(result.clone()));
        }
        result
    }

    async fn exchange(&self, query: &Message<'_>) -> Result<Arc<[u8]>, UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::NoneConfigured);
        }
        let Some(q) = query.question() else { return Err(UpstreamError::Unreachable { tried: 0 }) };
        let client_edns = query.edns();
        for server in &self.servers {
            let started = Instant::now();
            let id = self.next_id();
            let packet = upstream_query(query, id, client_edns.map(|e| e.dnssec_ok).unwrap_or(false));
            let answer = match self.udp(server, id, &packet).await {
                Some(a) if is_truncated(&a) => tcp(server.addr, &packet, self.timeout).await,
                other => other,
            };
            let Some(answer) = answer else { continue };
            let Ok(msg) = Message::parse(&answer) else { continue };
            let matches = msg.header().id == id
                && msg.header().is_response()
                && msg
                    .question()
                    .is_some_and(|a| a.qtype == q.qtype && a.qclass == q.qclass && a.name.eq_ignore_case(&q.name));
            if !matches {
                continue;
            }
            self.metrics.upstream(true, started.elapsed());
            return Ok(answer.into());
        }
        self.metrics.upstream(false, Duration::ZERO);
        Err(UpstreamError::Unreachable { tried: self.servers.len() })
    }

    async fn udp(&self, server: &Server, id: u16, packet: &[u8]) -> Option<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        server.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let sent = server.socket.send(packet).await.is_ok();
        let answer = if sent { tokio::time::timeout(self.timeout, rx).await.ok().and_then(Result::ok) } else { None };
        server.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        answer
    }
}

async fn receive(server: Arc<Server>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok(n) = server.socket.recv(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if n < 2 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let waiter = server.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(buf[..n].to_vec());
        }
    }
}

fn is_truncated(answer: &[u8]) -> bool {
    answer.len() >= 4 && u16::from_be_bytes([answer[2], answer[3]]) & flags::TC != 0
}

/// Our query to an upstream: the client's question with a fresh id, RD and the client's CD bit,
/// and EDNS with a 1232-byte buffer (the DNS flag day 2020 value) and the client's DO bit.
fn upstream_query(query: &Message<'_>, id: u16, dnssec_ok: bool) -> Vec<u8> {
    let cd = query.header().flags & flags::CD;
    let mut out = Vec::with_capacity(query.question_bytes().len() + 32);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(flags::RD | cd).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    out.extend_from_slice(query.question_bytes());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&Type::OPT.0.to_be_bytes());
    out.extend_from_slice(&1232u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    out
}

/// One query over TCP (two-byte length prefix, RFC 1035 section 4.2.2).
async fn tcp(addr: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let mut framed = Vec::with_capacity(packet.len() + 2);
        framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        framed.extend_from_slice(packet);
        stream.write_all(&framed).await.ok()?;
        let len = stream.read_u16().await.ok()? as usize;
        let mut answer = vec![0u8; len];
        stream.read_exact(&mut answer).await.ok()?;
        Some(answer)
    };
    tokio::time::timeout(timeout, work).await.ok().flatten()
}
