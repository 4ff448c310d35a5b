//! The reader's one buffer: refilled from the underlying [`Read`], compacted when a record would
//! run past its end, grown only for a record longer than the whole buffer.

use std::io::{self, Read};

use super::CaptureError;

/// A window `buf[start..end]` of unconsumed file bytes; `buf[0]` is at file offset `base`.
pub(super) struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    pub(super) fn new(reader: R, len: usize) -> Self {
        Input { reader, buf: vec![0; len], start: 0, end: 0, base: 0, eof: false }
    }

    /// Makes at least `need` unconsumed bytes available; `Ok(false)` when the input ends first.
    /// Callers bound `need` (by [`super::MAX_BLOCK_LEN`]), so growth is bounded too.
    #[inline]
    pub(super) fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.fill_slow(need)
    }

    #[cold]
    fn fill_slow(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.start + need > self.buf.len() {
            // Move the partial record to the front; it is shorter than `need`.
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
            if need > self.buf.len() {
                self.buf.resize(need, 0);
            }
        }
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            let got = self.read_into(self.end)?;
            self.end += got;
        }
        Ok(true)
    }

    /// One `read` into `buf[at..]`; 0 means end of input (and is remembered).
    fn read_into(&mut self, at: usize) -> Result<usize, CaptureError> {
        let space = self.buf.len() - at;
        loop {
            match self.reader.read(&mut self.buf[at..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                // A reader claiming more than it was given is broken; believe only the space.
                Ok(n) => return Ok(n.min(space)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(CaptureError::Io { offset: self.base + at as u64, source }),
            }
        }
    }

    /// Discards `n` bytes without holding them; `Ok(false)` when the input ends first.
    pub(super) fn skip(&mut self, mut n: u64) -> Result<bool, CaptureError> {
        let available = (self.end - self.start) as u64;
        if n <= available {
            self.start += n as usize;
            return Ok(true);
        }
        n -= available;
        self.base += self.end as u64;
        self.start = 0;
        self.end = 0;
        while n > 0 {
            if self.eof {
                return Ok(false);
            }
            let want = n.min(self.buf.len() as u64) as usize;
            let got = self.read_into(self.buf.len() - want)?;
            // The bytes read landed at the tail of `buf` and are dropped; only the offset moves.
            self.base += got as u64;
            n -= got as u64;
        }
        Ok(true)
    }
}

impl<R> Input<R> {
    /// The unconsumed bytes.
    #[inline]
    pub(super) fn peek(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Index in the buffer of the first unconsumed byte (for [`Input::slice`]).
    #[inline]
    pub(super) fn position(&self) -> usize {
        self.start
    }

    /// Consumes `n` available bytes; they stay readable through [`Input::slice`] until the next
    /// `fill` or `skip`.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
    }

    /// `len` bytes at buffer index `at`, as recorded by [`Input::position`].
    #[inline]
    pub(super) fn slice(&self, at: usize, len: usize) -> &[u8] {
        &self.buf[at..at + len]
    }

    /// File offset of the first unconsumed byte.
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Whether no unconsumed byte is buffered (after a failed `fill`, the input has ended).
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }
}
