//! Black-box tests of signing, verifying, damage, directories and the slot.

#![allow(clippy::unwrap_used)] // Test helpers: a panic is the failure report.

use bawaba_bundle::*;
use bawaba_policy::{Action, AllowEntry, AllowId, Category, Order, OrderId, OrderStatus, PolicySnapshot, Rule, RuleId};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn snapshot(version: u64) -> PolicySnapshot {
    let order = Order {
        id: OrderId(1),
        authority: "Court of First Instance".into(),
        reference: "CFI-2026-0042".into(),
        issued_at: 1_000,
        effective_from: 1_000,
        expires_at: 1_000 + 30 * 86_400,
        category: Category::Phishing,
        summary: "Phishing site imitating a bank".into(),
        publishable: true,
        appeal_contact: "appeals@regulator.example".into(),
        status: OrderStatus::Approved,
        proposed_by: "alice".into(),
        approved_by: Some("bob".into()),
        revoked: None,
    };
    let rules = ["bank-login.test", "exact:www.fake.test", "*.phish.test", "198.18.0.0/24", "2001:db8:1::/48"]
        .iter()
        .enumerate()
        .map(|(i, s)| Rule {
            id: RuleId(i as i64 + 1),
            order: OrderId(1),
            selector: s.parse().unwrap(),
            action: Action::ALL[i % Action::ALL.len()],
            forced: (i == 3).then(|| "court named the range".to_string()),
        })
        .collect();
    let allow = vec![AllowEntry { id: AllowId(1), selector: "gov.test".parse().unwrap(), reason: "portal".into() }];
    PolicySnapshot { version, taken_at: 2_000, orders: vec![order], rules, allow }
}

fn options(encoding: PayloadEncoding) -> SignOptions {
    SignOptions { created_at: Some(1_800_000_000), audit_head: Some((12, [0x5a; 32])), encoding, ..Default::default() }
}

fn signed(version: u64) -> SignedBundle {
    SignedBundle::sign_with(&snapshot(version), &key(1), &options(PayloadEncoding::POSTCARD_DEFLATE)).unwrap()
}

#[test]
fn round_trip_both_encodings() {
    for encoding in [PayloadEncoding::POSTCARD, PayloadEncoding::POSTCARD_DEFLATE] {
        let bundle = SignedBundle::sign_with(&snapshot(7), &key(1), &options(encoding)).unwrap();
        let verified = verify(bundle.bytes(), &[key(2).verifying_key(), key(1).verifying_key()]).unwrap();
        assert_eq!(verified.header(), bundle.header());
        assert_eq!(verified.header().policy_version, 7);
        assert_eq!(verified.header().created_at, 1_800_000_000);
        assert_eq!(verified.header().audit_head, Some((12, [0x5a; 32])));
        assert_eq!(verified.header().encoding, encoding);
        assert_eq!(verified.snapshot().unwrap(), snapshot(7));
        assert_eq!(inspect(bundle.bytes()).unwrap(), *bundle.header());
    }
}

/// A bundle signed by an earlier build must keep verifying and decoding to the same snapshot.
/// The payload is the policy model's serde form, so a change to `Order`, `Rule`, `AllowEntry` or
/// `Selector` that breaks this test is a bundle format change: give it a new payload encoding
/// (or format version) instead of regenerating. `OVERWRITE=1` regenerates the file.
#[test]
fn golden_bundle_still_verifies_and_decodes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1-postcard.bundle");
    let fresh = SignedBundle::sign_with(&snapshot(7), &key(1), &options(PayloadEncoding::POSTCARD)).unwrap();
    if std::env::var_os("OVERWRITE").is_some() {
        std::fs::write(&path, fresh.bytes()).unwrap();
    }
    let golden = std::fs::read(&path).unwrap();
    let verified = verify(&golden, &[key(1).verifying_key()]).unwrap();
    assert_eq!(verified.header().policy_version, 7);
    assert_eq!(verified.snapshot().unwrap(), snapshot(7), "a format-1 bundle no longer decodes to the same snapshot");
    assert_eq!(fresh.bytes(), &golden[..], "this build no longer writes format 1 byte for byte");
}

/// What a ruleset says about a name or an address: verdict, selector and order reference.
fn answer(m: Option<bawaba_policy::Match<'_>>) -> Option<String> {
    m.map(|m| format!("{:?} {} {:?}", m.verdict(), m.selector(), m.order().map(|o| &o.reference)))
}

#[test]
fn compiling_in_place_gives_the_snapshot_s_ruleset() {
    let golden =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1-postcard.bundle"))
            .unwrap();
    let deflated = signed(7);
    for bytes in [&golden[..], deflated.bytes()] {
        let verified = verify(bytes, &[key(1).verifying_key()]).unwrap();
        let (compiled, expected) = (verified.compile().unwrap(), verified.snapshot().unwrap().compile());
        let counts = |s: bawaba_policy::RulesetStats| bawaba_policy::RulesetStats { heap_bytes: 0, ..s };
        assert_eq!(counts(compiled.stats()), counts(expected.stats()));
        assert_eq!(compiled.stats().domain_rules, 3);
        for name in [
            "bank-login.test",
            "a.bank-login.test",
            "www.fake.test",
            "fake.test",
            "x.phish.test",
            "gov.test",
            "other.test",
        ] {
            let got = answer(compiled.lookup_domain(name).unwrap());
            assert_eq!(got, answer(expected.lookup_domain(name).unwrap()), "{name}");
        }
        assert!(answer(compiled.lookup_domain("x.phish.test").unwrap()).unwrap().contains("CFI-2026-0042"));
        for addr in ["198.18.0.9", "2001:db8:1::1", "198.18.1.1"] {
            let addr = addr.parse().unwrap();
            assert_eq!(answer(compiled.lookup_ip(addr)), answer(expected.lookup_ip(addr)), "{addr}");
        }
    }
}

#[test]
fn signing_is_deterministic_and_content_addressed() {
    let a = signed(3);
    let b = signed(3);
    assert_eq!(a.bytes(), b.bytes());
    let name = a.file_name();
    assert!(name.starts_with("bawaba-policy-v00000003-") && name.ends_with(".bundle"), "{name}");
    assert_eq!(parse_file_name(&name), Some((3, &hex::encode(a.header().payload_sha256)[..16])));
    let mut other = snapshot(3);
    other.rules.pop();
    let c = SignedBundle::sign_with(&other, &key(1), &options(PayloadEncoding::POSTCARD_DEFLATE)).unwrap();
    assert_ne!(c.file_name(), name);
}

#[test]
fn version_zero_is_refused() {
    let e = SignedBundle::sign(&snapshot(0), &key(1), None).unwrap_err();
    assert!(matches!(e, BundleError::UnpublishedVersion), "{e}");
}

#[test]
fn flipped_payload_byte_fails_the_signature() {
    let bundle = signed(1);
    let mut bytes = bundle.bytes().to_vec();
    bytes[HEADER_LEN + 3] ^= 0x01;
    let e = verify(&bytes, &[key(1).verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
    assert!(e.to_string().starts_with("bundle signature does not verify with key "), "{e}");
    assert!(e.to_string().contains("the file was altered or signed by another key"), "{e}");
}

#[test]
fn flipped_signature_byte_fails_the_signature() {
    let bundle = signed(1);
    for index in [bundle.bytes().len() - 64, bundle.bytes().len() - 1] {
        let mut bytes = bundle.bytes().to_vec();
        bytes[index] ^= 0x80;
        let e = verify(&bytes, &[key(1).verifying_key()]).unwrap_err();
        assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
    }
}

#[test]
fn flipped_header_byte_fails() {
    let bundle = signed(1);
    let mut bytes = bundle.bytes().to_vec();
    bytes[20] ^= 0x01; // created_at
    assert!(matches!(verify(&bytes, &[key(1).verifying_key()]), Err(BundleError::BadSignature { .. })));
}

#[test]
fn wrong_key_is_an_unknown_signer() {
    let bundle = signed(1);
    let e = verify(bundle.bytes(), &[key(2).verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::UnknownSigner { trusted: 1, .. }), "{e}");
    let signer = hex::encode(&key(1).verifying_key().as_bytes()[..8]);
    assert!(e.to_string().contains(&signer), "{e}");
    assert!(matches!(verify(bundle.bytes(), &[]), Err(BundleError::UnknownSigner { trusted: 0, .. })));
}

#[test]
fn signer_field_swapped_to_a_trusted_key_fails_the_signature() {
    // An attacker signs with their own key and writes the trusted key into the header.
    let bundle = SignedBundle::sign_with(&snapshot(9), &key(66), &options(PayloadEncoding::POSTCARD)).unwrap();
    let mut bytes = bundle.bytes().to_vec();
    bytes[76..108].copy_from_slice(key(1).verifying_key().as_bytes());
    let e = verify(&bytes, &[key(1).verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
}

#[test]
fn truncation_at_several_lengths() {
    let bundle = signed(1);
    let bytes = bundle.bytes();
    let full = bytes.len() as u64;
    let trusted = [key(1).verifying_key()];
    for (len, expected) in
        [(0, HEADER_LEN as u64), (5, 148), (9, 148), (HEADER_LEN / 2, 148), (HEADER_LEN, full), (HEADER_LEN + 10, full)]
            .into_iter()
            .chain([(bytes.len() - 64, full), (bytes.len() - 1, full)])
    {
        let e = verify(&bytes[..len], &trusted).unwrap_err();
        assert!(
            matches!(e, BundleError::Truncated { expected: x, actual } if x == expected && actual == len as u64),
            "length {len}: {e}"
        );
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(matches!(inspect(&bytes[..len]), Err(BundleError::Truncated { .. })));
    }
}

#[test]
fn trailing_garbage_is_refused() {
    let mut bytes = signed(1).into_bytes();
    bytes.extend_from_slice(b"\n");
    let e = verify(&bytes, &[key(1).verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::TrailingBytes { .. }), "{e}");
    assert!(e.to_string().contains("1 unexpected bytes"), "{e}");
}

#[test]
fn other_files_are_not_bundles() {
    for bytes in [&b"PK\x03\x04 a zip file"[..], b"\x89PNG\r\n\x1a\n", b"{\"version\": 1}"] {
        let e = verify(bytes, &[key(1).verifying_key()]).unwrap_err();
        assert!(matches!(e, BundleError::BadMagic { .. }), "{e}");
    }
}

/// Every truncation and every single-bit flip of a small bundle is refused without a panic.
#[test]
fn every_truncation_and_flip_is_refused() {
    let bundle = SignedBundle::sign_with(&snapshot(5), &key(1), &options(PayloadEncoding::POSTCARD_DEFLATE)).unwrap();
    let bytes = bundle.bytes();
    let trusted = [key(1).verifying_key()];
    for len in 0..bytes.len() {
        assert!(verify(&bytes[..len], &trusted).is_err(), "truncated to {len}");
        let _ = inspect(&bytes[..len]);
    }
    for index in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut damaged = bytes.to_vec();
            damaged[index] ^= bit;
            let _ = inspect(&damaged);
            assert!(verify(&damaged, &trusted).is_err(), "bit {bit:#x} of byte {index} flipped");
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary edits to a valid bundle never panic and, when they change it, never verify.
        #[test]
        fn arbitrary_damage(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let bundle = signed(2);
            let mut bytes = bundle.bytes().to_vec();
            for (index, value) in edits {
                let i = index % bytes.len();
                bytes[i] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let trusted = [key(1).verifying_key()];
            let _ = inspect(&bytes);
            if let Ok(verified) = verify(&bytes, &trusted) {
                prop_assert_eq!(&bytes[..], bundle.bytes());
                prop_assert_eq!(verified.snapshot().unwrap(), snapshot(2));
            }
        }

        /// Arbitrary bytes behind a valid magic and format version never panic.
        #[test]
        fn arbitrary_bytes(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
            bytes.extend_from_slice(&tail);
            let _ = inspect(&bytes);
            prop_assert!(verify(&bytes, &[key(1).verifying_key()]).is_err());
        }
    }
}

#[test]
fn a_publisher_bug_is_caught_after_the_signature() {
    // A bundle whose header lies about the payload hash, but is signed: HashMismatch.
    let bundle = SignedBundle::sign_with(&snapshot(4), &key(1), &options(PayloadEncoding::POSTCARD)).unwrap();
    let mut signed = bundle.bytes()[..bundle.bytes().len() - SIGNATURE_LEN].to_vec();
    signed[44] ^= 0xff;
    let signature = ed25519_dalek::Signer::sign(&key(1), &signed);
    signed.extend_from_slice(&signature.to_bytes());
    let e = verify(&signed, &[key(1).verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::HashMismatch { .. }), "{e}");

    // A signed bundle whose header version differs from the snapshot's: refused on decode.
    let mut signed = bundle.bytes()[..bundle.bytes().len() - SIGNATURE_LEN].to_vec();
    signed[19] = 5;
    let signature = ed25519_dalek::Signer::sign(&key(1), &signed);
    signed.extend_from_slice(&signature.to_bytes());
    let verified = verify(&signed, &[key(1).verifying_key()]).unwrap();
    let e = verified.snapshot().unwrap_err();
    assert!(matches!(e, BundleError::VersionMismatch { header: 5, payload: 4 }), "{e}");
    let e = verified.compile().unwrap_err();
    assert!(matches!(e, BundleError::VersionMismatch { header: 5, payload: 4 }), "{e}");
}

#[test]
fn directory_publication() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(latest_in_dir(dir.path()).unwrap(), None);
    let mut paths = Vec::new();
    for version in [2, 10, 9] {
        paths.push(signed(version).write_to_dir(dir.path()).unwrap());
    }
    // Writing the same bundle again is harmless.
    assert_eq!(signed(10).write_to_dir(dir.path()).unwrap(), paths[1]);
    let latest = latest_in_dir(dir.path()).unwrap().unwrap();
    assert_eq!(latest, paths[1]);
    let bytes = read_bundle_file(&latest).unwrap();
    assert_eq!(verify(&bytes, &[key(1).verifying_key()]).unwrap().snapshot().unwrap().version, 10);
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let e = read_bundle_file(&dir.path().join("absent.bundle")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read bundle "), "{e}");
}

#[test]
fn slot_keeps_the_policy_in_force() {
    let trusted = key(1).verifying_key();
    let slot = BundleSlot::new();
    assert!(slot.current().is_none());

    let v5 = slot.load_newer(signed(5).bytes(), &trusted).unwrap();
    assert_eq!(v5.version, 5);

    // Older: refused, version 5 kept.
    let e = slot.load_newer(signed(4).bytes(), &trusted).unwrap_err();
    assert!(matches!(e, BundleError::NotNewer { offered: 4, in_force: 5 }), "{e}");
    assert!(e.to_string().contains("keeping version 5"), "{e}");

    // Damaged, truncated, wrong key: refused, version 5 kept.
    let mut damaged = signed(6).into_bytes();
    damaged[HEADER_LEN] ^= 1;
    assert!(matches!(slot.load_newer(&damaged, &trusted), Err(BundleError::BadSignature { .. })));
    let whole = signed(6).into_bytes();
    assert!(matches!(slot.load_newer(&whole[..whole.len() / 2], &trusted), Err(BundleError::Truncated { .. })));
    assert!(matches!(slot.load_newer(&whole, &key(2).verifying_key()), Err(BundleError::UnknownSigner { .. })));
    assert!(std::sync::Arc::ptr_eq(&slot.current().unwrap(), &v5));

    // The same bundle again: unchanged, no error.
    let again = slot.load_newer(signed(5).bytes(), &trusted).unwrap();
    assert!(std::sync::Arc::ptr_eq(&again, &v5));

    // A different bundle reusing version 5: refused.
    let mut other = snapshot(5);
    other.rules.truncate(1);
    let other = SignedBundle::sign(&other, &key(1), None).unwrap();
    let e = slot.load_newer(other.bytes(), &trusted).unwrap_err();
    assert!(matches!(e, BundleError::VersionConflict { version: 5, .. }), "{e}");

    // Newer: in force.
    let v6 = slot.load_newer(&whole, &trusted).unwrap();
    assert_eq!(v6.version, 6);
    assert_eq!(slot.current().unwrap().version, 6);
    assert_eq!(slot.header().unwrap().policy_version, 6);
    // The old snapshot stays valid for whoever still holds it.
    assert_eq!(v5.version, 5);
}

#[test]
fn slot_polls_a_directory() {
    let trusted = key(1).verifying_key();
    let dir = tempfile::tempdir().unwrap();
    let slot = BundleSlot::new();
    assert!(slot.load_latest_in_dir(dir.path(), &trusted).unwrap().is_none());
    signed(3).write_to_dir(dir.path()).unwrap();
    assert_eq!(slot.load_latest_in_dir(dir.path(), &trusted).unwrap().unwrap().version, 3);
    // Nothing newer: not even read.
    assert!(slot.load_latest_in_dir(dir.path(), &trusted).unwrap().is_none());
    // A damaged newer file: refused, version 3 kept.
    let v4 = signed(4);
    let mut damaged = v4.bytes().to_vec();
    damaged.truncate(damaged.len() - 1);
    std::fs::write(dir.path().join(v4.file_name()), &damaged).unwrap();
    let e = slot.load_latest_in_dir(dir.path(), &trusted).unwrap_err();
    assert!(matches!(e, BundleError::Truncated { .. }), "{e}");
    assert_eq!(slot.current().unwrap().version, 3);
    // The publisher writes it again, whole.
    v4.write_to_dir(dir.path()).unwrap();
    assert_eq!(slot.load_latest_in_dir(dir.path(), &trusted).unwrap().unwrap().version, 4);
}
