//! The store enforces the policy rules and keeps an audit log that detects tampering with the
//! SQLite file itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_policy::{Action, Category, OrderId, OrderStatus, PolicyError, Selector};
use bawaba_store::{AuditProblem, NewOrder, Store, StoreConfig, StoreError};
use rusqlite::Connection;

const DAY: i64 = 86_400;

fn new_order(reference: &str, from: i64, days: i64) -> NewOrder {
    NewOrder {
        authority: "Court of First Instance, Baghdad".into(),
        reference: reference.into(),
        issued_at: from,
        effective_from: from,
        expires_at: from + days * DAY,
        category: Category::Malware,
        summary: "Botnet command and control".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
    }
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

/// A draft order with one rule, approved by a second person.
fn active_order(store: &mut Store, reference: &str, selector: &str, now: i64) -> OrderId {
    let o = store.add_order("alice", new_order(reference, now, 30), now).unwrap();
    store.add_rule("alice", o.id, &sel(selector), Action::Nxdomain, None, now).unwrap();
    store.approve_order("bob", o.id, now).unwrap();
    o.id
}

#[test]
fn nothing_is_enforced_without_second_approval() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    let o = store.add_order("alice", new_order("CFI-1", 0, 30), 0).unwrap();
    store.add_rule("alice", o.id, &sel("c2.example.test"), Action::Nxdomain, None, 0).unwrap();
    assert!(store.snapshot(10).unwrap().rules.is_empty(), "a draft is not enforced");

    let err = store.approve_order("alice", o.id, 1).unwrap_err();
    assert!(matches!(err, StoreError::Policy(PolicyError::SelfApproval { .. })), "{err}");
    assert_eq!(store.order(o.id).unwrap().status, OrderStatus::Draft);

    store.approve_order("bob", o.id, 2).unwrap();
    let snap = store.snapshot(10).unwrap();
    assert_eq!(snap.rules.len(), 1);
    assert_eq!(snap.orders[0].approved_by.as_deref(), Some("bob"));

    // After approval the rule set is frozen: adding would bypass the second pair of eyes.
    let err = store.add_rule("alice", o.id, &sel("more.example.test"), Action::Nxdomain, None, 3).unwrap_err();
    assert!(matches!(err, StoreError::OrderNotDraft { .. }), "{err}");
}

#[test]
fn empty_orders_cannot_be_approved() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    let o = store.add_order("alice", new_order("CFI-2", 0, 30), 0).unwrap();
    assert!(matches!(store.approve_order("bob", o.id, 1), Err(StoreError::EmptyOrder(_))));
}

#[test]
fn expired_and_revoked_orders_stop_applying() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    let a = active_order(&mut store, "CFI-A", "a.example.test", 0);
    let b = active_order(&mut store, "CFI-B", "b.example.test", 0);
    assert_eq!(store.snapshot(DAY).unwrap().rules.len(), 2);
    // Order A expires at 30 days without anyone acting.
    let snap = store.snapshot(30 * DAY).unwrap();
    assert_eq!(snap.orders.len(), 0);
    assert_eq!(store.order(a).unwrap().status_at(30 * DAY), OrderStatus::Expired);
    // Revocation takes effect at once.
    store.revoke_order("carol", b, "quashed on appeal", 2 * DAY).unwrap();
    let snap = store.snapshot(2 * DAY + 1).unwrap();
    assert_eq!(snap.rules.iter().map(|r| r.order).collect::<Vec<_>>(), vec![a]);
}

#[test]
fn orders_longer_than_the_maximum_are_refused() {
    let mut store = Store::open_in_memory(StoreConfig { max_order_days: 90, ..Default::default() }).unwrap();
    let err = store.add_order("alice", new_order("CFI-LONG", 0, 91), 0).unwrap_err();
    assert!(err.to_string().contains("maximum is 90 days"), "{err}");
}

#[test]
fn guard_override_is_recorded_with_its_reason() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    let o = store.add_order("alice", new_order("CFI-NET", 0, 30), 0).unwrap();
    let err = store.add_rule("alice", o.id, &sel("198.18.0.0/16"), Action::Drop, None, 0).unwrap_err();
    assert!(matches!(err, StoreError::Policy(PolicyError::TooBroad { min: 24, .. })), "{err}");
    let err = store.add_rule("alice", o.id, &sel("198.18.0.0/16"), Action::Drop, Some(" "), 0).unwrap_err();
    assert!(matches!(err, StoreError::Policy(PolicyError::ForceWithoutReason)), "{err}");

    let rule = store
        .add_rule(
            "alice",
            o.id,
            &sel("198.18.0.0/16"),
            Action::Drop,
            Some("whole botnet hosting range, court annex 2"),
            0,
        )
        .unwrap();
    assert_eq!(rule.forced.as_deref(), Some("whole botnet hosting range, court annex 2"));
    let audit = store.audit_entries(0, 100).unwrap();
    let forced = audit.iter().find(|e| e.action == "rule.add-forced").expect("forced add audited");
    assert_eq!(forced.reason.as_deref(), Some("whole botnet hosting range, court annex 2"));
    assert!(forced.after.as_deref().unwrap().contains("198.18.0.0/16"));
}

#[test]
fn allowlist_conflicts_are_refused_with_the_entry_named() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    store.add_allow("admin", &sel("gov.test"), "government portals", 0).unwrap();
    let o = store.add_order("alice", new_order("CFI-GOV", 0, 30), 0).unwrap();
    let err = store.add_rule("alice", o.id, &sel("test"), Action::Nxdomain, None, 0).unwrap_err();
    assert!(err.to_string().contains("gov.test"), "{err}");
    let err = store.add_rule("alice", o.id, &sel("mail.gov.test"), Action::Nxdomain, Some("x"), 0).unwrap_err();
    assert!(matches!(err, StoreError::Policy(PolicyError::InsideAllowlisted { .. })), "{err}");
}

#[test]
fn import_reports_refusals_and_duplicates_and_audits_one_digest() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    store.add_allow("admin", &sel("198.18.9.0/24"), "gateway resolvers", 0).unwrap();
    let o = store.add_order("alice", new_order("CFI-BULK", 0, 30), 0).unwrap();
    let entries = vec![
        (1, sel("a.example.test"), Action::Nxdomain),
        (2, sel("b.example.test"), Action::Nxdomain),
        (3, sel("a.example.test"), Action::Nxdomain),
        (4, sel("198.18.0.0/20"), Action::Drop),
        (5, sel("198.18.9.0/24"), Action::Drop),
    ];
    let mut calls = 0;
    let report = store.import_rules("alice", o.id, "list.txt", entries, 0, |_| calls += 1).unwrap();
    assert_eq!(report.added, 2);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.refused.iter().map(|r| r.0).collect::<Vec<_>>(), vec![4, 5]);
    assert!(calls >= 1);
    let last = store.audit_entries(0, 100).unwrap().pop().unwrap();
    assert_eq!(last.action, "rules.import");
    assert!(last.after.unwrap().contains(&report.digest));
}

fn tampered(f: impl FnOnce(&Connection)) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bawaba.db");
    {
        let mut store = Store::open(&path, StoreConfig::default()).unwrap();
        for i in 0..3 {
            active_order(&mut store, &format!("CFI-{i}"), &format!("x{i}.example.test"), 0);
        }
        assert!(store.verify_audit(None).unwrap().is_intact());
        assert_eq!(store.audit_head().unwrap().0, 9);
    }
    // An attacker with write access to the file: drops the append-only triggers, then edits.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;").unwrap();
    f(&raw);
    drop(raw);
    (Store::open(&path, StoreConfig::default()).unwrap(), dir)
}

#[test]
fn the_audit_log_is_append_only_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut s = Store::open(&path, StoreConfig::default()).unwrap();
    active_order(&mut s, "CFI-1", "x.example.test", 0);
    drop(s);
    let raw = Connection::open(&path).unwrap();
    let err = raw.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(raw.execute("DELETE FROM audit WHERE seq = 1", []).is_err());
}

#[test]
fn audit_verify_names_an_edited_entry() {
    let (store, _d) = tampered(|db| {
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 5", []).unwrap();
    });
    assert_eq!(store.verify_audit(None).unwrap().problem, Some(AuditProblem::Edited { seq: 5 }));
}

#[test]
fn audit_verify_names_a_deleted_entry() {
    let (store, _d) = tampered(|db| {
        db.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
    });
    assert_eq!(store.verify_audit(None).unwrap().problem, Some(AuditProblem::Missing { after: 3, seq: 5 }));
}

#[test]
fn audit_verify_detects_reordering() {
    let (store, _d) = tampered(|db| {
        // Swap the content of entries 2 and 3, keeping each one's own hashes (a move).
        db.execute_batch(
            "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; \
             UPDATE audit SET seq = 3 WHERE seq = -2;",
        )
        .unwrap();
    });
    let problem = store.verify_audit(None).unwrap().problem.expect("reordering detected");
    assert!(matches!(problem, AuditProblem::Edited { seq: 2 } | AuditProblem::BrokenLink { seq: 2 }), "{problem:?}");
}

#[test]
fn audit_verify_detects_a_rewritten_chain_against_a_pinned_head() {
    let mut head = None;
    let (store, _d) = tampered(|db| {
        head = Some(
            db.query_row("SELECT seq, hash FROM audit WHERE seq = 9", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap(),
        );
        db.execute("DELETE FROM audit WHERE seq >= 8", []).unwrap();
    });
    let (seq, hash): (i64, String) = head.unwrap();
    // The truncated log is consistent in itself...
    assert!(store.verify_audit(None).unwrap().is_intact());
    // ...but not with the head a signed bundle pinned.
    assert_eq!(
        store.verify_audit(Some((seq, &hash))).unwrap().problem,
        Some(AuditProblem::HeadMismatch { expected_seq: 9, found_hash: None })
    );
}

#[test]
fn a_rule_row_edited_by_hand_is_reported_as_corrupt() {
    let (store, _d) = tampered(|db| {
        db.execute("UPDATE rules SET selector = 'not a name!' WHERE id = 1", []).unwrap();
    });
    let err = store.snapshot(10).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { table: "rules", id: 1, .. }), "{err}");
}

#[test]
fn audit_query_filters_in_sql() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    let order = store
        .add_order(
            "alice",
            NewOrder {
                authority: "Court".into(),
                reference: "Q-1".into(),
                issued_at: 0,
                effective_from: 0,
                expires_at: 86_400,
                category: bawaba_policy::Category::Malware,
                summary: "c2".into(),
                publishable: true,
                appeal_contact: "a@example.test".into(),
            },
            0,
        )
        .unwrap();
    let rule =
        store.add_rule("alice", order.id, &"c2.test".parse().unwrap(), bawaba_policy::Action::Drop, None, 1).unwrap();
    store.remove_rule("bob", rule.id, "wrong name", 2).unwrap();
    store.add_rule("alice", order.id, &"c3.test".parse().unwrap(), bawaba_policy::Action::Drop, None, 3).unwrap();
    let by_actor = store.audit_query(0, 100, Some("bob"), None, None).unwrap();
    assert_eq!(by_actor.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["rule.remove"]);
    let rules = store.audit_query(0, 100, None, Some("rule."), None).unwrap();
    assert_eq!(rules.len(), 3);
    let objects = vec![format!("order:{}", order.id.0)];
    assert_eq!(store.audit_query(0, 100, None, None, Some(&objects)).unwrap().len(), 1);
    assert!(store.audit_query(0, 100, None, None, Some(&[])).unwrap().is_empty());
    assert_eq!(store.audit_query(1, 1, None, None, None).unwrap()[0].seq, 2, "after and limit");
}

#[test]
fn an_orders_history_holds_its_rules_also_removed_ones_and_nothing_of_other_orders() {
    let mut store = Store::open_in_memory(StoreConfig::default()).unwrap();
    // Orders 1 and 12: "order":1 must not match "order":12.
    let mut ids = Vec::new();
    for n in 1..=12 {
        let o = store.add_order("alice", new_order(&format!("CFI-{n}"), 0, 30), 0).unwrap();
        ids.push(o.id);
    }
    let (one, twelve) = (ids[0], ids[11]);
    let kept = store.add_rule("alice", one, &sel("kept.example.test"), Action::Nxdomain, None, 1).unwrap();
    let gone = store.add_rule("alice", one, &sel("gone.example.test"), Action::Nxdomain, None, 2).unwrap();
    store.add_rule("alice", twelve, &sel("other.example.test"), Action::Nxdomain, None, 3).unwrap();
    store.remove_rule("alice", gone.id, "entered by mistake", 4).unwrap();
    let seen: Vec<(String, String)> =
        store.order_audit(one).unwrap().into_iter().map(|e| (e.action, e.object)).collect();
    let (kept, gone) = (format!("rule:{}", kept.id), format!("rule:{}", gone.id));
    assert_eq!(
        seen,
        vec![
            ("order.add".to_string(), format!("order:{}", one.0)),
            ("rule.add".to_string(), kept),
            ("rule.add".to_string(), gone.clone()),
            ("rule.remove".to_string(), gone),
        ]
    );
}
