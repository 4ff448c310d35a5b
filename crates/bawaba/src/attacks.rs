//! `bawaba attack list`: the attacks `bawaba serve` detected, from its attack log
//! (`<data_dir>/attacks.jsonl`, one JSON object per start or end, with the mitigation decisions).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::commands::Ctx;

/// One attack as the log tells it: its last known state and every decision taken.
#[derive(Debug, Default, serde::Serialize)]
struct Row {
    attack: Value,
    decisions: Vec<String>,
}

pub fn list(ctx: &Ctx, as_json: bool) -> Result<i32> {
    let path = ctx.config.store.data_dir.join("attacks.jsonl");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if as_json {
                println!("[]");
            } else {
                println!("no attacks recorded ({} does not exist yet)", path.display());
            }
            return Ok(0);
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Value = serde_json::from_str(&line).with_context(|| format!("{} line {}", path.display(), n + 1))?;
        let attack = entry["event"]["attack"].clone();
        let Some(id) = attack["id"].as_u64() else { continue };
        let row = rows.entry(id).or_default();
        row.attack = attack;
        for d in entry["decisions"].as_array().into_iter().flatten() {
            if let Some(d) = d.as_str() {
                row.decisions.push(d.to_string());
            }
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows.values().collect::<Vec<_>>())?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no attacks recorded");
    }
    for (id, row) in &rows {
        let a = &row.attack;
        let time = |ms: &Value| {
            ms.as_u64()
                .and_then(|ms| time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).ok())
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| "-".into())
        };
        let vector = match &a["vector"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!(
            "attack {id}: {}/{} ({}) {vector}, started {}, ended {}, peak {} pps {} bps",
            a["target"].as_str().unwrap_or("?"),
            a["prefix_len"],
            a["group"].as_str().unwrap_or("?"),
            time(&a["started_ms"]),
            time(&a["ended_ms"]),
            a["peak_pps"],
            a["peak_bps"],
        );
        for d in &row.decisions {
            println!("  {d}");
        }
    }
    Ok(0)
}
