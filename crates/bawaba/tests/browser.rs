//! The console in headless Chromium against the real `bawaba serve`: a legal officer logs in,
//! records an order and a rule, a second person approves it, an operator publishes, "is it
//! blocked?" shows the order, the block page opens in English and Arabic, a citizen files an
//! appeal and staff find it in the queue. Screenshots of the main pages at desktop and mobile
//! widths go to `target/screenshots/` (or `$BAWABA_SCREENSHOTS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use bawaba_testkit::webdriver::Browser;

fn bawaba(config: &Path, actor: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(config)
        .arg("--actor")
        .arg(actor)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "bawaba {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The one-time password in `bawaba init` or `bawaba user add` output.
fn password_in(output: &str) -> String {
    output.split("password: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("BAWABA_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("../screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Site<'a> {
    browser: &'a Browser,
    base: String,
}

impl Site<'_> {
    fn go(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base)).unwrap();
    }

    fn text(&self, css: &str) -> String {
        self.browser.find(css).unwrap().text().unwrap()
    }

    fn fill(&self, css: &str, value: &str) {
        let e = self.browser.find(css).unwrap();
        e.clear().unwrap();
        e.send_keys(value).unwrap();
    }

    /// Sets an input's value directly (date inputs take locale-dependent keystrokes).
    fn set(&self, css: &str, value: &str) {
        let e = self.browser.find(css).unwrap();
        self.browser.execute("arguments[0].value = arguments[1];", &[e.to_json(), serde_json::json!(value)]).unwrap();
    }

    fn click(&self, css: &str) {
        self.browser.find(css).unwrap().click().unwrap();
    }

    fn login(&self, name: &str, password: &str) {
        self.go("/login");
        self.fill("#name", name);
        self.fill("#password", password);
        self.click("form[action='/login'] button[type=submit]");
        self.browser.wait_until("the dashboard after login", |b| Ok(b.url()?.contains("/console"))).unwrap();
    }

    fn logout(&self) {
        self.click("form[action='/logout'] button");
        self.browser.wait_until("logged out", |b| Ok(!b.page_source()?.contains("/logout"))).unwrap();
    }

    /// Screenshots of the current page at desktop and mobile widths.
    fn shoot(&self, name: &str) {
        let dir = screenshots();
        self.browser.set_viewport_size(1280, 900).unwrap();
        self.browser.screenshot(dir.join(format!("{name}-desktop.png"))).unwrap();
        self.browser.set_viewport_size(390, 844).unwrap();
        self.browser.screenshot(dir.join(format!("{name}-mobile.png"))).unwrap();
        self.browser.set_viewport_size(1280, 900).unwrap();
    }
}

#[test]
fn governance_workflow_in_a_real_browser() {
    let Some(browser) = Browser::start(1280, 900) else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bawaba.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\ndata_dir = {:?}\n[serve]\nreload_interval_secs = 60\nmetrics_listen = \"127.0.0.1:0\"\n\
             [dns]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\nupstream_timeout_ms = 200\n\
             [console]\nenabled = true\nlisten = \"127.0.0.1:0\"\noperator_name = \"Iraqi gateway operator\"\n",
            dir.path().join("data").to_str().unwrap()
        ),
    )
    .unwrap();
    let admin_pw = password_in(&bawaba(&config, "installer", &["init"]));
    let legal_pw = password_in(&bawaba(&config, "admin", &["user", "add", "noor", "--role", "legal"]));
    let approver_pw = password_in(&bawaba(&config, "admin", &["user", "add", "karim", "--role", "approver"]));

    let mut dns: Option<SocketAddr> = None;
    let mut addr: Option<SocketAddr> = None;
    let _server = common::start_serve(&config, |line| {
        if let Some(rest) = line.strip_prefix("dns listening on ") {
            dns = rest.split_whitespace().next().unwrap().parse().ok();
        }
        if let Some(rest) = line.strip_prefix("console on http://") {
            addr = rest.split('/').next().unwrap().parse().ok();
        }
        addr.is_some()
    });
    let addr = addr.expect("serve printed the console address");
    let dns = dns.expect("serve printed the DNS address");
    let site = Site { browser: &browser, base: format!("http://{addr}") };

    // 1. The legal officer records the order and its rule.
    site.login("noor", &legal_pw);
    site.go("/console/orders");
    site.click("a[href='/console/orders/new']");
    site.fill("#authority", "Communications and Media Commission");
    site.fill("#reference", "CMC-2026-0042");
    site.browser.select_option("#category", "phishing").unwrap();
    site.set("#expires", "2027-05-20");
    site.fill("#summary", "Counterfeit banking site collecting card numbers");
    site.fill("#appeal_contact", "appeals@cmc.example");
    site.click("form[action='/console/orders'] button[type=submit]");
    browser.wait_until("the new order's page", |b| Ok(b.url()?.contains("/console/orders/1"))).unwrap();
    assert!(site.text("h1").contains("CMC-2026-0042"));
    site.fill("#selector", "fake-bank.test");
    site.browser.select_option("#action", "block-page").unwrap();
    site.click("#add-rule");
    browser.wait_until("the rule in the table", |b| Ok(b.find("#rules")?.text()?.contains("fake-bank.test"))).unwrap();
    // Bad input gets a clear message and changes nothing.
    site.fill("#selector", "not a name!");
    site.click("#add-rule");
    browser.wait_until("the error", |b| Ok(b.find("p.error")?.text()?.contains("not a name!"))).unwrap();
    assert_eq!(site.browser.find_all("#rules tr").unwrap().len(), 2, "header and the one rule");
    // A list file is imported through the upload form.
    let list = dir.path().join("phishing-domains.txt");
    std::fs::write(
        &list,
        "# from the bank's CERT
login-fake-bank.test
secure-fake-bank.test
not a name!
",
    )
    .unwrap();
    site.browser.find("#file").unwrap().send_keys(list.to_str().unwrap()).unwrap();
    site.browser.select_option("#format", "domains").unwrap();
    site.click("form[enctype='multipart/form-data'] button[type=submit]");
    if let Err(e) = browser.wait_until("the import report", |b| Ok(b.find("p.ok")?.text()?.contains("Imported: 2"))) {
        panic!("{e}\n{}", browser.page_source().unwrap_or_default());
    }
    assert!(site.text("p.ok").contains("1 rejected lines"), "{}", site.text("p.ok"));
    assert_eq!(site.browser.find_all("#rules tr").unwrap().len(), 4);
    site.shoot("order");
    site.logout();

    // 2. A second person approves it (four eyes), and sees the rule it covers.
    site.login("karim", &approver_pw);
    site.go("/console/orders/1");
    assert!(site.text("#approval").contains("Four eyes"));
    site.click("#approve");
    browser.wait_until("the order approved", |b| Ok(b.find("h1 .badge")?.text()? == "active")).unwrap();
    site.logout();

    // 3. The operator (here the admin) publishes; the dashboard shows the version in force.
    site.login("admin", &admin_pw);
    site.click("form[action='/console/publish'] button");
    browser.wait_until("published", |b| Ok(b.find("p.ok")?.text()?.contains("2"))).unwrap();
    // Users resolve the name; the DNS server answers with the block page and counts it.
    for _ in 0..3 {
        assert_eq!(
            bawaba_testkit::dns_rcode(dns, "www.fake-bank.test"),
            Some(3),
            "NXDOMAIN: no block page address is configured"
        );
    }
    site.go("/console");
    let blocked = site.text("main .grid .card:nth-child(2)");
    assert!(blocked.contains("phishing") && blocked.contains('3'), "{blocked}");
    site.shoot("dashboard");

    // The API exports the policy in force as the RPZ zone the CLI writes.
    let token = bawaba(&config, "admin", &["user", "token", "admin", "--label", "test"]);
    let secret = token.split(": ").nth(1).unwrap().lines().next().unwrap().trim().to_string();
    let api = bawaba_testkit::http::Client::new(addr).with_header("authorization", &format!("Bearer {secret}"));
    let zone = api.get("/api/v1/policy/export").unwrap();
    assert_eq!(zone.status, 200);
    assert!(
        zone.text().contains("$ORIGIN rpz.bawaba.invalid.") && zone.text().contains("\nfake-bank.test "),
        "{}",
        zone.text()
    );

    // 4. "Is it blocked?" names the order.
    site.go("/console/check");
    site.fill("#q", "https://www.fake-bank.test/login");
    site.click("form[action='/console/check'] button");
    browser.wait_until("the verdict", |b| Ok(b.find("#verdict")?.text()?.contains("CMC-2026-0042"))).unwrap();
    assert!(site.text("#verdict .verdict").contains("Blocked"));
    site.shoot("check");
    site.go("/console/orders");
    site.shoot("orders");
    // The audit log verifies, and shows who did what.
    site.go("/console/audit");
    site.click("#verify");
    browser.wait_until("the verification", |b| Ok(b.find("#verify-result")?.text()?.contains("intact"))).unwrap();
    let log = site.text("#audit");
    assert!(log.contains("karim") && log.contains("order.approve") && log.contains("noor"), "{log}");
    site.shoot("audit");
    site.logout();

    // 5. The block page, in English and then in Arabic (right to left).
    site.go("/blocked?order=CMC-2026-0042&host=www.fake-bank.test");
    assert_eq!(site.text("h1"), "Access to this site is restricted");
    assert_eq!(site.text("#reference"), "CMC-2026-0042");
    assert!(site.text("#authority").contains("Communications and Media Commission"));
    site.shoot("blockpage-en");
    site.click("a.lang");
    browser.wait_until("the Arabic page", |b| Ok(b.find("h1")?.text()? == "الوصول إلى هذا الموقع مقيّد")).unwrap();
    let dir_attr = browser.execute("return document.documentElement.dir;", &[]).unwrap();
    assert_eq!(dir_attr, "rtl");
    // Right to left for real: the heading's text starts at the right edge of its box.
    let align = browser.execute("return getComputedStyle(document.querySelector('h1')).direction;", &[]).unwrap();
    assert_eq!(align, "rtl");
    site.shoot("blockpage-ar");

    // 6. A citizen appeals from the block page and gets a reference number.
    site.click("#appeal");
    browser.wait_until("the appeal form", |b| Ok(b.find("#reason").is_ok())).unwrap();
    assert_eq!(browser.find("#order").unwrap().value().unwrap(), "CMC-2026-0042");
    site.fill("#reason", "هذا موقع متجري الإلكتروني وليس بنكًا مزيفًا");
    site.shoot("appeal");
    site.click("#submit-appeal");
    browser.wait_until("the reference", |b| Ok(b.find("#appeal-reference")?.text()?.starts_with("AP-"))).unwrap();
    let reference = site.text("#appeal-reference");
    site.go("/transparency");
    assert!(site.text("#published").contains("CMC-2026-0042"));
    site.shoot("transparency");

    // 7. Staff find it in the appeals queue.
    site.go("/?lang=en");
    site.login("noor", &legal_pw);
    site.go("/console/appeals");
    browser.wait_until("the appeal in the queue", |b| Ok(b.page_source()?.contains(&reference))).unwrap();
    site.shoot("appeals");
}
