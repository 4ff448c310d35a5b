//! Long headers (RFC 9000 section 17.2) and the packets coalesced in a datagram (section 12.2).

use super::{QuicError, Reader, Version, MAX_CID_LEN};

/// Long-header packet types. The two type bits mean different things in QUIC v1 (RFC 9000
/// section 17.2) and QUIC v2 (RFC 9369 section 3.2); this is what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Initial: carries the first CRYPTO frames, protected with keys derived from the
    /// Destination Connection ID.
    Initial,
    /// 0-RTT: early application data.
    ZeroRtt,
    /// Handshake: the rest of the TLS handshake.
    Handshake,
    /// Retry: sent by servers; has no Length field and ends the datagram.
    Retry,
}

impl PacketType {
    /// Decodes the type bits (0x30 of the first byte) of a packet of `version`, or `None` for a
    /// version without Initial keys.
    pub fn from_first_byte(version: Version, first_byte: u8) -> Option<PacketType> {
        let bits = (first_byte >> 4) & 0x03;
        let types = if version == Version::V1 {
            // RFC 9000 section 17.2, table 5.
            [PacketType::Initial, PacketType::ZeroRtt, PacketType::Handshake, PacketType::Retry]
        } else if version == Version::V2 {
            // RFC 9369 section 3.2.
            [PacketType::Retry, PacketType::Initial, PacketType::ZeroRtt, PacketType::Handshake]
        } else {
            return None;
        };
        Some(types[usize::from(bits)])
    }

    /// The type bits of this type in `version`, already shifted into place (0x00..=0x30).
    pub(crate) fn bits(self, version: Version) -> u8 {
        let bits = match self {
            PacketType::Initial => 0,
            PacketType::ZeroRtt => 1,
            PacketType::Handshake => 2,
            PacketType::Retry => 3,
        };
        // QUIC v2 rotates the v1 values by one (RFC 9369 section 3.2).
        let bits = if version == Version::V2 { (bits + 1) & 0x03 } else { bits };
        bits << 4
    }
}

/// A validated long header of a QUIC v1 or v2 packet with a Length field: Initial, 0-RTT or
/// Handshake. Offsets count from the first byte of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// The first byte as found; while header protection is on, its low 4 bits are masked.
    pub first_byte: u8,
    /// The version.
    pub version: Version,
    /// What the type bits say, in this version.
    pub packet_type: PacketType,
    /// Destination Connection ID (0 to 20 bytes).
    pub dcid: &'a [u8],
    /// Source Connection ID (0 to 20 bytes).
    pub scid: &'a [u8],
    /// The token of an Initial packet (RFC 9000 section 17.2.2); empty for other types.
    pub token: &'a [u8],
    /// Offset of the packet number, just after the Length field.
    pub pn_offset: usize,
    /// Length of the whole packet: `pn_offset` plus the Length field's value.
    pub packet_len: usize,
}

impl<'a> LongHeader<'a> {
    /// Reads the long header at the start of `packet` (RFC 9000 section 17.2; section 17.2.2
    /// for the Initial's token). `packet` may go on past this packet, as in a datagram with
    /// coalesced packets; the Length field says where this one ends.
    pub fn parse(packet: &'a [u8]) -> Result<LongHeader<'a>, QuicError> {
        let mut r = Reader::new(packet, 0);
        let first_byte = r.u8("first byte")?;
        if first_byte & 0x80 == 0 {
            return Err(QuicError::NotLongHeader { offset: 0 });
        }
        let version_offset = r.offset();
        let version = Version(r.u32("version")?);
        let packet_type = PacketType::from_first_byte(version, first_byte)
            .ok_or(QuicError::UnsupportedVersion { offset: version_offset, version: version.0 })?;
        let dcid = read_cid(&mut r, "destination connection ID")?;
        let scid = read_cid(&mut r, "source connection ID")?;
        let token = match packet_type {
            PacketType::Initial => {
                let len = r.varint_len("token length")?;
                r.bytes(len, "token")?
            }
            PacketType::ZeroRtt | PacketType::Handshake => &[],
            PacketType::Retry => return Err(QuicError::BadPacketType { offset: 0, packet_type }),
        };
        let length = r.varint_len("length")?;
        let pn_offset = r.pos();
        Ok(LongHeader {
            first_byte,
            version,
            packet_type,
            dcid,
            scid,
            token,
            pn_offset,
            packet_len: pn_offset + length,
        })
    }
}

/// Reads a connection ID: a length byte, at most 20 in QUIC v1 and v2, then the bytes.
fn read_cid<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8], QuicError> {
    let offset = r.offset();
    let len = r.u8(what)?;
    if usize::from(len) > MAX_CID_LEN {
        return Err(QuicError::ConnectionIdTooLong { offset, len });
    }
    r.bytes(usize::from(len), what)
}

/// One long-header packet found in a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPacket<'a> {
    /// Where the packet starts in the datagram.
    pub offset: usize,
    /// The whole packet, header to authentication tag, still protected.
    pub bytes: &'a [u8],
    /// Its header, with offsets relative to [`LongPacket::bytes`].
    pub header: LongHeader<'a>,
}

/// The long-header packets coalesced in one UDP datagram (RFC 9000 section 12.2); see
/// [`packets`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    datagram: &'a [u8],
    pos: usize,
    done: bool,
}

/// Walks the packets of a datagram. Each long-header packet's Length field says where the next
/// one starts, so 0-RTT and Handshake packets are yielded (for the caller to skip) as well as
/// Initials. The walk ends quietly at a short-header packet, which runs to the end of the
/// datagram (zero bytes a client pads a datagram with look like one), and ends after yielding
/// an error for anything it cannot measure: an unknown version, a Version Negotiation or Retry
/// packet, or a truncated header. [`Packets::remainder`] gives the bytes not walked.
pub fn packets(datagram: &[u8]) -> Packets<'_> {
    Packets { datagram, pos: 0, done: false }
}

impl<'a> Packets<'a> {
    /// The bytes after the last packet yielded: empty, a short-header packet or padding, or the
    /// packet that could not be read.
    pub fn remainder(&self) -> &'a [u8] {
        self.datagram.get(self.pos..).unwrap_or_default()
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<LongPacket<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.remainder();
        match rest.first() {
            None => {
                self.done = true;
                return None;
            }
            Some(first) if first & 0x80 == 0 => {
                self.done = true;
                return None;
            }
            Some(_) => {}
        }
        match LongHeader::parse(rest) {
            Ok(header) => {
                let offset = self.pos;
                // parse() checked that packet_len <= rest.len(), and packet_len > 0.
                let bytes = &rest[..header.packet_len];
                self.pos += header.packet_len;
                Some(Ok(LongPacket { offset, bytes, header }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e.shifted(self.pos)))
            }
        }
    }
}

impl std::iter::FusedIterator for Packets<'_> {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::quic::vectors::{hex, V1_CLIENT_INITIAL};

    #[test]
    fn parses_the_rfc9001_client_initial_header() {
        let packet = hex(V1_CLIENT_INITIAL);
        let h = LongHeader::parse(&packet).unwrap();
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.packet_type, PacketType::Initial);
        assert_eq!(h.dcid, hex("8394c8f03e515708"));
        assert_eq!(h.scid, b"");
        assert_eq!(h.token, b"");
        assert_eq!(h.pn_offset, 18);
        assert_eq!(h.packet_len, 1200);
    }

    #[test]
    fn type_bits_differ_between_versions() {
        for version in [Version::V1, Version::V2] {
            for t in [PacketType::Initial, PacketType::ZeroRtt, PacketType::Handshake, PacketType::Retry] {
                assert_eq!(PacketType::from_first_byte(version, 0xc0 | t.bits(version)), Some(t));
            }
        }
        assert_eq!(PacketType::from_first_byte(Version::V1, 0xc0), Some(PacketType::Initial));
        assert_eq!(PacketType::from_first_byte(Version::V2, 0xd0), Some(PacketType::Initial));
        assert_eq!(PacketType::from_first_byte(Version::V2, 0xc0), Some(PacketType::Retry));
        assert_eq!(PacketType::from_first_byte(Version(7), 0xc0), None);
    }

    /// A Handshake packet: first byte, version, DCID, empty SCID, Length 3, 3 bytes.
    const HANDSHAKE: &[u8] = b"\xe0\x00\x00\x00\x01\x04\xaa\xbb\xcc\xdd\x00\x03\x01\x02\x03";

    #[test]
    fn walks_coalesced_packets_and_stops_at_a_short_header() {
        let initial = hex(V1_CLIENT_INITIAL);
        let mut datagram = HANDSHAKE.to_vec();
        datagram.extend_from_slice(&initial);
        datagram.extend_from_slice(&[0u8; 30]); // padding after the packets
        let mut it = packets(&datagram);
        let hs = it.next().unwrap().unwrap();
        assert_eq!(hs.header.packet_type, PacketType::Handshake);
        assert_eq!(hs.bytes, HANDSHAKE);
        let init = it.next().unwrap().unwrap();
        assert_eq!(init.offset, HANDSHAKE.len());
        assert_eq!(init.bytes, &initial[..]);
        assert!(it.next().is_none());
        assert_eq!(it.remainder(), &[0u8; 30]);
        assert!(it.next().is_none());
    }

    #[test]
    fn refuses_odd_headers_with_offsets() {
        let initial = hex(V1_CLIENT_INITIAL);
        // Cut anywhere inside: the header or the Length runs out.
        for cut in 0..initial.len() {
            assert!(LongHeader::parse(&initial[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(LongHeader::parse(&initial[..1199]), Err(QuicError::Truncated { offset: 16, what: "length" }));
        // After a good Handshake packet, the truncated Initial's error points into the datagram.
        let mut datagram = HANDSHAKE.to_vec();
        datagram.extend_from_slice(&initial[..10]);
        let errors: Vec<_> = packets(&datagram).filter_map(Result::err).collect();
        assert_eq!(errors, [QuicError::Truncated { offset: HANDSHAKE.len() + 6, what: "destination connection ID" }]);

        let mut v = initial.clone();
        v[1..5].copy_from_slice(&[0xff, 0x00, 0x00, 0x1d]);
        assert_eq!(LongHeader::parse(&v), Err(QuicError::UnsupportedVersion { offset: 1, version: 0xff00_001d }));
        let mut long_cid = initial.clone();
        long_cid[5] = 21;
        assert_eq!(LongHeader::parse(&long_cid), Err(QuicError::ConnectionIdTooLong { offset: 5, len: 21 }));
        assert_eq!(LongHeader::parse(&[0x40, 1, 2]), Err(QuicError::NotLongHeader { offset: 0 }));
        let mut retry = initial.clone();
        retry[0] = 0xf0;
        assert_eq!(
            packets(&retry).next(),
            Some(Err(QuicError::BadPacketType { offset: 0, packet_type: PacketType::Retry }))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_u32;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = seed as u8;
            }
            // Make long headers of real versions common.
            buf[0] |= 0x80;
            if seed.is_multiple_of(3) {
                buf[1..5].copy_from_slice(&Version::V1.0.to_be_bytes());
                buf[5] &= 0x0f;
            }
            let len = (seed as usize >> 8) % buf.len();
            for p in packets(&buf[..len]).flatten() {
                assert!(p.offset + p.bytes.len() <= len);
            }
        }
    }
}
