//! Several gateway sites, one console: a site's `bawaba serve` reports its enforcement points
//! over HTTPS to the central console ([serve] report_to, with an operator's API token and the
//! console's CA), and the central console lists them with the site's name and bundle version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bawaba_testkit::free_port;

fn bawaba(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bawaba"))
        .arg("--config")
        .arg(config)
        .args(["--actor", "admin"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "bawaba {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn token(config: &Path, user: &str) -> String {
    let out = bawaba(config, &["user", "token", user, "--label", "test"]);
    out.split(": ").nth(1).unwrap().lines().next().unwrap().trim().to_string()
}

/// Starts `bawaba serve` and waits for a line of its output that starts with `ready`.
fn serve(config: &Path, ready: &str) -> bawaba_testkit::ChildGuard {
    common::start_serve(config, |line| line.starts_with(ready))
}

#[test]
fn a_site_reports_its_enforcement_points_to_the_central_console() {
    let Some(tools) = bawaba_testkit::require_tools("sites report to the console", &["openssl", "curl"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A CA, and the console's certificate signed by it (webpki refuses a CA certificate as a
    // server's own, which is what `openssl req -x509` makes).
    let path = |name: &str| dir.path().join(name);
    let (ca, cert, key) = (path("ca.crt"), path("console.crt"), path("console.key"));
    let openssl = |args: &[&str]| {
        let out = Command::new(&tools[0]).current_dir(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=bawaba test CA", "-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(&[&["req"][..], &ec, &["-subj", "/CN=console", "-keyout", "console.key", "-out", "console.csr"]].concat());
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "console.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "console.crt",
    ]);

    // The central console, over HTTPS.
    let port = free_port();
    let central = dir.path().join("central.toml");
    std::fs::write(
        &central,
        format!(
            "[store]\ndata_dir = {:?}\n[serve]\nmetrics_listen = \"127.0.0.1:0\"\n[dns]\nenabled = false\n\
             [console]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            dir.path().join("central").to_str().unwrap(),
            cert.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    bawaba(&central, &["init"]);
    bawaba(&central, &["user", "add", "basra-reporter", "--role", "operator"]);
    let site_token = token(&central, "basra-reporter");
    let admin_token = token(&central, "admin");
    let _central = serve(&central, "console on https://");

    // A site with a DNS server, reporting every second.
    let site = dir.path().join("site.toml");
    std::fs::write(
        &site,
        format!(
            "[store]\ndata_dir = {:?}\n[serve]\nmetrics_listen = \"127.0.0.1:0\"\nsite = \"basra-1\"\n\
             report_to = \"https://127.0.0.1:{port}\"\nreport_token = \"{site_token}\"\nreport_ca = {:?}\nreport_interval_secs = 1\n\
             [dns]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"127.0.0.1:9\"]\nupstream_timeout_ms = 200\n",
            dir.path().join("site").to_str().unwrap(),
            ca.to_str().unwrap()
        ),
    )
    .unwrap();
    let _site = serve(&site, "reporting enforcement points");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new(&tools[1])
            .args(["-s", "--cacert"])
            .arg(&ca)
            .args(["-H", &format!("authorization: Bearer {admin_token}")])
            .arg(format!("https://127.0.0.1:{port}/api/v1/points"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Ok(points) = serde_json::from_str::<serde_json::Value>(&text) {
            let reported = points.as_array().unwrap().iter().find(|p| p["site"] == "basra-1").cloned();
            if let Some(p) = reported {
                assert_eq!(p["kind"], "dns", "{p}");
                assert_eq!(p["bundle_version"], 1, "{p}");
                assert!(p["reported_at"].is_i64(), "{p}");
                assert!(p["name"].as_str().unwrap().starts_with("dns 127.0.0.1:"), "{p}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "no report from the site: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Reporting needs the operator role: a viewer's token is refused.
    bawaba(&central, &["user", "add", "watcher", "--role", "viewer"]);
    let viewer = token(&central, "watcher");
    let out = Command::new(&tools[1])
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&ca)
        .args(["-H", &format!("authorization: Bearer {viewer}"), "-H", "content-type: application/json"])
        .args(["-d", r#"{"site":"fake","points":[]}"#])
        .arg(format!("https://127.0.0.1:{port}/api/v1/points/report"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
}
