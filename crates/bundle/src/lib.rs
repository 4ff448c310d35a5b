//! Signed policy bundles: how a [`PolicySnapshot`] travels from the regulator to every
//! enforcement point, and how an enforcement point decides to put it in force.
//!
//! A bundle is a single file: a fixed 148-byte header (magic, format version, policy version,
//! signing time, payload length and SHA-256, the signer's public key, optionally the audit-log
//! head), the payload (the snapshot in postcard, DEFLATE-compressed by default), and an ed25519
//! signature over everything before it. The byte layout is in `docs/specs/bundle-format.md`.
//!
//! Layers:
//! - [`header`]: the header's layout, [`BundleHeader::parse`] with offset-carrying errors.
//! - [`bundle`]: [`SignedBundle::sign`], [`inspect`] (what a file claims, untrusted) and
//!   [`verify`] (signer, signature, hash, in that order, before any payload byte is decoded).
//! - [`dir`]: content-addressed file names, atomic [`SignedBundle::write_to_dir`], [`latest_in_dir`].
//! - [`keys`]: generating, writing and reading key files (private keys must be mode 0600).
//! - [`slot`]: [`BundleSlot`], the policy in force, replaced only by a newer valid bundle.
//!
//! ```
//! use bawaba_bundle::{generate_signing_key, verify, BundleError, BundleSlot, SignedBundle};
//! use bawaba_policy::PolicySnapshot;
//!
//! let key = generate_signing_key()?;
//! let v1 = PolicySnapshot { version: 1, taken_at: 1_800_000_000, ..Default::default() };
//! let bundle = SignedBundle::sign(&v1, &key, Some((7, [0xab; 32])))?;
//! assert!(bundle.file_name().starts_with("bawaba-policy-v00000001-"));
//!
//! // An enforcement point trusts the public key only.
//! let trusted = key.verifying_key();
//! let verified = verify(bundle.bytes(), &[trusted])?;
//! assert_eq!(verified.header().audit_head, Some((7, [0xab; 32])));
//! assert_eq!(verified.snapshot()?, v1);
//!
//! // A slot keeps the policy in force when an offered bundle is bad or old.
//! let slot = BundleSlot::new();
//! slot.load_newer(bundle.bytes(), &trusted)?;
//! let mut damaged = bundle.bytes().to_vec();
//! damaged.truncate(damaged.len() - 1);
//! assert!(matches!(slot.load_newer(&damaged, &trusted), Err(BundleError::Truncated { .. })));
//! assert_eq!(slot.current().map(|s| s.version), Some(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod dir;
pub mod error;
pub mod header;
pub mod keys;
pub mod slot;

pub use bawaba_policy::PolicySnapshot;
pub use ed25519_dalek::{SigningKey, VerifyingKey};

pub use bundle::{inspect, verify, SignOptions, SignedBundle, VerifiedBundle, DEFAULT_DEFLATE_LEVEL};
pub use dir::{latest_in_dir, parse_file_name, read_bundle_file};
pub use error::{BundleError, KeyError};
pub use header::{BundleHeader, KeyId, PayloadEncoding, FORMAT_VERSION, HEADER_LEN, MAGIC, SIGNATURE_LEN};
pub use keys::{
    generate_signing_key, read_signing_key, read_verifying_key, write_key_pair, SIGNING_KEY_FILE, VERIFYING_KEY_FILE,
};
pub use slot::BundleSlot;
