//! What the engine counts: packets by verdict, flows by protocol and by decision, blocks by
//! category and by order. No payload and no per-user record: counts only.

use std::collections::BTreeMap;

use bawaba_policy::{Category, OrderId};
use serde::Serialize;

use crate::verdict::{AppProtocol, FlowAction};

/// Counters since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Packets handed to the engine.
    pub packets: u64,
    /// Bytes (IP length) handed to the engine.
    pub bytes: u64,
    /// Packets let through.
    pub packets_accepted: u64,
    /// Packets dropped.
    pub packets_dropped: u64,
    /// Packets answered with TCP resets.
    pub packets_reset: u64,
    /// Packets answered with an HTTP redirect to the block page.
    pub packets_redirected: u64,
    /// Non-first IP fragments (judged by address only).
    pub fragments: u64,
    /// Flows seen, by application protocol once recognised (`unknown` if never).
    pub flows_by_protocol: BTreeMap<&'static str, u64>,
    /// Flows decided, by action.
    pub flows_by_action: BTreeMap<&'static str, u64>,
    /// Flows (and DNS queries) blocked, by the order's category.
    pub blocked_by_category: BTreeMap<&'static str, u64>,
    /// Flows (and DNS queries) blocked, by order id.
    pub blocked_by_order: BTreeMap<i64, u64>,
    /// Flows whose ClientHello carried Encrypted Client Hello.
    pub ech_flows: u64,
    /// DNS queries read on port 53.
    pub dns_queries: u64,
    /// DNS queries dropped because their name is blocked.
    pub dns_queries_blocked: u64,
    /// Flows judged while their first bytes were still incomplete because no reassembly buffer
    /// was free or the stream had too many holes.
    pub reassembly_exhausted: u64,
    /// QUIC Initial packets that failed to decrypt or parse.
    pub quic_undecryptable: u64,
    /// Flows whose verdict changed when a new ruleset was loaded.
    pub rejudged_changed: u64,
}

impl Counters {
    pub(crate) fn flow_protocol(&mut self, app: AppProtocol) {
        *self.flows_by_protocol.entry(app.as_str()).or_default() += 1;
    }

    pub(crate) fn flow_decided(&mut self, action: FlowAction, block: Option<(OrderId, Category)>) {
        *self.flows_by_action.entry(action.as_str()).or_default() += 1;
        if let Some((order, category)) = block {
            self.blocked(order, category);
        }
    }

    pub(crate) fn blocked(&mut self, order: OrderId, category: Category) {
        *self.blocked_by_category.entry(category.as_str()).or_default() += 1;
        *self.blocked_by_order.entry(order.0).or_default() += 1;
    }
}

impl Counters {
    /// Appends the counters in the Prometheus text format (names `bawaba_engine_*`; labels from
    /// bounded sets only: verdicts, actions, protocols, categories, order ids).
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        fn family(out: &mut String, name: &str, help: &str, kind: &str) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        family(out, "bawaba_engine_packets_total", "Packets judged, by verdict.", "counter");
        for (verdict, n) in [
            ("accept", self.packets_accepted),
            ("drop", self.packets_dropped),
            ("reset", self.packets_reset),
            ("redirect", self.packets_redirected),
        ] {
            let _ = writeln!(out, "bawaba_engine_packets_total{{verdict=\"{verdict}\"}} {n}");
        }
        family(out, "bawaba_engine_bytes_total", "IP bytes judged.", "counter");
        let _ = writeln!(out, "bawaba_engine_bytes_total {}", self.bytes);
        family(out, "bawaba_engine_flows_decided_total", "Flows decided, by action.", "counter");
        for (action, n) in &self.flows_by_action {
            let _ = writeln!(out, "bawaba_engine_flows_decided_total{{action=\"{action}\"}} {n}");
        }
        family(out, "bawaba_engine_flows_ended_total", "Flows ended, by recognised protocol.", "counter");
        for (protocol, n) in &self.flows_by_protocol {
            let _ = writeln!(out, "bawaba_engine_flows_ended_total{{protocol=\"{protocol}\"}} {n}");
        }
        family(out, "bawaba_engine_blocked_total", "Flows and DNS queries blocked, by category.", "counter");
        for (category, n) in &self.blocked_by_category {
            let _ = writeln!(out, "bawaba_engine_blocked_total{{category=\"{category}\"}} {n}");
        }
        family(out, "bawaba_engine_blocked_by_order_total", "Flows and DNS queries blocked, by order id.", "counter");
        for (order, n) in &self.blocked_by_order {
            let _ = writeln!(out, "bawaba_engine_blocked_by_order_total{{order=\"{order}\"}} {n}");
        }
        for (name, help, n) in [
            ("bawaba_engine_fragments_total", "Non-first IP fragments, judged by address.", self.fragments),
            ("bawaba_engine_ech_flows_total", "Flows offering Encrypted Client Hello.", self.ech_flows),
            ("bawaba_engine_dns_queries_total", "DNS queries read on port 53.", self.dns_queries),
            ("bawaba_engine_dns_queries_blocked_total", "DNS queries dropped.", self.dns_queries_blocked),
            (
                "bawaba_engine_reassembly_exhausted_total",
                "Flows judged on incomplete first bytes (no buffer free or too many holes).",
                self.reassembly_exhausted,
            ),
            ("bawaba_engine_quic_undecryptable_total", "QUIC Initials that failed to open.", self.quic_undecryptable),
            ("bawaba_engine_rejudged_changed_total", "Flows whose verdict changed on a reload.", self.rejudged_changed),
        ] {
            family(out, name, help, "counter");
            let _ = writeln!(out, "{name} {n}");
        }
    }
}
