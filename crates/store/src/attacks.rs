//! Attack records: what the detector saw and what the planner decided, kept across restarts.
//! The detector's own types stay in `bawaba-ddos`; the store keeps the record as JSON with the
//! fields people filter and sort on in columns.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::{Result, Store, StoreError};

/// One stored attack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAttack {
    /// Store id (stable across restarts, unlike the detector's id).
    pub id: i64,
    /// The detector's id for it (restarts from 1 with each `bawaba serve`).
    pub detector_id: i64,
    /// The attacked address.
    pub target: String,
    /// Its prefix length (32/128 for a host, shorter for a whole protected prefix).
    pub prefix_len: i64,
    /// The customer group.
    pub group: String,
    /// The dominant vector (its kind).
    pub vector: String,
    /// Start, Unix milliseconds.
    pub started_ms: i64,
    /// End, Unix milliseconds; none while it goes on (or if bawaba stopped first).
    pub ended_ms: Option<i64>,
    /// Peak packets/s.
    pub peak_pps: i64,
    /// Peak bits/s.
    pub peak_bps: i64,
    /// The detector's whole record (top sources and ports, thresholds, ...).
    pub record: serde_json::Value,
    /// Every decision taken about it, one line each, oldest first.
    pub decisions: Vec<String>,
}

fn text(v: &serde_json::Value, key: &str) -> Result<String> {
    v[key].as_str().map(str::to_string).ok_or(StoreError::Invalid { field: "attack", reason: format!("no {key}") })
}

fn int(v: &serde_json::Value, key: &str) -> Result<i64> {
    v[key].as_i64().ok_or(StoreError::Invalid { field: "attack", reason: format!("no {key}") })
}

impl Store {
    /// Records an attack (the detector's JSON form of it) at its start or end, adding
    /// `decisions` to those already kept.
    pub fn record_attack(&mut self, attack: &serde_json::Value, decisions: &[String]) -> Result<i64> {
        let (detector_id, started_ms, target) =
            (int(attack, "id")?, int(attack, "started_ms")?, text(attack, "target")?);
        let vector = attack["vector"]["kind"].as_str().unwrap_or("unknown").to_string();
        let tx = self.conn.transaction()?;
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, decisions FROM attacks WHERE started_ms = ?1 AND target = ?2 AND detector_id = ?3",
                params![started_ms, target, detector_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut all: Vec<String> = match &existing {
            Some((_, d)) => serde_json::from_str(d).unwrap_or_default(),
            None => Vec::new(),
        };
        all.extend(decisions.iter().cloned());
        let decisions_json = serde_json::to_string(&all).unwrap_or_else(|_| "[]".into());
        let record = attack.to_string();
        let id = match existing {
            Some((id, _)) => {
                tx.execute(
                    "UPDATE attacks SET ended_ms = ?1, peak_pps = ?2, peak_bps = ?3, record = ?4, decisions = ?5, vector = ?6 \
                     WHERE id = ?7",
                    params![
                        attack["ended_ms"].as_i64(),
                        attack["peak_pps"].as_i64().unwrap_or(0),
                        attack["peak_bps"].as_i64().unwrap_or(0),
                        record,
                        decisions_json,
                        vector,
                        id
                    ],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO attacks (detector_id, started_ms, target, prefix_len, grp, vector, ended_ms, peak_pps, \
                     peak_bps, record, decisions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        detector_id,
                        started_ms,
                        target,
                        attack["prefix_len"].as_i64().unwrap_or(0),
                        attack["group"].as_str().unwrap_or(""),
                        vector,
                        attack["ended_ms"].as_i64(),
                        attack["peak_pps"].as_i64().unwrap_or(0),
                        attack["peak_bps"].as_i64().unwrap_or(0),
                        record,
                        decisions_json
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.commit()?;
        Ok(id)
    }

    /// Stored attacks, newest first, at most `limit`.
    pub fn attacks(&self, limit: usize) -> Result<Vec<StoredAttack>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, detector_id, target, prefix_len, grp, vector, started_ms, ended_ms, peak_pps, peak_bps, record, \
             decisions FROM attacks ORDER BY started_ms DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit.min(i64::MAX as usize) as i64], |r| {
            let record: String = r.get(10)?;
            let decisions: String = r.get(11)?;
            Ok(StoredAttack {
                id: r.get(0)?,
                detector_id: r.get(1)?,
                target: r.get(2)?,
                prefix_len: r.get(3)?,
                group: r.get(4)?,
                vector: r.get(5)?,
                started_ms: r.get(6)?,
                ended_ms: r.get(7)?,
                peak_pps: r.get(8)?,
                peak_bps: r.get(9)?,
                record: serde_json::from_str(&record).unwrap_or_default(),
                decisions: serde_json::from_str(&decisions).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    #[test]
    fn an_attack_is_one_row_from_start_to_end() {
        let mut store = Store::open_in_memory(StoreConfig::default()).expect("store");
        let mut attack = serde_json::json!({
            "id": 1, "target": "198.18.5.5", "prefix_len": 32, "group": "isp-a",
            "vector": { "kind": "amplification", "port": 53, "name": "dns" },
            "started_ms": 1000, "ended_ms": null, "peak_pps": 84000, "peak_bps": 940800000,
        });
        let id = store.record_attack(&attack, &["attack 1: announce blackhole 198.18.5.5/32".into()]).expect("start");
        attack["ended_ms"] = 9000.into();
        attack["peak_pps"] = 96000.into();
        assert_eq!(
            store.record_attack(&attack, &["attack 1: withdraw blackhole 198.18.5.5/32".into()]).expect("end"),
            id
        );
        // After a restart the detector counts from 1 again: a new start is a new row.
        attack["started_ms"] = 20_000.into();
        attack["ended_ms"] = serde_json::Value::Null;
        store.record_attack(&attack, &[]).expect("second");
        let list = store.attacks(10).expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].ended_ms, Some(9000));
        assert_eq!(list[1].peak_pps, 96000);
        assert_eq!(list[1].decisions.len(), 2);
        assert_eq!(list[1].vector, "amplification");
        assert!(store.record_attack(&serde_json::json!({ "id": 1 }), &[]).is_err());
    }
}
