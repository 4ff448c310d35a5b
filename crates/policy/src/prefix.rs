//! IP prefixes as policy keys.
//!
//! An [`IpPrefix`] is an address family, a network address with its host bits zero, and a length.
//! Parsing is strict: `198.18.0.1/24` is refused (host bits set) rather than silently widened, since
//! in a blocking order the operator must mean exactly what is written.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Why a string is not a usable prefix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// The address part does not parse.
    #[error("invalid IP address {0:?}")]
    Address(String),
    /// The length part is not a number in range for the family.
    #[error("invalid prefix length {len:?} (IPv4 allows 0-32, IPv6 0-128)")]
    Length {
        /// The length text as written.
        len: String,
    },
    /// Bits beyond the prefix length are set.
    #[error("host bits set in {input}: did you mean {suggestion}?")]
    HostBits {
        /// The input.
        input: String,
        /// The same prefix with host bits cleared.
        suggestion: String,
    },
}

/// An IPv4 or IPv6 prefix with host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IpPrefix {
    /// IPv4 network as a host-order integer and a length 0..=32.
    V4 {
        /// Network address, host bits zero.
        addr: u32,
        /// Prefix length.
        len: u8,
    },
    /// IPv6 network as a host-order integer and a length 0..=128.
    V6 {
        /// Network address, host bits zero.
        addr: u128,
        /// Prefix length.
        len: u8,
    },
}

/// The mask with the top `len` of 32 bits set.
pub fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// The mask with the top `len` of 128 bits set.
pub fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl IpPrefix {
    /// Parses `addr/len`, or a bare address as a host prefix (/32 or /128).
    ///
    /// ```
    /// use bawaba_policy::IpPrefix;
    /// let p: IpPrefix = "198.18.0.0/15".parse().unwrap();
    /// assert!(p.contains("198.19.255.1".parse().unwrap()));
    /// assert_eq!("2001:db8::1".parse::<IpPrefix>().unwrap().to_string(), "2001:db8::1/128");
    /// assert!("198.18.0.1/24".parse::<IpPrefix>().is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, PrefixError> {
        let (addr_text, len_text) = match input.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (input, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| PrefixError::Address(addr_text.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(PrefixError::Length { len: l.to_string() }),
            },
        };
        let exact = IpPrefix::new(addr, len);
        if exact.network() != addr {
            return Err(PrefixError::HostBits { input: input.to_string(), suggestion: exact.to_string() });
        }
        Ok(exact)
    }

    /// Builds a prefix from any address, clearing host bits. `len` is clamped to the family maximum.
    pub fn new(addr: IpAddr, len: u8) -> Self {
        match addr {
            IpAddr::V4(a) => {
                let len = len.min(32);
                IpPrefix::V4 { addr: u32::from(a) & mask4(len), len }
            }
            IpAddr::V6(a) => {
                let len = len.min(128);
                IpPrefix::V6 { addr: u128::from(a) & mask6(len), len }
            }
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        match *self {
            IpPrefix::V4 { addr, .. } => IpAddr::V4(Ipv4Addr::from(addr)),
            IpPrefix::V6 { addr, .. } => IpAddr::V6(Ipv6Addr::from(addr)),
        }
    }

    /// The prefix length (a bit count, not a collection size: there is no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        match *self {
            IpPrefix::V4 { len, .. } | IpPrefix::V6 { len, .. } => len,
        }
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_default_route(&self) -> bool {
        self.len() == 0
    }

    /// True when `addr` lies inside this prefix (always false across families).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (IpPrefix::V4 { addr: net, len }, IpAddr::V4(a)) => u32::from(a) & mask4(len) == net,
            (IpPrefix::V6 { addr: net, len }, IpAddr::V6(a)) => u128::from(a) & mask6(len) == net,
            _ => false,
        }
    }

    /// True when `other` lies inside (or equals) this prefix.
    pub fn covers(&self, other: &IpPrefix) -> bool {
        self.len() <= other.len() && self.contains(other.network())
    }

    /// True when the two prefixes share any address.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len())
    }
}

impl std::str::FromStr for IpPrefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IpPrefix::parse(s)
    }
}

impl TryFrom<String> for IpPrefix {
    type Error = PrefixError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        IpPrefix::parse(&s)
    }
}

impl From<IpPrefix> for String {
    fn from(p: IpPrefix) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let p = IpPrefix::parse("198.18.0.0/16").unwrap();
        assert_eq!(p, IpPrefix::V4 { addr: 0xC612_0000, len: 16 });
        assert_eq!(p.to_string(), "198.18.0.0/16");
        assert_eq!(IpPrefix::parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(IpPrefix::parse("0.0.0.0/0").unwrap().len(), 0);
    }

    #[test]
    fn refuses_host_bits_and_bad_lengths() {
        assert_eq!(
            IpPrefix::parse("198.18.0.1/24"),
            Err(PrefixError::HostBits { input: "198.18.0.1/24".into(), suggestion: "198.18.0.0/24".into() })
        );
        assert!(matches!(IpPrefix::parse("198.18.0.0/33"), Err(PrefixError::Length { .. })));
        assert!(matches!(IpPrefix::parse("2001:db8::/129"), Err(PrefixError::Length { .. })));
        assert!(matches!(IpPrefix::parse("nonsense/8"), Err(PrefixError::Address(_))));
    }

    #[test]
    fn containment() {
        let p = IpPrefix::parse("2001:db8:1::/48").unwrap();
        assert!(p.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!p.contains("2001:db8:2::1".parse().unwrap()));
        assert!(!p.contains("198.18.0.1".parse().unwrap()));
        assert!(p.covers(&IpPrefix::parse("2001:db8:1:2::/64").unwrap()));
        assert!(!IpPrefix::parse("2001:db8:1:2::/64").unwrap().covers(&p));
    }
}
