//! Bundles in a directory: atomic publication and finding the newest.
//!
//! A publisher writes `bawaba-policy-v{version:08}-{hash16}.bundle` through a temporary file and a
//! rename, so a reader never sees half a bundle under a final name. Readers pick the highest
//! version by *name* ([`latest_in_dir`]); the name is a claim, and [`crate::verify`] decides.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::bundle::SignedBundle;
use crate::error::BundleError;

const PREFIX: &str = "bawaba-policy-v";
const SUFFIX: &str = ".bundle";

impl SignedBundle {
    /// Writes the bundle into `dir` under its content-addressed name, atomically (temporary file,
    /// fsync, rename, fsync of the directory). Returns the final path.
    ///
    /// Writing the same bundle twice is harmless: the name and the bytes are the same.
    pub fn write_to_dir(&self, dir: &Path) -> Result<PathBuf, BundleError> {
        let name = self.file_name();
        let path = dir.join(&name);
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(self.bytes())?;
            file.sync_all()
        };
        if let Err(source) = write() {
            let _ = fs::remove_file(&temp);
            return Err(io_error("write", &temp, source));
        }
        if let Err(source) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(io_error("rename into place", &path, source));
        }
        sync_dir(dir).map_err(|source| io_error("sync directory", dir, source))?;
        Ok(path)
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> BundleError {
    BundleError::Io { action, path: path.to_path_buf(), source }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Parses a bundle file name into (policy version, 16-digit hash prefix); `None` for other files.
pub fn parse_file_name(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (version, hash) = rest.split_once('-')?;
    let all = |s: &str, f: fn(&u8) -> bool| !s.is_empty() && s.as_bytes().iter().all(f);
    if version.len() < 8 || !all(version, u8::is_ascii_digit) {
        return None;
    }
    if hash.len() != 16 || !all(hash, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    Some((version.parse().ok()?, hash))
}

/// The bundle file in `dir` with the highest version in its name, or `None` when there is none.
///
/// Ties (two files claiming one version) go to the greater name, so the choice is deterministic;
/// a slot refuses the second of two different bundles with one version anyway.
pub fn latest_in_dir(dir: &Path) -> Result<Option<PathBuf>, BundleError> {
    let io = |source| BundleError::Io { action: "list bundle directory", path: dir.to_path_buf(), source };
    let mut best: Option<(u64, String)> = None;
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let Some((version, _)) = parse_file_name(&name) else { continue };
        if best.as_ref().is_none_or(|(v, n)| (version, &name) > (*v, n)) {
            best = Some((version, name));
        }
    }
    Ok(best.map(|(_, name)| dir.join(name)))
}

/// Reads a bundle file into memory (no checks; pass the bytes to [`crate::verify`]).
pub fn read_bundle_file(path: &Path) -> Result<Vec<u8>, BundleError> {
    fs::read(path).map_err(|source| BundleError::Io { action: "read bundle", path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("bawaba-policy-v00000042-0123456789abcdef.bundle"), Some((42, "0123456789abcdef")));
        assert_eq!(parse_file_name("bawaba-policy-v123456789-0123456789abcdef.bundle").map(|v| v.0), Some(123_456_789));
        for bad in [
            "bawaba-policy-v42-0123456789abcdef.bundle",
            "bawaba-policy-v00000042-0123456789ABCDEF.bundle",
            "bawaba-policy-v00000042-0123456789abcde.bundle",
            ".bawaba-policy-v00000042-0123456789abcdef.bundle.tmp-7",
            "bawaba-policy-v0000004x-0123456789abcdef.bundle",
            "bawaba-policy-v99999999999999999999999-0123456789abcdef.bundle",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn latest_by_numeric_version() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_in_dir(dir.path()).unwrap(), None);
        for name in [
            "bawaba-policy-v00000009-aaaaaaaaaaaaaaaa.bundle",
            "bawaba-policy-v100000000-0000000000000000.bundle",
            "bawaba-policy-v99999999-ffffffffffffffff.bundle",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let latest = latest_in_dir(dir.path()).unwrap().unwrap();
        assert!(latest.ends_with("bawaba-policy-v100000000-0000000000000000.bundle"), "{latest:?}");
        let e = latest_in_dir(&dir.path().join("absent")).unwrap_err();
        assert!(e.to_string().starts_with("cannot list bundle directory"), "{e}");
    }
}
