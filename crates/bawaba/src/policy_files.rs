//! The policy commands that read or write files: import, export, publish, verify.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bawaba_bundle::{read_signing_key, read_verifying_key, SignOptions, SignedBundle, VerifyingKey};
use bawaba_policy::{Action, OrderId, PolicySnapshot};
use bawaba_store::{Publication, Store};
use serde::Serialize;

use crate::commands::Ctx;
use crate::config::Config;
use crate::output::{json, now, when};

fn trusted_keys(ctx: &Ctx, given: &[PathBuf]) -> Result<Vec<VerifyingKey>> {
    config_trusted_keys(&ctx.config, given)
}

/// The trusted keys: `given`, or else the config's.
pub fn config_trusted_keys(config: &Config, given: &[PathBuf]) -> Result<Vec<VerifyingKey>> {
    let paths = if given.is_empty() { config.trusted_keys() } else { given.to_vec() };
    paths
        .iter()
        .map(|p| read_verifying_key(p).with_context(|| format!("reading trusted key {}", p.display())))
        .collect()
}

/// Reads and verifies a bundle, returning its snapshot.
pub fn load_bundle(ctx: &Ctx, keys: &[PathBuf], path: &Path) -> Result<PolicySnapshot> {
    read_verified(ctx, keys, path, |verified| verified.snapshot())
}

/// A signed bundle file (trusted keys from the config), verified and compiled in place: for a
/// command that needs only the ruleset.
pub fn compile_bundle(ctx: &Ctx, path: &Path) -> Result<bawaba_policy::Ruleset> {
    read_verified(ctx, &[], path, |verified| verified.compile())
}

/// Reads and verifies a bundle file, then decodes it with `decode`.
fn read_verified<T>(
    ctx: &Ctx,
    keys: &[PathBuf],
    path: &Path,
    decode: impl FnOnce(&bawaba_bundle::VerifiedBundle<'_>) -> Result<T, bawaba_bundle::BundleError>,
) -> Result<T> {
    let trusted = trusted_keys(ctx, keys)?;
    let bytes = bawaba_bundle::read_bundle_file(path)?;
    let verified = bawaba_bundle::verify(&bytes, &trusted).with_context(|| format!("bundle {}", path.display()))?;
    Ok(decode(&verified)?)
}

/// `bawaba policy publish`
pub fn publish(ctx: &Ctx, as_json: bool) -> Result<i32> {
    let mut store = ctx.store()?;
    let p = publish_bundle(&ctx.config, &mut store, ctx.actor()?)?;
    let (path, bundle, snapshot, publication) = (&p.path, &p.bundle, &p.snapshot, &p.publication);
    if as_json {
        #[derive(Serialize)]
        struct Published<'a> {
            path: &'a Path,
            bytes: usize,
            orders: usize,
            allow_entries: usize,
            #[serde(flatten)]
            publication: &'a Publication,
        }
        json(&Published {
            path,
            bytes: bundle.bytes().len(),
            orders: snapshot.orders.len(),
            allow_entries: snapshot.allow.len(),
            publication,
        })?;
    } else {
        println!("published policy v{} -> {}", snapshot.version, path.display());
        println!(
            "{} orders, {} rules, {} allow entries; {} bytes; pins audit entry {}",
            snapshot.orders.len(),
            snapshot.rules.len(),
            snapshot.allow.len(),
            bundle.bytes().len(),
            publication.audit_seq
        );
    }
    Ok(0)
}

/// A signed and written bundle, and its publication record.
pub struct PublishedBundle {
    /// Where it was written.
    pub path: PathBuf,
    /// The bundle.
    pub bundle: SignedBundle,
    /// What it holds.
    pub snapshot: PolicySnapshot,
    /// The record in the store.
    pub publication: Publication,
}

/// Signs the store's policy in force as the next version, writes it to the bundle directory and
/// records the publication (the CLI's `policy publish` and the console's publish button).
pub fn publish_bundle(config: &Config, store: &mut Store, actor: &str) -> Result<PublishedBundle> {
    let t = now();
    let mut snapshot = store.snapshot(t)?;
    snapshot.version = store.next_bundle_version()?;
    let (audit_seq, audit_hash) = store.audit_head()?;
    let mut head = [0u8; 32];
    hex::decode_to_slice(&audit_hash, &mut head).context("audit head hash")?;
    let key_path = config.signing_key();
    let key = read_signing_key(&key_path).with_context(|| format!("reading signing key {}", key_path.display()))?;
    let options = SignOptions { created_at: Some(t), audit_head: Some((audit_seq as u64, head)), ..Default::default() };
    let bundle = SignedBundle::sign_with(&snapshot, &key, &options)?;
    let dir = config.bundle_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = bundle.write_to_dir(&dir)?;
    let publication = Publication {
        version: snapshot.version as i64,
        at: t,
        actor: actor.to_string(),
        file: bundle.file_name(),
        sha256: hex::encode(bundle.header().payload_sha256),
        rules: snapshot.rules.len() as i64,
        audit_seq,
        audit_hash,
    };
    store.record_publication(&publication)?;
    Ok(PublishedBundle { path, bundle, snapshot, publication })
}

/// Verifies bundle bytes against `trusted` keys and describes them as JSON.
pub fn describe_bundle(bytes: &[u8], trusted: &[bawaba_bundle::VerifyingKey]) -> Result<serde_json::Value> {
    let verified = bawaba_bundle::verify(bytes, trusted)?;
    let header = verified.header().clone();
    let snapshot = verified.snapshot()?;
    Ok(serde_json::json!({
        "valid": true, "version": header.policy_version, "created_at": header.created_at,
        "signer": header.signer.to_hex(), "sha256": hex::encode(header.payload_sha256),
        "orders": snapshot.orders.len(), "rules": snapshot.rules.len(), "allow_entries": snapshot.allow.len(),
        "audit_head": header.audit_head.map(|(s, h)| (s, hex::encode(h))),
    }))
}

/// `bawaba policy verify`
pub fn verify(ctx: &Ctx, keys: &[PathBuf], as_json: bool, path: &Path) -> Result<i32> {
    let trusted = trusted_keys(ctx, keys)?;
    let bytes = bawaba_bundle::read_bundle_file(path)?;
    let result = bawaba_bundle::verify(&bytes, &trusted).and_then(|v| Ok((v.header().clone(), v.snapshot()?)));
    let (header, snapshot) = match result {
        Ok(ok) => ok,
        Err(err) => {
            if as_json {
                json(&serde_json::json!({ "file": path, "valid": false, "error": err.to_string() }))?;
            } else {
                println!("INVALID {}: {err}", path.display());
            }
            return Ok(1);
        }
    };
    if as_json {
        json(&serde_json::json!({
            "file": path, "valid": true, "version": header.policy_version, "created_at": header.created_at,
            "signer": header.signer.to_hex(), "sha256": hex::encode(header.payload_sha256),
            "orders": snapshot.orders.len(), "rules": snapshot.rules.len(), "allow_entries": snapshot.allow.len(),
            "audit_head": header.audit_head.map(|(s, h)| (s, hex::encode(h))),
        }))?;
    } else {
        println!("valid bundle {}", path.display());
        println!("version      {}", header.policy_version);
        println!("signed       {} by key {}", when(header.created_at), header.signer.to_hex());
        println!("sha256       {}", hex::encode(header.payload_sha256));
        println!(
            "content      {} orders, {} rules, {} allow entries",
            snapshot.orders.len(),
            snapshot.rules.len(),
            snapshot.allow.len()
        );
        if let Some((seq, _)) = header.audit_head {
            println!("audit head   entry {seq}");
        }
    }
    Ok(0)
}

/// A rejected line, for output.
#[derive(Serialize)]
struct RejectedLine {
    line: usize,
    text: String,
    reason: String,
}

/// What `bawaba policy import` reports.
#[derive(Serialize)]
struct ImportSummary {
    file: String,
    format: String,
    lines: usize,
    /// Rules stored in the order.
    added: u64,
    /// Repeated in the file, or already in the order.
    duplicates: u64,
    /// Lines that did not parse, or entries a policy check refused.
    rejected: Vec<RejectedLine>,
    /// RPZ passthru entries, not imported as rules: add them with `bawaba allow add`.
    passthru: Vec<String>,
    /// SHA-256 of what was stored, as recorded in the audit log.
    sha256: String,
}

fn progress_bar(len: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let style =
        indicatif::ProgressStyle::with_template("{msg:>9} [{bar:40}] {percent:>3}% {human_pos}/{human_len} eta {eta}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// `bawaba policy import`
pub fn import(
    ctx: &Ctx,
    order: OrderId,
    format: Option<&str>,
    default_action: Action,
    origin: Option<&str>,
    as_json: bool,
    path: &Path,
) -> Result<i32> {
    let mut store = ctx.store()?;
    // Refuse early, before reading a large file, if the order cannot take rules.
    let o = store.order(order)?;
    if o.status != bawaba_policy::OrderStatus::Draft {
        bail!("order {order} is {}: rules can only be imported into a draft order", o.status);
    }
    let (mut input, size): (Box<dyn Read>, u64) = if path == Path::new("-") {
        (Box::new(std::io::stdin()), 0)
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let mut head = vec![0u8; 4096];
    let n = read_up_to(&mut input, &mut head)?;
    head.truncate(n);
    let format = match format {
        Some(f) => f.parse::<bawaba_formats::Format>().map_err(|e| anyhow::anyhow!("{e}"))?,
        None => bawaba_formats::Format::guess(Some(path), &head),
    };
    let mut options = bawaba_formats::ImportOptions::new(format);
    if let Some(origin) = origin {
        options = options.with_origin(origin.parse().context("--origin")?);
    }
    let reader = BufReader::with_capacity(1 << 20, std::io::Cursor::new(head).chain(input));
    let bar = progress_bar(size, "reading");
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>9} [{bar:40}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let parsed = bawaba_formats::import_with(&options, reader, |p| bar.set_position(p.bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    bar.finish_and_clear();

    let total = parsed.entries.len() as u64;
    let bar = progress_bar(total, "storing");
    let entries = parsed.entries.into_iter().map(|e| (e.line, e.selector, e.action.unwrap_or(default_action)));
    let stored = store
        .import_rules(ctx.actor()?, order, &path.display().to_string(), entries, now(), |n| bar.set_position(n))?;
    bar.finish_and_clear();

    let report = &parsed.report;
    let mut rejected: Vec<RejectedLine> = report
        .rejected
        .iter()
        .map(|r| RejectedLine { line: r.line, text: r.text.clone(), reason: r.reason.to_string() })
        .collect();
    rejected.extend(stored.refused.iter().map(|(line, reason)| RejectedLine {
        line: *line,
        text: String::new(),
        reason: reason.clone(),
    }));
    rejected.sort_by_key(|r| r.line);
    let summary = ImportSummary {
        file: path.display().to_string(),
        format: format.to_string(),
        lines: report.lines,
        added: stored.added,
        duplicates: report.duplicates.len() as u64 + stored.duplicates,
        rejected,
        passthru: parsed.passthru.iter().map(|p| format!("{} (line {})", p.selector, p.line)).collect(),
        sha256: stored.digest,
    };
    if as_json {
        json(&summary)?;
        return Ok(0);
    }
    println!(
        "{}: {} lines ({}), {} rules added to order {order}, {} duplicates, {} rejected",
        summary.file,
        summary.lines,
        summary.format,
        summary.added,
        summary.duplicates,
        summary.rejected.len()
    );
    for r in summary.rejected.iter().take(20) {
        println!(
            "  line {:>7}: {}{}",
            r.line,
            r.reason,
            if r.text.is_empty() { String::new() } else { format!(": {}", r.text) }
        );
    }
    if summary.rejected.len() > 20 {
        println!("  ... {} more (use --json for all)", summary.rejected.len() - 20);
    }
    if !summary.passthru.is_empty() {
        println!(
            "  {} passthru entries were not imported as rules; add them with `bawaba allow add` if intended",
            summary.passthru.len()
        );
    }
    Ok(0)
}

fn read_up_to(input: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// `bawaba policy export`
pub fn export(ctx: &Ctx, out: Option<&Path>) -> Result<i32> {
    let store = ctx.store()?;
    let t = now();
    let snapshot = store.snapshot(t)?;
    // RFC 1982 serial: the Unix time fits u32 until 2106.
    let serial = u32::try_from(t).unwrap_or(u32::MAX);
    let options = ctx.config.rpz_export_options(ctx.config.policy.rpz_origin.clone(), serial);
    let stats = match out {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut w = BufWriter::new(file);
            let stats = bawaba_formats::write_rpz(&snapshot, &options, &mut w)?;
            w.flush()?;
            stats
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            let stats = bawaba_formats::write_rpz(&snapshot, &options, &mut w)?;
            w.flush()?;
            stats
        }
    };
    eprintln!(
        "exported {} rules and {} allow entries as {} records (origin {}, serial {serial})",
        stats.rules, stats.allow, stats.records, ctx.config.policy.rpz_origin
    );
    for w in &stats.warnings {
        eprintln!("  warning: {w}");
    }
    Ok(0)
}
