//! Selector and prefix parsing never panics, and the text form round-trips.
#![no_main]
use bawaba_policy::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(selector) = Selector::parse(text) {
            let again = Selector::parse(&selector.to_string()).expect("a displayed selector re-parses");
            assert_eq!(again, selector);
        }
    }
});
