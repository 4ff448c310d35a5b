//! Signing, inspecting and verifying bundles.
//!
//! Verification order (each step runs only when the previous one passed):
//! 1. magic and format version;
//! 2. header fields;
//! 3. exact file length (`Truncated`, `TrailingBytes`);
//! 4. the signer is one of the trusted keys (`UnknownSigner`);
//! 5. the ed25519 signature over header and payload (`BadSignature`);
//! 6. the payload SHA-256 (`HashMismatch`);
//! 7. only then, in [`VerifiedBundle::snapshot`], decompression and decoding.
//!
//! No byte of the payload reaches a decoder before the signature has verified.

use std::time::{SystemTime, UNIX_EPOCH};

use bawaba_policy::PolicySnapshot;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::BundleError;
use crate::header::{BundleHeader, KeyId, PayloadEncoding, FORMAT_VERSION, HEADER_LEN, MAX_PAYLOAD_LEN, SIGNATURE_LEN};

/// Choices a publisher makes when signing; [`SignOptions::default`] is what [`SignedBundle::sign`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Signing time (Unix seconds); `None` takes the system clock.
    pub created_at: Option<i64>,
    /// The audit-log head (sequence number, entry hash) the snapshot was taken at.
    pub audit_head: Option<(u64, [u8; 32])>,
    /// How to encode the payload.
    pub encoding: PayloadEncoding,
    /// DEFLATE level 1 (fast) to 10 (smallest), for [`PayloadEncoding::POSTCARD_DEFLATE`].
    pub deflate_level: u8,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            created_at: None,
            audit_head: None,
            encoding: PayloadEncoding::POSTCARD_DEFLATE,
            deflate_level: DEFAULT_DEFLATE_LEVEL,
        }
    }
}

/// The DEFLATE level used unless [`SignOptions`] says otherwise. Level 1 gets most of the gain:
/// for 1.6 million rules, 28.4 MiB against 46.6 MiB uncompressed and 24.8 MiB at level 6, in a
/// quarter of level 6's time (see docs/specs/bundle-format.md).
pub const DEFAULT_DEFLATE_LEVEL: u8 = 1;

/// A freshly signed bundle: the bytes to publish and the header they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBundle {
    bytes: Vec<u8>,
    header: BundleHeader,
}

impl SignedBundle {
    /// Signs `snapshot` with `key`, now, with the default encoding.
    ///
    /// The bundle's policy version is `snapshot.version`, which must not be 0.
    pub fn sign(
        snapshot: &PolicySnapshot,
        key: &SigningKey,
        audit_head: Option<(u64, [u8; 32])>,
    ) -> Result<SignedBundle, BundleError> {
        SignedBundle::sign_with(snapshot, key, &SignOptions { audit_head, ..SignOptions::default() })
    }

    /// Signs `snapshot` with `key` as `options` say.
    pub fn sign_with(
        snapshot: &PolicySnapshot,
        key: &SigningKey,
        options: &SignOptions,
    ) -> Result<SignedBundle, BundleError> {
        if snapshot.version == 0 {
            return Err(BundleError::UnpublishedVersion);
        }
        let raw = postcard::to_allocvec(snapshot).map_err(|source| BundleError::Encode { source })?;
        let decoded_len = raw.len();
        let payload = match options.encoding {
            PayloadEncoding::POSTCARD => raw,
            PayloadEncoding::POSTCARD_DEFLATE => {
                miniz_oxide::deflate::compress_to_vec(&raw, options.deflate_level.clamp(1, 10))
            }
            PayloadEncoding(found) => return Err(BundleError::UnknownEncoding { found }),
        };
        let too_large = |len: usize| len as u64 > MAX_PAYLOAD_LEN;
        if too_large(decoded_len) || too_large(payload.len()) {
            return Err(BundleError::Header {
                offset: 28, // payload_len
                field: "payload_len",
                reason: "the snapshot encodes to more than the 4 GiB limit",
            });
        }
        let created_at = options.created_at.unwrap_or_else(unix_now);
        let header = BundleHeader {
            format_version: FORMAT_VERSION,
            encoding: options.encoding,
            policy_version: snapshot.version,
            created_at,
            payload_len: payload.len() as u64,
            decoded_len: decoded_len as u64,
            payload_sha256: Sha256::digest(&payload).into(),
            signer: KeyId(key.verifying_key().to_bytes()),
            audit_head: options.audit_head,
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len() + SIGNATURE_LEN);
        bytes.extend_from_slice(&header.emit());
        bytes.extend_from_slice(&payload);
        drop(payload);
        let signature = key.sign(&bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(SignedBundle { bytes, header })
    }

    /// The bundle bytes, ready to publish.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bundle bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The header the bundle carries.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The content-addressed file name (see [`BundleHeader::file_name`]).
    pub fn file_name(&self) -> String {
        self.header.file_name()
    }
}

/// A bundle whose signature and payload hash have been checked against a trusted key.
///
/// Decoding is separate ([`VerifiedBundle::snapshot`]) so that a caller can refuse a stale
/// version after the cheap checks and before the expensive decode.
#[derive(Debug, Clone)]
pub struct VerifiedBundle<'a> {
    header: BundleHeader,
    payload: &'a [u8],
}

impl VerifiedBundle<'_> {
    /// The header, now trusted.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// Decompresses and decodes the payload, and checks that the snapshot's version is the header's.
    pub fn snapshot(&self) -> Result<PolicySnapshot, BundleError> {
        let snapshot = decode_payload(&self.header, self.payload)?;
        if snapshot.version != self.header.policy_version {
            return Err(BundleError::VersionMismatch { header: self.header.policy_version, payload: snapshot.version });
        }
        Ok(snapshot)
    }
}

/// Parses the header and checks the file length, trusting nothing: what a file *claims*, for
/// display (`bawaba policy verify`) and for choosing which file to verify.
pub fn inspect(bytes: &[u8]) -> Result<BundleHeader, BundleError> {
    let header = BundleHeader::parse(bytes)?;
    let expected = header.bundle_len();
    let actual = bytes.len() as u64;
    if actual < expected {
        return Err(BundleError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(BundleError::TrailingBytes { expected, actual });
    }
    Ok(header)
}

/// Checks a bundle against the trusted keys: header, exact length, signer, signature, payload hash.
///
/// Does not decode the payload; call [`VerifiedBundle::snapshot`] for that.
pub fn verify<'a>(bytes: &'a [u8], trusted: &[VerifyingKey]) -> Result<VerifiedBundle<'a>, BundleError> {
    let header = inspect(bytes)?;
    let key = trusted
        .iter()
        .find(|key| key.as_bytes() == &header.signer.0)
        .ok_or(BundleError::UnknownSigner { signer: header.signer, trusted: trusted.len() })?;
    // inspect() checked the exact length, so the signature and the header are there.
    let (signed, signature) = bytes
        .split_last_chunk::<SIGNATURE_LEN>()
        .ok_or(BundleError::Truncated { expected: header.bundle_len(), actual: bytes.len() as u64 })?;
    let signature = Signature::from_bytes(signature);
    // verify_strict refuses small-order keys and non-canonical signatures (malleability).
    key.verify_strict(signed, &signature).map_err(|_| BundleError::BadSignature { signer: header.signer })?;
    let payload = signed.get(HEADER_LEN..).unwrap_or_default();
    let actual: [u8; 32] = Sha256::digest(payload).into();
    if actual != header.payload_sha256 {
        return Err(BundleError::HashMismatch {
            expected: hex::encode(header.payload_sha256),
            actual: hex::encode(actual),
        });
    }
    Ok(VerifiedBundle { header, payload })
}

fn decode_payload(header: &BundleHeader, payload: &[u8]) -> Result<PolicySnapshot, BundleError> {
    let decode = |raw: &[u8]| -> Result<PolicySnapshot, BundleError> {
        let (snapshot, rest) =
            postcard::take_from_bytes::<PolicySnapshot>(raw).map_err(|source| BundleError::Decode { source })?;
        if !rest.is_empty() {
            return Err(BundleError::PayloadTrailingBytes { extra: rest.len() });
        }
        Ok(snapshot)
    };
    match header.encoding {
        PayloadEncoding::POSTCARD => decode(payload),
        PayloadEncoding::POSTCARD_DEFLATE => {
            let limit = usize::try_from(header.decoded_len).map_err(|_| BundleError::Decompress {
                reason: "decoded length does not fit in memory on this platform".into(),
            })?;
            let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(payload, limit)
                .map_err(|e| BundleError::Decompress { reason: format!("{:?}", e.status) })?;
            if raw.len() as u64 != header.decoded_len {
                return Err(BundleError::Decompress {
                    reason: format!("inflates to {} bytes, the header says {}", raw.len(), header.decoded_len),
                });
            }
            decode(&raw)
        }
        PayloadEncoding(found) => Err(BundleError::UnknownEncoding { found }),
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
