//! Captures of real traffic through the engine.
//!
//! - Golden files: every `tests/captures/*.pcap[ng]` is inspected under a fixed policy and the
//!   JSON report compared with `*.golden.json`; `OVERWRITE=1` rewrites them for review.
//! - Differential against tshark: for every flow tshark names (SNI, QUIC SNI, HTTP Host, DNS
//!   query) in the capture's `*.expected.tsv`, bawaba must report the same name on the same
//!   5-tuple. The committed capture is checked this way, and `fresh_capture_agrees_with_tshark`
//!   makes a new one with real clients and servers in network namespaces
//!   (`scripts/netns/capture.sh`) and checks that too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bawaba_engine::capture::{inspect_bytes, inspect_capture, CaptureSummary, FlowRecord};
use bawaba_engine::{Engine, EngineConfig};
use bawaba_policy::{Action, Category, Order, Ruleset};

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures")
}

fn order(id: i64, reference: &str, category: Category) -> Order {
    bawaba_testkit::policy::order(id, reference, category, true)
}

/// The policy the golden files are made under: one rule for each action the captures exercise.
fn policy() -> Arc<Ruleset> {
    let rules = [
        ("blocked.test", Action::Reset, 1),
        ("exact:split-host.allowed.test", Action::BlockPage, 2),
        ("exact:split-sni.allowed.test", Action::BlockPage, 2),
        ("quic-big.allowed.test", Action::Drop, 2),
        ("exact:dns-tcp.allowed.test", Action::Nxdomain, 1),
    ];
    let orders = vec![order(1, "CFI-2026-0042", Category::CourtOrder), order(2, "CMC-2026-0007", Category::Malware)];
    let snapshot = bawaba_testkit::policy::snapshot(orders, &rules, &["exact:ok.blocked.test"]);
    Arc::new(snapshot.compile())
}

fn inspect(path: &Path) -> (Vec<FlowRecord>, serde_json::Value) {
    inspect_with(path, EngineConfig::default())
}

fn inspect_with(path: &Path, config: EngineConfig) -> (Vec<FlowRecord>, serde_json::Value) {
    inspect_streamed(File::open(path).unwrap(), config)
}

/// [`inspect`] of any reader: the capture streamed, one record at a time.
fn inspect_streamed(reader: impl std::io::Read, config: EngineConfig) -> (Vec<FlowRecord>, serde_json::Value) {
    let mut engine = Engine::new(policy(), config);
    let mut flows = Vec::new();
    let summary = inspect_capture(reader, &mut engine, |f| flows.push(f)).unwrap();
    report(flows, summary)
}

/// The flows in order of first packet, and the report as JSON.
fn report(mut flows: Vec<FlowRecord>, summary: CaptureSummary) -> (Vec<FlowRecord>, serde_json::Value) {
    flows.sort_by(|a, b| (a.first_seen_ns, &a.client, &a.server).cmp(&(b.first_seen_ns, &b.client, &b.server)));
    let doc = serde_json::json!({ "flows": flows, "totals": summary });
    (flows, doc)
}

/// [`inspect`] of a capture held in memory: a classic pcap is read in place, records judged a few
/// behind the one being read (the path `bawaba inspect` takes on a file it can map).
fn inspect_in_memory(bytes: &[u8], config: EngineConfig) -> serde_json::Value {
    let mut engine = Engine::new(policy(), config);
    let mut flows = Vec::new();
    let summary = inspect_bytes(bytes, &mut engine, Some(|f| flows.push(f)), |_| {}).unwrap();
    report(flows, summary).1
}

fn capture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", captures_dir().display());
    files
}

#[test]
fn golden_reports() {
    let overwrite = std::env::var_os("OVERWRITE").is_some();
    let mut failures = Vec::new();
    for pcap in capture_files() {
        let (_, doc) = inspect(&pcap);
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        let golden = pcap.with_extension(format!("{}.golden.json", pcap.extension().unwrap().to_str().unwrap()));
        if overwrite {
            std::fs::write(&golden, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == text => {}
            Ok(_) => failures.push(format!(
                "{} differs from {} (OVERWRITE=1 to regenerate)",
                pcap.display(),
                golden.display()
            )),
            Err(e) => failures.push(format!("{}: {e} (OVERWRITE=1 to create)", golden.display())),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Reading a classic capture in place, with records read and flows prepared ahead of the one
/// judged, reports exactly what reading it one record at a time does: whole, with a flow table
/// of three flows (so flows are evicted between a packet's preparing and its judging, and its
/// flow is often gone or moved), and cut off in the middle of its last record (reported as
/// truncated). pcapng, which is always streamed, is checked too.
#[test]
fn in_place_reading_agrees_with_streaming() {
    let tiny = || EngineConfig { max_flows: 3, ..EngineConfig::default() };
    for path in capture_files() {
        let bytes = std::fs::read(&path).unwrap();
        let (_, streamed) = inspect(&path);
        assert_eq!(inspect_in_memory(&bytes, EngineConfig::default()), streamed, "{}", path.display());
        let (_, streamed_tiny) = inspect_with(&path, tiny());
        let evicted = streamed_tiny["totals"]["flow_table"]["evicted"].as_u64().unwrap();
        assert!(evicted > 10, "{}: {evicted} evictions, too few", path.display());
        assert_eq!(inspect_in_memory(&bytes, tiny()), streamed_tiny, "{} with 3 flows", path.display());
        let records = streamed["totals"]["records"].as_u64().unwrap();
        assert!(records > 100, "{}: {records} records, too few to read ahead", path.display());
        if path.extension().is_some_and(|e| e == "pcap") {
            let cut = &bytes[..bytes.len() - 7];
            let (_, streamed) = inspect_streamed(cut, EngineConfig::default());
            assert!(streamed["totals"]["truncated"].is_string(), "the cut capture is not reported as truncated");
            assert_eq!(inspect_in_memory(cut, EngineConfig::default()), streamed, "{} cut short", path.display());
        }
    }
}

/// tshark's names per flow from an `*.expected.tsv` written by `scripts/netns/capture.sh`:
/// (transport, client, server) -> name.
fn tshark_names(tsv: &Path) -> BTreeMap<(String, String, String), String> {
    let text = std::fs::read_to_string(tsv).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (proto, client, cport, server, sport) =
        (col("proto"), col("client"), col("cport"), col("server"), col("sport"));
    let names = [col("tls_sni"), col("http_host"), col("quic_sni"), col("dns_qname")];
    let endpoint = |addr: &str, port: &str| {
        let addr: std::net::IpAddr = addr.parse().unwrap();
        std::net::SocketAddr::new(addr, port.parse().unwrap()).to_string()
    };
    let mut out = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(name) = names.iter().map(|&i| f[i]).find(|n| *n != "-") else { continue };
        // Several names in one stream (e.g. repeated DNS queries): the first one names the flow.
        let name = name.split(',').next().unwrap().to_string();
        out.insert((f[proto].to_string(), endpoint(f[client], f[cport]), endpoint(f[server], f[sport])), name);
    }
    out
}

/// Every flow tshark names has the same name in bawaba's report, and bawaba names no flow that
/// tshark does not.
fn agrees_with_tshark(pcap: &Path, tsv: &Path) {
    let want = tshark_names(tsv);
    assert!(want.len() >= 10, "{}: tshark named only {} flows", tsv.display(), want.len());
    let (flows, _) = inspect(pcap);
    let got: BTreeMap<_, _> = flows
        .iter()
        .filter_map(|f| Some(((f.transport.clone(), f.client.clone(), f.server.clone()), f.name.clone()?)))
        .collect();
    let mut diffs = Vec::new();
    for (key, name) in &want {
        match got.get(key) {
            Some(ours) if ours.eq_ignore_ascii_case(name) => {}
            other => diffs.push(format!("{key:?}: tshark {name:?}, bawaba {other:?}")),
        }
    }
    for (key, name) in &got {
        if !want.contains_key(key) {
            diffs.push(format!("{key:?}: bawaba {name:?}, tshark none"));
        }
    }
    assert!(diffs.is_empty(), "{}:\n{}", pcap.display(), diffs.join("\n"));
}

#[test]
fn committed_capture_agrees_with_tshark() {
    let dir = captures_dir();
    agrees_with_tshark(&dir.join("harness-mixed.pcap"), &dir.join("harness-mixed.expected.tsv"));
}

#[test]
fn fresh_capture_agrees_with_tshark() {
    if bawaba_testkit::require_tools(
        "fresh capture vs tshark",
        &["tshark", "dumpcap", "nginx", "curl", "ip", "iptables"],
    )
    .is_none()
    {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/netns/capture.sh");
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("fresh.pcap");
    let out = std::process::Command::new("bash").arg(&script).arg(&pcap).output().unwrap();
    assert!(
        out.status.success(),
        "capture.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    agrees_with_tshark(&pcap, &dir.path().join("fresh.expected.tsv"));
}
