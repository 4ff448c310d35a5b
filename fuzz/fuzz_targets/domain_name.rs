//! Domain name parsing never panics, and a parsed name re-parses to itself.
#![no_main]
use bawaba_policy::DomainName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(name) = DomainName::parse(text) {
            let again = DomainName::parse(name.as_str()).expect("a canonical name re-parses");
            assert_eq!(again, name);
        }
    }
});
