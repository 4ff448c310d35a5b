//! Forwarding to upstream resolvers: one connected UDP socket per upstream, answers matched to
//! queries by id (unique among the queries in flight) and question, one UDP retransmission after
//! a third of the timeout, TCP retry when an answer comes back truncated (RFC 7766), servers tried
//! in order with a timeout each, and identical questions in flight de-duplicated.

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
            let (id, rx) = self.register(server);
            let packet = upstream_query(query, id, client_edns.map(|e| e.dnssec_ok).unwrap_or(false));
            let answer = match self.udp(server, id, rx, &packet).await {
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

    /// Picks an id that no other query to `server` is waiting on, and registers for its answer.
    /// Two queries in flight with one id would take each other's answers; with a few hundred
    /// misses in flight, a random 16-bit id collides often enough to matter.
    fn register(&self, server: &Server) -> (u16, oneshot::Receiver<Vec<u8>>) {
        let (tx, rx) = oneshot::channel();
        let mut pending = server.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut id = self.next_id();
        // Bounded: with `max_inflight` far below 65,536 a free id is found in a try or two.
        for _ in 0..1024 {
            if !pending.contains_key(&id) {
                break;
            }
            id = self.next_id();
        }
        pending.insert(id, tx);
        (id, rx)
    }

    /// Sends `packet` and waits for the answer; sends it once more after a third of the timeout
    /// without one, so one lost datagram costs a third of the timeout rather than a SERVFAIL
    /// (Unbound retransmits too).
    async fn udp(
        &self,
        server: &Server,
        id: u16,
        mut rx: oneshot::Receiver<Vec<u8>>,
        packet: &[u8],
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        let mut answer = None;
        for wait in [self.timeout / 3, Duration::MAX] {
            if server.socket.send(packet).await.is_err() {
                break;
            }
            let wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(a)) => {
                    answer = Some(a);
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => continue,
            }
        }
        // Remove our registration if it is still there. Once the receive task has delivered our
        // answer, the id is free and another query may already hold it: removing by id alone
        // would drop that query's registration (it then failed at once with SERVFAIL; the
        // benchmark saw a few per 20,000 misses). With our receiver dropped, ours is the entry
        // whose sender is closed.
        drop(rx);
        let mut pending = server.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.get(&id).is_some_and(oneshot::Sender::is_closed) {
            pending.remove(&id);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_in_flight_are_unique() {
        let metrics = Arc::new(DnsMetrics::default());
        // Nothing listens on port 9 (discard); no packet is sent here.
        let upstream =
            Upstream::connect(&["127.0.0.1:9".parse().unwrap()], Duration::from_millis(100), metrics).await.unwrap();
        let server = Arc::clone(&upstream.servers[0]);
        // 20,000 in flight: random ids would collide hundreds of times (birthday bound).
        let waiting: Vec<_> = (0..20_000).map(|_| upstream.register(&server)).collect();
        let ids: std::collections::HashSet<u16> = waiting.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), waiting.len());
        assert_eq!(server.pending.lock().unwrap().len(), waiting.len());
    }
}
