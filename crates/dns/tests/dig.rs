//! Black-box: the DNS server in-process, on loopback, queried with real `dig`, forwarding to a
//! stub upstream that answers from a table. Needs `dig` (scripts/install-test-deps.sh); without
//! it the test prints SKIPPED, or fails when `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bawaba_dns::metrics::DnsMetrics;
use bawaba_dns::DnsConfig;
use bawaba_policy::{Action, AllowEntry, AllowId, Category, Order, OrderId, PolicySnapshot, Rule, RuleId, Ruleset};
use bawaba_wire::dns::{Builder, Class, Message, Rcode, Section, Type};
use tokio::net::UdpSocket;

fn dig_available() -> bool {
    bawaba_testkit::require_tools("dns dig tests", &["dig"]).is_some()
}

fn order(id: i64, reference: &str, category: Category, publishable: bool) -> Order {
    bawaba_testkit::policy::order(id, reference, category, publishable)
}

fn policy() -> PolicySnapshot {
    let rules = [
        ("blocked.example.test", Action::Nxdomain, 1),
        ("exact:nodata.example.test", Action::Nodata, 1),
        ("page.example.test", Action::BlockPage, 2),
        ("exact:drop.example.test", Action::Drop, 1),
        ("exact:target.example.test", Action::Nxdomain, 2),
        ("198.18.66.0/24", Action::Nxdomain, 3),
    ];
    PolicySnapshot {
        version: 1,
        taken_at: 0,
        orders: vec![
            order(1, "CFI-2026-0042", Category::CourtOrder, true),
            order(2, "CMC-2026-0007", Category::Malware, true),
            order(3, "SEALED-1", Category::Terrorism, false),
        ],
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, (s, a, o))| Rule {
                id: RuleId(i as i64 + 1),
                order: OrderId(*o),
                selector: s.parse().unwrap(),
                action: *a,
                forced: None,
            })
            .collect(),
        allow: vec![AllowEntry {
            id: AllowId(1),
            selector: "exact:ok.blocked.example.test".parse().unwrap(),
            reason: "x".into(),
        }],
    }
}

/// The test policy and one more NXDOMAIN rule (order 1), compiled.
fn policy_and_nxdomain(id: i64, selector: &str) -> Ruleset {
    let mut p = policy();
    p.rules.push(Rule {
        id: RuleId(id),
        order: OrderId(1),
        selector: selector.parse().unwrap(),
        action: Action::Nxdomain,
        forced: None,
    });
    p.compile()
}

/// A stub upstream: answers from `table` (lowercase name -> records), NXDOMAIN with an SOA for
/// anything else; counts queries.
async fn stub_upstream(
    table: HashMap<&'static str, Vec<(Type, Vec<u8>)>>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Ok(q) = Message::parse(&buf[..n]) else { continue };
            let mut text = [0u8; 256];
            let question = q.question().unwrap();
            let name = question.name.to_text_lower(&mut text).unwrap_or("").to_string();
            let answer = match table.get(name.as_str()) {
                Some(records) => {
                    let mut b = Builder::response_to(&q, Rcode::NOERROR);
                    // A validating upstream: with DO set, it sets AD and adds an RRSIG per RRset.
                    let dnssec_ok = q.edns().is_some_and(|e| e.dnssec_ok);
                    for (rtype, rdata) in records {
                        if *rtype == question.qtype || *rtype == Type::CNAME {
                            let owner = if *rtype == Type::CNAME { wire(&name) } else { owner_for(records, &name) };
                            b.push_record_raw(Section::Answer, &owner, *rtype, Class::IN, 300, rdata);
                            if dnssec_ok {
                                let mut sig = rtype.0.to_be_bytes().to_vec();
                                sig.extend_from_slice(&[13, 3, 0, 0, 1, 44, 0, 0, 0, 2, 0, 0, 0, 1, 0x30, 0x39]);
                                sig.extend(wire("example.test"));
                                sig.extend_from_slice(&[0xab; 64]);
                                b.push_record_raw(Section::Answer, &owner, Type::RRSIG, Class::IN, 300, &sig);
                            }
                        }
                    }
                    if let Some(edns) = q.edns() {
                        if edns.dnssec_ok {
                            b.set_flags(bawaba_wire::dns::flags::AD);
                        }
                        b.push_opt(1232, edns.dnssec_ok, &[]);
                    }
                    b.finish()
                }
                None => {
                    let mut b = Builder::response_to(&q, Rcode::NXDOMAIN);
                    let mut soa = wire("ns.example.test");
                    soa.extend(wire("hostmaster.example.test"));
                    for v in [1u32, 3600, 600, 86400, 30] {
                        soa.extend_from_slice(&v.to_be_bytes());
                    }
                    b.push_record_raw(Section::Authority, &wire("example.test"), Type::SOA, Class::IN, 300, &soa);
                    b.finish()
                }
            };
            let _ = socket.send_to(&answer, peer).await;
        }
    });
    (addr, count)
}

/// The owner of non-CNAME records: the CNAME target when the entry is an alias.
fn owner_for(records: &[(Type, Vec<u8>)], name: &str) -> Vec<u8> {
    records.iter().find(|(t, _)| *t == Type::CNAME).map_or_else(|| wire(name), |(_, target)| target.clone())
}

fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

/// The server enabled on a free loopback port, forwarding to `upstream`.
fn loopback_config(upstream: SocketAddr) -> DnsConfig {
    DnsConfig {
        enabled: true,
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec![upstream],
        ..DnsConfig::default()
    }
}

/// A server bound as `config` says, enforcing [`policy`]; with its ruleset slot and metrics.
async fn bind_with_policy(
    config: &DnsConfig,
) -> (bawaba_dns::server::BoundServer, Arc<ArcSwap<Ruleset>>, Arc<DnsMetrics>) {
    let ruleset = Arc::new(ArcSwap::from_pointee(policy().compile()));
    let metrics = Arc::new(DnsMetrics::default());
    let server = bawaba_dns::server::bind(config, Arc::clone(&ruleset), Arc::clone(&metrics)).await.unwrap();
    (server, ruleset, metrics)
}

struct Dns {
    addr: SocketAddr,
    ruleset: Arc<ArcSwap<Ruleset>>,
    metrics: Arc<DnsMetrics>,
    upstream_queries: Arc<std::sync::atomic::AtomicU64>,
}

async fn start(upstream_dead: bool) -> Dns {
    let mut table: HashMap<&'static str, Vec<(Type, Vec<u8>)>> = HashMap::new();
    table.insert(
        "www.example.test",
        vec![
            (Type::A, vec![198, 18, 10, 1]),
            (Type::AAAA, [0x20, 0x01, 0x0d, 0xb8].into_iter().chain([0; 11]).chain([1]).collect()),
        ],
    );
    table.insert("ok.blocked.example.test", vec![(Type::A, vec![198, 18, 10, 2])]);
    table.insert(
        "alias.example.test",
        vec![(Type::CNAME, wire("target.example.test")), (Type::A, vec![198, 18, 10, 3])],
    );
    table.insert("hosted.example.test", vec![(Type::A, vec![198, 18, 66, 7])]);
    table.insert("big.example.test", (0..60).map(|i| (Type::A, vec![198, 18, 11, i])).collect());
    let (upstream, upstream_queries) = stub_upstream(table).await;
    // A port nothing listens on, for the dead-upstream case.
    let upstream = if upstream_dead { "127.0.0.1:9".parse().unwrap() } else { upstream };
    let config = DnsConfig {
        upstream_timeout_ms: 300,
        block_page_ipv4: Some("198.18.0.80".parse().unwrap()),
        serve_stale: 0,
        ..loopback_config(upstream)
    };
    let (server, ruleset, metrics) = bind_with_policy(&config).await;
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run());
    Dns { addr, ruleset, metrics, upstream_queries }
}

struct Answer {
    text: String,
}

impl Answer {
    fn status(&self) -> &str {
        self.text.split("status: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("NO ANSWER")
    }
    fn answers(&self) -> Vec<String> {
        let Some(section) = self.text.split(";; ANSWER SECTION:\n").nth(1) else { return vec![] };
        section
            .lines()
            .take_while(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }
}

async fn dig(dns: &Dns, args: &[&str]) -> Answer {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", dns.addr.ip())).arg("-p").arg(dns.addr.port().to_string());
    cmd.args(["+tries=1", "+time=1"]).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    Answer { text: String::from_utf8_lossy(&out.stdout).into_owned() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_answers_match_rpz_semantics_and_name_the_order() {
    if !dig_available() {
        return;
    }
    let dns = start(false).await;

    // QNAME trigger, subtree: NXDOMAIN for the name and below, with EDE 16 naming the order.
    let a = dig(&dns, &["blocked.example.test", "A"]).await;
    assert_eq!(a.status(), "NXDOMAIN", "{}", a.text);
    assert!(a.text.contains("EDE: 16 (Censored)"), "{}", a.text);
    assert!(a.text.contains("CFI-2026-0042") && a.text.contains("appeals@cmc.example"), "{}", a.text);
    assert_eq!(dig(&dns, &["deep.www.blocked.example.test"]).await.status(), "NXDOMAIN");

    // Allowlisted inside the blocked subtree: the upstream's answer.
    let a = dig(&dns, &["ok.blocked.example.test"]).await;
    assert_eq!(a.status(), "NOERROR", "{}", a.text);
    assert_eq!(a.answers(), vec!["ok.blocked.example.test. 300 IN A 198.18.10.2"]);

    // NODATA, and block page (A of the block-page server; malware order: EDE 15).
    let a = dig(&dns, &["nodata.example.test"]).await;
    assert_eq!((a.status(), a.answers().len()), ("NOERROR", 0), "{}", a.text);
    let a = dig(&dns, &["www.page.example.test"]).await;
    assert_eq!(a.answers(), vec!["www.page.example.test. 60 IN A 198.18.0.80"], "{}", a.text);
    assert!(a.text.contains("EDE: 15 (Blocked)"), "{}", a.text);

    // CNAME into a blocked name: the chain up to it, then the action.
    let a = dig(&dns, &["alias.example.test"]).await;
    assert_eq!(a.status(), "NXDOMAIN", "{}", a.text);
    assert_eq!(a.answers(), vec!["alias.example.test. 300 IN CNAME target.example.test."], "{}", a.text);

    // Response-IP trigger; a non-public order is not named, but the appeal contact is.
    let a = dig(&dns, &["hosted.example.test"]).await;
    assert_eq!(a.status(), "NXDOMAIN", "{}", a.text);
    assert!(a.text.contains("non-public") && !a.text.contains("SEALED-1"), "{}", a.text);

    // DROP: no answer at all.
    let a = dig(&dns, &["drop.example.test"]).await;
    assert!(a.text.contains("timed out") || a.text.contains("no servers could be reached"), "{}", a.text);

    // Unrelated names resolve; AAAA too; an unknown name is NXDOMAIN from upstream.
    assert_eq!(dig(&dns, &["www.example.test"]).await.answers(), vec!["www.example.test. 300 IN A 198.18.10.1"]);
    assert_eq!(
        dig(&dns, &["www.example.test", "AAAA"]).await.answers(),
        vec!["www.example.test. 300 IN AAAA 2001:db8::1"]
    );
    assert_eq!(dig(&dns, &["nope.example.test"]).await.status(), "NXDOMAIN");

    // Over TCP, and without EDNS (then no OPT comes back).
    assert_eq!(dig(&dns, &["+tcp", "www.example.test"]).await.answers().len(), 1);
    let a = dig(&dns, &["+noedns", "blocked.example.test"]).await;
    assert_eq!(a.status(), "NXDOMAIN");
    assert!(!a.text.contains("OPT PSEUDOSECTION"), "{}", a.text);

    let m = dns.metrics.render();
    assert!(m.contains("bawaba_dns_policy_hits_total{action=\"nxdomain\",category=\"court-order\"}"), "{m}");
    assert!(m.contains("bawaba_dns_policy_triggers_total{trigger=\"response_ip\"} 1"), "{m}");
    assert!(m.contains("bawaba_dns_dropped_total{reason=\"policy\"} 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_serves_repeats_and_policy_changes_apply_to_cached_names() {
    if !dig_available() {
        return;
    }
    let dns = start(false).await;
    let first = dig(&dns, &["www.example.test"]).await;
    assert_eq!(first.answers().len(), 1);
    let before = dns.upstream_queries.load(std::sync::atomic::Ordering::Relaxed);
    let again = dig(&dns, &["WWW.EXAMPLE.TEST"]).await;
    assert_eq!(again.status(), "NOERROR");
    // Case of the question preserved from the client, and no second upstream query.
    assert!(again.text.contains("WWW.EXAMPLE.TEST."), "{}", again.text);
    assert_eq!(dns.upstream_queries.load(std::sync::atomic::Ordering::Relaxed), before);
    // The answer passed this ruleset on that hit; later hits are served on that note, still in
    // the client's case, and without the upstream's OPT when the client sent none.
    let third = dig(&dns, &["wWw.Example.test"]).await;
    assert_eq!(third.status(), "NOERROR");
    assert!(third.text.contains("wWw.Example.test."), "{}", third.text);
    assert!(third.answers().iter().any(|a| a.ends_with("IN A 198.18.10.1")), "{}", third.text);
    let plain = dig(&dns, &["+noedns", "www.example.test"]).await;
    assert_eq!(plain.answers().len(), 1, "{}", plain.text);
    assert!(!plain.text.contains("OPT PSEUDOSECTION"), "{}", plain.text);
    assert_eq!(dns.upstream_queries.load(std::sync::atomic::Ordering::Relaxed), before);

    // A new policy blocks the cached answer's address: the next hit is checked again, and
    // rewritten (response-IP trigger).
    dns.ruleset.store(Arc::new(policy_and_nxdomain(98, "198.18.10.0/24")));
    assert_eq!(dig(&dns, &["www.example.test"]).await.status(), "NXDOMAIN");
    // Back to the first policy: a ruleset with a serial the entry never saw, so checked again.
    dns.ruleset.store(Arc::new(policy().compile()));
    assert_eq!(dig(&dns, &["www.example.test"]).await.status(), "NOERROR");
    assert_eq!(dig(&dns, &["www.example.test"]).await.status(), "NOERROR");

    // A new policy blocks the cached name itself: blocked at once.
    dns.ruleset.store(Arc::new(policy_and_nxdomain(99, "exact:www.example.test")));
    assert_eq!(dig(&dns, &["www.example.test"]).await.status(), "NXDOMAIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_formerr_and_dead_upstreams() {
    if !dig_available() {
        return;
    }
    let dns = start(false).await;
    // 60 A records do not fit 512 bytes: TC set, dig retries over TCP and gets them all.
    let a = dig(&dns, &["+noedns", "big.example.test"]).await;
    assert!(a.text.contains("Truncated, retrying in TCP mode"), "{}", a.text);
    assert_eq!(a.answers().len(), 60, "{}", a.text);
    let a = dig(&dns, &["+noedns", "+ignore", "big.example.test"]).await;
    assert!(a.text.contains(" tc "), "{}", a.text);

    // Garbage with a readable header: FORMERR, and the server keeps serving.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff", dns.addr).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await.unwrap().unwrap();
    let reply = Message::parse(&buf[..n]).unwrap();
    assert_eq!((reply.header().id, reply.header().rcode()), (0x1234, Rcode::FORMERR));
    assert_eq!(dig(&dns, &["www.example.test"]).await.answers().len(), 1);

    // Every upstream down: SERVFAIL with EDE 22, quickly.
    let dead = start(true).await;
    let started = std::time::Instant::now();
    let a = dig(&dead, &["www.example.test"]).await;
    assert_eq!(a.status(), "SERVFAIL", "{}", a.text);
    assert!(a.text.contains("EDE: 22"), "{}", a.text);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // Policy answers need no upstream.
    assert_eq!(dig(&dead, &["blocked.example.test"]).await.status(), "NXDOMAIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_drops_and_slips_past_the_limit() {
    let (upstream, _) = stub_upstream(HashMap::new()).await;
    let config =
        DnsConfig { rate_limit: 5, rate_limit_slip: 2, rate_limit_exempt: vec![], ..loopback_config(upstream) };
    let (server, _, metrics) = bind_with_policy(&config).await;
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run());

    // 25 queries at once from one client (a policy name: answered without any upstream).
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..25u16 {
        let q = bawaba_wire::dns::build_query(i, "blocked.example.test", Type::A, true, None);
        sock.send_to(&q, addr).await.unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await {
        let m = Message::parse(&buf[..n]).unwrap();
        if m.header().has(bawaba_wire::dns::flags::TC) {
            truncated += 1;
        } else {
            assert_eq!(m.header().rcode(), Rcode::NXDOMAIN);
            full += 1;
        }
    }
    assert_eq!(full, 5, "the burst is one second's worth");
    assert_eq!(truncated, 10, "every second answer over the limit slips");
    let text = metrics.render();
    assert!(text.contains("bawaba_dns_dropped_total{reason=\"rate_limited\"} 10"), "{text}");
}

/// Queries arriving together are read and answered in batches: a burst from eight clients gets
/// every answer, each to the client and with the id of its query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_many_clients_is_answered_query_by_query() {
    let dns = start(false).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for id in 0..50u16 {
        for (c, sock) in clients.iter().enumerate() {
            let name = if (id + c as u16).is_multiple_of(2) { "blocked.example.test" } else { "page.example.test" };
            let q = bawaba_wire::dns::build_query(id, name, Type::A, true, None);
            sock.send_to(&q, dns.addr).await.unwrap();
        }
    }
    let mut buf = [0u8; 1500];
    for (c, sock) in clients.iter().enumerate() {
        let mut ids = Vec::new();
        while let Ok(Ok((n, from))) = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await {
            assert_eq!(from, dns.addr);
            let m = Message::parse(&buf[..n]).unwrap();
            let id = m.header().id;
            let blocked = (id + c as u16).is_multiple_of(2);
            assert_eq!(
                m.header().rcode(),
                if blocked { Rcode::NXDOMAIN } else { Rcode::NOERROR },
                "client {c} id {id}"
            );
            ids.push(id);
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..50).collect::<Vec<_>>(), "client {c}: every query answered once");
    }
    assert!(
        dns.metrics.render().contains("bawaba_dns_queries_total{transport=\"udp\"} 400"),
        "{}",
        dns.metrics.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnssec_bits_pass_through_faithfully() {
    if !dig_available() {
        return;
    }
    let dns = start(false).await;
    // DO from the client reaches the upstream; AD and the RRSIG come back; DO is echoed.
    let a = dig(&dns, &["+dnssec", "www.example.test"]).await;
    let flags = a.text.split(";; flags: ").nth(1).and_then(|f| f.split(';').next()).unwrap_or("").to_string();
    assert!(flags.split_whitespace().any(|f| f == "ad"), "{}", a.text);
    assert!(a.answers().iter().any(|r| r.contains(" RRSIG A 13 3 300 ")), "{}", a.text);
    assert!(a.text.contains("; EDNS: version: 0, flags: do;"), "{}", a.text);
    // Without DO: no RRSIG and no AD, from a separate cache entry (not the DNSSEC answer above).
    let a = dig(&dns, &["www.example.test"]).await;
    assert_eq!(a.answers(), vec!["www.example.test. 300 IN A 198.18.10.1"], "{}", a.text);
    let flags = a.text.split(";; flags: ").nth(1).and_then(|f| f.split(';').next()).unwrap_or("").to_string();
    assert!(!flags.split_whitespace().any(|f| f == "ad"), "{}", a.text);
    // CD from the client comes back set.
    let a = dig(&dns, &["+dnssec", "+cd", "www.example.test"]).await;
    let flags = a.text.split(";; flags: ").nth(1).and_then(|f| f.split(';').next()).unwrap_or("").to_string();
    assert!(flags.split_whitespace().any(|f| f == "cd"), "{}", a.text);
    // A policy answer keeps the client's DO bit in its OPT record.
    let a = dig(&dns, &["+dnssec", "blocked.example.test"]).await;
    assert_eq!(a.status(), "NXDOMAIN");
    assert!(a.text.contains("; EDNS: version: 0, flags: do;"), "{}", a.text);
}

/// Each UDP socket is served by a thread of its own: when the server's future is dropped, the
/// thread stops and, with no forwarding task holding the socket (the query here is answered by
/// policy), closes it, so the port is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_stops_its_udp_thread() {
    let (upstream, _) = stub_upstream(HashMap::new()).await;
    let (server, _, _) = bind_with_policy(&loopback_config(upstream)).await;
    let addr = server.local_addrs()[0];
    let running = tokio::spawn(server.run());
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ask = || async {
        let q = bawaba_wire::dns::build_query(7, "blocked.example.test", Type::A, true, None);
        sock.send_to(&q, addr).await.unwrap();
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await.is_ok()
    };
    assert!(ask().await, "the running server answers");
    assert!(std::net::UdpSocket::bind(addr).is_err(), "the server holds its port");

    running.abort();
    let _ = running.await;
    let deadline = std::time::Instant::now() + 10 * bawaba_dns::server::STOP_CHECK;
    while std::net::UdpSocket::bind(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "the UDP thread still holds {addr}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
