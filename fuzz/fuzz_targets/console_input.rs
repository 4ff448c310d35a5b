//! What the console parses from people it does not trust never panics: the "is it blocked?"
//! and appeal site field (a name, URL or address reduced to a host), dates typed into order
//! forms, cookies and Accept-Language headers, and client addresses grouped for rate limits.
//! The API client reads servers' answers without panicking. Reduced hosts hold no scheme, path, query or fragment; a date the console prints parses back
//! to the same day.
#![no_main]
use bawaba_console::auth::{client_prefix, cookie};
use bawaba_console::check::target_of;
use bawaba_console::client::parse_response;
use bawaba_console::i18n::Lang;
use bawaba_console::util::{date, parse_date};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    let text = String::from_utf8_lossy(data);
    if let Ok(host) = target_of(&text) {
        assert!(!host.contains(['/', '?', '#']) && !host.contains("://"), "{text:?} -> {host:?}");
    }
    if let Ok(secs) = parse_date(&text, 1_795_824_000) {
        let day = date(secs);
        if let Ok(again) = parse_date(&day, 0) {
            assert_eq!(date(again), day);
        }
    }
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_bytes(data) {
        headers.insert(axum::http::header::COOKIE, v.clone());
        headers.insert(axum::http::header::ACCEPT_LANGUAGE, v);
    }
    let _ = cookie(&headers, "lang");
    let _ = Lang::pick(Some(&text), &headers);
    if data.len() >= 16 {
        let mut v6 = [0u8; 16];
        v6.copy_from_slice(&data[..16]);
        let p = client_prefix(std::net::Ipv6Addr::from(v6).into());
        assert!(p.ends_with("/56"));
        let p = client_prefix(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]).into());
        assert!(p.ends_with(".0/24"));
    }
});
