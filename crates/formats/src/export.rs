//! Writing a [`PolicySnapshot`] as an RPZ zone that BIND and Unbound load as a response policy
//! zone (draft-vixie-dnsop-dns-rpz-00).
//!
//! [`write_rpz`] and [`rpz_records`] walk the snapshot once, in the same code: the first writes
//! comments and records as text, the second keeps only the records (for AXFR/IXFR in
//! `bawaba-dns`), so the zone a secondary transfers is record for record the file a person reads.
//!
//! Layout of the file: a comment header, `$ORIGIN`, `$TTL`, the apex SOA (with the caller's
//! serial) and NS, then the allowlist as `rpz-passthru.` records, then each order's rules under a
//! comment block naming the order, each rule under a comment naming its order reference. Lawyers
//! read these files: every record can be traced to the legal instrument that authorises it.
//!
//! | selector                 | owner names                  |
//! |--------------------------|------------------------------|
//! | `Exact(name)`            | `name`                       |
//! | `Subtree(name)`          | `name` and `*.name`          |
//! | `Subdomains(name)`       | `*.name`                     |
//! | `Prefix(p)`              | `<len>.<reversed p>.rpz-ip`  |
//!
//! | action      | record                                                                  |
//! |-------------|-------------------------------------------------------------------------|
//! | `nxdomain`  | `CNAME .`                                                               |
//! | `nodata`    | `CNAME *.`                                                              |
//! | `drop`      | `CNAME rpz-drop.`                                                       |
//! | `reset`     | `CNAME .` (DNS has no reset; the packet path resets), with a comment    |
//! | `block-page`| `CNAME <block page>.` or `A`/`AAAA` local data, else `CNAME .`          |
//!
//! # Precedence: how the allowlist keeps winning
//!
//! bawaba's rule is that an allow entry beats every block on the names it covers. RPZ has no
//! allow/deny priority; within one zone a server picks the *most specific* QNAME trigger (an exact
//! name beats any wildcard, a longer wildcard beats a shorter one) and, for response-IP triggers,
//! the *longest prefix* (draft-vixie-dnsop-dns-rpz-00, "Precedence Rules"; BIND ARM; verified
//! against Unbound 1.17 by `tests/unbound.rs`). The two agree whenever the allow entry is at
//! least as specific as the block, which is what `check_allowlist` enforces when rules are added
//! (a block may cover an allow entry, never sit inside one). To keep them agreeing for any
//! snapshot, the exporter:
//! - writes passthru records first and never writes a block on an owner name the allowlist
//!   already holds (a zone may hold one policy per owner; Unbound silently keeps the first);
//! - leaves out, with a warning, any rule that lies entirely inside an allow entry (RPZ would let
//!   the more specific block win).
//!
//! Remaining difference: RPZ checks QNAME triggers before response-IP triggers, so a name
//! passthru also exempts the addresses that name resolves to from rpz-ip blocks, and a name block
//! applies even when the name resolves into an allowlisted prefix. bawaba's DNS path agrees; the
//! packet path judges addresses on their own.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_policy::name::MAX_NAME_LEN;
use bawaba_policy::{Action, AllowEntry, AllowId, DomainName, Order, OrderId, PolicySnapshot, Rule, RuleId, Selector};
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::rpz::encode_rpz_ip;

/// Where block-page rules send the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockPageTarget {
    /// `CNAME` to this host name (resolvable by the resolver, e.g. `blocked.gateway.example`).
    Name(DomainName),
    /// Local data: `A` and `AAAA` records with these addresses.
    Addresses(Vec<IpAddr>),
}

/// How to write the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The policy zone's name (the `rpz:` `name:` in unbound.conf, the zone in named.conf).
    pub origin: DomainName,
    /// The SOA serial; secondaries transfer the zone when it grows (RFC 1982 arithmetic).
    pub serial: u32,
    /// The block page for [`Action::BlockPage`] rules; without one they answer NXDOMAIN.
    pub block_page: Option<BlockPageTarget>,
    /// TTL of the policy records (`$TTL`), in seconds. Default 60: policy changes apply fast.
    pub ttl: u32,
}

impl ExportOptions {
    /// Options with no block page and a 60-second TTL.
    pub fn new(origin: DomainName, serial: u32) -> Self {
        ExportOptions { origin, serial, block_page: None, ttl: 60 }
    }

    /// Sets the block page.
    pub fn with_block_page(mut self, target: BlockPageTarget) -> Self {
        self.block_page = Some(target);
        self
    }

    /// Sets the record TTL.
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A rule or allow entry, as export warnings name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A rule.
    Rule(RuleId),
    /// An allowlist entry.
    Allow(AllowId),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Rule(id) => write!(f, "rule {id}"),
            Source::Allow(id) => write!(f, "allow entry {id}"),
        }
    }
}

/// Something the zone does not carry exactly as the snapshot says; also written into the zone as
/// a comment where it happens.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExportWarning {
    /// A rule entirely inside an allow entry: left out, because bawaba never blocks allowlisted
    /// names while RPZ would let the more specific block win.
    #[error("{rule} ({selector}) lies inside allowlisted {allow} ({by}); not exported: the allowlist wins")]
    InsideAllowlisted {
        /// The rule.
        rule: Source,
        /// Its selector.
        selector: Selector,
        /// The allow entry's selector.
        allow: Selector,
        /// The allow entry.
        by: Source,
    },
    /// An owner name that an earlier allow entry or rule already holds: a zone carries one policy
    /// per owner name, so this one's record for that name is left out.
    #[error("{entry} ({selector}): owner {owner} already holds the policy of {by}; that one applies")]
    OwnerTaken {
        /// The rule or allow entry left out (for this owner).
        entry: Source,
        /// Its selector.
        selector: Selector,
        /// The owner name, relative to the zone.
        owner: String,
        /// Who holds it.
        by: Source,
    },
    /// A rule whose order is not in the snapshot: no legal ground to cite, not exported.
    #[error("{rule} ({selector}) names order {order}, which is not in the snapshot; not exported")]
    MissingOrder {
        /// The rule.
        rule: Source,
        /// Its selector.
        selector: Selector,
        /// The order id it names.
        order: OrderId,
    },
    /// The owner name would exceed 253 octets once the zone name is appended.
    #[error("{entry} ({selector}): owner name would be {len} octets, longer than 253; not exported")]
    OwnerTooLong {
        /// The rule or allow entry.
        entry: Source,
        /// Its selector.
        selector: Selector,
        /// The owner length.
        len: usize,
    },
    /// A block-page rule on the block-page host itself: a CNAME from a name to itself is RPZ's
    /// old spelling of passthru, so the zone answers NXDOMAIN for it instead.
    #[error("{entry} ({selector}) blocks the block-page host {owner} itself; exported as NXDOMAIN")]
    BlockPageHost {
        /// The rule.
        entry: Source,
        /// Its selector.
        selector: Selector,
        /// The owner name (the block-page host).
        owner: String,
    },
    /// The name ends in an RPZ trigger label (`rpz-ip`, ...), so as an owner it would be read as
    /// a different trigger.
    #[error("{entry} ({selector}): the last label is the RPZ keyword {label}; not exported")]
    ReservedLabel {
        /// The rule or allow entry.
        entry: Source,
        /// Its selector.
        selector: Selector,
        /// The label.
        label: &'static str,
    },
}

/// What [`write_rpz`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Rules with at least one record in the zone.
    pub rules: usize,
    /// Allow entries with at least one record in the zone.
    pub allow: usize,
    /// Policy records written (not counting SOA and NS).
    pub records: usize,
    /// Everything not carried exactly; each also appears as a comment in the zone.
    pub warnings: Vec<ExportWarning>,
}

/// Labels that make an owner name a non-QNAME trigger.
const TRIGGER_LABELS: &[&str] = &["rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip"];

/// Writes `snapshot` as an RPZ zone; see the module documentation for the layout and semantics.
///
/// ```
/// use bawaba_formats::{write_rpz, ExportOptions};
/// use bawaba_policy::{DomainName, PolicySnapshot};
/// let mut zone = Vec::new();
/// let options = ExportOptions::new(DomainName::parse("rpz.gateway.example").unwrap(), 7);
/// let stats = write_rpz(&PolicySnapshot::default(), &options, &mut zone).unwrap();
/// assert_eq!(stats.records, 0);
/// assert!(String::from_utf8(zone).unwrap().contains("$ORIGIN rpz.gateway.example."));
/// ```
pub fn write_rpz(snapshot: &PolicySnapshot, options: &ExportOptions, out: impl Write) -> io::Result<ExportStats> {
    let mut sink = TextSink(BufWriter::new(out));
    let stats = walk(snapshot, options, &mut sink)?;
    sink.0.flush()?;
    Ok(stats)
}

/// The records of the zone [`write_rpz`] writes, in the same order and with the same owners,
/// types and data, without the comments: what a zone-transfer server sends (RFC 5936).
///
/// The first record is the apex SOA (serial from `options`), the second the apex NS.
///
/// ```
/// use bawaba_formats::{rpz_records, ExportOptions, RecordData};
/// use bawaba_policy::{DomainName, PolicySnapshot};
/// let options = ExportOptions::new(DomainName::parse("rpz.gateway.example").unwrap(), 7);
/// let zone = rpz_records(&PolicySnapshot::default(), &options);
/// assert!(matches!(&zone.records[0].data, RecordData::Soa(soa) if soa.serial == 7));
/// assert_eq!(zone.records.len(), 2);
/// ```
pub fn rpz_records(snapshot: &PolicySnapshot, options: &ExportOptions) -> ZoneRecords {
    let mut sink = RecordSink(Vec::new());
    // The record sink never fails: it only pushes to a Vec.
    let stats = walk(snapshot, options, &mut sink).unwrap_or_default();
    ZoneRecords { records: sink.0, stats }
}

/// Walks the snapshot in zone order, handing comment lines and records to `w`.
fn walk(snapshot: &PolicySnapshot, options: &ExportOptions, w: &mut impl Sink) -> io::Result<ExportStats> {
    let mut stats = ExportStats::default();
    let mut owners: HashMap<String, Source> = HashMap::new();
    let origin = options.origin.as_str();

    write_header(w, snapshot, options)?;

    if !snapshot.allow.is_empty() {
        writeln!(w, "\n; ---- allowlist: never blocked (rpz-passthru) ----")?;
    }
    for allow in &snapshot.allow {
        let source = Source::Allow(allow.id);
        writeln!(w, "\n; allow entry {}: {} ({})", allow.id, allow.selector, comment(&allow.reason))?;
        let written = write_policy(w, &mut stats, &mut owners, source, &allow.selector, Policy::Passthru, options)?;
        stats.allow += usize::from(written > 0);
    }

    let orders: HashMap<OrderId, &Order> = snapshot.orders.iter().map(|o| (o.id, o)).collect();
    let mut rules: Vec<&Rule> = snapshot.rules.iter().collect();
    let position: HashMap<OrderId, usize> = snapshot.orders.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    rules.sort_by_key(|r| (position.get(&r.order).copied().unwrap_or(usize::MAX), r.order, r.id));

    let mut current: Option<OrderId> = None;
    for rule in rules {
        let source = Source::Rule(rule.id);
        let Some(order) = orders.get(&rule.order) else {
            let warning =
                ExportWarning::MissingOrder { rule: source, selector: rule.selector.clone(), order: rule.order };
            writeln!(w, "\n; NOT EXPORTED: {warning}")?;
            stats.warnings.push(warning);
            continue;
        };
        if current != Some(order.id) {
            current = Some(order.id);
            write_order(w, order)?;
        }
        writeln!(
            w,
            "; order {} ({}), rule {}: {}, {}",
            comment(&order.reference),
            comment(&order.authority),
            rule.id,
            rule.selector,
            rule.action
        )?;
        if let Some(reason) = &rule.forced {
            writeln!(w, ";   guard overridden: {}", comment(reason))?;
        }
        if let Some(allow) = inside_allowlist(&rule.selector, &snapshot.allow) {
            let warning = ExportWarning::InsideAllowlisted {
                rule: source,
                selector: rule.selector.clone(),
                allow: allow.selector.clone(),
                by: Source::Allow(allow.id),
            };
            writeln!(w, ";   NOT EXPORTED: {warning}")?;
            stats.warnings.push(warning);
            continue;
        }
        let written =
            write_policy(w, &mut stats, &mut owners, source, &rule.selector, Policy::Block(rule.action), options)?;
        stats.rules += usize::from(written > 0);
    }
    writeln!(w, "\n; end of zone {origin}. ({} policy records)", stats.records)?;
    Ok(stats)
}

#[derive(Debug, Clone, Copy)]
enum Policy {
    Passthru,
    Block(Action),
}

fn write_header(w: &mut impl Sink, snapshot: &PolicySnapshot, options: &ExportOptions) -> io::Result<()> {
    let origin = options.origin.as_str();
    writeln!(w, "; Response Policy Zone {origin}, exported by bawaba. Do not edit: regenerate it from the policy.")?;
    writeln!(w, "; Format: DNS master file (RFC 1035 section 5) with RPZ semantics (draft-vixie-dnsop-dns-rpz-00);")?;
    writeln!(w, "; load it as an `rpz:` zone in Unbound or a `response-policy` zone in BIND.")?;
    writeln!(
        w,
        "; Policy version {}, snapshot taken {}; {} orders, {} rules, {} allowlist entries; serial {}.",
        snapshot.version,
        timestamp(snapshot.taken_at),
        snapshot.orders.len(),
        snapshot.rules.len(),
        snapshot.allow.len(),
        options.serial
    )?;
    writeln!(w, "; Allowlist entries come first as rpz-passthru records; the most specific trigger wins.")?;
    writeln!(w, "$ORIGIN {origin}.")?;
    writeln!(w, "$TTL {}", options.ttl)?;
    // RFC 1035 section 3.3.13: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM.
    let soa = Soa {
        mname: "localhost.".into(),
        rname: "hostmaster.localhost.".into(),
        serial: options.serial,
        refresh: 3600,
        retry: 600,
        expire: 604_800,
        minimum: options.ttl,
    };
    w.record(ZoneRecord { owner: String::new(), ttl: options.ttl, data: RecordData::Soa(soa) })?;
    w.record(ZoneRecord { owner: String::new(), ttl: options.ttl, data: RecordData::Ns("localhost.".into()) })
}

fn write_order(w: &mut impl Sink, order: &Order) -> io::Result<()> {
    writeln!(w, "\n; ---- order {} ----", comment(&order.reference))?;
    writeln!(w, "; authority: {}", comment(&order.authority))?;
    writeln!(
        w,
        "; category: {}; in force {} until {}",
        order.category,
        timestamp(order.effective_from),
        timestamp(order.expires_at)
    )?;
    if let Some(approver) = &order.approved_by {
        writeln!(w, "; proposed by {}, approved by {}", comment(&order.proposed_by), comment(approver))?;
    }
    // The summary is public only when the order is; zones travel to resolvers outside our control.
    if order.publishable {
        writeln!(w, "; summary: {}", comment(&order.summary))?;
        writeln!(w, "; appeals: {}", comment(&order.appeal_contact))?;
    } else {
        writeln!(w, "; summary withheld: the order is not publishable")?;
    }
    Ok(())
}

/// Writes the records of one rule or allow entry; returns how many.
fn write_policy(
    w: &mut impl Sink,
    stats: &mut ExportStats,
    owners: &mut HashMap<String, Source>,
    source: Source,
    selector: &Selector,
    policy: Policy,
    options: &ExportOptions,
) -> io::Result<usize> {
    let origin_len = options.origin.as_str().len();
    let names = match owner_names(selector) {
        Ok(names) => names,
        Err(label) => {
            let warning = ExportWarning::ReservedLabel { entry: source, selector: selector.clone(), label };
            writeln!(w, ";   NOT EXPORTED: {warning}")?;
            stats.warnings.push(warning);
            return Ok(0);
        }
    };
    if let Some(len) = names.iter().map(|n| n.len() + 1 + origin_len).find(|&len| len > MAX_NAME_LEN) {
        let warning = ExportWarning::OwnerTooLong { entry: source, selector: selector.clone(), len };
        writeln!(w, ";   NOT EXPORTED: {warning}")?;
        stats.warnings.push(warning);
        return Ok(0);
    }
    let rdata = policy_rdata(policy, options.block_page.as_ref());
    if let Policy::Block(Action::Reset) = policy {
        writeln!(w, ";   reset: DNS has no reset, so resolvers answer NXDOMAIN; the packet path resets TCP")?;
    }
    if let (Policy::Block(Action::BlockPage), None) = (policy, &options.block_page) {
        writeln!(w, ";   block page: no block-page target configured, so resolvers answer NXDOMAIN")?;
    }
    let mut written = 0;
    for owner in names {
        if let Some(&by) = owners.get(&owner) {
            let warning = ExportWarning::OwnerTaken { entry: source, selector: selector.clone(), owner, by };
            writeln!(w, ";   skipped: {warning}")?;
            stats.warnings.push(warning);
            continue;
        }
        let self_loop = matches!(
            (policy, &options.block_page),
            (Policy::Block(Action::BlockPage), Some(BlockPageTarget::Name(host))) if host.as_str() == owner
        );
        if self_loop {
            let warning =
                ExportWarning::BlockPageHost { entry: source, selector: selector.clone(), owner: owner.clone() };
            writeln!(w, ";   {warning}")?;
            stats.warnings.push(warning);
            w.record(ZoneRecord { owner: owner.clone(), ttl: options.ttl, data: RecordData::Cname(".".into()) })?;
            written += 1;
        } else {
            for data in &rdata {
                w.record(ZoneRecord { owner: owner.clone(), ttl: options.ttl, data: data.clone() })?;
                written += 1;
            }
        }
        owners.insert(owner, source);
    }
    stats.records += written;
    Ok(written)
}

/// The owner names (relative to the zone) that spell a selector, or the reserved label that makes
/// it unexportable.
fn owner_names(selector: &Selector) -> Result<Vec<String>, &'static str> {
    if let Some(name) = selector.domain() {
        let last = name.labels().next_back().unwrap_or("");
        if let Some(label) = TRIGGER_LABELS.iter().find(|l| **l == last) {
            return Err(label);
        }
    }
    Ok(match selector {
        Selector::Exact(n) => vec![n.to_string()],
        Selector::Subtree(n) => vec![n.to_string(), format!("*.{n}")],
        Selector::Subdomains(n) => vec![format!("*.{n}")],
        Selector::Prefix(p) => vec![format!("{}.rpz-ip", encode_rpz_ip(p))],
    })
}

/// The records (type and data) that carry a policy.
fn policy_rdata(policy: Policy, block_page: Option<&BlockPageTarget>) -> Vec<RecordData> {
    let cname = |target: &str| vec![RecordData::Cname(target.to_string())];
    match policy {
        Policy::Passthru => cname("rpz-passthru."),
        Policy::Block(Action::Nxdomain | Action::Reset) => cname("."),
        Policy::Block(Action::Nodata) => cname("*."),
        Policy::Block(Action::Drop) => cname("rpz-drop."),
        Policy::Block(Action::BlockPage) => match block_page {
            Some(BlockPageTarget::Name(name)) => cname(&format!("{name}.")),
            Some(BlockPageTarget::Addresses(addresses)) if !addresses.is_empty() => addresses
                .iter()
                .map(|a| match a {
                    IpAddr::V4(v4) => RecordData::A(*v4),
                    IpAddr::V6(v6) => RecordData::Aaaa(*v6),
                })
                .collect(),
            _ => cname("."),
        },
    }
}

/// One record of the policy zone: what [`write_rpz`] writes as a line and a zone-transfer server
/// sends on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ZoneRecord {
    /// The owner name relative to the origin, as written in the zone (`*.name` for wildcards,
    /// `<len>.<reversed>.rpz-ip` for prefixes); empty for the apex.
    pub owner: String,
    /// TTL in seconds (the zone's `$TTL`).
    pub ttl: u32,
    /// Type and data.
    pub data: RecordData,
}

/// The type and data of a [`ZoneRecord`]. Names are absolute, in text with the trailing dot
/// (`.` is the root, `*.` the wildcard below it), and hold only letters, digits, `-`, `_` and `*`
/// labels, so they need no escaping in either form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordData {
    /// Start of authority (RFC 1035 section 3.3.13).
    Soa(Soa),
    /// Name server (RFC 1035 section 3.3.11).
    Ns(String),
    /// Canonical name: RPZ's carrier of policy actions (`.`, `*.`, `rpz-drop.`, `rpz-passthru.`,
    /// or the block-page host).
    Cname(String),
    /// IPv4 address (block-page local data).
    A(Ipv4Addr),
    /// IPv6 address (block-page local data).
    Aaaa(Ipv6Addr),
}

impl RecordData {
    /// The type mnemonic (`SOA`, `NS`, `CNAME`, `A`, `AAAA`).
    pub fn type_name(&self) -> &'static str {
        match self {
            RecordData::Soa(_) => "SOA",
            RecordData::Ns(_) => "NS",
            RecordData::Cname(_) => "CNAME",
            RecordData::A(_) => "A",
            RecordData::Aaaa(_) => "AAAA",
        }
    }
}

/// The SOA fields (RFC 1035 section 3.3.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Soa {
    /// Primary server name (absolute, trailing dot).
    pub mname: String,
    /// Mailbox of the responsible person, as a name (absolute, trailing dot).
    pub rname: String,
    /// Zone version; secondaries transfer when it grows (RFC 1982 arithmetic).
    pub serial: u32,
    /// Seconds between secondary refreshes.
    pub refresh: u32,
    /// Seconds between retries of a failed refresh.
    pub retry: u32,
    /// Seconds after which a secondary that cannot refresh stops answering.
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308 section 4).
    pub minimum: u32,
}

/// What [`rpz_records`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZoneRecords {
    /// The records, SOA first, then NS, then the policy records in zone order.
    pub records: Vec<ZoneRecord>,
    /// The same statistics and warnings [`write_rpz`] returns.
    pub stats: ExportStats,
}

/// Where the zone walk writes: comment lines (via `writeln!`) and records.
trait Sink {
    /// A line of text (comments, directives); `writeln!` calls this.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()>;
    /// A record.
    fn record(&mut self, record: ZoneRecord) -> io::Result<()>;
}

/// Writes the zone as text.
struct TextSink<W: Write>(BufWriter<W>);

impl<W: Write> Sink for TextSink<W> {
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        self.0.write_fmt(args)
    }

    fn record(&mut self, record: ZoneRecord) -> io::Result<()> {
        let w = &mut self.0;
        match (&record.data, record.owner.is_empty()) {
            (RecordData::Soa(soa), true) => {
                writeln!(w, "@ IN SOA {} {} (", soa.mname, soa.rname)?;
                writeln!(w, "        {:<10} ; serial", soa.serial)?;
                writeln!(w, "        {:<10} ; refresh", soa.refresh)?;
                writeln!(w, "        {:<10} ; retry", soa.retry)?;
                writeln!(w, "        {:<10} ; expire", soa.expire)?;
                writeln!(w, "        {:<10} ; minimum (negative caching)", soa.minimum)?;
                writeln!(w, "        )")
            }
            (RecordData::Ns(name), true) => writeln!(w, "  IN NS {name}"),
            (data, _) => {
                let owner = if record.owner.is_empty() { "@" } else { record.owner.as_str() };
                let rtype = data.type_name();
                match data {
                    RecordData::Cname(target) | RecordData::Ns(target) => {
                        writeln!(w, "{owner:<32} {rtype:<5} {target}")
                    }
                    RecordData::A(a) => writeln!(w, "{owner:<32} {rtype:<5} {a}"),
                    RecordData::Aaaa(a) => writeln!(w, "{owner:<32} {rtype:<5} {a}"),
                    RecordData::Soa(soa) => writeln!(
                        w,
                        "{owner:<32} {rtype:<5} {} {} {} {} {} {} {}",
                        soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
                    ),
                }
            }
        }
    }
}

/// Collects the records, drops the text.
struct RecordSink(Vec<ZoneRecord>);

impl Sink for RecordSink {
    fn write_fmt(&mut self, _args: fmt::Arguments<'_>) -> io::Result<()> {
        Ok(())
    }

    fn record(&mut self, record: ZoneRecord) -> io::Result<()> {
        self.0.push(record);
        Ok(())
    }
}

/// The first allow entry that `selector` lies entirely inside.
fn inside_allowlist<'a>(selector: &Selector, allow: &'a [AllowEntry]) -> Option<&'a AllowEntry> {
    allow.iter().find(|a| selector.is_inside(&a.selector))
}

/// Text made safe for a one-line comment: control characters (a newline would start a record)
/// become spaces.
fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

fn timestamp(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()) {
        Some(text) => text,
        None => {
            let mut s = String::new();
            let _ = write!(s, "unix time {unix}");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{import_str, Format};
    use bawaba_policy::{Category, OrderStatus};

    fn sel(s: &str) -> Selector {
        s.parse().unwrap()
    }

    fn order(id: i64, reference: &str) -> Order {
        Order {
            id: OrderId(id),
            authority: "Court of First Instance, Baghdad".into(),
            reference: reference.into(),
            issued_at: 1_795_000_000,
            effective_from: 1_795_000_000,
            expires_at: 1_797_592_000,
            category: Category::Phishing,
            summary: "Phishing site imitating a bank\nevil CNAME .".into(),
            publishable: true,
            appeal_contact: "appeals@regulator.example".into(),
            status: OrderStatus::Approved,
            proposed_by: "alice".into(),
            approved_by: Some("bob".into()),
            revoked: None,
        }
    }

    fn rule(id: i64, order: i64, selector: &str, action: Action) -> Rule {
        Rule { id: RuleId(id), order: OrderId(order), selector: sel(selector), action, forced: None }
    }

    fn snapshot() -> PolicySnapshot {
        let mut secret = order(2, "REG-2026-7");
        secret.publishable = false;
        secret.summary = "not for the public".into();
        PolicySnapshot {
            version: 42,
            taken_at: 1_795_883_000,
            orders: vec![order(1, "CFI-2026-0042"), secret],
            rules: vec![
                rule(10, 1, "bank-login.test", Action::Nxdomain),
                rule(11, 1, "exact:tracker.test", Action::Nodata),
                rule(12, 2, "*.ads.test", Action::Drop),
                rule(13, 2, "casino.test", Action::BlockPage),
                rule(14, 1, "198.18.18.0/24", Action::Nxdomain),
                rule(15, 1, "2001:db8::/48", Action::Reset),
                Rule {
                    forced: Some("court ordered the whole range".into()),
                    ..rule(16, 1, "198.51.100.0/24", Action::Drop)
                },
            ],
            allow: vec![
                AllowEntry { id: AllowId(1), selector: sel("exact:www.bank-login.test"), reason: "real bank".into() },
                AllowEntry { id: AllowId(2), selector: sel("198.51.100.53"), reason: "resolver".into() },
            ],
        }
    }

    fn export(snapshot: &PolicySnapshot, options: &ExportOptions) -> (String, ExportStats) {
        let mut out = Vec::new();
        let stats = write_rpz(snapshot, options, &mut out).unwrap();
        (String::from_utf8(out).unwrap(), stats)
    }

    fn options() -> ExportOptions {
        ExportOptions::new(DomainName::parse("rpz.gateway.example").unwrap(), 2026112801)
            .with_block_page(BlockPageTarget::Name(DomainName::parse("blocked.gateway.example").unwrap()))
    }

    #[test]
    fn zone_layout_and_comments() {
        let (zone, stats) = export(&snapshot(), &options());
        assert!(zone.contains("$ORIGIN rpz.gateway.example.\n$TTL 60\n"));
        assert!(zone.contains("2026112801 ; serial"));
        assert!(zone.contains(
            "; order CFI-2026-0042 (Court of First Instance, Baghdad), rule 10: bank-login.test, nxdomain\n"
        ));
        assert!(zone.contains("\nbank-login.test                  CNAME .\n*.bank-login.test                CNAME .\n"));
        assert!(zone.contains("\nwww.bank-login.test              CNAME rpz-passthru.\n"));
        assert!(zone.contains("\n32.53.100.51.198.rpz-ip          CNAME rpz-passthru.\n"));
        assert!(zone.contains("\n24.0.18.18.198.rpz-ip            CNAME .\n"));
        assert!(zone.contains("\n48.zz.db8.2001.rpz-ip            CNAME .\n"));
        assert!(zone.contains("\ncasino.test                      CNAME blocked.gateway.example.\n"));
        assert!(zone.contains("reset: DNS has no reset"));
        assert!(zone.contains(";   guard overridden: court ordered the whole range\n"));
        // A newline in order text cannot inject a record.
        assert!(zone.contains("; summary: Phishing site imitating a bank evil CNAME .\n"));
        assert!(!zone.lines().any(|l| l.starts_with("evil")));
        // Non-publishable summaries stay out.
        assert!(!zone.contains("not for the public"));
        // Allowlist before rules.
        assert!(zone.find("rpz-passthru").unwrap() < zone.find("bank-login.test  ").unwrap());
        assert_eq!((stats.rules, stats.allow, stats.records), (7, 2, 11));
        assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    }

    #[test]
    fn records_are_the_record_lines_of_the_text() {
        let addresses = vec!["192.0.2.80".parse().unwrap(), "2001:db8::80".parse().unwrap()];
        for options in [options(), options().with_block_page(BlockPageTarget::Addresses(addresses))] {
            let (zone, stats) = export(&snapshot(), &options);
            let records = rpz_records(&snapshot(), &options);
            assert_eq!(records.stats, stats);
            assert!(matches!(&records.records[0].data, RecordData::Soa(soa) if soa.serial == options.serial));
            assert_eq!(records.records[1].data, RecordData::Ns("localhost.".into()));
            // Every record line after the SOA and NS, in order.
            let lines: Vec<String> = zone
                .lines()
                .skip_while(|l| !l.starts_with("  IN NS"))
                .skip(1)
                .filter(|l| !l.is_empty() && !l.starts_with(';'))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            let from_records: Vec<String> = records.records[2..]
                .iter()
                .map(|r| {
                    let data = match &r.data {
                        RecordData::Cname(t) => t.clone(),
                        RecordData::A(a) => a.to_string(),
                        RecordData::Aaaa(a) => a.to_string(),
                        other => panic!("unexpected {other:?}"),
                    };
                    format!("{} {} {data}", r.owner, r.data.type_name())
                })
                .collect();
            assert_eq!(lines, from_records);
            assert_eq!(from_records.len(), stats.records);
        }
    }

    #[test]
    fn round_trip() {
        let snapshot = snapshot();
        let (zone, _) = export(&snapshot, &options());
        let import = import_str(Format::Rpz, &zone, None);
        assert!(import.report.rejected.is_empty(), "{:#?}", import.report.rejected);
        assert_eq!(import.report.origin.as_ref().unwrap().as_str(), "rpz.gateway.example");
        let mut got: Vec<_> = import.entries.iter().map(|e| (e.selector.clone(), e.action)).collect();
        let mut want: Vec<_> = snapshot
            .rules
            .iter()
            .map(|r| (r.selector.clone(), Some(if r.action == Action::Reset { Action::Nxdomain } else { r.action })))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let passthru: Vec<_> = import.passthru.iter().map(|e| e.selector.clone()).collect();
        let allow: Vec<_> = snapshot.allow.iter().map(|a| a.selector.clone()).collect();
        assert_eq!(passthru, allow);
        assert_eq!(import.report.ignored, 2, "SOA and NS");
    }

    #[test]
    fn block_page_addresses_and_default() {
        let mut snapshot = snapshot();
        snapshot.rules.retain(|r| r.action == Action::BlockPage);
        let addresses = vec!["192.0.2.80".parse().unwrap(), "2001:db8::80".parse().unwrap()];
        let options = options().with_block_page(BlockPageTarget::Addresses(addresses));
        let (zone, stats) = export(&snapshot, &options);
        assert!(zone.contains("\ncasino.test                      A     192.0.2.80\n"));
        assert!(zone.contains("\n*.casino.test                    AAAA  2001:db8::80\n"));
        assert_eq!(stats.records, 4 + 2);
        let import = import_str(Format::Rpz, &zone, None);
        assert_eq!(import.entries.len(), 1);
        assert_eq!(import.entries[0].selector, sel("casino.test"));
        assert_eq!(import.entries[0].action, Some(Action::BlockPage));

        let plain = ExportOptions::new(DomainName::parse("rpz.example").unwrap(), 1);
        let (zone, _) = export(&snapshot, &plain);
        assert!(zone.contains("\ncasino.test                      CNAME .\n"));
        assert!(zone.contains("no block-page target configured"));
    }

    #[test]
    fn allowlist_wins_and_conflicts_are_explained() {
        let mut snapshot = snapshot();
        snapshot.allow.push(AllowEntry { id: AllowId(3), selector: sel("gov.test"), reason: "ministry".into() });
        snapshot.rules.push(rule(20, 1, "exact:portal.gov.test", Action::Nxdomain));
        snapshot.rules.push(rule(21, 1, "exact:www.bank-login.test", Action::Drop));
        snapshot.rules.push(rule(22, 1, "*.bank-login.test", Action::Drop));
        snapshot.rules.push(rule(23, 99, "orphan.test", Action::Drop));
        snapshot.rules.push(rule(24, 1, "exact:evil.rpz-ip", Action::Drop));
        let (zone, stats) = export(&snapshot, &options());
        let kinds: Vec<_> = stats.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(stats.warnings.len(), 5, "{kinds:#?}");
        assert!(matches!(
            &stats.warnings[0],
            ExportWarning::InsideAllowlisted { rule: Source::Rule(RuleId(20)), by: Source::Allow(AllowId(3)), .. }
        ));
        assert!(matches!(
            &stats.warnings[1],
            ExportWarning::InsideAllowlisted { rule: Source::Rule(RuleId(21)), by: Source::Allow(AllowId(1)), .. }
        ));
        assert!(matches!(
            &stats.warnings[2],
            ExportWarning::OwnerTaken { entry: Source::Rule(RuleId(22)), by: Source::Rule(RuleId(10)), .. }
        ));
        assert!(matches!(&stats.warnings[3], ExportWarning::ReservedLabel { label: "rpz-ip", .. }));
        assert!(matches!(stats.warnings[4], ExportWarning::MissingOrder { order: OrderId(99), .. }));
        assert!(zone.contains("NOT EXPORTED: rule 23 (orphan.test) names order 99"));
        assert!(!zone.contains("portal.gov.test   "));
        // Every record line re-imports without a rejection or a conflict.
        let import = import_str(Format::Rpz, &zone, None);
        assert!(import.report.rejected.is_empty(), "{:#?}", import.report.rejected);
    }

    #[test]
    fn blocking_the_block_page_host_is_not_a_passthru() {
        let mut snapshot = snapshot();
        snapshot.rules = vec![rule(1, 1, "blocked.gateway.example", Action::BlockPage)];
        snapshot.allow.clear();
        let (zone, stats) = export(&snapshot, &options());
        assert!(
            matches!(&stats.warnings[0], ExportWarning::BlockPageHost { owner, .. } if owner == "blocked.gateway.example")
        );
        assert!(zone.contains("\nblocked.gateway.example          CNAME .\n"));
        assert!(zone.contains("\n*.blocked.gateway.example        CNAME blocked.gateway.example.\n"));
        let import = import_str(Format::Rpz, &zone, None);
        assert!(import.passthru.is_empty());
        assert_eq!(import.entries.len(), 2);
    }

    #[test]
    fn long_owner_names_are_refused() {
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}", "b".repeat(40));
        let mut snapshot = snapshot();
        snapshot.rules = vec![rule(1, 1, &long, Action::Drop)];
        snapshot.allow.clear();
        let (_, stats) = export(&snapshot, &options());
        assert!(matches!(stats.warnings[0], ExportWarning::OwnerTooLong { .. }));
        assert_eq!(stats.records, 0);
    }
}
