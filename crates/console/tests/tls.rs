//! HTTPS: the console serves TLS from PEM files, and its session cookie is then `Secure`.
//! Plain HTTP beyond loopback is refused by the config check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use bawaba_console::ConsoleConfig;
use common::{Console, PASSWORD};

#[test]
fn https_with_secure_cookies() {
    let Some(tools) = bawaba_testkit::require_tools("https_with_secure_cookies", &["openssl", "curl"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("console.crt"), dir.path().join("console.key"));
    let made = Command::new(&tools[0])
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let acceptor = bawaba_console::tls::acceptor(&cert, &key).unwrap();
    let config = ConsoleConfig { tls_cert: Some(cert.clone()), tls_key: Some(key.clone()), ..ConsoleConfig::default() };
    let console = Console::start_with(config, Some(acceptor));
    // Two clients that connect and never start their handshakes hold up nobody: the request
    // below must finish well within the 10 s a stalled handshake is given.
    let stalled: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(console.addr).unwrap()).collect();
    let out = Command::new(&tools[1])
        .args(["-s", "-i", "--max-time", "5", "--cacert"])
        .arg(&cert)
        .args(["-H", "content-type: application/json", "-d"])
        .arg(format!(r#"{{"name":"viewer","password":"{PASSWORD}"}}"#))
        .arg(format!("https://127.0.0.1:{}/api/v1/login", console.addr.port()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let cookie = text.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: bawaba_session=")).unwrap();
    drop(stalled);
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    // Plain HTTP on the TLS port gets nowhere.
    let plain =
        bawaba_testkit::http::Client::new(console.addr).with_timeout(std::time::Duration::from_secs(3)).get("/healthz");
    assert!(plain.map_or(true, |r| r.status != 200));
    // A key that does not parse is a clear error.
    std::fs::write(dir.path().join("bad.key"), "not a key").unwrap();
    let err = bawaba_console::tls::acceptor(&cert, &dir.path().join("bad.key")).err().unwrap();
    assert!(err.to_string().contains("bad.key"), "{err}");
}

#[test]
fn plain_http_only_on_loopback() {
    let mut c = ConsoleConfig { listen: "198.18.0.10:8080".parse().unwrap(), ..ConsoleConfig::default() };
    assert!(c.check().unwrap_err().contains("tls_cert"));
    c.allow_plain_http = true;
    assert!(c.check().is_ok());
    let half = ConsoleConfig { tls_cert: Some("a.crt".into()), ..ConsoleConfig::default() };
    assert!(half.check().unwrap_err().contains("together"));
    assert!(ConsoleConfig::default().check().is_ok());
}
