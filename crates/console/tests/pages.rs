//! The server-rendered pages without a browser: login with the pre-login CSRF cookie, forms that
//! refuse a missing CSRF token, the block page (451, RFC 7725 Link header, Arabic right to left),
//! the transparency report in HTML, JSON and CSV, and the public appeal form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bawaba_console::ConsoleConfig;
use bawaba_testkit::http::{form_value, Client};
use common::{active_order, Console, PASSWORD};

fn page_login(console: &Console, user: &str) -> Client {
    let c = Client::new(console.addr);
    let form = c.get("/login?next=/console/orders").unwrap();
    assert_eq!(form.status, 200);
    let pre = form_value(&form.text(), "pre").unwrap();
    // Without the pre-login cookie's value the form is refused.
    let forged = Client::new(console.addr)
        .post_form("/login", &[("pre", &pre), ("name", user), ("password", PASSWORD), ("next", "/console")])
        .unwrap();
    assert_eq!(forged.status, 403);
    let r = c
        .post_form("/login", &[("pre", &pre), ("name", user), ("password", PASSWORD), ("next", "/console/orders")])
        .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/console/orders"));
    c
}

#[test]
fn console_forms_need_login_and_csrf() {
    let console = Console::start(ConsoleConfig::default());
    let anonymous = Client::new(console.addr);
    let r = anonymous.get("/console/orders").unwrap();
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/login?next="));
    let legal = page_login(&console, "legal");
    let page = legal.get("/console/orders/new").unwrap();
    assert_eq!(page.status, 200);
    let csrf = form_value(&page.text(), "csrf").unwrap();
    let fields = [
        ("authority", "محكمة بداءة الكرخ"),
        ("reference", "CFI-2026-55"),
        ("category", "malware"),
        ("expires", "2027-03-01"),
        ("summary", "Botnet command servers"),
        ("appeal_contact", "appeals@cmc.example"),
        ("publishable", "yes"),
    ];
    let r = legal.post_form("/console/orders", &fields).unwrap();
    assert_eq!(r.status, 403, "no CSRF token");
    let mut with = fields.to_vec();
    with.push(("csrf", &csrf));
    // Bad input re-renders the form with the message and keeps what was typed.
    let mut bad = with.clone();
    bad[3] = ("expires", "someday");
    let r = legal.post_form("/console/orders", &bad).unwrap();
    assert_eq!(r.status, 422);
    assert!(r.text().contains("someday") && r.text().contains("محكمة بداءة الكرخ"));
    let r = legal.post_form("/console/orders", &with).unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    let order_url = r.header("location").unwrap().to_string();
    let page = legal.get(&order_url).unwrap().text();
    assert!(page.contains("CFI-2026-55") && page.contains("محكمة بداءة الكرخ"));
    // A viewer sees the order but no forms to change it.
    let viewer = page_login(&console, "viewer");
    let page = viewer.get(&order_url).unwrap().text();
    assert!(page.contains("CFI-2026-55") && !page.contains("name=\"selector\""));
    assert_eq!(viewer.get("/console/orders/new").unwrap().status, 403);
}

#[test]
fn block_page_says_who_blocked_what_in_both_languages() {
    let console = Console::start(ConsoleConfig {
        operator_name: "ITPC gateway".into(),
        operator_url: "https://itpc.example/".into(),
        ..ConsoleConfig::default()
    });
    active_order(&console, "CMC-2026-0007", &["blocked.test"], true);
    let public = Client::new(console.addr);
    let r = public.get("/blocked?order=CMC-2026-0007&host=www.blocked.test").unwrap();
    assert_eq!(r.status, 451);
    assert_eq!(r.header("link"), Some("<https://itpc.example/>; rel=\"blocked-by\""));
    let html = r.text();
    for needle in [
        "Court of First Instance, Baghdad",
        "CMC-2026-0007",
        "appeals@cmc.example",
        "www.blocked.test",
        "ITPC gateway",
        "dir=\"ltr\"",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    assert!(!html.contains("<script>"), "works without inline script");
    // By the Host alone (the engine's redirect carries both; DNS block-page answers carry only Host).
    let r = public.get("/blocked?host=deep.www.blocked.test&lang=ar").unwrap();
    assert_eq!(r.status, 451);
    let html = r.text();
    assert!(html.contains("lang=\"ar\" dir=\"rtl\""));
    assert!(html.contains("الوصول إلى هذا الموقع مقيّد") && html.contains("CMC-2026-0007"));
    assert!(r.headers_all("set-cookie").iter().any(|c| c.starts_with("lang=ar")), "the choice is remembered");
    // A name no order covers is not shown as blocked.
    let r = public.get("/blocked?host=free.test").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("not-restricted"));
}

#[test]
fn transparency_report_lists_only_publishable_orders() {
    let console = Console::start(ConsoleConfig::default());
    active_order(&console, "PUB-1", &["one.test"], true);
    active_order(&console, "SECRET-1", &["two.test", "three.test"], false);
    let public = Client::new(console.addr);
    let json = public.get("/transparency.json").unwrap().json();
    assert_eq!(json["active_orders"], 2);
    assert_eq!(json["active_rules"], 3);
    assert_eq!(json["active_by_category"]["phishing"], 2);
    let refs: Vec<&str> = json["orders"].as_array().unwrap().iter().map(|o| o["reference"].as_str().unwrap()).collect();
    assert_eq!(refs, vec!["PUB-1"]);
    assert_eq!(json["months"][0]["added"], 2);
    let csv = public.get("/transparency.csv?table=orders").unwrap();
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    assert!(text.starts_with("reference,authority,category") && text.contains("PUB-1") && !text.contains("SECRET-1"));
    assert!(text.contains("\"Court of First Instance, Baghdad\""), "fields with commas are quoted");
    assert_eq!(public.get("/transparency.csv?table=nope").unwrap().status, 422);
    let html = public.get("/transparency?lang=ar").unwrap().text();
    assert!(html.contains("تقرير الشفافية") && html.contains("PUB-1") && !html.contains("SECRET-1"));
}

#[test]
fn public_appeal_form() {
    let console = Console::start(ConsoleConfig::default());
    active_order(&console, "CMC-2026-0009", &["shop.test"], true);
    let citizen = Client::new(console.addr);
    let form = citizen.get("/appeal?order=CMC-2026-0009&site=shop.test&lang=ar").unwrap();
    assert_eq!(form.status, 200);
    let html = form.text();
    let token = form_value(&html, "form").unwrap();
    assert_eq!(form_value(&html, "order").as_deref(), Some("CMC-2026-0009"));
    // Every field is validated; the form comes back with the message and the text typed.
    let r = citizen
        .post_form(
            "/appeal",
            &[("form", &token), ("site", "shop.test"), ("order", "CMC-2026-0009"), ("reason", "short")],
        )
        .unwrap();
    assert_eq!(r.status, 422);
    // The page is in Arabic (the choice was remembered), and so is what went wrong.
    assert!(r.text().contains("يرجى شرح سبب خطأ الحجب"), "{}", r.text());
    let r = citizen
        .post_form(
            "/appeal",
            &[("form", &token), ("site", "shop.test"), ("order", "NO-SUCH"), ("reason", "this is my own shop")],
        )
        .unwrap();
    assert_eq!(r.status, 422);
    assert!(r.text().contains("لا يوجد أمر بهذا الرقم المرجعي"), "{}", r.text());
    // Without the form cookie (a cross-site post) it is refused.
    let r = Client::new(console.addr)
        .post_form("/appeal", &[("form", &token), ("site", "shop.test"), ("reason", "this is my own shop")])
        .unwrap();
    assert_eq!(r.status, 403);
    let r = citizen
        .post_form(
            "/appeal",
            &[
                ("form", &token),
                ("site", "shop.test"),
                ("order", "CMC-2026-0009"),
                ("reason", "هذا متجري الخاص وليس موقع احتيال"),
                ("contact", "07700000000"),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let reference = r.text().split("id=\"appeal-reference\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(reference.starts_with("AP-"));
    let status = citizen.get(&format!("/appeal/status?ref={reference}")).unwrap();
    assert_eq!(status.status, 200);
    assert!(status.text().contains("CMC-2026-0009"));
    assert_eq!(citizen.get("/appeal/status?ref=AP-0000000000").unwrap().status, 404);
}

#[test]
fn metrics_and_health() {
    let console = Console::start(ConsoleConfig::default());
    let c = Client::new(console.addr);
    let r = c.get("/healthz").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = c.get("/metrics").unwrap();
    assert!(r.text().contains("bawaba_test_total 1"));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(c.get("/nowhere").unwrap().status, 404);
}

#[test]
fn defense_page_without_a_collector() {
    let console = Console::start(ConsoleConfig::default());
    let op = page_login(&console, "operator");
    let page = op.get("/console/defense").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("not running"));
    let api = console.token_client("operator");
    assert_eq!(api.get("/api/v1/defense").unwrap().json()["enabled"], false);
    let r = api
        .post_json(
            "/api/v1/mitigations",
            &serde_json::json!({ "prefix": "198.18.5.5", "kind": "blackhole", "reason": "test" }),
        )
        .unwrap();
    assert_eq!(r.status, 409);
    assert!(r.text().contains("not running"), "{}", r.text());
    for (body, needle) in [
        (serde_json::json!({ "prefix": "nonsense", "kind": "blackhole", "reason": "x" }), "prefix"),
        (serde_json::json!({ "prefix": "198.18.5.5", "kind": "nullroute", "reason": "x" }), "kind"),
        (
            serde_json::json!({ "prefix": "198.18.5.5", "kind": "blackhole", "protocol": "udp", "reason": "x" }),
            "flowspec only",
        ),
        (
            serde_json::json!({ "prefix": "198.18.5.5", "kind": "flowspec", "source_port": 70000, "reason": "x" }),
            "source_port",
        ),
        (serde_json::json!({ "prefix": "198.18.5.5", "kind": "flowspec", "reason": " " }), "reason"),
    ] {
        let r = api.post_json("/api/v1/mitigations", &body).unwrap();
        assert_eq!(r.status, 422, "{body}");
        assert!(r.text().contains(needle), "{needle}: {}", r.text());
    }
    // A viewer sees the page but cannot mitigate.
    let viewer = console.token_client("viewer");
    let r = viewer
        .post_json(
            "/api/v1/mitigations",
            &serde_json::json!({ "prefix": "198.18.5.5", "kind": "blackhole", "reason": "x" }),
        )
        .unwrap();
    assert_eq!(r.status, 403);
}

#[test]
fn users_tokens_and_allowlist_pages() {
    let console = Console::start(ConsoleConfig::default());
    let admin = page_login(&console, "admin");
    let page = admin.get("/console/users").unwrap().text();
    let csrf = form_value(&page, "csrf").unwrap();
    let r = admin
        .post_form("/console/users", &[("csrf", &csrf), ("op", "create"), ("name", "huda"), ("role", "auditor")])
        .unwrap();
    assert_eq!(r.status, 200);
    let html = r.text();
    let password = html.split("id=\"one-time-password\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let huda = Client::new(console.addr);
    let login = huda.post_json("/api/v1/login", &serde_json::json!({ "name": "huda", "password": password })).unwrap();
    assert_eq!(login.status, 200);
    assert_eq!(login.json()["role"], "auditor");
    // Bad input: a role that does not exist changes nothing.
    let r = admin
        .post_form("/console/users", &[("csrf", &csrf), ("op", "create"), ("name", "x"), ("role", "king")])
        .unwrap();
    assert!(r.text().contains("role"));
    assert_eq!(page_login(&console, "viewer").get("/console/users").unwrap().status, 403);

    // Tokens: created on the page, shown once, revoked on the page.
    let viewer = page_login(&console, "viewer");
    let csrf = form_value(&viewer.get("/console/tokens").unwrap().text(), "csrf").unwrap();
    let r = viewer.post_form("/console/tokens", &[("csrf", &csrf), ("op", "create"), ("label", "grafana")]).unwrap();
    let secret = r.text().split("id=\"token-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let bot = Client::new(console.addr).with_header("authorization", &format!("Bearer {secret}"));
    assert_eq!(bot.get("/api/v1/me").unwrap().json()["name"], "viewer");
    let list = viewer.get("/console/tokens").unwrap().text();
    assert!(list.contains("grafana") && !list.contains(&secret), "the secret is not shown again");
    let id = form_value(&list, "id").unwrap();
    viewer.post_form("/console/tokens", &[("csrf", &csrf), ("op", "revoke"), ("id", &id)]).unwrap();
    assert_eq!(bot.get("/api/v1/me").unwrap().status, 401);

    // Allowlist: an operator adds an entry with a reason; a viewer cannot.
    let op = page_login(&console, "operator");
    let csrf = form_value(&op.get("/console/allowlist").unwrap().text(), "csrf").unwrap();
    let r = op
        .post_form(
            "/console/allowlist",
            &[("csrf", &csrf), ("op", "add"), ("selector", "exact:portal.gov.test"), ("reason", "")],
        )
        .unwrap();
    assert!(r.text().contains("reason is required"));
    let r = op
        .post_form(
            "/console/allowlist",
            &[("csrf", &csrf), ("op", "add"), ("selector", "exact:portal.gov.test"), ("reason", "e-government portal")],
        )
        .unwrap();
    assert!(r.text().contains("portal.gov.test") && r.text().contains("e-government portal"));
    let vcsrf = form_value(&viewer.get("/console/tokens").unwrap().text(), "csrf").unwrap();
    let r = viewer
        .post_form(
            "/console/allowlist",
            &[("csrf", &vcsrf), ("op", "add"), ("selector", "other.test"), ("reason", "x")],
        )
        .unwrap();
    assert_eq!(r.status, 403);
    // The API sees the same entry, and the compile report counts it.
    let api = console.token_client("viewer");
    assert_eq!(api.get("/api/v1/allowlist").unwrap().json()[0]["selector"], "exact:portal.gov.test");
    let compiled = api.get("/api/v1/policy/compile").unwrap().json();
    assert_eq!(compiled["stats"]["allow_entries"], 1, "{compiled}");
    // The fake gateway has no RPZ export: a clear refusal.
    let r = api.get("/api/v1/policy/export").unwrap();
    assert_eq!(r.status, 409);
}

#[test]
fn users_change_their_own_password() {
    let console = Console::start(ConsoleConfig::default());
    let viewer = page_login(&console, "viewer");
    let page = viewer.get("/console/password").unwrap();
    assert_eq!(page.status, 200);
    let csrf = form_value(&page.text(), "csrf").unwrap();
    let new = "a much longer passphrase";
    for (current, again, needle) in [
        ("wrong password!", new, "current password is wrong"),
        (PASSWORD, "something else entirely", "differ"),
        (PASSWORD, "short", "at least 12 characters, not 5"),
    ] {
        let fields = [
            ("csrf", csrf.as_str()),
            ("current", current),
            ("new", if again == "short" { "short" } else { new }),
            ("again", again),
        ];
        let r = viewer.post_form("/console/password", &fields).unwrap();
        assert_eq!(r.status, 422, "{needle}: {}", r.text());
        assert!(r.text().contains(needle), "{needle}: {}", r.text());
    }
    let r = viewer
        .post_form("/console/password", &[("csrf", &csrf), ("current", PASSWORD), ("new", new), ("again", new)])
        .unwrap();
    assert_eq!(r.status, 303);
    assert_eq!(viewer.get("/console").unwrap().status, 303, "the session ended");
    let login = |pw: &str| {
        Client::new(console.addr)
            .post_json("/api/v1/login", &serde_json::json!({ "name": "viewer", "password": pw }))
            .unwrap()
            .status
    };
    assert_eq!(login(PASSWORD), 403);
    assert_eq!(login(new), 200);
}
