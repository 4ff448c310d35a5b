//! The tamper-evident audit log.
//!
//! Every change to the policy appends one entry in the same SQLite transaction as the change.
//! Each entry carries the hash of the entry before it, so the log is a hash chain:
//!
//! ```text
//! hash(n) = SHA-256( "bawaba-audit-v1" || field(seq) || field(at) || field(actor) || field(action)
//!                    || field(object) || field(before) || field(after) || field(reason) || prev_hash(n) )
//! field(x) = u32 big-endian length || bytes      (an absent value is the length 0xFFFFFFFF, no bytes)
//! prev_hash(1) = 32 zero bytes
//! ```
//!
//! [`verify_chain`] recomputes the chain and names the first entry that was edited, deleted or moved.
//! Deleting the newest entries leaves a shorter but consistent chain; to catch that, every published
//! bundle records the head (sequence number and hash), and verification checks the log against it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash of the entry before the first one.
pub const GENESIS: [u8; 32] = [0; 32];

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who made the change.
    pub actor: String,
    /// What kind of change (`order.add`, `order.approve`, `rule.add`, `rules.import`, `user.create`,
    /// `user.login`, `token.revoke`, `appeal.file`, `appeal.answer`, ...).
    pub action: String,
    /// What it changed (`order:12`, `rule:3401`, `allow:2`, `bundle:7`, `user:alice`, `token:3`,
    /// `appeal:AP-7K2M9Q4X1B`).
    pub object: String,
    /// The object before the change, as JSON.
    pub before: Option<String>,
    /// The object after the change, as JSON.
    pub after: Option<String>,
    /// A reason given by the actor (revocations, forced guards, removals).
    pub reason: Option<String>,
    /// Hash of the previous entry (hex).
    pub prev_hash: String,
    /// Hash of this entry (hex).
    pub hash: String,
}

/// The fields of an entry that the caller provides; the store adds sequence and hashes.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    /// Who made the change.
    pub actor: String,
    /// What kind of change.
    pub action: String,
    /// What it changed.
    pub object: String,
    /// Before, as JSON.
    pub before: Option<String>,
    /// After, as JSON.
    pub after: Option<String>,
    /// Reason.
    pub reason: Option<String>,
}

fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            // Entries are far below 4 GiB; saturate rather than wrap if one ever is not.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX - 1);
            h.update(len.to_be_bytes());
            h.update(bytes);
        }
        None => h.update(u32::MAX.to_be_bytes()),
    }
}

/// Computes the hash of an entry from its fields and the previous hash.
pub fn entry_hash(seq: i64, at: i64, rec: &AuditRecord, prev_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"bawaba-audit-v1");
    field(&mut h, Some(&seq.to_be_bytes()));
    field(&mut h, Some(&at.to_be_bytes()));
    field(&mut h, Some(rec.actor.as_bytes()));
    field(&mut h, Some(rec.action.as_bytes()));
    field(&mut h, Some(rec.object.as_bytes()));
    field(&mut h, rec.before.as_deref().map(str::as_bytes));
    field(&mut h, rec.after.as_deref().map(str::as_bytes));
    field(&mut h, rec.reason.as_deref().map(str::as_bytes));
    h.update(prev_hash);
    h.finalize().into()
}

impl AuditEntry {
    fn record(&self) -> AuditRecord {
        AuditRecord {
            actor: self.actor.clone(),
            action: self.action.clone(),
            object: self.object.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// What is wrong with the chain, at which entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AuditProblem {
    /// Entry `seq`'s content does not match its hash: it was edited (or its hash was).
    Edited {
        /// The entry.
        seq: i64,
    },
    /// Entries are missing: `seq` follows `after` directly.
    Missing {
        /// The last intact entry before the gap (0 for the start).
        after: i64,
        /// The next entry present.
        seq: i64,
    },
    /// Entry `seq` does not link to the entry before it: entries were removed, inserted or moved.
    BrokenLink {
        /// The entry whose `prev_hash` is wrong.
        seq: i64,
    },
    /// The log ends before, or differs at, the head recorded in a signed bundle.
    HeadMismatch {
        /// The head the bundle recorded.
        expected_seq: i64,
        /// What the log has at that position (None: the entry is gone).
        found_hash: Option<String>,
    },
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Edited { seq } => write!(f, "entry {seq} was altered: its content does not match its hash"),
            AuditProblem::Missing { after, seq } => {
                write!(f, "entries {}..{} are missing: entry {seq} follows entry {after}", after + 1, seq - 1)
            }
            AuditProblem::BrokenLink { seq } => write!(
                f,
                "entry {seq} does not link to the entry before it: entries were removed, inserted or reordered"
            ),
            AuditProblem::HeadMismatch { expected_seq, found_hash: None } => write!(
                f,
                "a signed bundle recorded entry {expected_seq} as part of the log, but the log no longer has it: \
                 the newest entries were deleted"
            ),
            AuditProblem::HeadMismatch { expected_seq, found_hash: Some(_) } => write!(
                f,
                "entry {expected_seq} differs from the hash a signed bundle recorded: the history was rewritten"
            ),
        }
    }
}

/// The outcome of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries read.
    pub entries: u64,
    /// The newest entry's sequence number and hash (hex), if any.
    pub head: Option<(i64, String)>,
    /// The first problem found, if any.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// True when the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies a chain given in sequence order. `expected_head` is a (seq, hex hash) pair that a
/// signed bundle recorded; the log must contain exactly that entry.
pub fn verify_chain(entries: impl IntoIterator<Item = AuditEntry>, expected_head: Option<(i64, &str)>) -> AuditReport {
    let mut prev = GENESIS;
    let mut prev_seq = 0;
    let mut count = 0;
    let mut head = None;
    let mut problem = None;
    let mut head_found = None;
    for e in entries {
        count += 1;
        if problem.is_none() {
            let stored_prev = decode_hash(&e.prev_hash);
            let computed = entry_hash(e.seq, e.at, &e.record(), &stored_prev.unwrap_or(GENESIS));
            if e.seq != prev_seq + 1 {
                problem = Some(if e.seq > prev_seq + 1 {
                    AuditProblem::Missing { after: prev_seq, seq: e.seq }
                } else {
                    AuditProblem::BrokenLink { seq: e.seq }
                });
            } else if stored_prev.is_none() || decode_hash(&e.hash) != Some(computed) {
                problem = Some(AuditProblem::Edited { seq: e.seq });
            } else if stored_prev != Some(prev) {
                problem = Some(AuditProblem::BrokenLink { seq: e.seq });
            }
            prev = computed;
        }
        if let Some((seq, _)) = expected_head {
            if e.seq == seq {
                head_found = Some(e.hash.clone());
            }
        }
        prev_seq = e.seq;
        head = Some((e.seq, e.hash));
    }
    if problem.is_none() {
        if let Some((seq, hash)) = expected_head {
            if head_found.as_deref() != Some(hash) {
                problem = Some(AuditProblem::HeadMismatch { expected_seq: seq, found_hash: head_found });
            }
        }
    }
    AuditReport { entries: count, head, problem }
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let rec = AuditRecord {
                    actor: "alice".into(),
                    action: "order.add".into(),
                    object: format!("order:{seq}"),
                    before: None,
                    after: Some(format!("{{\"id\":{seq}}}")),
                    reason: None,
                };
                let hash = entry_hash(seq, 100 + seq, &rec, &prev);
                let e = AuditEntry {
                    seq,
                    at: 100 + seq,
                    actor: rec.actor,
                    action: rec.action,
                    object: rec.object,
                    before: rec.before,
                    after: rec.after,
                    reason: rec.reason,
                    prev_hash: hex::encode(prev),
                    hash: hex::encode(hash),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let head = c[4].hash.clone();
        let r = verify_chain(c, Some((5, &head)));
        assert!(r.is_intact(), "{:?}", r.problem);
        assert_eq!(r.entries, 5);
        assert_eq!(r.head.unwrap().0, 5);
    }

    #[test]
    fn detects_edit_delete_reorder_truncate() {
        let mut c = chain(5);
        c[2].actor = "mallory".into();
        assert_eq!(verify_chain(c, None).problem, Some(AuditProblem::Edited { seq: 3 }));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_chain(c, None).problem, Some(AuditProblem::Missing { after: 1, seq: 3 }));

        let mut c = chain(5);
        c.swap(1, 2);
        assert!(verify_chain(c, None).problem.is_some());

        // Renumbering after a deletion keeps seq contiguous but breaks the content hash.
        let mut c = chain(5);
        c.remove(1);
        for (i, e) in c.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify_chain(c, None).problem, Some(AuditProblem::Edited { seq: 2 }));

        let c = chain(5);
        let head = c[4].hash.clone();
        let truncated: Vec<_> = c.into_iter().take(3).collect();
        assert_eq!(
            verify_chain(truncated, Some((5, &head))).problem,
            Some(AuditProblem::HeadMismatch { expected_seq: 5, found_hash: None })
        );
    }
}
