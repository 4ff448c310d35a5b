//! Schema migrations, applied in order; `PRAGMA user_version` records how many have run.

/// Each entry upgrades the schema by one version. Never edit a released entry: append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: orders, rules, allowlist, audit log, publications.
    r#"
    CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        authority TEXT NOT NULL,
        reference TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        effective_from INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        category TEXT NOT NULL,
        summary TEXT NOT NULL,
        publishable INTEGER NOT NULL,
        appeal_contact TEXT NOT NULL,
        status TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        approved_by TEXT,
        revoked_by TEXT,
        revoked_at INTEGER,
        revoke_reason TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id),
        selector TEXT NOT NULL,
        action TEXT NOT NULL,
        forced_reason TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX rules_by_order_selector ON rules(order_id, selector);
    CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY,
        selector TEXT NOT NULL UNIQUE,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        object TEXT NOT NULL,
        before TEXT,
        after TEXT,
        reason TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE publications (
        version INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        rules INTEGER NOT NULL,
        audit_seq INTEGER NOT NULL,
        audit_hash TEXT NOT NULL
    );
    "#,
    // 2: console accounts (users, sessions, API tokens), citizens' appeals, and the approval time
    // of each order. Sessions and tokens are stored only as SHA-256 of their secret; passwords only
    // as argon2id PHC strings. `approved_at` of orders approved under version 1 comes from their
    // `order.approve` audit entry.
    r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions(user_id);
    CREATE INDEX sessions_by_expiry ON sessions(expires_at);
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id),
        label TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    );
    CREATE INDEX api_tokens_by_user ON api_tokens(user_id);
    CREATE TABLE appeals (
        id INTEGER PRIMARY KEY,
        reference TEXT NOT NULL UNIQUE,
        order_id INTEGER NOT NULL REFERENCES orders(id),
        site TEXT NOT NULL,
        reason TEXT NOT NULL,
        contact TEXT,
        client TEXT NOT NULL,
        status TEXT NOT NULL,
        answer TEXT,
        answered_by TEXT,
        filed_at INTEGER NOT NULL,
        answered_at INTEGER
    );
    CREATE INDEX appeals_by_client ON appeals(client, filed_at);
    CREATE INDEX appeals_by_status ON appeals(status, filed_at);
    ALTER TABLE orders ADD COLUMN approved_at INTEGER;
    UPDATE orders SET approved_at = (
        SELECT min(a.at) FROM audit a WHERE a.action = 'order.approve' AND a.object = 'order:' || orders.id
    ) WHERE approved_by IS NOT NULL;
    "#,
    // 3: attack records from the detector, one row per attack (upserted on start and end).
    r#"
    CREATE TABLE attacks (
        id INTEGER PRIMARY KEY,
        detector_id INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        target TEXT NOT NULL,
        prefix_len INTEGER NOT NULL,
        grp TEXT NOT NULL,
        vector TEXT NOT NULL,
        ended_ms INTEGER,
        peak_pps INTEGER NOT NULL,
        peak_bps INTEGER NOT NULL,
        record TEXT NOT NULL,
        decisions TEXT NOT NULL,
        UNIQUE (started_ms, target, detector_id)
    );
    CREATE INDEX attacks_by_start ON attacks(started_ms);
    "#,
    // 4: the audit log by object, actor and action, for an order's history and the console's filters.
    r#"
    CREATE INDEX audit_by_object ON audit(object);
    CREATE INDEX audit_by_actor ON audit(actor);
    CREATE INDEX audit_by_action ON audit(action);
    "#,
];

#[cfg(test)]
mod tests {
    use rusqlite::{params, Connection};

    use super::MIGRATIONS;
    use crate::{append_audit, AuditRecord, Store, StoreConfig};
    use bawaba_policy::OrderId;

    fn audit(conn: &mut Connection, at: i64, action: &str, object: &str) {
        let tx = conn.transaction().expect("transaction");
        let rec =
            AuditRecord { actor: "bob".into(), action: action.into(), object: object.into(), ..Default::default() };
        append_audit(&tx, at, rec).expect("audit append");
        tx.commit().expect("commit");
    }

    /// A database written by a version-1 program: an order approved at 500 (the time is only in
    /// the audit log), a draft, and one revoked at 900.
    fn version_1_file(path: &std::path::Path) {
        let mut conn = Connection::open(path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("migration 1");
        conn.pragma_update(None, "user_version", 1).expect("user_version");
        for (id, status, approved_by, revoked_at) in
            [(1, "approved", Some("bob"), None), (2, "draft", None, None), (3, "revoked", Some("bob"), Some(900))]
        {
            conn.execute(
                "INSERT INTO orders (id, authority, reference, issued_at, effective_from, expires_at, category, \
                 summary, publishable, appeal_contact, status, proposed_by, approved_by, revoked_by, revoked_at, \
                 revoke_reason, created_at) VALUES (?1, 'Court', ?2, 0, 0, 86400, 'malware', 'c2', 1, \
                 'appeals@example.test', ?3, 'alice', ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    format!("CFI-{id}"),
                    status,
                    approved_by,
                    revoked_at.map(|_| "carol"),
                    revoked_at,
                    revoked_at.map(|_| "quashed"),
                    id * 100
                ],
            )
            .expect("order row");
            audit(&mut conn, id * 100, "order.add", &format!("order:{id}"));
        }
        audit(&mut conn, 500, "order.approve", "order:1");
        // Another object whose name starts the same must not be taken for order 1.
        audit(&mut conn, 600, "order.approve", "order:10");
        audit(&mut conn, 700, "order.approve", "order:3");
        audit(&mut conn, 900, "order.revoke", "order:3");
    }

    #[test]
    fn a_version_1_database_is_upgraded_and_approval_times_backfilled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v1.db");
        version_1_file(&path);

        let store = Store::open(&path, StoreConfig::default()).expect("upgrade");
        let version: i64 = store.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let times = store.order_times().expect("order times");
        let got: Vec<_> = times.iter().map(|t| (t.id, t.created_at, t.approved_at, t.revoked_at)).collect();
        assert_eq!(
            got,
            vec![
                (OrderId(1), 100, Some(500), None),
                (OrderId(2), 200, None, None),
                (OrderId(3), 300, Some(700), Some(900))
            ]
        );
        assert!(store.verify_audit(None).expect("verify").is_intact(), "the upgrade leaves the log alone");
        assert_eq!(store.user_count().expect("users table"), 0);
        drop(store);

        // Opening again runs nothing twice.
        let store = Store::open(&path, StoreConfig::default()).expect("reopen");
        assert_eq!(store.order_times().expect("order times").len(), 3);
    }
}
