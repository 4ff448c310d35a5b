//! A classic pcap writer for building captures in tests and benchmarks (little-endian files).

use std::io::{self, Write};

use super::classic::{MAGIC_MICROS, MAGIC_NANOS};
use super::LinkType;

/// Resolution of the timestamps a [`PcapWriter`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampPrecision {
    /// Microseconds (magic `a1b2c3d4`), what most tools write.
    Microseconds,
    /// Nanoseconds (magic `a1b23c4d`).
    Nanoseconds,
}

/// Writes a classic pcap file: the file header on creation, then one record per packet.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    precision: TimestampPrecision,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a microsecond-resolution file whose packets have `link_type` and are cut to
    /// `snaplen` bytes.
    pub fn new(out: W, link_type: LinkType, snaplen: u32) -> io::Result<Self> {
        Self::with_precision(out, link_type, snaplen, TimestampPrecision::Microseconds)
    }

    /// Starts a file with the given timestamp resolution.
    pub fn with_precision(
        mut out: W,
        link_type: LinkType,
        snaplen: u32,
        precision: TimestampPrecision,
    ) -> io::Result<Self> {
        let magic = match precision {
            TimestampPrecision::Microseconds => MAGIC_MICROS,
            TimestampPrecision::Nanoseconds => MAGIC_NANOS,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&u32::from(link_type.0).to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, snaplen, precision })
    }

    /// Appends a packet captured at `timestamp_nanos` (since the Unix epoch; microsecond files
    /// drop the sub-microsecond part). Bytes past the snap length are cut, and the record keeps
    /// `data.len()` as the original length. Fails with `InvalidInput` for a timestamp after
    /// 2106 or a packet longer than `u32::MAX`.
    pub fn write_packet(&mut self, timestamp_nanos: u64, data: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(timestamp_nanos / 1_000_000_000)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcap timestamps end in 2106"))?;
        let nanos = (timestamp_nanos % 1_000_000_000) as u32;
        let frac = match self.precision {
            TimestampPrecision::Microseconds => nanos / 1_000,
            TimestampPrecision::Nanoseconds => nanos,
        };
        let original_len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcap packets are shorter than 4 GiB"))?;
        let captured = original_len.min(self.snaplen);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&frac.to_le_bytes());
        header[8..12].copy_from_slice(&captured.to_le_bytes());
        header[12..16].copy_from_slice(&original_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&data[..captured as usize])
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
