//! bawaba's policy store: orders, rules, allowlist and the audit log in SQLite.
//!
//! One [`Store`] wraps one SQLite database (WAL mode) in the data directory. Every method that
//! changes the policy runs in one transaction that also appends an [`audit`] entry, so the log and
//! the state can never disagree. The policy rules themselves ([`bawaba_policy`]) are applied here:
//! four-eyes approval, mandatory expiry, the collateral-damage guard, allowlist conflicts; a rule
//! can only be added to a draft order, so nothing is blocked that a second person did not approve.
//!
//! The same database holds what the web console needs: users with roles and argon2id password
//! hashes, login sessions and API tokens (stored only as SHA-256 of their secret), and citizens'
//! appeals against blocks. Changes to accounts, tokens and appeals are audited like policy
//! changes; see [`Role`], [`Session`], [`ApiToken`] and [`Appeal`]. Values from people and clients
//! are checked before anything is written, and a refusal is [`StoreError::Invalid`] naming the field.
//!
//! Storage sits behind this one type with plain-data inputs and outputs, so a PostgreSQL back end
//! can implement the same methods later.
//!
//! ```
//! use bawaba_store::{Store, StoreConfig, NewOrder};
//! use bawaba_policy::{Action, Category};
//! let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
//! let order = store.add_order("alice", NewOrder {
//!     authority: "Court".into(), reference: "CFI-1".into(), issued_at: 0, effective_from: 0,
//!     expires_at: 86_400, category: Category::Phishing, summary: "fake bank".into(),
//!     publishable: true, appeal_contact: "appeals@example.test".into(),
//! }, 0).unwrap();
//! store.add_rule("alice", order.id, &"bank.test".parse().unwrap(), Action::Nxdomain, None, 0).unwrap();
//! store.approve_order("bob", order.id, 1).unwrap();
//! let snapshot = store.snapshot(2).unwrap();
//! assert_eq!(snapshot.rules.len(), 1);
//! assert!(store.verify_audit(None).unwrap().is_intact());
//! ```

mod accounts;
mod appeals;
mod attacks;
pub mod audit;
mod schema;
mod secret;
mod sessions;
mod validate;

use std::path::Path;

use bawaba_policy::{
    check_allowlist, Action, AllowEntry, AllowId, Category, Guard, Order, OrderId, OrderStatus, PolicyError,
    PolicySnapshot, Revocation, Rule, RuleId, Selector,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use accounts::{LoginCheck, Role, User, UserId};
pub use appeals::{Appeal, AppealId, AppealStatus, NewAppeal};
pub use attacks::StoredAttack;
pub use audit::{AuditEntry, AuditProblem, AuditRecord, AuditReport};
pub use sessions::{ApiToken, Session, TokenId, TOKEN_PREFIX};

/// Errors from the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The request breaks a policy rule.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No such object.
    #[error("no {what} with id {id}")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// Rules can only change while their order is a draft.
    #[error("order {order} is {status}: rules can only be added to a draft order; record a new order instead")]
    OrderNotDraft {
        /// The order.
        order: OrderId,
        /// Its status.
        status: OrderStatus,
    },
    /// An order needs at least one rule before it can be approved.
    #[error("order {0} has no rules; add rules before approval")]
    EmptyOrder(OrderId),
    /// The same selector is already in this order, or already allowlisted; or a user name is taken.
    #[error("{selector} is already {place}")]
    Duplicate {
        /// The selector (or user name).
        selector: String,
        /// Where it is.
        place: String,
    },
    /// A stored row does not parse (the database was edited by hand or is from a newer version).
    #[error("corrupt {table} row {id}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Row id.
        id: i64,
        /// What is wrong.
        detail: String,
    },
    /// A value from a person or a client breaks a rule of its field; nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as the API and the forms name it (`name`, `password`, `site`, `reason`, ...).
        field: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// No object of this kind has that name.
    #[error("no {what} named {name:?}")]
    UnknownName {
        /// Kind of object.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// Only an open appeal can be answered.
    #[error("appeal {reference} was already answered ({status}); an answer is final")]
    AppealClosed {
        /// The appeal's reference number.
        reference: String,
        /// Its status.
        status: AppealStatus,
    },
    /// The system random source or the password hash failed (not the caller's fault).
    #[error("{what} failed: {detail}")]
    Crypto {
        /// What failed.
        what: &'static str,
        /// The library's message.
        detail: String,
    },
    /// The database schema is newer than this program.
    #[error("the database schema is version {found}, newer than this program's {known}; upgrade bawaba")]
    SchemaTooNew {
        /// In the file.
        found: i64,
        /// Known here.
        known: i64,
    },
}

/// Shorthand.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Policy limits the store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Longest validity of an order, in days.
    pub max_order_days: u32,
    /// The collateral-damage guard.
    pub guard: Guard,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { max_order_days: 365, guard: Guard::default() }
    }
}

/// What a proposer fills in for a new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Issuing authority.
    pub authority: String,
    /// The instrument's reference.
    pub reference: String,
    /// Issue date (Unix seconds).
    pub issued_at: i64,
    /// Enforcement start (Unix seconds).
    pub effective_from: i64,
    /// Enforcement end (Unix seconds).
    pub expires_at: i64,
    /// Legal ground.
    pub category: Category,
    /// Public summary.
    pub summary: String,
    /// Listed in the transparency report.
    pub publishable: bool,
    /// Where to appeal.
    pub appeal_contact: String,
}

/// The outcome of a bulk rule import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BulkReport {
    /// Rules added.
    pub added: u64,
    /// Selectors already in the order.
    pub duplicates: u64,
    /// Entries refused by a policy check, with the caller's line number and the reason.
    pub refused: Vec<(usize, String)>,
    /// SHA-256 of the added rules (`selector action\n` lines in input order), recorded in the audit log.
    pub digest: String,
}

/// A bundle publication record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    /// Policy version.
    pub version: i64,
    /// When.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// The bundle's file name.
    pub file: String,
    /// SHA-256 of the bundle payload (hex).
    pub sha256: String,
    /// Rules in it.
    pub rules: i64,
    /// The audit head it pins.
    pub audit_seq: i64,
    /// Its hash (hex).
    pub audit_hash: String,
}

/// When an order was recorded, approved and revoked (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTimes {
    /// The order.
    pub id: OrderId,
    /// Recorded as a draft.
    pub created_at: i64,
    /// Approved by the second person; None while a draft (or if the audit log of a version-1
    /// database held no approval entry for it).
    pub approved_at: Option<i64>,
    /// Revoked; None unless revoked.
    pub revoked_at: Option<i64>,
}

/// The policy store.
pub struct Store {
    conn: Connection,
    config: StoreConfig,
}

const ORDER_COLUMNS: &str = "id, authority, reference, issued_at, effective_from, expires_at, category, summary, \
     publishable, appeal_contact, status, proposed_by, approved_by, revoked_by, revoked_at, revoke_reason";

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Store::setup(conn, config)
    }

    /// An in-memory store, for tests and examples.
    pub fn open_in_memory(config: StoreConfig) -> Result<Store> {
        Store::setup(Connection::open_in_memory()?, config)
    }

    fn setup(mut conn: Connection, config: StoreConfig) -> Result<Store> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::SchemaTooNew { found: version, known });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Store { conn, config })
    }

    /// The limits in force.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    // ---- orders -------------------------------------------------------------------------------

    /// Records a new order as a draft.
    pub fn add_order(&mut self, actor: &str, new: NewOrder, now: i64) -> Result<Order> {
        let mut order = Order {
            id: OrderId(0),
            authority: new.authority,
            reference: new.reference,
            issued_at: new.issued_at,
            effective_from: new.effective_from,
            expires_at: new.expires_at,
            category: new.category,
            summary: new.summary,
            publishable: new.publishable,
            appeal_contact: new.appeal_contact,
            status: OrderStatus::Draft,
            proposed_by: actor.to_string(),
            approved_by: None,
            revoked: None,
        };
        order.validate(self.config.max_order_days)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO orders (authority, reference, issued_at, effective_from, expires_at, category, summary, \
             publishable, appeal_contact, status, proposed_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                order.authority,
                order.reference,
                order.issued_at,
                order.effective_from,
                order.expires_at,
                order.category.as_str(),
                order.summary,
                order.publishable,
                order.appeal_contact,
                order.status.as_str(),
                order.proposed_by,
                now
            ],
        )?;
        order.id = OrderId(tx.last_insert_rowid());
        append_audit(&tx, now, record(actor, "order.add", &order_object(order.id), None, Some(&order), None))?;
        tx.commit()?;
        Ok(order)
    }

    /// Approves a draft order. The approver must not be its proposer, and it must have rules.
    pub fn approve_order(&mut self, actor: &str, id: OrderId, now: i64) -> Result<Order> {
        let tx = self.conn.transaction()?;
        let before = load_order(&tx, id)?;
        let rules: i64 = tx.query_row("SELECT count(*) FROM rules WHERE order_id = ?1", [id.0], |r| r.get(0))?;
        let mut after = before.clone();
        after.approve(actor)?;
        if rules == 0 {
            return Err(StoreError::EmptyOrder(id));
        }
        tx.execute(
            "UPDATE orders SET status = ?1, approved_by = ?2, approved_at = ?3 WHERE id = ?4",
            params![after.status.as_str(), after.approved_by, now, id.0],
        )?;
        append_audit(&tx, now, record(actor, "order.approve", &order_object(id), Some(&before), Some(&after), None))?;
        tx.commit()?;
        Ok(after)
    }

    /// Revokes an order; its rules stop applying at the next compile.
    pub fn revoke_order(&mut self, actor: &str, id: OrderId, reason: &str, now: i64) -> Result<Order> {
        let tx = self.conn.transaction()?;
        let before = load_order(&tx, id)?;
        let mut after = before.clone();
        after.revoke(actor, now, reason)?;
        tx.execute(
            "UPDATE orders SET status = ?1, revoked_by = ?2, revoked_at = ?3, revoke_reason = ?4 WHERE id = ?5",
            params![after.status.as_str(), actor, now, reason, id.0],
        )?;
        append_audit(
            &tx,
            now,
            record(actor, "order.revoke", &order_object(id), Some(&before), Some(&after), Some(reason)),
        )?;
        tx.commit()?;
        Ok(after)
    }

    /// One order.
    pub fn order(&self, id: OrderId) -> Result<Order> {
        load_order(&self.conn, id)
    }

    /// All orders, oldest first.
    pub fn orders(&self) -> Result<Vec<Order>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"))?;
        let rows = stmt.query_map([], order_from_row)?;
        rows.map(|r| r?).collect()
    }

    /// The newest order with this instrument reference (references are not unique: an authority
    /// may reissue one), or None.
    pub fn order_by_reference(&self, reference: &str) -> Result<Option<Order>> {
        self.conn
            .query_row(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE reference = ?1 ORDER BY id DESC LIMIT 1"),
                [reference],
                order_from_row,
            )
            .optional()?
            .transpose()
    }

    /// When each order was recorded, approved and revoked, oldest first: the timeline the
    /// transparency report measures (time from recording to approval, how long blocks last).
    /// Orders approved before schema version 2 take their approval time from the audit log.
    pub fn order_times(&self) -> Result<Vec<OrderTimes>> {
        let mut stmt = self.conn.prepare("SELECT id, created_at, approved_at, revoked_at FROM orders ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(OrderTimes {
                id: OrderId(r.get(0)?),
                created_at: r.get(1)?,
                approved_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of rules per order (an order without rules is absent).
    pub fn rule_counts(&self) -> Result<std::collections::HashMap<OrderId, i64>> {
        let mut stmt = self.conn.prepare("SELECT order_id, count(*) FROM rules GROUP BY order_id")?;
        let rows = stmt.query_map([], |r| Ok((OrderId(r.get(0)?), r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- rules --------------------------------------------------------------------------------

    /// Adds one rule to a draft order. `force` carries the reason for overriding the guard or an
    /// allowlist overlap; it is stored with the rule and in the audit log.
    pub fn add_rule(
        &mut self,
        actor: &str,
        order: OrderId,
        selector: &Selector,
        action: Action,
        force: Option<&str>,
        now: i64,
    ) -> Result<Rule> {
        let allow = self.allowlist()?;
        let tx = self.conn.transaction()?;
        require_draft(&tx, order)?;
        check_rule(&self.config.guard, &allow, selector, force)?;
        let text = selector.to_string();
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO rules (order_id, selector, action, forced_reason, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![order.0, text, action.as_str(), force, actor, now],
        )?;
        if inserted == 0 {
            return Err(StoreError::Duplicate { selector: text, place: format!("in order {order}") });
        }
        let rule = Rule {
            id: RuleId(tx.last_insert_rowid()),
            order,
            selector: selector.clone(),
            action,
            forced: force.map(str::to_string),
        };
        let action_name = if force.is_some() { "rule.add-forced" } else { "rule.add" };
        append_audit(&tx, now, record(actor, action_name, &format!("rule:{}", rule.id), None, Some(&rule), force))?;
        tx.commit()?;
        Ok(rule)
    }

    /// Adds many rules to a draft order in one transaction with one audit entry that records the
    /// count, the source and a digest of exactly what was added. Entries refused by the guard or
    /// the allowlist are reported with the caller's line number; nothing is dropped silently.
    /// `progress` is called with the number of entries processed so far.
    pub fn import_rules(
        &mut self,
        actor: &str,
        order: OrderId,
        source: &str,
        entries: impl IntoIterator<Item = (usize, Selector, Action)>,
        now: i64,
        mut progress: impl FnMut(u64),
    ) -> Result<BulkReport> {
        let allow = self.allowlist()?;
        let guard = self.config.guard;
        let tx = self.conn.transaction()?;
        require_draft(&tx, order)?;
        let mut report = BulkReport::default();
        let mut digest = Sha256::new();
        let first_id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM rules", [], |r| r.get(0))?;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO rules (order_id, selector, action, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (n, (line, selector, action)) in entries.into_iter().enumerate() {
                if n % 4096 == 0 {
                    progress(n as u64);
                }
                if let Err(e) = check_rule(&guard, &allow, &selector, None) {
                    report.refused.push((line, e.to_string()));
                    continue;
                }
                let text = selector.to_string();
                if insert.execute(params![order.0, text, action.as_str(), actor, now])? == 0 {
                    report.duplicates += 1;
                    continue;
                }
                digest.update(text.as_bytes());
                digest.update(b" ");
                digest.update(action.as_str().as_bytes());
                digest.update(b"\n");
                report.added += 1;
            }
        }
        report.digest = hex::encode(digest.finalize());
        let summary = serde_json::json!({
            "order": order.0, "source": source, "added": report.added, "duplicates": report.duplicates,
            "refused": report.refused.len(), "first_rule_id": first_id, "sha256": report.digest,
        });
        append_audit(
            &tx,
            now,
            AuditRecord {
                actor: actor.into(),
                action: "rules.import".into(),
                object: order_object(order),
                before: None,
                after: Some(summary.to_string()),
                reason: None,
            },
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// Removes a rule. Removing only narrows blocking, so it is allowed on approved orders too;
    /// the reason is recorded.
    pub fn remove_rule(&mut self, actor: &str, id: RuleId, reason: &str, now: i64) -> Result<Rule> {
        require_reason(reason)?;
        let tx = self.conn.transaction()?;
        let rule = load_rule(&tx, id)?;
        tx.execute("DELETE FROM rules WHERE id = ?1", [id.0])?;
        append_audit(&tx, now, record(actor, "rule.remove", &format!("rule:{id}"), Some(&rule), None, Some(reason)))?;
        tx.commit()?;
        Ok(rule)
    }

    /// Rules, optionally of one order, in id order.
    pub fn rules(&self, order: Option<OrderId>) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT id, order_id, selector, action, forced_reason FROM rules \
             WHERE ?1 IS NULL OR order_id = ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([order.map(|o| o.0)])?;
        while let Some(row) = rows.next()? {
            out.push(rule_from_row(row)?);
        }
        Ok(out)
    }

    // ---- allowlist ----------------------------------------------------------------------------

    /// Adds an allowlist entry. Names and prefixes on it are never blocked.
    pub fn add_allow(&mut self, actor: &str, selector: &Selector, reason: &str, now: i64) -> Result<AllowEntry> {
        require_reason(reason)?;
        let tx = self.conn.transaction()?;
        let text = selector.to_string();
        if tx.execute(
            "INSERT OR IGNORE INTO allowlist (selector, reason, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![text, reason, actor, now],
        )? == 0
        {
            return Err(StoreError::Duplicate { selector: text, place: "on the allowlist".into() });
        }
        let entry =
            AllowEntry { id: AllowId(tx.last_insert_rowid()), selector: selector.clone(), reason: reason.into() };
        append_audit(&tx, now, record(actor, "allow.add", &format!("allow:{}", entry.id), None, Some(&entry), None))?;
        tx.commit()?;
        Ok(entry)
    }

    /// Removes an allowlist entry.
    pub fn remove_allow(&mut self, actor: &str, id: AllowId, reason: &str, now: i64) -> Result<AllowEntry> {
        require_reason(reason)?;
        let tx = self.conn.transaction()?;
        let entry = allowlist_in(&tx)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(StoreError::NotFound { what: "allow entry", id: id.0 })?;
        tx.execute("DELETE FROM allowlist WHERE id = ?1", [id.0])?;
        append_audit(
            &tx,
            now,
            record(actor, "allow.remove", &format!("allow:{id}"), Some(&entry), None, Some(reason)),
        )?;
        tx.commit()?;
        Ok(entry)
    }

    /// The allowlist, in id order.
    pub fn allowlist(&self) -> Result<Vec<AllowEntry>> {
        allowlist_in(&self.conn)
    }

    // ---- snapshot -----------------------------------------------------------------------------

    /// The orders in force at `now`, their rules and the allowlist: what enforcement applies.
    /// Expired and revoked orders drop out here, without anyone acting.
    pub fn snapshot(&self, now: i64) -> Result<PolicySnapshot> {
        let orders: Vec<Order> = self.orders()?.into_iter().filter(|o| o.is_in_force(now)).collect();
        let mut rules = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT r.id, r.order_id, r.selector, r.action, r.forced_reason FROM rules r \
                 JOIN orders o ON o.id = r.order_id \
                 WHERE o.status = 'approved' AND o.effective_from <= ?1 AND o.expires_at > ?1 ORDER BY r.id",
            )?;
            let mut rows = stmt.query([now])?;
            while let Some(row) = rows.next()? {
                rules.push(rule_from_row(row)?);
            }
        }
        let version = self.latest_publication()?.map_or(0, |p| p.version as u64);
        Ok(PolicySnapshot { version, taken_at: now, orders, rules, allow: self.allowlist()? })
    }

    // ---- publications -------------------------------------------------------------------------

    /// The version the next published bundle gets.
    pub fn next_bundle_version(&self) -> Result<u64> {
        let v: i64 = self.conn.query_row("SELECT coalesce(max(version), 0) + 1 FROM publications", [], |r| r.get(0))?;
        Ok(v as u64)
    }

    /// Records a published bundle (and audits it).
    pub fn record_publication(&mut self, p: &Publication) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO publications (version, at, actor, file, sha256, rules, audit_seq, audit_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![p.version, p.at, p.actor, p.file, p.sha256, p.rules, p.audit_seq, p.audit_hash],
        )?;
        let after = serde_json::to_string(p).ok();
        append_audit(
            &tx,
            p.at,
            AuditRecord {
                actor: p.actor.clone(),
                action: "bundle.publish".into(),
                object: format!("bundle:{}", p.version),
                before: None,
                after,
                reason: None,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The newest publication.
    pub fn latest_publication(&self) -> Result<Option<Publication>> {
        Ok(self
            .conn
            .query_row(
                "SELECT version, at, actor, file, sha256, rules, audit_seq, audit_hash FROM publications \
                 ORDER BY version DESC LIMIT 1",
                [],
                |r| {
                    Ok(Publication {
                        version: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        file: r.get(3)?,
                        sha256: r.get(4)?,
                        rules: r.get(5)?,
                        audit_seq: r.get(6)?,
                        audit_hash: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    // ---- audit --------------------------------------------------------------------------------

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit_query(after, limit, None, None, None)
    }

    /// Audit entries with `seq > after` that match every filter given, oldest first, at most
    /// `limit`: `actor` exactly, `action` as a prefix (`order.`), `objects` any of them exactly.
    pub fn audit_query(
        &self,
        after: i64,
        limit: usize,
        actor: Option<&str>,
        action: Option<&str>,
        objects: Option<&[String]>,
    ) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("{AUDIT_SELECT} WHERE seq > ?");
        let mut args: Vec<rusqlite::types::Value> = vec![after.into()];
        if let Some(a) = actor {
            sql.push_str(" AND actor = ?");
            args.push(a.to_string().into());
        }
        if let Some(a) = action {
            // A prefix match without LIKE's wildcards: the range [a, a + U+10FFFF).
            sql.push_str(" AND action >= ? AND action < ?");
            args.push(a.to_string().into());
            args.push(format!("{a}\u{10ffff}").into());
        }
        if let Some(objects) = objects {
            if objects.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND object IN (");
            sql.push_str(&vec!["?"; objects.len()].join(","));
            sql.push(')');
            args.extend(objects.iter().map(|o| rusqlite::types::Value::from(o.clone())));
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        args.push((limit.min(i64::MAX as usize) as i64).into());
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), audit_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The audit entries about one order, oldest first: the order itself, its rules now, and
    /// every rule change that names the order (so a rule removed since shows its addition and
    /// its removal). One query, however many rules the order has.
    pub fn order_audit(&self, order: OrderId) -> Result<Vec<AuditEntry>> {
        // Rules are audited as JSON with `order` before other fields: `"order":7,`.
        let needle = format!("\"order\":{},", order.0);
        let mut stmt = self.conn.prepare(&format!(
            "{AUDIT_SELECT} \
             WHERE object = ?1 \
                OR object IN (SELECT 'rule:' || id FROM rules WHERE order_id = ?2) \
                OR (action >= 'rule' AND action < 'rulf' \
                    AND (instr(coalesce(after, ''), ?3) > 0 OR instr(coalesce(before, ''), ?3) > 0)) \
             ORDER BY seq"
        ))?;
        let rows = stmt.query_map(params![format!("order:{}", order.0), order.0, needle], audit_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest audit entry's (seq, hash).
    pub fn audit_head(&self) -> Result<(i64, String)> {
        Ok(self
            .conn
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, hex::encode(audit::GENESIS))))
    }

    /// Records an operational action taken outside the policy tables (a manual BGP mitigation,
    /// for instance) in the audit log, so it carries the acting identity like every policy change.
    /// `action` is a dotted name such as `mitigation.announce`; `after` is what was done, as JSON.
    pub fn record_action(
        &mut self,
        actor: &str,
        action: &str,
        object: &str,
        after: &serde_json::Value,
        reason: Option<&str>,
        now: i64,
    ) -> Result<()> {
        if action.is_empty() || object.is_empty() || actor.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "action",
                reason: "actor, action and object are required".into(),
            });
        }
        let tx = self.conn.transaction()?;
        append_audit(&tx, now, record(actor, action, object, None, Some(after), reason))?;
        tx.commit()?;
        Ok(())
    }

    /// Recomputes the whole chain. `expected_head` is the (seq, hash) a signed bundle pinned.
    pub fn verify_audit(&self, expected_head: Option<(i64, &str)>) -> Result<AuditReport> {
        let mut stmt = self.conn.prepare(&format!("{AUDIT_SELECT} ORDER BY seq"))?;
        let rows = stmt.query_map([], audit_from_row)?;
        let entries: Vec<AuditEntry> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(audit::verify_chain(entries, expected_head))
    }
}

// ---- helpers ----------------------------------------------------------------------------------

fn order_object(id: OrderId) -> String {
    format!("order:{id}")
}

fn record<T: Serialize>(
    actor: &str,
    action: &str,
    object: &str,
    before: Option<&T>,
    after: Option<&T>,
    reason: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        actor: actor.into(),
        action: action.into(),
        object: object.into(),
        before: before.and_then(|b| serde_json::to_string(b).ok()),
        after: after.and_then(|a| serde_json::to_string(a).ok()),
        reason: reason.map(str::to_string),
    }
}

fn append_audit(tx: &Transaction<'_>, now: i64, rec: AuditRecord) -> Result<()> {
    let (seq, prev): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, hex::encode(audit::GENESIS)));
    let mut prev_bytes = [0u8; 32];
    hex::decode_to_slice(&prev, &mut prev_bytes).map_err(|e| StoreError::Corrupt {
        table: "audit",
        id: seq,
        detail: format!("hash: {e}"),
    })?;
    let seq = seq + 1;
    let hash = audit::entry_hash(seq, now, &rec, &prev_bytes);
    tx.execute(
        "INSERT INTO audit (seq, at, actor, action, object, before, after, reason, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            seq,
            now,
            rec.actor,
            rec.action,
            rec.object,
            rec.before,
            rec.after,
            rec.reason,
            prev,
            hex::encode(hash)
        ],
    )?;
    Ok(())
}

/// Removals and allowlist changes must say why: the reason goes into the audit log.
fn require_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(PolicyError::MissingField("reason").into());
    }
    Ok(())
}

fn check_rule(guard: &Guard, allow: &[AllowEntry], selector: &Selector, force: Option<&str>) -> Result<()> {
    if let Some(reason) = force {
        if reason.trim().is_empty() {
            return Err(PolicyError::ForceWithoutReason.into());
        }
    } else {
        guard.check(selector)?;
    }
    check_allowlist(selector, allow, force.is_some())?;
    Ok(())
}

fn require_draft(conn: &Connection, id: OrderId) -> Result<()> {
    let order = load_order(conn, id)?;
    if order.status != OrderStatus::Draft {
        return Err(StoreError::OrderNotDraft { order: id, status: order.status });
    }
    Ok(())
}

fn corrupt(table: &'static str, id: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, id, detail: e.to_string() }
}

fn allowlist_in(conn: &Connection) -> Result<Vec<AllowEntry>> {
    let mut stmt = conn.prepare("SELECT id, selector, reason FROM allowlist ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let text: String = row.get(1)?;
        let selector = text.parse().map_err(|e: PolicyError| corrupt("allowlist", id, e))?;
        out.push(AllowEntry { id: AllowId(id), selector, reason: row.get(2)? });
    }
    Ok(out)
}

fn load_order(conn: &Connection, id: OrderId) -> Result<Order> {
    conn.query_row(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"), [id.0], order_from_row)
        .optional()?
        .ok_or(StoreError::NotFound { what: "order", id: id.0 })?
}

fn load_rule(conn: &Connection, id: RuleId) -> Result<Rule> {
    let mut stmt = conn.prepare("SELECT id, order_id, selector, action, forced_reason FROM rules WHERE id = ?1")?;
    let mut rows = stmt.query([id.0])?;
    match rows.next()? {
        Some(row) => rule_from_row(row),
        None => Err(StoreError::NotFound { what: "rule", id: id.0 }),
    }
}

fn order_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Order>> {
    let id: i64 = r.get(0)?;
    let category: String = r.get(6)?;
    let status: String = r.get(10)?;
    let revoked_by: Option<String> = r.get(13)?;
    let parsed = (|| -> Result<Order> {
        Ok(Order {
            id: OrderId(id),
            authority: r.get(1)?,
            reference: r.get(2)?,
            issued_at: r.get(3)?,
            effective_from: r.get(4)?,
            expires_at: r.get(5)?,
            category: category.parse().map_err(|e| corrupt("orders", id, e))?,
            summary: r.get(7)?,
            publishable: r.get(8)?,
            appeal_contact: r.get(9)?,
            status: status.parse().map_err(|e| corrupt("orders", id, e))?,
            proposed_by: r.get(11)?,
            approved_by: r.get(12)?,
            revoked: match revoked_by {
                Some(by) => Some(Revocation { by, at: r.get(14)?, reason: r.get(15)? }),
                None => None,
            },
        })
    })();
    Ok(parsed)
}

fn rule_from_row(r: &rusqlite::Row<'_>) -> Result<Rule> {
    let id: i64 = r.get(0)?;
    let selector: String = r.get(2)?;
    let action: String = r.get(3)?;
    Ok(Rule {
        id: RuleId(id),
        order: OrderId(r.get(1)?),
        selector: selector.parse().map_err(|e| corrupt("rules", id, e))?,
        action: action.parse().map_err(|e| corrupt("rules", id, e))?,
        forced: r.get(4)?,
    })
}

/// The columns `audit_from_row` reads, in its order.
const AUDIT_SELECT: &str = "SELECT seq, at, actor, action, object, before, after, reason, prev_hash, hash FROM audit";

fn audit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        object: r.get(4)?,
        before: r.get(5)?,
        after: r.get(6)?,
        reason: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}
