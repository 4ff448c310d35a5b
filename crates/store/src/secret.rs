//! Secrets: random tokens, their SHA-256 digests, and argon2id password hashes.
//!
//! Session and API tokens carry 160 to 256 random bits, so a plain SHA-256 of the token is enough
//! to store them: nobody can search that space, and a stolen database gives no usable token.
//! Passwords are chosen by people, so they get argon2id with a random salt (the PHC string
//! records the parameters, so the defaults can rise later without breaking stored hashes).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// A well-formed argon2id PHC string with the default parameters whose output no known password
/// produces. Checking a login for an unknown user against it costs as much as checking a real one,
/// so the time taken does not tell which user names exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$YmF3YWJhLWR1bW15LXNhbHQ$TFwoN7Z9QoBqDNdVX0mDrc9oe9dVYymOgbCr+BxvlmA";

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out)
        .map_err(|e| StoreError::Crypto { what: "the system random source", detail: e.to_string() })?;
    Ok(out)
}

/// SHA-256 of a token, in hex: what the database keeps instead of the token.
pub(crate) fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id PHC string for `password` with a fresh random salt and the default parameters.
pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt_bytes = random_bytes::<16>()?;
    let failed =
        |e: argon2::password_hash::Error| StoreError::Crypto { what: "password hashing", detail: e.to_string() };
    let salt = SaltString::encode_b64(&salt_bytes).map_err(failed)?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(failed)?.to_string())
}

/// Whether `password` matches the PHC string `stored` (in constant time). Err when `stored` does
/// not parse; the caller reports that as a corrupt row.
pub(crate) fn password_matches(password: &str, stored: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(stored).map_err(|e| format!("password hash: {e}"))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time of one password check on a hash that matches nothing.
pub(crate) fn dummy_password_check(password: &str) {
    // The constant parses (a test checks it); if it ever did not, the check is skipped, which
    // only makes unknown names faster to refuse.
    let _ = password_matches(password, DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_as_much_as_a_real_one() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("the dummy hash parses");
        let real_text = hash_password("correct horse battery staple").expect("hashing works");
        let real = PasswordHash::new(&real_text).expect("a fresh hash parses");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.params, real.params, "the dummy must use the default parameters");
        assert_eq!(password_matches("anything at all", DUMMY_HASH), Ok(false));
    }

    #[test]
    fn passwords_are_salted_and_checked() {
        let a = hash_password("correct horse battery staple").expect("hashing works");
        let b = hash_password("correct horse battery staple").expect("hashing works");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_eq!(password_matches("correct horse battery staple", &a), Ok(true));
        assert_eq!(password_matches("correct horse battery stapler", &a), Ok(false));
        assert!(password_matches("x", "not a phc string").is_err());
    }
}
