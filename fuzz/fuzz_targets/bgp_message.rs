//! BGP messages from a peer never panic the parser; a parsed message's length lies within the
//! input, and an OPEN survives being encoded and parsed again.
#![no_main]
use bawaba_bgp::wire::{encode_open, parse, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((message, len)) = parse(rest) {
        assert!(len >= 19 && len <= rest.len());
        if let Message::Open(open) = &message {
            let mut again = Vec::new();
            encode_open(&mut again, open);
            // Capabilities longer than one optional parameter holds are not re-encodable.
            if again.len() <= 4096 {
                if let Ok((Message::Open(back), _)) = parse(&again) {
                    assert_eq!(back.asn, open.asn);
                    assert_eq!(back.hold_time, open.hold_time);
                }
            }
        }
        rest = &rest[len..];
    }
});
