//! DNS message parsing never panics; every record of a parsed message copies into a new message
//! that parses again with the same names and types.
#![no_main]
use bawaba_wire::dns::{Builder, Message, Rcode, Section};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(data) else { return };
    let mut text = [0u8; 256];
    if let Some(q) = msg.question() {
        let _ = q.name.to_text_lower(&mut text);
    }
    let mut b = Builder::response_to(&msg, Rcode::NOERROR);
    let mut copied = 0;
    for r in msg.answers().chain(msg.authority()) {
        let _ = r.address();
        b.copy_record(Section::Answer, &msg, &r);
        copied += 1;
    }
    let bytes = b.finish();
    let again = Message::parse(&bytes).expect("a built message parses");
    assert_eq!(again.answers().count(), copied);
    for (a, b) in again.answers().zip(msg.answers().chain(msg.authority())) {
        assert!(a.name.eq_ignore_case(&b.name));
        assert_eq!(a.rtype, b.rtype);
    }
});
