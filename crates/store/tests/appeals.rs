//! Citizens' appeals and the order timeline the transparency report reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_policy::{Action, Category, OrderId};
use bawaba_store::{AppealId, AppealStatus, NewAppeal, NewOrder, Store, StoreConfig, StoreError};

const DAY: i64 = 86_400;
const CLIENT: &str = "198.18.0.0/24";

fn new_order(reference: &str, from: i64) -> NewOrder {
    NewOrder {
        authority: "Court of First Instance, Baghdad".into(),
        reference: reference.into(),
        issued_at: from,
        effective_from: from,
        expires_at: from + 30 * DAY,
        category: Category::Phishing,
        summary: "Fake bank login pages".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
    }
}

/// An order recorded at `now` and approved at `now + 60`.
fn approved_order(store: &mut Store, reference: &str, now: i64) -> OrderId {
    let o = store.add_order("alice", new_order(reference, now), now).unwrap();
    store.add_rule("alice", o.id, &"bank.example.test".parse().unwrap(), Action::Nxdomain, None, now).unwrap();
    store.approve_order("bob", o.id, now + 60).unwrap();
    o.id
}

fn appeal(order: OrderId) -> NewAppeal {
    NewAppeal {
        site: "bank.example.test".into(),
        reason: "This is my bakery's website, not a bank; it was blocked by mistake.".into(),
        contact: Some("baker@example.test".into()),
        order,
    }
}

#[test]
fn an_appeal_is_filed_looked_up_and_answered_once() {
    let mut s = Store::open_in_memory(StoreConfig::default()).unwrap();
    let order = approved_order(&mut s, "CFI-77", 0);
    let filed = s.file_appeal(appeal(order), CLIENT, 1000).unwrap();
    assert_eq!(filed.status, AppealStatus::Open);
    assert_eq!(filed.order_reference, "CFI-77");
    assert_eq!(filed.reference.len(), 13);
    assert!(filed.reference.starts_with("AP-"), "{}", filed.reference);
    assert!(!filed.reference[3..].contains(['I', 'L', 'O', 'U']), "{}", filed.reference);

    // Citizens type references in any case.
    let found = s.appeal_by_reference(&filed.reference.to_lowercase()).unwrap();
    assert_eq!(found.as_ref(), Some(&filed));
    assert_eq!(s.appeal_by_reference("AP-0000000000").unwrap(), None);
    assert_eq!(s.appeals(Some(AppealStatus::Open)).unwrap(), vec![filed.clone()]);

    let err = s.answer_appeal("legal1", filed.id, AppealStatus::Open, "still thinking", 1100).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "status", .. }), "{err}");
    let err = s.answer_appeal("legal1", filed.id, AppealStatus::Granted, "  ", 1100).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "answer", .. }), "{err}");

    let answered = s
        .answer_appeal("legal1", filed.id, AppealStatus::Granted, "Confirmed: the order named another site.", 2000)
        .unwrap();
    assert_eq!(answered.status, AppealStatus::Granted);
    assert_eq!((answered.answered_by.as_deref(), answered.answered_at), (Some("legal1"), Some(2000)));
    assert_eq!(s.appeal_by_reference(&filed.reference).unwrap(), Some(answered.clone()));
    assert!(s.appeals(Some(AppealStatus::Open)).unwrap().is_empty());

    let err = s.answer_appeal("legal2", filed.id, AppealStatus::Upheld, "No, it stays.", 3000).unwrap_err();
    assert!(matches!(err, StoreError::AppealClosed { status: AppealStatus::Granted, .. }), "{err}");
    assert!(err.to_string().contains(&filed.reference), "{err}");
    assert_eq!(s.appeal(filed.id).unwrap(), answered, "the first answer stands");
    assert!(matches!(
        s.answer_appeal("legal1", AppealId(99), AppealStatus::Upheld, "x", 3000),
        Err(StoreError::NotFound { what: "appeal", .. })
    ));

    // The log has the filing (by "public") and the answer, and none of the citizen's words.
    let log = s.audit_entries(0, 100).unwrap();
    let file = log.iter().find(|e| e.action == "appeal.file").unwrap();
    assert_eq!((file.actor.as_str(), file.object.clone()), ("public", format!("appeal:{}", filed.reference)));
    let answer = log.iter().find(|e| e.action == "appeal.answer").unwrap();
    assert!(answer.before.as_deref().unwrap().contains("\"open\""));
    assert!(answer.after.as_deref().unwrap().contains("\"granted\""));
    for e in [file, answer] {
        let text = format!("{:?}{:?}", e.before, e.after);
        for private in ["baker@example.test", "bakery", CLIENT] {
            assert!(!text.contains(private), "{private} is in the audit log: {text}");
        }
    }
    assert!(s.verify_audit(None).unwrap().is_intact());
}

#[test]
fn invalid_appeals_are_refused_with_the_field_named_and_change_nothing() {
    let mut s = Store::open_in_memory(StoreConfig::default()).unwrap();
    let order = approved_order(&mut s, "CFI-1", 0);
    let draft = s.add_order("alice", new_order("CFI-DRAFT", 0), 0).unwrap().id;
    let head = s.audit_head().unwrap();

    let cases: Vec<(&str, NewAppeal)> = vec![
        ("site", NewAppeal { site: "".into(), ..appeal(order) }),
        ("site", NewAppeal { site: "   ".into(), ..appeal(order) }),
        ("site", NewAppeal { site: "x".repeat(254), ..appeal(order) }),
        ("site", NewAppeal { site: "bank.example.test\r\nX-Injected: 1".into(), ..appeal(order) }),
        ("reason", NewAppeal { reason: "unfair".into(), ..appeal(order) }),
        ("reason", NewAppeal { reason: "r".repeat(4001), ..appeal(order) }),
        ("reason", NewAppeal { reason: "long enough but a \u{1b}[31m terminal escape".into(), ..appeal(order) }),
        ("contact", NewAppeal { contact: Some("c".repeat(201)), ..appeal(order) }),
        ("order", NewAppeal { order: OrderId(999), ..appeal(order) }),
        ("order", NewAppeal { order: draft, ..appeal(order) }),
    ];
    for (field, bad) in cases {
        let err = s.file_appeal(bad.clone(), CLIENT, 10).unwrap_err();
        match &err {
            StoreError::Invalid { field: f, .. } => assert_eq!(*f, field, "{bad:?}"),
            other => panic!("{bad:?}: expected Invalid, got {other}"),
        }
        assert!(err.to_string().contains(field), "the message names the field: {err}");
    }
    assert_eq!(s.audit_head().unwrap(), head, "nothing audited");
    assert!(s.appeals(None).unwrap().is_empty(), "nothing stored");
    assert_eq!(s.appeals_from_client_since(CLIENT, 0).unwrap(), 0);

    // The limits themselves are accepted, multi-line reasons too; blanks are trimmed and an
    // empty contact is none.
    let edge = NewAppeal {
        site: format!(" {} ", "s".repeat(253)),
        reason: format!("{}\nsecond line", "r".repeat(3988)),
        contact: Some("  ".into()),
        order,
    };
    let filed = s.file_appeal(edge, CLIENT, 10).unwrap();
    assert_eq!((filed.site.len(), filed.reason.chars().count(), filed.contact), (253, 4000, None));
}

#[test]
fn appeals_are_listed_newest_first_and_counted_per_client() {
    let mut s = Store::open_in_memory(StoreConfig::default()).unwrap();
    let order = approved_order(&mut s, "CFI-1", 0);
    let first = s.file_appeal(appeal(order), CLIENT, 100).unwrap();
    let second = s.file_appeal(appeal(order), "2001:db8::/48", 200).unwrap();
    let third = s.file_appeal(appeal(order), CLIENT, 300).unwrap();
    assert_ne!(first.reference, third.reference);
    let ids: Vec<AppealId> = s.appeals(None).unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![third.id, second.id, first.id]);
    assert_eq!(s.appeals_from_client_since(CLIENT, 0).unwrap(), 2);
    assert_eq!(s.appeals_from_client_since(CLIENT, 101).unwrap(), 1);
    assert_eq!(s.appeals_from_client_since(CLIENT, 301).unwrap(), 0);
    s.answer_appeal("legal1", second.id, AppealStatus::Rejected, "Not a site under this order.", 400).unwrap();
    let open: Vec<AppealId> = s.appeals(Some(AppealStatus::Open)).unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(open, vec![third.id, first.id]);
    assert_eq!(s.appeals(Some(AppealStatus::Rejected)).unwrap()[0].id, second.id);
    assert!(s.verify_audit(None).unwrap().is_intact());
}

#[test]
fn the_order_timeline_records_approval_and_revocation() {
    let mut s = Store::open_in_memory(StoreConfig::default()).unwrap();
    let a = approved_order(&mut s, "CFI-9", 1000);
    let draft = s.add_order("alice", new_order("CFI-10", 2000), 2000).unwrap().id;
    let reissued = approved_order(&mut s, "CFI-9", 3000);
    s.revoke_order("carol", a, "superseded by the reissued order", 4000).unwrap();

    let times: Vec<_> =
        s.order_times().unwrap().into_iter().map(|t| (t.id, t.created_at, t.approved_at, t.revoked_at)).collect();
    assert_eq!(
        times,
        vec![(a, 1000, Some(1060), Some(4000)), (draft, 2000, None, None), (reissued, 3000, Some(3060), None)]
    );
    assert_eq!(s.order_by_reference("CFI-9").unwrap().unwrap().id, reissued, "the newest of a reissued reference");
    assert_eq!(s.order_by_reference("CFI-10").unwrap().unwrap().id, draft);
    assert_eq!(s.order_by_reference("CFI-404").unwrap(), None);
}
