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

/// One router.
#[derive(Debug, Clone, Deserialize)]
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
    /// Decisions taken so far, by kind (announce, withdraw, refused, dry-run).
    pub decisions: std::collections::BTreeMap<&'static str, u64>,
}

/// The detector and planner behind the collector.
struct DetectSink {
    detector: Detector,
    mitigator: Mitigator,
    speaker: Option<Arc<Speaker>>,
    state: Arc<Mutex<DefenseState>>,
    log: Option<std::fs::File>,
}

impl RecordSink for DetectSink {
    fn record(&mut self, _exporter: IpAddr, record: &FlowRecord, now_ms: u64) {
        self.detector.record(record, now_ms);
    }

    fn tick(&mut self, now_ms: u64) {
        let events = self.detector.tick(now_ms);
        if events.is_empty() {
            return;
        }
        let mut changed = false;
        for event in &events {
            let decisions = self.mitigator.on_event(event, now_ms);
            self.note(event, &decisions);
            changed |= decisions.iter().any(|d| matches!(d, Decision::Announce { .. } | Decision::Withdraw { .. }));
        }
        let routes = self.mitigator.routes();
        if changed {
            if let Some(speaker) = &self.speaker {
                speaker.set_routes(routes.clone());
            }
        }
        if let Ok(mut s) = self.state.lock() {
            s.routes = routes.len();
        }
    }
}

impl DetectSink {
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
        if let Some(log) = &mut self.log {
            if !matches!(event, Event::Updated(_)) {
                let line = serde_json::json!({
                    "event": event,
                    "decisions": decisions.iter().map(ToString::to_string).collect::<Vec<_>>(),
                });
                let _ = writeln!(log, "{line}");
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
        let detector = Detector::new(&ddos.detection)?;
        let mitigator = Mitigator::new(&ddos.mitigation, detector.protected().clone())?;
        let speaker = (!bgp.peers.is_empty()).then(|| Arc::new(Speaker::start(bgp.peer_configs())));
        let state = Arc::new(Mutex::new(DefenseState::default()));
        let log = attack_log.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        let sink = DetectSink { detector, mitigator, speaker: speaker.clone(), state: Arc::clone(&state), log };
        let collector = Collector::start(flow, sink)?;
        Ok(Defense { collector, speaker, state })
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
