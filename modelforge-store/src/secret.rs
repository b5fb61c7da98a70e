//! [`load_or_create_secret`]: a per-installation signing key kept beside the database.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use modelforge_core::StoreError;
use rand::RngCore;

use crate::options::StoreOptions;

/// The file name of the signing key inside the data directory.
pub const SECRET_FILE_NAME: &str = "jwt-secret";

/// How many random bytes a new key has (twice the minimum, as RFC 7518 allows).
const NEW_SECRET_LEN: usize = 64;

/// Reads the token signing key from `data_dir/jwt-secret`, creating it on first use.
///
/// A new key is 64 bytes from the operating system's random source, written
/// once with owner-only permissions (`0600` on Unix) so restarts keep issued tokens valid.
/// The directory is created if needed. An existing file shorter than
/// [`StoreOptions::MIN_SECRET_LEN`] bytes is refused rather than silently replaced.
///
/// I/O failures are reported as [`StoreError::Io`] naming the file.
pub fn load_or_create_secret(data_dir: &Path) -> Result<Vec<u8>, StoreError> {
    let path = data_dir.join(SECRET_FILE_NAME);
    match fs::read(&path) {
        Ok(secret) => check_existing(&path, secret),
        Err(err) if err.kind() == io::ErrorKind::NotFound => create(data_dir, &path),
        Err(err) => Err(io_error(format!("reading the JWT secret {}", path.display()), err)),
    }
}

fn check_existing(path: &Path, secret: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if secret.len() < StoreOptions::MIN_SECRET_LEN {
        return Err(StoreError::InvalidInput {
            field: "jwt_secret",
            reason: format!(
                "{} holds {} bytes; at least {} are required (delete it to generate a new key)",
                path.display(),
                secret.len(),
                StoreOptions::MIN_SECRET_LEN
            ),
        });
    }
    Ok(secret)
}

fn create(data_dir: &Path, path: &Path) -> Result<Vec<u8>, StoreError> {
    fs::create_dir_all(data_dir)
        .map_err(|err| io_error(format!("creating the data directory {}", data_dir.display()), err))?;
    let mut secret = vec![0_u8; NEW_SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    match write_new(path, &secret) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new JWT signing key");
            Ok(secret)
        }
        // Another process created it between our read and our write: use theirs.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let existing = fs::read(path)
                .map_err(|err| io_error(format!("reading the JWT secret {}", path.display()), err))?;
            check_existing(path, existing)
        }
        Err(err) => Err(io_error(format!("writing the JWT secret {}", path.display()), err)),
    }
}

/// Writes `secret` to a file that must not exist yet, readable only by its owner.
fn write_new(path: &Path, secret: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret)?;
    file.sync_all()
}

fn io_error(context: String, err: io::Error) -> StoreError {
    StoreError::Io { context, source: err }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested").join("data");
        let first = load_or_create_secret(&data_dir).unwrap();
        assert_eq!(first.len(), NEW_SECRET_LEN);
        assert!(first.iter().any(|&b| b != 0), "the key is random, not zeroes");
        let second = load_or_create_secret(&data_dir).unwrap();
        assert_eq!(first, second);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create_secret(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(SECRET_FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_truncated_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRET_FILE_NAME), b"short").unwrap();
        let err = load_or_create_secret(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { field: "jwt_secret", .. }), "{err}");
    }
}
