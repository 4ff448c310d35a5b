//! A console served on loopback over a store in a temporary directory, with a fake gateway whose
//! "publish" compiles the store's policy in force, and one user per role.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bawaba_console::{App, ConsoleConfig, EnforcementPoint, Gateway, HookError, Published};
use bawaba_policy::Ruleset;
use bawaba_store::{Role, Store, StoreConfig};
use bawaba_testkit::http::Client;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery";

/// A gateway whose policy in force is what was last "published" from the store.
pub struct FakeGateway {
    db: PathBuf,
    ruleset: ArcSwap<Ruleset>,
    version: std::sync::atomic::AtomicU64,
}

impl Gateway for FakeGateway {
    fn ruleset(&self) -> Arc<Ruleset> {
        self.ruleset.load_full()
    }
    fn publish(&self, _actor: &str) -> Result<Published, HookError> {
        let store = Store::open(&self.db, StoreConfig::default())?;
        let mut snapshot = store.snapshot(bawaba_console::now())?;
        let version = self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        snapshot.version = version;
        self.ruleset.store(Arc::new(snapshot.compile()));
        Ok(Published {
            version,
            file: format!("v{version}"),
            orders: snapshot.orders.len(),
            rules: snapshot.rules.len(),
            allow_entries: snapshot.allow.len(),
        })
    }
    fn points(&self) -> Vec<EnforcementPoint> {
        vec![EnforcementPoint {
            site: None,
            reported_at: None,
            name: "dns test".into(),
            kind: "dns".into(),
            bundle_version: Some(self.version.load(std::sync::atomic::Ordering::SeqCst)),
            loaded_at: Some(0),
            counters: [("blocked_phishing".to_string(), 7u64)].into(),
            blocked_by_order: [(1i64, 7u64)].into(),
        }]
    }
    fn prometheus(&self) -> String {
        "bawaba_test_total 1\n".into()
    }
    fn verify_bundle(&self, bytes: &[u8]) -> Result<serde_json::Value, HookError> {
        if bytes.starts_with(b"BAWABA") {
            Ok(serde_json::json!({ "valid": true }))
        } else {
            Err("not a bundle".into())
        }
    }
}

/// A running console.
pub struct Console {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Console {
    /// Starts a console with one user per role, named after the role.
    pub fn start(config: ConsoleConfig) -> Console {
        Console::start_with(config, None)
    }

    /// Same, over TLS when `tls` is given.
    pub fn start_with(config: ConsoleConfig, tls: Option<tokio_rustls::TlsAcceptor>) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bawaba.db");
        let mut store = Store::open(&db, StoreConfig::default()).unwrap();
        for role in Role::ALL {
            store.create_user("test", role.as_str(), role, PASSWORD, 0).unwrap();
        }
        let gateway = Arc::new(FakeGateway {
            db: db.clone(),
            ruleset: ArcSwap::from_pointee(Ruleset::empty()),
            version: 0.into(),
        });
        let app = App::new(store, gateway, config);
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                bawaba_console::serve(app, listener, tls, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        Console { addr, dir, stop: Some(stop), thread: Some(thread) }
    }

    /// A client logged in as `user` with a session cookie; returns it and its CSRF token.
    pub fn login(&self, user: &str) -> (Client, String) {
        let c = Client::new(self.addr);
        let r = c.post_json("/api/v1/login", &serde_json::json!({ "name": user, "password": PASSWORD })).unwrap();
        assert_eq!(r.status, 200, "login {user}: {}", r.text());
        let csrf = r.json()["csrf"].as_str().unwrap().to_string();
        (c, csrf)
    }

    /// A client that sends an API token of `user`.
    pub fn token_client(&self, user: &str) -> Client {
        let (c, csrf) = self.login(user);
        let r = c
            .request(
                "POST",
                "/api/v1/tokens",
                &[("content-type", "application/json"), ("x-csrf-token", &csrf)],
                br#"{"label":"tests"}"#,
            )
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        let secret = r.json()["secret"].as_str().unwrap().to_string();
        Client::new(self.addr).with_header("authorization", &format!("Bearer {secret}"))
    }
}

/// An order body.
pub fn order_json(reference: &str, publishable: bool) -> serde_json::Value {
    serde_json::json!({
        "authority": "Court of First Instance, Baghdad",
        "reference": reference,
        "expires": "+90d",
        "category": "phishing",
        "summary": "Fake bank login pages",
        "publishable": publishable,
        "appeal_contact": "appeals@cmc.example",
    })
}

/// Records, fills and approves an order (legal proposes, approver approves) and publishes.
pub fn active_order(console: &Console, reference: &str, selectors: &[&str], publishable: bool) -> i64 {
    let legal = console.token_client("legal");
    let r = legal.post_json("/api/v1/orders", &order_json(reference, publishable)).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = legal
        .post_json(
            &format!("/api/v1/orders/{id}/rules"),
            &serde_json::json!({ "selectors": selectors, "action": "block-page" }),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let approver = console.token_client("approver");
    let r = approver.post_json(&format!("/api/v1/orders/{id}/approve"), &serde_json::json!({})).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = console.token_client("operator").post_json("/api/v1/publish", &serde_json::json!({})).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    id
}
