//! Keys read from files: a PEM PKCS#8 private key or a PEM SubjectPublicKeyInfo public key, with
//! errors that name the file and say what it should hold.

use std::io::Read as _;
use std::path::Path;

use crate::key::{KeyError, PublicKey};
use crate::private::PrivateKey;

/// Largest key file read, in bytes: a PEM key of either algorithm is a few hundred bytes.
pub const KEY_FILE_MAX_BYTES: u64 = 64 * 1024;

/// Why a key file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file `{path}` is larger than {max} bytes; a PEM key is a few hundred")]
    TooLarge { path: String, max: u64 },
    #[error(
        "`{path}` is not a private key: {source}; write an unencrypted PKCS#8 PEM key, as `airlock key generate` does"
    )]
    NotPrivate {
        path: String,
        #[source]
        source: KeyError,
    },
    #[error("`{path}` is not a public key: {source}; write a PEM `PUBLIC KEY`, as `airlock key generate` does")]
    NotPublic {
        path: String,
        #[source]
        source: KeyError,
    },
}

impl KeyFileError {
    /// Whether the file does not exist (so a caller may create it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, KeyFileError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads the private key in `path`: an unencrypted PKCS#8 PEM document (`PRIVATE KEY`).
pub fn read_private_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    let text = read_bounded(path)?;
    PrivateKey::from_pkcs8_pem(&text)
        .map_err(|source| KeyFileError::NotPrivate { path: path.display().to_string(), source })
}

/// Reads the public key in `path`: a PEM SubjectPublicKeyInfo document (`PUBLIC KEY`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyFileError> {
    let text = read_bounded(path)?;
    PublicKey::from_pem(text.trim())
        .map_err(|source| KeyFileError::NotPublic { path: path.display().to_string(), source })
}

/// The text of `path`, refused past [`KEY_FILE_MAX_BYTES`].
fn read_bounded(path: &Path) -> Result<String, KeyFileError> {
    let read = |source| KeyFileError::Read { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(KEY_FILE_MAX_BYTES.saturating_add(1)).read_to_string(&mut text).map_err(read)?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > KEY_FILE_MAX_BYTES {
        return Err(KeyFileError::TooLarge { path: path.display().to_string(), max: KEY_FILE_MAX_BYTES });
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::Algorithm;

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let (private, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        std::fs::write(&private, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        std::fs::write(&public, key.public_key().to_pem()).unwrap();
        assert_eq!(read_private_key(&private).unwrap().public_key().keyid(), key.public_key().keyid());
        assert_eq!(read_public_key(&public).unwrap().keyid(), key.public_key().keyid());
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        let error = read_private_key(&missing).unwrap_err();
        assert!(error.is_not_found());
        assert!(error.to_string().starts_with(&format!("cannot read key `{}`: ", missing.display())));
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let public = dir.path().join("k.pub");
        std::fs::write(&public, key.public_key().to_pem()).unwrap();
        let error = read_private_key(&public).unwrap_err();
        assert!(matches!(error, KeyFileError::NotPrivate { .. }) && !error.is_not_found(), "{error}");
        assert!(error.to_string().starts_with(&format!("`{}` is not a private key: ", public.display())));
        let private = dir.path().join("k.key");
        std::fs::write(&private, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        assert!(matches!(read_public_key(&private), Err(KeyFileError::NotPublic { .. })));
        let huge = dir.path().join("huge.key");
        std::fs::write(&huge, vec![b'a'; 70_000]).unwrap();
        assert!(matches!(read_private_key(&huge), Err(KeyFileError::TooLarge { max: KEY_FILE_MAX_BYTES, .. })));
    }
}
