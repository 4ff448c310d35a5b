//! Counter history for the dashboard, and its charts as server-rendered SVG (no script needed).
//!
//! Once a minute the console samples the blocked counters of every enforcement point (summed by
//! category); a day of samples is kept. The charts show blocks per interval: the last hour by
//! minute and the last day by quarter hour.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

use crate::gateway::EnforcementPoint;

/// Samples kept (a day of minutes).
const KEEP: usize = 24 * 60;

/// Totals over time.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<(i64, BTreeMap<String, u64>)>>,
}

/// Blocked totals by category over all points; counters named `blocked_<category>`.
pub fn blocked_by_category(points: &[EnforcementPoint]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in points {
        for (k, v) in &p.counters {
            if let Some(cat) = k.strip_prefix("blocked_") {
                *out.entry(cat.to_string()).or_default() += v;
            }
        }
    }
    out
}

impl History {
    /// Records the totals at `at`.
    pub fn sample(&self, at: i64, points: &[EnforcementPoint]) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((at, blocked_by_category(points)));
        while s.len() > KEEP {
            s.pop_front();
        }
    }

    /// Blocks per `step` seconds over the last `span` seconds before `now` (all categories),
    /// oldest first, with `current` (the totals now) as the newest sample; a counter that went
    /// down (a restart) counts from zero.
    pub fn series(&self, now: i64, span: i64, step: i64, current: &BTreeMap<String, u64>) -> Vec<(i64, u64)> {
        let mut s: Vec<(i64, BTreeMap<String, u64>)> =
            self.samples.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        s.push((now, current.clone()));
        let buckets = (span / step).max(1) as usize;
        let start = now - span;
        let mut out: Vec<(i64, u64)> = (0..buckets).map(|i| (start + i as i64 * step, 0)).collect();
        let mut prev: Option<u64> = None;
        for (at, totals) in s.iter() {
            let total: u64 = totals.values().sum();
            if let Some(p) = prev {
                let delta = if total >= p { total - p } else { total };
                if *at >= start && *at <= now {
                    let i = (((*at - start) / step) as usize).min(buckets - 1);
                    out[i].1 += delta;
                }
            }
            prev = Some(total);
        }
        out
    }
}

/// A bar chart of `series` as SVG; `label` is its accessible name.
pub fn bars(series: &[(i64, u64)], label: &str) -> String {
    let (w, h, pad) = (600.0f64, 160.0f64, 24.0f64);
    let max = series.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let n = series.len().max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        maud::html! { (label) }.into_string()
    );
    let _ = write!(svg, r##"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="#b8c0cc"/>"##, h - pad, w - pad, h - pad);
    let _ = write!(svg, r##"<text x="{pad}" y="14" font-size="11" fill="#5b6475">{}</text>"##, max as u64);
    for (i, (_, v)) in series.iter().enumerate() {
        let bh = (*v as f64 / max) * (h - 2.0 * pad);
        let x = pad + i as f64 * bw;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#0b5cad"><title>{v}</title></rect>"##,
            h - pad - bh,
            (bw - 1.0).max(0.5)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(blocked: u64) -> EnforcementPoint {
        EnforcementPoint {
            site: None,
            reported_at: None,
            name: "dns".into(),
            kind: "dns".into(),
            bundle_version: Some(1),
            loaded_at: None,
            counters: [("blocked_phishing".to_string(), blocked), ("queries".to_string(), 1000)].into(),
            blocked_by_order: BTreeMap::new(),
        }
    }

    #[test]
    fn series_counts_deltas_per_bucket() {
        let h = History::default();
        h.sample(0, &[point(10)]);
        h.sample(60, &[point(15)]);
        h.sample(120, &[point(15)]);
        h.sample(180, &[point(3)]); // restarted
        let s = h.series(239, 240, 60, &BTreeMap::new());
        assert_eq!(s.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 5, 0, 3]);
        // The totals now count as the newest sample.
        let now = blocked_by_category(&[point(9)]);
        assert_eq!(h.series(239, 240, 60, &now).iter().map(|x| x.1).sum::<u64>(), 5 + 3 + 6);
        let svg = bars(&s, "a <b>");
        assert!(svg.contains("a &lt;b&gt;") && svg.matches("<rect").count() == 4);
    }
}
