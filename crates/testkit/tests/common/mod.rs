//! A tiny HTTP/1.1 server for testing the clients: one thread per connection, one request per
//! connection, every request recorded byte for byte, responses written by a handler.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The request line and headers, CRLFs included.
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Writes the response to one request.
pub type Handler = fn(&Request, &mut TcpStream) -> io::Result<()>;

pub struct Server {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// The requests received so far for `path` (query included).
    pub fn received(&self, path: &str) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

/// Serves `handler` on a fresh loopback port until the test process ends.
pub fn serve(handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = log.clone();
            // A thread each: browsers open speculative connections that send nothing.
            std::thread::spawn(move || {
                let _ = handle(stream, handler, &log);
            });
        }
    });
    Server { addr, requests }
}

fn handle(mut stream: TcpStream, handler: Handler, log: &Mutex<Vec<Request>>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let before = head.len();
        if reader.read_line(&mut head)? == 0 {
            return Ok(());
        }
        if head[before..] == *"\r\n" {
            break;
        }
    }
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut request = Request { method, path, head, body: Vec::new() };
    let length: u64 = request.header("content-length").map_or(0, |l| l.parse().unwrap());
    reader.take(length).read_to_end(&mut request.body)?;
    log.lock().unwrap().push(request.clone());
    handler(&request, &mut stream)?;
    stream.flush()
}

/// A complete response with a Content-Length.
pub fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}
