//! `bawaba inspect`: a capture file through the packet engine, for analysts, tests and benches.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use bawaba_engine::capture::{inspect_bytes, inspect_capture, summarize_capture, CaptureSummary, FlowRecord};
use bawaba_engine::{Engine, EngineConfig};

use crate::cli::InspectArgs;
use crate::commands::Ctx;
use crate::output::now;

/// Counts bytes read into a progress bar (shown only on a terminal).
struct Progress<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

pub fn inspect(ctx: &Ctx, args: &InspectArgs) -> Result<i32> {
    let ruleset = Arc::new(match &args.bundle {
        Some(path) => crate::policy_files::compile_bundle(ctx, path)?,
        None => ctx.store()?.snapshot(now())?.compile(),
    });
    let file = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() && !args.json {
        indicatif::ProgressBar::new(size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "inspecting [{bar:40}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let config = EngineConfig { max_flows: args.max_flows, ..EngineConfig::default() };
    let mut engine = Engine::new(Arc::clone(&ruleset), config);
    let started = std::time::Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut flows: Vec<FlowRecord> = Vec::new();
    let mut write_error = None;
    let mut on_flow = |record: FlowRecord| {
        if args.json {
            flows.push(record);
        } else if write_error.is_none() {
            if let Err(e) = writeln!(out, "{}", flow_line(&record)) {
                write_error = Some(e);
            }
        }
    };
    let summary = match map_file(&file, size) {
        // Large files are read in place: no copy of the packets, and only the bytes the engine
        // looks at come into the CPU caches.
        Some(map) => {
            let on_flow = (!args.summary).then_some(&mut on_flow);
            inspect_bytes(&map, &mut engine, on_flow, |offset| bar.set_position(offset))
        }
        None => {
            let reader = Progress { inner: file, bar: bar.clone() };
            if args.summary {
                summarize_capture(reader, &mut engine)
            } else {
                inspect_capture(reader, &mut engine, on_flow)
            }
        }
    }
    .with_context(|| format!("reading {}", args.file.display()))?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(0);
        }
        return Err(e).context("writing the flow list");
    }
    if args.json {
        flows.sort_by(|a, b| (a.first_seen_ns, &a.client, &a.server).cmp(&(b.first_seen_ns, &b.client, &b.server)));
        let doc = serde_json::json!({ "flows": flows, "totals": summary });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        write_totals(&mut out, &summary)?;
    }
    out.flush()?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "{} packets in {:.3} s: {:.0} packets/s",
        summary.records,
        elapsed.as_secs_f64(),
        summary.records as f64 / secs
    );
    Ok(0)
}

fn flow_line(r: &FlowRecord) -> String {
    let mut line =
        format!("{:<3} {} -> {} {:<7} {:<8}", r.transport, r.client, r.server, r.protocol.as_str(), r.action.as_str());
    if let Some(name) = &r.name {
        line.push_str(&format!(" name={name}{}", if r.name_cut { "..." } else { "" }));
    }
    if r.ech {
        line.push_str(" ech");
    }
    if r.blocked_queries > 0 {
        line.push_str(&format!(" blocked-queries={}", r.blocked_queries));
    }
    if let Some(order) = &r.order {
        line.push_str(&format!(" order={} ({})", order.reference, order.category));
    }
    line.push_str(&format!(" packets={}/{}", r.packets[0], r.packets[1]));
    line
}

fn write_totals(out: &mut impl Write, s: &CaptureSummary) -> std::io::Result<()> {
    let e = &s.engine;
    writeln!(out, "--")?;
    writeln!(out, "records {}  not-ip {}  undecodable {:?}", s.records, s.not_ip, s.undecodable)?;
    if let Some(t) = &s.truncated {
        writeln!(out, "warning: capture ends early: {t}")?;
    }
    writeln!(
        out,
        "packets accepted {}  dropped {}  reset {}  redirected {}",
        e.packets_accepted, e.packets_dropped, e.packets_reset, e.packets_redirected
    )?;
    writeln!(
        out,
        "flows {}  by protocol {:?}  evicted {}",
        s.flow_table.created, e.flows_by_protocol, s.flow_table.evicted
    )?;
    writeln!(out, "flows by action {:?}  ech {}", e.flows_by_action, e.ech_flows)?;
    writeln!(out, "blocked by category {:?}  by order {:?}", e.blocked_by_category, e.blocked_by_order)?;
    writeln!(out, "dns queries {} blocked {}", e.dns_queries, e.dns_queries_blocked)
}

/// Maps a capture of at least 64 MiB into memory; `None` (read it instead) for smaller files or
/// when mapping fails.
#[allow(unsafe_code)]
fn map_file(file: &File, size: u64) -> Option<memmap2::Mmap> {
    if size < 64 << 20 {
        return None;
    }
    // SAFETY: the map is only read, as plain bytes that every parser checks. The one hazard is
    // another process truncating the file while it is mapped, which ends this process with
    // SIGBUS; `bawaba inspect` is pointed at finished captures, so that is accepted.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}
