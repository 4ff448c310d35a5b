//! The policy in force at an enforcement point, and the only way to replace it: a newer bundle
//! that verifies.
//!
//! Whatever goes wrong with an offered bundle (bad signature, wrong key, truncated file, older
//! version), [`BundleSlot::load_newer`] returns the error and the policy in force stays in force.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use bawaba_policy::PolicySnapshot;
use ed25519_dalek::VerifyingKey;

use crate::bundle::verify;
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
        let verified = verify(bytes, std::slice::from_ref(key))?;
        let offered = verified.header().clone();
        if let Some(current) = self.check_newer(&offered)? {
            return Ok(current);
        }
        let snapshot = Arc::new(verified.snapshot()?);
        let mut slot = self.in_force.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have loaded a bundle while this one decoded: check again.
        if let Some(current) = check_newer(slot.as_ref(), &offered)? {
            return Ok(current);
        }
        let kept = self.keep_snapshot.then(|| Arc::clone(&snapshot));
        *slot = Some(InForce { header: offered, snapshot: kept });
        Ok(snapshot)
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
        let Some(path) = latest_in_dir(dir)? else { return Ok(None) };
        let named = path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name).map(|(v, _)| v);
        let in_force = self.read().as_ref().map(|f| f.header.policy_version);
        if let (Some(named), Some(in_force)) = (named, in_force) {
            if named <= in_force {
                return Ok(None);
            }
        }
        let bytes = read_bundle_file(&path)?;
        self.load_newer(&bytes, key).map(Some)
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
}
