//! The protected networks: which customer group, and which of its prefixes, a destination
//! belongs to (longest match).

use std::collections::HashMap;
use std::net::IpAddr;

use bawaba_bgp::Prefix;

use crate::config::{ConfigError, GroupConfig};

/// One protected prefix and the group that listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPrefix {
    /// The prefix.
    pub prefix: Prefix,
    /// Index of its group in the configuration.
    pub group: usize,
}

/// The protected networks of all groups, indexed for longest-prefix lookup: one hash probe per
/// distinct prefix length in use, longest first.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    groups: Vec<String>,
    prefixes: Vec<ProtectedPrefix>,
    /// Distinct IPv4 prefix lengths, longest first.
    lens_v4: Vec<u8>,
    /// Distinct IPv6 prefix lengths, longest first.
    lens_v6: Vec<u8>,
    v4: HashMap<(u32, u8), u32, foldhash::fast::RandomState>,
    v6: HashMap<(u128, u8), u32, foldhash::fast::RandomState>,
}

fn mask_v4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask_v6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len)))
    }
}

impl Protected {
    /// Indexes the groups' prefixes. Names must be unique and non-empty, prefixes must parse
    /// and appear once.
    pub fn new(groups: &[GroupConfig]) -> Result<Protected, ConfigError> {
        if groups.len() > usize::from(u16::MAX) {
            return Err(ConfigError::TooMany { what: "groups", max: usize::from(u16::MAX) });
        }
        let mut p = Protected::default();
        for (g, group) in groups.iter().enumerate() {
            if group.name.is_empty() || p.groups.contains(&group.name) {
                return Err(ConfigError::GroupName { name: group.name.clone() });
            }
            p.groups.push(group.name.clone());
            for text in &group.prefixes {
                let prefix = Prefix::parse(text.trim())
                    .ok_or_else(|| ConfigError::BadPrefix { place: group.name.clone(), value: text.clone() })?;
                if let Some(i) = p.exact(&prefix) {
                    return Err(ConfigError::DuplicatePrefix {
                        prefix: prefix.to_string(),
                        first: p.groups[p.prefixes[i].group].clone(),
                        second: group.name.clone(),
                    });
                }
                let index = u32::try_from(p.prefixes.len())
                    .map_err(|_| ConfigError::TooMany { what: "prefixes", max: u32::MAX as usize })?;
                match prefix.addr {
                    IpAddr::V4(a) => {
                        p.v4.insert((u32::from(a), prefix.len), index);
                        p.lens_v4.push(prefix.len);
                    }
                    IpAddr::V6(a) => {
                        p.v6.insert((u128::from(a), prefix.len), index);
                        p.lens_v6.push(prefix.len);
                    }
                }
                p.prefixes.push(ProtectedPrefix { prefix, group: g });
            }
        }
        for lens in [&mut p.lens_v4, &mut p.lens_v6] {
            lens.sort_unstable_by(|a, b| b.cmp(a));
            lens.dedup();
        }
        Ok(p)
    }

    fn exact(&self, prefix: &Prefix) -> Option<usize> {
        let found = match prefix.addr {
            IpAddr::V4(a) => self.v4.get(&(u32::from(a), prefix.len)),
            IpAddr::V6(a) => self.v6.get(&(u128::from(a), prefix.len)),
        };
        found.map(|&i| i as usize)
    }

    /// The index (into [`Protected::prefixes`]) of the longest protected prefix covering
    /// `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<usize> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.lens_v4.iter().find_map(|&len| self.v4.get(&(mask_v4(a, len), len))).map(|&i| i as usize)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.lens_v6.iter().find_map(|&len| self.v6.get(&(mask_v6(a, len), len))).map(|&i| i as usize)
            }
        }
    }

    /// Whether all of `prefix` lies inside one protected prefix.
    pub fn covers(&self, prefix: &Prefix) -> bool {
        self.lookup(prefix.addr).is_some_and(|i| prefix.within(&self.prefixes[i].prefix))
    }

    /// The name of the group of `addr`, if it is protected.
    pub fn group_of(&self, addr: IpAddr) -> Option<&str> {
        self.lookup(addr).map(|i| self.groups[self.prefixes[i].group].as_str())
    }

    /// Every protected prefix, in configuration order.
    pub fn prefixes(&self) -> &[ProtectedPrefix] {
        &self.prefixes
    }

    /// The group names, in configuration order.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::Thresholds;

    fn group(name: &str, prefixes: &[&str]) -> GroupConfig {
        GroupConfig {
            name: name.into(),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            thresholds: Thresholds::default(),
            total: Thresholds::default(),
        }
    }

    #[test]
    fn longest_match_wins_and_matches_a_linear_scan() {
        let p = Protected::new(&[
            group("a", &["198.18.0.0/15", "2001:db8::/32"]),
            group("b", &["198.18.7.0/24", "198.18.7.128/32", "2001:db8:5::/48"]),
        ])
        .unwrap();
        let cases = [
            ("198.18.7.128", Some("b")),
            ("198.18.7.1", Some("b")),
            ("198.19.255.255", Some("a")),
            ("198.20.0.0", None),
            ("2001:db8:5::1", Some("b")),
            ("2001:db8:6::1", Some("a")),
            ("2001:db9::", None),
            ("10.0.0.1", None),
        ];
        for (addr, want) in cases {
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(p.group_of(addr), want, "{addr}");
            // The obvious twin: the longest covering prefix by a linear scan.
            let linear = p
                .prefixes()
                .iter()
                .enumerate()
                .filter(|(_, pp)| Prefix::new(addr, pp.prefix.len) == Some(pp.prefix))
                .max_by_key(|(_, pp)| pp.prefix.len)
                .map(|(i, _)| i);
            assert_eq!(p.lookup(addr), linear, "{addr}");
        }
        assert!(p.covers(&Prefix::parse("198.18.7.0/25").unwrap()));
        assert!(p.covers(&Prefix::parse("198.18.0.0/15").unwrap()));
        assert!(!p.covers(&Prefix::parse("198.16.0.0/14").unwrap()));
        assert!(!p.covers(&Prefix::parse("0.0.0.0/0").unwrap()));
    }

    #[test]
    fn bad_groups_are_refused() {
        assert!(matches!(Protected::new(&[group("a", &["198.18.0.0/33"])]), Err(ConfigError::BadPrefix { .. })));
        assert!(matches!(Protected::new(&[group("a", &[]), group("a", &[])]), Err(ConfigError::GroupName { .. })));
        assert!(matches!(
            Protected::new(&[group("a", &["198.18.0.0/16"]), group("b", &["198.18.1.1/16"])]),
            Err(ConfigError::DuplicatePrefix { .. })
        ));
    }
}
