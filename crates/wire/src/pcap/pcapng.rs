//! pcapng (draft-ietf-opsawg-pcapng): a sequence of blocks, each `type, total length, body,
//! total length`, in the byte order set by the Section Header Block that opens its section.

use std::io::Read;

use super::buffer::Input;
use super::{u16_at, u32_at, CaptureError, LinkType, Record, MAX_BLOCK_LEN, MAX_PACKET_LEN};

/// Section Header Block type; a palindrome, so it reads the same in either byte order (4.1).
pub(super) const SHB_TYPE: u32 = 0x0a0d_0d0a;
/// Interface Description Block (4.2).
const IDB_TYPE: u32 = 1;
/// Obsolete Packet Block (appendix A).
const PB_TYPE: u32 = 2;
/// Simple Packet Block (4.4).
const SPB_TYPE: u32 = 3;
/// Enhanced Packet Block (4.3).
const EPB_TYPE: u32 = 6;

/// Shortest blocks of each type: 12 bytes of framing plus the fixed body fields.
const MIN_BLOCK_LEN: u32 = 12;
const MIN_SHB_LEN: u32 = 28;
const MIN_IDB_LEN: u32 = 20;
const MIN_SPB_LEN: u32 = 16;
/// Enhanced and obsolete Packet Blocks share this layout up to the packet data.
const MIN_EPB_LEN: u32 = 32;
/// Offset of the packet data in an Enhanced or obsolete Packet Block.
const EPB_DATA: usize = 28;

/// IDB option codes (4.2).
const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// The state of the section being read: its byte order and the interfaces described so far.
#[derive(Debug, Default)]
pub(super) struct Section {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

/// What an Interface Description Block says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Interface {
    link_type: LinkType,
    snaplen: u32,
    clock: Clock,
}

/// How an interface's timestamp counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    ticks: Ticks,
    /// `if_tsoffset`: seconds to add to every timestamp.
    offset_secs: i64,
}

/// Conversion of timestamp units to nanoseconds, from `if_tsresol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ticks {
    /// Units of 10^-k seconds for k <= 9: multiply by 10^(9-k).
    Multiply(u64),
    /// Units of 10^-k seconds for k > 9: divide by 10^(k-9).
    Divide(u64),
    /// Units of 2^-n seconds.
    Binary(u32),
}

impl Clock {
    /// The default: microseconds, no offset (4.2, `if_tsresol`).
    const MICROS: Clock = Clock { ticks: Ticks::Multiply(1_000), offset_secs: 0 };

    /// Applies an `if_tsresol` value: the most significant bit selects a negative power of 2
    /// rather than of 10 for the rest.
    fn with_tsresol(self, tsresol: u8) -> Clock {
        let exp = u32::from(tsresol & 0x7f);
        let ticks = if tsresol & 0x80 != 0 {
            Ticks::Binary(exp)
        } else if exp <= 9 {
            Ticks::Multiply(10u64.pow(9 - exp))
        } else {
            // Beyond 10^-28 every u64 count rounds to (almost) nothing.
            Ticks::Divide(10u64.checked_pow(exp - 9).unwrap_or(u64::MAX))
        };
        Clock { ticks, ..self }
    }

    /// Nanoseconds since the epoch for a 64-bit timestamp, saturating.
    #[inline]
    pub(super) fn nanos(&self, ticks: u64) -> u64 {
        let n = match self.ticks {
            Ticks::Multiply(m) => ticks.saturating_mul(m),
            Ticks::Divide(d) => ticks / d,
            // exp <= 127 and ticks * 10^9 < 2^94, so neither the product nor the shift overflows.
            Ticks::Binary(exp) => u64::try_from((u128::from(ticks) * 1_000_000_000) >> exp).unwrap_or(u64::MAX),
        };
        if self.offset_secs == 0 {
            return n;
        }
        let shifted = i128::from(n) + i128::from(self.offset_secs) * 1_000_000_000;
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }
}

/// Reads a `u64` at `i` in the given byte order.
fn u64_at(b: &[u8], i: usize, big_endian: bool) -> u64 {
    let (hi, lo) = if big_endian {
        (u32_at(b, i, true), u32_at(b, i + 4, true))
    } else {
        (u32_at(b, i + 4, false), u32_at(b, i, false))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Checks a block total length (3.1) and buffers the whole block, verifying the trailing
/// length. Afterwards `input.peek()` starts with the block and holds at least `length` bytes.
fn load_block<R: Read>(
    input: &mut Input<R>,
    offset: u64,
    length: u32,
    min: u32,
    big_endian: bool,
) -> Result<(), CaptureError> {
    if !length.is_multiple_of(4) || length < min {
        return Err(CaptureError::BlockLength { offset, length });
    }
    if length > MAX_BLOCK_LEN {
        return Err(CaptureError::BlockTooLarge { offset, length, max: MAX_BLOCK_LEN });
    }
    let len = length as usize;
    if !input.fill(len)? {
        return Err(CaptureError::Truncated { offset });
    }
    let trailing = u32_at(input.peek(), len - 4, big_endian);
    if trailing != length {
        return Err(CaptureError::BlockTrailer { offset, leading: length, trailing });
    }
    Ok(())
}

/// Reads a Section Header Block (4.1) at the current position and starts a new section.
pub(super) fn read_section_header<R: Read>(input: &mut Input<R>, section: &mut Section) -> Result<(), CaptureError> {
    let offset = input.offset();
    if !input.fill(12)? {
        return Err(CaptureError::Truncated { offset });
    }
    let h = input.peek();
    let big_endian = match [h[8], h[9], h[10], h[11]] {
        [0x1a, 0x2b, 0x3c, 0x4d] => true,
        [0x4d, 0x3c, 0x2b, 0x1a] => false,
        _ => return Err(CaptureError::Malformed { offset: offset + 8, what: "byte-order magic is not 0x1a2b3c4d" }),
    };
    let length = u32_at(h, 4, big_endian);
    load_block(input, offset, length, MIN_SHB_LEN, big_endian)?;
    let h = input.peek();
    let (major, minor) = (u16_at(h, 12, big_endian), u16_at(h, 14, big_endian));
    if major != 1 {
        return Err(CaptureError::UnsupportedVersion { offset: offset + 12, major, minor });
    }
    section.big_endian = big_endian;
    section.interfaces.clear();
    input.consume(length as usize);
    Ok(())
}

/// Parses an Interface Description Block (4.2) already checked by [`load_block`].
fn parse_interface(block: &[u8], offset: u64, big_endian: bool) -> Result<Interface, CaptureError> {
    let link_type = LinkType(u16_at(block, 8, big_endian));
    let snaplen = u32_at(block, 12, big_endian);
    let mut clock = Clock::MICROS;
    // Options (3.5): code, length, value padded to 32 bits; until opt_endofopt or the trailer.
    let end = block.len() - 4;
    let mut pos = 16;
    while pos + 4 <= end {
        let code = u16_at(block, pos, big_endian);
        let len = usize::from(u16_at(block, pos + 2, big_endian));
        if code == OPT_ENDOFOPT {
            break;
        }
        let value = pos + 4;
        if value + len > end {
            return Err(CaptureError::Malformed {
                offset: offset + pos as u64,
                what: "option runs past the block end",
            });
        }
        match (code, len) {
            (IF_TSRESOL, 1) => clock = clock.with_tsresol(block[value]),
            (IF_TSOFFSET, 8) => clock.offset_secs = u64_at(block, value, big_endian) as i64,
            _ => {}
        }
        pos = value + len.next_multiple_of(4);
    }
    Ok(Interface { link_type, snaplen, clock })
}

/// Skips a block of a type that carries no packet, streaming past it when it is too long to
/// hold, and still checking its trailing length.
fn skip_block<R: Read>(input: &mut Input<R>, offset: u64, length: u32, big_endian: bool) -> Result<(), CaptureError> {
    if length <= MAX_BLOCK_LEN {
        load_block(input, offset, length, MIN_BLOCK_LEN, big_endian)?;
        input.consume(length as usize);
        return Ok(());
    }
    if !length.is_multiple_of(4) {
        return Err(CaptureError::BlockLength { offset, length });
    }
    if !input.skip(u64::from(length) - 4)? || !input.fill(4)? {
        return Err(CaptureError::Truncated { offset });
    }
    let trailing = u32_at(input.peek(), 0, big_endian);
    if trailing != length {
        return Err(CaptureError::BlockTrailer { offset, leading: length, trailing });
    }
    input.consume(4);
    Ok(())
}

/// The next packet of the file, handling section headers, interface descriptions and skipped
/// blocks on the way; `Ok(None)` at a clean end of file.
pub(super) fn next_record<R: Read>(
    input: &mut Input<R>,
    section: &mut Section,
) -> Result<Option<Record>, CaptureError> {
    loop {
        let offset = input.offset();
        if !input.fill(8)? {
            return if input.is_empty() { Ok(None) } else { Err(CaptureError::Truncated { offset }) };
        }
        let be = section.big_endian;
        let h = input.peek();
        let (block_type, length) = (u32_at(h, 0, be), u32_at(h, 4, be));
        match block_type {
            EPB_TYPE | PB_TYPE => return packet_block(input, section, offset, block_type, length).map(Some),
            SPB_TYPE => return simple_packet_block(input, section, offset, length).map(Some),
            IDB_TYPE => {
                load_block(input, offset, length, MIN_IDB_LEN, be)?;
                let interface = parse_interface(&input.peek()[..length as usize], offset, be)?;
                section.interfaces.push(interface);
                input.consume(length as usize);
            }
            SHB_TYPE => read_section_header(input, section)?,
            _ => skip_block(input, offset, length, be)?,
        }
    }
}

/// An Enhanced Packet Block (4.3) or an obsolete Packet Block (appendix A): the same layout but
/// for a 16-bit interface id followed by a 16-bit drop count in the latter.
fn packet_block<R: Read>(
    input: &mut Input<R>,
    section: &Section,
    offset: u64,
    block_type: u32,
    length: u32,
) -> Result<Record, CaptureError> {
    let be = section.big_endian;
    load_block(input, offset, length, MIN_EPB_LEN, be)?;
    let b = input.peek();
    let interface_id = if block_type == EPB_TYPE { u32_at(b, 8, be) } else { u32::from(u16_at(b, 8, be)) };
    let ticks = (u64::from(u32_at(b, 12, be)) << 32) | u64::from(u32_at(b, 16, be));
    let (captured, original_len) = (u32_at(b, 20, be), u32_at(b, 24, be));
    if captured > MAX_PACKET_LEN {
        return Err(CaptureError::PacketTooLarge { offset, length: captured, max: MAX_PACKET_LEN });
    }
    if EPB_DATA + captured.next_multiple_of(4) as usize + 4 > length as usize {
        return Err(CaptureError::Malformed { offset: offset + 20, what: "captured length runs past the block end" });
    }
    let Some(interface) = section.interfaces.get(interface_id as usize) else {
        return Err(CaptureError::UnknownInterface { offset, interface_id });
    };
    let record = Record {
        data_start: input.position() + EPB_DATA,
        data_len: captured as usize,
        original_len,
        timestamp_nanos: interface.clock.nanos(ticks),
        link_type: interface.link_type,
        interface_id,
        offset,
    };
    input.consume(length as usize);
    Ok(record)
}

/// A Simple Packet Block (4.4): interface 0, no timestamp, and a captured length derived from the
/// original length, the interface's snap length and the block length.
fn simple_packet_block<R: Read>(
    input: &mut Input<R>,
    section: &Section,
    offset: u64,
    length: u32,
) -> Result<Record, CaptureError> {
    let be = section.big_endian;
    load_block(input, offset, length, MIN_SPB_LEN, be)?;
    let Some(interface) = section.interfaces.first() else {
        return Err(CaptureError::UnknownInterface { offset, interface_id: 0 });
    };
    let original_len = u32_at(input.peek(), 8, be);
    let mut captured = original_len.min(length - MIN_SPB_LEN);
    if interface.snaplen != 0 {
        captured = captured.min(interface.snaplen);
    }
    let record = Record {
        data_start: input.position() + 12,
        data_len: captured as usize,
        original_len,
        timestamp_nanos: 0,
        link_type: interface.link_type,
        interface_id: 0,
        offset,
    };
    input.consume(length as usize);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_conversions() {
        let c = Clock::MICROS;
        assert_eq!(c.nanos(1_500_000), 1_500_000_000);
        assert_eq!(c.with_tsresol(9).nanos(1_234), 1_234);
        assert_eq!(c.with_tsresol(0).nanos(2), 2_000_000_000);
        assert_eq!(c.with_tsresol(12).nanos(5_000_000), 5_000);
        assert_eq!(c.with_tsresol(0x80 | 10).nanos(1024), 1_000_000_000);
        assert_eq!(c.with_tsresol(0x80 | 30).nanos(1 << 30), 1_000_000_000);
        assert_eq!(c.with_tsresol(0x80).nanos(3), 3_000_000_000);
        // Extremes saturate instead of overflowing.
        assert_eq!(c.with_tsresol(0).nanos(u64::MAX), u64::MAX);
        assert_eq!(c.with_tsresol(127).nanos(u64::MAX), 1);
        assert_eq!(c.with_tsresol(0xff).nanos(u64::MAX), 0);
        let shifted = Clock { offset_secs: -2, ..Clock::MICROS };
        assert_eq!(shifted.nanos(1_000_000), 0);
        assert_eq!(shifted.nanos(3_000_001), 1_000_001_000);
        assert_eq!(Clock { offset_secs: i64::MAX, ..Clock::MICROS }.nanos(1), u64::MAX);
    }
}
