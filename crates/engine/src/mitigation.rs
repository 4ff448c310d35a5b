//! Attack traffic dropped in bawaba's own inline engine while a DDoS mitigation is in force
//! (`[ddos.mitigation] engine_drop`), besides the blackhole or FlowSpec route announced to the
//! routers: a drop matches the attacked destination prefix and, for FlowSpec-like rules, the
//! protocol and source port. The inline loop checks the drops before the policy, so a matching
//! connection is marked blocked in conntrack and the kernel drops the rest of it.

use std::net::IpAddr;

use bawaba_wire::packet::Packet;
use serde::Serialize;

/// One drop rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MitigationDrop {
    /// The destination network.
    pub dst: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// IP protocols matched (empty: all).
    pub protocols: Vec<u8>,
    /// Source ports matched (empty: all; only TCP and UDP packets carry them).
    pub source_ports: Vec<u16>,
}

impl MitigationDrop {
    /// Whether `packet` is traffic this rule drops.
    pub fn matches(&self, packet: &Packet<'_>) -> bool {
        if !bawaba_policy::IpPrefix::new(self.dst, self.prefix_len).contains(packet.dst) {
            return false;
        }
        if !self.protocols.is_empty() && !self.protocols.contains(&packet.protocol) {
            return false;
        }
        self.source_ports.is_empty() || packet.src_port().is_some_and(|p| self.source_ports.contains(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bawaba_wire::build;

    /// What `matches` asks of the destination.
    fn within(addr: IpAddr, net: IpAddr, len: u8) -> bool {
        bawaba_policy::IpPrefix::new(net, len).contains(addr)
    }

    fn udp(src: &str, dst: &str, sport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let header = build::Header::Udp { src_port: sport, dst_port: 40_000 };
        build::ip_packet(&mut out, src.parse().unwrap(), dst.parse().unwrap(), header, b"x");
        out
    }

    #[test]
    fn drops_match_destination_protocol_and_source_port() {
        let rule = MitigationDrop {
            dst: "198.18.5.5".parse().unwrap(),
            prefix_len: 32,
            protocols: vec![17],
            source_ports: vec![53],
        };
        let hit = udp("198.19.0.1", "198.18.5.5", 53);
        let other_port = udp("198.19.0.1", "198.18.5.5", 123);
        let other_host = udp("198.19.0.1", "198.18.5.6", 53);
        let dissect = |b: &[u8]| bawaba_wire::packet::dissect_ip(b).map(|p| rule.matches(&p)).unwrap();
        assert!(dissect(&hit));
        assert!(!dissect(&other_port));
        assert!(!dissect(&other_host));
        let blackhole = MitigationDrop {
            dst: "198.18.5.0".parse().unwrap(),
            prefix_len: 24,
            protocols: vec![],
            source_ports: vec![],
        };
        assert!(bawaba_wire::packet::dissect_ip(&other_host).map(|p| blackhole.matches(&p)).unwrap());
        assert!(!within("2001:db8::1".parse().unwrap(), "198.18.5.0".parse().unwrap(), 24));
        assert!(within("2001:db8::1".parse().unwrap(), "2001:db8::".parse().unwrap(), 32));
    }
}
