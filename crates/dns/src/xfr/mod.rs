//! The policy in force served as an RPZ zone to other resolvers: AXFR (RFC 5936), IXFR
//! (RFC 1995), NOTIFY (RFC 1996) and authoritative answers for names in the zone.
//!
//! The zone is exactly what [`bawaba_formats::write_rpz`] writes (both come from
//! [`bawaba_formats::rpz_records`]); its SOA serial is the policy version. [`ZoneTransfer`] holds
//! the zone in force in an `ArcSwap` as prepared wire records, and for IXFR a bounded history:
//! for each of the last `history` serials, the condensed difference to the zone in force
//! (RFC 1995 section 6 allows condensing several versions into one difference sequence). A new
//! version composes every stored difference with the newest step, so memory grows with the size
//! of the changes, not with the zone.
//!
//! Who may ask: clients in `allow_transfer` only, for transfers and for every other query for a
//! name in the zone; others get REFUSED. This is BIND as a primary with `allow-transfer` and
//! `allow-query` both set to that list: the zone names blocked hosts, including those of orders
//! that are not public, so it goes only to subscribers. For them, names in the zone are answered
//! authoritatively from the zone data as BIND answers them (AA set; exact match, CNAME, wildcard
//! synthesis per RFC 1034 section 4.3.3, NODATA and NXDOMAIN with the SOA in the authority
//! section per RFC 2308 section 3).
//!
//! Over UDP, AXFR is a FORMERR (as BIND answers "attempted AXFR over UDP"), and an IXFR is
//! answered in one message, or with the current SOA alone when the answer does not fit
//! (RFC 1995 section 2).
//!
//! With a TSIG key (`[dns.rpz.tsig_key]`, [`TsigKey`]), transfers must also be signed with it
//! (unsigned ones are REFUSED); any signed request is verified and its answer signed, every
//! message of a transfer (RFC 8945 section 5.3.1). Layers: `zone` (wire records and the owner
//! index), `tsig`, `notify`, and here the service, the IXFR history and the answers.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bawaba_policy::IpPrefix;
use bawaba_wire::dns::{flags, Builder, Class, Message, Rcode, Section, Type};
use thiserror::Error;

mod notify;
mod tsig;
mod zone;

pub use notify::notify_message;
use notify::notify_one;
pub use tsig::TsigKey;
use tsig::{Checked, Signer};
use zone::soa_serial;
pub use zone::{WireRecord, WireZone};

/// Target size of one transfer message; RFC 5936 section 2.2 lets a server pack as many
/// records as fit into 64 KiB, and smaller messages keep memory and latency low.
const MESSAGE_TARGET: usize = 16 * 1024;

/// Why a zone could not be prepared or a NOTIFY was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XfrError {
    /// A name of the zone does not fit the wire format (RFC 1035 section 2.3.4).
    #[error("name {name:?} does not fit the wire format: {why}")]
    BadName {
        /// The name, as text.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The records do not start with the apex SOA.
    #[error("the zone's first record is not the apex SOA")]
    NoSoa,
    /// A NOTIFY got no acknowledgement after every retry.
    #[error("no NOTIFY acknowledgement from {peer} after {tries} tries")]
    NotifyUnanswered {
        /// The secondary.
        peer: SocketAddr,
        /// How many times it was sent.
        tries: u32,
    },
    /// A TSIG key that cannot be used.
    #[error("TSIG key: {why}")]
    BadKey {
        /// What is wrong.
        why: &'static str,
    },
    /// A socket error while notifying.
    #[error("NOTIFY to {peer}: {message}")]
    NotifyIo {
        /// The secondary.
        peer: SocketAddr,
        /// The error.
        message: String,
    },
}

/// The records one version lacks and adds relative to an older one (an IXFR difference
/// sequence, RFC 1995 section 4).
#[derive(Debug, Clone)]
struct Delta {
    from: WireRecord,
    deleted: Arc<Vec<WireRecord>>,
    added: Arc<Vec<WireRecord>>,
}

#[derive(Debug)]
struct State {
    zone: Arc<WireZone>,
    /// Differences from older serials to `zone`, newest first.
    history: Vec<Delta>,
}

/// The zone-transfer service: the zone in force, its IXFR history, the ACL and the secondaries
/// to notify.
#[derive(Debug)]
pub struct ZoneTransfer {
    state: ArcSwap<State>,
    install: Mutex<()>,
    allow: Vec<IpPrefix>,
    notify: Vec<SocketAddr>,
    history: usize,
    tsig: Option<TsigKey>,
}

/// RFC 1982 section 3.2: `a` is greater than `b` in serial number arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The SOA serial for a policy version: its low 32 bits. RFC 1982 arithmetic keeps increasing
/// versions increasing serials across the wrap as long as one step is below 2^31.
pub fn serial_of_version(version: u64) -> u32 {
    version as u32
}

impl ZoneTransfer {
    /// A service with `zone` in force, answering clients in `allow`, notifying `notify`, keeping
    /// `history` versions for IXFR.
    pub fn new(zone: WireZone, allow: Vec<IpPrefix>, notify: Vec<SocketAddr>, history: usize) -> ZoneTransfer {
        ZoneTransfer {
            state: ArcSwap::from_pointee(State { zone: Arc::new(zone), history: Vec::new() }),
            install: Mutex::new(()),
            allow,
            notify,
            history,
            tsig: None,
        }
    }

    /// Requires transfers to be signed with `key` (TSIG, RFC 8945) and signs the answers to
    /// signed requests; SOA polls and other queries may still come unsigned.
    pub fn with_tsig(mut self, key: TsigKey) -> ZoneTransfer {
        self.tsig = Some(key);
        self
    }

    /// The zone in force.
    pub fn zone(&self) -> Arc<WireZone> {
        Arc::clone(&self.state.load().zone)
    }

    /// Serials an IXFR can start from, newest first.
    pub fn history_serials(&self) -> Vec<u32> {
        self.state.load().history.iter().map(|d| soa_serial(&d.from)).collect()
    }

    /// Puts `zone` in force and records the difference from the previous version for IXFR. A
    /// zone with the serial in force changes nothing (a version's content never changes); one
    /// whose serial is lower (RFC 1982) clears the history: no difference sequence leads to it.
    pub fn install(&self, zone: WireZone) {
        let _guard = self.install.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.state.load_full();
        if zone.serial == current.zone.serial {
            return;
        }
        let zone = Arc::new(zone);
        let mut history = Vec::new();
        if serial_gt(zone.serial, current.zone.serial) && self.history > 0 {
            let (deleted, added) = diff(&current.zone.records[1..], &zone.records[1..]);
            // RFC 1995 section 5: purge a difference whose IXFR (four SOAs and the changes) would
            // be longer than an AXFR (the records and the closing SOA).
            let fits = |d: &Delta| d.deleted.len() + d.added.len() + 3 <= zone.records.len();
            let step = Delta {
                from: current.zone.soa().clone(),
                deleted: Arc::new(deleted.clone()),
                added: Arc::new(added.clone()),
            };
            if fits(&step) {
                history.push(step);
            }
            for old in &current.history {
                let composed = compose(old, &deleted, &added);
                if fits(&composed) {
                    history.push(composed);
                }
            }
            history.truncate(self.history);
        }
        self.state.store(Arc::new(State { zone, history }));
    }

    /// Whether `peer` may transfer and query the zone.
    pub fn allowed(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.allow.iter().any(|p| p.contains(peer))
    }

    /// Answers `query` when its question names the zone or a name in it; `None` otherwise (the
    /// resolver handles it). Over UDP the answer is always one message.
    pub fn answer(&self, query: &Message<'_>, peer: IpAddr, tcp: bool) -> Option<ZoneAnswer> {
        let one = |rcode| Some(ZoneAnswer::Message(Builder::response_to(query, rcode).finish()));
        let q = query.question()?;
        let state = self.state.load_full();
        let zone = &state.zone;
        let mut qname = Vec::with_capacity(64);
        q.name.write_wire_lower(&mut qname);
        if !within(&qname, &zone.origin) {
            return None;
        }
        if (q.qclass != Class::IN && q.qclass != Class::ANY) || !self.allowed(peer) {
            return one(Rcode::REFUSED);
        }
        let transfer = matches!(q.qtype, Type::AXFR | Type::IXFR);
        let signer = match tsig::check(query, self.tsig.as_ref()) {
            Checked::Rejected(answer) => return Some(ZoneAnswer::Message(answer)),
            Checked::Signed(signer) => Some(signer),
            // With a key configured, transfers must be signed (BIND: allow-transfer { key ...; }).
            Checked::Unsigned if transfer && self.tsig.is_some() => return one(Rcode::REFUSED),
            Checked::Unsigned => None,
        };
        let apex = *qname == *zone.origin;
        let answer = match q.qtype {
            Type::AXFR | Type::IXFR if !apex => {
                ZoneAnswer::Message(Builder::response_to(query, Rcode::NOTAUTH).finish())
            }
            // RFC 5936 section 4.2: AXFR is TCP only.
            Type::AXFR if !tcp => ZoneAnswer::Message(Builder::response_to(query, Rcode::FORMERR).finish()),
            Type::AXFR => ZoneAnswer::Transfer(Transfer::axfr(query, zone)),
            Type::IXFR => ixfr(query, &state, tcp),
            qtype => ZoneAnswer::Message(lookup(query, zone, &qname, qtype)),
        };
        Some(match signer {
            Some(signer) => answer.signed(signer),
            None => answer,
        })
    }

    /// Sends a NOTIFY for the zone in force to every configured secondary and waits for their
    /// acknowledgements, retrying each up to five times (RFC 1996 section 3.6).
    pub async fn notify_secondaries(&self) -> Vec<(SocketAddr, Result<(), XfrError>)> {
        let zone = self.zone();
        let mut tasks = tokio::task::JoinSet::new();
        for &peer in &self.notify {
            let zone = Arc::clone(&zone);
            tasks.spawn(async move { (peer, notify_one(peer, &zone, 5, Duration::from_secs(1)).await) });
        }
        let mut out = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Ok(pair) = result {
                out.push(pair);
            }
        }
        out
    }
}

/// True when `name` (wire, lowercase) is `origin` or below it, on a label boundary.
fn within(name: &[u8], origin: &[u8]) -> bool {
    let mut pos = 0;
    while pos < name.len() {
        if name[pos..] == *origin {
            return true;
        }
        pos += 1 + usize::from(name[pos]);
    }
    false
}

/// Records of `old` missing from `new`, and records of `new` missing from `old`.
fn diff(old: &[WireRecord], new: &[WireRecord]) -> (Vec<WireRecord>, Vec<WireRecord>) {
    let old_set: HashSet<&[u8]> = old.iter().map(WireRecord::bytes).collect();
    let new_set: HashSet<&[u8]> = new.iter().map(WireRecord::bytes).collect();
    let deleted = old.iter().filter(|r| !new_set.contains(r.bytes())).cloned().collect();
    let added = new.iter().filter(|r| !old_set.contains(r.bytes())).cloned().collect();
    (deleted, added)
}

/// Composes `old` (from an older serial to the previous version) with the step (deleted, added)
/// from the previous version to the new one: a record added and then deleted (or deleted and
/// then added) cancels out.
fn compose(old: &Delta, deleted: &[WireRecord], added: &[WireRecord]) -> Delta {
    let d2: HashSet<&[u8]> = deleted.iter().map(WireRecord::bytes).collect();
    let a2: HashSet<&[u8]> = added.iter().map(WireRecord::bytes).collect();
    let a1: HashSet<&[u8]> = old.added.iter().map(WireRecord::bytes).collect();
    let d1: HashSet<&[u8]> = old.deleted.iter().map(WireRecord::bytes).collect();
    let del = old
        .deleted
        .iter()
        .filter(|r| !a2.contains(r.bytes()))
        .chain(deleted.iter().filter(|r| !a1.contains(r.bytes())))
        .cloned()
        .collect();
    let add = old
        .added
        .iter()
        .filter(|r| !d2.contains(r.bytes()))
        .chain(added.iter().filter(|r| !d1.contains(r.bytes())))
        .cloned()
        .collect();
    Delta { from: old.from.clone(), deleted: Arc::new(del), added: Arc::new(add) }
}

/// What the zone answers a query with.
#[derive(Debug)]
pub enum ZoneAnswer {
    /// One message.
    Message(Vec<u8>),
    /// A transfer over TCP: its messages, built as the connection takes them.
    Transfer(Transfer),
}

impl ZoneAnswer {
    /// The same answer with a TSIG record on every message (RFC 8945 section 5.3).
    fn signed(self, mut signer: Signer) -> ZoneAnswer {
        match self {
            ZoneAnswer::Message(mut m) => {
                signer.sign(&mut m);
                ZoneAnswer::Message(m)
            }
            ZoneAnswer::Transfer(mut t) => {
                t.signer = Some(signer);
                ZoneAnswer::Transfer(t)
            }
        }
    }

    /// Every message, built now (for tests and small answers).
    pub fn into_messages(self) -> Vec<Vec<u8>> {
        match self {
            ZoneAnswer::Message(m) => vec![m],
            ZoneAnswer::Transfer(t) => t.collect(),
        }
    }
}

/// The IXFR answer (RFC 1995 section 4).
fn ixfr(query: &Message<'_>, state: &State, tcp: bool) -> ZoneAnswer {
    let zone = &state.zone;
    // RFC 1995 section 3: the client's version is the SOA in the authority section.
    let Some(client) = query.authority().find(|r| r.rtype == Type::SOA) else {
        return ZoneAnswer::Message(Builder::response_to(query, Rcode::FORMERR).finish());
    };
    let client_serial = client.rdata.len().checked_sub(20).map_or(0, |at| {
        u32::from_be_bytes([client.rdata[at], client.rdata[at + 1], client.rdata[at + 2], client.rdata[at + 3]])
    });
    let transfer = if client_serial == zone.serial || serial_gt(client_serial, zone.serial) {
        // Up to date (or newer): the current SOA alone.
        Transfer::new(query, vec![Run::One(zone.soa().clone())])
    } else if let Some(delta) = state.history.iter().find(|d| soa_serial(&d.from) == client_serial) {
        Transfer::new(
            query,
            vec![
                Run::One(zone.soa().clone()),
                Run::One(delta.from.clone()),
                Run::Records(Arc::clone(&delta.deleted)),
                Run::One(zone.soa().clone()),
                Run::Records(Arc::clone(&delta.added)),
                Run::One(zone.soa().clone()),
            ],
        )
    } else {
        // Not in the history: the whole zone, AXFR style (RFC 1995 section 4).
        Transfer::axfr(query, zone)
    };
    if tcp {
        return ZoneAnswer::Transfer(transfer);
    }
    // RFC 1995 section 2: over UDP, the whole answer in one message or the current SOA alone.
    let limit = query.edns().map_or(512, |e| usize::from(e.udp_size).clamp(512, 4096));
    let mut whole = transfer.with_target(limit);
    match (whole.next(), whole.next()) {
        (Some(one), None) if one.len() <= limit => ZoneAnswer::Message(one),
        _ => {
            let soa = Transfer::new(query, vec![Run::One(zone.soa().clone())]).next();
            ZoneAnswer::Message(soa.unwrap_or_else(|| Builder::response_to(query, Rcode::SERVFAIL).finish()))
        }
    }
}

/// An authoritative answer from the zone data (RFC 1034 section 4.3.2).
fn lookup(query: &Message<'_>, zone: &WireZone, qname: &[u8], qtype: Type) -> Vec<u8> {
    let mut synthesized = false;
    let mut found = zone.owners.get(qname);
    if found.is_none() && !zone.names.contains(qname) {
        // RFC 1034 section 4.3.3: the closest encloser's wildcard, if any.
        let mut encloser = qname;
        while let Some(&len) = encloser.first() {
            if len == 0 {
                break;
            }
            encloser = &encloser[1 + usize::from(len)..];
            if zone.names.contains(encloser) {
                let mut wildcard = vec![1, b'*'];
                wildcard.extend_from_slice(encloser);
                found = zone.owners.get(wildcard.as_slice());
                synthesized = true;
                break;
            }
        }
    }
    let exists = found.is_some() || zone.names.contains(qname);
    let records: Vec<&WireRecord> = found.map(|ix| ix.iter().map(|&i| &zone.records[i]).collect()).unwrap_or_default();
    let mut matching: Vec<&WireRecord> =
        records.iter().copied().filter(|r| qtype == Type::ANY || r.rtype() == qtype).collect();
    if matching.is_empty() {
        // RFC 1034 section 4.3.2 step 3.a: a CNAME answers every other type.
        matching = records.iter().copied().filter(|r| r.rtype() == Type::CNAME).collect();
    }
    let rcode = if exists { Rcode::NOERROR } else { Rcode::NXDOMAIN };
    let mut b = Builder::response_to(query, rcode);
    b.set_flags(flags::AA);
    let owner = synthesized.then_some(qname);
    for r in &matching {
        r.push_to(&mut b, Section::Answer, owner);
    }
    if matching.is_empty() {
        // RFC 2308 section 3: the SOA in the authority section of negative answers.
        zone.soa().push_to(&mut b, Section::Authority, None);
    }
    if let Some(edns) = query.edns() {
        b.push_opt(1232, edns.dnssec_ok, &[]);
    }
    b.finish()
}

/// A run of records in a transfer.
#[derive(Debug, Clone)]
enum Run {
    One(WireRecord),
    /// Every record of a zone but its SOA.
    ZoneBody(Arc<WireZone>),
    Records(Arc<Vec<WireRecord>>),
}

impl Run {
    fn get(&self, i: usize) -> Option<&WireRecord> {
        match self {
            Run::One(r) => (i == 0).then_some(r),
            Run::ZoneBody(z) => z.records.get(i + 1),
            Run::Records(v) => v.get(i),
        }
    }
}

/// The messages of a transfer, built one at a time as the connection takes them, each up to
/// about 16 KiB (RFC 5936 section 2.2: as many records per message as fit).
#[derive(Debug)]
pub struct Transfer {
    query: Vec<u8>,
    runs: Vec<Run>,
    run: usize,
    pos: usize,
    target: usize,
    done: bool,
    signer: Option<Signer>,
}

impl Transfer {
    fn new(query: &Message<'_>, runs: Vec<Run>) -> Transfer {
        Transfer {
            query: query.bytes().to_vec(),
            runs,
            run: 0,
            pos: 0,
            target: MESSAGE_TARGET,
            done: false,
            signer: None,
        }
    }

    /// SOA, every other record, SOA (RFC 5936 section 2.2).
    fn axfr(query: &Message<'_>, zone: &Arc<WireZone>) -> Transfer {
        let soa = zone.soa().clone();
        Transfer::new(query, vec![Run::One(soa.clone()), Run::ZoneBody(Arc::clone(zone)), Run::One(soa)])
    }

    fn with_target(mut self, target: usize) -> Transfer {
        self.target = target;
        self
    }
}

impl Iterator for Transfer {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let query = Message::parse(&self.query).ok()?;
        let mut b = Builder::response_to(&query, Rcode::NOERROR);
        b.set_flags(flags::AA);
        let mut size = query.bytes().len();
        let mut count = 0;
        while let Some(run) = self.runs.get(self.run) {
            let Some(record) = run.get(self.pos) else {
                self.run += 1;
                self.pos = 0;
                continue;
            };
            if count > 0 && size + record.bytes().len() > self.target {
                return Some(self.finish(b));
            }
            record.push_to(&mut b, Section::Answer, None);
            size += record.bytes().len();
            count += 1;
            self.pos += 1;
        }
        self.done = true;
        Some(self.finish(b))
    }
}

impl Transfer {
    /// The message, signed when the request was (every message: RFC 8945 section 5.3.1).
    fn finish(&mut self, b: Builder) -> Vec<u8> {
        let mut message = b.finish();
        if let Some(signer) = &mut self.signer {
            signer.sign(&mut message);
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::zone::name_wire;
    use super::*;
    use bawaba_formats::{rpz_records, ExportOptions};
    use bawaba_policy::DomainName;
    use bawaba_policy::{Action, Category, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId};
    use bawaba_wire::dns::build_query;
    use bawaba_wire::dns::Opcode;

    fn snapshot(version: u64, rules: &[(&str, Action)]) -> PolicySnapshot {
        let order = Order {
            id: OrderId(1),
            authority: "Court".into(),
            reference: "CFI-1".into(),
            issued_at: 0,
            effective_from: 0,
            expires_at: i64::MAX / 2,
            category: Category::CourtOrder,
            summary: "s".into(),
            publishable: true,
            appeal_contact: "a@example.test".into(),
            status: OrderStatus::Approved,
            proposed_by: "alice".into(),
            approved_by: Some("bob".into()),
            revoked: None,
        };
        PolicySnapshot {
            version,
            taken_at: 0,
            orders: vec![order],
            rules: rules
                .iter()
                .enumerate()
                .map(|(i, (s, a))| Rule {
                    id: RuleId(i as i64 + 1),
                    order: OrderId(1),
                    selector: s.parse().unwrap(),
                    action: *a,
                    forced: None,
                })
                .collect(),
            allow: vec![],
        }
    }

    fn zone(version: u64, rules: &[(&str, Action)]) -> WireZone {
        let origin = DomainName::parse("rpz.gateway.example").unwrap();
        let options = ExportOptions::new(origin.clone(), serial_of_version(version));
        let records = rpz_records(&snapshot(version, rules), &options);
        WireZone::new(&origin, &records.records).unwrap()
    }

    fn service(zone: WireZone) -> ZoneTransfer {
        ZoneTransfer::new(zone, vec![IpPrefix::parse("127.0.0.0/8").unwrap()], vec![], 10)
    }

    fn ixfr_query(serial: u32) -> Vec<u8> {
        let mut q = build_query(7, "rpz.gateway.example", Type::IXFR, false, None);
        q[9] = 1; // NSCOUNT
        q.extend_from_slice(&name_wire("rpz.gateway.example").unwrap());
        q.extend_from_slice(&[0, 6, 0, 1, 0, 0, 0, 60, 0, 22, 0, 0]);
        for n in [serial, 0, 0, 0, 0] {
            q.extend_from_slice(&n.to_be_bytes());
        }
        q
    }

    /// (type, owner text, rdata) of every answer record of every message.
    fn answers(messages: &[Vec<u8>]) -> Vec<(Type, String, Vec<u8>)> {
        messages
            .iter()
            .flat_map(|m| {
                let msg = Message::parse(m).unwrap();
                assert_eq!(msg.header().rcode(), Rcode::NOERROR);
                assert!(msg.header().has(flags::AA));
                msg.answers().map(|r| (r.rtype, format!("{:?}", r.name), r.rdata.to_vec())).collect::<Vec<_>>()
            })
            .collect()
    }

    fn refs(v: &[(String, Action)]) -> Vec<(&str, Action)> {
        v.iter().map(|(s, a)| (s.as_str(), *a)).collect()
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn axfr_starts_and_ends_with_the_soa_and_splits_large_zones() {
        let rules: Vec<(String, Action)> =
            (0..2000).map(|i| (format!("host{i}.example.test"), Action::Nxdomain)).collect();
        let rules: Vec<(&str, Action)> = rules.iter().map(|(s, a)| (s.as_str(), *a)).collect();
        let svc = service(zone(3, &rules));
        let q = build_query(1, "rpz.gateway.example", Type::AXFR, false, None);
        let messages = svc.answer(&Message::parse(&q).unwrap(), LOCAL, true).unwrap().into_messages();
        assert!(messages.len() > 3, "{} messages", messages.len());
        assert!(messages.iter().all(|m| m.len() <= MESSAGE_TARGET + 512));
        let all = answers(&messages);
        // SOA, NS, 2 records per subtree rule, SOA.
        assert_eq!(all.len(), 1 + 1 + 4000 + 1);
        assert_eq!(all[0].0, Type::SOA);
        assert_eq!(all[0], all[all.len() - 1]);
        assert_eq!(all[1].0, Type::NS);
        assert_eq!(all[2].1, "host0.example.test.rpz.gateway.example");
        assert_eq!(all[2].2, vec![0], "CNAME . (NXDOMAIN)");
        assert_eq!(soa_serial(&svc.zone().records[0]), 3);
        // Over UDP: FORMERR.
        let reply = svc.answer(&Message::parse(&q).unwrap(), LOCAL, false).unwrap().into_messages();
        assert_eq!(Message::parse(&reply[0]).unwrap().header().rcode(), Rcode::FORMERR);
    }

    #[test]
    fn ixfr_sends_the_condensed_difference() {
        let keep: Vec<String> = (0..5).map(|i| format!("exact:keep{i}.test")).collect();
        let version = |changing: &[(&'static str, Action)]| -> Vec<(String, Action)> {
            changing
                .iter()
                .map(|(s, a)| (s.to_string(), *a))
                .chain(keep.iter().map(|k| (k.clone(), Action::Drop)))
                .collect()
        };
        let v1 = version(&[("a.test", Action::Nxdomain), ("exact:b.test", Action::Drop)]);
        let v2 = version(&[("a.test", Action::Nxdomain), ("exact:b.test", Action::Nodata)]);
        let v3 = version(&[("exact:b.test", Action::Nodata), ("exact:c.test", Action::Nxdomain)]);
        let (v1, v2, v3) = (refs(&v1), refs(&v2), refs(&v3));
        let svc = service(zone(1, &v1));
        svc.install(zone(2, &v2));
        svc.install(zone(3, &v3));
        assert_eq!(svc.history_serials(), vec![2, 1]);
        let ask = |serial: u32, tcp: bool| {
            let q = ixfr_query(serial);
            svc.answer(&Message::parse(&q).unwrap(), LOCAL, tcp).unwrap().into_messages()
        };
        // From 1 to 3: delete a.test, *.a.test and b.test's drop, add b.test's nodata and c.test.
        let got = answers(&ask(1, true));
        let kinds: Vec<(Type, &str)> = got.iter().map(|(t, o, _)| (*t, o.as_str())).collect();
        let o = |s: &'static str| s;
        assert_eq!(
            kinds,
            vec![
                (Type::SOA, o("rpz.gateway.example")),
                (Type::SOA, o("rpz.gateway.example")),
                (Type::CNAME, o("b.test.rpz.gateway.example")),
                (Type::CNAME, o("a.test.rpz.gateway.example")),
                (Type::CNAME, o("*.a.test.rpz.gateway.example")),
                (Type::SOA, o("rpz.gateway.example")),
                (Type::CNAME, o("b.test.rpz.gateway.example")),
                (Type::CNAME, o("c.test.rpz.gateway.example")),
                (Type::SOA, o("rpz.gateway.example")),
            ]
        );
        let serials: Vec<u32> = got
            .iter()
            .filter(|r| r.0 == Type::SOA)
            .map(|r| u32::from_be_bytes(r.2[r.2.len() - 20..r.2.len() - 16].try_into().unwrap()))
            .collect();
        assert_eq!(serials, vec![3, 1, 3, 3]);
        // b.test's drop (rpz-drop.) goes, its nodata (*.) comes.
        assert_eq!(got[2].2, name_wire("rpz-drop.").unwrap());
        assert_eq!(got[6].2, name_wire("*.").unwrap());
        // From 2: only the last step.
        assert_eq!(answers(&ask(2, true)).len(), 1 + 1 + 2 + 1 + 1 + 1);
        // Current serial: one SOA. Unknown serial: the whole zone, AXFR style.
        assert_eq!(answers(&ask(3, true)).len(), 1);
        let all = answers(&ask(0, true));
        assert_eq!((all.len(), all[0].0, all[all.len() - 1].0), (1 + 1 + 2 + 5 + 1, Type::SOA, Type::SOA));
        // Over UDP without EDNS the 9 records do not fit 512 octets: the SOA alone
        // (RFC 1995 section 2); a client that is up to date gets its one SOA.
        assert_eq!(ask(1, false).len(), 1);
        assert_eq!(answers(&ask(1, false)).len(), 1);
        assert_eq!(answers(&ask(3, false)).len(), 1);
    }

    #[test]
    fn ixfr_over_udp_that_does_not_fit_is_the_soa_alone() {
        let rules: Vec<(String, Action)> =
            (0..100).map(|i| (format!("host{i}.example.test"), Action::Nxdomain)).collect();
        let rules: Vec<(&str, Action)> = rules.iter().map(|(s, a)| (s.as_str(), *a)).collect();
        let svc = service(zone(1, &[]));
        svc.install(zone(2, &rules));
        let q = ixfr_query(1);
        let reply = svc.answer(&Message::parse(&q).unwrap(), LOCAL, false).unwrap().into_messages();
        assert_eq!(reply.len(), 1);
        assert_eq!(answers(&reply).iter().map(|r| r.0).collect::<Vec<_>>(), vec![Type::SOA]);
    }

    #[test]
    fn acl_refuses_others_and_names_outside_are_not_ours() {
        let svc = service(zone(1, &[("a.test", Action::Nxdomain)]));
        let q = build_query(1, "rpz.gateway.example", Type::AXFR, false, None);
        let stranger: IpAddr = "198.18.0.9".parse().unwrap();
        let reply = svc.answer(&Message::parse(&q).unwrap(), stranger, true).unwrap().into_messages();
        assert_eq!(Message::parse(&reply[0]).unwrap().header().rcode(), Rcode::REFUSED);
        let q = build_query(1, "x.a.test.rpz.gateway.example", Type::A, false, None);
        let reply = svc.answer(&Message::parse(&q).unwrap(), stranger, false).unwrap().into_messages();
        assert_eq!(Message::parse(&reply[0]).unwrap().header().rcode(), Rcode::REFUSED);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(svc.allowed(mapped));
        let q = build_query(1, "www.example.test", Type::A, false, None);
        assert!(svc.answer(&Message::parse(&q).unwrap(), LOCAL, false).is_none());
        let q = build_query(1, "notrpz.gateway.example", Type::SOA, false, None);
        assert!(svc.answer(&Message::parse(&q).unwrap(), LOCAL, false).is_none());
    }

    #[test]
    fn authoritative_answers_from_the_zone() {
        let svc = service(zone(5, &[("a.test", Action::Nxdomain), ("exact:b.test", Action::Drop)]));
        let ask = |name: &str, qtype: Type| {
            let q = build_query(1, name, qtype, false, None);
            let reply = svc.answer(&Message::parse(&q).unwrap(), LOCAL, false).unwrap().into_messages();
            let bytes = reply[0].clone();
            let m = Message::parse(&bytes).unwrap();
            assert!(m.header().has(flags::AA));
            let types: Vec<Type> = m.answers().map(|r| r.rtype).collect();
            let auth: Vec<Type> = m.authority().map(|r| r.rtype).collect();
            (m.header().rcode(), types, auth)
        };
        assert_eq!(ask("rpz.gateway.example", Type::SOA), (Rcode::NOERROR, vec![Type::SOA], vec![]));
        assert_eq!(ask("b.test.rpz.gateway.example", Type::A), (Rcode::NOERROR, vec![Type::CNAME], vec![]));
        // Wildcard synthesis below a.test.
        assert_eq!(ask("x.y.a.test.rpz.gateway.example", Type::A), (Rcode::NOERROR, vec![Type::CNAME], vec![]));
        // Empty non-terminal: NODATA. Unknown: NXDOMAIN. Both with the SOA.
        assert_eq!(ask("test.rpz.gateway.example", Type::A), (Rcode::NOERROR, vec![], vec![Type::SOA]));
        assert_eq!(ask("nope.rpz.gateway.example", Type::A), (Rcode::NXDOMAIN, vec![], vec![Type::SOA]));
        assert_eq!(ask("rpz.gateway.example", Type::A), (Rcode::NOERROR, vec![], vec![Type::SOA]));
    }

    #[test]
    fn notify_message_parses() {
        let z = zone(9, &[]);
        let bytes = notify_message(0x1234, &z);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.header().opcode(), Opcode::NOTIFY);
        assert!(m.header().has(flags::AA) && !m.header().is_response());
        assert_eq!(m.question().unwrap().qtype, Type::SOA);
        assert_eq!(m.answers().next().unwrap().rtype, Type::SOA);
    }

    #[test]
    fn serial_arithmetic() {
        assert!(serial_gt(2, 1));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(1, 1));
        assert!(!serial_gt(1, 2));
    }
}
