//! Citizens' appeals against a block.
//!
//! Anyone who meets a block page may contest it: they name the site, the order and their reason,
//! and get a reference number (`AP-` and 10 Crockford base-32 characters, 50 random bits) with
//! which they, and only they, can look the appeal up. Staff answer each appeal once: the block
//! stays (upheld), is to be lifted (granted), or the appeal is invalid (rejected).
//!
//! Filing and answering are audited (filing under the actor `public`). The audit log is
//! append-only and never forgets, so it holds no personal data: it keeps the reference, order,
//! site and status, and for the citizen's words (reason and contact) only their SHA-256, which
//! still proves the stored appeal was not edited afterwards. The client address is kept in the
//! appeals table only, for rate limiting and abuse handling.

use std::fmt;
use std::str::FromStr;

use bawaba_policy::{OrderId, OrderStatus};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::random_bytes;
use crate::validate::{self, Lines, PUBLIC_ACTOR};
use crate::{append_audit, corrupt, record, Result, Store, StoreError};

/// Crockford's base-32 alphabet: digits and letters without I, L, O and U, so a reference read
/// aloud or retyped from paper survives.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters after `AP-` in a reference number.
const REFERENCE_LEN: usize = 10;

/// Identifier of an appeal in the store (staff use it; citizens use the reference number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppealId(pub i64);

impl fmt::Display for AppealId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an appeal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppealStatus {
    /// Filed, not yet answered.
    Open,
    /// Answered: the block stays.
    Upheld,
    /// Answered: the block is to be lifted (by revoking the order or removing the rule).
    Granted,
    /// Answered: the appeal is invalid (spam, wrong site, no grounds given).
    Rejected,
}

impl AppealStatus {
    /// Every status.
    pub const ALL: [AppealStatus; 4] =
        [AppealStatus::Open, AppealStatus::Upheld, AppealStatus::Granted, AppealStatus::Rejected];

    /// The lower-case name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AppealStatus::Open => "open",
            AppealStatus::Upheld => "upheld",
            AppealStatus::Granted => "granted",
            AppealStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for AppealStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppealStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<AppealStatus> {
        AppealStatus::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| StoreError::Invalid {
            field: "status",
            reason: format!(
                "unknown appeal status {s:?}; expected one of {}",
                AppealStatus::ALL.map(AppealStatus::as_str).join(", ")
            ),
        })
    }
}

/// What a citizen fills in to contest a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAppeal {
    /// The blocked site, as the citizen names it (1 to 253 characters, one line).
    pub site: String,
    /// Why the block is wrong (10 to 4000 characters).
    pub reason: String,
    /// How to reach the citizen, if they want an answer other than by reference number (at most
    /// 200 characters).
    pub contact: Option<String>,
    /// The order the block page named.
    pub order: OrderId,
}

/// An appeal as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appeal {
    /// Store identifier.
    pub id: AppealId,
    /// The citizen's reference number (`AP-` and 10 Crockford base-32 characters).
    pub reference: String,
    /// The contested order.
    pub order: OrderId,
    /// That order's instrument reference.
    pub order_reference: String,
    /// The blocked site.
    pub site: String,
    /// The citizen's reason.
    pub reason: String,
    /// The citizen's contact, if given.
    pub contact: Option<String>,
    /// Where it stands.
    pub status: AppealStatus,
    /// The answer, once answered.
    pub answer: Option<String>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// When it was filed (Unix seconds).
    pub filed_at: i64,
    /// When it was answered (Unix seconds).
    pub answered_at: Option<i64>,
}

/// What the audit log keeps of an appeal: no personal data, and a digest of the citizen's words.
#[derive(Serialize)]
struct AuditView<'a> {
    reference: &'a str,
    order: OrderId,
    site: &'a str,
    status: AppealStatus,
    /// SHA-256 (hex) of the JSON array `[reason, contact]`.
    statement_sha256: String,
    answer: Option<&'a str>,
    answered_by: Option<&'a str>,
    answered_at: Option<i64>,
}

impl Appeal {
    fn audit_view(&self) -> AuditView<'_> {
        let statement = serde_json::json!([self.reason, self.contact]).to_string();
        AuditView {
            reference: &self.reference,
            order: self.order,
            site: &self.site,
            status: self.status,
            statement_sha256: hex::encode(Sha256::digest(statement.as_bytes())),
            answer: self.answer.as_deref(),
            answered_by: self.answered_by.as_deref(),
            answered_at: self.answered_at,
        }
    }
}

fn appeal_object(reference: &str) -> String {
    format!("appeal:{reference}")
}

/// A fresh random reference number.
fn new_reference() -> Result<String> {
    let bytes = random_bytes::<REFERENCE_LEN>()?;
    // 256 is a multiple of 32, so the low five bits of a random byte are uniform.
    Ok(bytes.iter().fold(String::from("AP-"), |mut s, b| {
        s.push(char::from(CROCKFORD[usize::from(b & 31)]));
        s
    }))
}

/// A reference number as a person may type it: any case, surrounding blanks, and the letters
/// Crockford's alphabet reads as digits (I and L as 1, O as 0).
fn normalize_reference(reference: &str) -> String {
    let upper = reference.trim().to_ascii_uppercase();
    match upper.strip_prefix("AP-") {
        Some(code) => code.chars().fold(String::from("AP-"), |mut s, c| {
            s.push(match c {
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            });
            s
        }),
        None => upper,
    }
}

const APPEAL_SELECT: &str = "SELECT a.id, a.reference, a.order_id, o.reference, a.site, a.reason, a.contact, \
     a.status, a.answer, a.answered_by, a.filed_at, a.answered_at FROM appeals a JOIN orders o ON o.id = a.order_id";

fn appeal_from_row(r: &Row<'_>) -> Result<Appeal> {
    let id: i64 = r.get(0)?;
    let status: String = r.get(7)?;
    Ok(Appeal {
        id: AppealId(id),
        reference: r.get(1)?,
        order: OrderId(r.get(2)?),
        order_reference: r.get(3)?,
        site: r.get(4)?,
        reason: r.get(5)?,
        contact: r.get(6)?,
        status: status.parse().map_err(|e| corrupt("appeals", id, e))?,
        answer: r.get(8)?,
        answered_by: r.get(9)?,
        filed_at: r.get(10)?,
        answered_at: r.get(11)?,
    })
}

fn appeals_where(conn: &Connection, condition: &str, args: impl rusqlite::Params) -> Result<Vec<Appeal>> {
    let mut stmt = conn.prepare(&format!("{APPEAL_SELECT} WHERE {condition} ORDER BY a.filed_at DESC, a.id DESC"))?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(appeal_from_row(row)?);
    }
    Ok(out)
}

impl Store {
    /// Files a citizen's appeal and returns it with its reference number. Blanks around the site,
    /// reason and contact are trimmed, and an empty contact counts as none. Refused with
    /// [`StoreError::Invalid`], writing nothing, when the site is not 1 to 253 characters on one
    /// line, the reason not 10 to 4000 characters, the contact longer than 200, or the order does
    /// not exist or is still a draft (a draft blocks nothing). `client` (the caller's view of the
    /// sender, e.g. a /24) is stored for [`Store::appeals_from_client_since`] and abuse handling,
    /// and never shown or audited. Audited as `appeal.file` by `public`.
    pub fn file_appeal(&mut self, new: NewAppeal, client: &str, now: i64) -> Result<Appeal> {
        let site = new.site.trim();
        validate::text("site", site, 1, 253, Lines::Single)?;
        let reason = new.reason.trim();
        validate::text("reason", reason, 10, 4000, Lines::Multi)?;
        let contact = new.contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if let Some(contact) = contact {
            validate::text("contact", contact, 1, 200, Lines::Single)?;
        }
        validate::text("client", client, 0, 100, Lines::Single)?;
        let tx = self.conn.transaction()?;
        let order: Option<(String, String)> = tx
            .query_row("SELECT reference, status FROM orders WHERE id = ?1", [new.order.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let order_reference = match order {
            Some((reference, status)) if status != OrderStatus::Draft.as_str() => reference,
            _ => {
                return Err(StoreError::Invalid {
                    field: "order",
                    reason: format!("there is no order {} to appeal against", new.order),
                })
            }
        };
        let mut reference = new_reference()?;
        while tx.query_row("SELECT 1 FROM appeals WHERE reference = ?1", [&reference], |_| Ok(())).optional()?.is_some()
        {
            reference = new_reference()?;
        }
        tx.execute(
            "INSERT INTO appeals (reference, order_id, site, reason, contact, client, status, filed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![reference, new.order.0, site, reason, contact, client, AppealStatus::Open.as_str(), now],
        )?;
        let appeal = Appeal {
            id: AppealId(tx.last_insert_rowid()),
            reference,
            order: new.order,
            order_reference,
            site: site.into(),
            reason: reason.into(),
            contact: contact.map(str::to_string),
            status: AppealStatus::Open,
            answer: None,
            answered_by: None,
            filed_at: now,
            answered_at: None,
        };
        let object = appeal_object(&appeal.reference);
        append_audit(&tx, now, record(PUBLIC_ACTOR, "appeal.file", &object, None, Some(&appeal.audit_view()), None))?;
        tx.commit()?;
        Ok(appeal)
    }

    /// The appeal with this reference number, typed as a person may (any case; I, L and O read
    /// as 1, 1 and 0).
    pub fn appeal_by_reference(&self, reference: &str) -> Result<Option<Appeal>> {
        Ok(appeals_where(&self.conn, "a.reference = ?1", [normalize_reference(reference)])?.pop())
    }

    /// One appeal.
    pub fn appeal(&self, id: AppealId) -> Result<Appeal> {
        appeals_where(&self.conn, "a.id = ?1", [id.0])?.pop().ok_or(StoreError::NotFound { what: "appeal", id: id.0 })
    }

    /// Appeals, all or those with one status, newest first.
    pub fn appeals(&self, status: Option<AppealStatus>) -> Result<Vec<Appeal>> {
        appeals_where(&self.conn, "?1 IS NULL OR a.status = ?1", [status.map(AppealStatus::as_str)])
    }

    /// Answers an open appeal: `status` upholds, grants or rejects it, and `answer` (1 to 4000
    /// characters) says why; the citizen sees it under the reference number. An answer is final:
    /// answering again is refused with [`StoreError::AppealClosed`]. Granting does not lift the
    /// block by itself; that is a revocation or rule removal, audited on its own. Audited as
    /// `appeal.answer` with before and after.
    pub fn answer_appeal(
        &mut self,
        actor: &str,
        id: AppealId,
        status: AppealStatus,
        answer: &str,
        now: i64,
    ) -> Result<Appeal> {
        if status == AppealStatus::Open {
            return Err(StoreError::Invalid {
                field: "status",
                reason: "an answer upholds, grants or rejects the appeal; it cannot leave it open".into(),
            });
        }
        let answer = answer.trim();
        validate::text("answer", answer, 1, 4000, Lines::Multi)?;
        let tx = self.conn.transaction()?;
        let before =
            appeals_where(&tx, "a.id = ?1", [id.0])?.pop().ok_or(StoreError::NotFound { what: "appeal", id: id.0 })?;
        if before.status != AppealStatus::Open {
            return Err(StoreError::AppealClosed { reference: before.reference, status: before.status });
        }
        tx.execute(
            "UPDATE appeals SET status = ?1, answer = ?2, answered_by = ?3, answered_at = ?4 WHERE id = ?5",
            params![status.as_str(), answer, actor, now, id.0],
        )?;
        let after = Appeal {
            status,
            answer: Some(answer.into()),
            answered_by: Some(actor.into()),
            answered_at: Some(now),
            ..before.clone()
        };
        append_audit(
            &tx,
            now,
            record(
                actor,
                "appeal.answer",
                &appeal_object(&after.reference),
                Some(&before.audit_view()),
                Some(&after.audit_view()),
                None,
            ),
        )?;
        tx.commit()?;
        Ok(after)
    }

    /// How many appeals `client` filed at or after `since`, for the caller's rate limiter.
    pub fn appeals_from_client_since(&self, client: &str, since: i64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM appeals WHERE client = ?1 AND filed_at >= ?2",
            params![client, since],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_use_crockford_base32() {
        let a = new_reference().expect("randomness");
        let b = new_reference().expect("randomness");
        assert_ne!(a, b);
        for r in [&a, &b] {
            assert_eq!(r.len(), 13, "{r}");
            assert!(r.starts_with("AP-"), "{r}");
            assert!(r[3..].bytes().all(|c| CROCKFORD.contains(&c)), "{r}");
            assert!(!r[3..].contains(['I', 'L', 'O', 'U']), "{r}");
        }
    }

    #[test]
    fn references_are_read_as_typed() {
        assert_eq!(normalize_reference(" ap-0123abcdef "), "AP-0123ABCDEF");
        assert_eq!(normalize_reference("AP-OIL1234567"), "AP-0111234567");
        assert_eq!(normalize_reference("something else"), "SOMETHING ELSE");
    }
}
