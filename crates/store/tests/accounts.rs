//! Console accounts: passwords, roles, sessions and API tokens. Each argon2 hash costs a fraction
//! of a second in a debug build, so the tests create few users and check few passwords.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use bawaba_store::{Role, Store, StoreConfig, StoreError, TokenId, TOKEN_PREFIX};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "correct horse battery staple";
const HOUR: i64 = 3600;

fn store() -> Store {
    Store::open_in_memory(StoreConfig::default()).unwrap()
}

fn invalid_field(err: StoreError) -> &'static str {
    match err {
        StoreError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn roles_read_and_print_as_lower_case_names() {
    for role in Role::ALL {
        assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
    }
    assert_eq!("approver".parse::<Role>().unwrap(), Role::Approver);
    let err = "Admin".parse::<Role>().unwrap_err();
    assert!(err.to_string().contains("admin, legal, approver, operator, auditor, viewer"), "{err}");
}

#[test]
fn logins_need_the_right_password_of_an_enabled_user() {
    let mut s = store();
    assert_eq!(s.user_count().unwrap(), 0);
    let root = s.create_user("setup", "root", Role::Admin, PASSWORD, 10).unwrap();
    assert_eq!((root.name.as_str(), root.role, root.disabled, root.created_at), ("root", Role::Admin, false, 10));

    assert_eq!(s.verify_password("root", PASSWORD).unwrap(), Some(root.clone()));
    assert_eq!(s.verify_password("root", "correct horse battery stapler").unwrap(), None);
    assert_eq!(s.verify_password("nobody", PASSWORD).unwrap(), None, "unknown names are refused like wrong passwords");

    // Refusals name the field and write nothing.
    let head = s.audit_head().unwrap();
    assert_eq!(invalid_field(s.create_user("root", "Bad Name", Role::Viewer, PASSWORD, 11).unwrap_err()), "name");
    assert_eq!(invalid_field(s.create_user("root", "", Role::Viewer, PASSWORD, 11).unwrap_err()), "name");
    assert_eq!(invalid_field(s.create_user("root", "public", Role::Viewer, PASSWORD, 11).unwrap_err()), "name");
    let err = s.create_user("root", "dana", Role::Viewer, "short pass", 11).unwrap_err();
    assert!(err.to_string().contains("password") && err.to_string().contains("at least 12"), "{err}");
    let err = s.create_user("root", "root", Role::Viewer, PASSWORD, 11).unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err}");
    assert_eq!(s.audit_head().unwrap(), head);
    assert_eq!(s.user_count().unwrap(), 1);

    // The last enabled admin can neither be demoted nor disabled.
    assert_eq!(invalid_field(s.set_role("root", "root", Role::Viewer, 12).unwrap_err()), "role");
    assert_eq!(invalid_field(s.disable_user("root", "root", 12).unwrap_err()), "name");
    assert!(matches!(s.set_role("root", "ghost", Role::Viewer, 12), Err(StoreError::UnknownName { .. })));

    let audit = s.audit_entries(0, 100).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].action.as_str(), audit[0].object.as_str()),
        ("setup", "user.create", "user:root")
    );
    assert!(!audit[0].after.as_deref().unwrap().contains("argon2"), "no hash in the log");
    assert!(s.verify_audit(None).unwrap().is_intact());
}

#[test]
fn disabling_a_user_ends_its_sessions_and_tokens() {
    let mut s = store();
    s.create_user("setup", "root", Role::Admin, PASSWORD, 0).unwrap();
    let eve = s.create_user("root", "eve", Role::Operator, PASSWORD, 0).unwrap();
    let (cookie, session) = s.create_session(eve.id, 100, HOUR).unwrap();
    assert_eq!(session.user, eve);
    let (secret, token) = s.create_token("root", "eve", "metrics scraper", 100).unwrap();
    assert_eq!(s.session(&cookie, 101).unwrap().unwrap().user.name, "eve");
    assert_eq!(s.token_user(&secret, 101).unwrap().unwrap().name, "eve");

    let promoted = s.set_role("root", "eve", Role::Admin, 150).unwrap();
    assert_eq!(s.session(&cookie, 151).unwrap().unwrap().user.role, Role::Admin, "role changes apply at once");
    assert_eq!(promoted.role, Role::Admin);
    // With a second admin, the first may go.
    s.set_role("eve", "root", Role::Viewer, 160).unwrap();
    s.set_role("eve", "root", Role::Admin, 162).unwrap();

    let disabled = s.disable_user("root", "eve", 200).unwrap();
    assert!(disabled.disabled);
    assert_eq!(s.session(&cookie, 201).unwrap(), None);
    assert_eq!(s.token_user(&secret, 201).unwrap(), None);
    assert_eq!(s.verify_password("eve", PASSWORD).unwrap(), None, "the right password of a disabled user fails");
    assert_eq!(s.tokens(Some("eve")).unwrap()[0].revoked_at, Some(200));
    assert_eq!(invalid_field(s.create_session(eve.id, 202, HOUR).unwrap_err()), "user");
    assert_eq!(invalid_field(s.create_token("root", "eve", "again", 202).unwrap_err()), "user");
    assert_eq!(invalid_field(s.disable_user("root", "eve", 202).unwrap_err()), "name");

    // Enabling again does not bring old tokens back.
    s.enable_user("root", "eve", 300).unwrap();
    assert_eq!(s.token_user(&secret, 301).unwrap(), None);
    assert_eq!(
        s.tokens(None).unwrap(),
        vec![bawaba_store::ApiToken { revoked_at: Some(200), last_used_at: Some(101), ..token }]
    );

    let actions: Vec<String> = s.audit_entries(0, 100).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.create",
            "user.login",
            "token.create",
            "user.role",
            "user.role",
            "user.role",
            "user.disable",
            "user.enable"
        ]
    );
    assert!(s.verify_audit(None).unwrap().is_intact());
}

#[test]
fn sessions_expire_and_log_out() {
    let mut s = store();
    let ann = s.create_user("setup", "ann", Role::Legal, PASSWORD, 0).unwrap();
    let (cookie, session) = s.create_session(ann.id, 1000, HOUR).unwrap();
    assert_eq!(cookie.len(), 64);
    assert!(cookie.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(session.expires_at, 1000 + HOUR);
    assert_eq!(session.csrf.len(), 64);
    assert_ne!(session.csrf, cookie);

    let seen = s.session(&cookie, 1000 + HOUR - 1).unwrap().unwrap();
    assert_eq!(seen.csrf, session.csrf, "the CSRF token is stable for the session");
    assert_eq!(s.session(&cookie, 1000 + HOUR).unwrap(), None, "expired");
    assert_eq!(s.session("0".repeat(64).as_str(), 1000).unwrap(), None, "unknown");

    let (other, _) = s.create_session(ann.id, 5000, HOUR).unwrap();
    // Creating a session purged the expired one in passing.
    assert_eq!(s.purge_expired_sessions(5000).unwrap(), 0);
    assert!(s.delete_session(&other).unwrap());
    assert!(!s.delete_session(&other).unwrap());
    assert_eq!(s.session(&other, 5001).unwrap(), None, "logged out");

    let (third, _) = s.create_session(ann.id, 6000, 10).unwrap();
    assert_eq!(s.purge_expired_sessions(6010).unwrap(), 1);
    assert_eq!(s.session(&third, 6005).unwrap(), None, "purged");
    assert_eq!(invalid_field(s.create_session(ann.id, 0, 0).unwrap_err()), "ttl_secs");
    assert!(matches!(s.create_session(bawaba_store::UserId(99), 0, HOUR), Err(StoreError::NotFound { .. })));

    // A new password ends the sessions opened with the old one.
    let (cookie, _) = s.create_session(ann.id, 7000, HOUR).unwrap();
    s.set_password("ann", "ann", "a brand new passphrase", 7001).unwrap();
    assert_eq!(s.session(&cookie, 7002).unwrap(), None);
    assert_eq!(s.verify_password("ann", PASSWORD).unwrap(), None);
    assert!(s.verify_password("ann", "a brand new passphrase").unwrap().is_some());
    let last = s.audit_entries(0, 100).unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.before, last.after), ("user.password", None, None));
    assert!(s.verify_audit(None).unwrap().is_intact());
}

#[test]
fn tokens_are_shown_once_and_stored_only_as_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bawaba.db");
    let mut s = Store::open(&path, StoreConfig::default()).unwrap();
    s.create_user("setup", "robot", Role::Operator, PASSWORD, 0).unwrap();
    let robot = s.user("robot").unwrap().unwrap();
    let (secret, token) = s.create_token("setup", "robot", "nightly import", 100).unwrap();
    assert!(secret.starts_with(TOKEN_PREFIX));
    assert_eq!(secret.len(), TOKEN_PREFIX.len() + 40);
    assert!(secret[TOKEN_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!((token.user.as_str(), token.label.as_str(), token.last_used_at), ("robot", "nightly import", None));
    let (cookie, _) = s.create_session(robot.id, 100, HOUR).unwrap();

    // Use is recorded at most once a minute.
    assert_eq!(s.token_user(&secret, 200).unwrap(), Some(robot.clone()));
    assert_eq!(s.token_user(&secret, 259).unwrap(), Some(robot.clone()));
    assert_eq!(s.tokens(None).unwrap()[0].last_used_at, Some(200));
    s.token_user(&secret, 260).unwrap();
    assert_eq!(s.tokens(Some("robot")).unwrap()[0].last_used_at, Some(260));
    assert_eq!(s.token_user("bwb_0000000000000000000000000000000000000000", 261).unwrap(), None);
    assert_eq!(s.token_user(&secret.replace("bwb_", "xyz_"), 261).unwrap(), None);
    assert_eq!(invalid_field(s.create_token("setup", "robot", "", 300).unwrap_err()), "label");
    assert!(matches!(s.tokens(Some("ghost")), Err(StoreError::UnknownName { .. })));
    drop(s);

    // Read the file as an attacker would: no secret, no password, anywhere.
    let raw = Connection::open(&path).unwrap();
    let stored: String = raw.query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, hex::encode(Sha256::digest(secret.as_bytes())));
    let password_hash: String = raw.query_row("SELECT password_hash FROM users", [], |r| r.get(0)).unwrap();
    assert!(password_hash.starts_with("$argon2id$v=19$"), "{password_hash}");
    let mut every_text = String::new();
    for table in ["users", "sessions", "api_tokens", "audit"] {
        let mut stmt = raw.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                if let Ok(Some(text)) = row.get::<_, Option<String>>(i) {
                    every_text.push_str(&text);
                    every_text.push('\n');
                }
            }
        }
    }
    for secret_text in [secret.as_str(), &secret[TOKEN_PREFIX.len()..], cookie.as_str(), PASSWORD] {
        assert!(!every_text.contains(secret_text), "{secret_text} is stored in plain text");
    }
    let audit_text: String =
        raw.query_row("SELECT group_concat(coalesce(after, ''), '|') FROM audit", [], |r| r.get(0)).unwrap();
    assert!(!audit_text.contains(&password_hash) && !audit_text.contains(&stored), "no hash in the audit log");
    drop(raw);

    let mut s = Store::open(&path, StoreConfig::default()).unwrap();
    let revoked = s.revoke_token("setup", token.id, 400).unwrap();
    assert_eq!(revoked.revoked_at, Some(400));
    assert_eq!(s.token_user(&secret, 401).unwrap(), None);
    assert_eq!(invalid_field(s.revoke_token("setup", token.id, 402).unwrap_err()), "token");
    assert!(matches!(s.revoke_token("setup", TokenId(99), 402), Err(StoreError::NotFound { .. })));
    let last = s.audit_entries(0, 100).unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.object.as_str()), ("token.revoke", format!("token:{}", token.id).as_str()));
    assert!(s.verify_audit(None).unwrap().is_intact());
}
