//! A `Copy` cursor over a datagram that reports absolute byte offsets.

use crate::FlowError;

/// Reads big-endian fields from `buf[pos..end]`. Offsets in errors count from the start of the
/// datagram, because `buf` is always the whole datagram and only `pos`/`end` move. Copying the
/// cursor is a free checkpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over the whole datagram.
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0, end: buf.len() }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes left before the end of this cursor's window.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// True when nothing is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// The bytes left, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..self.end]
    }

    pub(crate) fn truncated(&self, what: &'static str) -> FlowError {
        FlowError::Truncated { offset: self.pos, what }
    }

    /// Reads `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FlowError> {
        if self.remaining() < n {
            return Err(self.truncated(what));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Reads `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FlowError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), FlowError> {
        self.bytes(n, what).map(|_| ())
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, FlowError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian u16.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, FlowError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u32.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, FlowError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u64.
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, FlowError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Splits off the next `len` bytes as a cursor of their own (with the same absolute
    /// offsets) and moves past them. A `len` beyond what is left is an error at the current
    /// offset, and nothing moves.
    pub(crate) fn sub(&mut self, len: usize, what: &'static str) -> Result<Cursor<'a>, FlowError> {
        if self.remaining() < len {
            return Err(self.truncated(what));
        }
        let sub = Cursor { buf: self.buf, pos: self.pos, end: self.pos + len };
        self.pos += len;
        Ok(sub)
    }
}

/// A big-endian unsigned integer of 0 to 8 bytes (RFC 7011 section 6.2 reduced-size encoding);
/// longer fields keep their last 8 bytes.
#[inline]
pub(crate) fn be_uint(bytes: &[u8]) -> u64 {
    match *bytes {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => {
            let tail = &bytes[bytes.len().saturating_sub(8)..];
            tail.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_absolute_in_sub_cursors() {
        let data = [0u8, 1, 0, 2, 0, 0, 0, 3, 9];
        let mut c = Cursor::new(&data);
        assert_eq!(c.u16("a").unwrap(), 1);
        let mut sub = c.sub(6, "sub").unwrap();
        assert_eq!(sub.u16("b").unwrap(), 2);
        assert_eq!(sub.u32("c").unwrap(), 3);
        assert_eq!(sub.u8("d"), Err(FlowError::Truncated { offset: 8, what: "d" }));
        assert_eq!(c.u8("e").unwrap(), 9);
        assert!(c.is_empty());
        assert!(matches!(c.sub(1, "f"), Err(FlowError::Truncated { offset: 9, .. })));
    }

    #[test]
    fn reduced_size_integers() {
        assert_eq!(be_uint(&[]), 0);
        assert_eq!(be_uint(&[1, 2]), 0x0102);
        assert_eq!(be_uint(&[0xff; 8]), u64::MAX);
        assert_eq!(be_uint(&[9, 0, 0, 0, 0, 0, 0, 0, 7]), 7);
    }
}
