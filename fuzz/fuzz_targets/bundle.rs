//! Bundle parsing and verification never panic.
//!
//! The first byte chooses the mode:
//! - even: the rest is a file; `inspect` and `verify` against a fixed trusted key must return.
//! - odd: the rest is a payload, wrapped in a header built by hand from docs/specs/bundle-format.md
//!   and signed with the fixed key, so that verification passes and the decoders (DEFLATE,
//!   postcard) see arbitrary signed bytes; decoding must return, never panic.
//!
//! Either way, `snapshot` and `compile` must accept the same payloads and agree on their counts.
#![no_main]
use bawaba_bundle::{inspect, verify, SigningKey, FORMAT_VERSION, HEADER_LEN, MAGIC};
use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let trusted = [key.verifying_key()];
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let _ = inspect(rest);
        if let Ok(verified) = verify(rest, &trusted) {
            same_outcome(&verified);
        }
        return;
    }
    // Odd: a signed bundle around an arbitrary payload.
    let encoding = (mode >> 1) % 3; // 0 postcard, 1 postcard+deflate, 2 unknown
    let decoded_len = if encoding == 0 { rest.len() as u64 } else { u64::from(mode) * 97 };
    let mut bytes = Vec::with_capacity(HEADER_LEN + rest.len() + 64);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    bytes.push(encoding);
    bytes.push(0); // flags: no audit head
    bytes.extend_from_slice(&1u64.to_be_bytes()); // policy version
    bytes.extend_from_slice(&0i64.to_be_bytes()); // created_at
    bytes.extend_from_slice(&(rest.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&decoded_len.to_be_bytes());
    bytes.extend_from_slice(&Sha256::digest(rest));
    bytes.extend_from_slice(key.verifying_key().as_bytes());
    bytes.extend_from_slice(&[0; 40]); // audit head absent
    assert_eq!(bytes.len(), HEADER_LEN, "the spec's header layout");
    bytes.extend_from_slice(rest);
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    let verified = verify(&bytes, &trusted).expect("a correctly signed bundle verifies");
    same_outcome(&verified);
});

/// Decoding to a snapshot and compiling in place accept the same payloads, and agree on what they
/// hold.
fn same_outcome(verified: &bawaba_bundle::VerifiedBundle<'_>) {
    let (snapshot, compiled) = (verified.snapshot(), verified.compile());
    assert_eq!(snapshot.is_ok(), compiled.is_ok(), "{snapshot:?} / {:?}", compiled.as_ref().err());
    if let (Ok(snapshot), Ok(compiled)) = (snapshot, compiled) {
        let counts = |s: bawaba_policy::RulesetStats| bawaba_policy::RulesetStats { heap_bytes: 0, ..s };
        assert_eq!(counts(snapshot.compile().stats()), counts(compiled.stats()));
    }
}
