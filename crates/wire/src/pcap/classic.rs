//! Classic pcap (draft-ietf-opsawg-pcap): a 24-byte file header, then records of a 16-byte
//! header and the captured bytes.

use std::io::Read;

use super::buffer::Input;
use super::{u16_at, u32_at, CaptureError, LinkType, Record, MAX_PACKET_LEN};

/// File header length (section 4).
pub(super) const FILE_HEADER_LEN: usize = 24;
/// Packet record header length (section 5).
pub(super) const RECORD_HEADER_LEN: usize = 16;
/// Magic for microsecond timestamps, as read in the file's own byte order.
pub(super) const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic for nanosecond timestamps.
pub(super) const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// What the file header says about every record.
pub(super) struct Header {
    pub(super) big_endian: bool,
    pub(super) nanosecond: bool,
    link_type: LinkType,
}

impl Header {
    /// Reads the file header if `magic` (the first four bytes, big-endian) is a pcap magic;
    /// `Ok(None)` when it is not.
    pub(super) fn read<R: Read>(input: &mut Input<R>, magic: u32) -> Result<Option<Header>, CaptureError> {
        let (big_endian, nanosecond) = match magic {
            MAGIC_MICROS => (true, false),
            MAGIC_NANOS => (true, true),
            m if m.swap_bytes() == MAGIC_MICROS => (false, false),
            m if m.swap_bytes() == MAGIC_NANOS => (false, true),
            _ => return Ok(None),
        };
        if !input.fill(FILE_HEADER_LEN)? {
            return Err(CaptureError::Truncated { offset: 0 });
        }
        let h = input.peek();
        let (major, minor) = (u16_at(h, 4, big_endian), u16_at(h, 6, big_endian));
        if major != 2 {
            return Err(CaptureError::UnsupportedVersion { offset: 4, major, minor });
        }
        // Section 4: the low 16 bits are the link type; the upper bits may carry FCS details.
        let link_type = LinkType(u32_at(h, 20, big_endian) as u16);
        input.consume(FILE_HEADER_LEN);
        Ok(Some(Header { big_endian, nanosecond, link_type }))
    }
}

/// The next record, `Ok(None)` at a clean end of file.
#[inline]
pub(super) fn next_record<R: Read>(input: &mut Input<R>, header: &Header) -> Result<Option<Record>, CaptureError> {
    let offset = input.offset();
    if !input.fill(RECORD_HEADER_LEN)? {
        return if input.is_empty() { Ok(None) } else { Err(CaptureError::Truncated { offset }) };
    }
    let h = input.peek();
    let be = header.big_endian;
    let (secs, frac) = (u32_at(h, 0, be), u32_at(h, 4, be));
    let (captured, original_len) = (u32_at(h, 8, be), u32_at(h, 12, be));
    if captured > MAX_PACKET_LEN {
        return Err(CaptureError::PacketTooLarge { offset, length: captured, max: MAX_PACKET_LEN });
    }
    let total = RECORD_HEADER_LEN + captured as usize;
    if !input.fill(total)? {
        return Err(CaptureError::Truncated { offset });
    }
    let frac_nanos = if header.nanosecond { u64::from(frac) } else { u64::from(frac) * 1_000 };
    let record = Record {
        data_start: input.position() + RECORD_HEADER_LEN,
        data_len: captured as usize,
        original_len,
        // u32 seconds times 10^9 plus a u32 fraction times 10^3 stays below 2^63.
        timestamp_nanos: u64::from(secs) * 1_000_000_000 + frac_nanos,
        link_type: header.link_type,
        interface_id: 0,
        offset,
    };
    input.consume(total);
    Ok(Some(record))
}

/// A classic pcap file held in memory (for instance memory-mapped), read without copying:
/// every [`super::Packet`] borrows the input. Same checks and errors as [`super::CaptureReader`]; pcapng
/// files are not read here (use [`super::CaptureReader`] over the bytes).
pub struct PcapSlice<'a> {
    data: &'a [u8],
    at: usize,
    header: Header,
    done: bool,
}

impl<'a> PcapSlice<'a> {
    /// Reads the file header; `Ok(None)` if `data` is not a classic pcap file.
    pub fn new(data: &'a [u8]) -> Result<Option<PcapSlice<'a>>, CaptureError> {
        let Some(head) = data.get(..4) else { return Err(CaptureError::Truncated { offset: 0 }) };
        let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let mut input = Input::new(&data[..data.len().min(FILE_HEADER_LEN)], FILE_HEADER_LEN);
        let Some(header) = Header::read(&mut input, magic)? else { return Ok(None) };
        Ok(Some(PcapSlice { data, at: FILE_HEADER_LEN, header, done: false }))
    }

    /// The next packet, `Ok(None)` at the clean end; after an error, `Ok(None)` forever.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<super::Packet<'a>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let offset = self.at as u64;
        let rest = &self.data[self.at..];
        if rest.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let fail = |this: &mut Self, e| {
            this.done = true;
            Err(e)
        };
        let Some(h) = rest.get(..RECORD_HEADER_LEN) else { return fail(self, CaptureError::Truncated { offset }) };
        let be = self.header.big_endian;
        let (secs, frac) = (u32_at(h, 0, be), u32_at(h, 4, be));
        let (captured, original_len) = (u32_at(h, 8, be), u32_at(h, 12, be));
        if captured > MAX_PACKET_LEN {
            return fail(self, CaptureError::PacketTooLarge { offset, length: captured, max: MAX_PACKET_LEN });
        }
        let total = RECORD_HEADER_LEN + captured as usize;
        let Some(record) = rest.get(RECORD_HEADER_LEN..total) else {
            return fail(self, CaptureError::Truncated { offset });
        };
        self.at += total;
        let frac_nanos = if self.header.nanosecond { u64::from(frac) } else { u64::from(frac) * 1_000 };
        Ok(Some(super::Packet {
            data: record,
            original_len,
            timestamp_nanos: u64::from(secs) * 1_000_000_000 + frac_nanos,
            link_type: self.header.link_type,
            interface_id: 0,
            offset,
        }))
    }
}
