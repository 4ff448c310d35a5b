//! DDoS attack detection from flow records, and mitigation planning. Pure and synchronous: no
//! I/O, no threads, no clock; the caller passes the time in, in milliseconds.
//!
//! The layers:
//!
//! - [`Detector`] counts [`bawaba_flow::FlowRecord`]s to the [`Protected`] networks, per
//!   destination host and per protected prefix, in windows of arrival time (packets, bits,
//!   flows, UDP, TCP SYN, ICMP, fragments, each amplification vector; top sources and source
//!   ports in bounded heavy-hitter sketches). Counters are scaled by each record's sampling
//!   rate when it is known. [`Detector::tick`] closes the windows, holds the rates against
//!   the thresholds and each target's learned baseline, and reports attacks as [`Event`]s:
//!   started, updated every window, ended after a hold-down.
//! - [`Mitigator`] turns events into [`bawaba_bgp::Route`]s (RFC 7999 blackholes, RFC 8955 /
//!   8956 FlowSpec rules fitted to the attack [`Vector`]) behind safety rails, and keeps the
//!   set of routes to hand to the BGP speaker.
//! - [`config`] holds both configurations (`[ddos.detection]`, `[ddos.mitigation]`).
//!
//! ```
//! use bawaba_ddos::config::{DetectorConfig, GroupConfig, MitigatorConfig, Thresholds};
//! use bawaba_ddos::{Decision, Detector, Event, Mitigator, Vector};
//! use bawaba_flow::{FlowProtocol, FlowRecord, Sampling, SamplingSource};
//!
//! let detection = DetectorConfig {
//!     groups: vec![GroupConfig {
//!         name: "isp-a".into(),
//!         prefixes: vec!["198.18.0.0/16".into()],
//!         thresholds: Thresholds::default(),
//!         total: Thresholds::default(),
//!     }],
//!     ..DetectorConfig::default()
//! };
//! let mut detector = Detector::new(&detection).unwrap();
//! let mitigation = MitigatorConfig { dry_run: false, ..MitigatorConfig::default() };
//! let mut mitigator = Mitigator::new(&mitigation, detector.protected().clone()).unwrap();
//!
//! // DNS replies to 198.18.5.5, sampled 1 in 1000: 20 records of 5 packets = 100,000 pps.
//! let mut rec = FlowRecord::empty(FlowProtocol::Ipfix, "192.0.2.1".parse().unwrap(), 0);
//! (rec.dst, rec.protocol, rec.src_port, rec.packets, rec.bytes) = ("198.18.5.5".parse().unwrap(), 17, 53, 5, 5 * 1400);
//! rec.sampling = Sampling::known(1000, SamplingSource::OptionsTemplate);
//! for i in 0..20u8 {
//!     rec.src = format!("203.0.113.{i}").parse().unwrap();
//!     detector.record(&rec, 1_000_000 + u64::from(i));
//! }
//! let events = detector.tick(1_001_000);
//! let Event::Started(attack) = &events[0] else { panic!() };
//! assert_eq!(attack.vector, Vector::Amplification { port: 53, name: "dns".into() });
//! let decisions = mitigator.on_event(&events[0], 1_001_000);
//! assert!(matches!(decisions[0], Decision::Announce { .. }));
//! assert_eq!(mitigator.routes()[0].destination().to_string(), "198.18.5.5/32");
//! ```

mod attack;
mod baseline;
pub mod config;
mod detector;
mod mitigator;
mod protected;
mod sketch;
mod window;

pub use attack::{Attack, Event, Metric, ThresholdCrossed, Vector};
pub use config::{ConfigError, DdosConfig, DetectorConfig, MitigatorConfig};
pub use detector::{Detector, DetectorStats};
pub use mitigator::{route_text, Decision, Mitigation, Mitigator, MitigatorStats, Origin, Refusal, RefusedCounts};
pub use protected::{Protected, ProtectedPrefix};
