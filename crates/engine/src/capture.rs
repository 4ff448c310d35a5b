//! The capture-file back end: runs a pcap or pcapng file through the engine and reports every
//! flow (the 5-tuple, what was recognised, the verdict and the order behind it) and totals. It
//! is what `bawaba inspect` prints, and what the golden tests and the benchmark run.
//!
//! The capture's own clock drives flow expiry, so a capture gives the same answer however fast it
//! is read. A truncated last record (a capture cut off mid-write) is reported, not fatal: the
//! flows read up to there are still reported.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use bawaba_policy::Ruleset;
use bawaba_wire::packet::{self, PacketError};
use bawaba_wire::pcap::{CaptureError, CaptureReader, LinkType, Packet, PcapSlice};
use serde::Serialize;

use crate::counters::Counters;
use crate::engine::{Engine, Observer, Prepared};
use crate::flow::{Flow, FlowEnd, FlowTableStats};
use crate::verdict::{AppProtocol, Basis, FlowAction, FlowState};

/// Reads a captured frame of the given link type down to the transport payload.
///
/// Always inlined, so that the packet is built where the caller keeps it (the capture loop's
/// ring) instead of returned and copied there: 1.075 of the speed, paired.
#[inline(always)]
pub fn dissect_link(link_type: LinkType, data: &[u8]) -> Result<packet::Packet<'_>, PacketError> {
    match link_type {
        LinkType::ETHERNET => packet::dissect_ethernet(data),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => packet::dissect_ip(data),
        // Linux cooked v1: 16-byte header, protocol (ethertype) at bytes 14..16.
        LinkType::LINUX_SLL => skip_header(data, 16, "Linux cooked"),
        // Linux cooked v2: 20-byte header, protocol at bytes 0..2.
        LinkType::LINUX_SLL2 => skip_header(data, 20, "Linux cooked v2"),
        // BSD loopback: 4-byte address family, then IP.
        LinkType::NULL => skip_header(data, 4, "loopback"),
        _ => Err(PacketError::Truncated { offset: 0, what: "unsupported link type" }),
    }
}

fn skip_header<'a>(data: &'a [u8], len: usize, what: &'static str) -> Result<packet::Packet<'a>, PacketError> {
    match data.get(len..) {
        Some(ip) => packet::dissect_ip(ip),
        None => Err(PacketError::Truncated { offset: 0, what }),
    }
}

/// The order behind a blocked flow, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRef {
    /// Order id.
    pub id: i64,
    /// The authority's reference.
    pub reference: String,
    /// The issuing authority.
    pub authority: String,
    /// Category.
    pub category: &'static str,
}

/// One flow as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// Client `address:port` (`[v6]:port` for IPv6).
    pub client: String,
    /// Server `address:port`.
    pub server: String,
    /// `tcp`, `udp` or the IP protocol number.
    pub transport: String,
    /// Recognised application protocol.
    pub protocol: AppProtocol,
    /// Server name read (SNI, QUIC SNI, Host), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name was longer than the flow table keeps and is shown cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub name_cut: bool,
    /// Encrypted Client Hello was offered (the name is the outer, public one).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ech: bool,
    /// The verdict.
    pub action: FlowAction,
    /// What the verdict rests on.
    pub basis: Basis,
    /// The order behind a block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderRef>,
    /// The rule behind a block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<i64>,
    /// DNS queries dropped in this flow because their name is blocked.
    #[serde(skip_serializing_if = "is_zero")]
    pub blocked_queries: u16,
    /// Packets client to server, server to client.
    pub packets: [u32; 2],
    /// Bytes client to server, server to client.
    pub bytes: [u64; 2],
    /// First packet, nanoseconds since the epoch.
    pub first_seen_ns: u64,
    /// Last packet.
    pub last_seen_ns: u64,
}

impl FlowRecord {
    fn new(flow: &Flow<FlowState>, ruleset: &Ruleset) -> Self {
        let state = &flow.state;
        let (client, server) =
            if state.client_is_lo { (flow.key.lo(), flow.key.hi()) } else { (flow.key.hi(), flow.key.lo()) };
        let fmt = |(addr, port): (std::net::IpAddr, u16)| std::net::SocketAddr::new(addr, port).to_string();
        let (c, s) = (usize::from(!state.client_is_lo), usize::from(state.client_is_lo));
        let order = state.order().and_then(|id| ruleset.orders().iter().find(|o| o.id == id)).map(|o| OrderRef {
            id: o.id.0,
            reference: o.reference.clone(),
            authority: o.authority.clone(),
            category: o.category.as_str(),
        });
        FlowRecord {
            client: fmt(client),
            server: fmt(server),
            transport: match flow.key.protocol {
                packet::protocol::TCP => "tcp".to_string(),
                packet::protocol::UDP => "udp".to_string(),
                packet::protocol::ICMP => "icmp".to_string(),
                packet::protocol::ICMPV6 => "icmpv6".to_string(),
                other => other.to_string(),
            },
            protocol: state.app,
            name: state.name().map(str::to_string),
            name_cut: state.name_cut(),
            ech: state.ech,
            action: state.action,
            basis: state.basis,
            order,
            rule: state.rule().map(|r| r.0),
            blocked_queries: state.blocked_queries,
            packets: [flow.packets[c], flow.packets[s]],
            bytes: [flow.bytes[c], flow.bytes[s]],
            first_seen_ns: flow.first_seen,
            last_seen_ns: flow.last_seen,
        }
    }
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// Totals for a capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureSummary {
    /// Records read from the file.
    pub records: u64,
    /// Frames that are not IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames that could not be read, by reason.
    pub undecodable: BTreeMap<&'static str, u64>,
    /// The file ended in the middle of a record; what came before was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// The engine's counters.
    pub engine: Counters,
    /// Flow table counters.
    pub flow_table: FlowTableStats,
}

struct Collect<F: FnMut(FlowRecord)> {
    ruleset: Arc<Ruleset>,
    on_flow: Option<F>,
}

impl<F: FnMut(FlowRecord)> Observer for Collect<F> {
    fn ended(&mut self, flow: &Flow<FlowState>, _why: FlowEnd) {
        if let Some(on_flow) = &mut self.on_flow {
            on_flow(FlowRecord::new(flow, &self.ruleset));
        }
    }
}

/// Runs a capture through `engine`, handing each flow to `on_flow` when it ends (idle by the
/// capture's clock, evicted, or at the end of the file), and returns the totals. An error is
/// returned only when the file cannot be read at all (not a capture, I/O error); a truncated
/// tail is reported in [`CaptureSummary::truncated`].
pub fn inspect_capture<R: Read>(
    reader: R,
    engine: &mut Engine,
    on_flow: impl FnMut(FlowRecord),
) -> Result<CaptureSummary, CaptureError> {
    let run = Run::new(engine, Some(on_flow), |_| {});
    run_capture(reader_source(reader)?, engine, run)
}

/// Like [`inspect_capture`] for the totals only: no per-flow record is built.
pub fn summarize_capture<R: Read>(reader: R, engine: &mut Engine) -> Result<CaptureSummary, CaptureError> {
    let run = Run::new(engine, None::<fn(FlowRecord)>, |_| {});
    run_capture(reader_source(reader)?, engine, run)
}

/// Like [`inspect_capture`] for a capture already in memory (for instance memory-mapped): a
/// classic pcap file is read in place, without copying a byte; pcapng is streamed. `progress`
/// is called with the file offset reached, every 65,536 packets.
pub fn inspect_bytes(
    data: &[u8],
    engine: &mut Engine,
    on_flow: Option<impl FnMut(FlowRecord)>,
    progress: impl FnMut(u64),
) -> Result<CaptureSummary, CaptureError> {
    let run = Run::new(engine, on_flow, progress);
    match PcapSlice::new(data)? {
        Some(slice) => run_slice(slice, engine, run),
        None => run_capture(reader_source(data)?, engine, run),
    }
}

fn reader_source<R: Read>(reader: R) -> Result<CaptureReader<R>, CaptureError> {
    // A buffer that stays in the L2 cache leaves room there for the flow table.
    CaptureReader::with_buffer_len(reader, 256 * 1024)
}

/// What a run through a capture keeps between records.
struct Run<F: FnMut(FlowRecord), P: FnMut(u64)> {
    observer: Collect<F>,
    summary: CaptureSummary,
    next_expiry: u64,
    progress: P,
}

impl<F: FnMut(FlowRecord), P: FnMut(u64)> Run<F, P> {
    /// A run through a capture with `engine`: each ended flow goes to `on_flow`, and `progress`
    /// gets the file offset reached every 65,536 packets.
    fn new(engine: &Engine, on_flow: Option<F>, progress: P) -> Self {
        let observer = Collect { ruleset: Arc::clone(engine.ruleset()), on_flow };
        Run { observer, summary: CaptureSummary::default(), next_expiry: 0, progress }
    }

    /// One record, dissected (and its flow [`Engine::prepare`]d, or `None` to leave that to the
    /// engine): counts it, expires flows by the capture's clock, and judges the packet.
    #[inline]
    fn record(
        &mut self,
        engine: &mut Engine,
        record: &Packet<'_>,
        dissected: &Result<packet::Packet<'_>, PacketError>,
        prepared: Option<Prepared>,
    ) {
        self.summary.records += 1;
        if self.summary.records.is_multiple_of(65_536) {
            (self.progress)(record.offset);
        }
        let now = record.timestamp_nanos;
        if now >= self.next_expiry {
            engine.expire(now, &mut self.observer);
            self.next_expiry = now.saturating_add(1_000_000_000);
        }
        match dissected {
            Ok(p) => {
                engine.process_prepared(p, prepared, now, &mut self.observer);
            }
            Err(PacketError::NotIp { .. }) => self.summary.not_ip += 1,
            Err(e) => *self.summary.undecodable.entry(error_kind(e)).or_default() += 1,
        }
    }

    fn finish(mut self, engine: &mut Engine) -> CaptureSummary {
        engine.finish(&mut self.observer);
        self.summary.engine = engine.counters().clone();
        self.summary.flow_table = engine.flow_stats();
        self.summary
    }
}

/// Runs a streamed capture through `engine`, one record at a time.
fn run_capture(
    mut capture: CaptureReader<impl Read>,
    engine: &mut Engine,
    mut run: Run<impl FnMut(FlowRecord), impl FnMut(u64)>,
) -> Result<CaptureSummary, CaptureError> {
    loop {
        let record = match capture.next_packet() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e @ CaptureError::Truncated { .. }) => {
                run.summary.truncated = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        let dissected = dissect_link(record.link_type, record.data);
        run.record(engine, &record, &dissected, None);
    }
    Ok(run.finish(engine))
}

/// Records [`run_slice`] holds read and dissected: the one it judges and the seven after it.
const AHEAD: usize = 8;

/// Bytes of a capture read in place that [`run_slice`] asks for ahead of its reader: about six
/// records of the benchmark's mix, several microseconds of work.
const STREAM_AHEAD: usize = 4096;

/// A record read ahead, dissected, with its flow prepared.
struct Ahead<'a> {
    record: Packet<'a>,
    dissected: Result<packet::Packet<'a>, PacketError>,
    prepared: Option<Prepared>,
}

/// [`run_capture`] for a classic pcap read in place, whose packets stay valid after the next one
/// is read: a record is read, dissected and its flow [`Engine::prepare`]d (the index line
/// prefetched) seven records before it is judged, and its flow entry prefetched four records
/// later, three before it is judged (five before: 0.98 of the speed, paired). The flow table's
/// index line and flow entry, two cache misses a packet would otherwise wait for one after the
/// other, are then loading while earlier packets are judged. Records are judged in file order,
/// and the answers are the same as one record at a time.
fn run_slice(
    mut capture: PcapSlice<'_>,
    engine: &mut Engine,
    mut run: Run<impl FnMut(FlowRecord), impl FnMut(u64)>,
) -> Result<CaptureSummary, CaptureError> {
    // The records read ahead: `len` of them from `ring[head]` on, in file order. They are judged
    // where they lie: moved in and out of a queue, each (some 250 bytes) was copied twice.
    let mut ring: [Option<Ahead<'_>>; AHEAD] = [const { None }; AHEAD];
    let (mut head, mut len) = (0, 0);
    let mut failed = None;
    let mut more = true;
    // How far the capture's bytes have been asked for.
    let mut streamed: *const u8 = std::ptr::null();
    loop {
        while more && len < AHEAD {
            match capture.next_packet() {
                Ok(Some(record)) => {
                    // The reader follows a chain: each record header is found only once the one
                    // before it has been read, and reads that skip most payload lines show the
                    // hardware prefetcher no pattern. So every line up to STREAM_AHEAD bytes past
                    // this record is asked for, each once, long before the reader gets there.
                    let next = record.data.as_ptr_range().end;
                    streamed = streamed.max(next);
                    while streamed < next.wrapping_add(STREAM_AHEAD) {
                        bawaba_wire::hint::prefetch(streamed);
                        streamed = streamed.wrapping_add(64);
                    }
                    let dissected = dissect_link(record.link_type, record.data);
                    let prepared = dissected.as_ref().ok().and_then(|p| engine.prepare(p));
                    ring[(head + len) % AHEAD] = Some(Ahead { record, dissected, prepared });
                    len += 1;
                }
                Ok(None) => more = false,
                Err(e @ CaptureError::Truncated { .. }) => {
                    run.summary.truncated = Some(e.to_string());
                    more = false;
                }
                Err(e) => {
                    // Judge what was read before the error, as a reader one record at a time
                    // does, then report it.
                    failed = Some(e);
                    more = false;
                }
            }
        }
        if len == 0 {
            break;
        }
        // The record three after this one, prepared four records ago.
        const LATER: usize = 3;
        if LATER < len {
            if let Some(Ahead { prepared: Some(prepared), .. }) = &ring[(head + LATER) % AHEAD] {
                engine.prefetch_flow(prepared);
            }
        }
        if let Some(Ahead { record, dissected, prepared }) = &ring[head] {
            run.record(engine, record, dissected, *prepared);
        }
        head = (head + 1) % AHEAD;
        len -= 1;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(run.finish(engine)),
    }
}

/// A short, bounded name for a dissection error, for counters.
pub fn error_kind(e: &PacketError) -> &'static str {
    match e {
        PacketError::Truncated { .. } => "truncated",
        PacketError::NotIp { .. } => "not-ip",
        PacketError::TooManyTags => "too-many-vlan-tags",
        PacketError::Version { .. } => "bad-ip-version",
        PacketError::BadLength { .. } => "bad-length",
        PacketError::ExtensionChain { .. } => "ipv6-extension-chain",
        _ => "other",
    }
}

/// True when a record says a flow was blocked.
pub fn is_blocked(record: &FlowRecord) -> bool {
    record.action != FlowAction::Allow
}
