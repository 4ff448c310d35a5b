//! The fixed-size bundle header (format version 1): layout, parsing and emitting.
//!
//! See `docs/specs/bundle-format.md` for the byte-level table. All integers are big-endian.

use std::fmt;

use crate::error::BundleError;

/// The first eight bytes of every bundle: `\x89BAWABA\n`. The high first byte catches 7-bit
/// transfers, the newline catches line-ending conversion (the PNG trick).
pub const MAGIC: [u8; 8] = *b"\x89BAWABA\n";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the format-1 header in bytes; the payload starts here.
pub const HEADER_LEN: usize = 148;
/// Length of the ed25519 signature that ends every bundle.
pub const SIGNATURE_LEN: usize = 64;

// Field offsets (format version 1).
const OFF_FLAGS: usize = 11;
const OFF_POLICY_VERSION: usize = 12;
const OFF_PAYLOAD_LEN: usize = 28;
const OFF_DECODED_LEN: usize = 36;
const OFF_AUDIT_SEQ: usize = 108;

/// Flag bit 0: the audit-head fields are meaningful.
const FLAG_AUDIT_HEAD: u8 = 0x01;

/// How the payload bytes encode the [`bawaba_policy::PolicySnapshot`] (header byte 10).
///
/// A newtype rather than an enum so that [`crate::inspect`] can report a codepoint from a newer
/// writer instead of failing on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadEncoding(pub u8);

impl PayloadEncoding {
    /// The snapshot serialized with postcard (serde, varint integers), uncompressed.
    pub const POSTCARD: PayloadEncoding = PayloadEncoding(0);
    /// The postcard bytes compressed with raw DEFLATE (RFC 1951).
    pub const POSTCARD_DEFLATE: PayloadEncoding = PayloadEncoding(1);

    /// True for the encodings this build decodes.
    pub fn is_known(self) -> bool {
        self == Self::POSTCARD || self == Self::POSTCARD_DEFLATE
    }
}

impl fmt::Display for PayloadEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::POSTCARD => f.pad("postcard"),
            Self::POSTCARD_DEFLATE => f.pad("postcard+deflate"),
            PayloadEncoding(other) => f.pad(&format!("unknown({other})")),
        }
    }
}

/// An ed25519 public key as named in a bundle header; displays as its first 8 bytes in hex
/// followed by `…`, which is how operators compare it with a `.pub` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The whole key in hex (64 digits), as in a `.pub` file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", hex::encode(&self.0[..8]))
    }
}

/// What a bundle header says. Parsing it proves nothing: only [`crate::verify`] makes it trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleHeader {
    /// Format version (always [`FORMAT_VERSION`] for a parsed header).
    pub format_version: u16,
    /// How the payload is encoded.
    pub encoding: PayloadEncoding,
    /// The policy version (equals the snapshot's `version`); enforcement points only move forward.
    pub policy_version: u64,
    /// When the bundle was signed (Unix seconds, UTC).
    pub created_at: i64,
    /// Length of the payload as stored, in bytes.
    pub payload_len: u64,
    /// Length of the payload after decompression (equals `payload_len` when uncompressed).
    pub decoded_len: u64,
    /// SHA-256 of the payload as stored: the bundle's content address.
    pub payload_sha256: [u8; 32],
    /// The public key that signed the bundle.
    pub signer: KeyId,
    /// The audit-log head the snapshot was taken at: sequence number and entry hash.
    pub audit_head: Option<(u64, [u8; 32])>,
}

impl BundleHeader {
    /// Total length of a bundle with this header: header, payload and signature.
    pub fn bundle_len(&self) -> u64 {
        // parse() and sign() bound payload_len to 4 GiB; saturate for hand-built headers.
        ((HEADER_LEN + SIGNATURE_LEN) as u64).saturating_add(self.payload_len)
    }

    /// The content-addressed file name:
    /// `bawaba-policy-v{version:08}-{first 16 hex digits of the payload SHA-256}.bundle`.
    pub fn file_name(&self) -> String {
        format!("bawaba-policy-v{:08}-{}.bundle", self.policy_version, self.short_hash())
    }

    /// The first 16 hex digits of the payload SHA-256.
    pub fn short_hash(&self) -> String {
        hex::encode(&self.payload_sha256[..8])
    }

    /// Emits the header bytes.
    pub(crate) fn emit(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer { buf: &mut out, offset: 0 };
        w.put(&MAGIC);
        w.put(&self.format_version.to_be_bytes());
        w.put(&[self.encoding.0]);
        w.put(&[if self.audit_head.is_some() { FLAG_AUDIT_HEAD } else { 0 }]);
        w.put(&self.policy_version.to_be_bytes());
        w.put(&self.created_at.to_be_bytes());
        w.put(&self.payload_len.to_be_bytes());
        w.put(&self.decoded_len.to_be_bytes());
        w.put(&self.payload_sha256);
        w.put(&self.signer.0);
        let (seq, hash) = self.audit_head.unwrap_or((0, [0; 32]));
        w.put(&seq.to_be_bytes());
        w.put(&hash);
        debug_assert_eq!(w.offset, HEADER_LEN);
        out
    }

    /// Parses the header at the start of `bytes` (which may be a whole bundle or just its start).
    ///
    /// Checks, in order: the magic, the format version, then every field. Checks nothing about
    /// the length of what follows; see [`crate::inspect`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let start = &bytes[..bytes.len().min(MAGIC.len())];
        if start != &MAGIC[..start.len()] {
            return Err(BundleError::BadMagic { found: hex::encode(start), expected: hex::encode(MAGIC) });
        }
        let truncated = || BundleError::Truncated { expected: HEADER_LEN as u64, actual: bytes.len() as u64 };
        let mut r = Reader { bytes, offset: MAGIC.len() };
        let format_version = u16::from_be_bytes(r.array().ok_or_else(truncated)?);
        if format_version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedFormat { found: format_version, supported: FORMAT_VERSION });
        }
        if bytes.len() < HEADER_LEN {
            return Err(truncated());
        }
        // From here on every read is within the header: the length was checked above.
        let [encoding] = r.array().ok_or_else(truncated)?;
        let [flags] = r.array().ok_or_else(truncated)?;
        if flags & !FLAG_AUDIT_HEAD != 0 {
            return Err(header_error(OFF_FLAGS, "flags", "unknown flag bits are set"));
        }
        let policy_version = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
        let created_at = i64::from_be_bytes(r.array().ok_or_else(truncated)?);
        let payload_len = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
        let decoded_len = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
        let payload_sha256 = r.array().ok_or_else(truncated)?;
        let signer = KeyId(r.array().ok_or_else(truncated)?);
        let seq = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
        let hash: [u8; 32] = r.array().ok_or_else(truncated)?;
        debug_assert_eq!(r.offset, HEADER_LEN);

        if policy_version == 0 {
            return Err(header_error(OFF_POLICY_VERSION, "policy_version", "version 0 is never published"));
        }
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(header_error(OFF_PAYLOAD_LEN, "payload_len", "larger than the 4 GiB limit"));
        }
        if decoded_len > MAX_PAYLOAD_LEN {
            return Err(header_error(OFF_DECODED_LEN, "decoded_len", "larger than the 4 GiB limit"));
        }
        let encoding = PayloadEncoding(encoding);
        if encoding == PayloadEncoding::POSTCARD && decoded_len != payload_len {
            return Err(header_error(
                OFF_DECODED_LEN,
                "decoded_len",
                "differs from payload_len for an uncompressed payload",
            ));
        }
        let audit_head = if flags & FLAG_AUDIT_HEAD != 0 {
            Some((seq, hash))
        } else if seq != 0 || hash != [0; 32] {
            return Err(header_error(OFF_AUDIT_SEQ, "audit_head", "set although flag bit 0 says absent"));
        } else {
            None
        };
        Ok(BundleHeader {
            format_version,
            encoding,
            policy_version,
            created_at,
            payload_len,
            decoded_len,
            payload_sha256,
            signer,
            audit_head,
        })
    }
}

impl fmt::Display for BundleHeader {
    /// One line for operators, e.g. `policy version 42, created at 1800000000 (Unix), signer
    /// 3f2a9c0d11e47b65…, 28.4 MiB postcard+deflate (46.6 MiB decoded), payload sha256 ab12…, audit head 12:5a5a…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |n: u64| n as f64 / 1_048_576.0;
        write!(
            f,
            "policy version {}, created at {} (Unix), signer {}, {:.1} MiB {} ({:.1} MiB decoded), payload sha256 {}",
            self.policy_version,
            self.created_at,
            self.signer,
            mib(self.payload_len),
            self.encoding,
            mib(self.decoded_len),
            hex::encode(self.payload_sha256),
        )?;
        match self.audit_head {
            Some((seq, hash)) => write!(f, ", audit head {seq}:{}", hex::encode(hash)),
            None => f.write_str(", no audit head"),
        }
    }
}

/// The largest payload (stored or decoded) a format-1 bundle may carry: 4 GiB.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 32;

fn header_error(offset: usize, field: &'static str, reason: &'static str) -> BundleError {
    BundleError::Header { offset, field, reason }
}

/// A copyable cursor over input bytes with an absolute offset.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    /// Reads the next `N` bytes, or `None` when fewer remain.
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.offset.checked_add(N)?;
        let out: [u8; N] = self.bytes.get(self.offset..end)?.try_into().ok()?;
        self.offset = end;
        Some(out)
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    offset: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.offset..self.offset + bytes.len()].copy_from_slice(bytes);
        self.offset += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BundleHeader {
        BundleHeader {
            format_version: FORMAT_VERSION,
            encoding: PayloadEncoding::POSTCARD_DEFLATE,
            policy_version: 42,
            created_at: 1_800_000_000,
            payload_len: 1000,
            decoded_len: 5000,
            payload_sha256: [0xab; 32],
            signer: KeyId([7; 32]),
            audit_head: Some((99, [0xcd; 32])),
        }
    }

    #[test]
    fn emit_parse_round_trip() {
        let h = header();
        let bytes = h.emit();
        assert_eq!(&bytes[..8], b"\x89BAWABA\n");
        assert_eq!(BundleHeader::parse(&bytes).unwrap(), h);
        let h = BundleHeader { audit_head: None, ..header() };
        assert_eq!(BundleHeader::parse(&h.emit()).unwrap(), h);
        assert_eq!(h.file_name(), "bawaba-policy-v00000042-abababababababab.bundle");
        let line = h.to_string();
        assert!(
            line.starts_with("policy version 42, created at 1800000000 (Unix), signer 0707070707070707…"),
            "{line}"
        );
        assert!(line.ends_with("no audit head"), "{line}");
    }

    #[test]
    fn field_offsets_match_the_spec() {
        let bytes = header().emit();
        assert_eq!(u16::from_be_bytes([bytes[8], bytes[9]]), 1);
        assert_eq!(bytes[10], 1);
        assert_eq!(bytes[OFF_FLAGS], 1);
        assert_eq!(bytes[19], 42);
        assert_eq!(&bytes[44..76], &[0xab; 32]);
        assert_eq!(&bytes[76..108], &[7; 32]);
        assert_eq!(bytes[OFF_AUDIT_SEQ + 7], 99);
        assert_eq!(&bytes[116..148], &[0xcd; 32]);
    }

    #[test]
    fn refuses_bad_fields_with_offsets() {
        let mut bytes = header().emit();
        bytes[OFF_FLAGS] = 0x81;
        assert!(matches!(BundleHeader::parse(&bytes), Err(BundleError::Header { offset: 11, .. })));
        let mut bytes = BundleHeader { audit_head: None, ..header() }.emit();
        bytes[120] = 1;
        assert!(matches!(BundleHeader::parse(&bytes), Err(BundleError::Header { offset: 108, .. })));
        let mut bytes = header().emit();
        bytes[9] = 2;
        assert!(matches!(BundleHeader::parse(&bytes), Err(BundleError::UnsupportedFormat { found: 2, .. })));
        let e = BundleHeader::parse(b"PK\x03\x04").unwrap_err();
        assert!(e.to_string().contains("not a bawaba policy bundle"), "{e}");
        let e = BundleHeader::parse(&header().emit()[..100]).unwrap_err();
        assert!(matches!(e, BundleError::Truncated { expected: 148, actual: 100 }), "{e}");
        assert!(matches!(BundleHeader::parse(&[]), Err(BundleError::Truncated { actual: 0, .. })));
    }
}
