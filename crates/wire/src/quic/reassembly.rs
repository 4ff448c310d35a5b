//! Reassembly of the first bytes of the Initial CRYPTO stream, where the ClientHello is.
//!
//! Clients split a large ClientHello (post-quantum key shares make it about 1.7 KB) over
//! several Initial packets, and some (Chrome) shuffle the CRYPTO frames within and across
//! packets, so data arrives out of order, and retransmissions repeat it. The buffer here has a
//! fixed size and never grows: data past [`CryptoReassembly::CAPACITY`] is refused.

use super::{CryptoFrame, Initial, QuicError};

const CAPACITY: usize = 4096;
const WORDS: usize = CAPACITY / 64;

/// The first [`CryptoReassembly::CAPACITY`] bytes of a CRYPTO stream, put together from frames
/// in any order, with a bitmap of the bytes received. Overlapping and repeated frames are fine
/// as long as they agree (RFC 9000 section 2.2).
#[derive(Clone)]
pub struct CryptoReassembly {
    data: [u8; CAPACITY],
    received: [u64; WORDS],
    /// Length of the contiguous prefix received from offset 0.
    prefix: usize,
}

/// How far the first handshake message (the ClientHello, for a client's stream) has arrived.
/// A TLS handshake message starts with a 1-byte type and a 24-bit length (RFC 8446 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstMessage<'a> {
    /// Fewer than the 4 header bytes are contiguous from offset 0.
    NeedHeader,
    /// The header is in, the message is not complete yet.
    Partial {
        /// Contiguous bytes received, header included.
        have: usize,
        /// The whole message's length, header included.
        total: usize,
    },
    /// The whole message, header included.
    Complete(&'a [u8]),
    /// The message is longer than the reassembly buffer and can never complete here.
    TooLarge {
        /// The whole message's length, header included.
        total: usize,
    },
}

impl Default for CryptoReassembly {
    fn default() -> Self {
        CryptoReassembly::new()
    }
}

impl std::fmt::Debug for CryptoReassembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoReassembly")
            .field("prefix", &self.prefix)
            .field("received", &self.received_len())
            .finish()
    }
}

impl CryptoReassembly {
    /// How many bytes from the start of the stream are kept.
    pub const CAPACITY: usize = CAPACITY;

    /// An empty stream.
    pub fn new() -> CryptoReassembly {
        CryptoReassembly { data: [0; CAPACITY], received: [0; WORDS], prefix: 0 }
    }

    /// Forgets everything, to reuse the buffer for another connection.
    pub fn clear(&mut self) {
        self.received = [0; WORDS];
        self.prefix = 0;
    }

    fn has(&self, i: usize) -> bool {
        self.received[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds the stream bytes `data` found at stream offset `offset`. Data that differs from
    /// bytes already received is refused whole with [`QuicError::CryptoConflict`]. Data past
    /// the capacity is refused with [`QuicError::CryptoBeyondCapacity`], after the part below
    /// the capacity has been kept.
    pub fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), QuicError> {
        let end = offset.saturating_add(data.len() as u64);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(CAPACITY);
        let stop = usize::try_from(end).unwrap_or(usize::MAX).min(CAPACITY);
        // stop - start bytes of data fall inside the buffer; they are data[..stop - start].
        let kept = &data[..stop - start];
        if let Some(i) = (start..stop).find(|&i| self.has(i) && self.data[i] != kept[i - start]) {
            return Err(QuicError::CryptoConflict { offset: i as u64 });
        }
        self.data[start..stop].copy_from_slice(kept);
        self.mark(start, stop);
        if end > CAPACITY as u64 && !data.is_empty() {
            return Err(QuicError::CryptoBeyondCapacity { offset, end, capacity: CAPACITY });
        }
        Ok(())
    }

    /// Adds one CRYPTO frame; see [`CryptoReassembly::insert`].
    pub fn insert_frame(&mut self, frame: &CryptoFrame<'_>) -> Result<(), QuicError> {
        self.insert(frame.offset, frame.data)
    }

    /// Adds every CRYPTO frame of a decrypted Initial packet. A frame error or a conflict stops
    /// at once; frames past the capacity do not stop the others, and the first such error is
    /// returned at the end.
    pub fn insert_packet(&mut self, initial: &Initial<'_>) -> Result<(), QuicError> {
        let mut beyond = None;
        for frame in initial.crypto_frames() {
            match self.insert_frame(&frame?) {
                Err(e @ QuicError::CryptoBeyondCapacity { .. }) => {
                    beyond.get_or_insert(e);
                }
                other => other?,
            }
        }
        beyond.map_or(Ok(()), Err)
    }

    /// Sets the received bits of `start..stop` and moves the contiguous prefix on.
    fn mark(&mut self, start: usize, stop: usize) {
        let mut i = start;
        while i < stop {
            let bit = i % 64;
            let n = (64 - bit).min(stop - i);
            let ones = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << bit };
            self.received[i / 64] |= ones;
            i += n;
        }
        while self.prefix < CAPACITY {
            let bit = self.prefix % 64;
            let run = ((!self.received[self.prefix / 64]) >> bit).trailing_zeros() as usize;
            let run = run.min(64 - bit);
            self.prefix += run;
            if run < 64 - bit {
                break;
            }
        }
    }

    /// The bytes received contiguously from stream offset 0.
    pub fn contiguous(&self) -> &[u8] {
        &self.data[..self.prefix]
    }

    /// How many distinct stream bytes below the capacity have been received, in any order.
    pub fn received_len(&self) -> usize {
        self.received.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// How far the first handshake message has arrived.
    pub fn first_message(&self) -> FirstMessage<'_> {
        let Some(header) = self.data.get(..4).filter(|_| self.prefix >= 4) else {
            return FirstMessage::NeedHeader;
        };
        let total = 4 + (usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]));
        if total > CAPACITY {
            FirstMessage::TooLarge { total }
        } else if self.prefix >= total {
            FirstMessage::Complete(&self.data[..total])
        } else {
            FirstMessage::Partial { have: self.prefix, total }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::quic::{decrypt_client_initial, packets, InitialHeader, InitialKeys, PacketType, Version};

    /// A ClientHello-shaped message of `len` bytes after its 4-byte header, with "example.com"
    /// in the middle.
    fn client_hello(len: usize) -> Vec<u8> {
        let mut m = vec![0x01, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        m.extend((0..len).map(|i| (i * 7 + 3) as u8));
        let mid = m.len() / 2;
        m[mid..mid + 11].copy_from_slice(b"example.com");
        m
    }

    /// A CRYPTO frame for `data` at `offset`, with 2-byte varints for offset and length.
    fn crypto(out: &mut Vec<u8>, offset: usize, data: &[u8]) {
        out.push(0x06);
        out.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
        out.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    #[test]
    fn reassembles_a_shuffled_client_hello_split_over_two_packets() {
        for version in [Version::V1, Version::V2] {
            let hello = client_hello(1720);
            let total = hello.len();
            // Chrome-like: chunks shuffled within and across packets, plus PING, PADDING and a
            // repeated chunk that overlaps two others.
            let cuts = [0, 300, 610, 900, 1250, total];
            let chunk = |i: usize| (cuts[i], &hello[cuts[i]..cuts[i + 1]]);
            let mut first = Vec::new();
            for i in [3, 0, 4] {
                let (o, d) = chunk(i);
                crypto(&mut first, o, d);
                first.push(0x01);
            }
            first.resize(1150, 0);
            let mut second = vec![0x00, 0x00];
            crypto(&mut second, 500, &hello[500..700]);
            for i in [2, 1] {
                let (o, d) = chunk(i);
                crypto(&mut second, o, d);
            }
            second.resize(1150, 0);

            let dcid = [0x5a; 8];
            let keys = InitialKeys::client(version, &dcid).unwrap();
            let mut datagrams = [[0u8; 1200]; 2];
            for (n, (payload, datagram)) in [&first, &second].into_iter().zip(&mut datagrams).enumerate() {
                let header = InitialHeader { dcid: &dcid, scid: &[1, 2, 3, 4], token: &[], packet_number: n as u32 };
                keys.seal(&header, payload, datagram).unwrap();
            }

            let mut r = CryptoReassembly::new();
            let mut out = [0u8; 1500];
            for (n, datagram) in datagrams.iter().enumerate() {
                for packet in packets(datagram) {
                    let packet = packet.unwrap();
                    assert_eq!(packet.header.packet_type, PacketType::Initial);
                    let initial = decrypt_client_initial(packet.bytes, &mut out).unwrap();
                    r.insert_packet(&initial).unwrap();
                }
                if n == 0 {
                    assert_eq!(r.first_message(), FirstMessage::Partial { have: 300, total });
                }
            }
            assert_eq!(r.first_message(), FirstMessage::Complete(&hello[..]));
            assert_eq!(r.contiguous(), &hello[..]);
            assert!(r.contiguous().windows(11).any(|w| w == b"example.com"));
        }
    }

    #[test]
    fn handles_order_overlap_and_duplicates() {
        let hello = client_hello(100);
        let mut r = CryptoReassembly::new();
        assert_eq!(r.first_message(), FirstMessage::NeedHeader);
        r.insert(50, &hello[50..]).unwrap();
        assert_eq!(r.contiguous(), b"");
        r.insert(2, &hello[2..60]).unwrap();
        assert_eq!(r.first_message(), FirstMessage::NeedHeader);
        r.insert(0, &hello[..3]).unwrap();
        r.insert(0, &hello[..3]).unwrap();
        assert_eq!(r.first_message(), FirstMessage::Complete(&hello[..]));
        assert_eq!(r.received_len(), hello.len());
        // Different bytes where some were received: refused, nothing kept.
        let mut other = hello[10..20].to_vec();
        other[5] ^= 1;
        assert_eq!(r.insert(10, &other), Err(QuicError::CryptoConflict { offset: 15 }));
        assert_eq!(r.contiguous(), &hello[..]);
        r.clear();
        assert_eq!(r.contiguous(), b"");
    }

    #[test]
    fn refuses_data_past_the_capacity() {
        let mut r = CryptoReassembly::new();
        let data = [0xaa; 100];
        assert_eq!(
            r.insert(4050, &data),
            Err(QuicError::CryptoBeyondCapacity { offset: 4050, end: 4150, capacity: 4096 })
        );
        assert_eq!(r.received_len(), 46);
        assert!(r.insert(u64::MAX - 3, &data).is_err());
        assert!(r.insert(1 << 62, &[]).is_ok());
        r.insert(0, &[0x01, 0x00, 0x10, 0x00]).unwrap();
        assert_eq!(r.first_message(), FirstMessage::TooLarge { total: 4100 });
        // Filling the whole buffer in odd pieces gives a prefix of exactly the capacity.
        let mut r = CryptoReassembly::new();
        let all: Vec<u8> = (0..CAPACITY).map(|i| i as u8).collect();
        for (i, piece) in all.chunks(77).enumerate().rev() {
            r.insert((i * 77) as u64, piece).unwrap();
        }
        assert_eq!(r.contiguous(), &all[..]);
    }
}
