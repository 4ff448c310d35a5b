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
];
