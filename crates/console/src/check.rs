//! "Is it blocked?": the verdict for a name, URL or address under the policy in force, at DNS and
//! on the packet path, and the order behind it.

use std::net::IpAddr;

use bawaba_engine::verdict::{AppProtocol, FlowAction};
use bawaba_policy::{Action, Order, Ruleset, Verdict};
use serde::Serialize;

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// What was asked, as looked up (a URL is reduced to its host).
    pub target: String,
    /// `blocked`, `allowed` (an allowlist entry) or `not-blocked`.
    pub verdict: &'static str,
    /// The matching selector.
    pub selector: Option<String>,
    /// The rule's action.
    pub action: Option<Action>,
    /// The order behind a block.
    pub order: Option<Order>,
    /// What the DNS server answers for it.
    pub dns: String,
    /// What the packet engine does with TLS, QUIC and plain HTTP flows to it.
    pub packet: Vec<(String, String)>,
}

/// Reduces user input to a host name or address: strips a scheme, a path, a port and brackets.
pub fn target_of(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("type a name, a URL or an IP address".into());
    }
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let host = s.split(['/', '?', '#']).next().unwrap_or(s);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.split_once(']')).map(|(a, _)| a) {
        return Ok(v6.to_string());
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(host.to_string());
    }
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    Ok(host.to_string())
}

/// Looks `input` up in `ruleset`.
pub fn check(ruleset: &Ruleset, input: &str) -> Result<CheckResult, String> {
    let target = target_of(input)?;
    let (hit, is_ip) = match target.parse::<IpAddr>() {
        Ok(ip) => (ruleset.lookup_ip(ip), true),
        Err(_) => (
            ruleset
                .lookup_domain(&target)
                .map_err(|e| format!("{target:?} is neither an IP address nor a valid name: {e}"))?,
            false,
        ),
    };
    let mut result = CheckResult {
        target,
        verdict: "not-blocked",
        selector: None,
        action: None,
        order: None,
        dns: "answered normally".into(),
        packet: vec![("all".into(), "allowed".into())],
    };
    let Some(hit) = hit else { return Ok(result) };
    result.selector = Some(hit.selector().to_string());
    match hit.verdict() {
        Verdict::Allow { .. } => {
            result.verdict = "allowed";
            result.dns = "answered normally (allowlist)".into();
            result.packet = vec![("all".into(), "allowed (allowlist)".into())];
        }
        Verdict::Block { action, .. } => {
            result.verdict = "blocked";
            result.action = Some(action);
            result.order = hit.order().cloned();
            result.dns = if is_ip {
                "answers that contain this address are rewritten (RPZ-IP): NXDOMAIN".into()
            } else {
                match action {
                    Action::BlockPage => "answers the block page's address".into(),
                    Action::Nxdomain | Action::Reset => "NXDOMAIN, Extended DNS Error naming the order".into(),
                    Action::Nodata => "NOERROR with no records, Extended DNS Error naming the order".into(),
                    Action::Drop => "no answer".into(),
                }
            };
            let describe = |f: FlowAction| match f {
                FlowAction::Allow => "allowed",
                FlowAction::Drop => "dropped",
                FlowAction::Reset => "reset (TCP RST both ways)",
                FlowAction::Redirect => "HTTP 302 to the block page",
            };
            result.packet = vec![
                ("TLS".into(), describe(FlowAction::for_rule(action, AppProtocol::Tls, true)).into()),
                ("QUIC".into(), describe(FlowAction::for_rule(action, AppProtocol::Quic, false)).into()),
                ("HTTP".into(), describe(FlowAction::for_rule(action, AppProtocol::Http, true)).into()),
            ];
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_reduce_to_hosts() {
        assert_eq!(target_of("https://user@Example.test:8443/a?b").unwrap(), "Example.test");
        assert_eq!(target_of("http://[2001:db8::1]:80/").unwrap(), "2001:db8::1");
        assert_eq!(target_of(" 198.18.0.1 ").unwrap(), "198.18.0.1");
        assert_eq!(target_of("2001:db8::1").unwrap(), "2001:db8::1");
        assert!(target_of("  ").is_err());
    }
}
