//! The inline back end: NFQUEUE in a routed gateway.
//!
//! Only the first packets of each connection reach bawaba. The rules [`Rules::install`] puts in
//! a chain of its own (`BAWABA-Q<queue>`, jumped to first from `FORWARD`), for iptables and
//! ip6tables:
//!
//! ```text
//! -m mark --mark 0/MASK -m connmark --mark ALLOW/MASK -j RETURN       # decided: allowed, never queued again
//! -m mark ! --mark 0/MASK        -j CONNMARK --save-mark --mask MASK   # a verdict's mark sticks to the connection
//! -m connmark --mark REQUEUE/MASK -j NFQUEUE --queue-num Q            # marked for another look after a reload
//! -m connmark --mark ALLOW/MASK  -j RETURN                             # a verdict just saved: allowed
//! -m connmark --mark BLOCK/MASK  -j DROP                               # decided: blocked, dropped in the kernel
//! -m connbytes --connbytes 0:N --connbytes-dir both --connbytes-mode packets
//!                                -j NFQUEUE --queue-num Q [--queue-bypass]
//! ```
//!
//! An undecided packet is accepted. A packet whose flow is now decided gets `NF_REPEAT` with the
//! allow or block mark: it runs through the chain again, the first rule saves the mark on the
//! connection, and the second or third rule lets it go or drops it. (The mark rules come before
//! the queue rule; otherwise a repeated packet would be queued again forever.) The first rule
//! is the one nearly every packet takes: a packet of an allowed connection leaves the chain after
//! one rule. It takes only unmarked packets: a repeated packet carries its verdict's mark, which
//! must reach the connection even when the connection was allowed before (a block after a reload,
//! or a mitigation, decided while a second packet of it was queued). Resets and HTTP
//! redirects are sent through raw sockets before the packet is dropped. The kernel in use passes
//! no conntrack data with queued packets, so verdict state lives in the engine's own flow table.
//!
//! The rules are removed when [`Rules`] is dropped, also when the loop fails.

use std::io;
use std::os::fd::RawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bawaba_policy::Ruleset;
use bawaba_wire::packet::dissect_ip;
use thiserror::Error;

use crate::config::EngineSection;
use crate::counters::Counters;
use crate::engine::{Connection, Engine, Ignore, PacketVerdict};
use crate::flow::FlowKey;
use crate::inject::{self, RawSender};

/// Why the inline back end stopped or could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InlineError {
    /// An iptables command failed.
    #[error("`{command}` failed: {stderr}")]
    Iptables {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// Opening, binding or reading the queue failed.
    #[error("NFQUEUE {queue}: {source}")]
    Queue {
        /// The queue number.
        queue: u16,
        /// The cause.
        source: io::Error,
    },
    /// The raw sockets for resets could not be opened.
    #[error("opening raw sockets for resets: {0}")]
    RawSocket(io::Error),
}

/// The installed rules; removed on drop.
pub struct Rules {
    chain: String,
    hook: String,
    tools: Vec<&'static str>,
}

fn iptables(tool: &str, args: &[&str]) -> Result<(), InlineError> {
    let out = Command::new(tool)
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| InlineError::Iptables { command: format!("{tool} {}", args.join(" ")), stderr: e.to_string() })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(InlineError::Iptables {
            command: format!("{tool} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Rules {
    /// Installs the chain and the jump to it for IPv4 (required) and IPv6 (if ip6tables works).
    pub fn install(section: &EngineSection) -> Result<Rules, InlineError> {
        let chain = format!("BAWABA-Q{}", section.queue);
        let mut rules = Rules { chain: chain.clone(), hook: section.chain.clone(), tools: Vec::new() };
        for tool in ["iptables", "ip6tables"] {
            match Self::install_one(tool, &chain, section) {
                Ok(()) => rules.tools.push(tool),
                Err(e) if tool == "ip6tables" => tracing::warn!(error = %e, "IPv6 not enforced inline"),
                Err(e) => return Err(e),
            }
        }
        Ok(rules)
    }

    fn install_one(tool: &'static str, chain: &str, s: &EngineSection) -> Result<(), InlineError> {
        // A leftover chain from a crash: unhook and flush it first.
        Self::remove_one(tool, chain, &s.chain);
        iptables(tool, &["-N", chain])?;
        let mask = format!("0x{:x}", s.mark_mask);
        let allow = format!("0x{:x}/{mask}", s.mark_allow);
        let block = format!("0x{:x}/{mask}", s.mark_block);
        let zero = format!("0x0/{mask}");
        let window = format!("0:{}", s.queued_packets.max(1));
        let queue = s.queue.to_string();
        // Most packets belong to allowed connections: let them leave after one rule. A packet back
        // from the queue carries a mark and goes on to have it saved.
        iptables(
            tool,
            &["-A", chain, "-m", "mark", "--mark", &zero, "-m", "connmark", "--mark", &allow, "-j", "RETURN"],
        )?;
        iptables(
            tool,
            &["-A", chain, "-m", "mark", "!", "--mark", &zero, "-j", "CONNMARK", "--save-mark", "--mask", &mask],
        )?;
        // A connection bawaba marked for another look (a new policy may block it): queue it
        // whatever connbytes says.
        let requeue = format!("0x{:x}/{mask}", s.mark_allow | s.mark_block);
        let mut again = vec!["-A", chain, "-m", "connmark", "--mark", &requeue, "-j", "NFQUEUE", "--queue-num", &queue];
        if s.fail_open {
            again.push("--queue-bypass");
        }
        iptables(tool, &again)?;
        iptables(tool, &["-A", chain, "-m", "connmark", "--mark", &allow, "-j", "RETURN"])?;
        iptables(tool, &["-A", chain, "-m", "connmark", "--mark", &block, "-j", "DROP"])?;
        let mut q = vec![
            "-A",
            chain,
            "-m",
            "connbytes",
            "--connbytes",
            &window,
            "--connbytes-dir",
            "both",
            "--connbytes-mode",
            "packets",
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue,
        ];
        if s.fail_open {
            q.push("--queue-bypass");
        }
        iptables(tool, &q)?;
        iptables(tool, &["-I", &s.chain, "1", "-j", chain])
    }

    fn remove_one(tool: &str, chain: &str, hook: &str) {
        // Every jump (there may be several after crashes), then the chain.
        while iptables(tool, &["-D", hook, "-j", chain]).is_ok() {}
        let _ = iptables(tool, &["-F", chain]);
        let _ = iptables(tool, &["-X", chain]);
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        for tool in &self.tools {
            Self::remove_one(tool, &self.chain, &self.hook);
        }
        tracing::info!(chain = %self.chain, "NFQUEUE rules removed");
    }
}

/// Counters of the inline back end itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InlineCounters {
    /// Queued packets that were not IP packets the engine could read (accepted).
    pub unreadable: u64,
    /// Resets and redirects sent.
    pub injected: u64,
    /// Resets and redirects that could not be sent.
    pub inject_failed: u64,
    /// Policy swaps picked up.
    pub reloads: u64,
    /// Packets dropped by a DDoS mitigation's drop rule (`[ddos.mitigation] engine_drop`).
    pub mitigation_drops: u64,
}

/// What the loop shares with the rest of `bawaba serve`: counters, refreshed about twice a
/// second.
#[derive(Debug, Default)]
pub struct Shared {
    /// The engine's counters.
    pub engine: Mutex<Counters>,
    /// The back end's counters.
    pub inline: Mutex<InlineCounters>,
    /// Flows tracked now.
    pub active_flows: std::sync::atomic::AtomicU64,
    /// Attack traffic to drop while mitigations are in force, set by attack defense.
    pub mitigations: arc_swap::ArcSwap<Vec<crate::mitigation::MitigationDrop>>,
    /// True when the queue loop waits in poll(2) on the queue's socket rather than waking every
    /// millisecond to look.
    pub waits_in_poll: AtomicBool,
}

impl Shared {
    /// Copies the engine's and the back end's counters for the metrics endpoint.
    pub(crate) fn publish(&self, engine: &Engine, counters: &InlineCounters) {
        if let Ok(mut c) = self.engine.lock() {
            c.clone_from(engine.counters());
        }
        if let Ok(mut c) = self.inline.lock() {
            c.clone_from(counters);
        }
        self.active_flows.store(engine.flow_stats().active, Ordering::Relaxed);
    }

    /// Appends everything in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        if let Ok(c) = self.engine.lock() {
            c.render_prometheus(out);
        }
        let active = self.active_flows.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP bawaba_engine_active_flows Flows tracked now.\n# TYPE bawaba_engine_active_flows gauge"
        );
        let _ = writeln!(out, "bawaba_engine_active_flows {active}");
        let _ = writeln!(
            out,
            "# HELP bawaba_engine_mitigation_rules DDoS mitigation drop rules in force.\n# TYPE bawaba_engine_mitigation_rules gauge\nbawaba_engine_mitigation_rules {}",
            self.mitigations.load().len()
        );
        let _ = writeln!(
            out,
            "# HELP bawaba_engine_queue_waits_in_poll 1 when the queue loop sleeps in poll(2) until a packet is queued, 0 when it wakes every millisecond to look.\n# TYPE bawaba_engine_queue_waits_in_poll gauge\nbawaba_engine_queue_waits_in_poll {}",
            u8::from(self.waits_in_poll.load(Ordering::Relaxed))
        );
        if let Ok(c) = self.inline.lock() {
            for (name, help, n) in [
                ("bawaba_engine_unreadable_total", "Queued packets that are not readable IP (accepted).", c.unreadable),
                ("bawaba_engine_injected_total", "Resets and redirects sent.", c.injected),
                ("bawaba_engine_inject_failed_total", "Resets and redirects that could not be sent.", c.inject_failed),
                ("bawaba_engine_reloads_total", "Policies swapped in.", c.reloads),
                (
                    "bawaba_engine_mitigation_drops_total",
                    "Packets dropped by a DDoS mitigation's drop rule.",
                    c.mitigation_drops,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}");
            }
        }
    }
}

/// How often the loop looks for a new policy (and, every fifth time, expires flows).
const TICK: Duration = Duration::from_millis(100);

/// The netfilter netlink sockets this process holds, from /proc/self/fd.
fn netfilter_sockets() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let is = |fd, name, want| bawaba_udp::int_option(fd, libc::SOL_SOCKET, name).is_ok_and(|v| v == want);
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| is(fd, libc::SO_DOMAIN, libc::AF_NETLINK) && is(fd, libc::SO_PROTOCOL, libc::NETLINK_NETFILTER))
        .collect()
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Runs the inline loop until `stop` is set: installs the rules (if configured), binds the
/// queue, judges every queued packet. `ruleset` is polled for a new policy about ten times a
/// second. Returns when stopped, or with the error that stopped it; the rules are removed either
/// way.
pub fn run(
    section: &EngineSection,
    ruleset: Arc<ArcSwap<Ruleset>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
) -> Result<(), InlineError> {
    let q = section.queue;
    let queue_err = |source| InlineError::Queue { queue: q, source };
    let sender = RawSender::open().map_err(InlineError::RawSocket)?;
    let before = netfilter_sockets();
    let mut queue = nfq::Queue::open().map_err(queue_err)?;
    // The queue's socket, to wait in poll(2) while nothing is queued (the nfq crate does not
    // expose it): the one netfilter netlink socket `open` added. Anything else (none found, or
    // another thread opened one at the same moment) keeps the sleeping loop.
    let added: Vec<RawFd> = netfilter_sockets().into_iter().filter(|fd| !before.contains(fd)).collect();
    let pollable = match added[..] {
        [fd] => Some(fd),
        _ => None,
    };
    shared.waits_in_poll.store(pollable.is_some(), Ordering::Relaxed);
    queue.bind(q).map_err(queue_err)?;
    queue.set_fail_open(q, section.fail_open).map_err(queue_err)?;
    queue.set_queue_max_len(q, 4096).map_err(queue_err)?;
    queue.set_nonblocking(true);
    // Rules after the queue is bound, so no queued packet finds nobody listening.
    let _rules = if section.install_rules { Some(Rules::install(section)?) } else { None };
    tracing::info!(
        queue = q,
        fail_open = section.fail_open,
        window = section.queued_packets,
        waits_in_poll = pollable.is_some(),
        "inline engine ready (NFQUEUE)"
    );
    ready();

    let mut current = ruleset.load_full();
    let mut engine = Engine::new(Arc::clone(&current), section.engine_config());
    let mut counters = InlineCounters::default();
    let mut out = Vec::with_capacity(2048);
    let mut idle_sleep = Duration::from_micros(20);
    let mut last_tick = Instant::now();
    let mut last_expire = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match queue.recv() {
            Ok(mut msg) => {
                idle_sleep = Duration::from_micros(20);
                let now = now_ns();
                out.clear();
                let (verdict, settled, dst_pair) = {
                    let payload = msg.get_payload();
                    match dissect_ip(payload) {
                        Ok(packet) if shared.mitigations.load().iter().any(|m| m.matches(&packet)) => {
                            // Attack traffic while a mitigation is in force: dropped before the
                            // policy, and settled, so the kernel drops the rest of the connection.
                            counters.mitigation_drops += 1;
                            (PacketVerdict::Drop, true, None)
                        }
                        Ok(packet) => {
                            let verdict = engine.process(&packet, now, &mut Ignore);
                            if verdict != PacketVerdict::Accept {
                                let tcp = packet.tcp();
                                tracing::debug!(
                                    ?verdict,
                                    src = %packet.src,
                                    dst = %packet.dst,
                                    seq = ?tcp.map(|t| t.seq),
                                    ack = ?tcp.map(|t| t.ack),
                                    "packet judged"
                                );
                            }
                            let settled = engine.settled();
                            let pair = match verdict {
                                // Resets for the first packets of a reset flow: if one set missed
                                // a window (a connection blocked mid-stream), a later packet is
                                // often the peer's challenge ACK (RFC 5961), which names the
                                // exact sequence number.
                                PacketVerdict::Reset { .. } => {
                                    let pair = inject::resets(&packet, &mut out);
                                    // Appended after the pair: sent to the packet's destination.
                                    let _ = inject::reset_after(&packet, &mut out);
                                    pair
                                }
                                PacketVerdict::Redirect => match redirect_location(section, &engine, &packet) {
                                    Some(location) => inject::redirect(&packet, &location, &mut out),
                                    None => inject::resets(&packet, &mut out),
                                },
                                _ => None,
                            };
                            (verdict, settled, pair.map(|lens| (lens, packet.src, packet.dst)))
                        }
                        Err(_) => {
                            counters.unreadable += 1;
                            (PacketVerdict::Accept, false, None)
                        }
                    }
                };
                if let Some(((a, b), src, dst)) = dst_pair {
                    // The first packet goes to the packet's source, the second (and a third, after
                    // a packet with payload) to its destination.
                    for (bytes, to) in [(&out[..a], src), (&out[a..a + b], dst), (&out[a + b..], dst)] {
                        if bytes.is_empty() {
                            continue;
                        }
                        match sender.send(bytes, to) {
                            Ok(()) => counters.injected += 1,
                            Err(e) => {
                                counters.inject_failed += 1;
                                tracing::debug!(error = %e, "inject failed");
                            }
                        }
                    }
                }
                let (nf, mark) = match (verdict, settled) {
                    (PacketVerdict::Accept, false) => (nfq::Verdict::Accept, None),
                    (PacketVerdict::Accept, true) => (nfq::Verdict::Repeat, Some(section.mark_allow)),
                    // Keep the connection coming to us for a few more packets (see above).
                    (PacketVerdict::Reset { .. }, _) if !engine.reset_done() => (nfq::Verdict::Drop, None),
                    (_, true) => (nfq::Verdict::Repeat, Some(section.mark_block)),
                    (_, false) => (nfq::Verdict::Drop, None),
                };
                if let Some(mark) = mark {
                    msg.set_nfmark((msg.get_nfmark() & !section.mark_mask) | mark);
                }
                msg.set_verdict(nf);
                queue.verdict(msg).map_err(queue_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match pollable {
                // Nothing queued: sleep until a packet is, or the next tick is due. (Waking every
                // millisecond instead cost about 30 ms of CPU a second on an idle queue, taken
                // from the forwarding it shares the cores with.)
                Some(fd) => {
                    let _ = bawaba_udp::wait_readable(&[fd], TICK.saturating_sub(last_tick.elapsed()));
                }
                // Without the socket: back off up to 1 ms, so a busy queue never sleeps.
                None => {
                    std::thread::sleep(idle_sleep);
                    idle_sleep = (idle_sleep * 2).min(Duration::from_millis(1));
                }
            },
            // The kernel dropped messages because our socket buffer was full: counted by the
            // kernel (fail-open lets them through); keep going.
            Err(e) if e.raw_os_error() == Some(105) => {}
            Err(e) => return Err(queue_err(e)),
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let latest = ruleset.load_full();
            if !Arc::ptr_eq(&latest, &current) {
                current = Arc::clone(&latest);
                counters.reloads += 1;
                if section.rejudge_on_reload {
                    let changed = engine.set_ruleset_and_rejudge(latest);
                    tracing::info!(changed = changed.len(), "inline engine: new policy in force");
                    if !changed.is_empty() {
                        // Decided connections carry the allow or block connmark and are no longer
                        // queued: mark those whose verdict changed for another look, so that their
                        // next packet is queued and gets the new verdict.
                        let marks = (section.mark_allow | section.mark_block, section.mark_mask);
                        std::thread::spawn(move || requeue_connections(&changed, marks));
                    }
                } else {
                    engine.set_ruleset(latest);
                    tracing::info!("inline engine: new policy in force (tracked flows keep their verdict)");
                }
            }
            if last_expire.elapsed() >= Duration::from_millis(500) {
                last_expire = Instant::now();
                engine.expire(now_ns(), &mut Ignore);
                shared.publish(&engine, &counters);
            }
        }
    }
    let _ = queue.unbind(q);
    shared.publish(&engine, &counters);
    Ok(())
}

/// Sets the "queue again" connmark on connections (client, server, protocol) through ctnetlink;
/// what the kernel answered is logged.
fn requeue_connections(connections: &[Connection], (mark, mask): (u32, u32)) {
    let result = crate::conntrack::Conntrack::open().map(|mut ct| ct.set_marks(connections, mark, mask));
    match result {
        Ok(done) if done.failed == 0 => tracing::info!(
            queued_again = done.marked,
            already_closed = done.gone,
            "connections with a new verdict marked for another look"
        ),
        Ok(done) => tracing::warn!(
            queued_again = done.marked,
            already_closed = done.gone,
            failed = done.failed,
            error = %io::Error::from_raw_os_error(done.first_error.unwrap_or(0)),
            "some connections with a new verdict keep the verdict the kernel holds"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            count = connections.len(),
            "conntrack unreachable: connections with a new verdict keep the verdict the kernel holds"
        ),
    }
}

/// The block page address for a redirected flow, naming its order.
fn redirect_location(
    section: &EngineSection,
    engine: &Engine,
    packet: &bawaba_wire::packet::Packet<'_>,
) -> Option<String> {
    let base = section.block_page_url.as_deref()?;
    let (key, _) = FlowKey::of(packet);
    let state = engine.flow_state(&key)?;
    let order = state.order().and_then(|id| engine.ruleset().orders().iter().find(|o| o.id == id))?;
    Some(inject::block_page_location(base, &order.reference, state.name().unwrap_or("")))
}
