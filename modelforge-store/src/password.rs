//! Password hashing with argon2id.
//!
//! Parameters follow the OWASP password storage cheat sheet (argon2id, m = 19 MiB, t = 2,
//! p = 1). Hashes are PHC strings, which record their own parameters, so old hashes still
//! verify after the parameters are raised.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use modelforge_core::StoreError;

/// Memory cost in KiB.
const MEMORY_KIB: u32 = 19_456;
/// Passes over memory.
const ITERATIONS: u32 = 2;
/// Lanes.
const PARALLELISM: u32 = 1;

/// A hash of a random, discarded password with the current parameters. Logins for unknown
/// users verify against it so they cost as much as logins with a wrong password, and response
/// time does not reveal which usernames exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$jloElmgCaw2gPEWr3n+D0w$ndSpU75q4thfXoXKulSCR9C69dEle70EYr0oW7x4Gy4";

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("the OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh random salt into a PHC string.
pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(|err| {
        StoreError::InvalidInput { field: "password", reason: format!("cannot be hashed: {err}") }
    })
}

/// Whether `password` matches the stored PHC string.
///
/// A stored hash that does not parse is a [`StoreError::Database`]: the row is corrupt, and
/// treating it as a wrong password would hide that.
pub(crate) fn verify_password(password: &str, stored_hash: &str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(stored_hash).map_err(|err| StoreError::Database {
        context: "parsing a stored password hash".to_owned(),
        source: err.to_string().into(),
    })?;
    Ok(argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time of one verification without a real user, for unknown usernames.
pub(crate) fn verify_dummy(password: &str) {
    // The result is meaningless (no one knows the dummy password); only the work matters.
    let _ = verify_password(password, DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let first = hash_password("correct horse").unwrap();
        let second = hash_password("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{first}");
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify_password("correct horse", &first).unwrap());
        assert!(!verify_password("correct horsE", &first).unwrap());
        assert!(!verify_password("", &first).unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_hash = hash_password("whatever1").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params, "update DUMMY_HASH when the parameters change");
    }

    #[test]
    fn a_corrupt_stored_hash_is_a_database_error() {
        let err = verify_password("anything", "not a phc string").unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
    }
}
