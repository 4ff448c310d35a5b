//! DNS message parsing never panics; every record of a parsed message copies into a new message
//! that parses again with the same names and types; a name's lowercased wire form (the cache key,
//! copied whole when the name has no pointer) equals the one its labels spell.
#![no_main]
use bawaba_wire::dns::{Builder, Message, Name, Rcode, Section};
use libfuzzer_sys::fuzz_target;

fn check_wire_lower(name: &Name<'_>) {
    let mut whole = Vec::new();
    name.write_wire_lower(&mut whole);
    let mut spelled = Vec::new();
    for label in name.labels() {
        spelled.push(label.len() as u8);
        spelled.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    spelled.push(0);
    assert_eq!(whole, spelled);
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(data) else { return };
    let mut text = [0u8; 256];
    if let Some(q) = msg.question() {
        let _ = q.name.to_text_lower(&mut text);
        check_wire_lower(&q.name);
    }
    let mut b = Builder::response_to(&msg, Rcode::NOERROR);
    let mut copied = 0;
    for r in msg.answers().chain(msg.authority()) {
        let _ = r.address();
        check_wire_lower(&r.name);
        b.copy_record(Section::Answer, &msg, &r);
        copied += 1;
    }
    let bytes = b.finish();
    let again = Message::parse(&bytes).expect("a built message parses");
    assert_eq!(again.answers().count(), copied);
    for (a, b) in again.answers().zip(msg.answers().chain(msg.authority())) {
        assert!(a.name.eq_ignore_case(&b.name));
        check_wire_lower(&a.name);
        assert_eq!(a.rtype, b.rtype);
    }
});
