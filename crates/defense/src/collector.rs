//! The flow collector: receiving never waits on decoding.
//!
//! One receive thread per listening socket reads datagrams in batches ([`crate::receive`]) into
//! pooled buffers and hands them to the decode thread over a bounded queue; when the queue is
//! full the datagram is dropped and counted, and the receive thread goes straight back to the
//! socket. The decode thread owns the template cache and the exporter table, decodes each
//! datagram (`bawaba_flow::decode`) and passes every record to a [`RecordSink`] (the detector),
//! which it also ticks about every 100 ms. Every drop is counted: in the kernel socket buffer
//! (`/proc/net/udp`), in the queue, and decode errors by kind.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bawaba_flow::{ErrorKind, Exporters, FlowError, FlowRecord, TemplateCache};
use serde::Deserialize;

use crate::receive::BatchReceiver;

/// `[flow]`: the collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Start the collector (and the detector behind it) with `bawaba serve`.
    pub enabled: bool,
    /// UDP addresses to receive NetFlow v5/v9, IPFIX and sFlow on (one socket each; the format
    /// is recognised per datagram).
    pub listen: Vec<SocketAddr>,
    /// Kernel receive buffer per socket, bytes (SO_RCVBUF; the kernel caps it at
    /// net.core.rmem_max unless running as root, where SO_RCVBUFFORCE is used).
    pub socket_buffer_bytes: usize,
    /// Datagrams waiting for the decoder at most; beyond, new ones are dropped and counted.
    pub queue_datagrams: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            enabled: false,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2055))],
            socket_buffer_bytes: 32 << 20,
            queue_datagrams: 16_384,
        }
    }
}

/// Where decoded records go.
pub trait RecordSink: Send + 'static {
    /// One record, received at `now_ms` (Unix milliseconds).
    fn record(&mut self, exporter: IpAddr, record: &FlowRecord, now_ms: u64);
    /// Called about every 100 ms, and once more before the collector stops.
    fn tick(&mut self, now_ms: u64);
}

/// Counters, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// Datagrams read from the sockets.
    pub datagrams: AtomicU64,
    /// Their bytes.
    pub bytes: AtomicU64,
    /// Datagrams dropped because the decode queue was full.
    pub queue_drops: AtomicU64,
    /// Datagrams longer than the receive buffer (cut, then decoded as far as possible).
    pub truncated: AtomicU64,
    /// Records decoded.
    pub records: AtomicU64,
    /// Records whose sampling rate is unknown (counted unscaled).
    pub unknown_sampling: AtomicU64,
    /// Decode errors by [`ErrorKind`] (index in [`ErrorKind::ALL`]).
    pub errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Exporters, as the decode thread last saw them.
    pub exporters: Mutex<Vec<ExporterRow>>,
}

/// One exporter, for the CLI, API and metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExporterRow {
    /// Its address.
    pub address: IpAddr,
    /// Protocol name (netflow-v5, netflow-v9, ipfix, sflow-v5).
    pub protocol: String,
    /// Datagrams from it.
    pub datagrams: u64,
    /// Records from it.
    pub records: u64,
    /// Last seen, Unix milliseconds.
    pub last_seen_ms: u64,
}

impl CollectorStats {
    fn error(&self, kind: ErrorKind) {
        if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
            if let Some(c) = self.errors.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Prometheus text format (`bawaba_flow_*`).
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        for (name, help, value) in [
            ("bawaba_flow_datagrams_total", "Flow datagrams received.", &self.datagrams),
            ("bawaba_flow_bytes_total", "Flow datagram bytes received.", &self.bytes),
            ("bawaba_flow_queue_drops_total", "Datagrams dropped: decode queue full.", &self.queue_drops),
            ("bawaba_flow_truncated_total", "Datagrams longer than the receive buffer.", &self.truncated),
            ("bawaba_flow_records_total", "Flow records decoded.", &self.records),
            (
                "bawaba_flow_unknown_sampling_total",
                "Records with no known sampling rate (counted unscaled).",
                &self.unknown_sampling,
            ),
        ] {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP bawaba_flow_decode_errors_total Datagrams or sets that failed to decode, by kind.\n# TYPE bawaba_flow_decode_errors_total counter");
        for (kind, c) in ErrorKind::ALL.iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "bawaba_flow_decode_errors_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                c.load(Ordering::Relaxed)
            );
        }
    }
}

/// A running collector. Dropping it does not stop it: call [`Collector::stop`].
pub struct Collector {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<CollectorStats>,
    local: Vec<SocketAddr>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The datagrams of one `recvmmsg` call, copied into one buffer: the receive thread hands the
/// decoder one batch per system call, not one message per datagram, so a busy collector pays
/// one channel operation (and at most one wake-up) per batch.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// (start, length, exporter, cut) of each datagram in `data`.
    items: Vec<(usize, usize, IpAddr, bool)>,
}

impl Collector {
    /// Binds every `listen` socket and starts the threads.
    pub fn start(config: &CollectorConfig, sink: impl RecordSink) -> io::Result<Collector> {
        let stats = Arc::new(CollectorStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        // Batches travel over an unbounded channel; the bound is `queued`, in datagrams.
        let (tx, rx) = std::sync::mpsc::channel::<Batch>();
        let (pool_tx, pool_rx) = sync_channel::<Batch>(1024);
        let pool_rx = Arc::new(Mutex::new(pool_rx));
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let limit = config.queue_datagrams.max(1);
        let mut threads = Vec::new();
        let mut local = Vec::new();
        for addr in &config.listen {
            let socket = bind(*addr, config.socket_buffer_bytes)?;
            let receiver = BatchReceiver::new(socket, Duration::from_millis(100))?;
            local.push(receiver.local_addr()?);
            let (tx, pool, stats, stop) = (tx.clone(), Arc::clone(&pool_rx), Arc::clone(&stats), Arc::clone(&stop));
            let queue = Queue { tx, queued: Arc::clone(&queued), limit };
            threads.push(
                std::thread::Builder::new()
                    .name("flow-receive".into())
                    .spawn(move || receive_loop(receiver, queue, pool, stats, stop))?,
            );
        }
        drop(tx);
        let (stats2, stop2) = (Arc::clone(&stats), Arc::clone(&stop));
        threads.push(
            std::thread::Builder::new()
                .name("flow-decode".into())
                .spawn(move || decode_loop(rx, queued, pool_tx, sink, stats2, stop2))?,
        );
        Ok(Collector { stop, threads, stats, local })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// The counters.
    pub fn stats(&self) -> Arc<CollectorStats> {
        Arc::clone(&self.stats)
    }

    /// Stops the threads and waits for them (the sink gets a last tick).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // As root the kernel's rmem_max does not apply (SO_RCVBUFFORCE); otherwise take what it gives.
    if socket.set_recv_buffer_size(buffer).is_err() || socket.recv_buffer_size().unwrap_or(0) < buffer {
        let _ = socket.set_recv_buffer_size(buffer);
    }
    force_recv_buffer(&socket, buffer);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// SO_RCVBUFFORCE: lets root exceed net.core.rmem_max; silently kept as is otherwise.
fn force_recv_buffer(socket: &socket2::Socket, buffer: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(buffer).unwrap_or(libc::c_int::MAX);
    crate::sys::setsockopt_int(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, value);
}

/// The decoder's queue as a receive thread sees it.
struct Queue {
    tx: std::sync::mpsc::Sender<Batch>,
    /// Datagrams handed over and not yet decoded.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// `queue_datagrams`.
    limit: usize,
}

fn receive_loop(
    mut receiver: BatchReceiver,
    queue: Queue,
    pool: Arc<Mutex<Receiver<Batch>>>,
    stats: Arc<CollectorStats>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = match receiver.receive() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "flow receive failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if n == 0 {
            continue;
        }
        let mut batch = pool.lock().ok().and_then(|p| p.try_recv().ok()).unwrap_or_default();
        batch.data.clear();
        batch.items.clear();
        let (mut bytes_total, mut truncated) = (0u64, 0u64);
        for i in 0..n {
            let Some((bytes, from, cut)) = receiver.datagram(i) else { continue };
            bytes_total += bytes.len() as u64;
            truncated += u64::from(cut);
            let Some(from) = from else { continue };
            let exporter = match from.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            };
            batch.items.push((batch.data.len(), bytes.len(), exporter, cut));
            batch.data.extend_from_slice(bytes);
        }
        stats.datagrams.fetch_add(n as u64, Ordering::Relaxed);
        stats.bytes.fetch_add(bytes_total, Ordering::Relaxed);
        if truncated > 0 {
            stats.truncated.fetch_add(truncated, Ordering::Relaxed);
        }
        let count = batch.items.len();
        if count == 0 {
            continue;
        }
        let short = n < crate::receive::BATCH / 2;
        // Drop the batch when the decoder is `limit` datagrams behind (counted, never blocking).
        if queue.queued.load(Ordering::Relaxed) + count > queue.limit {
            stats.queue_drops.fetch_add(count as u64, Ordering::Relaxed);
            continue;
        }
        queue.queued.fetch_add(count, Ordering::Relaxed);
        if queue.tx.send(batch).is_err() {
            return;
        }
        if short {
            // Less than half a batch was waiting: pause before asking again, so that under load
            // the thread takes datagrams dozens at a time instead of waking (and preempting the
            // decoder, when they share a core) for each one. The socket buffer holds what
            // arrives meanwhile (64 MiB: about 45,000 datagrams, over a second at 1.5 M
            // records/s); an idle collector adds at most this much delay.
            std::thread::sleep(IDLE_PAUSE);
        }
    }
}

/// See `receive_loop`.
const IDLE_PAUSE: Duration = Duration::from_millis(1);

struct Visit<'a, S: RecordSink> {
    sink: &'a mut S,
    exporter: IpAddr,
    now_ms: u64,
    records: u64,
    unknown_sampling: u64,
    stats: &'a CollectorStats,
}

impl<S: RecordSink> bawaba_flow::Visitor for Visit<'_, S> {
    fn flow(&mut self, record: &FlowRecord) {
        self.records += 1;
        if record.sampling.rate.is_none() {
            self.unknown_sampling += 1;
        }
        self.sink.record(self.exporter, record, self.now_ms);
    }

    fn problem(&mut self, error: &FlowError) {
        self.stats.error(error.kind());
    }
}

fn decode_loop(
    rx: Receiver<Batch>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    pool: SyncSender<Batch>,
    mut sink: impl RecordSink,
    stats: Arc<CollectorStats>,
    stop: Arc<AtomicBool>,
) {
    let mut cache = TemplateCache::default();
    let mut exporters = Exporters::new(4096);
    let mut last_tick = Instant::now();
    let mut last_table = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(batch) => {
                let now = now_ms();
                let (mut records, mut unknown) = (0, 0);
                for &(start, len, exporter, _cut) in &batch.items {
                    let Some(buf) = batch.data.get(start..start + len) else { continue };
                    let mut visit = Visit {
                        sink: &mut sink,
                        exporter,
                        now_ms: now,
                        records: 0,
                        unknown_sampling: 0,
                        stats: &stats,
                    };
                    let result = bawaba_flow::decode(exporter, buf, &mut cache, &mut visit);
                    records += visit.records;
                    unknown += visit.unknown_sampling;
                    if let Err(e) = &result {
                        stats.error(e.kind());
                    }
                    exporters.observe(exporter, now, &result, &cache);
                }
                stats.records.fetch_add(records, Ordering::Relaxed);
                stats.unknown_sampling.fetch_add(unknown, Ordering::Relaxed);
                queued.fetch_sub(batch.items.len(), Ordering::Relaxed);
                let _ = pool.try_send(batch);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= Duration::from_millis(100) {
            last_tick = Instant::now();
            sink.tick(now_ms());
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        if last_table.elapsed() >= Duration::from_secs(1) {
            last_table = Instant::now();
            publish_exporters(&exporters, &stats);
        }
    }
    sink.tick(now_ms());
    publish_exporters(&exporters, &stats);
}

fn publish_exporters(exporters: &Exporters, stats: &CollectorStats) {
    let rows: Vec<ExporterRow> = exporters
        .iter()
        .map(|(addr, e)| ExporterRow {
            address: addr,
            protocol: e.protocol.map_or("unknown", |p| p.as_str()).to_string(),
            datagrams: e.datagrams,
            records: e.flows,
            last_seen_ms: e.last_seen_ms,
        })
        .collect();
    if let Ok(mut t) = stats.exporters.lock() {
        *t = rows;
    }
}
