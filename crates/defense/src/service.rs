//! The whole loop in one process: flow records from the collector feed the detector; its events
//! go to the mitigation planner; the planner's routes go to the BGP speaker. Attacks are logged,
//! kept for the API, and appended as JSON lines to an attack log file.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bawaba_bgp::wire::{Afi, Safi};
use bawaba_bgp::{PeerConfig, Route, Speaker};
use bawaba_ddos::{Attack, DdosConfig, Decision, Detector, Event, Mitigator};
use bawaba_flow::FlowRecord;
use serde::{Deserialize, Serialize};

use crate::collector::{Collector, CollectorConfig, CollectorStats, RecordSink};

/// `[bgp]`: the routers mitigation routes are announced to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConfig {
    /// Our AS number.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The routers. Empty: detection and planning run, nothing is announced.
    pub peers: Vec<BgpPeer>,
}

/// One router. Its `Debug` output hides the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpPeer {
    /// Address and port (179 normally).
    pub address: SocketAddr,
    /// Its AS number.
    pub remote_as: u32,
    /// Hold time proposed, seconds.
    #[serde(default = "default_hold")]
    pub hold_time: u16,
    /// Announce FlowSpec routes to it (it must support them).
    #[serde(default = "yes")]
    pub flowspec: bool,
    /// TCP MD5 signature password (RFC 2385), 1 to 80 bytes, the same as the router's for our
    /// address. Missing: no authentication.
    #[serde(default, deserialize_with = "md5_password")]
    pub md5_password: Option<String>,
}

impl std::fmt::Debug for BgpPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let BgpPeer { address, remote_as, hold_time, flowspec, md5_password } = self;
        f.debug_struct("BgpPeer")
            .field("address", address)
            .field("remote_as", remote_as)
            .field("hold_time", hold_time)
            .field("flowspec", flowspec)
            .field("md5_password", &md5_password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A password the kernel takes (1 to 80 bytes), refused when the config is read rather than on
/// every connection attempt.
fn md5_password<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let password = String::deserialize(d)?;
    bawaba_bgp::md5::check_password(&password).map_err(|e| serde::de::Error::custom(format!("md5_password: {e}")))?;
    Ok(Some(password))
}

fn default_hold() -> u16 {
    90
}

fn yes() -> bool {
    true
}

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig { local_as: 64512, router_id: Ipv4Addr::new(198, 18, 0, 1), peers: Vec::new() }
    }
}

impl BgpConfig {
    /// The speaker's per-peer settings.
    pub fn peer_configs(&self) -> Vec<PeerConfig> {
        self.peers
            .iter()
            .map(|p| {
                let mut families = vec![(Afi::IPV4, Safi::UNICAST), (Afi::IPV6, Safi::UNICAST)];
                if p.flowspec {
                    families.extend([(Afi::IPV4, Safi::FLOWSPEC), (Afi::IPV6, Safi::FLOWSPEC)]);
                }
                PeerConfig {
                    address: p.address,
                    remote_as: p.remote_as,
                    local_as: self.local_as,
                    router_id: self.router_id,
                    hold_time: p.hold_time,
                    families,
                    backoff: Duration::from_secs(1),
                    max_backoff: Duration::from_secs(30),
                    md5_password: p.md5_password.clone(),
                }
            })
            .collect()
    }
}

/// What the API and metrics read: attacks seen, decisions made.
#[derive(Debug, Default, Serialize)]
pub struct DefenseState {
    /// Attacks in progress and the last ended ones (at most 1,000), newest last.
    pub attacks: Vec<Attack>,
    /// Routes announced now.
    pub routes: usize,
    /// The mitigations in force (or planned, in a dry run).
    pub mitigations: Vec<MitigationRow>,
    /// Whether routes are only planned, not announced.
    pub dry_run: bool,
    /// Decisions taken so far, by kind (announce, withdraw, refused, dry-run).
    pub decisions: std::collections::BTreeMap<&'static str, u64>,
}

/// One mitigation in force, for the API and the console.
#[derive(Debug, Clone, Serialize)]
pub struct MitigationRow {
    /// `attack` (with its id) or `manual`.
    pub origin: bawaba_ddos::Origin,
    /// Its routes, one line each.
    pub routes: Vec<String>,
    /// Since (Unix milliseconds).
    pub since_ms: u64,
    /// The attack's vector or the operator's reason.
    pub reason: String,
}

/// An operator's request for a manual mitigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRequest {
    /// The destination (a /32 or /128, or a prefix within the rails).
    pub prefix: bawaba_bgp::Prefix,
    /// Blackhole or FlowSpec.
    pub kind: ManualKind,
    /// Withdraw the mitigation announced with the same destination and kind.
    pub withdraw: bool,
    /// Why (kept with the mitigation).
    pub reason: String,
}

/// What a manual mitigation announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualKind {
    /// A blackhole route with 65535:666.
    Blackhole,
    /// A FlowSpec rule for traffic to the prefix, optionally only these protocols and source
    /// ports, with the configured action.
    FlowSpec {
        /// IP protocol numbers (empty: all).
        protocols: Vec<u8>,
        /// Source ports (empty: all).
        source_ports: Vec<u16>,
    },
}

type Reply = std::sync::mpsc::SyncSender<Decision>;

/// The detector and planner behind the collector.
struct DetectSink {
    detector: Detector,
    mitigator: Mitigator,
    speaker: Option<Arc<Speaker>>,
    state: Arc<Mutex<DefenseState>>,
    log: Option<std::fs::File>,
    recorder: Option<AttackRecorder>,
    on_routes: Option<RoutesHook>,
    requests: std::sync::mpsc::Receiver<(ManualRequest, Reply)>,
}

/// Called on the collector's thread when an attack starts or ends, with the decisions taken (one
/// line each): how `bawaba serve` keeps attack records in its store.
pub type AttackRecorder = Box<dyn FnMut(&Attack, &[String]) + Send>;

/// Called on the collector's thread with the routes announced now, whenever they change: how
/// `bawaba serve` hands drop rules to its inline engine (`[ddos.mitigation] engine_drop`).
pub type RoutesHook = Box<dyn FnMut(&[Route]) + Send>;

impl RecordSink for DetectSink {
    fn record(&mut self, _exporter: IpAddr, record: &FlowRecord, now_ms: u64) {
        self.detector.record(record, now_ms);
    }

    fn records(&mut self, _exporter: IpAddr, records: &[FlowRecord], now_ms: u64) {
        self.detector.record_all(records, now_ms);
    }

    fn tick(&mut self, now_ms: u64) {
        let events = self.detector.tick(now_ms);
        let mut changed = false;
        while let Ok((request, reply)) = self.requests.try_recv() {
            let decision = self.manual(&request, now_ms);
            changed |= matches!(decision, Decision::Announce { .. } | Decision::Withdraw { .. });
            let _ = reply.try_send(decision);
        }
        if events.is_empty() && !changed {
            return;
        }
        for event in &events {
            let decisions = self.mitigator.on_event(event, now_ms);
            self.note(event, &decisions);
            changed |= decisions.iter().any(|d| matches!(d, Decision::Announce { .. } | Decision::Withdraw { .. }));
        }
        let routes = self.mitigator.routes();
        if changed {
            if let Some(hook) = &mut self.on_routes {
                hook(&routes);
            }
            if let Some(speaker) = &self.speaker {
                speaker.set_routes(routes.clone());
            }
        }
        let rows: Vec<MitigationRow> = self
            .mitigator
            .mitigations()
            .into_iter()
            .map(|m| MitigationRow {
                origin: m.origin,
                routes: m.routes.iter().map(bawaba_ddos::route_text).collect(),
                since_ms: m.since_ms,
                reason: m.reason,
            })
            .collect();
        if let Ok(mut s) = self.state.lock() {
            s.routes = routes.len();
            s.mitigations = rows;
        }
    }
}

impl DetectSink {
    /// Carries out an operator's request under the same rails as the detector's routes.
    fn manual(&mut self, request: &ManualRequest, now_ms: u64) -> Decision {
        let route = match &request.kind {
            ManualKind::Blackhole => self.mitigator.blackhole_route(request.prefix),
            ManualKind::FlowSpec { protocols, source_ports } => {
                self.mitigator.flowspec_route(request.prefix, protocols.clone(), source_ports.clone())
            }
        };
        let decision = if request.withdraw {
            self.mitigator.manual_withdraw(&route, now_ms)
        } else {
            self.mitigator.manual(route, now_ms, &request.reason)
        };
        tracing::info!(decision = %decision, reason = %request.reason, "manual mitigation");
        if let Some(log) = &mut self.log {
            let line = serde_json::json!({ "manual": request.reason, "decisions": [decision.to_string()] });
            let _ = writeln!(log, "{line}");
        }
        if let Ok(mut s) = self.state.lock() {
            let kind = match &decision {
                Decision::Announce { .. } => "announce",
                Decision::Withdraw { .. } => "withdraw",
                Decision::Refused { .. } => "refused",
                Decision::DryRun { .. } => "dry-run",
            };
            *s.decisions.entry(kind).or_default() += 1;
        }
        decision
    }

    fn note(&mut self, event: &Event, decisions: &[Decision]) {
        let attack = event.attack();
        match event {
            Event::Started(_) => tracing::warn!(
                target_ip = %attack.target,
                vector = ?attack.vector,
                pps = attack.last_pps,
                bps = attack.last_bps,
                "attack started"
            ),
            Event::Ended(_) => tracing::warn!(target_ip = %attack.target, peak_pps = attack.peak_pps, "attack ended"),
            Event::Updated(_) => {}
        }
        for d in decisions {
            tracing::info!(decision = %d, "mitigation");
        }
        if !matches!(event, Event::Updated(_)) {
            let lines: Vec<String> = decisions.iter().map(ToString::to_string).collect();
            if let Some(log) = &mut self.log {
                let line = serde_json::json!({ "event": event, "decisions": lines });
                let _ = writeln!(log, "{line}");
            }
            if let Some(recorder) = &mut self.recorder {
                recorder(attack, &lines);
            }
        }
        if let Ok(mut s) = self.state.lock() {
            for d in decisions {
                let kind = match d {
                    Decision::Announce { .. } => "announce",
                    Decision::Withdraw { .. } => "withdraw",
                    Decision::Refused { .. } => "refused",
                    Decision::DryRun { .. } => "dry-run",
                };
                *s.decisions.entry(kind).or_default() += 1;
            }
            match s.attacks.iter_mut().find(|a| a.id == attack.id) {
                Some(a) => *a = attack.clone(),
                None => s.attacks.push(attack.clone()),
            }
            if s.attacks.len() > 1000 {
                let drop = s.attacks.len() - 1000;
                s.attacks.drain(..drop);
            }
        }
    }
}

/// The running service.
pub struct Defense {
    collector: Collector,
    speaker: Option<Arc<Speaker>>,
    state: Arc<Mutex<DefenseState>>,
    requests: std::sync::mpsc::SyncSender<(ManualRequest, Reply)>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefenseError {
    /// The `[ddos]` section is invalid.
    #[error("[ddos]: {0}")]
    Config(#[from] bawaba_ddos::ConfigError),
    /// A collector socket could not be bound.
    #[error("flow collector: {0}")]
    Io(#[from] std::io::Error),
}

impl Defense {
    /// Starts the BGP sessions (on the current tokio runtime), the detector and the collector.
    /// `attack_log`: a file attack events are appended to as JSON lines.
    pub fn start(
        flow: &CollectorConfig,
        ddos: &DdosConfig,
        bgp: &BgpConfig,
        attack_log: Option<PathBuf>,
    ) -> Result<Defense, DefenseError> {
        Defense::start_with(flow, ddos, bgp, attack_log, None, None)
    }

    /// As [`Defense::start`], also handing every attack start and end to `recorder`, and the
    /// routes announced to `on_routes` whenever they change.
    pub fn start_with(
        flow: &CollectorConfig,
        ddos: &DdosConfig,
        bgp: &BgpConfig,
        attack_log: Option<PathBuf>,
        recorder: Option<AttackRecorder>,
        on_routes: Option<RoutesHook>,
    ) -> Result<Defense, DefenseError> {
        let detector = Detector::new(&ddos.detection)?;
        let mitigator = Mitigator::new(&ddos.mitigation, detector.protected().clone())?;
        let speaker = (!bgp.peers.is_empty()).then(|| Arc::new(Speaker::start(bgp.peer_configs())));
        let state = Arc::new(Mutex::new(DefenseState { dry_run: mitigator.dry_run(), ..DefenseState::default() }));
        let log = attack_log.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        let (requests, received) = std::sync::mpsc::sync_channel(16);
        let sink = DetectSink {
            detector,
            mitigator,
            speaker: speaker.clone(),
            state: Arc::clone(&state),
            log,
            recorder,
            on_routes,
            requests: received,
        };
        let collector = Collector::start(flow, sink)?;
        Ok(Defense { collector, speaker, state, requests })
    }

    /// A handle that submits manual mitigations to the running planner (which checks them
    /// against the same rails as its own routes).
    pub fn manual_handle(&self) -> ManualHandle {
        ManualHandle { requests: self.requests.clone() }
    }

    /// What the console and API show: state, collector counters and exporters, BGP sessions,
    /// and the manual-mitigation handle. It does not keep the BGP sessions alive.
    pub fn view(&self) -> DefenseView {
        DefenseView {
            state: Arc::clone(&self.state),
            stats: self.collector.stats(),
            speaker: self.speaker.as_ref().map(Arc::downgrade),
            manual: self.manual_handle(),
        }
    }

    /// The collector's bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.collector.local_addrs()
    }

    /// Collector counters.
    pub fn collector_stats(&self) -> Arc<CollectorStats> {
        self.collector.stats()
    }

    /// Attacks and decisions.
    pub fn state(&self) -> Arc<Mutex<DefenseState>> {
        Arc::clone(&self.state)
    }

    /// BGP sessions' status.
    pub fn bgp_status(&self) -> Vec<bawaba_bgp::PeerStatus> {
        self.speaker.as_ref().map(|s| s.status()).unwrap_or_default()
    }

    /// A handle that renders the collector's and the defense state's metrics (Prometheus text);
    /// it does not keep the BGP sessions alive.
    pub fn metrics(&self) -> DefenseMetrics {
        DefenseMetrics { stats: self.collector.stats(), state: Arc::clone(&self.state) }
    }

    /// Stops collecting, then withdraws every route and closes the BGP sessions (Cease).
    pub async fn shutdown(self) {
        self.collector.stop();
        if let Some(speaker) = self.speaker {
            match Arc::try_unwrap(speaker) {
                Ok(speaker) => speaker.shutdown(Duration::from_secs(5)).await,
                Err(speaker) => {
                    speaker.set_routes(Vec::<Route>::new());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// See [`Defense::view`].
#[derive(Clone)]
pub struct DefenseView {
    state: Arc<Mutex<DefenseState>>,
    stats: Arc<CollectorStats>,
    speaker: Option<std::sync::Weak<Speaker>>,
    /// Submits manual mitigations.
    pub manual: ManualHandle,
}

impl DefenseView {
    /// Everything as JSON: `attacks`, `mitigations`, `routes`, `decisions`, `dry_run`,
    /// `exporters`, `bgp`, `collector` (datagrams, records, drops).
    pub fn to_json(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let mut v = match self.state.lock() {
            Ok(s) => serde_json::to_value(&*s).unwrap_or_default(),
            Err(_) => serde_json::json!({}),
        };
        v["exporters"] = match self.stats.exporters.lock() {
            Ok(e) => serde_json::to_value(&*e).unwrap_or_default(),
            Err(_) => serde_json::json!([]),
        };
        let bgp = self.speaker.as_ref().and_then(std::sync::Weak::upgrade).map(|s| s.status()).unwrap_or_default();
        v["bgp"] = serde_json::to_value(bgp).unwrap_or_default();
        v["collector"] = serde_json::json!({
            "datagrams": self.stats.datagrams.load(Relaxed),
            "records": self.stats.records.load(Relaxed),
            "socket_drops": self.stats.socket_drops.load(Relaxed),
            "unknown_sampling": self.stats.unknown_sampling.load(Relaxed),
        });
        v
    }
}

/// Submits manual mitigations; see [`Defense::manual_handle`].
#[derive(Clone)]
pub struct ManualHandle {
    requests: std::sync::mpsc::SyncSender<(ManualRequest, Reply)>,
}

impl ManualHandle {
    /// Hands `request` to the planner and waits (blocking, up to 5 s) for its decision: the
    /// planner runs on the collector's thread and takes requests every ~100 ms.
    pub fn submit(&self, request: ManualRequest) -> Result<Decision, String> {
        let (reply, decision) = std::sync::mpsc::sync_channel(1);
        self.requests
            .try_send((request, reply))
            .map_err(|_| "the mitigation planner is busy or stopped".to_string())?;
        decision.recv_timeout(Duration::from_secs(5)).map_err(|_| "the mitigation planner did not answer".to_string())
    }
}

/// Renders the defense counters; see [`Defense::metrics`].
#[derive(Clone)]
pub struct DefenseMetrics {
    stats: Arc<CollectorStats>,
    state: Arc<Mutex<DefenseState>>,
}

impl DefenseMetrics {
    /// Appends the Prometheus text.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        self.stats.render_prometheus(out);
        if let Ok(s) = self.state.lock() {
            let active = s.attacks.iter().filter(|a| a.ended_ms.is_none()).count();
            let _ = writeln!(
                out,
                "# HELP bawaba_ddos_attacks_active Attacks in progress.\n# TYPE bawaba_ddos_attacks_active gauge\nbawaba_ddos_attacks_active {active}"
            );
            let _ = writeln!(
                out,
                "# HELP bawaba_ddos_routes Mitigation routes announced now.\n# TYPE bawaba_ddos_routes gauge\nbawaba_ddos_routes {}",
                s.routes
            );
            let _ = writeln!(out, "# HELP bawaba_ddos_decisions_total Mitigation decisions, by kind.\n# TYPE bawaba_ddos_decisions_total counter");
            for (kind, n) in &s.decisions {
                let _ = writeln!(out, "bawaba_ddos_decisions_total{{kind=\"{kind}\"}} {n}");
            }
        }
    }
}

#[cfg(test)]
mod bgp_peer_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn md5_password_is_optional_checked_and_never_shown() {
        let peer: BgpPeer =
            serde_json::from_value(serde_json::json!({ "address": "198.18.0.2:179", "remote_as": 64500 })).unwrap();
        assert_eq!(peer.md5_password, None);

        let json = serde_json::json!({ "address": "198.18.0.2:179", "remote_as": 64500, "md5_password": "s3cret!" });
        let peer: BgpPeer = serde_json::from_value(json).unwrap();
        let bgp = BgpConfig { peers: vec![peer], ..BgpConfig::default() };
        let configs = bgp.peer_configs();
        assert_eq!(configs[0].md5_password.as_deref(), Some("s3cret!"));
        for shown in [format!("{bgp:?}"), format!("{configs:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }

        for bad in [String::new(), "x".repeat(81)] {
            let json = serde_json::json!({ "address": "198.18.0.2:179", "remote_as": 64500, "md5_password": bad });
            let e = serde_json::from_value::<BgpPeer>(json).unwrap_err().to_string();
            assert!(e.contains("md5_password") && e.contains("1 to 80 bytes"), "{e}");
        }
    }
}
