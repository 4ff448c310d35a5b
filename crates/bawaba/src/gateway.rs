//! The console's view of the running `bawaba serve`: the policy in force, publishing (and
//! loading what was published right away), the enforcement points and their counters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bawaba_console::{Decided, EnforcementPoint, Gateway, HookError, MitigationRequest, Published};
use bawaba_dns::metrics::DnsMetrics;
use bawaba_policy::Ruleset;

use crate::config::Config;

/// Hooks of one `bawaba serve` process.
pub struct ServeGateway {
    pub config: Config,
    pub ruleset: Arc<ArcSwap<Ruleset>>,
    pub metrics: Arc<DnsMetrics>,
    pub engine: Option<Arc<bawaba_engine::nfqueue::Shared>>,
    pub defense: Option<bawaba_defense::service::DefenseMetrics>,
    pub defense_view: Option<bawaba_defense::service::DefenseView>,
    /// Wakes the reload loop.
    pub reload: Arc<tokio::sync::Notify>,
    pub dns_listen: Vec<std::net::SocketAddr>,
}

/// Every component's counters in the Prometheus text format.
pub fn render_metrics(
    metrics: &DnsMetrics,
    engine: Option<&bawaba_engine::nfqueue::Shared>,
    defense: Option<&bawaba_defense::service::DefenseMetrics>,
) -> String {
    let mut body = metrics.render();
    if let Some(engine) = engine {
        engine.render_prometheus(&mut body);
    }
    if let Some(defense) = defense {
        defense.render_prometheus(&mut body);
    }
    body
}

impl Gateway for ServeGateway {
    fn ruleset(&self) -> Arc<Ruleset> {
        self.ruleset.load_full()
    }

    fn publish(&self, actor: &str) -> Result<Published, HookError> {
        let db = self.config.database();
        let mut store = bawaba_store::Store::open(&db, self.config.store_config())?;
        let p = crate::policy_files::publish_bundle(&self.config, &mut store, actor).map_err(|e| format!("{e:#}"))?;
        tracing::info!(version = p.snapshot.version, actor, "policy published from the console");
        // Load it now rather than at the next poll, and return once it is in force.
        self.reload.notify_one();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.metrics.policy().0 < p.snapshot.version && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Published {
            version: p.snapshot.version,
            file: p.publication.file,
            orders: p.snapshot.orders.len(),
            rules: p.snapshot.rules.len(),
            allow_entries: p.snapshot.allow.len(),
        })
    }

    fn points(&self) -> Vec<EnforcementPoint> {
        let (version, loaded_at) = self.metrics.policy();
        let mut points = Vec::new();
        if self.config.dns.enabled {
            let mut counters: BTreeMap<String, u64> = BTreeMap::new();
            counters.insert("queries".into(), self.metrics.queries());
            for (cat, n) in self.metrics.blocked_by_category() {
                if n > 0 {
                    counters.insert(format!("blocked_{cat}"), n);
                }
            }
            let listen: Vec<String> = self.dns_listen.iter().map(ToString::to_string).collect();
            points.push(EnforcementPoint {
                site: Some(self.config.serve.site.clone()),
                reported_at: None,
                name: format!("dns {}", listen.join(" ")),
                kind: "dns".into(),
                bundle_version: Some(version),
                loaded_at: Some(loaded_at),
                counters,
                blocked_by_order: self.metrics.blocked_by_order(),
            });
        }
        if let Some(engine) = &self.engine {
            let c = engine.engine.lock().map(|c| c.clone()).unwrap_or_default();
            let mut counters: BTreeMap<String, u64> = BTreeMap::new();
            counters.insert("packets".into(), c.packets);
            counters.insert("flows_active".into(), engine.active_flows.load(std::sync::atomic::Ordering::Relaxed));
            for (cat, n) in &c.blocked_by_category {
                counters.insert(format!("blocked_{cat}"), *n);
            }
            points.push(EnforcementPoint {
                site: Some(self.config.serve.site.clone()),
                reported_at: None,
                name: format!("engine {:?}", self.config.engine.mode).to_lowercase(),
                kind: "engine".into(),
                bundle_version: Some(version),
                loaded_at: Some(loaded_at),
                counters,
                blocked_by_order: c.blocked_by_order.clone(),
            });
        }
        if self.defense.is_some() {
            points.push(EnforcementPoint {
                site: Some(self.config.serve.site.clone()),
                reported_at: None,
                name: "defense (flow collector, ddos, bgp)".into(),
                kind: "defense".into(),
                bundle_version: None,
                loaded_at: None,
                counters: BTreeMap::new(),
                blocked_by_order: BTreeMap::new(),
            });
        }
        points
    }

    fn prometheus(&self) -> String {
        render_metrics(&self.metrics, self.engine.as_deref(), self.defense.as_ref())
    }

    fn export_rpz(&self) -> Result<String, HookError> {
        let db = self.config.database();
        let store = bawaba_store::Store::open(&db, self.config.store_config())?;
        let t = crate::output::now();
        let snapshot = store.snapshot(t)?;
        // As `bawaba policy export`: the serial is the Unix time (RFC 1982, fits u32 until 2106).
        let options =
            self.config.rpz_export_options(self.config.policy.rpz_origin.clone(), u32::try_from(t).unwrap_or(u32::MAX));
        let mut out = Vec::new();
        bawaba_formats::write_rpz(&snapshot, &options, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn defense(&self) -> Option<serde_json::Value> {
        self.defense_view.as_ref().map(|v| v.to_json())
    }

    fn mitigate(&self, request: &MitigationRequest) -> Result<Decided, HookError> {
        use bawaba_defense::service::{ManualKind, ManualRequest};
        let view = self.defense_view.as_ref().ok_or("attack defense is not running ([flow] enabled = false)")?;
        let (addr, len) = match request.prefix.split_once('/') {
            Some((a, l)) => (a.parse::<std::net::IpAddr>()?, l.parse::<u8>()?),
            None => {
                let a = request.prefix.parse::<std::net::IpAddr>()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let prefix =
            bawaba_bgp::Prefix::new(addr, len).ok_or_else(|| format!("{}: prefix too long", request.prefix))?;
        let kind = if request.kind == "flowspec" {
            ManualKind::FlowSpec { protocols: request.protocols.clone(), source_ports: request.source_ports.clone() }
        } else {
            ManualKind::Blackhole
        };
        let decision = view.manual.submit(ManualRequest {
            prefix,
            kind,
            withdraw: request.withdraw,
            reason: request.reason.clone(),
        })?;
        let outcome = match &decision {
            bawaba_ddos::Decision::Announce { .. } => "announce",
            bawaba_ddos::Decision::Withdraw { .. } => "withdraw",
            bawaba_ddos::Decision::Refused { .. } => "refused",
            bawaba_ddos::Decision::DryRun { .. } => "dry-run",
        };
        Ok(Decided { outcome: outcome.into(), text: decision.to_string() })
    }

    fn verify_bundle(&self, bytes: &[u8]) -> Result<serde_json::Value, HookError> {
        let keys: Vec<PathBuf> = Vec::new();
        let trusted = crate::policy_files::config_trusted_keys(&self.config, &keys).map_err(|e| format!("{e:#}"))?;
        Ok(crate::policy_files::describe_bundle(bytes, &trusted).map_err(|e| format!("{e:#}"))?)
    }
}

/// The inline engine's drop rules for the routes announced now: a blackhole drops everything to
/// its prefix, a FlowSpec rule what it matches by destination, protocol and source port (a rule
/// with port ranges drops by destination and protocol alone: the same traffic or more).
pub fn engine_drops(routes: &[bawaba_bgp::Route]) -> Vec<bawaba_engine::mitigation::MitigationDrop> {
    use bawaba_bgp::{NumericMatch, Route};
    use bawaba_engine::mitigation::MitigationDrop;
    routes
        .iter()
        .map(|r| match r {
            Route::Unicast { prefix, .. } => MitigationDrop {
                dst: prefix.addr,
                prefix_len: prefix.len,
                protocols: Vec::new(),
                source_ports: Vec::new(),
            },
            Route::FlowSpec { rule, .. } => {
                let exact: Option<Vec<u16>> = rule
                    .source_ports
                    .iter()
                    .map(|m| match m {
                        NumericMatch::Eq(p) => Some(*p),
                        _ => None,
                    })
                    .collect();
                MitigationDrop {
                    dst: rule.destination.addr,
                    prefix_len: rule.destination.len,
                    protocols: rule.protocols.clone(),
                    source_ports: exact.unwrap_or_default(),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_become_engine_drops() {
        use bawaba_bgp::{FlowAction, FlowSpec, NumericMatch, Prefix, Route};
        let Some(prefix) = Prefix::parse("198.18.5.5/32") else { unreachable!("a valid prefix") };
        let Ok(next_hop) = "198.18.0.66".parse() else { unreachable!("a valid address") };
        let routes = vec![
            Route::Unicast { prefix, next_hop, communities: vec![] },
            Route::FlowSpec {
                rule: FlowSpec {
                    destination: prefix,
                    source: None,
                    protocols: vec![17],
                    source_ports: vec![NumericMatch::Eq(53), NumericMatch::Eq(123)],
                    destination_ports: vec![],
                    packet_lengths: vec![],
                },
                action: FlowAction::Discard,
                communities: vec![],
            },
        ];
        let drops = engine_drops(&routes);
        assert_eq!(drops.len(), 2);
        assert!(drops[0].protocols.is_empty() && drops[0].prefix_len == 32);
        assert_eq!((drops[1].protocols.clone(), drops[1].source_ports.clone()), (vec![17], vec![53, 123]));
    }
}
