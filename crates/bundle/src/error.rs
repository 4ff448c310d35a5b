//! The errors of this crate: one enum for bundles ([`BundleError`]), one for key files ([`KeyError`]).
//!
//! Every message is one line that says what is wrong and, where there is one, what to do about it.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::header::KeyId;

/// Why a bundle could not be built, read, verified, decoded or put in force.
///
/// When loading, every variant means the same thing to the caller: keep the policy in force.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file does not start with the bundle magic.
    #[error("not a bawaba policy bundle: the file starts with {found}, a bundle starts with {expected}")]
    BadMagic {
        /// Hex of the first bytes found (up to 8).
        found: String,
        /// Hex of the magic.
        expected: String,
    },
    /// The format version is not one this build reads.
    #[error("bundle format version {found} is not supported (this build reads version {supported}); upgrade bawaba")]
    UnsupportedFormat {
        /// The version in the file.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The file is shorter than its header says: an incomplete copy or download.
    #[error("bundle is truncated: {actual} bytes, expected {expected}; the copy is incomplete")]
    Truncated {
        /// The length the header announces (or the header length, when the header itself is cut).
        expected: u64,
        /// The length of the file.
        actual: u64,
    },
    /// Bytes follow the signature.
    #[error("bundle has {} unexpected bytes after its signature (file is {actual} bytes, expected {expected})", actual - expected)]
    TrailingBytes {
        /// The length the header announces.
        expected: u64,
        /// The length of the file.
        actual: u64,
    },
    /// A header field holds a value the format does not allow.
    #[error("invalid bundle header at byte {offset} ({field}): {reason}")]
    Header {
        /// Byte offset of the field in the file.
        offset: usize,
        /// The field's name as in docs/specs/bundle-format.md.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The bundle is signed by a key that is not trusted here.
    #[error("bundle is signed by key {signer}, which is not among the {trusted} trusted key(s); check the configured public key")]
    UnknownSigner {
        /// The key the header names.
        signer: KeyId,
        /// How many keys are trusted.
        trusted: usize,
    },
    /// The signature does not verify.
    #[error("bundle signature does not verify with key {signer}: the file was altered or signed by another key")]
    BadSignature {
        /// The key the signature was checked against.
        signer: KeyId,
    },
    /// The payload's SHA-256 differs from the header's, under a valid signature: the publisher
    /// signed an inconsistent bundle.
    #[error("payload SHA-256 is {actual} but the signed header says {expected}: the publisher built a broken bundle")]
    HashMismatch {
        /// Hex of the hash in the header.
        expected: String,
        /// Hex of the hash computed.
        actual: String,
    },
    /// The payload encoding is not one this build decodes.
    #[error("bundle payload encoding {found} is not supported by this build; upgrade bawaba")]
    UnknownEncoding {
        /// The codepoint in the header (byte 10).
        found: u8,
    },
    /// The compressed payload does not inflate to the announced length.
    #[error("signed payload does not decompress: {reason}")]
    Decompress {
        /// What went wrong.
        reason: String,
    },
    /// The payload does not decode as a policy snapshot.
    #[error("signed payload does not decode as a policy snapshot: {source}")]
    Decode {
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A rule inside the signed payload has a selector that does not parse (found while compiling
    /// the payload straight into a ruleset).
    #[error("signed payload holds rule {rule} with a bad selector: {source}")]
    BadRule {
        /// The rule's id.
        rule: i64,
        /// Why its selector was refused.
        #[source]
        source: bawaba_policy::PolicyError,
    },
    /// Bytes follow the snapshot inside the decoded payload.
    #[error("signed payload has {extra} bytes after the policy snapshot: the publisher built a broken bundle")]
    PayloadTrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The header and the snapshot inside disagree on the policy version.
    #[error("bundle header says policy version {header} but the snapshot inside is version {payload}")]
    VersionMismatch {
        /// Version in the header.
        header: u64,
        /// Version in the snapshot.
        payload: u64,
    },
    /// A snapshot with version 0 (never published) cannot be signed.
    #[error("snapshot version is 0 (unpublished); give it the next policy version before signing")]
    UnpublishedVersion,
    /// The snapshot could not be encoded.
    #[error("cannot encode the policy snapshot: {source}")]
    Encode {
        /// The encoder's error.
        #[source]
        source: postcard::Error,
    },
    /// The bundle is not newer than the one in force (a replay or a rollback).
    #[error("bundle version {offered} is not newer than version {in_force} in force; keeping version {in_force}")]
    NotNewer {
        /// Version of the refused bundle.
        offered: u64,
        /// Version in force.
        in_force: u64,
    },
    /// A different bundle with the same version as the one in force: the publisher reused a version.
    #[error(
        "a different bundle claims version {version} (payload {offered}, in force {in_force}); \
         keeping the one in force: versions must never be reused"
    )]
    VersionConflict {
        /// The version.
        version: u64,
        /// Hex prefix of the payload hash in force.
        in_force: String,
        /// Hex prefix of the payload hash offered.
        offered: String,
    },
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted ("read", "write", "rename", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Why a key could not be generated, written or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("cannot generate a key: the system random source failed: {0}")]
    Random(getrandom::Error),
    /// The key file does not exist.
    #[error("key file {} does not exist", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// Refusing to overwrite an existing key.
    #[error("key file {} already exists; move it away first (overwriting a signing key is never silent)", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The private key file is readable or writable by group or others.
    #[error(
        "private key {} has mode {mode:04o}, open to group or others; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The file holds no key line.
    #[error("key file {} holds no key (expected one line of 64 hex digits)", path.display())]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// More than one key line.
    #[error("key file {} line {line}: a second key line; the file must hold exactly one key", path.display())]
    ExtraLine {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The key line is not hexadecimal.
    #[error("key file {} line {line}: not hexadecimal ({reason})", path.display())]
    NotHex {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The hex decoder's complaint.
        reason: hex::FromHexError,
    },
    /// The key has the wrong length.
    #[error("key file {} holds {len} bytes; an ed25519 key is 32 bytes (64 hex digits)", path.display())]
    WrongLength {
        /// The path.
        path: PathBuf,
        /// Bytes found.
        len: usize,
    },
    /// The bytes are not a valid ed25519 public key.
    #[error("key file {} does not hold a valid ed25519 public key", path.display())]
    InvalidPublicKey {
        /// The path.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}
