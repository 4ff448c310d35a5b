//! The listeners: UDP and TCP on every configured address, answering from policy and cache
//! inline and forwarding misses in bounded background tasks, so receiving never waits on an
//! upstream. UDP queries are read, and their inline answers sent, in batches (`recvmmsg` and
//! `sendmmsg` through `bawaba-udp`), by a thread per UDP socket that sleeps in its receive; TCP
//! and the forwarding run on the tokio runtime.

use std::borrow::Cow;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bawaba_policy::Ruleset;
use bawaba_udp::{BatchReceiver, BatchSender};
use bawaba_wire::dns::{flags, Builder, Message, Opcode, Rcode, Type, HEADER_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::cache::{Cache, CacheKey, CacheLimits, Hit};
use crate::metrics::{DnsMetrics, DropReason};
use crate::policy::{check_query, check_response, AnswerConfig, Decision};
use crate::ratelimit::{Limit, RateLimiter};
use crate::upstream::Upstream;
use crate::xfr::{Transfer, ZoneAnswer, ZoneTransfer};
use crate::DnsConfig;

/// Shared state of a running server.
pub struct Resolver {
    ruleset: Arc<ArcSwap<Ruleset>>,
    cache: Cache,
    upstream: Upstream,
    answers: AnswerConfig,
    metrics: Arc<DnsMetrics>,
    inflight: Semaphore,
    serve_stale: bool,
    limiter: RateLimiter,
    /// The RPZ zone served to secondaries, when `[dns.rpz]` is enabled.
    xfr: Option<Arc<ZoneTransfer>>,
}

/// A server with its sockets bound, ready to [`run`](BoundServer::run).
pub struct BoundServer {
    resolver: Arc<Resolver>,
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    tcp_idle: Duration,
    max_tcp: Arc<Semaphore>,
}

/// Binds every listen address (UDP and TCP) and connects the upstreams. The ruleset must already
/// hold the policy: nothing is answered before it is loaded.
pub async fn bind(
    config: &DnsConfig,
    ruleset: Arc<ArcSwap<Ruleset>>,
    metrics: Arc<DnsMetrics>,
) -> std::io::Result<BoundServer> {
    bind_with_zone(config, ruleset, metrics, None).await
}

/// [`bind`], also serving `xfr`'s RPZ zone (transfers, NOTIFY-triggered refreshes and queries
/// for names in the zone) on the same listeners.
pub async fn bind_with_zone(
    config: &DnsConfig,
    ruleset: Arc<ArcSwap<Ruleset>>,
    metrics: Arc<DnsMetrics>,
    xfr: Option<Arc<ZoneTransfer>>,
) -> std::io::Result<BoundServer> {
    let upstreams = config.upstream_addrs()?;
    let upstream =
        Upstream::connect(&upstreams, Duration::from_millis(config.upstream_timeout_ms), Arc::clone(&metrics)).await?;
    let limits = CacheLimits {
        max_entries: config.cache_entries,
        max_ttl: Duration::from_secs(config.max_ttl),
        max_negative_ttl: Duration::from_secs(config.max_negative_ttl),
        stale_for: Duration::from_secs(config.serve_stale),
    };
    let resolver = Arc::new(Resolver {
        ruleset,
        cache: Cache::new(limits),
        upstream,
        answers: AnswerConfig {
            block_page_ipv4: config.block_page_ipv4,
            block_page_ipv6: config.block_page_ipv6,
            ttl: config.policy_ttl,
        },
        metrics,
        inflight: Semaphore::new(config.max_inflight),
        serve_stale: config.serve_stale > 0,
        limiter: RateLimiter::new(config.rate_limit, config.rate_limit_slip, config.rate_limit_exempt.clone(), 100_000),
        xfr,
    });
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for addr in &config.listen {
        // Bind TCP on the port UDP got. With port 0 another process may hold that TCP port:
        // then take another UDP port (a few tries).
        let mut tries = if addr.port() == 0 { 20 } else { 1 };
        let (socket, listener) = loop {
            let socket = udp_listener(*addr)?;
            let bound = socket.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(listener) => break (socket, listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries > 1 => tries -= 1,
                Err(e) => return Err(e),
            }
        };
        udp.push(Arc::new(socket));
        tcp.push(listener);
    }
    Ok(BoundServer {
        resolver,
        udp,
        tcp,
        tcp_idle: Duration::from_millis(config.tcp_idle_timeout_ms),
        max_tcp: Arc::new(Semaphore::new(config.max_tcp_connections)),
    })
}

impl BoundServer {
    /// The addresses actually bound (UDP; TCP uses the same).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// Serves until this future is dropped. Fails when a UDP thread cannot be started, or ends
    /// (it only ends by a panic), so that UDP never stops quietly while TCP goes on.
    ///
    /// Each UDP socket is served by a thread of its own, which stops within two [`STOP_CHECK`]s
    /// of the future being dropped (the socket closes when the forwarding tasks that still hold
    /// it end too); forwarding and TCP run on the caller's runtime. A thread that sleeps in
    /// its receive (`recvmmsg` with `MSG_WAITFORONE` on a blocking socket) answers a lone query
    /// with two system calls, receive and send, where a task woken by tokio's reactor took five
    /// and a thread sleeping in `poll(2)` three; no tokio worker is woken per datagram.
    pub async fn run(self) -> std::io::Result<()> {
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel();
        for socket in self.udp {
            let (resolver, stop, runtime) = (Arc::clone(&self.resolver), Arc::clone(&stop.0), Handle::current());
            let addr = socket.local_addr()?;
            let ended = EndOnDrop(ended_tx.clone(), addr);
            std::thread::Builder::new().name("dns-udp".into()).spawn(move || {
                let _ended = ended;
                serve_udp(&socket, &resolver, &runtime, &stop);
            })?;
        }
        drop(ended_tx);
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.tcp {
            tasks.spawn(serve_tcp(listener, Arc::clone(&self.resolver), self.tcp_idle, Arc::clone(&self.max_tcp)));
        }
        let result = tokio::select! {
            () = async { while tasks.join_next().await.is_some() {} } => Ok(()),
            Some(addr) = ended.recv() => Err(std::io::Error::other(format!("the UDP thread serving {addr} stopped"))),
        };
        drop(stop);
        result
    }
}

/// Says which UDP thread ended, when it ends (on a panic too, as the stack unwinds).
struct EndOnDrop(tokio::sync::mpsc::UnboundedSender<SocketAddr>, SocketAddr);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// Tells the UDP threads to stop when [`BoundServer::run`]'s future ends or is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Longest a UDP thread sleeps before it looks whether it should stop.
pub const STOP_CHECK: Duration = Duration::from_millis(100);

/// How a query arrived, and so how large an answer may be.
#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

/// The outcome of the fast path.
enum Fast {
    Reply(Vec<u8>),
    /// A zone transfer over TCP: several messages, built as they are written.
    Transfer(Transfer),
    Nothing,
    Forward(CacheKey),
}

/// What the cache holds for a query, before policy.
enum Cached {
    /// The answer (id and TTLs rewritten) and what the entry says about it.
    Hit(Vec<u8>, Hit),
    /// Nothing: the query goes upstream, keyed by the thread's `KEY`.
    Miss,
    /// No cacheable question.
    NoKey,
}

/// Queries read per system call at most, and answers sent per call at most.
const UDP_BATCH: usize = 32;
/// Longest query kept whole (EDNS(0) payloads above 4,096 bytes are not used for queries).
const MAX_QUERY: usize = 4096;
/// Tries to send a forwarded answer while the socket's send buffer is full, a millisecond apart.
const SEND_TRIES: usize = 20;

thread_local! {
    /// The cache key of the query being answered on this thread (see `Resolver::fast_path`).
    static KEY: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(5 + 255));
    /// An answer buffer already copied into the send batch, kept for the next cache hit on this
    /// thread.
    static SPARE_ANSWER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// One UDP socket's loop: the queries waiting are read in one `recvmmsg`, those the fast path
/// answers are answered together in one `sendmmsg`, and cache misses go to background tasks.
/// Under load that is two system calls for dozens of queries instead of two each.
fn serve_udp(socket: &Arc<UdpSocket>, resolver: &Arc<Resolver>, runtime: &Handle, stop: &AtomicBool) {
    let fd = socket.as_raw_fd();
    let mut queries = BatchReceiver::new(UDP_BATCH, MAX_QUERY);
    let mut answers = BatchSender::new();
    while !stop.load(Ordering::Relaxed) {
        // Sleeps in the receive itself (the socket blocks, up to STOP_CHECK): a lone query costs
        // two system calls, this and the send.
        let n = match queries.receive_waiting(fd) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => continue,
            // An error the next datagram may not have: wait for one rather than spin.
            Err(_) => {
                let _ = bawaba_udp::wait_readable(&[fd], STOP_CHECK);
                continue;
            }
        };
        // One clock reading serves the batch (cache TTLs and rate limiting count whole seconds
        // and tokens; a batch takes microseconds).
        let now = Instant::now();
        for i in 0..n {
            // A query longer than MAX_QUERY is cut, and fails to parse as it did whole.
            let Some((packet, Some(peer), _)) = queries.datagram(i) else { continue };
            resolver.metrics.query(false);
            match resolver.fast_path(packet, Transport::Udp, peer.ip(), now) {
                Fast::Reply(answer) => {
                    if let Some(limited) = resolver.limit_udp(&answer, peer.ip(), now) {
                        answers.push(&limited, peer);
                    }
                    SPARE_ANSWER.set(answer);
                }
                // Transfers are TCP only; `ZoneTransfer::answer` never streams over UDP.
                Fast::Transfer(_) => {}
                Fast::Nothing => {}
                Fast::Forward(key) => {
                    let Ok(permit) = Arc::clone(resolver).inflight_permit() else {
                        resolver.metrics.dropped(DropReason::Overload);
                        continue;
                    };
                    let query = packet.to_vec();
                    let socket = Arc::clone(socket);
                    let resolver = Arc::clone(resolver);
                    runtime.spawn(async move {
                        if let Some(answer) = resolver.slow_path(&query, key, Transport::Udp).await {
                            resolver.send_udp(&socket, &answer, peer).await;
                        }
                        drop(permit);
                    });
                }
            }
        }
        resolver.flush_udp(fd, &mut answers, stop);
    }
}

async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>, idle: Duration, slots: Arc<Semaphore>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            resolver.metrics.dropped(DropReason::Overload);
            continue;
        };
        let resolver = Arc::clone(&resolver);
        tokio::spawn(async move {
            let _ = tcp_connection(stream, peer.ip(), resolver, idle).await;
            drop(permit);
        });
    }
}

/// Queries on one connection, answered in order (RFC 7766 allows pipelining; we answer
/// sequentially), until the client closes or stays idle.
async fn tcp_connection(
    mut stream: TcpStream,
    peer: IpAddr,
    resolver: Arc<Resolver>,
    idle: Duration,
) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return Ok(()),
        };
        let mut query = vec![0u8; len];
        tokio::time::timeout(idle, stream.read_exact(&mut query)).await.map_err(std::io::Error::other)??;
        resolver.metrics.query(true);
        let answer = match resolver.fast_path(&query, Transport::Tcp, peer, Instant::now()) {
            Fast::Reply(a) => Some(a),
            Fast::Transfer(messages) => {
                // A zone transfer: every message, in order, on this connection (RFC 5936 4.2). A
                // client that stops reading loses the connection after `idle`, not holding a slot.
                for answer in messages {
                    resolver.metrics.answer(answer.get(3).map_or(0, |b| b & 0xf));
                    tokio::time::timeout(idle, write_framed(&mut stream, &answer))
                        .await
                        .map_err(std::io::Error::other)??;
                }
                continue;
            }
            Fast::Nothing => None,
            Fast::Forward(key) => resolver.slow_path(&query, key, Transport::Tcp).await,
        };
        let Some(answer) = answer else { continue };
        resolver.metrics.answer(answer.get(3).map_or(0, |b| b & 0xf));
        write_framed(&mut stream, &answer).await?;
    }
}

/// Writes one message with its two-octet length prefix (RFC 1035 section 4.2.2).
async fn write_framed(stream: &mut TcpStream, answer: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(answer.len() + 2);
    framed.extend_from_slice(&(answer.len().min(u16::MAX as usize) as u16).to_be_bytes());
    framed.extend_from_slice(answer);
    stream.write_all(&framed).await
}

impl Resolver {
    fn inflight_permit(self: Arc<Self>) -> Result<InflightPermit, ()> {
        if self.inflight.try_acquire().map(|p| p.forget()).is_err() {
            return Err(());
        }
        Ok(InflightPermit(self))
    }

    /// A UDP answer as response rate limiting lets it go (counted): as it is, truncated
    /// (slipped), or not at all.
    fn limit_udp<'a>(&self, answer: &'a [u8], peer: IpAddr, now: Instant) -> Option<Cow<'a, [u8]>> {
        let answer = match self.limiter.check(peer, now) {
            Limit::Send => Cow::Borrowed(answer),
            Limit::Drop => {
                self.metrics.dropped(DropReason::RateLimited);
                return None;
            }
            Limit::Slip => {
                let tc = truncated_copy(answer)?;
                self.metrics.slipped();
                Cow::Owned(tc)
            }
        };
        self.metrics.answer(answer.get(3).map_or(0, |b| b & 0xf));
        Some(answer)
    }

    /// Sends a UDP answer, subject to response rate limiting. The send does not block (the socket
    /// does, for the UDP thread's receive; the send passes `MSG_DONTWAIT`): while its send buffer
    /// is full the task waits a millisecond and tries again, up to [`SEND_TRIES`] times, then
    /// counts the answer as a send error (`bawaba_dns_dropped_total{reason="send_error"}`).
    async fn send_udp(&self, socket: &UdpSocket, answer: &[u8], peer: SocketAddr) {
        let Some(answer) = self.limit_udp(answer, peer.ip(), Instant::now()) else { return };
        for _ in 0..SEND_TRIES {
            match bawaba_udp::send_to_nowait(socket.as_raw_fd(), &answer, peer) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => break,
            }
        }
        self.metrics.dropped(DropReason::SendError);
    }

    /// Sends every queued answer (as many per system call as the socket takes), waiting in
    /// `poll(2)` while the socket's send buffer is full; an answer the kernel refuses is counted
    /// and skipped.
    fn flush_udp(&self, fd: RawFd, answers: &mut BatchSender, stop: &AtomicBool) {
        let mut sent = 0;
        while sent < answers.len() && !stop.load(Ordering::Relaxed) {
            match answers.send(fd, sent) {
                // At least one: sendmmsg sends one or fails while any is left.
                Ok(k) => sent += k.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = bawaba_udp::wait_writable(fd, STOP_CHECK);
                }
                Err(_) => {
                    self.metrics.dropped(DropReason::SendError);
                    sent += 1;
                }
            }
        }
        answers.clear();
    }

    /// Everything that needs no upstream: validation, policy on the query name, the cache.
    fn fast_path(&self, packet: &[u8], transport: Transport, peer: IpAddr, now: Instant) -> Fast {
        let query = match Message::parse(packet) {
            Ok(q) => q,
            Err(_) => return self.formerr(packet),
        };
        let header = query.header();
        if header.is_response() {
            self.metrics.dropped(DropReason::Malformed);
            return Fast::Nothing;
        }
        if header.opcode() != Opcode::QUERY {
            return Fast::Reply(Builder::response_to(&query, Rcode::NOTIMP).finish());
        }
        let Some(q) = query.question() else {
            return Fast::Reply(Builder::response_to(&query, Rcode::FORMERR).finish());
        };
        // The RPZ zone: transfers, SOA polls and names in it (crate::xfr), before policy.
        if let Some(answer) =
            self.xfr.as_ref().and_then(|x| x.answer(&query, peer, matches!(transport, Transport::Tcp)))
        {
            self.metrics.xfr_answer(q.qtype);
            return match answer {
                ZoneAnswer::Message(one) => Fast::Reply(one),
                ZoneAnswer::Transfer(messages) => Fast::Transfer(messages),
            };
        }
        if matches!(q.qtype, Type::AXFR | Type::IXFR) {
            return Fast::Reply(Builder::response_to(&query, Rcode::REFUSED).finish());
        }
        let ruleset = self.ruleset.load();
        let serial = ruleset.serial();
        let edns = query.edns();
        // The key is written into a buffer the thread keeps, and a hit is copied into a spare
        // buffer the UDP loop hands back once it has copied the answer into its send batch: a
        // cache hit allocates nothing.
        let cached = KEY.with_borrow_mut(|key| {
            if !CacheKey::write(&query, edns.is_some_and(|e| e.dnssec_ok), header.has(flags::CD), key) {
                return Cached::NoKey;
            }
            let mut answer = SPARE_ANSWER.take();
            match self.cache.get_into(&key[..], header.id, now, false, &mut answer) {
                Some(hit) => Cached::Hit(answer, hit),
                None => {
                    SPARE_ANSWER.set(answer);
                    Cached::Miss
                }
            }
        });
        // An answer that this very ruleset let through unchanged passes again without a lookup:
        // the query name and everything in the answer were looked up then, and neither the
        // entry nor the ruleset has changed since (a reload brings a new serial).
        let cached = match cached {
            Cached::Hit(answer, hit) if hit.passed == serial => {
                self.metrics.cache(true);
                return Fast::Reply(deliver(answer, edns.is_none().then_some(hit.additional), &query, transport));
            }
            other => other,
        };
        match check_query(&ruleset, &query, &self.answers) {
            Decision::Respond(answer, hit) => {
                self.metrics.policy_hit(&hit);
                return Fast::Reply(fit(answer, &query, transport));
            }
            Decision::Drop(hit) => {
                self.metrics.policy_hit(&hit);
                self.metrics.dropped(DropReason::Policy);
                return Fast::Nothing;
            }
            Decision::Passthru | Decision::Pass => {}
        }
        match cached {
            Cached::Hit(answer, cache_hit) => {
                self.metrics.cache(true);
                let (answer, passed) = self.finish(&query, answer, transport, &ruleset);
                if passed {
                    KEY.with_borrow(|key| self.cache.note_passed(&key[..], &cache_hit, serial));
                }
                answer.map_or(Fast::Nothing, Fast::Reply)
            }
            Cached::Miss => {
                self.metrics.cache(false);
                Fast::Forward(KEY.with_borrow(|key| CacheKey::from(&key[..])))
            }
            Cached::NoKey => Fast::Nothing,
        }
    }

    /// Asks upstream, caches, applies response policy.
    async fn slow_path(&self, packet: &[u8], key: CacheKey, transport: Transport) -> Option<Vec<u8>> {
        let query = Message::parse(packet).ok()?;
        let id = query.header().id;
        match self.upstream.resolve(key.clone(), &query).await {
            Ok(answer) => {
                let msg = Message::parse(&answer).ok()?;
                self.cache.insert(key, &msg, Instant::now());
                let mut bytes = answer.to_vec();
                bytes[0..2].copy_from_slice(&id.to_be_bytes());
                let ruleset = self.ruleset.load();
                self.finish(&query, bytes, transport, &ruleset).0
            }
            Err(_) => {
                if self.serve_stale {
                    if let Some(stale) = self.cache.get(&key, id, Instant::now(), true) {
                        self.metrics.stale();
                        let ruleset = self.ruleset.load();
                        return self.finish(&query, stale.bytes, transport, &ruleset).0;
                    }
                }
                let mut b = Builder::response_to(&query, Rcode::SERVFAIL);
                if let Some(edns) = query.edns() {
                    let ede = bawaba_wire::dns::ede_option(
                        bawaba_wire::dns::ede::NO_REACHABLE_AUTHORITY,
                        "no upstream resolver answered",
                    );
                    b.push_opt(1232, edns.dnssec_ok, &[(bawaba_wire::dns::EDE_OPTION, &ede)]);
                }
                Some(b.finish())
            }
        }
    }

    /// Applies response policy to an upstream answer (already carrying the client's id) and fits
    /// it to the client; an answer that passes is adapted in place, not copied. The flag says
    /// whether the answer passed unchanged.
    fn finish(
        &self,
        query: &Message<'_>,
        answer: Vec<u8>,
        transport: Transport,
        ruleset: &Ruleset,
    ) -> (Option<Vec<u8>>, bool) {
        let Ok(msg) = Message::parse(&answer) else { return (None, false) };
        let additional = query.edns().is_none().then(|| msg.additional_offset());
        match check_response(ruleset, query, &msg, &self.answers) {
            Decision::Respond(a, hit) => {
                self.metrics.policy_hit(&hit);
                (Some(fit(a, query, transport)), false)
            }
            Decision::Drop(hit) => {
                self.metrics.policy_hit(&hit);
                self.metrics.dropped(DropReason::Policy);
                (None, false)
            }
            Decision::Pass | Decision::Passthru => (Some(deliver(answer, additional, query, transport)), true),
        }
    }

    /// A FORMERR for input with a readable header, nothing for anything less (RFC 1035 4.1.1).
    fn formerr(&self, packet: &[u8]) -> Fast {
        if packet.len() < HEADER_LEN || packet[2] & 0x80 != 0 {
            self.metrics.dropped(DropReason::Malformed);
            return Fast::Nothing;
        }
        let mut out = packet[..HEADER_LEN].to_vec();
        out[2] = 0x80 | (packet[2] & 0x79); // QR, keep opcode and RD
        out[3] = Rcode::FORMERR.0;
        out[4..12].fill(0);
        Fast::Reply(out)
    }
}

/// Hands an in-flight slot back when the forwarding task ends.
struct InflightPermit(Arc<Resolver>);

impl Drop for InflightPermit {
    fn drop(&mut self) {
        self.0.inflight.add_permits(1);
    }
}

/// Removes the upstream's OPT (and the rest of the additional section, which starts at
/// `additional`) for a client that did not speak EDNS (RFC 6891 section 7), and restores the
/// client's question case; in place.
fn adapt(mut out: Vec<u8>, additional: Option<usize>, query: &Message<'_>) -> Vec<u8> {
    if let Some(end) = additional.filter(|&end| end >= HEADER_LEN && end <= out.len()) {
        out.truncate(end);
        out[10..12].copy_from_slice(&[0, 0]);
    }
    let q = query.question_bytes();
    if out.len() >= HEADER_LEN + q.len() {
        out[HEADER_LEN..HEADER_LEN + q.len()].copy_from_slice(q);
    }
    out
}

/// An answer that passed policy, as the client gets it: without the upstream's additional
/// section (which starts at `additional`) when the query had no EDNS, with the query's question
/// (its case), fitted to the transport.
fn deliver(answer: Vec<u8>, additional: Option<usize>, query: &Message<'_>, transport: Transport) -> Vec<u8> {
    fit(adapt(answer, additional, query), query, transport)
}

/// Truncates a UDP answer that exceeds what the client accepts (512 without EDNS, its EDNS size
/// otherwise, at most 4096): header and question only, with TC set (RFC 1035 4.2.1, RFC 6891 7).
fn fit(answer: Vec<u8>, query: &Message<'_>, transport: Transport) -> Vec<u8> {
    if matches!(transport, Transport::Tcp) {
        return answer;
    }
    let limit = query.edns().map_or(512, |e| usize::from(e.udp_size).clamp(512, 4096));
    if answer.len() <= limit {
        return answer;
    }
    let mut b = Builder::response_to(query, Rcode(answer[3] & 0xf));
    b.set_flags(flags::TC);
    if let Some(edns) = query.edns() {
        b.push_opt(1232, edns.dnssec_ok, &[]);
    }
    b.finish()
}

/// Header and question of `answer` with TC set and no records: what rate limiting "slips" to a
/// client instead of the full answer (a real client retries over TCP).
fn truncated_copy(answer: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::parse(answer).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + msg.question_bytes().len());
    out.extend_from_slice(&answer[..HEADER_LEN]);
    out[2] |= (flags::TC >> 8) as u8;
    out[4..12].copy_from_slice(&[0, u8::from(msg.question().is_some()), 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(msg.question_bytes());
    Some(out)
}

/// A UDP listening socket with large kernel buffers (4 MiB each way), so a burst is queued by the
/// kernel rather than dropped while the receive loop is busy.
fn udp_listener(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // The kernel caps these at net.core.rmem_max / wmem_max; a smaller buffer is not an error.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Blocking, so that the UDP thread sleeps in its receive; STOP_CHECK bounds each sleep.
    // Every send on it passes MSG_DONTWAIT instead.
    socket.set_read_timeout(Some(STOP_CHECK))?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
