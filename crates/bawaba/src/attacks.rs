//! `bawaba attack list`: the attacks `bawaba serve` detected and what was done about them, from
//! the store (every start and end is recorded there, with the mitigation decisions; the same
//! events are also appended to `<data_dir>/attacks.jsonl` for log shippers).

use anyhow::Result;
use serde_json::Value;

use crate::commands::Ctx;

pub fn list(ctx: &Ctx, as_json: bool) -> Result<i32> {
    let store = ctx.store()?;
    let mut attacks = store.attacks(10_000)?;
    attacks.reverse(); // oldest first
    if as_json {
        println!("{}", serde_json::to_string_pretty(&attacks)?);
        return Ok(0);
    }
    if attacks.is_empty() {
        println!("no attacks recorded");
    }
    let time = |ms: Option<i64>| {
        ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "-".into())
    };
    for a in &attacks {
        let vector = match &a.record["vector"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!(
            "attack {}: {}/{} ({}) {vector}, started {}, ended {}, peak {} pps {} bps",
            a.detector_id,
            a.target,
            a.prefix_len,
            a.group,
            time(Some(a.started_ms)),
            time(a.ended_ms),
            a.peak_pps,
            a.peak_bps,
        );
        for d in &a.decisions {
            println!("  {d}");
        }
    }
    Ok(0)
}
