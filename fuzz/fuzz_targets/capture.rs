//! Reading a capture file never panics, and reads the same packets and ends the same way whether
//! the reader gets the bytes in one big buffer or a small one that it must refill, compact and grow.
//! (`crates/wire/src/pcap/tests.rs` runs the same body as `fuzz_target_body`.)
#![no_main]
use bawaba_wire::pcap::{CaptureReader, MAX_PACKET_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
