//! Line-oriented lists: hosts files, plain domain lists and CIDR lists.
//!
//! All three take `#` comments (whole-line or after the data), blank lines and surrounding
//! whitespace. None of them states an action, so every entry's action is `None` (the caller's
//! default).
//!
//! | format  | line                          | selector                                    |
//! |---------|-------------------------------|---------------------------------------------|
//! | hosts   | `0.0.0.0 ads.example ads2.ex` | [`Selector::Exact`] per name                |
//! | domains | `example.test`                | [`Selector::Subtree`] (name and subdomains) |
//! | domains | `*.example.test`              | [`Selector::Subdomains`]                    |
//! | domains | `exact:www.example.test`      | [`Selector::Exact`]                         |
//! | cidr    | `198.18.0.0/15`, `2001:db8::1`| [`Selector::Prefix`]                        |
//!
//! Hosts files give [`Selector::Exact`]: a hosts entry overrides exactly the name written (the
//! resolver library never applies it to subdomains), and published hosts blocklists list each
//! blocked host name separately. Import as a domain list to block whole subtrees instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bawaba_policy::{DomainName, IpPrefix, Selector};

use crate::error::{RejectReason, Verdict};
use crate::import::{Collector, Line, LineParser};

/// The data part of a line: comment after `#` removed, whitespace trimmed.
fn data(text: &str) -> &str {
    let text = match memchr::memchr(b'#', text.as_bytes()) {
        Some(i) => &text[..i],
        None => text,
    };
    text.trim()
}

/// The first whitespace-separated field and the (trimmed) rest.
fn split_field(text: &str) -> (&str, &str) {
    match text.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

/// Plain domain lists: one selector per line in [`Selector::parse`] syntax, prefixes refused.
pub(crate) struct Domains;

impl LineParser for Domains {
    fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector) {
        let text = match line {
            Line::Text(text) => text,
            Line::Bad(bytes, reason) => return out.reject_bytes(number, bytes, reason),
        };
        let item = data(text);
        if item.is_empty() {
            return;
        }
        let (first, rest) = split_field(item);
        if !rest.is_empty() {
            let reason = if first.parse::<IpAddr>().is_ok() {
                RejectReason::LooksLikeHosts { text: item.to_string() }
            } else {
                RejectReason::TrailingText { expected: "the domain", rest: rest.to_string() }
            };
            return out.reject(number, text, reason);
        }
        let item = first;
        match Selector::parse(item) {
            Ok(Selector::Prefix(_)) => {
                out.reject(number, text, RejectReason::PrefixInDomainList { text: item.to_string() })
            }
            Ok(selector) => out.add(number, text, selector, Verdict::Block(None)),
            Err(e) => out.reject(number, text, RejectReason::Selector(e)),
        }
    }
}

/// CIDR lists: one prefix or address per line.
pub(crate) struct Cidr;

impl LineParser for Cidr {
    fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector) {
        let text = match line {
            Line::Text(text) => text,
            Line::Bad(bytes, reason) => return out.reject_bytes(number, bytes, reason),
        };
        let item = data(text);
        if item.is_empty() {
            return;
        }
        let (item, rest) = split_field(item);
        if !rest.is_empty() {
            let reason = RejectReason::TrailingText { expected: "the prefix", rest: rest.to_string() };
            return out.reject(number, text, reason);
        }
        match IpPrefix::parse(item) {
            Ok(prefix) => out.add(number, text, Selector::Prefix(prefix), Verdict::Block(None)),
            Err(e) => out.reject(number, text, RejectReason::Prefix(e)),
        }
    }
}

/// Hosts files (the `/etc/hosts` format): an address, then one or more names.
pub(crate) struct Hosts;

/// Names every hosts file carries for the machine itself; never policy.
const HOSTS_SELF_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// Addresses that blocklists in hosts format point names at (a sinkhole).
fn is_sinkhole(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => a == Ipv4Addr::UNSPECIFIED || a == Ipv4Addr::LOCALHOST,
        IpAddr::V6(a) => a == Ipv6Addr::UNSPECIFIED || a == Ipv6Addr::LOCALHOST,
    }
}

impl LineParser for Hosts {
    fn line(&mut self, number: usize, line: Line<'_>, out: &mut Collector) {
        let text = match line {
            Line::Text(text) => text,
            Line::Bad(bytes, reason) => return out.reject_bytes(number, bytes, reason),
        };
        let item = data(text);
        if item.is_empty() {
            return;
        }
        let (address, names) = split_field(item);
        let address = match address.parse::<IpAddr>() {
            Ok(a) => a,
            Err(_) => {
                return out.reject(number, text, RejectReason::HostsAddress { text: address.to_string() });
            }
        };
        if names.is_empty() {
            return out.reject(number, text, RejectReason::HostsNoNames);
        }
        if !is_sinkhole(address) {
            return out.reject(number, text, RejectReason::HostsRedirect { address });
        }
        for name in names.split_ascii_whitespace() {
            if HOSTS_SELF_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                out.ignore();
                continue;
            }
            match DomainName::parse(name) {
                Ok(n) => out.add(number, text, Selector::Exact(n), Verdict::Block(None)),
                Err(source) => out.reject(number, text, RejectReason::Name { name: name.to_string(), source }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{import_str, Format, RejectReason};
    use bawaba_policy::{NameError, PolicyError, PrefixError, Selector};

    fn sel(s: &str) -> Selector {
        s.parse().unwrap()
    }

    const HOSTS: &str = "\
# StevenBlack-style hosts blocklist
127.0.0.1 localhost
127.0.0.1 localhost.localdomain
::1 localhost ip6-localhost ip6-loopback
0.0.0.0 0.0.0.0

# Malware
0.0.0.0 malware-cdn.example.test   # tracker
0.0.0.0\tads.example.test  ADS2.example.test
0.0.0.0 bad_host!.example.test
192.168.1.10 nas.example.test
notanaddress ads.example.test
0.0.0.0
0.0.0.0 ads.example.test
";

    #[test]
    fn hosts_file() {
        let import = import_str(Format::Hosts, HOSTS, None);
        let got: Vec<_> = import.entries.iter().map(|e| (e.line, e.selector.to_string(), e.action)).collect();
        assert_eq!(
            got,
            vec![
                (8, "exact:malware-cdn.example.test".to_string(), None),
                (9, "exact:ads.example.test".to_string(), None),
                (9, "exact:ads2.example.test".to_string(), None),
            ]
        );
        let r = &import.report;
        assert_eq!(r.lines, 14);
        assert_eq!(r.ignored, 6, "localhost and friends");
        assert_eq!(r.duplicates.len(), 1);
        assert_eq!((r.duplicates[0].line, r.duplicates[0].first_line), (14, 9));
        let reasons: Vec<_> = r.rejected.iter().map(|x| (x.line, x.reason.clone())).collect();
        assert!(
            matches!(&reasons[0], (10, RejectReason::Name { name, source: NameError::InvalidChar { ch: '!', .. } }) if name == "bad_host!.example.test")
        );
        assert!(matches!(reasons[1], (11, RejectReason::HostsRedirect { .. })));
        assert!(matches!(&reasons[2], (12, RejectReason::HostsAddress { text }) if text == "notanaddress"));
        assert_eq!(reasons[3], (13, RejectReason::HostsNoNames));
        assert_eq!(r.rejected.len(), 4);
        assert_eq!(r.rejected[1].text, "192.168.1.10 nas.example.test");
    }

    #[test]
    fn domain_list() {
        let text = "# court order CFI-2026-0042, annex A\n\
                    Bank-Login.test.\n\
                    *.tracker.test\n\
                    exact:www.phish.test   # only this host\n\
                    مثال.إختبار\n\
                    bad..name\n\
                    198.18.0.0/24\n\
                    two names.test\n\
                    0.0.0.0 ads.test\n\
                    \n   bank-login.test  \n";
        let import = import_str(Format::Domains, text, None);
        let got: Vec<_> = import.entries.iter().map(|e| (e.line, e.selector.clone())).collect();
        assert_eq!(
            got,
            vec![
                (2, sel("bank-login.test")),
                (3, sel("*.tracker.test")),
                (4, sel("exact:www.phish.test")),
                (5, sel("xn--mgbh0fb.xn--kgbechtv")),
            ]
        );
        let r = &import.report;
        assert_eq!(r.duplicates.len(), 1);
        assert_eq!(r.duplicates[0].first_line, 2);
        assert!(matches!(r.rejected[0].reason, RejectReason::Selector(PolicyError::Name { .. })));
        assert_eq!(r.rejected[0].line, 6);
        assert!(matches!(r.rejected[1].reason, RejectReason::PrefixInDomainList { .. }));
        assert_eq!(r.rejected[2].reason.to_string(), "unexpected text \"names.test\" after the domain");
        assert!(matches!(r.rejected[3].reason, RejectReason::LooksLikeHosts { .. }));
        assert_eq!(r.lines, 11);
    }

    #[test]
    fn cidr_list() {
        let text = "198.18.0.0/24\n2001:db8::/48 # v6 range\n192.0.2.7\n198.18.0.1/24\n300.1.1.1\n198.18.0.0/24\n";
        let import = import_str(Format::Cidr, text, None);
        let got: Vec<_> = import.entries.iter().map(|e| e.selector.to_string()).collect();
        assert_eq!(got, ["198.18.0.0/24", "2001:db8::/48", "192.0.2.7/32"]);
        let r = &import.report;
        assert_eq!(
            r.rejected[0].reason,
            RejectReason::Prefix(PrefixError::HostBits {
                input: "198.18.0.1/24".into(),
                suggestion: "198.18.0.0/24".into()
            })
        );
        assert!(r.rejected[0].reason.to_string().contains("did you mean 198.18.0.0/24"));
        assert!(matches!(r.rejected[1].reason, RejectReason::Prefix(PrefixError::Address(_))));
        assert_eq!(r.duplicates.len(), 1);
    }
}
