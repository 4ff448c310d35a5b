//! The frames of a decrypted Initial payload (RFC 9000 section 19). An Initial may carry only
//! PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE (RFC 9000 section 17.2.2 and table 3).

use super::{QuicError, Reader, MAX_VARINT};

/// Frame types allowed in Initial packets (RFC 9000 section 12.4, table 3).
mod frame_type {
    pub(super) const PADDING: u64 = 0x00;
    pub(super) const PING: u64 = 0x01;
    pub(super) const ACK: u64 = 0x02;
    pub(super) const ACK_ECN: u64 = 0x03;
    pub(super) const CRYPTO: u64 = 0x06;
    pub(super) const CONNECTION_CLOSE: u64 = 0x1c;
    pub(super) const CONNECTION_CLOSE_APPLICATION: u64 = 0x1d;
}

/// A CRYPTO frame: a piece of the TLS handshake stream (RFC 9000 section 19.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoFrame<'a> {
    /// Where the data goes in the stream.
    pub offset: u64,
    /// The data.
    pub data: &'a [u8],
}

/// An ACK frame (RFC 9000 section 19.3), checked but summarised: the ranges are walked to
/// check that none goes below packet number 0, and not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Largest Acknowledged.
    pub largest: u64,
    /// ACK Delay, in units the peer chose.
    pub delay: u64,
    /// ACK Range Count: ranges after the first.
    pub range_count: u64,
    /// First ACK Range.
    pub first_range: u64,
    /// ECT(0), ECT(1) and ECN-CE counts, for frame type 0x03.
    pub ecn: Option<[u64; 3]>,
}

/// A CONNECTION_CLOSE frame (RFC 9000 section 19.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionClose<'a> {
    /// The error code: a transport error for type 0x1c, an application one for 0x1d.
    pub error_code: u64,
    /// The type of the frame that caused the error; only in type 0x1c.
    pub frame_type: Option<u64>,
    /// Reason phrase, meant to be UTF-8 but not checked.
    pub reason: &'a [u8],
}

/// A frame of an Initial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A run of PADDING frames (single zero bytes), merged.
    Padding {
        /// How many.
        len: usize,
    },
    /// PING.
    Ping,
    /// ACK, types 0x02 and 0x03.
    Ack(Ack),
    /// CRYPTO.
    Crypto(CryptoFrame<'a>),
    /// CONNECTION_CLOSE, types 0x1c and 0x1d. RFC 9000 section 17.2.2 lets only 0x1c into
    /// Initial packets; 0x1d is accepted here so that an odd close is reported, not an error.
    ConnectionClose(ConnectionClose<'a>),
}

/// The frames of an Initial payload, in order. After an error the iterator ends.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    r: Reader<'a>,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Walks the frames of `payload`; error offsets count from its start.
    pub fn new(payload: &'a [u8]) -> Frames<'a> {
        Frames::with_offset(payload, 0)
    }

    /// Walks the frames of `payload`, which starts at byte `offset` of a packet; error offsets
    /// count from the start of the packet.
    pub fn with_offset(payload: &'a [u8], offset: usize) -> Frames<'a> {
        Frames { r: Reader::new(payload, offset), done: false }
    }

    fn read(&mut self) -> Result<Frame<'a>, QuicError> {
        let start = self.r.offset();
        // The frame type is a varint (RFC 9000 section 12.4); a longer encoding than needed is
        // allowed here, as a lenient server would.
        let frame_type = self.r.varint("frame type")?;
        let malformed = QuicError::MalformedFrame { offset: start, frame_type };
        let r = &mut self.r;
        match frame_type {
            frame_type::PADDING => Ok(Frame::Padding { len: 1 + r.skip_zeros() }),
            frame_type::PING => Ok(Frame::Ping),
            frame_type::ACK | frame_type::ACK_ECN => {
                // RFC 9000 section 19.3.
                let largest = r.varint("ACK largest acknowledged")?;
                let delay = r.varint("ACK delay")?;
                let range_count = r.varint("ACK range count")?;
                let first_range = r.varint("first ACK range")?;
                // Section 19.3.1: no computed packet number may be negative.
                let mut smallest = largest.checked_sub(first_range).ok_or(malformed.clone())?;
                for _ in 0..range_count {
                    let gap = r.varint("ACK gap")?;
                    let len = r.varint("ACK range length")?;
                    smallest = smallest
                        .checked_sub(gap + 2)
                        .and_then(|next_largest| next_largest.checked_sub(len))
                        .ok_or(malformed.clone())?;
                }
                let ecn = if frame_type == frame_type::ACK_ECN {
                    Some([r.varint("ECT(0) count")?, r.varint("ECT(1) count")?, r.varint("ECN-CE count")?])
                } else {
                    None
                };
                Ok(Frame::Ack(Ack { largest, delay, range_count, first_range, ecn }))
            }
            frame_type::CRYPTO => {
                // RFC 9000 section 19.6.
                let offset = r.varint("CRYPTO offset")?;
                let len = r.varint_len("CRYPTO length")?;
                let data = r.bytes(len, "CRYPTO data")?;
                if offset.saturating_add(len as u64) > MAX_VARINT {
                    return Err(malformed);
                }
                Ok(Frame::Crypto(CryptoFrame { offset, data }))
            }
            frame_type::CONNECTION_CLOSE | frame_type::CONNECTION_CLOSE_APPLICATION => {
                // RFC 9000 section 19.19.
                let error_code = r.varint("CONNECTION_CLOSE error code")?;
                let frame_type = if frame_type == frame_type::CONNECTION_CLOSE {
                    Some(r.varint("CONNECTION_CLOSE frame type")?)
                } else {
                    None
                };
                let len = r.varint_len("reason phrase length")?;
                let reason = r.bytes(len, "reason phrase")?;
                Ok(Frame::ConnectionClose(ConnectionClose { error_code, frame_type, reason }))
            }
            _ => Err(QuicError::UnexpectedFrame { offset: start, frame_type }),
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.r.remaining() == 0 {
            return None;
        }
        let frame = self.read();
        self.done = frame.is_err();
        Some(frame)
    }
}

impl std::iter::FusedIterator for Frames<'_> {}

/// The CRYPTO frames of an Initial payload. The other frames are checked on the way, so an
/// error in any frame ends the walk with that error.
#[derive(Debug, Clone)]
pub struct CryptoFrames<'a> {
    frames: Frames<'a>,
}

impl<'a> CryptoFrames<'a> {
    /// Keeps the CRYPTO frames of `frames`.
    pub fn new(frames: Frames<'a>) -> CryptoFrames<'a> {
        CryptoFrames { frames }
    }
}

impl<'a> Iterator for CryptoFrames<'a> {
    type Item = Result<CryptoFrame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.frames.next()? {
                Ok(Frame::Crypto(c)) => return Some(Ok(c)),
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::iter::FusedIterator for CryptoFrames<'_> {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::quic::vectors::{hex, SERVER_PAYLOAD};

    fn all(payload: &[u8]) -> Vec<Result<Frame<'_>, QuicError>> {
        Frames::with_offset(payload, 100).collect()
    }

    #[test]
    fn walks_every_frame_allowed_in_an_initial() {
        let payload = hex(concat!(
            "01",                            // PING
            "0000",                          // PADDING x2
            "03 0a 00 01 02 03 01 04 05 06", // ACK_ECN: 8..=10, gap 3, 2..=3, ECN 4 5 6
            "06 4001 03 616263",             // CRYPTO offset 1, 3 bytes "abc"
            "1c 0a 06 02 6869",              // CONNECTION_CLOSE 0x0a after frame type 6, "hi"
            "1d 01 00",                      // CONNECTION_CLOSE (application), no reason
            "4006 00 00",                    // CRYPTO with a 2-byte frame type, empty
            "00"
        ));
        let frames: Vec<_> = all(&payload).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            frames,
            [
                Frame::Ping,
                Frame::Padding { len: 2 },
                Frame::Ack(Ack { largest: 10, delay: 0, range_count: 1, first_range: 2, ecn: Some([4, 5, 6]) }),
                Frame::Crypto(CryptoFrame { offset: 1, data: b"abc" }),
                Frame::ConnectionClose(ConnectionClose { error_code: 10, frame_type: Some(6), reason: b"hi" }),
                Frame::ConnectionClose(ConnectionClose { error_code: 1, frame_type: None, reason: b"" }),
                Frame::Crypto(CryptoFrame { offset: 0, data: b"" }),
                Frame::Padding { len: 1 },
            ]
        );
        let crypto: Vec<_> = CryptoFrames::new(Frames::new(&payload)).map(Result::unwrap).collect();
        assert_eq!(crypto.len(), 2);
    }

    #[test]
    fn walks_the_rfc_server_payload() {
        let payload = hex(SERVER_PAYLOAD);
        let frames: Vec<_> = Frames::new(&payload).map(Result::unwrap).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::Ack(Ack { largest: 0, delay: 0, range_count: 0, first_range: 0, ecn: None }));
    }

    #[test]
    fn refuses_bad_frames_with_offsets() {
        // STREAM frames are not allowed in Initial packets.
        assert_eq!(
            all(&[0x01, 0x08, 0, 0]),
            [Ok(Frame::Ping), Err(QuicError::UnexpectedFrame { offset: 101, frame_type: 8 })]
        );
        // An ACK range below 0.
        assert_eq!(
            all(&[0x02, 0x01, 0x00, 0x00, 0x02]),
            [Err(QuicError::MalformedFrame { offset: 100, frame_type: 2 })]
        );
        assert_eq!(
            all(&[0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00]),
            [Err(QuicError::MalformedFrame { offset: 100, frame_type: 2 })]
        );
        // CRYPTO data running past the payload.
        assert_eq!(all(&[0x06, 0x00, 0x05, 1, 2]), [Err(QuicError::Truncated { offset: 102, what: "CRYPTO length" })]);
        // CRYPTO data ending beyond 2^62 - 1.
        let far = hex("06 ffffffffffffffff 01 00");
        assert_eq!(all(&far), [Err(QuicError::MalformedFrame { offset: 100, frame_type: 6 })]);
        // An ACK with a huge range count runs out of bytes, not of time.
        let many = hex("02 00 00 bfffffff 00");
        assert!(matches!(all(&many)[..], [Err(QuicError::Truncated { .. })]));
        // A truncated frame type.
        assert_eq!(all(&[0x40]), [Err(QuicError::Truncated { offset: 100, what: "frame type" })]);
        // Every cut of a good payload either parses or fails, without panicking.
        let payload = hex(SERVER_PAYLOAD);
        for cut in 0..payload.len() {
            let _ = all(&payload[..cut]);
        }
    }
}
