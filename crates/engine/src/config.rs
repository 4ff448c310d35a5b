//! `[engine]` in the configuration file.

use serde::Deserialize;

use crate::engine::EngineConfig;
use crate::flow::Timeouts;

/// Where the engine gets its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Not started.
    Off,
    /// Inline in a routed gateway: the first packets of each connection are queued to bawaba
    /// with the iptables NFQUEUE target; bawaba accepts, drops or resets.
    Nfqueue,
    /// Passive on a mirror port or bridge (AF_PACKET TPACKET_V3): blocked TCP flows are reset
    /// in both directions with injected frames; nothing can be dropped.
    Afpacket,
}

/// `[engine]`: the packet enforcement engine under `bawaba serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// `off`, `nfqueue` or `afpacket`.
    pub mode: Mode,
    /// `afpacket`: the interface to read (and inject resets on).
    pub interface: Option<String>,
    /// `afpacket`: PACKET_FANOUT_HASH group id, so several processes share one interface.
    pub fanout_group: Option<u16>,
    /// NFQUEUE queue number.
    pub queue: u16,
    /// Let packets through when bawaba is not running or its queue is full (`--queue-bypass`
    /// and the kernel's fail-open flag); false: they are dropped.
    pub fail_open: bool,
    /// Packets of each connection (both directions) queued to bawaba before the kernel stops
    /// queueing it (iptables `connbytes`); decided connections stop earlier through a connmark.
    pub queued_packets: u32,
    /// Install the iptables/ip6tables rules on start and remove them on exit. False: the
    /// operator installs equivalent rules.
    pub install_rules: bool,
    /// The built-in chain the rules hook into (`FORWARD` on a routed gateway).
    pub chain: String,
    /// Connmark bits for "decided: allow" and "decided: block", and the mask covering both.
    pub mark_allow: u32,
    /// See `mark_allow`.
    pub mark_block: u32,
    /// See `mark_allow`.
    pub mark_mask: u32,
    /// Where a blocked plain-HTTP request is redirected (HTTP 302, with `order` and `host` query
    /// parameters added). Unset: blocked HTTP is reset like TLS.
    pub block_page_url: Option<String>,
    /// Most flows tracked.
    pub max_flows: usize,
    /// Client packets with data inspected before an unrecognised flow is allowed.
    pub inspect_packets: u8,
    /// Reassembly buffers (4 KiB each) for first messages spanning several packets.
    pub reassembly_buffers: usize,
    /// Judge tracked flows again when a new policy is loaded: newly blocked ones are cut, newly
    /// allowed ones go on.
    pub rejudge_on_reload: bool,
    /// Idle timeout of open TCP flows, in seconds.
    pub tcp_timeout_secs: u64,
    /// Idle timeout of UDP flows, in seconds.
    pub udp_timeout_secs: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        let engine = EngineConfig::default();
        EngineSection {
            mode: Mode::Off,
            interface: None,
            fanout_group: None,
            queue: 0,
            fail_open: true,
            queued_packets: 12,
            install_rules: true,
            chain: "FORWARD".into(),
            mark_allow: 0x1000_0000,
            mark_block: 0x2000_0000,
            mark_mask: 0x3000_0000,
            block_page_url: None,
            max_flows: engine.max_flows,
            inspect_packets: engine.inspect_packets,
            reassembly_buffers: engine.reassembly_buffers,
            rejudge_on_reload: engine.rejudge_on_reload,
            tcp_timeout_secs: engine.timeouts.tcp_open_ns / 1_000_000_000,
            udp_timeout_secs: engine.timeouts.udp_ns / 1_000_000_000,
        }
    }
}

impl EngineSection {
    /// The engine core's settings.
    pub fn engine_config(&self) -> EngineConfig {
        let defaults = Timeouts::default();
        EngineConfig {
            max_flows: self.max_flows,
            timeouts: Timeouts {
                tcp_open_ns: self.tcp_timeout_secs.saturating_mul(1_000_000_000),
                udp_ns: self.udp_timeout_secs.saturating_mul(1_000_000_000),
                ..defaults
            },
            inspect_packets: self.inspect_packets,
            reassembly_buffers: self.reassembly_buffers,
            rejudge_on_reload: self.rejudge_on_reload,
        }
    }
}
