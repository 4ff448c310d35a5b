//! The flow collector: one thread reads every listening socket in batches
//! (`bawaba_udp::BatchReceiver`) and decodes each datagram where `recvmmsg` put it.
//!
//! The thread owns the template cache and the exporter table, decodes each datagram
//! (`bawaba_flow::decode`) and passes every record to a [`RecordSink`] (the detector), which it
//! also ticks about every 100 ms. The kernel's socket buffer is the only queue: a collector that
//! falls behind leaves datagrams there, and when the buffer is full the kernel drops new ones,
//! at no cost to the collector, and says how many (`SO_MEMINFO`, read at every tick). Every
//! loss is counted: socket drops, and decode errors by kind. With no copy of the datagram and no
//! hand-over between threads, a datagram costs one share of a system call plus its decoding,
//! which is what lets one core keep up with millions of records a second.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bawaba_flow::{ErrorKind, Exporters, FlowError, FlowRecord, TemplateCache};
use serde::Deserialize;

use bawaba_udp::{socket_drops, wait_readable, BatchReceiver};

/// Datagrams read per system call at most.
const BATCH: usize = 64;
/// Largest datagram kept whole (larger ones are cut and counted in `truncated`).
const MAX_DATAGRAM: usize = 65_536;

/// A listening socket and the buffers its batches land in.
struct Listener {
    socket: UdpSocket,
    batch: BatchReceiver,
}

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
    /// net.core.rmem_max unless running as root, where SO_RCVBUFFORCE is used). It is the
    /// collector's only queue: what arrives while the decoder is busy waits here.
    pub socket_buffer_bytes: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            enabled: false,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2055))],
            socket_buffer_bytes: 32 << 20,
        }
    }
}

/// Where decoded records go.
pub trait RecordSink: Send + 'static {
    /// One record, received at `now_ms` (Unix milliseconds).
    fn record(&mut self, exporter: IpAddr, record: &FlowRecord, now_ms: u64);
    /// The records of one datagram, in order; by default one [`RecordSink::record`] each.
    fn records(&mut self, exporter: IpAddr, records: &[FlowRecord], now_ms: u64) {
        for r in records {
            self.record(exporter, r, now_ms);
        }
    }
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
    /// Datagrams the kernel dropped because a socket's receive buffer was full (as its drop
    /// counter said at the last tick, about every 100 ms).
    pub socket_drops: AtomicU64,
    /// Datagrams longer than the receive buffer (cut, then decoded as far as possible).
    pub truncated: AtomicU64,
    /// Records decoded.
    pub records: AtomicU64,
    /// Records whose sampling rate is unknown (counted unscaled).
    pub unknown_sampling: AtomicU64,
    /// Decode errors by [`ErrorKind`] (index in [`ErrorKind::ALL`]).
    pub errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Exporters, as the collector's thread last saw them.
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
            (
                "bawaba_flow_socket_drops_total",
                "Datagrams the kernel dropped: socket receive buffer full.",
                &self.socket_drops,
            ),
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
    thread: JoinHandle<()>,
    stats: Arc<CollectorStats>,
    local: Vec<SocketAddr>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Collector {
    /// Binds every `listen` socket and starts the collector's thread.
    pub fn start(config: &CollectorConfig, sink: impl RecordSink) -> io::Result<Collector> {
        let stats = Arc::new(CollectorStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut receivers = Vec::new();
        let mut local = Vec::new();
        for addr in &config.listen {
            let socket = bind(*addr, config.socket_buffer_bytes)?;
            socket.set_nonblocking(true)?;
            local.push(socket.local_addr()?);
            receivers.push(Listener { socket, batch: BatchReceiver::new(BATCH, MAX_DATAGRAM) });
        }
        let (stats2, stop2) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("flow-collector".into())
            .spawn(move || collect(receivers, sink, &stats2, &stop2))?;
        Ok(Collector { stop, thread, stats, local })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// The counters.
    pub fn stats(&self) -> Arc<CollectorStats> {
        Arc::clone(&self.stats)
    }

    /// Stops the thread and waits for it (the sink gets a last tick).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
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
    bawaba_udp::set_int_option(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, value);
}

/// How long the collector waits for a datagram before it looks at the clock and the stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// After a read that found less than half a batch waiting, the collector pauses this long
/// before the next read, so that under load it takes datagrams dozens at a time instead of
/// one system call (and often one wake-up) each. The socket buffer holds what arrives
/// meanwhile (64 MiB: about 45,000 datagrams, over a second at 1.5 M records/s); an idle
/// collector adds at most this much delay.
const IDLE_PAUSE: Duration = Duration::from_millis(1);

/// The collector's thread: read every socket, decode in place, tick the sink.
fn collect(mut receivers: Vec<Listener>, mut sink: impl RecordSink, stats: &CollectorStats, stop: &AtomicBool) {
    use std::os::fd::AsRawFd;
    let fds: Vec<_> = receivers.iter().map(|l| l.socket.as_raw_fd()).collect();
    let mut cache = TemplateCache::default();
    let mut exporters = Exporters::new(4096);
    let mut drops_seen = vec![0u32; receivers.len()];
    // One datagram's records, handed to the sink together.
    let mut decoded: Vec<FlowRecord> = Vec::with_capacity(64);
    let mut last_tick = Instant::now();
    let mut last_table = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (mut got, mut full) = (0, false);
        for Listener { socket, batch } in receivers.iter_mut() {
            let n = match batch.receive(socket.as_raw_fd()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "flow receive failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            got += n;
            full |= n == BATCH;
            if n > 0 {
                decode_batch(batch, n, &mut decoded, &mut cache, &mut exporters, &mut sink, stats);
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(100) {
            last_tick = Instant::now();
            sink.tick(now_ms());
            count_drops(&fds, &mut drops_seen, stats);
        }
        if last_table.elapsed() >= Duration::from_secs(1) {
            last_table = Instant::now();
            publish_exporters(&exporters, stats);
        }
        if full {
            continue;
        }
        if got == 0 {
            if let Err(e) = wait_readable(&fds, IDLE_WAIT) {
                tracing::warn!(error = %e, "flow poll failed");
                std::thread::sleep(IDLE_WAIT);
            }
        } else if got < BATCH / 2 {
            std::thread::sleep(IDLE_PAUSE);
        }
    }
    sink.tick(now_ms());
    count_drops(&fds, &mut drops_seen, stats);
    publish_exporters(&exporters, stats);
}

/// Adds what each socket's kernel drop counter moved by since the last look (it wraps at 2^32).
fn count_drops(fds: &[std::os::fd::RawFd], seen: &mut [u32], stats: &CollectorStats) {
    for (&fd, seen) in fds.iter().zip(seen) {
        if let Some(now) = socket_drops(fd) {
            stats.socket_drops.fetch_add(u64::from(now.wrapping_sub(*seen)), Ordering::Relaxed);
            *seen = now;
        }
    }
}

/// Decodes the `n` datagrams `receiver` just read and counts them.
fn decode_batch(
    receiver: &BatchReceiver,
    n: usize,
    decoded: &mut Vec<FlowRecord>,
    cache: &mut TemplateCache,
    exporters: &mut Exporters,
    sink: &mut impl RecordSink,
    stats: &CollectorStats,
) {
    let now = now_ms();
    let (mut bytes_total, mut truncated, mut records, mut unknown) = (0u64, 0u64, 0, 0u64);
    for i in 0..n {
        let Some((buf, from, cut)) = receiver.datagram(i) else { continue };
        bytes_total += buf.len() as u64;
        truncated += u64::from(cut);
        // An IPv4 exporter on a dual-stack socket arrives IPv4-mapped.
        let Some(exporter) = from.map(|f| f.ip().to_canonical()) else { continue };
        decoded.clear();
        let result = bawaba_flow::decode(
            exporter,
            buf,
            cache,
            &mut Visit { records: &mut *decoded, unknown_sampling: &mut unknown, stats },
        );
        records += decoded.len() as u64;
        if !decoded.is_empty() {
            sink.records(exporter, decoded, now);
        }
        if let Err(e) = &result {
            stats.error(e.kind());
        }
        exporters.observe(exporter, now, &result, cache);
    }
    stats.datagrams.fetch_add(n as u64, Ordering::Relaxed);
    stats.bytes.fetch_add(bytes_total, Ordering::Relaxed);
    if truncated > 0 {
        stats.truncated.fetch_add(truncated, Ordering::Relaxed);
    }
    stats.records.fetch_add(records, Ordering::Relaxed);
    stats.unknown_sampling.fetch_add(unknown, Ordering::Relaxed);
}

/// Collects one datagram's records for the sink, and counts its problems.
struct Visit<'a> {
    records: &'a mut Vec<FlowRecord>,
    /// Records without a sampling rate, counted as they pass.
    unknown_sampling: &'a mut u64,
    stats: &'a CollectorStats,
}

impl bawaba_flow::Visitor for Visit<'_> {
    fn flow(&mut self, record: &FlowRecord) {
        *self.unknown_sampling += u64::from(record.sampling.rate.is_none());
        self.records.push(*record);
    }

    fn problem(&mut self, error: &FlowError) {
        self.stats.error(error.kind());
    }
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
