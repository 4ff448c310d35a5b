//! QUIC client Initial packets: enough of QUIC to read the TLS ClientHello a client sends.
//!
//! QUIC carries the TLS handshake in CRYPTO frames inside Initial packets, encrypted with keys
//! anyone can derive from the packet's Destination Connection ID (RFC 9001 section 5.2). This
//! module reads those packets without I/O and without allocating, in four layers:
//!
//! - [`packets`] walks the long-header packets coalesced in one UDP datagram (RFC 9000 sections
//!   12.2 and 17.2) and yields a [`LongPacket`] view of each.
//! - [`InitialKeys`] derives the Initial keys (RFC 9001 section 5.2 for QUIC v1, RFC 9369
//!   section 3.3 for QUIC v2), removes header protection (RFC 9001 section 5.4) and opens the
//!   AES-128-GCM payload (RFC 9001 section 5.3) into a caller's buffer.
//!   [`decrypt_client_initial`] does both for a client's packet.
//! - [`Frames`] walks the frames of a decrypted Initial payload (RFC 9000 section 19) and
//!   [`CryptoFrames`] keeps only the CRYPTO frames.
//! - [`CryptoReassembly`] puts CRYPTO data from several packets, in any order, back into the
//!   first bytes of the handshake stream, in a fixed buffer, and says when the first handshake
//!   message (the ClientHello) is complete.
//!
//! Byte offsets in errors count from the start of the buffer handed to the function that
//! returned them: the datagram for [`packets`], the packet for [`InitialKeys::decrypt`], the
//! packet for the frames of an [`Initial`] and the stream for [`CryptoReassembly`].
//!
//! ```
//! use bawaba_wire::quic::{self, CryptoReassembly, FirstMessage, InitialHeader, InitialKeys, Version};
//!
//! // A client builds an Initial carrying a (tiny, fake) ClientHello in one CRYPTO frame.
//! let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
//! let keys = InitialKeys::client(Version::V1, &dcid).unwrap();
//! let hello = [0x01, 0x00, 0x00, 0x02, 0x03, 0x03];
//! let mut payload = vec![0x06, 0x00, hello.len() as u8];
//! payload.extend_from_slice(&hello);
//! payload.resize(1162, 0); // PADDING
//! let header = InitialHeader { dcid: &dcid, scid: &[], token: &[], packet_number: 0 };
//! let mut datagram = [0u8; 1200];
//! let len = keys.seal(&header, &payload, &mut datagram).unwrap();
//! assert_eq!(len, 1200);
//!
//! // A middlebox opens it.
//! let mut reassembly = CryptoReassembly::new();
//! let mut out = [0u8; 1500];
//! for packet in quic::packets(&datagram) {
//!     let packet = packet.unwrap();
//!     let initial = quic::decrypt_client_initial(packet.bytes, &mut out).unwrap();
//!     reassembly.insert_packet(&initial).unwrap();
//! }
//! assert_eq!(reassembly.first_message(), FirstMessage::Complete(&hello[..]));
//! ```

use std::fmt;

use thiserror::Error;

mod crypto;
mod frame;
mod header;
mod reassembly;
#[cfg(test)]
mod vectors;

pub use crypto::{decrypt_client_initial, Initial, InitialHeader, InitialKeys};
pub use frame::{Ack, ConnectionClose, CryptoFrame, CryptoFrames, Frame, Frames};
pub use header::{packets, LongHeader, LongPacket, PacketType, Packets};
pub use reassembly::{CryptoReassembly, FirstMessage};

/// Longest connection ID in QUIC v1 and v2 (RFC 9000 section 17.2).
pub const MAX_CID_LEN: usize = 20;
/// Length of the AES-128-GCM authentication tag at the end of every protected packet.
pub const TAG_LEN: usize = 16;
/// Largest value a variable-length integer can hold, 2^62 - 1 (RFC 9000 section 16).
pub const MAX_VARINT: u64 = (1 << 62) - 1;

/// Why bytes are not a QUIC Initial packet, or its frames cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QuicError {
    /// The bytes end inside a field.
    #[error("QUIC data truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// The field being read.
        what: &'static str,
    },
    /// The header form bit is 0: a short-header (1-RTT) packet where a long header was wanted.
    #[error("byte {offset} starts a short-header packet, not a long-header one")]
    NotLongHeader {
        /// Where the packet starts.
        offset: usize,
    },
    /// A version other than QUIC v1 and v2, or a Version Negotiation packet (version 0).
    #[error("unsupported QUIC version 0x{version:08x} at byte {offset}")]
    UnsupportedVersion {
        /// Where the version field starts.
        offset: usize,
        /// The version field.
        version: u32,
    },
    /// A connection ID longer than 20 bytes (RFC 9000 section 17.2).
    #[error("connection ID of {len} bytes at byte {offset}; at most 20 are allowed")]
    ConnectionIdTooLong {
        /// Where the length byte is.
        offset: usize,
        /// The length byte.
        len: u8,
    },
    /// A packet type this module does not open here: not an Initial, or a Retry (which has no
    /// Length field, so nothing after it can be found).
    #[error("unexpected {packet_type:?} packet at byte {offset}")]
    BadPacketType {
        /// Where the packet starts.
        offset: usize,
        /// What the type bits say.
        packet_type: PacketType,
    },
    /// Keys derived for one version were used on a packet of another.
    #[error("packet at byte {offset} is {packet} but the keys are for {keys}")]
    VersionMismatch {
        /// Where the packet starts.
        offset: usize,
        /// The packet's version.
        packet: Version,
        /// The keys' version.
        keys: Version,
    },
    /// The output buffer cannot hold the packet.
    #[error("output buffer of {available} bytes cannot hold {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// AEAD authentication failed: wrong keys (for example a different Destination Connection
    /// ID), or the packet was altered.
    #[error("packet at byte {offset} failed authentication")]
    DecryptionFailed {
        /// Where the packet starts.
        offset: usize,
    },
    /// The reserved header bits are not zero after header protection was removed (RFC 9000
    /// section 17.2).
    #[error("reserved bits set in the first byte 0x{first_byte:02x} at byte {offset}")]
    ReservedBits {
        /// Where the packet starts.
        offset: usize,
        /// The unprotected first byte.
        first_byte: u8,
    },
    /// A frame type that is not allowed in Initial packets (RFC 9000 section 17.2.2, table 3).
    #[error("frame type 0x{frame_type:x} at byte {offset} is not allowed in an Initial packet")]
    UnexpectedFrame {
        /// Where the frame starts.
        offset: usize,
        /// The frame type.
        frame_type: u64,
    },
    /// A frame whose fields are inconsistent (RFC 9000 section 19), for example an ACK range
    /// below packet number 0 or stream data beyond 2^62 - 1.
    #[error("malformed frame of type 0x{frame_type:x} at byte {offset}")]
    MalformedFrame {
        /// Where the frame starts.
        offset: usize,
        /// The frame type.
        frame_type: u64,
    },
    /// CRYPTO data past the end of the reassembly buffer. The part that fits was kept.
    #[error("CRYPTO data {offset}..{end} goes past the reassembly capacity of {capacity} bytes")]
    CryptoBeyondCapacity {
        /// Stream offset of the data.
        offset: u64,
        /// Stream offset just past the data.
        end: u64,
        /// The reassembly buffer's size.
        capacity: usize,
    },
    /// CRYPTO data that differs from data already received at the same stream offset (RFC 9000
    /// section 2.2 allows treating this as a PROTOCOL_VIOLATION). Nothing of the frame was kept.
    #[error("CRYPTO data at stream offset {offset} differs from data received before")]
    CryptoConflict {
        /// The first stream offset that differs.
        offset: u64,
    },
}

impl QuicError {
    /// The same error with its byte offset moved by `by`, for errors found in a sub-slice.
    pub(crate) fn shifted(self, by: usize) -> QuicError {
        use QuicError::*;
        match self {
            Truncated { offset, what } => Truncated { offset: offset + by, what },
            NotLongHeader { offset } => NotLongHeader { offset: offset + by },
            UnsupportedVersion { offset, version } => UnsupportedVersion { offset: offset + by, version },
            ConnectionIdTooLong { offset, len } => ConnectionIdTooLong { offset: offset + by, len },
            BadPacketType { offset, packet_type } => BadPacketType { offset: offset + by, packet_type },
            VersionMismatch { offset, packet, keys } => VersionMismatch { offset: offset + by, packet, keys },
            DecryptionFailed { offset } => DecryptionFailed { offset: offset + by },
            ReservedBits { offset, first_byte } => ReservedBits { offset: offset + by, first_byte },
            UnexpectedFrame { offset, frame_type } => UnexpectedFrame { offset: offset + by, frame_type },
            MalformedFrame { offset, frame_type } => MalformedFrame { offset: offset + by, frame_type },
            other @ (BufferTooSmall { .. } | CryptoBeyondCapacity { .. } | CryptoConflict { .. }) => other,
        }
    }
}

/// A QUIC version number (RFC 9000 section 15). Unknown values survive; only [`Version::V1`]
/// and [`Version::V2`] have Initial keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u32);

impl Version {
    /// The value in Version Negotiation packets (RFC 9000 section 17.2.1).
    pub const NEGOTIATION: Version = Version(0);
    /// QUIC version 1 (RFC 9000).
    pub const V1: Version = Version(0x0000_0001);
    /// QUIC version 2 (RFC 9369 section 3.1).
    pub const V2: Version = Version(0x6b33_43cf);

    /// True for the versions this module can decrypt.
    pub fn is_supported(self) -> bool {
        self == Version::V1 || self == Version::V2
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Version::V1 => f.write_str("V1"),
            Version::V2 => f.write_str("V2"),
            Version::NEGOTIATION => f.write_str("NEGOTIATION"),
            Version(other) => write!(f, "Version(0x{other:08x})"),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Version::V1 => f.write_str("QUIC v1"),
            Version::V2 => f.write_str("QUIC v2"),
            Version(other) => write!(f, "QUIC version 0x{other:08x}"),
        }
    }
}

/// A `Copy` cursor over a byte slice that reports absolute offsets (`base` + position).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`, whose first byte is at offset `base` of the caller's buffer.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Position within the slice.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, what: &'static str) -> QuicError {
        QuicError::Truncated { offset: self.offset(), what }
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, QuicError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], QuicError> {
        if self.remaining() < n {
            return Err(self.truncated(what));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Skips a run of zero bytes and returns its length.
    pub(crate) fn skip_zeros(&mut self) -> usize {
        let n = self.buf[self.pos..].iter().take_while(|&&b| b == 0).count();
        self.pos += n;
        n
    }

    /// Reads a big-endian u32.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, QuicError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a variable-length integer (RFC 9000 section 16): the two high bits of the first
    /// byte give the length, 1, 2, 4 or 8 bytes.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, QuicError> {
        let start = *self;
        let first = self.u8(what)?;
        let len = 1usize << (first >> 6);
        let rest = match self.bytes(len - 1, what) {
            Ok(rest) => rest,
            Err(_) => return Err(start.truncated(what)),
        };
        let mut value = u64::from(first & 0x3f);
        for &b in rest {
            value = (value << 8) | u64::from(b);
        }
        Ok(value)
    }

    /// Reads a varint used as a length of bytes that follow, as a `usize`.
    pub(crate) fn varint_len(&mut self, what: &'static str) -> Result<usize, QuicError> {
        let start = *self;
        let v = self.varint(what)?;
        // A length beyond what is left can never be satisfied; report it where it was read.
        usize::try_from(v).ok().filter(|&n| n <= self.remaining()).ok_or_else(|| start.truncated(what))
    }
}

/// Appends `value` as a variable-length integer of exactly `len` bytes (1, 2, 4 or 8), or
/// returns `None` if it does not fit.
pub(crate) fn put_varint(out: &mut [u8], value: u64, len: usize) -> Option<()> {
    let prefix: u8 = match len {
        1 if value < 1 << 6 => 0,
        2 if value < 1 << 14 => 1,
        4 if value < 1 << 30 => 2,
        8 if value <= MAX_VARINT => 3,
        _ => return None,
    };
    let bytes = value.to_be_bytes();
    let dst = out.get_mut(..len)?;
    dst.copy_from_slice(&bytes[8 - len..]);
    dst[0] |= prefix << 6;
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_from_rfc9000_appendix_a1() {
        // The examples of RFC 9000 appendix A.1.
        let cases: [(&[u8], u64); 4] = [
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            let mut r = Reader::new(bytes, 0);
            assert_eq!(r.varint("test").unwrap(), value);
            assert_eq!(r.remaining(), 0);
            let mut out = [0u8; 8];
            put_varint(&mut out, value, bytes.len()).unwrap();
            assert_eq!(&out[..bytes.len()], bytes);
        }
        // The same value in a longer form (appendix A.1: 0x4025 is also 37).
        assert_eq!(Reader::new(&[0x40, 0x25], 0).varint("test").unwrap(), 37);
        assert_eq!(Reader::new(&[0x9d, 0x7f], 10).varint("x"), Err(QuicError::Truncated { offset: 10, what: "x" }));
        assert_eq!(put_varint(&mut [0u8; 8], 64, 1), None);
    }

    #[test]
    fn versions_print_and_survive() {
        assert_eq!(format!("{:?}", Version(0xff00_001d)), "Version(0xff00001d)");
        assert_eq!(Version::V2.to_string(), "QUIC v2");
        assert!(!Version(0x1a2a_3a4a).is_supported());
    }
}
