//! `bawaba_testkit::webdriver::Browser` against headless Chromium: an Arabic right-to-left page
//! served by a tiny server, typed into, clicked, read back and captured as a PNG (needs
//! chromium, chromium-driver and an Arabic font: scripts/install-test-deps.sh).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use bawaba_testkit::webdriver::Browser;
use common::{respond, serve, Request};
use serde_json::json;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>حجب المواقع</title>
<style>body { font-family: sans-serif; font-size: 28px; margin: 24px } input, button, select { font-size: 24px }</style>
</head><body>
<h1 id="heading">أمر الحظر رقم ١٢ صادر عن المحكمة</h1>
<p id="out">لم يُرسَل بعد</p>
<input id="q" name="q" placeholder="النطاق">
<button id="go" type="button" onclick="document.getElementById('out').textContent = 'تم الإرسال: ' + document.getElementById('q').value">إرسال</button>
<select id="category" onchange="document.getElementById('chosen').textContent = this.value">
<option value="gambling">قمار</option><option value="malware">برمجيات خبيثة</option></select>
<span id="chosen"></span>
<form id="search" action="/submitted" method="get"><input name="x" value="١"></form>
</body></html>"#;

fn routes(request: &Request, stream: &mut TcpStream) -> io::Result<()> {
    match request.path.as_str() {
        "/rtl" => respond(stream, "200 OK", &[("Content-Type", "text/html; charset=utf-8")], PAGE.as_bytes()),
        path if path.starts_with("/submitted") => respond(
            stream,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "seen=1; HttpOnly; SameSite=Strict")],
            "<!doctype html><title>ok</title><p id=done>تم</p>".as_bytes(),
        ),
        _ => respond(stream, "404 Not Found", &[], b"not found"),
    }
}

#[test]
fn arabic_page_typing_clicking_and_a_screenshot() {
    let Some(mut browser) = Browser::start(900, 500) else { return };
    let server = serve(routes);
    let base = format!("http://{}", server.addr);

    browser.goto(&format!("{base}/rtl")).unwrap();
    assert_eq!(browser.title().unwrap(), "حجب المواقع");
    assert_eq!(browser.url().unwrap(), format!("{base}/rtl"));
    let html = browser.find("html").unwrap();
    assert_eq!(
        (html.attr("dir").unwrap().as_deref(), html.attr("lang").unwrap().as_deref()),
        (Some("rtl"), Some("ar"))
    );
    assert_eq!(html.attr("data-none").unwrap(), None);

    let input = browser.find("#q").unwrap();
    input.send_keys("wrong").unwrap();
    input.clear().unwrap();
    input.send_keys("حظر example.iq").unwrap();
    assert_eq!(input.value().unwrap(), "حظر example.iq");
    browser.find("#go").unwrap().click().unwrap();
    assert_eq!(browser.find("#out").unwrap().text().unwrap(), "تم الإرسال: حظر example.iq");

    browser.select_option("#category", "malware").unwrap();
    assert_eq!(browser.find("#chosen").unwrap().text().unwrap(), "malware");
    let error = browser.select_option("#category", "news").unwrap_err();
    assert!(error.contains("no option \"news\""), "{error}");

    let direction =
        browser.execute("return getComputedStyle(arguments[0]).direction;", &[browser.find("#out").unwrap().to_json()]);
    assert_eq!(direction.unwrap(), json!("rtl"));
    let error = browser.execute("throw new Error('boom')", &[]).unwrap_err();
    assert!(error.starts_with("WebDriver POST /execute/sync: javascript error: "), "{error}");
    assert_eq!(browser.find_all("option").unwrap().len(), 2);
    assert!(browser.page_source().unwrap().contains("أمر الحظر"));

    let png = browser.screenshot_png().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (900, 500), "the viewport is the --window-size");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("webdriver-arabic-rtl.png");
    browser.screenshot(&path).unwrap();
    eprintln!("screenshot: {}", path.display());

    browser.submit_form("#search").unwrap();
    browser.wait_until("the form's target page", |b| Ok(b.url()?.ends_with("/submitted?x=%D9%A1"))).unwrap();
    assert_eq!(browser.find("#done").unwrap().text().unwrap(), "تم");
    let submitted = server.received("/submitted?x=%D9%A1");
    assert_eq!((submitted.len(), submitted[0].method.as_str()), (1, "GET"), "the browser sent the form once");
    let cookies = browser.cookies().unwrap();
    assert_eq!((cookies[0]["name"].as_str(), cookies[0]["httpOnly"].as_bool()), (Some("seen"), Some(true)));
    browser.back().unwrap();
    browser.find("#heading").unwrap();

    browser.set_wait_timeout(Duration::from_millis(100));
    let error = browser.find("#absent").err().unwrap();
    assert!(error.starts_with("no element matches \"#absent\" after 100ms on http://"), "{error}");
    let error = browser.find("##").err().unwrap();
    assert!(error.contains("invalid selector"), "{error}");
    let stale = browser.find("#heading").unwrap();
    browser.refresh().unwrap();
    assert!(stale.text().unwrap_err().contains("stale element reference"));
    browser.set_viewport_size(375, 640).unwrap();
    assert_eq!(browser.execute("return [innerWidth, innerHeight];", &[]).unwrap(), json!([375, 640]));
    browser.set_window_size(600, 400).unwrap();
    assert_eq!(browser.execute("return outerWidth;", &[]).unwrap(), json!(600));
}
