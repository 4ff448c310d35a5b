//! Response Policy Zones: reading the policy out of an RPZ zone file.
//!
//! The format is a DNS zone (RFC 1035 section 5 master file) whose owner
//! names are *triggers* and whose records are *actions* (draft-vixie-dnsop-dns-rpz-00; the BIND 9
//! ARM section "Response Policy Zone (RPZ) Rewriting"; unbound.conf(5) "Response Policy Zone").
//!
//! Triggers, relative to the zone apex ("Policy Triggers" in the draft):
//! - `name` and `*.name`: QNAME triggers, imported as [`Selector::Exact`] and
//!   [`Selector::Subdomains`]; a `name` / `*.name` pair with the same action becomes one
//!   [`Selector::Subtree`], the way RPZ spells a subtree.
//! - `<len>.<reversed address>.rpz-ip`: response-IP triggers, imported as [`Selector::Prefix`]
//!   (see [`decode_rpz_ip`]).
//! - `rpz-nsdname`, `rpz-nsip`, `rpz-client-ip`: rejected, bawaba does not enforce them.
//!
//! Actions ("Policy Actions" in the draft):
//!
//! | record                        | imported as                                  |
//! |-------------------------------|----------------------------------------------|
//! | `CNAME .`                     | [`Action::Nxdomain`]                         |
//! | `CNAME *.`                    | [`Action::Nodata`]                           |
//! | `CNAME rpz-drop.`             | [`Action::Drop`]                             |
//! | `CNAME rpz-passthru.`         | a passthru entry (allowlist candidate)       |
//! | `CNAME <the trigger itself>.` | a passthru entry (the pre-`rpz-passthru.` form) |
//! | `CNAME rpz-tcp-only.`         | rejected: "tcp-only unsupported"             |
//! | `CNAME other.name.`           | [`Action::BlockPage`] (rewrite to a walled garden) |
//! | `A`, `AAAA`, other local data | [`Action::BlockPage`]                        |
//!
//! The zone apex (what owner names are relative to) is the owner of the SOA record when the file
//! starts with one (RFC 1035 section 5.2: the SOA is at the top of the zone); otherwise the
//! origin the caller gave; otherwise the `$ORIGIN` in force at the first record. `$ORIGIN`
//! later in the file only changes how relative names are completed, as in any master file.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_policy::name::MAX_NAME_LEN;
use bawaba_policy::{Action, DomainName, IpPrefix, Selector};

use crate::error::{RejectReason, Verdict};
use crate::import::{Collector, Line, LineParser};
use crate::zone::{generic_number, is_class, is_class_in, parse_ttl, Fed, RecordBuffer};

/// Record types accepted as RPZ local data besides A, AAAA and CNAME.
const OTHER_TYPES: &[&str] = &[
    "TXT",
    "MX",
    "SRV",
    "PTR",
    "HINFO",
    "NAPTR",
    "CAA",
    "DNAME",
    "HTTPS",
    "SVCB",
    "SSHFP",
    "TLSA",
    "DS",
    "DNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "LOC",
    "RP",
    "AFSDB",
    "URI",
    "SPF",
];

/// The RPZ import state machine, fed line by line.
pub(crate) struct RpzParser {
    record: RecordBuffer,
    /// The current `$ORIGIN` (lowercase, no trailing dot); starts as the caller's origin.
    origin: Option<String>,
    /// The zone apex, fixed by the first record.
    apex: Option<String>,
    /// The owner of the previous record, for records that omit it.
    last_owner: Option<String>,
    /// Triggers that already have local data: further records of the same RRset are ignored.
    local_data: HashSet<Selector>,
}

impl RpzParser {
    pub(crate) fn new(origin: Option<&DomainName>) -> Self {
        RpzParser {
            record: RecordBuffer::default(),
            origin: origin.map(|o| o.as_str().to_string()),
            apex: None,
            last_owner: None,
            local_data: HashSet::new(),
        }
    }

    /// The zone apex, once the first record has fixed it.
    pub(crate) fn apex(&self) -> Option<DomainName> {
        self.apex.as_deref().and_then(|a| DomainName::parse(a).ok())
    }

    fn record(&mut self, out: &mut Collector) {
        let line = self.record.first_line();
        match self.interpret() {
            Ok(Outcome::Nothing) => {}
            Ok(Outcome::Ignore) => out.ignore(),
            Ok(Outcome::Add(selector, verdict)) => out.add(line, self.record.text(), selector, verdict),
            Err(reason) => out.reject(line, self.record.text(), reason),
        }
    }

    /// Reads the complete record in the buffer.
    fn interpret(&mut self) -> Result<Outcome, RejectReason> {
        let mut tokens = self.record.tokens();
        let Some(first) = tokens.next() else { return Ok(Outcome::Nothing) };

        // Directives: $ORIGIN (RFC 1035 section 5.1), $TTL (RFC 2308 section 4).
        if !self.record.owner_omitted() && first.starts_with('$') {
            let argument = tokens.next();
            let extra = tokens.next();
            return match (first.to_ascii_uppercase().as_str(), argument, extra) {
                ("$ORIGIN", Some(name), None) => {
                    let origin = absolute(name, self.origin.as_deref()).ok_or(RejectReason::NoOrigin)?;
                    self.origin = Some(origin);
                    Ok(Outcome::Nothing)
                }
                ("$TTL", Some(ttl), None) => match parse_ttl(ttl) {
                    Some(_) => Ok(Outcome::Nothing),
                    None => Err(RejectReason::Ttl { ttl: ttl.to_string() }),
                },
                ("$ORIGIN" | "$TTL", None, _) => {
                    Err(RejectReason::Incomplete { what: first.to_string(), message: "needs one argument" })
                }
                ("$ORIGIN" | "$TTL", Some(_), Some(rest)) => {
                    Err(RejectReason::TrailingText { expected: "the directive's argument", rest: rest.to_string() })
                }
                _ => Err(RejectReason::Directive { directive: first.to_string() }),
            };
        }

        // [owner] [ttl] [class] type rdata, with ttl and class in either order (RFC 1035 5.1).
        let owner_text = if self.record.owner_omitted() { None } else { Some(first) };
        let mut next = if owner_text.is_some() { tokens.next() } else { Some(first) };
        let (mut ttl_seen, mut class_seen) = (false, false);
        let rtype = loop {
            let Some(token) = next else {
                return Err(RejectReason::Incomplete { what: "resource".into(), message: "no record type" });
            };
            if !ttl_seen && token.starts_with(|c: char| c.is_ascii_digit()) {
                parse_ttl(token).ok_or_else(|| RejectReason::Ttl { ttl: token.to_string() })?;
                ttl_seen = true;
            } else if !class_seen && is_class(token) {
                if !is_class_in(token) {
                    return Err(RejectReason::Class { class: token.to_string() });
                }
                class_seen = true;
            } else {
                break RecordType::parse(token)?;
            }
            next = tokens.next();
        };
        let rdata: Vec<&str> = tokens.collect();

        let owner = match owner_text {
            Some(text) => absolute(text, self.origin.as_deref()).ok_or(RejectReason::NoOrigin)?,
            None => self.last_owner.clone().ok_or(RejectReason::NoOwner)?,
        };
        self.last_owner = Some(owner.clone());
        if self.apex.is_none() {
            self.apex = if rtype == RecordType::Soa { Some(owner.clone()) } else { self.origin.clone() };
        }
        let apex = self.apex.as_deref().filter(|a| !a.is_empty()).ok_or(RejectReason::NoOrigin)?;
        let relative = relative_to(&owner, apex)
            .ok_or_else(|| RejectReason::OutsideZone { owner: format!("{owner}."), origin: format!("{apex}.") })?;

        if relative.is_empty() {
            return match rtype {
                RecordType::Soa | RecordType::Ns | RecordType::Other("TXT") => Ok(Outcome::Ignore),
                _ => Err(RejectReason::AtApex { rtype: rtype.name().to_string() }),
            };
        }
        let selector = trigger(relative, apex)?;
        let verdict = match rtype {
            RecordType::Soa => return Err(RejectReason::BelowApex { rtype: "SOA" }),
            RecordType::Ns => return Err(RejectReason::BelowApex { rtype: "NS" }),
            RecordType::Cname => cname_action(&rdata, relative, self.origin.as_deref())?,
            RecordType::A => {
                one(&rdata, "A")?
                    .parse::<Ipv4Addr>()
                    .map_err(|_| RejectReason::Address { rtype: "A", text: rdata.join(" ") })?;
                Verdict::Block(Some(Action::BlockPage))
            }
            RecordType::Aaaa => {
                one(&rdata, "AAAA")?
                    .parse::<Ipv6Addr>()
                    .map_err(|_| RejectReason::Address { rtype: "AAAA", text: rdata.join(" ") })?;
                Verdict::Block(Some(Action::BlockPage))
            }
            RecordType::Other(name) => {
                if rdata.is_empty() {
                    return Err(RejectReason::Incomplete { what: name.into(), message: "no record data" });
                }
                Verdict::Block(Some(Action::BlockPage))
            }
        };
        // Local data is an RRset: the first record imports the trigger, the others belong to it.
        if !matches!(rtype, RecordType::Cname) && !self.local_data.insert(selector.clone()) {
            return Ok(Outcome::Ignore);
        }
        Ok(Outcome::Add(selector, verdict))
    }
}

enum Outcome {
    Nothing,
    Ignore,
    Add(Selector, Verdict),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordType {
    Soa,
    Ns,
    Cname,
    A,
    Aaaa,
    Other(&'static str),
}

impl RecordType {
    fn parse(text: &str) -> Result<Self, RejectReason> {
        let known = |t: &str| text.eq_ignore_ascii_case(t);
        // RFC 3597 generic type names for the types that matter here.
        let generic = generic_number(text, "TYPE");
        Ok(match generic {
            Some(6) => RecordType::Soa,
            Some(2) => RecordType::Ns,
            Some(5) => RecordType::Cname,
            Some(1) => RecordType::A,
            Some(28) => RecordType::Aaaa,
            Some(_) => RecordType::Other("TYPE"),
            None if known("SOA") => RecordType::Soa,
            None if known("NS") => RecordType::Ns,
            None if known("CNAME") => RecordType::Cname,
            None if known("A") => RecordType::A,
            None if known("AAAA") => RecordType::Aaaa,
            None => match OTHER_TYPES.iter().find(|t| known(t)) {
                Some(t) => RecordType::Other(t),
                None => return Err(RejectReason::UnknownType { rtype: text.to_string() }),
            },
        })
    }

    fn name(&self) -> &'static str {
        match self {
            RecordType::Soa => "SOA",
            RecordType::Ns => "NS",
            RecordType::Cname => "CNAME",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Other(name) => name,
        }
    }
}

impl LineParser for RpzParser {
    fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector) {
        let text = match line {
            Line::Text(text) => text,
            Line::Bad(bytes, reason) => {
                if self.record.is_open() {
                    let reason = RejectReason::Syntax { column: 1, message: "record cut off by an unreadable line" };
                    out.reject(self.record.first_line(), self.record.text(), reason);
                    self.record.reset();
                }
                return out.reject_bytes(number, bytes, reason);
            }
        };
        match self.record.feed(number, text) {
            Ok(Fed::Empty | Fed::Open) => {}
            Ok(Fed::Complete) => self.record(out),
            Err((column, message)) => {
                let first = self.record.first_line();
                // Report the whole record when the error is on a continuation line.
                let shown = if first == number { text.to_string() } else { self.record.text().to_string() };
                out.reject(first, &shown, RejectReason::Syntax { column, message });
                self.record.reset();
            }
        }
    }

    fn end(&mut self, _lines: usize, out: &mut Collector) {
        if self.record.is_open() {
            out.reject(self.record.first_line(), self.record.text(), RejectReason::Unterminated);
            self.record.reset();
        }
    }
}

/// The absolute form of a name (lowercase ASCII, no trailing dot, `""` for the root): `@` is the
/// origin, a name with a trailing dot is absolute, any other is relative to the origin
/// (RFC 1035 section 5.1). `None` when a relative name meets no origin.
fn absolute(name: &str, origin: Option<&str>) -> Option<String> {
    if name == "@" {
        return origin.map(str::to_string);
    }
    if let Some(abs) = name.strip_suffix('.') {
        return Some(abs.to_ascii_lowercase());
    }
    let origin = origin?;
    let mut out = name.to_ascii_lowercase();
    if !origin.is_empty() {
        out.push('.');
        out.push_str(origin);
    }
    Some(out)
}

/// The part of `owner` left of `apex` (`""` at the apex), or `None` outside the zone.
fn relative_to<'a>(owner: &'a str, apex: &str) -> Option<&'a str> {
    if owner == apex {
        return Some("");
    }
    owner.strip_suffix(apex)?.strip_suffix('.').filter(|r| !r.is_empty())
}

/// The selector for a trigger written relative to the apex.
fn trigger(relative: &str, apex: &str) -> Result<Selector, RejectReason> {
    let (rest, kind) = match relative.rsplit_once('.') {
        Some((rest, kind)) => (rest, kind),
        None => ("", relative),
    };
    match kind {
        "rpz-ip" => {
            let prefix = decode_rpz_ip(rest)?;
            check_owner_len(relative.len(), apex)?;
            return Ok(Selector::Prefix(prefix));
        }
        "rpz-nsdname" => return Err(RejectReason::UnsupportedTrigger { trigger: "rpz-nsdname" }),
        "rpz-nsip" => return Err(RejectReason::UnsupportedTrigger { trigger: "rpz-nsip" }),
        "rpz-client-ip" => return Err(RejectReason::UnsupportedTrigger { trigger: "rpz-client-ip" }),
        _ => {}
    }
    let (wildcard, name) = match relative.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None if relative == "*" => (true, ""),
        None => (false, relative),
    };
    let parsed = DomainName::parse(name).map_err(|source| RejectReason::Name { name: relative.to_string(), source })?;
    check_owner_len(parsed.as_str().len() + if wildcard { 2 } else { 0 }, apex)?;
    Ok(if wildcard { Selector::Subdomains(parsed) } else { Selector::Exact(parsed) })
}

/// Refuses owners longer than a DNS name may be (RFC 1035 section 2.3.4, text form).
fn check_owner_len(relative_len: usize, apex: &str) -> Result<(), RejectReason> {
    let len = relative_len + 1 + apex.len();
    if len > MAX_NAME_LEN {
        return Err(RejectReason::OwnerTooLong { len });
    }
    Ok(())
}

/// The only rdata token, or an error naming the record type.
fn one<'a>(rdata: &[&'a str], rtype: &'static str) -> Result<&'a str, RejectReason> {
    match rdata {
        [one] => Ok(one),
        [] => Err(RejectReason::Incomplete { what: rtype.into(), message: "no record data" }),
        [_, rest @ ..] => Err(RejectReason::TrailingText { expected: "the record data", rest: rest.join(" ") }),
    }
}

/// The action a CNAME stands for ("Policy Actions" in draft-vixie-dnsop-dns-rpz-00).
fn cname_action(rdata: &[&str], relative: &str, origin: Option<&str>) -> Result<Verdict, RejectReason> {
    let target = one(rdata, "CNAME")?;
    let lower = target.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "." => Verdict::Block(Some(Action::Nxdomain)),
        "*." => Verdict::Block(Some(Action::Nodata)),
        "rpz-drop." => Verdict::Block(Some(Action::Drop)),
        "rpz-passthru." => Verdict::Passthru,
        "rpz-tcp-only." => return Err(RejectReason::TcpOnly),
        "rpz-drop" | "rpz-passthru" | "rpz-tcp-only" | "*" => {
            return Err(RejectReason::RelativeKeyword { target: target.to_string() });
        }
        _ => {
            // The old PASSTHRU form: a CNAME to the trigger's own name (BIND ARM).
            let resolved = absolute(&lower, origin);
            if resolved.as_deref() == Some(relative) {
                Verdict::Passthru
            } else {
                Verdict::Block(Some(Action::BlockPage))
            }
        }
    })
}

/// Decodes the labels of an rpz-ip trigger, without the `rpz-ip` label: the prefix length, then
/// the address with its parts reversed; IPv6 groups in hex with `zz` for the `::` run
/// (draft-vixie-dnsop-dns-rpz-00, "Response IP Address"; unbound.conf(5)).
///
/// ```
/// use bawaba_formats::rpz::decode_rpz_ip;
/// assert_eq!(decode_rpz_ip("32.1.18.18.198").unwrap().to_string(), "198.18.18.1/32");
/// assert_eq!(decode_rpz_ip("48.zz.db8.2001").unwrap().to_string(), "2001:db8::/48");
/// assert!(decode_rpz_ip("24.1.18.18.198").is_err()); // host bits set
/// ```
pub fn decode_rpz_ip(labels: &str) -> Result<IpPrefix, RejectReason> {
    let bad = |message| RejectReason::RpzIp { owner: format!("{labels}.rpz-ip"), message };
    let mut parts = labels.split('.');
    let len_text = parts.next().filter(|t| !t.is_empty()).ok_or_else(|| bad("no prefix length"))?;
    if !len_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the first label must be the prefix length"));
    }
    let len: u8 = len_text.parse().map_err(|_| bad("prefix length out of range"))?;
    let reversed: Vec<&str> = parts.collect();
    if reversed.is_empty() {
        return Err(bad("no address after the prefix length"));
    }
    let is_v4 = reversed.len() == 4 && reversed.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let address = if is_v4 {
        let mut octets = [0u8; 4];
        for (slot, part) in octets.iter_mut().rev().zip(&reversed) {
            *slot = part.parse().map_err(|_| bad("IPv4 octet out of range"))?;
        }
        if len > 32 {
            return Err(bad("IPv4 prefix length above 32"));
        }
        IpAddr::V4(Ipv4Addr::from(octets))
    } else {
        if len > 128 {
            return Err(bad("IPv6 prefix length above 128"));
        }
        IpAddr::V6(decode_v6(&reversed).ok_or_else(|| bad("not 4 decimal octets or 8 hex groups with one zz"))?)
    };
    IpPrefix::parse(&format!("{address}/{len}")).map_err(RejectReason::Prefix)
}

/// IPv6 groups given in reverse order, with at most one `zz` standing for one or more zero groups.
fn decode_v6(reversed: &[&str]) -> Option<Ipv6Addr> {
    let mut forward: Vec<&str> = reversed.to_vec();
    forward.reverse();
    let zz = forward.iter().filter(|p| p.eq_ignore_ascii_case("zz")).count();
    let groups = forward.len() - zz;
    if zz > 1 || (zz == 0 && groups != 8) || (zz == 1 && groups > 7) {
        return None;
    }
    let mut out = [0u16; 8];
    let mut i = 0;
    for part in forward {
        if part.eq_ignore_ascii_case("zz") {
            i += 8 - groups;
            continue;
        }
        if part.is_empty() || part.len() > 4 {
            return None;
        }
        *out.get_mut(i)? = u16::from_str_radix(part, 16).ok()?;
        i += 1;
    }
    Some(Ipv6Addr::from(out))
}

/// The rpz-ip trigger labels for a prefix (without `.rpz-ip`), in the canonical form BIND and
/// Unbound expect: decimal IPv4 octets; lowercase IPv6 groups without leading zeros, with `zz`
/// for the longest run of two or more zero groups (the first such run on ties, as RFC 5952).
///
/// ```
/// use bawaba_formats::rpz::encode_rpz_ip;
/// assert_eq!(encode_rpz_ip(&"198.18.18.1/32".parse().unwrap()), "32.1.18.18.198");
/// assert_eq!(encode_rpz_ip(&"2001:db8::/48".parse().unwrap()), "48.zz.db8.2001");
/// ```
pub fn encode_rpz_ip(prefix: &IpPrefix) -> String {
    match prefix.network() {
        IpAddr::V4(a) => {
            let [x, y, z, w] = a.octets();
            format!("{}.{w}.{z}.{y}.{x}", prefix.len())
        }
        IpAddr::V6(a) => {
            let segments = a.segments();
            let (mut best, mut run_start, mut run_len) = ((0, 0), 0, 0);
            for (i, &s) in segments.iter().enumerate() {
                if s == 0 {
                    if run_len == 0 {
                        run_start = i;
                    }
                    run_len += 1;
                    if run_len > best.1 {
                        best = (run_start, run_len);
                    }
                } else {
                    run_len = 0;
                }
            }
            let mut forward: Vec<String> = Vec::with_capacity(8);
            let mut i = 0;
            while i < 8 {
                if best.1 >= 2 && i == best.0 {
                    forward.push("zz".into());
                    i += best.1;
                } else {
                    forward.push(format!("{:x}", segments[i]));
                    i += 1;
                }
            }
            forward.reverse();
            format!("{}.{}", prefix.len(), forward.join("."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{import_str, Format};

    fn sel(s: &str) -> Selector {
        s.parse().unwrap()
    }

    const ZONE: &str = include_str!("../tests/data/national.rpz");

    #[test]
    fn realistic_zone() {
        let import = import_str(Format::Rpz, ZONE, None);
        let report = &import.report;
        assert_eq!(report.origin.as_ref().map(|o| o.as_str()), Some("rpz.gateway.example"));
        let entries: Vec<_> = import.entries.iter().map(|e| (e.line, e.selector.to_string(), e.action)).collect();
        use Action::*;
        let expected: Vec<(usize, String, Option<Action>)> = vec![
            (17, "bank-login.test".into(), Some(Nxdomain)),
            (21, "exact:tracker.test".into(), Some(Nodata)),
            (22, "*.ads.test".into(), Some(Drop)),
            (24, "exact:casino.test".into(), Some(BlockPage)),
            (25, "exact:lottery.test".into(), Some(BlockPage)),
            (28, "exact:mixed.test".into(), Some(Nxdomain)),
            (30, "*.mixed.test".into(), Some(Nodata)),
            (33, "198.18.18.1/32".into(), Some(Nxdomain)),
            (34, "198.51.100.0/24".into(), Some(Drop)),
            (35, "2001:db8::/48".into(), Some(Nxdomain)),
            (36, "2001:db8:0:1::7/128".into(), Some(BlockPage)),
            (40, "exact:absolute.test".into(), Some(Nxdomain)),
            (42, "exact:sub.absolute.test".into(), Some(Nxdomain)),
            (43, "exact:www.absolute.test".into(), Some(Nxdomain)),
            (45, "exact:xn--mgbh0fb.test".into(), Some(Nxdomain)),
        ];
        assert_eq!(entries, expected);
        let passthru: Vec<_> = import.passthru.iter().map(|e| (e.line, e.selector.to_string())).collect();
        assert_eq!(
            passthru,
            vec![
                (19, "exact:www.bank-login.test".to_string()),
                (37, "198.51.100.53/32".to_string()),
                (38, "exact:legacy.bank-login.test".to_string())
            ]
        );
        assert_eq!(report.merged, 1);
        assert_eq!(report.ignored, 3, "SOA, apex NS, the AAAA of casino.test");
        let duplicates: Vec<_> = report.duplicates.iter().map(|d| (d.line, d.first_line)).collect();
        assert_eq!(duplicates, [(29, 28), (31, 30), (46, 21)]);

        let rejected: Vec<_> = report.rejected.iter().map(|r| (r.line, r.reason.to_string())).collect();
        let expect = |line: usize, text: &str| {
            assert!(
                rejected.iter().any(|(l, reason)| *l == line && reason.contains(text)),
                "line {line} should be rejected for {text:?}; rejected: {rejected:#?}"
            );
        };
        expect(49, "no record type");
        expect(50, "tcp-only unsupported");
        expect(51, "unsupported trigger rpz-nsdname");
        expect(52, "unsupported trigger rpz-nsip");
        expect(53, "unsupported trigger rpz-client-ip");
        expect(54, "evil.example. is not inside the policy zone rpz.gateway.example.");
        expect(55, "host bits set in 198.18.18.1/24: did you mean 198.18.18.0/24?");
        expect(56, "invalid domain name \"bad..name.test\"");
        expect(57, "write `rpz-passthru.`");
        expect(58, "is nxdomain here but nodata on line 21");
        expect(59, "class CH");
        expect(60, "invalid A address \"300.1.2.3\"");
        expect(61, "$INCLUDE");
        expect(62, "unknown record type \"FOO\"");
        expect(63, "')' without '('");
        expect(64, "is not closed");
        assert_eq!(rejected.len(), 16, "{rejected:#?}");
        let accounted = report.added + report.duplicates.len() + report.rejected.len() + report.ignored;
        assert!(accounted <= report.lines);
    }

    #[test]
    fn origin_from_the_caller_and_from_origin_directive() {
        let origin = DomainName::parse("rpz.example").unwrap();
        let import = import_str(Format::Rpz, "a.test CNAME .\n*.a.test CNAME .\n", Some(&origin));
        assert_eq!(import.entries[0].selector, sel("a.test"));
        assert!(import.report.rejected.is_empty());

        let text = "$ORIGIN other.example.\nb.test 300 IN CNAME rpz-drop.\n";
        let import = import_str(Format::Rpz, text, None);
        assert_eq!(import.report.origin.unwrap().as_str(), "other.example");
        assert_eq!(import.entries[0].action, Some(Action::Drop));

        let import = import_str(Format::Rpz, "c.test CNAME .\n", None);
        assert_eq!(import.report.rejected[0].reason, RejectReason::NoOrigin);
    }

    #[test]
    fn ttl_and_class_in_either_order_and_omitted_owner() {
        let text = "$ORIGIN rpz.example.\n\
                    a.test 60 IN CNAME .\n\
                    b.test IN 60 CNAME *.\n\
                    c.test IN A 192.0.2.1\n\
                    \tAAAA 2001:db8::1\n\
                    d.test TYPE5 rpz-drop.\n\
                    e.test 1h CLASS1 CNAME rpz-drop.\n";
        let import = import_str(Format::Rpz, text, None);
        let got: Vec<_> = import.entries.iter().map(|e| (e.selector.to_string(), e.action)).collect();
        assert_eq!(
            got,
            vec![
                ("exact:a.test".into(), Some(Action::Nxdomain)),
                ("exact:b.test".into(), Some(Action::Nodata)),
                ("exact:c.test".into(), Some(Action::BlockPage)),
                ("exact:d.test".into(), Some(Action::Drop)),
                ("exact:e.test".into(), Some(Action::Drop)),
            ]
        );
        assert_eq!(import.report.ignored, 1, "the AAAA of c.test");
        assert!(import.report.rejected.is_empty(), "{:?}", import.report.rejected);
    }

    #[test]
    fn rpz_ip_codec() {
        for (labels, prefix) in [
            ("32.1.18.18.198", "198.18.18.1/32"),
            ("24.0.100.51.198", "198.51.100.0/24"),
            ("0.0.0.0.0", "0.0.0.0/0"),
            ("48.zz.db8.2001", "2001:db8::/48"),
            ("128.1.zz", "::1/128"),
            ("128.zz.1", "1::/128"),
            ("64.0.0.0.0.0.1.db8.2001", "2001:db8:1::/64"),
            ("64.zz.1.db8.2001", "2001:db8:1::/64"),
            ("128.8.7.6.5.4.3.2.1", "1:2:3:4:5:6:7:8/128"),
            ("128.1.0.zz.1.0.0", "0:0:1::0:1/128"),
        ] {
            let p: IpPrefix = prefix.parse().unwrap();
            assert_eq!(decode_rpz_ip(labels).unwrap(), p, "{labels}");
            assert_eq!(decode_rpz_ip(&encode_rpz_ip(&p)).unwrap(), p, "{prefix}");
        }
        assert_eq!(encode_rpz_ip(&"2001:db8:1::/64".parse().unwrap()), "64.zz.1.db8.2001");
        assert_eq!(encode_rpz_ip(&"1:0:2:3:4:5:6:7/128".parse().unwrap()), "128.7.6.5.4.3.2.0.1");
        assert_eq!(encode_rpz_ip(&"0:0:1::1/128".parse().unwrap()), "128.1.zz.1.0.0");
        for bad in
            ["", "x.1.2.3.4", "33.1.2.3.4", "129.zz", "32.256.1.1.1", "64.zz.zz.1", "64.1.2.3", "300.zz", "8.1.2.3.4.5"]
        {
            assert!(decode_rpz_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn never_panics_on_odd_records() {
        for text in [
            "$ORIGIN\n",
            "$ORIGIN a. b.\n",
            "$TTL x\n",
            "@\n",
            " \n\t; x\n\tCNAME .\n",
            "$ORIGIN rpz.\n*.rpz-ip CNAME .\n*. CNAME .\n* CNAME .\n.rpz-ip CNAME .\nrpz-ip CNAME .\n",
            "$ORIGIN rpz.\n@ CNAME .\na CNAME\na 99999999999 CNAME .\na IN\n( a CNAME . )\na CNAME ( . \n",
            "$ORIGIN .\na CNAME .\n",
            "$ORIGIN rpz.\n\\ CNAME .\n\"q\" CNAME .\na.\\.b CNAME .\n",
        ] {
            let import = import_str(Format::Rpz, text, None);
            assert!(import.entries.len() + import.report.rejected.len() < 20);
        }
    }
}
