//! The policy in force at an enforcement point, and the only way to replace it: a newer bundle
//! that verifies.
//!
//! Whatever goes wrong with an offered bundle (bad signature, wrong key, truncated file, older
//! version), [`BundleSlot::load_newer`] returns the error and the policy in force stays in force.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use bawaba_policy::PolicySnapshot;
use ed25519_dalek::VerifyingKey;

use crate::bundle::{verify, VerifiedBundle};
use crate::dir::{latest_in_dir, parse_file_name, read_bundle_file};
use crate::error::BundleError;
use crate::header::BundleHeader;

/// Holds the snapshot in force and its header; shared by the threads that enforce it.
#[derive(Debug)]
pub struct BundleSlot {
    in_force: RwLock<Option<InForce>>,
    keep_snapshot: bool,
}

impl Default for BundleSlot {
    fn default() -> Self {
        BundleSlot { in_force: RwLock::new(None), keep_snapshot: true }
    }
}

#[derive(Debug, Clone)]
struct InForce {
    header: BundleHeader,
    snapshot: Option<Arc<PolicySnapshot>>,
}

impl BundleSlot {
    /// An empty slot: nothing in force, any valid bundle is accepted.
    pub fn new() -> Self {
        BundleSlot::default()
    }

    /// A slot that remembers only the header of the bundle in force, not its snapshot: for an
    /// enforcement point that compiles the snapshot it is handed and drops it (a 1.6 M-rule
    /// snapshot is over 100 MiB). [`current`](Self::current) is then always `None`.
    pub fn headers_only() -> Self {
        BundleSlot { in_force: RwLock::new(None), keep_snapshot: false }
    }

    /// The snapshot in force, if any (and if this slot keeps snapshots).
    pub fn current(&self) -> Option<Arc<PolicySnapshot>> {
        self.read().as_ref().and_then(|f| f.snapshot.clone())
    }

    /// The header of the bundle in force, if any.
    pub fn header(&self) -> Option<BundleHeader> {
        self.read().as_ref().map(|f| f.header.clone())
    }

    /// Verifies `bytes` with `key` and, when the bundle is newer than the one in force, puts it
    /// in force and returns its snapshot.
    ///
    /// - Any verification or decoding error: returned, the policy in force is kept.
    /// - An older version: [`BundleError::NotNewer`], kept (a rollback or replay).
    /// - The same version with the same payload hash: the one in force is returned unchanged, so
    ///   polling the same file is harmless.
    /// - The same version with a different payload: [`BundleError::VersionConflict`], kept.
    ///
    /// The version check runs after the signature and hash checks and before the decode, so a
    /// stale bundle costs no decode.
    pub fn load_newer(&self, bytes: &[u8], key: &VerifyingKey) -> Result<Arc<PolicySnapshot>, BundleError> {
        self.load(
            bytes,
            key,
            Some,
            |verified| verified.snapshot().map(Arc::new),
            |snapshot| self.keep_snapshot.then(|| Arc::clone(snapshot)),
        )
    }

    /// Like [`load_newer`](Self::load_newer), but hands the verified bundle to `decode` instead of
    /// decoding a snapshot: an enforcement point that needs only the ruleset passes
    /// [`VerifiedBundle::compile`], which skips the snapshot's allocations. The same checks and
    /// outcomes, except that the same bundle as the one in force is decoded again, and that the
    /// slot keeps only the header ([`current`](Self::current) is `None` afterwards).
    pub fn load_newer_with<T>(
        &self,
        bytes: &[u8],
        key: &VerifyingKey,
        decode: impl FnOnce(&VerifiedBundle<'_>) -> Result<T, BundleError>,
    ) -> Result<T, BundleError> {
        self.load(bytes, key, |_| None, decode, |_| None)
    }

    /// Verifies, checks the version against the one in force, decodes and puts the bundle in
    /// force. When the same bundle is in force with its snapshot kept, `reuse` may hand that back
    /// instead of decoding; `keep` says which snapshot the slot keeps.
    fn load<T>(
        &self,
        bytes: &[u8],
        key: &VerifyingKey,
        reuse: impl Fn(Arc<PolicySnapshot>) -> Option<T>,
        decode: impl FnOnce(&VerifiedBundle<'_>) -> Result<T, BundleError>,
        keep: impl FnOnce(&T) -> Option<Arc<PolicySnapshot>>,
    ) -> Result<T, BundleError> {
        let verified = verify(bytes, std::slice::from_ref(key))?;
        let offered = verified.header().clone();
        if let Some(current) = self.check_newer(&offered)?.and_then(&reuse) {
            return Ok(current);
        }
        let value = decode(&verified)?;
        let mut slot = self.in_force.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have loaded a bundle while this one decoded: check again.
        if let Some(current) = check_newer(slot.as_ref(), &offered)?.and_then(&reuse) {
            return Ok(current);
        }
        *slot = Some(InForce { header: offered, snapshot: keep(&value) });
        Ok(value)
    }

    /// Polls a bundle directory: when the highest version named in `dir` is newer than the one in
    /// force, reads that file and [`load_newer`](Self::load_newer)s it.
    ///
    /// `Ok(None)`: nothing newer by name (the files are not read). `Ok(Some(snapshot))`: now in
    /// force. An error: the newest file was refused and the policy in force is kept; the error
    /// repeats on every poll until a valid newer bundle arrives or the bad file is removed.
    pub fn load_latest_in_dir(
        &self,
        dir: &Path,
        key: &VerifyingKey,
    ) -> Result<Option<Arc<PolicySnapshot>>, BundleError> {
        let Some(bytes) = self.newer_by_name(dir)? else { return Ok(None) };
        self.load_newer(&bytes, key).map(Some)
    }

    /// [`load_latest_in_dir`](Self::load_latest_in_dir) with [`load_newer_with`](Self::load_newer_with).
    pub fn load_latest_in_dir_with<T>(
        &self,
        dir: &Path,
        key: &VerifyingKey,
        decode: impl FnOnce(&VerifiedBundle<'_>) -> Result<T, BundleError>,
    ) -> Result<Option<T>, BundleError> {
        let Some(bytes) = self.newer_by_name(dir)? else { return Ok(None) };
        self.load_newer_with(&bytes, key, decode).map(Some)
    }

    /// The bytes of the newest bundle in `dir` when its name says it is newer than the one in force.
    fn newer_by_name(&self, dir: &Path) -> Result<Option<Vec<u8>>, BundleError> {
        let Some(path) = latest_in_dir(dir)? else { return Ok(None) };
        let named = path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name).map(|(v, _)| v);
        let in_force = self.read().as_ref().map(|f| f.header.policy_version);
        if let (Some(named), Some(in_force)) = (named, in_force) {
            if named <= in_force {
                return Ok(None);
            }
        }
        read_bundle_file(&path).map(Some)
    }

    fn check_newer(&self, offered: &BundleHeader) -> Result<Option<Arc<PolicySnapshot>>, BundleError> {
        check_newer(self.read().as_ref(), offered)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<InForce>> {
        // The lock only guards a whole-value swap, so a poisoned lock still holds a consistent value.
        self.in_force.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Ok(None)`: load it. `Ok(Some(current))`: the same bundle is in force. `Err`: refuse it.
fn check_newer(in_force: Option<&InForce>, offered: &BundleHeader) -> Result<Option<Arc<PolicySnapshot>>, BundleError> {
    let Some(current) = in_force else { return Ok(None) };
    let (have, want) = (current.header.policy_version, offered.policy_version);
    if want > have {
        return Ok(None);
    }
    if want < have {
        return Err(BundleError::NotNewer { offered: want, in_force: have });
    }
    if current.header.payload_sha256 == offered.payload_sha256 {
        // A headers-only slot has no snapshot to hand back: decode the (identical) bundle again.
        return Ok(current.snapshot.clone());
    }
    Err(BundleError::VersionConflict {
        version: have,
        in_force: current.header.short_hash(),
        offered: offered.short_hash(),
    })
}

#[cfg(test)]
mod headers_only_tests {
    use super::*;
    use crate::{generate_signing_key, SignedBundle};

    #[test]
    fn keeps_the_header_not_the_snapshot_and_still_refuses_older_versions() {
        let key = generate_signing_key().unwrap();
        let sign = |v| SignedBundle::sign(&PolicySnapshot { version: v, ..Default::default() }, &key, None).unwrap();
        let slot = BundleSlot::headers_only();
        let v2 = slot.load_newer(sign(2).bytes(), &key.verifying_key()).unwrap();
        assert_eq!(v2.version, 2);
        drop(v2);
        assert!(slot.current().is_none());
        assert_eq!(slot.header().map(|h| h.policy_version), Some(2));
        assert!(matches!(slot.load_newer(sign(1).bytes(), &key.verifying_key()), Err(BundleError::NotNewer { .. })));
        // The same bundle again decodes again and stays in force.
        let same = sign(2);
        assert_eq!(slot.load_newer(same.bytes(), &key.verifying_key()).unwrap().version, 2);
        assert!(slot.current().is_none());
    }

    #[test]
    fn loading_compiled_keeps_the_same_guards() {
        let key = generate_signing_key().unwrap();
        let trusted = key.verifying_key();
        let sign = |v| SignedBundle::sign(&PolicySnapshot { version: v, ..Default::default() }, &key, None).unwrap();
        let slot = BundleSlot::new();
        let compiled = slot.load_newer_with(sign(3).bytes(), &trusted, |v| v.compile()).unwrap();
        assert_eq!(compiled.stats().domain_rules, 0);
        assert_eq!(slot.header().map(|h| h.policy_version), Some(3));
        assert!(slot.current().is_none(), "only the header is kept");
        let older = slot.load_newer_with(sign(2).bytes(), &trusted, |v| v.compile());
        assert!(matches!(older, Err(BundleError::NotNewer { offered: 2, in_force: 3 })));
        // The same bundle compiles again; a bad one leaves version 3 in force.
        assert!(slot.load_newer_with(sign(3).bytes(), &trusted, |v| v.compile()).is_ok());
        let mut damaged = sign(4).into_bytes();
        damaged.truncate(damaged.len() - 1);
        assert!(slot.load_newer_with(&damaged, &trusted, |v| v.compile()).is_err());
        let called = std::cell::Cell::new(false);
        let refused = slot.load_newer_with(sign(1).bytes(), &trusted, |_| {
            called.set(true);
            Ok(())
        });
        assert!(refused.is_err() && !called.get(), "an older bundle is never decoded");
        assert_eq!(slot.header().map(|h| h.policy_version), Some(3));
    }
}
