//! `bawaba_testkit::http::Client` against a tiny server: the cookie jar, the exact bytes of a
//! form body with Arabic text, chunked and unframed responses, headers, no redirects, timeouts.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use bawaba_testkit::http::{form_value, Client};
use common::{respond, serve, Request};
use serde_json::json;
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const FORM_PAGE: &str = r#"<!doctype html><form method="post" action="/submit">
<input value="tok&amp;en&quot;1" type="hidden" name="csrf">
<input name="action"><input name="note"></form>"#;

fn routes(request: &Request, stream: &mut TcpStream) -> io::Result<()> {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/form") => respond(
            stream,
            "200 OK",
            &[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Set-Cookie", "session=s3cr3t; Path=/; HttpOnly; SameSite=Strict"),
                ("Set-Cookie", "lang=ar; Path=/; Max-Age=3600"),
            ],
            FORM_PAGE.as_bytes(),
        ),
        ("POST", "/submit") => respond(stream, "303 See Other", &[("Location", "/done")], b""),
        ("GET", "/logout") => respond(
            stream,
            "200 OK",
            &[
                ("Set-Cookie", "session=; Path=/; Max-Age=0"),
                ("Set-Cookie", "lang=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ],
            b"bye",
        ),
        ("GET", "/chunked") => {
            // Written piece by piece so the client sees chunk boundaries across reads, and
            // "حظر" split inside a character.
            let pieces: [&[u8]; 6] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
                b"4;ext=1\r\nWiki\r\n",
                b"3\r\n \xD8\xAD\r\n",
                b"4\r\n\xD8\xB8\xD8\xB1\r\n",
                b"1A\r\n in \r\n\r\nchunks. 0123456789\r\n",
                b"0\r\nX-Trailer: t\r\n\r\n",
            ];
            for piece in pieces {
                stream.write_all(piece)?;
                stream.flush()?;
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        }
        ("GET", "/unframed") => stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
        ("POST", "/json") => {
            let reply = format!(r#"{{"got":{},"name":"حظر"}}"#, String::from_utf8_lossy(&request.body));
            respond(stream, "201 Created", &[("Content-Type", "application/json")], reply.as_bytes())
        }
        ("GET", "/hang") => {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        }
        _ => respond(stream, "404 Not Found", &[], b"not found"),
    }
}

#[test]
fn cookies_form_encoding_and_no_redirects() {
    let server = serve(routes);
    let client = Client::new(server.addr);

    let page = client.get("/form").unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.headers_all("SET-COOKIE").len(), 2);
    assert_eq!(client.cookies(), [("session".into(), "s3cr3t".into()), ("lang".into(), "ar".into())]);
    let csrf = form_value(&page.text(), "csrf").unwrap();
    assert_eq!(csrf, "tok&en\"1");

    let done = client.post_form("/submit", &[("csrf", &csrf), ("action", "حظر"), ("note", "a&b=c d")]).unwrap();
    assert_eq!((done.status, done.header("location")), (303, Some("/done")), "a redirect is returned, not followed");
    assert!(server.received("/done").is_empty());
    let posted = &server.received("/submit")[0];
    assert_eq!(
        String::from_utf8(posted.body.clone()).unwrap(),
        "csrf=tok%26en%221&action=%D8%AD%D8%B8%D8%B1&note=a%26b%3Dc+d"
    );
    assert_eq!(posted.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(posted.header("content-length"), Some("60"));
    assert_eq!(posted.header("cookie"), Some("session=s3cr3t; lang=ar"));
    assert_eq!(posted.header("host"), Some(server.addr.to_string().as_str()));
    assert_eq!(posted.header("connection"), Some("close"));

    let bye = client.get("/logout").unwrap();
    assert_eq!(bye.text(), "bye");
    assert_eq!(client.cookies(), [], "Max-Age=0 and a past Expires delete");
    client.get("/after").unwrap();
    assert_eq!(server.received("/after")[0].header("cookie"), None);
}

#[test]
fn default_and_per_request_headers() {
    let server = serve(routes);
    let client = Client::new(server.addr).with_header("Authorization", "Bearer abc").with_header("X-CSRF-Token", "t1");
    client.request("DELETE", "/thing", &[("x-csrf-token", "t2")], b"").unwrap();
    let sent = &server.received("/thing")[0];
    assert_eq!(sent.method, "DELETE");
    assert_eq!(sent.header("authorization"), Some("Bearer abc"));
    assert_eq!(sent.header("x-csrf-token"), Some("t2"), "a per-request header replaces the default");
    assert_eq!(sent.head.to_ascii_lowercase().matches("x-csrf-token:").count(), 1, "sent once");
    assert_eq!(sent.header("content-length"), None, "no body, no length on DELETE");
}

#[test]
fn chunked_unframed_and_json_bodies() {
    let server = serve(routes);
    let client = Client::new(server.addr);
    let chunked = client.get("/chunked").unwrap();
    assert_eq!(chunked.text(), "Wiki حظر in \r\n\r\nchunks. 0123456789");
    assert_eq!(chunked.header("x-trailer"), None, "trailers are dropped");

    assert_eq!(client.get("/unframed").unwrap().text(), "until close");

    let created = client.post_json("/json", &json!({"selector": "example.iq", "n": 1})).unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.json(), json!({"got": {"selector": "example.iq", "n": 1}, "name": "حظر"}));
    assert_eq!(server.received("/json")[0].header("content-type"), Some("application/json"));
    assert_eq!(client.get("/missing").unwrap().status, 404);
}

#[test]
fn a_hung_server_times_out() {
    let server = serve(routes);
    let client = Client::new(server.addr).with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = client.get("/hang").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = error.to_string();
    assert!(message.starts_with(&format!("GET /hang to {}: ", server.addr)), "{message}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = Client::new(closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(refused.get("/").unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
}
