use std::io::{self, Read};

use super::*;

/// A packet copied out of the reader, for comparing whole runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    data: Vec<u8>,
    original_len: u32,
    timestamp_nanos: u64,
    link_type: LinkType,
    interface_id: u32,
    offset: u64,
}

/// Reads to the end: the packets, then the error that stopped the reader (as text), if any.
fn drain<R: Read>(mut r: CaptureReader<R>) -> (Vec<Owned>, Option<String>) {
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push(Owned {
                data: p.data.to_vec(),
                original_len: p.original_len,
                timestamp_nanos: p.timestamp_nanos,
                link_type: p.link_type,
                interface_id: p.interface_id,
                offset: p.offset,
            }),
            Ok(None) => return (out, None),
            Err(e) => {
                // Fused: nothing after an error.
                assert!(r.next_packet().unwrap().is_none());
                return (out, Some(e.to_string()));
            }
        }
    }
}

/// Reads a whole in-memory file, failing the test on any error.
fn read_ok(bytes: &[u8]) -> Vec<Owned> {
    let (packets, err) = drain(CaptureReader::new(bytes).unwrap());
    assert_eq!(err, None);
    packets
}

/// Reads until the first error and returns the packets before it and the error.
fn read_err(bytes: &[u8]) -> (usize, CaptureError) {
    let mut r = CaptureReader::new(bytes).unwrap();
    let mut n = 0;
    loop {
        match r.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("expected an error after {n} packets"),
            Err(e) => return (n, e),
        }
    }
}

/// Hands out 1 to 7 bytes per `read`, with an `Interrupted` now and then.
struct Dribble<'a> {
    data: &'a [u8],
    state: u32,
}

impl<'a> Dribble<'a> {
    fn new(data: &'a [u8]) -> Self {
        Dribble { data, state: 12345 }
    }
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let roll = (self.state >> 16) % 8;
        if roll == 0 {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = (roll as usize).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

// ---- builders for pcapng blocks -----------------------------------------------------------

fn put16(out: &mut Vec<u8>, be: bool, v: u16) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put32(out: &mut Vec<u8>, be: bool, v: u32) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// Frames `body` as a block: type, total length, body padded to 32 bits, total length.
fn block(out: &mut Vec<u8>, be: bool, block_type: u32, body: &[u8]) {
    let len = 12 + body.len().next_multiple_of(4) as u32;
    put32(out, be, block_type);
    put32(out, be, len);
    out.extend_from_slice(body);
    out.resize(out.len() + body.len().next_multiple_of(4) - body.len(), 0);
    put32(out, be, len);
}

fn shb(out: &mut Vec<u8>, be: bool) {
    let mut body = Vec::new();
    put32(&mut body, be, 0x1a2b_3c4d);
    put16(&mut body, be, 1);
    put16(&mut body, be, 0);
    body.extend_from_slice(&[0xff; 8]); // section length unknown
    block(out, be, 0x0a0d_0d0a, &body);
}

/// An option: code, length, value padded to 32 bits.
fn opt(be: bool, code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    put16(&mut o, be, code);
    put16(&mut o, be, value.len() as u16);
    o.extend_from_slice(value);
    o.resize(o.len().next_multiple_of(4), 0);
    o
}

fn idb(out: &mut Vec<u8>, be: bool, link: LinkType, snaplen: u32, options: &[Vec<u8>]) {
    let mut body = Vec::new();
    put16(&mut body, be, link.0);
    put16(&mut body, be, 0);
    put32(&mut body, be, snaplen);
    for o in options {
        body.extend_from_slice(o);
    }
    if !options.is_empty() {
        body.extend_from_slice(&[0; 4]); // opt_endofopt
    }
    block(out, be, 1, &body);
}

fn epb(out: &mut Vec<u8>, be: bool, interface: u32, ticks: u64, data: &[u8], original_len: u32) {
    let mut body = Vec::new();
    put32(&mut body, be, interface);
    put32(&mut body, be, (ticks >> 32) as u32);
    put32(&mut body, be, ticks as u32);
    put32(&mut body, be, data.len() as u32);
    put32(&mut body, be, original_len);
    body.extend_from_slice(data);
    block(out, be, 6, &body);
}

fn spb(out: &mut Vec<u8>, be: bool, original_len: u32, data: &[u8]) {
    let mut body = Vec::new();
    put32(&mut body, be, original_len);
    body.extend_from_slice(data);
    block(out, be, 3, &body);
}

// ---- classic pcap --------------------------------------------------------------------------

/// Little-endian, microseconds, Ethernet: two records, the second cut by the snap length.
const PCAP_LE_USEC: &[u8] = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\
    \x04\x00\x00\x00\x01\x00\x00\x00\
    \x00\xf1\x53\x65\x40\xe2\x01\x00\x03\x00\x00\x00\x03\x00\x00\x00abc\
    \x01\xf1\x53\x65\x01\x00\x00\x00\x04\x00\x00\x00\x3c\x00\x00\x00wxyz";

/// Big-endian, nanoseconds, raw IP, one record.
const PCAP_BE_NSEC: &[u8] = b"\xa1\xb2\x3c\x4d\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\
    \x00\x00\xff\xff\x00\x00\x00\x65\
    \x65\x53\xf1\x00\x3b\x9a\xc9\xff\x00\x00\x00\x02\x00\x00\x00\x02\x45\x00";

#[test]
fn classic_le_microseconds() {
    let r = CaptureReader::new(PCAP_LE_USEC).unwrap();
    assert_eq!(r.format(), Format::Pcap { nanosecond: false });
    let p = read_ok(PCAP_LE_USEC);
    assert_eq!(p.len(), 2);
    assert_eq!((&p[0].data[..], p[0].original_len, p[0].link_type), (&b"abc"[..], 3, LinkType::ETHERNET));
    assert_eq!(p[0].timestamp_nanos, 1_700_000_000_123_456_000);
    assert_eq!((p[0].offset, p[1].offset), (24, 43));
    assert_eq!((&p[1].data[..], p[1].original_len), (&b"wxyz"[..], 60));
    assert_eq!(p[1].timestamp_nanos, 1_700_000_001_000_001_000);
}

#[test]
fn classic_be_nanoseconds() {
    let r = CaptureReader::new(PCAP_BE_NSEC).unwrap();
    assert_eq!(r.format(), Format::Pcap { nanosecond: true });
    let p = read_ok(PCAP_BE_NSEC);
    assert_eq!(p.len(), 1);
    assert_eq!((&p[0].data[..], p[0].link_type, p[0].interface_id), (&b"\x45\x00"[..], LinkType::RAW, 0));
    assert_eq!(p[0].timestamp_nanos, 1_700_000_000_999_999_999);
    let mut r = CaptureReader::new(PCAP_BE_NSEC).unwrap();
    let p = r.next_packet().unwrap().unwrap();
    assert_eq!((p.timestamp_secs(), p.timestamp_subsec_nanos()), (1_700_000_000, 999_999_999));
}

#[test]
fn classic_all_four_magics() {
    for (be, nanos) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut f = Vec::new();
        put32(&mut f, be, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        put16(&mut f, be, 2);
        put16(&mut f, be, 4);
        f.extend_from_slice(&[0; 8]);
        put32(&mut f, be, 65535);
        put32(&mut f, be, 0x1000_0000 | 276); // FCS bits above the link type are ignored
        put32(&mut f, be, 10);
        put32(&mut f, be, 7);
        put32(&mut f, be, 1);
        put32(&mut f, be, 1);
        f.push(0x99);
        let p = read_ok(&f);
        assert_eq!(p[0].link_type, LinkType::LINUX_SLL2);
        assert_eq!(p[0].timestamp_nanos, 10_000_000_000 + if nanos { 7 } else { 7_000 }, "be={be} nanos={nanos}");
        assert_eq!(p[0].data, [0x99]);
    }
}

#[test]
fn writer_round_trip() {
    for precision in [TimestampPrecision::Microseconds, TimestampPrecision::Nanoseconds] {
        let mut w = PcapWriter::with_precision(Vec::new(), LinkType::IPV6, 8, precision).unwrap();
        w.write_packet(1_700_000_000_123_456_789, b"0123456789").unwrap();
        w.write_packet(5, b"").unwrap();
        assert!(w.write_packet(u64::MAX, b"x").is_err());
        let file = w.into_inner().unwrap();
        let p = read_ok(&file);
        assert_eq!(p.len(), 2);
        assert_eq!((&p[0].data[..], p[0].original_len, p[0].link_type), (&b"01234567"[..], 10, LinkType::IPV6));
        let expected = match precision {
            TimestampPrecision::Microseconds => (1_700_000_000_123_456_000, 0),
            TimestampPrecision::Nanoseconds => (1_700_000_000_123_456_789, 5),
        };
        assert_eq!((p[0].timestamp_nanos, p[1].timestamp_nanos), expected);
        assert_eq!((p[1].data.len(), p[1].original_len), (0, 0));
    }
}

#[test]
fn classic_errors() {
    // Garbage and empty input.
    assert!(matches!(
        CaptureReader::new(&b"GET / HTTP/1.1\r\n"[..]),
        Err(CaptureError::NotCapture { magic: 0x4745_5420 })
    ));
    assert!(matches!(CaptureReader::new(&b""[..]), Err(CaptureError::Truncated { offset: 0 })));
    assert!(matches!(CaptureReader::new(&PCAP_LE_USEC[..20]), Err(CaptureError::Truncated { offset: 0 })));
    // Version 3.
    let mut v3 = PCAP_LE_USEC.to_vec();
    v3[4] = 3;
    assert!(matches!(CaptureReader::new(&v3[..]), Err(CaptureError::UnsupportedVersion { offset: 4, major: 3, .. })));
    // Cut in the middle of the second record: the first still comes out.
    let (n, e) = read_err(&PCAP_LE_USEC[..PCAP_LE_USEC.len() - 2]);
    assert_eq!(n, 1);
    assert!(matches!(e, CaptureError::Truncated { offset: 43 }), "{e}");
    let (n, e) = read_err(&PCAP_LE_USEC[..50]);
    assert!(n == 1 && matches!(e, CaptureError::Truncated { offset: 43 }));
    // An absurd captured length.
    let mut big = PCAP_LE_USEC.to_vec();
    big[32..36].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let (n, e) = read_err(&big);
    assert!(n == 0 && matches!(e, CaptureError::PacketTooLarge { offset: 24, length: 0x7fff_ffff, .. }), "{e}");
}

// ---- pcapng --------------------------------------------------------------------------------

/// Little-endian section: SHB, Ethernet IDB (snaplen 65535), and an EPB with 5 data bytes (3 of
/// padding) followed by an `opt_comment` "hi" and `opt_endofopt`.
const PCAPNG_LE: &[u8] = b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00\
    \xff\xff\xff\xff\xff\xff\xff\xff\x1c\x00\x00\x00\
    \x01\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00\xff\xff\x00\x00\x14\x00\x00\x00\
    \x06\x00\x00\x00\x34\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\
    \x05\x00\x00\x00\x3c\x00\x00\x00hello\x00\x00\x00\x01\x00\x02\x00hi\x00\x00\
    \x00\x00\x00\x00\x34\x00\x00\x00";

#[test]
fn pcapng_epb_with_padding_and_options() {
    let r = CaptureReader::new(PCAPNG_LE).unwrap();
    assert_eq!(r.format(), Format::Pcapng);
    assert_eq!(r.offset(), 28);
    let p = read_ok(PCAPNG_LE);
    assert_eq!(p.len(), 1);
    assert_eq!((&p[0].data[..], p[0].original_len, p[0].link_type), (&b"hello"[..], 60, LinkType::ETHERNET));
    assert_eq!(p[0].timestamp_nanos, ((1u64 << 32) | 2) * 1_000);
    assert_eq!((p[0].interface_id, p[0].offset), (0, 48));
}

/// Two sections of opposite byte order; interfaces do not carry over.
fn two_sections() -> Vec<u8> {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, LinkType::ETHERNET, 0, &[]);
    idb(&mut f, false, LinkType::RAW, 0, &[opt(false, 9, &[9])]);
    epb(&mut f, false, 1, 1_700_000_000_000_000_001, b"ns", 2);
    epb(&mut f, false, 0, 1_700_000_000_000_001, b"us", 2);
    shb(&mut f, true);
    // 2^-10 s units, one hour later.
    idb(
        &mut f,
        true,
        LinkType::IPV6,
        0,
        &[opt(true, 2, b"eth0"), opt(true, 9, &[0x8a]), opt(true, 14, &3600u64.to_be_bytes())],
    );
    epb(&mut f, true, 0, 3 * 1024 + 512, b"\x60\x00\x00", 40);
    spb(&mut f, true, 1, b"z");
    f
}

#[test]
fn pcapng_two_sections_of_different_byte_order() {
    let f = two_sections();
    let p = read_ok(&f);
    assert_eq!(p.len(), 4);
    assert_eq!(
        (p[0].link_type, p[0].interface_id, p[0].timestamp_nanos),
        (LinkType::RAW, 1, 1_700_000_000_000_000_001)
    );
    assert_eq!(
        (p[1].link_type, p[1].interface_id, p[1].timestamp_nanos),
        (LinkType::ETHERNET, 0, 1_700_000_000_000_001_000)
    );
    assert_eq!((p[2].link_type, p[2].interface_id), (LinkType::IPV6, 0));
    assert_eq!(p[2].timestamp_nanos, 3_600_000_000_000 + 3_500_000_000);
    assert_eq!((&p[2].data[..], p[2].original_len), (&b"\x60\x00\x00"[..], 40));
    assert_eq!((&p[3].data[..], p[3].timestamp_nanos, p[3].link_type), (&b"z"[..], 0, LinkType::IPV6));

    // Interface 1 of the first section is gone in the second.
    let mut bad = f.clone();
    epb(&mut bad, true, 1, 0, b"", 0);
    let (n, e) = read_err(&bad);
    assert_eq!(n, 4);
    assert!(matches!(e, CaptureError::UnknownInterface { interface_id: 1, offset } if offset == f.len() as u64), "{e}");
}

#[test]
fn pcapng_simple_packet_block_and_snaplen() {
    let mut f = Vec::new();
    shb(&mut f, true);
    // A packet before any interface is described.
    let mut early = f.clone();
    spb(&mut early, true, 1, b"a");
    let (_, e) = read_err(&early);
    assert!(matches!(e, CaptureError::UnknownInterface { interface_id: 0, offset: 28 }), "{e}");

    idb(&mut f, true, LinkType::ETHERNET, 4, &[]);
    spb(&mut f, true, 10, b"0123456789"); // cut to the snap length
    spb(&mut f, true, 3, b"abc"); // one byte of padding, not data
    spb(&mut f, true, 9000, b"abcdefgh"); // the rest was not captured (block is shorter)
    let p = read_ok(&f);
    let got: Vec<_> = p.iter().map(|p| (&p.data[..], p.original_len)).collect();
    assert_eq!(got, [(&b"0123"[..], 10), (&b"abc"[..], 3), (&b"abcd"[..], 9000)]);
}

#[test]
fn pcapng_obsolete_packet_block() {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, LinkType::NULL, 0, &[]);
    idb(&mut f, false, LinkType::LINUX_SLL, 0, &[]);
    let mut body = Vec::new();
    put16(&mut body, false, 1); // interface
    put16(&mut body, false, 7); // drops
    put32(&mut body, false, 0);
    put32(&mut body, false, 2_000_000);
    put32(&mut body, false, 3);
    put32(&mut body, false, 3);
    body.extend_from_slice(b"old");
    block(&mut f, false, 2, &body);
    let p = read_ok(&f);
    assert_eq!((&p[0].data[..], p[0].link_type, p[0].interface_id), (&b"old"[..], LinkType::LINUX_SLL, 1));
    assert_eq!(p[0].timestamp_nanos, 2_000_000_000);
}

#[test]
fn pcapng_skips_other_blocks() {
    let mut f = Vec::new();
    shb(&mut f, false);
    block(&mut f, false, 4, &[1, 0, 8, 0, 10, 0, 0, 1, b'a', b'.', b't', 0, 0, 0, 0, 0]); // name resolution
    idb(&mut f, false, LinkType::IPV4, 0, &[]);
    block(&mut f, false, 5, &[0; 12]); // interface statistics
    block(&mut f, false, 0x0000_000a, b"TLSK\x00\x00\x00\x00"); // decryption secrets
    block(&mut f, false, 0x4000_0bad, &[0xee; 7]); // custom
    block(&mut f, false, 0xdead_beef, &[]); // unknown, empty
                                            // An unknown block longer than the reader ever holds: streamed past.
    block(&mut f, false, 0x0000_0bad, &vec![0x55; MAX_BLOCK_LEN as usize + 100]);
    epb(&mut f, false, 0, 0, b"\x45", 1);
    for len in [64, DEFAULT_BUFFER_LEN] {
        let (p, err) = drain(CaptureReader::with_buffer_len(&f[..], len).unwrap());
        assert_eq!(err, None);
        assert_eq!(p.len(), 1);
        assert_eq!((&p[0].data[..], p[0].link_type), (&b"\x45"[..], LinkType::IPV4));
        assert_eq!(p[0].offset, f.len() as u64 - 36);
    }
}

#[test]
fn pcapng_bad_lengths_are_errors() {
    let mut head = Vec::new();
    shb(&mut head, false);
    idb(&mut head, false, LinkType::ETHERNET, 0, &[]);
    let at = head.len() as u64;
    let with = |block_type: u32, length: u32, rest: &[u8]| {
        let mut f = head.clone();
        put32(&mut f, false, block_type);
        put32(&mut f, false, length);
        f.extend_from_slice(rest);
        f
    };
    for (block_type, length) in [(6, 0), (6, 13), (6, 8), (6, 28), (1, 16), (3, 12), (99, 4), (99, 6)] {
        let (_, e) = read_err(&with(block_type, length, &[0; 64]));
        assert!(matches!(e, CaptureError::BlockLength { offset, length: l } if offset == at && l == length), "{e}");
    }
    let (_, e) = read_err(&with(6, 0xffff_fff0, &[0; 64]));
    assert!(matches!(e, CaptureError::BlockTooLarge { length: 0xffff_fff0, .. }), "{e}");
    let (_, e) = read_err(&with(99, 0xffff_fff0, &[0; 64]));
    assert!(matches!(e, CaptureError::Truncated { offset } if offset == at), "{e}");
    // Trailer disagrees.
    let mut f = head.clone();
    block(&mut f, false, 99, &[0; 8]);
    let n = f.len();
    f[n - 4] = 0x30;
    let (_, e) = read_err(&f);
    assert!(matches!(e, CaptureError::BlockTrailer { leading: 20, trailing: 0x30, .. }), "{e}");
    // Captured length runs past the block, or past the cap.
    let mut f = head.clone();
    epb(&mut f, false, 0, 0, b"abcd", 4);
    let mut past = f.clone();
    past[head.len() + 20] = 5;
    let (_, e) = read_err(&past);
    assert!(matches!(e, CaptureError::Malformed { offset, .. } if offset == at + 20), "{e}");
    past[head.len() + 20..head.len() + 24].copy_from_slice(&(MAX_PACKET_LEN + 1).to_le_bytes());
    let (_, e) = read_err(&past);
    assert!(matches!(e, CaptureError::PacketTooLarge { .. }), "{e}");
    // An IDB option that overflows its block.
    let mut f = head.clone();
    idb(&mut f, false, LinkType::RAW, 0, &[opt(false, 9, &[6])]);
    f[head.len() + 18] = 40;
    let (_, e) = read_err(&f);
    assert!(matches!(e, CaptureError::Malformed { offset, .. } if offset == at + 16), "{e}");
}

#[test]
fn pcapng_bad_section_headers() {
    let mut f = PCAPNG_LE.to_vec();
    f[8] = 0x00;
    assert!(matches!(CaptureReader::new(&f[..]), Err(CaptureError::Malformed { offset: 8, .. })));
    let mut f = PCAPNG_LE.to_vec();
    f[12] = 2;
    assert!(matches!(CaptureReader::new(&f[..]), Err(CaptureError::UnsupportedVersion { major: 2, .. })));
    let mut f = PCAPNG_LE.to_vec();
    f[4] = 0x18;
    f[24] = 0x18;
    assert!(matches!(CaptureReader::new(&f[..]), Err(CaptureError::BlockLength { offset: 0, length: 0x18 })));
    assert!(matches!(CaptureReader::new(&PCAPNG_LE[..10]), Err(CaptureError::Truncated { offset: 0 })));
}

/// Every prefix of a good file reads as a prefix of its packets, then either a clean end (at a
/// record boundary) or `Truncated` at the start of the cut record.
#[test]
fn every_truncation_is_reported_at_the_cut_record() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    for i in 0..5u8 {
        w.write_packet(u64::from(i) * 1_000, &vec![i; usize::from(i) * 3]).unwrap();
    }
    let pcap = w.into_inner().unwrap();
    for file in [pcap, two_sections(), PCAPNG_LE.to_vec()] {
        let full = read_ok(&file);
        let header_len = if file[0] == 0x0a { 28 } else { 24 };
        for cut in 0..file.len() {
            let Ok(r) = CaptureReader::new(&file[..cut]) else {
                assert!(cut < header_len, "header error at cut {cut}");
                continue;
            };
            let (p, err) = drain(r);
            assert_eq!(p[..], full[..p.len()], "cut {cut}");
            // The next record starts at or before the cut; with bytes of it present, it is
            // reported as truncated at its start.
            let next = full.get(p.len()).map_or(file.len() as u64, |q| q.offset);
            match err {
                None => assert!(next >= cut as u64, "cut {cut}"),
                Some(e) => assert!(e.starts_with("capture truncated: the record at byte"), "cut {cut}: {e}"),
            }
        }
    }
}

/// Byte-at-a-time-ish input and tiny buffers (forcing compaction and growth) read exactly what
/// one big read does.
#[test]
fn buffer_refill_boundaries() {
    let mut w =
        PcapWriter::with_precision(Vec::new(), LinkType::RAW, 100_000, TimestampPrecision::Nanoseconds).unwrap();
    for i in 0..300u32 {
        let len = if i % 50 == 7 { 5000 } else { (i * 7 % 131) as usize };
        w.write_packet(u64::from(i) * 999_999_937, &vec![i as u8; len]).unwrap();
    }
    let pcap = w.into_inner().unwrap();
    let mut ng = two_sections();
    for i in 0..200u32 {
        let len = if i % 40 == 3 { 3000 } else { (i * 13 % 97) as usize };
        if i % 17 == 0 {
            block(&mut ng, true, 0x0bad, &vec![1; len]);
        }
        epb(&mut ng, true, 0, u64::from(i), &vec![i as u8; len], len as u32);
    }
    for file in [pcap, ng] {
        let (expected, err) = drain(CaptureReader::new(&file[..]).unwrap());
        assert_eq!(err, None);
        assert!(expected.len() >= 200);
        for len in [64, 65, 100, 1021, 4096] {
            let (got, err) = drain(CaptureReader::with_buffer_len(Dribble::new(&file), len).unwrap());
            assert_eq!(err, None);
            assert!(got == expected, "buffer {len}");
        }
        let cut = &file[..file.len() - 3];
        let (got, err) = drain(CaptureReader::with_buffer_len(Dribble::new(cut), 64).unwrap());
        assert_eq!(got[..], expected[..expected.len() - 1]);
        assert!(err.is_some_and(|e| e.starts_with("capture truncated")));
    }
}

/// The body of `fuzz/fuzz_targets/capture.rs`, kept identical so that it compiles and runs here.
fn fuzz_target_body(data: &[u8]) {
    let (mut big, mut small) = match (CaptureReader::new(data), CaptureReader::with_buffer_len(data, 64)) {
        (Ok(b), Ok(s)) => (b, s),
        (Err(b), Err(s)) => {
            assert_eq!(b.to_string(), s.to_string());
            return;
        }
        (b, s) => panic!("buffer size changed the header outcome: {:?} vs {:?}", b.err(), s.err()),
    };
    assert_eq!(big.format(), small.format());
    let mut failed = false;
    loop {
        match (big.next_packet(), small.next_packet()) {
            (Ok(Some(a)), Ok(Some(b))) => {
                assert!(a.data.len() <= MAX_PACKET_LEN as usize);
                assert_eq!(a, b);
            }
            (Ok(None), Ok(None)) => break,
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string());
                failed = true;
                break;
            }
            (a, b) => panic!("buffer size changed the outcome: {a:?} vs {b:?}"),
        }
    }
    if failed {
        assert!(matches!(big.next_packet(), Ok(None)), "the reader is fused after an error");
    }
}

/// What `fuzz/fuzz_targets/capture.rs` checks, run over single-byte corruptions of good files:
/// no panic, and the same outcome whatever the buffer size and read sizes.
#[test]
fn corrupted_files_read_the_same_with_any_buffer() {
    for file in [PCAP_LE_USEC.to_vec(), PCAP_BE_NSEC.to_vec(), PCAPNG_LE.to_vec(), two_sections()] {
        for i in 0..file.len() {
            for v in [0x00, 0x01, 0x80, 0xff] {
                let mut f = file.clone();
                f[i] = v;
                let big = CaptureReader::new(&f[..]).map(drain).map_err(|e| e.to_string());
                let small = CaptureReader::with_buffer_len(Dribble::new(&f), 64).map(drain).map_err(|e| e.to_string());
                assert_eq!(big, small, "byte {i} = {v:#x}");
                fuzz_target_body(&f);
            }
        }
    }
}

#[test]
fn error_offsets_and_display() {
    let e = CaptureError::Truncated { offset: 4096 };
    assert_eq!(e.offset(), 4096);
    assert_eq!(e.to_string(), "capture truncated: the record at byte 4096 is incomplete");
    assert_eq!(
        CaptureError::NotCapture { magic: 0x7f45_4c46 }.to_string(),
        "not a pcap or pcapng file (magic 0x7f454c46)"
    );
    assert_eq!(format!("{:?} {}", LinkType::LINUX_SLL2, LinkType(147)), "LINUX_SLL2 LinkType147");
}

/// A pcapng written by Wireshark's `editcap` from our pcap reads the same as the pcap.
#[test]
fn editcap_pcapng_agrees_with_pcap() {
    let dir = std::env::temp_dir();
    for precision in [TimestampPrecision::Microseconds, TimestampPrecision::Nanoseconds] {
        let tag = format!("bawaba-pcap-{}-{precision:?}", std::process::id());
        let (src, dst) = (dir.join(format!("{tag}.pcap")), dir.join(format!("{tag}.pcapng")));
        let mut w = PcapWriter::with_precision(Vec::new(), LinkType::ETHERNET, 1500, precision).unwrap();
        for i in 0..50u64 {
            let frame: Vec<u8> = (0..60 + i * 41).map(|b| (b ^ i) as u8).collect();
            w.write_packet(1_700_000_000_000_000_000 + i * 1_234_567_891, &frame).unwrap();
        }
        std::fs::write(&src, w.into_inner().unwrap()).unwrap();
        let status = std::process::Command::new("editcap").arg("-F").arg("pcapng").arg(&src).arg(&dst).status();
        let Ok(status) = status else {
            println!("SKIPPED: editcap is not installed");
            let _ = std::fs::remove_file(&src);
            return;
        };
        assert!(status.success());
        let ours = read_ok(&std::fs::read(&src).unwrap());
        let ng = std::fs::read(&dst).unwrap();
        let theirs = read_ok(&ng);
        assert_eq!(CaptureReader::new(&ng[..]).unwrap().format(), Format::Pcapng);
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(
                (&a.data, a.original_len, a.timestamp_nanos, a.link_type),
                (&b.data, b.original_len, b.timestamp_nanos, b.link_type)
            );
        }
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&dst);
    }
}

#[test]
fn slice_reader_matches_the_streaming_reader() {
    let mut w =
        PcapWriter::with_precision(Vec::new(), LinkType::ETHERNET, 65535, TimestampPrecision::Nanoseconds).unwrap();
    for i in 0..50u64 {
        w.write_packet(1_700_000_000_000_000_000 + i * 1_000, &vec![i as u8; (i * 7 % 300) as usize]).unwrap();
    }
    let file = w.into_inner().unwrap();
    let mut stream = CaptureReader::new(&file[..]).unwrap();
    let mut slice = PcapSlice::new(&file).unwrap().unwrap();
    loop {
        let a = stream.next_packet().unwrap().map(|p| (p.data.to_vec(), p.timestamp_nanos, p.offset, p.link_type));
        let b = slice.next_packet().unwrap().map(|p| (p.data.to_vec(), p.timestamp_nanos, p.offset, p.link_type));
        assert_eq!(a, b);
        if a.is_none() {
            break;
        }
    }
    // Cut anywhere: same packets, then Truncated (or a clean end on a record boundary).
    for cut in 24..file.len() {
        let mut s = PcapSlice::new(&file[..cut]).unwrap().unwrap();
        let mut r = CaptureReader::new(&file[..cut]).unwrap();
        loop {
            let (a, b) = (s.next_packet(), r.next_packet());
            match (&a, &b) {
                (Ok(Some(x)), Ok(Some(y))) => assert_eq!(x.data, y.data),
                (Ok(None), Ok(None)) => break,
                (Err(CaptureError::Truncated { offset: x }), Err(CaptureError::Truncated { offset: y })) => {
                    assert_eq!(x, y);
                    break;
                }
                _ => panic!("cut {cut}: {a:?} vs {b:?}"),
            }
        }
    }
    assert!(PcapSlice::new(b"\x0a\x0d\x0d\x0a....").unwrap().is_none());
}
