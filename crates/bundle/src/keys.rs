//! Ed25519 key pairs for bundle signing, and their files.
//!
//! - `bundle-signing.key`: the 32-byte private seed as hex, after a `#` comment line; mode 0600.
//!   Reading refuses a file that group or others may read or write, as ssh does.
//! - `bundle-signing.pub`: the 32-byte public key as one line of hex, to copy to every
//!   enforcement point.
//!
//! Readers skip blank lines and lines starting with `#`, and want exactly one key line.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::KeyError;

/// File name of the private signing key written by [`write_key_pair`].
pub const SIGNING_KEY_FILE: &str = "bundle-signing.key";
/// File name of the public verifying key written by [`write_key_pair`].
pub const VERIFYING_KEY_FILE: &str = "bundle-signing.pub";

const SIGNING_KEY_COMMENT: &str = "# bawaba bundle signing key (ed25519 private seed, hex). Secret: keep mode 0600.";

/// Generates a new signing key from the operating system's random source.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(KeyError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Generates a key pair and writes [`SIGNING_KEY_FILE`] (mode 0600) and [`VERIFYING_KEY_FILE`]
/// into `dir`, refusing to overwrite either. Returns the signing key.
pub fn write_key_pair(dir: &Path) -> Result<SigningKey, KeyError> {
    let private = dir.join(SIGNING_KEY_FILE);
    let public = dir.join(VERIFYING_KEY_FILE);
    for path in [&private, &public] {
        if path.exists() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let key = generate_signing_key()?;
    let secret_text = format!("{SIGNING_KEY_COMMENT}\n{}\n", hex::encode(key.to_bytes()));
    create_new(&private, secret_text.as_bytes(), 0o600)?;
    create_new(&public, format!("{}\n", hex::encode(key.verifying_key().to_bytes())).as_bytes(), 0o644)?;
    Ok(key)
}

/// Reads a private signing key, refusing a file open to group or others.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    check_private_permissions(path)?;
    let bytes = read_key_bytes(path)?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Reads a public verifying key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bytes = read_key_bytes(path)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey { path: path.to_path_buf() })
}

/// Parses the text of a key file: exactly one line of 64 hex digits, `#` comments allowed.
fn read_key_bytes(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = fs::read_to_string(path).map_err(|e| io_error(e, "read key file", path))?;
    let mut key_line = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if key_line.is_some() {
            return Err(KeyError::ExtraLine { path: path.to_path_buf(), line: index + 1 });
        }
        key_line = Some((index + 1, line));
    }
    let (line, hex_text) = key_line.ok_or_else(|| KeyError::Empty { path: path.to_path_buf() })?;
    let bytes = hex::decode(hex_text).map_err(|reason| KeyError::NotHex { path: path.to_path_buf(), line, reason })?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| KeyError::WrongLength { path: path.to_path_buf(), len: bytes.len() })
}

fn io_error(source: io::Error, action: &'static str, path: &Path) -> KeyError {
    if source.kind() == io::ErrorKind::NotFound {
        KeyError::Missing { path: path.to_path_buf() }
    } else {
        KeyError::Io { action, path: path.to_path_buf(), source }
    }
}

#[cfg(unix)]
fn check_private_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).map_err(|e| io_error(e, "stat key file", path))?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let write = |path: &PathBuf| -> io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write(&path.to_path_buf()).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: path.to_path_buf() }
        } else {
            KeyError::Io { action: "write key file", path: path.to_path_buf(), source }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pair_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let key = write_key_pair(dir.path()).unwrap();
        let read = read_signing_key(&dir.path().join(SIGNING_KEY_FILE)).unwrap();
        assert_eq!(read.to_bytes(), key.to_bytes());
        let public = read_verifying_key(&dir.path().join(VERIFYING_KEY_FILE)).unwrap();
        assert_eq!(public, key.verifying_key());
        let text = fs::read_to_string(dir.path().join(SIGNING_KEY_FILE)).unwrap();
        assert!(text.starts_with("# bawaba bundle signing key"), "{text}");
        // Never overwrite.
        assert!(matches!(write_key_pair(dir.path()), Err(KeyError::Exists { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn private_key_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write_key_pair(dir.path()).unwrap();
        let path = dir.path().join(SIGNING_KEY_FILE);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_signing_key(&path).unwrap_err();
        assert!(matches!(e, KeyError::Permissions { mode: 0o640, .. }), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        read_signing_key(&path).unwrap();
    }

    #[test]
    fn malformed_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            path
        };
        let e = read_verifying_key(&dir.path().join("absent.pub")).unwrap_err();
        assert!(matches!(e, KeyError::Missing { .. }), "{e}");
        let e = read_verifying_key(&write("short.pub", "abcd\n")).unwrap_err();
        assert!(matches!(e, KeyError::WrongLength { len: 2, .. }), "{e}");
        let e = read_verifying_key(&write("nothex.pub", "# comment\nzz\n")).unwrap_err();
        assert!(matches!(e, KeyError::NotHex { line: 2, .. }), "{e}");
        let e = read_verifying_key(&write("empty.pub", "# only a comment\n\n")).unwrap_err();
        assert!(matches!(e, KeyError::Empty { .. }), "{e}");
        let line = "11".repeat(32);
        let e = read_verifying_key(&write("two.pub", &format!("{line}\n{line}\n"))).unwrap_err();
        assert!(matches!(e, KeyError::ExtraLine { line: 2, .. }), "{e}");
        let key = generate_signing_key().unwrap();
        let path = write("ok.pub", &format!("  {}  \n", hex::encode(key.verifying_key().as_bytes())));
        assert_eq!(read_verifying_key(&path).unwrap(), key.verifying_key());
    }
}
