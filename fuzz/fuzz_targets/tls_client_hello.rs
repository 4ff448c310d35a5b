//! ClientHello parsing never panics, over TLS records or as a bare handshake message; an
//! `Incomplete` answer always asks for more bytes than were given, and a hello never claims more
//! input than there was.
//!
//! Round trip: a ClientHello built by `tls::build_client_hello` from input-chosen fields (name of
//! 1..=100 bytes from [a-z0-9.-], ALPN list, ECH flag, padding 0..2000) and wrapped in records of
//! 1..=16384 bytes parses back to that name, ALPN list and ECH flag, consumes the whole stream,
//! and every prefix of the stream asks for more bytes without asking for more than the stream.
#![no_main]
use bawaba_wire::tls::{build_client_hello, parse_handshake, parse_records, wrap_records, ClientHello, TlsError};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn touch(hello: &ClientHello<'_>, input_len: usize) {
    for p in hello.alpn_protocols() {
        assert!(p.len() <= hello.alpn.len());
    }
    if let Some(name) = hello.server_name.as_str() {
        assert!(name.is_ascii());
    }
    assert!(hello.consumed <= input_len, "consumed {} of {input_len} bytes", hello.consumed);
}

fn check_incomplete<T>(r: &std::result::Result<T, TlsError>, input_len: usize) {
    if let Err(TlsError::Incomplete { needed }) = r {
        assert!(*needed > input_len, "Incomplete asks for {needed} bytes with {input_len} given");
    }
}

const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-";
const ALPN_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789./-_";

fn string(u: &mut Unstructured<'_>, chars: &[u8], len: std::ops::RangeInclusive<usize>) -> Result<String> {
    let n = u.int_in_range(len)?;
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(char::from(*u.choose(chars)?));
    }
    Ok(s)
}

fn round_trip(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let name = string(&mut u, NAME_CHARS, 1..=100)?;
    let alpn_count = u.int_in_range(0..=6usize)?;
    let mut alpn = Vec::with_capacity(alpn_count);
    for _ in 0..alpn_count {
        alpn.push(string(&mut u, ALPN_CHARS, 0..=32)?);
    }
    let ech: bool = u.arbitrary()?;
    let padding = u.int_in_range(0..=1999usize)?;
    let record_size = u.int_in_range(1..=16384usize)?;
    let cut: u16 = u.arbitrary()?;

    let alpn_refs: Vec<&str> = alpn.iter().map(String::as_str).collect();
    let msg = build_client_hello(Some(&name), &alpn_refs, ech, padding);
    let stream = wrap_records(&msg, record_size);
    let mut scratch = [0u8; 4096];
    assert!(msg.len() <= scratch.len(), "the largest hello built here fits the scratch buffer");

    // The bare message.
    let hello = parse_handshake(&msg).expect("a built hello parses");
    assert_eq!(hello.server_name.as_str(), Some(name.as_str()));
    assert_eq!(hello.ech, ech);
    assert_eq!(hello.consumed, msg.len());

    let parsed = parse_records(&stream, &mut scratch);
    if record_size < 4 {
        // The parser refuses a first record that splits the 4-byte handshake header.
        assert!(matches!(parsed, Err(TlsError::BadLength { .. })), "record size {record_size}: {parsed:?}");
        return Ok(());
    }
    let hello = parsed.unwrap_or_else(|e| panic!("record size {record_size}: {e}"));
    assert_eq!(hello.server_name.as_str(), Some(name.as_str()), "record size {record_size}");
    assert_eq!(hello.ech, ech);
    assert_eq!(hello.alpn_protocols().collect::<Vec<_>>(), alpn.iter().map(String::as_bytes).collect::<Vec<_>>());
    assert_eq!(hello.consumed, stream.len());

    // A prefix asks for more, and for no more than the whole stream.
    let n = usize::from(cut) % stream.len();
    match parse_records(&stream[..n], &mut scratch) {
        Err(TlsError::Incomplete { needed }) => {
            assert!(needed > n && needed <= stream.len(), "prefix {n} of {}: needed {needed}", stream.len())
        }
        other => panic!("prefix {n} of {} (record size {record_size}): {other:?}", stream.len()),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut scratch = [0u8; 4096];
    let r = parse_records(data, &mut scratch);
    check_incomplete(&r, data.len());
    if let Ok(hello) = r {
        touch(&hello, data.len());
    }
    let r = parse_handshake(data);
    check_incomplete(&r, data.len());
    if let Ok(hello) = r {
        touch(&hello, data.len());
    }
    let _ = round_trip(data);
});
