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
    /// The order behind the rule.
    pub order: Option<bawaba_policy::OrderId>,
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
///
/// An allow entry on the query name (PASSTHRU) ends policy processing, so its CNAME targets and
/// addresses are not checked (BIND and Unbound agree; tests/differential.rs, "portal"). The query
/// name was already looked up by [`check_query`]; to keep the common path at one lookup, it is
/// looked up again only when the response would be rewritten.
pub fn check_response(ruleset: &Ruleset, query: &Message<'_>, response: &Message<'_>, cfg: &AnswerConfig) -> Decision {
    let decision = check_response_triggers(ruleset, query, response, cfg);
    if matches!(decision, Decision::Respond(..) | Decision::Drop(_)) && qname_allowed(ruleset, query) {
        return Decision::Passthru;
    }
    decision
}

/// True when an allow entry is the most specific match for the query name.
fn qname_allowed(ruleset: &Ruleset, query: &Message<'_>) -> bool {
    let Some(q) = query.question() else { return false };
    let mut text = [0u8; 256];
    let Some(name) = q.name.to_text_lower(&mut text) else { return false };
    matches!(ruleset.lookup_domain(name), Ok(Some(m)) if !m.verdict().is_block())
}

/// The CNAME-target and response-IP triggers of [`check_response`].
fn check_response_triggers(
    ruleset: &Ruleset,
    query: &Message<'_>,
    response: &Message<'_>,
    cfg: &AnswerConfig,
) -> Decision {
    let Some(q) = query.question() else { return Decision::Pass };
    let mut text = [0u8; 256];
    // Follow the CNAME chain from the query name (RFC 1034 section 3.6.2).
    let mut chain: Vec<bawaba_wire::dns::Record<'_>> = Vec::new();
    let mut current = q.name;
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
                // The policy applies at the end of the CNAME chain, which stays in the answer
                // (BIND and Unbound both keep it; tests/differential.rs "alias-ip").
                Verdict::Block { .. } => {
                    let target = (!chain.is_empty()).then_some((response, current));
                    return decide(m, query, &chain, target, Trigger::ResponseIp, cfg);
                }
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
    let hit = Hit { action, category: order.map(|o| o.category), order: order.map(|o| o.id), trigger };
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

#[cfg(test)]
mod tests {
    use super::*;
    use bawaba_policy::{AllowEntry, AllowId, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId};
    use bawaba_wire::dns::{build_query, Class};

    fn ruleset() -> Ruleset {
        let order = Order {
            id: OrderId(1),
            authority: "Court".into(),
            reference: "CFI-1".into(),
            issued_at: 0,
            effective_from: 0,
            expires_at: i64::MAX / 2,
            category: Category::CourtOrder,
            summary: "test".into(),
            publishable: true,
            appeal_contact: "appeals@cmc.example".into(),
            status: OrderStatus::Approved,
            proposed_by: "alice".into(),
            approved_by: Some("bob".into()),
            revoked: None,
        };
        let rule = Rule {
            id: RuleId(1),
            order: OrderId(1),
            selector: "198.18.66.0/24".parse().unwrap(),
            action: Action::Nxdomain,
            forced: None,
        };
        let allow = AllowEntry {
            id: AllowId(1),
            selector: "exact:portal.example.test".parse().unwrap(),
            reason: "test".into(),
        };
        PolicySnapshot { version: 1, taken_at: 0, orders: vec![order], rules: vec![rule], allow: vec![allow] }.compile()
    }

    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in name.split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    /// An upstream answer: optional CNAME from the query name to `alias`, then an A at the end.
    fn response(query: &[u8], alias: Option<&str>, owner: &str, addr: [u8; 4]) -> Vec<u8> {
        let mut b = Builder::response_to(&Message::parse(query).unwrap(), Rcode::NOERROR);
        if let Some(target) = alias {
            b.push_qname_record(Section::Answer, Type::CNAME, 300, &wire(target));
        }
        b.push_record_raw(Section::Answer, &wire(owner), Type::A, Class::IN, 300, &addr);
        b.finish()
    }

    #[test]
    fn a_qname_passthru_exempts_the_addresses() {
        let rules = ruleset();
        let q = build_query(1, "portal.example.test", Type::A, true, None);
        let r = response(&q, None, "portal.example.test", [198, 18, 66, 9]);
        let d = check_response(
            &rules,
            &Message::parse(&q).unwrap(),
            &Message::parse(&r).unwrap(),
            &AnswerConfig::default(),
        );
        assert!(matches!(d, Decision::Passthru), "{d:?}");
    }

    #[test]
    fn a_response_ip_hit_keeps_the_cname_chain() {
        let rules = ruleset();
        let q = build_query(1, "alias.example.test", Type::A, true, None);
        let r = response(&q, Some("host.example.test"), "host.example.test", [198, 18, 66, 7]);
        let d = check_response(
            &rules,
            &Message::parse(&q).unwrap(),
            &Message::parse(&r).unwrap(),
            &AnswerConfig::default(),
        );
        let Decision::Respond(answer, hit) = d else { panic!("{d:?}") };
        assert_eq!(hit.trigger, Trigger::ResponseIp);
        let m = Message::parse(&answer).unwrap();
        assert_eq!(m.header().rcode(), Rcode::NXDOMAIN);
        let records: Vec<Type> = m.answers().map(|r| r.rtype).collect();
        assert_eq!(records, vec![Type::CNAME]);
    }
}
