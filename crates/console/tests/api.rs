//! The API against a running console: every endpoint for every role, CSRF, tokens, login rate
//! limiting, four eyes, bad input that changes nothing, and the OpenAPI document against the
//! routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bawaba_console::api::{endpoints, Method};
use bawaba_console::{ConsoleConfig, Perm};
use bawaba_store::Role;
use bawaba_testkit::http::Client;
use common::{active_order, order_json, Console};
use serde_json::json;

/// Who may do what, written out from the issue's role list independently of the code's table.
fn expected(perm: Perm, role: Role) -> bool {
    use Role::*;
    match perm {
        Perm::Public | Perm::Own | Perm::Read => true,
        Perm::Propose => matches!(role, Admin | Legal),
        Perm::Approve => matches!(role, Admin | Approver),
        Perm::Operate => matches!(role, Admin | Operator),
        Perm::Audit => matches!(role, Admin | Auditor),
        Perm::AppealsRead => matches!(role, Admin | Legal | Approver | Auditor),
        Perm::AppealsAnswer => matches!(role, Admin | Legal | Approver),
        Perm::Admin => role == Admin,
    }
}

/// A concrete path for an endpoint: ids that do not exist, so allowed writes fail harmlessly.
fn concrete(path: &str) -> String {
    path.replace("{id}", "999999").replace("{name}", "nobody").replace("{reference}", "AP-0000000000")
}

fn call(c: &Client, method: Method, path: &str, body_type: Option<&str>) -> bawaba_testkit::http::Response {
    let url = format!("/api/v1{path}");
    match (method, body_type) {
        (Method::Get, _) => c.get(&url).unwrap(),
        (Method::Post, Some("application/json") | None) => {
            c.request("POST", &url, &[("content-type", "application/json")], b"{}").unwrap()
        }
        (Method::Post, Some(t)) => c.request("POST", &url, &[("content-type", t)], b"x").unwrap(),
    }
}

#[test]
fn every_endpoint_for_every_role() {
    let console = Console::start(ConsoleConfig::default());
    let anonymous = Client::new(console.addr);
    let clients: Vec<(Role, Client)> = Role::ALL.into_iter().map(|r| (r, console.token_client(r.as_str()))).collect();
    let mut checked = 0;
    for (e, _) in endpoints() {
        if e.path == "/login" {
            continue; // public, and a wrong login counts against the rate limit
        }
        let path = concrete(e.path);
        let body = e.body.map(|b| b.0);
        let r = call(&anonymous, e.method, &path, body);
        if e.perm == Perm::Public {
            assert_ne!(r.status, 401, "{} {path} is public", e.method.as_str());
        } else {
            assert_eq!(r.status, 401, "{} {path} anonymous: {}", e.method.as_str(), r.text());
        }
        for (role, client) in &clients {
            let r = call(client, e.method, &path, body);
            let denied = r.status == 401 || r.status == 403;
            assert_eq!(
                !denied,
                expected(e.perm, *role),
                "{} {path} as {role}: {} {}",
                e.method.as_str(),
                r.status,
                r.text()
            );
            checked += 1;
        }
    }
    assert!(checked > 30 * Role::ALL.len());
}

#[test]
fn openapi_document_matches_the_routes() {
    let console = Console::start(ConsoleConfig::default());
    let doc = Client::new(console.addr).get("/api/v1/openapi.json").unwrap();
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let admin = console.token_client("admin");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}");
            let sub = concrete(path.strip_prefix("/api/v1").unwrap());
            let m = if method == "get" { Method::Get } else { Method::Post };
            let body = op["requestBody"]["content"].as_object().and_then(|c| c.keys().next().cloned());
            if sub == "/login" {
                continue;
            }
            let r = call(&admin, m, &sub, body.as_deref());
            assert_ne!(r.status, 405, "{method} {path} is documented but not routed");
            assert!(!r.text().contains("no such API endpoint"), "{method} {path} is documented but not routed");
        }
    }
    assert_eq!(operations, endpoints().len(), "every route is documented once");
    // And a route that is not documented does not exist.
    let r = admin.get("/api/v1/not-a-route").unwrap();
    assert_eq!(r.status, 404);
    // Request bodies carry their schema, with required fields.
    let order = &paths["/api/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let required: Vec<&str> = order["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(required.contains(&"expires") && !required.contains(&"issued"), "{required:?}");
}

#[test]
fn cookie_writes_need_the_csrf_token() {
    let console = Console::start(ConsoleConfig::default());
    let (legal, csrf) = console.login("legal");
    let before = legal.get("/api/v1/orders").unwrap().json().as_array().unwrap().len();
    let r = legal.post_json("/api/v1/orders", &order_json("CSRF-1", true)).unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("CSRF"));
    let r = legal
        .request(
            "POST",
            "/api/v1/orders",
            &[("content-type", "application/json"), ("x-csrf-token", "0000")],
            order_json("CSRF-1", true).to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(legal.get("/api/v1/orders").unwrap().json().as_array().unwrap().len(), before, "nothing was created");
    let r = legal
        .request(
            "POST",
            "/api/v1/orders",
            &[("content-type", "application/json"), ("x-csrf-token", &csrf)],
            order_json("CSRF-1", true).to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    // The session cookie is HttpOnly and SameSite=Strict.
    let login = Client::new(console.addr)
        .post_json("/api/v1/login", &json!({ "name": "viewer", "password": common::PASSWORD }))
        .unwrap();
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // Logging out ends the session.
    let r = legal.request("POST", "/api/v1/logout", &[("x-csrf-token", &csrf)], b"").unwrap();
    assert_eq!(r.status, 200);
    legal.set_cookie("bawaba_session", "x"); // whatever the jar holds now, the old session is gone
    assert_eq!(legal.get("/api/v1/me").unwrap().status, 401);
}

#[test]
fn revoked_tokens_stop_working() {
    let console = Console::start(ConsoleConfig::default());
    let (op, csrf) = console.login("operator");
    let r = op
        .request(
            "POST",
            "/api/v1/tokens",
            &[("content-type", "application/json"), ("x-csrf-token", &csrf)],
            br#"{"label":"ci"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 201);
    let token = r.json();
    let secret = token["secret"].as_str().unwrap();
    assert!(secret.starts_with("bwb_"));
    let bot = Client::new(console.addr).with_header("authorization", &format!("Bearer {secret}"));
    assert_eq!(bot.get("/api/v1/me").unwrap().json()["name"], "operator");
    // The listing never shows the secret again.
    let list = op.get("/api/v1/tokens").unwrap().text();
    assert!(!list.contains(secret));
    // Another non-admin user cannot revoke it.
    let viewer = console.token_client("viewer");
    let id = token["id"].as_i64().unwrap();
    assert_eq!(viewer.post_json(&format!("/api/v1/tokens/{id}/revoke"), &json!({})).unwrap().status, 403);
    let r = op.request("POST", &format!("/api/v1/tokens/{id}/revoke"), &[("x-csrf-token", &csrf)], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bot.get("/api/v1/me").unwrap().status, 401);
    // A made-up token is refused too.
    let forged =
        Client::new(console.addr).with_header("authorization", "Bearer bwb_0000000000000000000000000000000000000000");
    assert_eq!(forged.get("/api/v1/orders").unwrap().status, 401);
}

#[test]
fn logins_are_rate_limited() {
    let console = Console::start(ConsoleConfig { login_attempts: 3, ..ConsoleConfig::default() });
    let c = Client::new(console.addr);
    for _ in 0..3 {
        let r = c.post_json("/api/v1/login", &json!({ "name": "admin", "password": "wrong password!" })).unwrap();
        assert_eq!(r.status, 403);
    }
    let r = c.post_json("/api/v1/login", &json!({ "name": "admin", "password": common::PASSWORD })).unwrap();
    assert_eq!(r.status, 429, "even the right password waits: {}", r.text());
    assert!(r.header("retry-after").is_some());
    // The limit is per client address, so another user from the same address waits as well.
    let r = c.post_json("/api/v1/login", &json!({ "name": "viewer", "password": common::PASSWORD })).unwrap();
    assert_eq!(r.status, 429);
}

#[test]
fn four_eyes_and_the_order_lifecycle() {
    let console = Console::start(ConsoleConfig::default());
    let admin = console.token_client("admin");
    let r = admin.post_json("/api/v1/orders", &order_json("CMC-2026-0001", true)).unwrap();
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_i64().unwrap();
    let r = admin
        .post_json(
            &format!("/api/v1/orders/{id}/rules"),
            &json!({ "selectors": ["bank-login.test"], "action": "block-page" }),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    // The proposer cannot approve its own order, even as admin.
    let r = admin.post_json(&format!("/api/v1/orders/{id}/approve"), &json!({})).unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("admin"), "{}", r.text());
    let approver = console.token_client("approver");
    assert_eq!(approver.post_json(&format!("/api/v1/orders/{id}/approve"), &json!({})).unwrap().status, 200);
    // Approved orders take no more rules.
    let r = admin
        .post_json(&format!("/api/v1/orders/{id}/rules"), &json!({ "selectors": ["more.test"], "action": "drop" }))
        .unwrap();
    assert_eq!(r.status, 409);
    // Not in force until published.
    let check = |q: &str| admin.get(&format!("/api/v1/check?q={q}")).unwrap().json();
    assert_eq!(check("bank-login.test")["verdict"], "not-blocked");
    let r = console.token_client("operator").post_json("/api/v1/publish", &json!({})).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rules"], 1);
    let v = check("https://www.bank-login.test/login");
    assert_eq!(v["verdict"], "blocked");
    assert_eq!(v["order"]["reference"], "CMC-2026-0001");
    assert!(v["dns"].as_str().unwrap().contains("block page"));
    // The order's history comes from the audit log, with the acting identities.
    let order = admin.get(&format!("/api/v1/orders/{id}")).unwrap().json();
    let actors: Vec<(&str, &str)> = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert!(actors.contains(&("admin", "order.add")) && actors.contains(&("approver", "order.approve")), "{actors:?}");
    assert!(actors.iter().any(|(a, act)| *a == "admin" && act.starts_with("rule.add")), "{actors:?}");
    // Revocation needs a reason; then the audit log still verifies.
    assert_eq!(
        approver.post_json(&format!("/api/v1/orders/{id}/revoke"), &json!({ "reason": " " })).unwrap().status,
        422
    );
    assert_eq!(
        approver
            .post_json(&format!("/api/v1/orders/{id}/revoke"), &json!({ "reason": "court lifted it" }))
            .unwrap()
            .status,
        200
    );
    let audit = console.token_client("auditor").get("/api/v1/audit/verify").unwrap().json();
    assert_eq!(audit["intact"], true, "{audit}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let console = Console::start(ConsoleConfig::default());
    let legal = console.token_client("legal");
    let count = |c: &Client, p: &str| c.get(p).unwrap().json().as_array().unwrap().len();
    let mut missing = order_json("BAD-1", true);
    missing["expires"] = json!("");
    for (body, needle) in [
        (missing, "expires"),
        (json!({ "authority": "x" }), "expires"),
        (
            {
                let mut b = order_json("BAD-2", true);
                b["category"] = json!("politics");
                b
            },
            "category",
        ),
        (
            {
                let mut b = order_json("BAD-3", true);
                b["expires"] = json!("next year");
                b
            },
            "expires",
        ),
        (
            {
                let mut b = order_json("BAD-4", true);
                b["expires"] = json!("+900d");
                b
            },
            "365",
        ),
        (
            {
                let mut b = order_json("BAD-5", true);
                b["surprise"] = json!(1);
                b
            },
            "surprise",
        ),
    ] {
        let r = legal.post_json("/api/v1/orders", &body).unwrap();
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert!(r.text().contains(needle), "{needle}: {}", r.text());
    }
    assert_eq!(count(&legal, "/api/v1/orders"), 0);
    let id = legal.post_json("/api/v1/orders", &order_json("GOOD-1", true)).unwrap().json()["id"].as_i64().unwrap();
    // One bad selector among good ones: none is added.
    for (body, needle) in [
        (json!({ "selectors": ["ok.test", "bad..name"], "action": "drop" }), "bad..name"),
        (json!({ "selectors": ["ok.test", "198.18.0.0/16"], "action": "drop" }), "198.18.0.0/16"),
        (json!({ "selectors": ["ok.test"], "action": "explode" }), "action"),
        (json!({ "selectors": [], "action": "drop" }), "selector"),
        (json!({ "selectors": ["198.18.0.0/16"], "action": "drop", "force": true }), "reason"),
    ] {
        let r = legal.post_json(&format!("/api/v1/orders/{id}/rules"), &body).unwrap();
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert!(r.text().contains(needle), "{needle}: {}", r.text());
    }
    assert_eq!(count(&legal, &format!("/api/v1/rules?order={id}")), 0);
    // Not JSON at all.
    let r = legal.request("POST", "/api/v1/orders", &[("content-type", "application/json")], b"{not json").unwrap();
    assert!(r.status == 400 || r.status == 422, "{}", r.status);
    assert_eq!(count(&legal, "/api/v1/orders"), 1);
    // A forced broad prefix is accepted with its reason, and audited with it.
    let r = legal
        .post_json(
            &format!("/api/v1/orders/{id}/rules"),
            &json!({ "selectors": ["198.18.0.0/16"], "action": "drop", "force": true, "reason": "botnet C2 range" }),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let audit = console.token_client("auditor").get("/api/v1/audit?action=rule.add-forced").unwrap().json();
    assert_eq!(audit[0]["reason"], "botnet C2 range");
    assert_eq!(audit[0]["actor"], "legal");
}

#[test]
fn imports_report_what_they_refused() {
    let console = Console::start(ConsoleConfig::default());
    let legal = console.token_client("legal");
    let id = legal.post_json("/api/v1/orders", &order_json("LIST-1", true)).unwrap().json()["id"].as_i64().unwrap();
    let list = b"bad1.test\nbad2.test\nnot a name!\nbad1.test\n198.18.0.0/8\n";
    let r = legal
        .request(
            "POST",
            &format!("/api/v1/orders/{id}/import?format=domains&action=nxdomain"),
            &[("content-type", "text/plain")],
            list,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["added"], 2, "{v}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 2, "{v}");
    let rules = legal.get(&format!("/api/v1/rules?order={id}")).unwrap().json();
    assert_eq!(rules.as_array().unwrap().len(), 2);
    // A removed rule stays in the order's history.
    let rule = rules[0]["id"].as_i64().unwrap();
    let r =
        legal.post_json(&format!("/api/v1/rules/{rule}/remove"), &json!({ "reason": "listed by mistake" })).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let history = legal.get(&format!("/api/v1/orders/{id}")).unwrap().json()["history"].clone();
    let actions: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"rules.import") && actions.contains(&"rule.remove"), "{actions:?}");
}

#[test]
fn appeals_from_filing_to_answer() {
    let console = Console::start(ConsoleConfig { appeals_per_hour: 2, ..ConsoleConfig::default() });
    active_order(&console, "CMC-2026-0007", &["blocked.test"], true);
    let public = Client::new(console.addr);
    // Not blocked: nothing to appeal.
    let r = public
        .post_json("/api/v1/appeals", &json!({ "site": "free.test", "reason": "I need this site for work" }))
        .unwrap();
    assert_eq!(r.status, 422);
    assert!(r.text().contains("not blocked"));
    // Too short a reason.
    let r = public.post_json("/api/v1/appeals", &json!({ "site": "blocked.test", "reason": "no" })).unwrap();
    assert_eq!(r.status, 422);
    let r = public
        .post_json("/api/v1/appeals", &json!({ "site": "https://blocked.test/page", "reason": "This is my small shop, not a bank", "contact": "owner@shop.test" }))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let reference = r.json()["reference"].as_str().unwrap().to_string();
    let status = public.get(&format!("/api/v1/appeals/status/{reference}")).unwrap().json();
    assert_eq!(status["status"], "open");
    assert_eq!(status["order"], "CMC-2026-0007");
    assert!(status.get("contact").is_none(), "the public lookup shows no contact details");
    // Staff see it in the queue and answer.
    let queue = console.token_client("approver").get("/api/v1/appeals?status=open").unwrap().json();
    assert_eq!(queue[0]["reference"], reference.as_str());
    let id = queue[0]["id"].as_i64().unwrap();
    let legal = console.token_client("legal");
    let r = legal
        .post_json(
            &format!("/api/v1/appeals/{id}/answer"),
            &json!({ "status": "granted", "answer": "The order named the wrong site; it will be revoked." }),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = legal
        .post_json(&format!("/api/v1/appeals/{id}/answer"), &json!({ "status": "upheld", "answer": "again" }))
        .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(public.get(&format!("/api/v1/appeals/status/{reference}")).unwrap().json()["status"], "granted");
    // The per-prefix rate limit: two appeals an hour here, the third is refused.
    let r = public
        .post_json("/api/v1/appeals", &json!({ "site": "blocked.test", "reason": "Second appeal from this network" }))
        .unwrap();
    assert_eq!(r.status, 201);
    let r = public
        .post_json("/api/v1/appeals", &json!({ "site": "blocked.test", "reason": "Third appeal from this network" }))
        .unwrap();
    assert_eq!(r.status, 429, "{}", r.text());
}

#[test]
fn users_and_roles_are_managed_by_admins() {
    let console = Console::start(ConsoleConfig::default());
    let admin = console.token_client("admin");
    let r = admin.post_json("/api/v1/users", &json!({ "name": "noor", "role": "legal" })).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let password = r.json()["one_time_password"].as_str().unwrap().to_string();
    let noor = Client::new(console.addr);
    assert_eq!(noor.post_json("/api/v1/login", &json!({ "name": "noor", "password": password })).unwrap().status, 200);
    assert_eq!(noor.get("/api/v1/me").unwrap().json()["role"], "legal");
    let r = admin.post_json("/api/v1/users", &json!({ "name": "Bad Name", "role": "legal" })).unwrap();
    assert_eq!(r.status, 422);
    let r = admin.post_json("/api/v1/users", &json!({ "name": "x", "role": "king" })).unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(admin.post_json("/api/v1/users/noor/disable", &json!({})).unwrap().status, 200);
    assert_eq!(noor.get("/api/v1/me").unwrap().status, 401, "a disabled user's session ends");
}
