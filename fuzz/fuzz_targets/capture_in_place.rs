//! A capture read in place (`inspect_bytes`: a classic pcap is judged records behind the one being
//! read, its flows prepared ahead) never panics, and reports exactly what the streaming reader
//! (`inspect_capture`, one record at a time) reports on the same bytes: the same flows in the same
//! order, the same totals, or the same error. The flow table holds four flows, so that flows are
//! evicted between a packet's preparing and its judging.
#![no_main]
use std::sync::{Arc, OnceLock};

use bawaba_engine::capture::{inspect_bytes, inspect_capture, FlowRecord};
use bawaba_engine::{Engine, EngineConfig};
use bawaba_policy::{Action, Category, Ruleset};
use bawaba_testkit::policy::{order, snapshot};
use libfuzzer_sys::fuzz_target;

fn ruleset() -> Arc<Ruleset> {
    static RULESET: OnceLock<Arc<Ruleset>> = OnceLock::new();
    let rules = [("blocked.test", Action::Reset, 1), ("198.18.0.2/32", Action::Drop, 1)];
    let orders = vec![order(1, "CFI-2026-0042", Category::CourtOrder, true)];
    Arc::clone(RULESET.get_or_init(|| Arc::new(snapshot(orders, &rules, &[]).compile())))
}

fn engine() -> Engine {
    Engine::new(ruleset(), EngineConfig { max_flows: 4, ..EngineConfig::default() })
}

fuzz_target!(|data: &[u8]| {
    let mut in_place: Vec<FlowRecord> = Vec::new();
    let a = inspect_bytes(data, &mut engine(), Some(|f| in_place.push(f)), |_| {});
    let mut streamed: Vec<FlowRecord> = Vec::new();
    let b = inspect_capture(data, &mut engine(), |f| streamed.push(f));
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "the totals differ");
            assert_eq!(in_place, streamed, "the flows differ");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("reading in place changed the outcome: {:?} vs {:?}", a.err(), b.err()),
    }
});
