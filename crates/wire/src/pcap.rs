//! Capture files: a streaming [`CaptureReader`] for classic pcap and pcapng, and a small
//! [`PcapWriter`] for building classic captures in tests and benchmarks.
//!
//! The reader owns one byte buffer (1 MiB by default) that it refills and compacts as it goes;
//! [`CaptureReader::next_packet`] lends each packet's bytes straight out of that buffer, so
//! reading allocates nothing per packet and copies nothing beyond the read into the buffer.
//!
//! - Classic pcap (draft-ietf-opsawg-pcap): both byte orders, microsecond (`a1b2c3d4`) and
//!   nanosecond (`a1b23c4d`) timestamps.
//! - pcapng (draft-ietf-opsawg-pcapng): any number of sections, each with its own byte order and
//!   interfaces; Enhanced, Simple and obsolete Packet Blocks yield packets, every other block is
//!   skipped by its length. Interface timestamp resolution (`if_tsresol`) and offset
//!   (`if_tsoffset`) are applied.
//!
//! ```
//! use bawaba_wire::pcap::{CaptureReader, LinkType, PcapWriter};
//! let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 65535).unwrap();
//! w.write_packet(1_700_000_000_123_456_000, b"\x45\x00").unwrap();
//! let file = w.into_inner().unwrap();
//!
//! let mut r = CaptureReader::new(&file[..]).unwrap();
//! let p = r.next_packet().unwrap().unwrap();
//! assert_eq!((p.data, p.link_type, p.timestamp_nanos), (&b"\x45\x00"[..], LinkType::RAW, 1_700_000_000_123_456_000));
//! assert!(r.next_packet().unwrap().is_none());
//! ```

use std::fmt;
use std::io::{self, Read};

use thiserror::Error;

mod buffer;
mod classic;
mod pcapng;
mod writer;

use buffer::Input;
pub use classic::PcapSlice;
pub use writer::{PcapWriter, TimestampPrecision};

/// Most captured bytes one packet may carry (tcpdump's default snap length).
pub const MAX_PACKET_LEN: u32 = 262_144;
/// Largest pcapng block the reader will hold whole (a largest packet plus 64 KiB of header and
/// options). Blocks the reader skips may be longer: they are streamed past, never held.
pub const MAX_BLOCK_LEN: u32 = MAX_PACKET_LEN + 65_536;
/// Default size of the reader's buffer.
pub const DEFAULT_BUFFER_LEN: usize = 1 << 20;

/// Why a capture file cannot be read (further).
///
/// Offsets count bytes from the start of the file. After any error the reader is finished and
/// [`CaptureReader::next_packet`] returns `Ok(None)`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (magic 0x{magic:08x})")]
    NotCapture {
        /// The first four bytes, read big-endian.
        magic: u32,
    },
    /// A file format version this reader does not know.
    #[error("unsupported capture format version {major}.{minor} at byte {offset}")]
    UnsupportedVersion {
        /// Where the version field is.
        offset: u64,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The input ends inside the file header, a record or a block: typical of a capture whose
    /// writer was killed. Every packet before `offset` was read correctly.
    #[error("capture truncated: the record at byte {offset} is incomplete")]
    Truncated {
        /// Where the incomplete record (or file header) starts.
        offset: u64,
    },
    /// A pcapng block total length that is not a multiple of 4 or is shorter than its block type
    /// allows (draft-ietf-opsawg-pcapng section 3.1).
    #[error("invalid block total length {length} in the block at byte {offset}")]
    BlockLength {
        /// Where the block starts.
        offset: u64,
        /// The length field.
        length: u32,
    },
    /// A pcapng block whose trailing total length differs from the leading one.
    #[error("block at byte {offset}: trailing length {trailing} differs from leading length {leading}")]
    BlockTrailer {
        /// Where the block starts.
        offset: u64,
        /// The length at the start of the block.
        leading: u32,
        /// The length at its end.
        trailing: u32,
    },
    /// A pcapng header or packet block longer than [`MAX_BLOCK_LEN`].
    #[error("block at byte {offset} is {length} bytes long, more than the {max} supported")]
    BlockTooLarge {
        /// Where the block starts.
        offset: u64,
        /// The block total length.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A packet with more captured bytes than [`MAX_PACKET_LEN`].
    #[error("packet at byte {offset} has {length} captured bytes, more than the {max} supported")]
    PacketTooLarge {
        /// Where the record or block starts.
        offset: u64,
        /// The captured length field.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A pcapng packet block naming an interface that its section has not described.
    #[error("block at byte {offset} names interface {interface_id}, which its section does not describe")]
    UnknownInterface {
        /// Where the block starts.
        offset: u64,
        /// The interface id.
        interface_id: u32,
    },
    /// Fields inside a pcapng block that contradict each other or the block length.
    #[error("malformed block at byte {offset}: {what}")]
    Malformed {
        /// Where the bad field is.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The underlying reader failed.
    #[error("read error at byte {offset}")]
    Io {
        /// How far the file had been read.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// The file offset the error refers to (0 for [`CaptureError::NotCapture`]).
    pub fn offset(&self) -> u64 {
        match *self {
            CaptureError::NotCapture { .. } => 0,
            CaptureError::UnsupportedVersion { offset, .. }
            | CaptureError::Truncated { offset }
            | CaptureError::BlockLength { offset, .. }
            | CaptureError::BlockTrailer { offset, .. }
            | CaptureError::BlockTooLarge { offset, .. }
            | CaptureError::PacketTooLarge { offset, .. }
            | CaptureError::UnknownInterface { offset, .. }
            | CaptureError::Malformed { offset, .. }
            | CaptureError::Io { offset, .. } => offset,
        }
    }
}

/// Link-layer header type of captured packets (the tcpdump.org LINKTYPE_ registry, shared by
/// pcap and pcapng). Unknown values survive as the number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

macro_rules! link_types {
    ($($(#[$m:meta])* $konst:ident = $val:expr),* $(,)?) => {
        impl LinkType {
            $($(#[$m])* pub const $konst: LinkType = LinkType($val);)*
        }
        impl fmt::Debug for LinkType {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match *self {
                    $(LinkType::$konst => f.write_str(stringify!($konst)),)*
                    LinkType(other) => write!(f, "LinkType{other}"),
                }
            }
        }
    };
}

link_types!(
    /// BSD loopback: a 4-byte protocol family in the capturing host's byte order.
    NULL = 0,
    /// Ethernet II (IEEE 802.3).
    ETHERNET = 1,
    /// Raw IP; the version nibble tells IPv4 from IPv6.
    RAW = 101,
    /// Linux "cooked" capture, version 1.
    LINUX_SLL = 113,
    /// Raw IPv4.
    IPV4 = 228,
    /// Raw IPv6.
    IPV6 = 229,
    /// Linux "cooked" capture, version 2.
    LINUX_SLL2 = 276,
);

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which container a capture file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps carry nanoseconds (magic `a1b23c4d`) rather than microseconds.
        nanosecond: bool,
    },
    /// pcapng.
    Pcapng,
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The captured bytes (possibly fewer than `original_len`).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub original_len: u32,
    /// Capture time in nanoseconds since the Unix epoch, after the file's timestamp resolution
    /// and the interface's `if_tsoffset`. Saturates at 0 and `u64::MAX`; 0 for pcapng Simple
    /// Packet Blocks, which carry no timestamp.
    pub timestamp_nanos: u64,
    /// Link-layer type of `data`.
    pub link_type: LinkType,
    /// pcapng interface id within its section; 0 for classic pcap.
    pub interface_id: u32,
    /// File offset of the record or block holding the packet.
    pub offset: u64,
}

impl Packet<'_> {
    /// Whole seconds of the timestamp.
    pub fn timestamp_secs(&self) -> u64 {
        self.timestamp_nanos / 1_000_000_000
    }

    /// Nanoseconds past [`Packet::timestamp_secs`].
    pub fn timestamp_subsec_nanos(&self) -> u32 {
        (self.timestamp_nanos % 1_000_000_000) as u32
    }
}

/// Where a packet lies in the buffer; turned into a [`Packet`] only on the returning path so that
/// the borrow of the buffer starts after all parsing is done.
struct Record {
    data_start: usize,
    data_len: usize,
    original_len: u32,
    timestamp_nanos: u64,
    link_type: LinkType,
    interface_id: u32,
    offset: u64,
}

enum State {
    Classic(classic::Header),
    Pcapng(pcapng::Section),
}

/// Streaming reader of a pcap or pcapng file; see the [module docs](self).
pub struct CaptureReader<R> {
    input: Input<R>,
    state: State,
    done: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (or first pcapng Section Header Block) with a
    /// [`DEFAULT_BUFFER_LEN`] buffer.
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        Self::with_buffer_len(reader, DEFAULT_BUFFER_LEN)
    }

    /// Like [`CaptureReader::new`] with a buffer of `len` bytes (at least 64). The buffer grows
    /// past `len` only to hold a single record longer than it, up to [`MAX_BLOCK_LEN`].
    pub fn with_buffer_len(reader: R, len: usize) -> Result<Self, CaptureError> {
        let mut input = Input::new(reader, len.max(64));
        if !input.fill(4)? {
            return Err(CaptureError::Truncated { offset: 0 });
        }
        let head = input.peek();
        let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let state = if magic == pcapng::SHB_TYPE {
            let mut section = pcapng::Section::default();
            pcapng::read_section_header(&mut input, &mut section)?;
            State::Pcapng(section)
        } else if let Some(header) = classic::Header::read(&mut input, magic)? {
            State::Classic(header)
        } else {
            return Err(CaptureError::NotCapture { magic });
        };
        Ok(CaptureReader { input, state, done: false })
    }

    /// The file's container format.
    pub fn format(&self) -> Format {
        match &self.state {
            State::Classic(h) => Format::Pcap { nanosecond: h.nanosecond },
            State::Pcapng(_) => Format::Pcapng,
        }
    }

    /// How many bytes of the file have been consumed: the offset of the next record.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// The next packet, `Ok(None)` at the clean end of the file. Non-packet pcapng blocks are
    /// processed or skipped on the way. After an error, returns `Ok(None)` forever.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let found = match &mut self.state {
            State::Classic(header) => classic::next_record(&mut self.input, header),
            State::Pcapng(section) => pcapng::next_record(&mut self.input, section),
        };
        match found {
            Ok(Some(r)) => Ok(Some(Packet {
                data: self.input.slice(r.data_start, r.data_len),
                original_len: r.original_len,
                timestamp_nanos: r.timestamp_nanos,
                link_type: r.link_type,
                interface_id: r.interface_id,
                offset: r.offset,
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

impl<R> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader").field("offset", &self.input.offset()).field("done", &self.done).finish()
    }
}

/// Reads a `u16` at `i` in the given byte order.
#[inline]
fn u16_at(b: &[u8], i: usize, big_endian: bool) -> u16 {
    let w = [b[i], b[i + 1]];
    if big_endian {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

/// Reads a `u32` at `i` in the given byte order.
#[inline]
fn u32_at(b: &[u8], i: usize, big_endian: bool) -> u32 {
    let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
