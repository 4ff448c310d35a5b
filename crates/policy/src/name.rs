//! Domain names as policy keys.
//!
//! A [`DomainName`] is the canonical form every part of bawaba compares: lowercase, ASCII only
//! (Unicode labels are converted to IDNA A-labels, `xn--...`, per UTS #46), no trailing dot, each
//! label 1..=63 octets and the whole name at most 253 octets (RFC 1035 section 2.3.4 in text form).
//! Labels hold letters, digits, hyphens and underscores (underscores appear in service names such as
//! `_dmarc`); anything else is refused with an error that says which label and why.

use std::fmt;

use thiserror::Error;

/// Longest name in presentation form without the trailing dot (RFC 1035 section 2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The string is empty (or only a dot: the root is never a policy target).
    #[error("empty domain name")]
    Empty,
    /// The name is longer than 253 octets.
    #[error("domain name is {len} octets long, the limit is 253")]
    TooLong {
        /// Length in octets after normalisation.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error("empty label at byte {offset}")]
    EmptyLabel {
        /// Byte offset of the empty label in the input.
        offset: usize,
    },
    /// A label longer than 63 octets.
    #[error("label at byte {offset} is {len} octets long, the limit is 63")]
    LabelTooLong {
        /// Byte offset of the label in the input.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A character that has no place in a host name.
    #[error("invalid character {ch:?} at byte {offset}")]
    InvalidChar {
        /// Byte offset in the input.
        offset: usize,
        /// The offending character.
        ch: char,
    },
    /// A Unicode name that IDNA (UTS #46) refuses.
    #[error("not a valid internationalised domain name: {0}")]
    Idna(String),
}

/// A validated, canonical domain name (lowercase A-labels, no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(Box<str>);

impl DomainName {
    /// Parses and normalises a name: trailing dot removed, case folded, Unicode converted to
    /// A-labels.
    ///
    /// ```
    /// use bawaba_policy::DomainName;
    /// assert_eq!(DomainName::parse("WWW.Example.TEST.").unwrap().as_str(), "www.example.test");
    /// assert_eq!(DomainName::parse("مثال.إختبار").unwrap().as_str(), "xn--mgbh0fb.xn--kgbechtv");
    /// assert!(DomainName::parse("bad..name").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(name) = canonical_ascii(trimmed.as_bytes()) {
            return Ok(name);
        }
        if trimmed.is_ascii() {
            validate_ascii(trimmed.as_bytes())?;
            return Ok(DomainName(trimmed.to_ascii_lowercase().into_boxed_str()));
        }
        let ascii = idna::domain_to_ascii(trimmed).map_err(|e| NameError::Idna(e.to_string()))?;
        let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_string();
        if ascii.is_empty() {
            return Err(NameError::Empty);
        }
        validate_ascii(ascii.as_bytes())?;
        Ok(DomainName(ascii.into_boxed_str()))
    }

    /// The canonical text, without trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'.').count() + 1
    }

    /// Labels from left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('.')
    }

    /// True when `self` equals `ancestor` or lies below it.
    ///
    /// ```
    /// use bawaba_policy::DomainName;
    /// let a = DomainName::parse("example.test").unwrap();
    /// assert!(DomainName::parse("www.example.test").unwrap().is_within(&a));
    /// assert!(!DomainName::parse("badexample.test").unwrap().is_within(&a));
    /// ```
    pub fn is_within(&self, ancestor: &DomainName) -> bool {
        let (me, anc) = (self.as_str(), ancestor.as_str());
        me == anc || (me.len() > anc.len() && me.ends_with(anc) && me.as_bytes()[me.len() - anc.len() - 1] == b'.')
    }

    /// The name one label up, or `None` for a single-label name.
    pub fn parent(&self) -> Option<DomainName> {
        self.0.split_once('.').map(|(_, rest)| DomainName(rest.into()))
    }
}

/// Label bytes mapped to their lowercase form, `.` to itself, anything else (including every
/// non-ASCII byte) to 0. On label characters the map is one to one.
pub(crate) const CANONICAL: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'A'..=b'Z' => c + 32,
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => c,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// The fast path of [`DomainName::parse`]: a well-formed ASCII name (no trailing dot), lowercased
/// as it is copied once. `None` for anything else, which the slow path converts (Unicode) or
/// refuses with the exact error.
fn canonical_ascii(name: &[u8]) -> Option<DomainName> {
    let folded: Vec<u8> = name.iter().map(|&b| CANONICAL[usize::from(b)]).collect();
    // A byte that folds to 0 is refused as an invalid character.
    validate_ascii(&folded).ok()?;
    String::from_utf8(folded).ok().map(|s| DomainName(s.into_boxed_str()))
}

/// Checks an ASCII name (no trailing dot) against the label rules; returns the normalised length.
pub(crate) fn validate_ascii(name: &[u8]) -> Result<(), NameError> {
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    let mut start = 0;
    for (i, &b) in name.iter().enumerate() {
        match b {
            b'.' => {
                check_label(start, i - start)?;
                start = i + 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => {}
            _ => return Err(NameError::InvalidChar { offset: i, ch: b as char }),
        }
    }
    check_label(start, name.len() - start)
}

fn check_label(offset: usize, len: usize) -> Result<(), NameError> {
    match len {
        0 => Err(NameError::EmptyLabel { offset }),
        1..=MAX_LABEL_LEN => Ok(()),
        _ => Err(NameError::LabelTooLong { offset, len }),
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DomainName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DomainName::parse(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DomainName::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(n: DomainName) -> String {
        n.0.into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        assert_eq!(DomainName::parse("A.B.C.").unwrap().as_str(), "a.b.c");
    }

    #[test]
    fn converts_unicode_to_a_labels() {
        assert_eq!(DomainName::parse("bücher.example").unwrap().as_str(), "xn--bcher-kva.example");
        // Already-encoded names pass unchanged (lowercased).
        assert_eq!(DomainName::parse("XN--BCHER-KVA.example").unwrap().as_str(), "xn--bcher-kva.example");
    }

    #[test]
    fn rejects_malformed_names_with_position() {
        assert_eq!(DomainName::parse(""), Err(NameError::Empty));
        assert_eq!(DomainName::parse("."), Err(NameError::Empty));
        assert_eq!(DomainName::parse("a..b"), Err(NameError::EmptyLabel { offset: 2 }));
        assert_eq!(DomainName::parse(".a"), Err(NameError::EmptyLabel { offset: 0 }));
        assert_eq!(DomainName::parse("a b.c"), Err(NameError::InvalidChar { offset: 1, ch: ' ' }));
        let long_label = format!("{}.test", "x".repeat(64));
        assert_eq!(DomainName::parse(&long_label), Err(NameError::LabelTooLong { offset: 0, len: 64 }));
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(DomainName::parse(&long_name), Err(NameError::TooLong { len: 259 })));
    }

    proptest::proptest! {
        /// The one-pass ASCII path accepts exactly what the label rules accept, and lowercases.
        #[test]
        fn fast_path_agrees_with_the_label_rules(name in "[a-zA-Z0-9_.~ -]{0,70}") {
            let fast = canonical_ascii(name.as_bytes());
            let checked = validate_ascii(name.as_bytes()).is_ok() && !name.is_empty();
            proptest::prop_assert_eq!(fast.is_some(), checked, "{:?}", name);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast.as_str(), name.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn ancestry() {
        let t = DomainName::parse("example.test").unwrap();
        assert!(t.is_within(&t));
        assert!(DomainName::parse("a.b.example.test").unwrap().is_within(&t));
        assert!(!DomainName::parse("xexample.test").unwrap().is_within(&t));
        assert!(!t.is_within(&DomainName::parse("www.example.test").unwrap()));
        assert_eq!(t.parent().unwrap().as_str(), "test");
        assert_eq!(t.label_count(), 2);
    }
}
