//! Netlink acknowledgements as the conntrack updater reads them never panic the reader, and it
//! finds no more acknowledgements than 16-byte headers fit in the datagram.
#![no_main]
use bawaba_engine::conntrack::acknowledgements;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let count = acknowledgements(data).count();
    assert!(count <= data.len() / 16);
});
