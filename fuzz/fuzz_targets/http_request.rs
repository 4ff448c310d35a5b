//! HTTP request-head parsing never panics. On any input, a parsed request's method is one of the
//! accepted methods, its target and host are borrowed from the input's first `MAX_HEAD` bytes,
//! and the host is not empty (an empty Host value or target host is `NoHost`, not a host).
//!
//! Built requests: for the forms `http.rs` documents (a Host header with `host`, `host:port`,
//! `[v6]` or `[v6]:port`; an absolute-form target with optional userinfo; a CONNECT
//! authority-form target), the host comes back without port or brackets, exactly as put in, and
//! every prefix that ends before the line carrying the host is `Incomplete`.
#![no_main]
use std::net::Ipv6Addr;

use bawaba_wire::http::{parse_request, HttpError, MAX_HEAD, METHODS};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;


/// `inner` lies within `outer`.
fn within(inner: &str, outer: &[u8]) -> bool {
    let (i, o) = (inner.as_ptr() as usize, outer.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-";

fn built(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let v6 = u.ratio(1, 4)?;
    let host = if v6 {
        Ipv6Addr::from(u.arbitrary::<u128>()?).to_string()
    } else {
        let n = u.int_in_range(1..=40usize)?;
        (0..n).map(|_| u.choose(NAME_CHARS).map(|&c| char::from(c))).collect::<Result<String>>()?
    };
    let port: Option<u16> = u.arbitrary()?;
    let mut authority = if v6 { format!("[{host}]") } else { host.clone() };
    if let Some(port) = port {
        authority.push_str(&format!(":{port}"));
    }
    let form = u.int_in_range(0..=2u8)?;
    let extra_headers = u.int_in_range(0..=3usize)?;
    let mut req = String::new();
    let host_line_end;
    match form {
        // Origin form, host in the Host header.
        0 => {
            let method = *u.choose(&METHODS[..5])?; // not CONNECT
            req.push_str(&format!("{method} /index.html?q=1 HTTP/1.1\r\n"));
            for i in 0..extra_headers {
                req.push_str(&format!("X-Extra-{i}: v{i}\r\n"));
            }
            let name = *u.choose(&["Host", "host", "HOST", "hOsT"])?;
            let ows = *u.choose(&["", " ", "\t", "  "])?;
            req.push_str(&format!("{name}:{ows}{authority}{ows}\r\n"));
            host_line_end = req.len();
            req.push_str("Accept: */*\r\n\r\n");
        }
        // Absolute form: it wins over the Host header.
        1 => {
            let method = *u.choose(&METHODS[..5])?;
            let user = *u.choose(&["", "user@", "user:pw@"])?;
            let path = *u.choose(&["/", "/a/b", "", "?q=1", "#frag"])?;
            req.push_str(&format!("{method} http://{user}{authority}{path} HTTP/1.1\r\n"));
            host_line_end = req.len();
            req.push_str("Host: other.example\r\n\r\n");
        }
        // CONNECT, authority form.
        _ => {
            req.push_str(&format!("CONNECT {authority} HTTP/1.1\r\n"));
            host_line_end = req.len();
            req.push_str("\r\n");
        }
    }
    let bytes = req.as_bytes();
    let r = parse_request(bytes).unwrap_or_else(|e| panic!("{req:?}: {e}"));
    assert_eq!(r.host, host, "{req:?}");
    let cut = usize::from(u.arbitrary::<u16>()?) % host_line_end;
    assert_eq!(parse_request(&bytes[..cut]), Err(HttpError::Incomplete), "{:?}", &req[..cut]);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_request(data) {
        assert!(METHODS.contains(&r.method), "{:?}", r.method);
        let head = &data[..data.len().min(MAX_HEAD)];
        assert!(within(r.method, head) && within(r.target, head) && within(r.host, head));
        assert!(!r.target.is_empty());
        assert!(!r.host.is_empty(), "empty host from {:?}", String::from_utf8_lossy(data));
    }
    let _ = built(data);
});
