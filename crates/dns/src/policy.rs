//! Response Policy Zone semantics over the compiled [`Ruleset`].
//!
//! The order of checks follows BIND's RPZ (and the RPZ draft, section 5): the QNAME first; then,
//! after the upstream answers, every CNAME target in the chain (each is a QNAME trigger in its
//! own right); then the A/AAAA addresses of the answer (response-IP triggers, like `rpz-ip`).
//! An allow entry (PASSTHRU) that matches at any step ends policy processing for the answer.
//!
//! Actions: NXDOMAIN, NODATA (NOERROR, empty answer), block page (the configured block-page
//! server's A/AAAA, so browsers land on the page that says who blocked what), DROP (no answer),
//! and reset, which DNS cannot express and answers as NXDOMAIN. Every policy answer carries an
//! Extended DNS Error (RFC 8914) naming the order when the client speaks EDNS.

use std::net::{Ipv4Addr, Ipv6Addr};

use bawaba_policy::{Action, Category, Match, Order, Ruleset, Verdict};
use bawaba_wire::dns::{ede, ede_option, Builder, Message, Rcode, Section, Type, EDE_OPTION};

/// How policy answers look.
#[derive(Debug, Clone, Default)]
pub struct AnswerConfig {
    /// A record for block-page answers; without it, block-page rules answer NXDOMAIN to A queries.
    pub block_page_ipv4: Option<Ipv4Addr>,
    /// AAAA record for block-page answers; without it, AAAA queries get NODATA.
    pub block_page_ipv6: Option<Ipv6Addr>,
    /// TTL of synthesised records.
    pub ttl: u32,
}

/// What a policy check decided.
#[derive(Debug)]
pub enum Decision {
    /// No rule applies: answer as the upstream did.
    Pass,
    /// An allow entry applies: answer as the upstream did, check nothing further.
    Passthru,
    /// Send this answer.
    Respond(Vec<u8>, Hit),
    /// Send nothing.
    Drop(Hit),
}

/// A policy hit, for counters (bounded labels: action and category).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The rule's action.
    pub action: Action,
    /// The order's category.
    pub category: Option<Category>,
    /// Which trigger fired.
    pub trigger: Trigger,
}

/// Which kind of trigger fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The query name.
    Qname,
    /// A CNAME target in the answer.
    Cname,
    /// An address in the answer.
    ResponseIp,
}

/// Checks the query name. `Pass` means: ask upstream, then call [`check_response`].
pub fn check_query(ruleset: &Ruleset, query: &Message<'_>, cfg: &AnswerConfig) -> Decision {
    let Some(q) = query.question() else { return Decision::Pass };
    let mut text = [0u8; 256];
    let Some(name) = q.name.to_text_lower(&mut text) else { return Decision::Pass };
    match ruleset.lookup_domain(name) {
        Ok(Some(m)) => decide(m, query, &[], None, Trigger::Qname, cfg),
        _ => Decision::Pass,
    }
}

/// Checks an upstream response to `query`: CNAME targets, then addresses.
pub fn check_response(ruleset: &Ruleset, query: &Message<'_>, response: &Message<'_>, cfg: &AnswerConfig) -> Decision {
    let Some(q) = query.question() else { return Decision::Pass };
    // Follow the CNAME chain from the query name (RFC 1034 section 3.6.2).
    let mut chain: Vec<bawaba_wire::dns::Record<'_>> = Vec::new();
    let mut current = q.name;
    let mut text = [0u8; 256];
    'chain: for _ in 0..16 {
        for r in response.answers() {
            if r.rtype != Type::CNAME || !r.name.eq_ignore_case(&current) {
                continue;
            }
            let Some(target) = r.target_name(response) else { break 'chain };
            chain.push(r);
            if let Some(name) = target.to_text_lower(&mut text) {
                if let Ok(Some(m)) = ruleset.lookup_domain(name) {
                    return decide(m, query, &chain, Some((response, target)), Trigger::Cname, cfg);
                }
            }
            current = target;
            continue 'chain;
        }
        break;
    }
    for r in response.answers() {
        let Some(addr) = r.address() else { continue };
        if let Some(m) = ruleset.lookup_ip(addr) {
            match m.verdict() {
                // An allowlisted address does not clear the others; a blocked one decides.
                Verdict::Allow { .. } => continue,
                Verdict::Block { .. } => return decide(m, query, &[], None, Trigger::ResponseIp, cfg),
            }
        }
    }
    Decision::Pass
}

fn decide(
    m: Match<'_>,
    query: &Message<'_>,
    chain: &[bawaba_wire::dns::Record<'_>],
    target: Option<(&Message<'_>, bawaba_wire::dns::Name<'_>)>,
    trigger: Trigger,
    cfg: &AnswerConfig,
) -> Decision {
    let Verdict::Block { action, .. } = m.verdict() else { return Decision::Passthru };
    let order = m.order();
    let hit = Hit { action, category: order.map(|o| o.category), trigger };
    if action == Action::Drop {
        return Decision::Drop(hit);
    }
    let qtype = query.question().map(|q| q.qtype);
    let (rcode, record): (Rcode, Option<(Type, Vec<u8>)>) = match action {
        Action::Nodata => (Rcode::NOERROR, None),
        Action::BlockPage => match (qtype, cfg.block_page_ipv4, cfg.block_page_ipv6) {
            (Some(Type::A), Some(v4), _) => (Rcode::NOERROR, Some((Type::A, v4.octets().to_vec()))),
            (Some(Type::AAAA), _, Some(v6)) => (Rcode::NOERROR, Some((Type::AAAA, v6.octets().to_vec()))),
            (_, None, None) => (Rcode::NXDOMAIN, None),
            _ => (Rcode::NOERROR, None),
        },
        _ => (Rcode::NXDOMAIN, None),
    };
    let mut b = Builder::response_to(query, rcode);
    if let Some((msg, _)) = target {
        for r in chain {
            b.copy_record(Section::Answer, msg, r);
        }
    }
    if let Some((rtype, rdata)) = record {
        match target {
            Some((_, name)) => {
                let mut owner = Vec::with_capacity(64);
                name.write_wire(&mut owner);
                b.push_record_raw(Section::Answer, &owner, rtype, bawaba_wire::dns::Class::IN, cfg.ttl, &rdata);
            }
            None => b.push_qname_record(Section::Answer, rtype, cfg.ttl, &rdata),
        }
    }
    if let Some(edns) = query.edns() {
        let text = ede_text(order);
        let option = ede_option(ede_code(order.map(|o| o.category)), &text);
        b.push_opt(1232, edns.dnssec_ok, &[(EDE_OPTION, &option)]);
    }
    Decision::Respond(b.finish(), hit)
}

/// RFC 8914: 15 Blocked is the operator's own security policy (malware, phishing); 16 Censored
/// is an external requirement such as a court or regulator order (every other category).
pub fn ede_code(category: Option<Category>) -> u16 {
    match category {
        Some(Category::Malware | Category::Phishing) => ede::BLOCKED,
        _ => ede::CENSORED,
    }
}

/// The EXTRA-TEXT: which order, and where to appeal. A non-public order is not named.
pub fn ede_text(order: Option<&Order>) -> String {
    match order {
        Some(o) if o.publishable => {
            format!("blocked by order {} of {}; appeal: {}", o.reference, o.authority, o.appeal_contact)
        }
        Some(o) => format!("blocked by a non-public legal order; appeal: {}", o.appeal_contact),
        None => "blocked".to_string(),
    }
}
