//! The public transparency report: what is blocked under whose authority and on what ground,
//! how that changed month by month, and the publishable orders with their public summaries.
//! Orders not marked publishable are counted but not listed.

use std::collections::BTreeMap;

use bawaba_policy::{OrderId, OrderStatus};
use serde::Serialize;

use crate::error::ApiError;
use crate::util::{date, month};
use crate::{now, App};

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was made (Unix seconds).
    pub generated_at: i64,
    /// Orders in force now.
    pub active_orders: u64,
    /// Rules of the orders in force.
    pub active_rules: u64,
    /// Orders in force per issuing authority.
    pub active_by_authority: BTreeMap<String, u64>,
    /// Orders in force per category.
    pub active_by_category: BTreeMap<String, u64>,
    /// Orders approved, expired and revoked per month (`YYYY-MM`), newest last.
    pub months: Vec<Month>,
    /// The publishable orders that were ever approved, newest first.
    pub orders: Vec<PublicOrder>,
}

/// One month's changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Month {
    /// `YYYY-MM`.
    pub month: String,
    /// Orders approved.
    pub added: u64,
    /// Orders that reached their expiry.
    pub expired: u64,
    /// Orders revoked.
    pub revoked: u64,
}

/// What the public sees of an order.
#[derive(Debug, Clone, Serialize)]
pub struct PublicOrder {
    /// The instrument's reference.
    pub reference: String,
    /// Issuing authority.
    pub authority: String,
    /// Legal ground.
    pub category: String,
    /// Status now.
    pub status: String,
    /// Date of issue.
    pub issued: String,
    /// Enforced from.
    pub effective_from: String,
    /// Enforced until.
    pub expires: String,
    /// Number of rules (names and address ranges).
    pub rules: i64,
    /// The public summary.
    pub summary: String,
    /// Where to appeal.
    pub appeal_contact: String,
}

/// Builds the report from the store.
pub async fn report(app: &App) -> Result<Report, ApiError> {
    let (orders, times, counts) = app.db(|s| Ok((s.orders()?, s.order_times()?, s.rule_counts()?))).await?;
    let t = now();
    let times: std::collections::HashMap<OrderId, bawaba_store::OrderTimes> =
        times.into_iter().map(|t| (t.id, t)).collect();
    let rules_of = |id: OrderId| counts.get(&id).copied().unwrap_or(0);
    let mut report = Report {
        generated_at: t,
        active_orders: 0,
        active_rules: 0,
        active_by_authority: BTreeMap::new(),
        active_by_category: BTreeMap::new(),
        months: Vec::new(),
        orders: Vec::new(),
    };
    let mut months: BTreeMap<String, Month> = BTreeMap::new();
    let mut bump = |at: i64, f: fn(&mut Month)| {
        let m = month(at);
        f(months.entry(m.clone()).or_insert_with(|| Month { month: m, ..Month::default() }));
    };
    for o in &orders {
        let status = o.status_at(t);
        if status == OrderStatus::Active {
            report.active_orders += 1;
            report.active_rules += rules_of(o.id) as u64;
            *report.active_by_authority.entry(o.authority.clone()).or_default() += 1;
            *report.active_by_category.entry(o.category.to_string()).or_default() += 1;
        }
        let times = times.get(&o.id);
        let approved = times.and_then(|x| x.approved_at);
        if let Some(at) = approved {
            bump(at, |m| m.added += 1);
        }
        if let Some(r) = &o.revoked {
            bump(r.at, |m| m.revoked += 1);
        } else if approved.is_some() && o.expires_at <= t {
            bump(o.expires_at, |m| m.expired += 1);
        }
        if o.publishable && approved.is_some() {
            report.orders.push(PublicOrder {
                reference: o.reference.clone(),
                authority: o.authority.clone(),
                category: o.category.to_string(),
                status: status.to_string(),
                issued: date(o.issued_at),
                effective_from: date(o.effective_from),
                expires: date(o.expires_at),
                rules: rules_of(o.id),
                summary: o.summary.clone(),
                appeal_contact: o.appeal_contact.clone(),
            });
        }
    }
    report.orders.reverse();
    report.months = months.into_values().collect();
    Ok(report)
}

/// One CSV field, quoted when it must be (RFC 4180), and defused against spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The report as CSV: `table` is `orders` (the publishable orders), `months` or `active`.
pub fn csv(report: &Report, table: &str) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut row = |fields: &[&str]| {
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    };
    match table {
        "orders" => {
            row(&[
                "reference",
                "authority",
                "category",
                "status",
                "issued",
                "effective_from",
                "expires",
                "rules",
                "summary",
                "appeal_contact",
            ]);
            for o in &report.orders {
                let rules = o.rules.to_string();
                row(&[
                    &o.reference,
                    &o.authority,
                    &o.category,
                    &o.status,
                    &o.issued,
                    &o.effective_from,
                    &o.expires,
                    &rules,
                    &o.summary,
                    &o.appeal_contact,
                ]);
            }
        }
        "months" => {
            row(&["month", "added", "expired", "revoked"]);
            for m in &report.months {
                row(&[&m.month, &m.added.to_string(), &m.expired.to_string(), &m.revoked.to_string()]);
            }
        }
        "active" => {
            row(&["dimension", "value", "active_orders"]);
            for (k, v) in &report.active_by_authority {
                row(&["authority", k, &v.to_string()]);
            }
            for (k, v) in &report.active_by_category {
                row(&["category", k, &v.to_string()]);
            }
        }
        other => return Err(ApiError::Invalid(format!("table {other:?}: use orders, months or active"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("محكمة"), "محكمة");
    }
}
