//! The engine's policy signing key on disk: created on first use, readable by its owner only.
//!
//! The file holds comment lines (the key id and public key, for operators) and one line of
//! standard base64: the 32-byte Ed25519 secret. Whoever reads it can push policy to every
//! agent, so a file others may read is refused, as ssh refuses such a private key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use portcullis_engine::distribution::{encode_public_key, PolicySigner};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read the signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the signing key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key {path} may be read by others (mode {mode:o}): run `chmod 600 {path}`, and consider it leaked if others could read it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the signing key {path} is not a base64 Ed25519 secret of 32 bytes")]
    Malformed { path: PathBuf },
    #[error("cannot make random bytes for a signing key: {0}")]
    Random(String),
}

/// Reads the key at `path`; `None` if there is no file.
pub fn load_signing_key(path: &Path) -> Result<Option<PolicySigner>, SigningKeyError> {
    let read = |source| SigningKeyError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SigningKeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(read)?;
    let malformed = || SigningKeyError::Malformed {
        path: path.to_owned(),
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(malformed)?;
    let secret: [u8; 32] = STANDARD
        .decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    Ok(Some(PolicySigner::from_secret(&secret)))
}

/// Reads the key at `path`, or creates one there (the directory 0700, the file 0600) if there
/// is none. The flag says whether it was created now.
pub fn load_or_create_signing_key(path: &Path) -> Result<(PolicySigner, bool), SigningKeyError> {
    if let Some(signer) = load_signing_key(path)? {
        return Ok((signer, false));
    }
    let create = |source| SigningKeyError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(create)?;
    }
    let mut secret = [0u8; 32];
    getrandom(&mut secret)?;
    let signer = PolicySigner::from_secret(&secret);
    let body = format!(
        "# Portcullis policy signing key (Ed25519). Keep it secret: it can push policy to every agent.\n\
         # key id: {}\n# public key: {}\n{}\n",
        signer.key_id(),
        encode_public_key(&signer.public_key()),
        STANDARD.encode(secret)
    );
    // create_new: two processes starting at once do not overwrite each other's key.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(body.as_bytes()).map_err(create)?;
            file.sync_all().map_err(create)?;
            Ok((signer, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let signer = load_signing_key(path)?.ok_or_else(|| SigningKeyError::Malformed {
                path: path.to_owned(),
            })?;
            Ok((signer, false))
        }
        Err(e) => Err(create(e)),
    }
}

fn getrandom(buf: &mut [u8]) -> Result<(), SigningKeyError> {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| SigningKeyError::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/policy.key");
        assert!(load_signing_key(&path).unwrap().is_none());
        let (made, created) = load_or_create_signing_key(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let (again, created) = load_or_create_signing_key(&path).unwrap();
        assert!(!created);
        assert_eq!(again.key_id(), made.key_id());
        assert_eq!(again.public_key(), made.public_key());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(made.key_id()), "{text}");
    }

    #[test]
    fn an_open_or_malformed_key_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        load_or_create_signing_key(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_signing_key(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        let bad = dir.path().join("bad");
        fs::write(&bad, "# only a comment\nnot-base64!\n").unwrap();
        fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_signing_key(&bad),
            Err(SigningKeyError::Malformed { .. })
        ));
    }
}
