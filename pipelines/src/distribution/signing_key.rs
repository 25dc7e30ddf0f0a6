//! The engine's policy signing key on disk (see `secret_file`): one line of standard base64,
//! the 32-byte Ed25519 secret. Whoever reads it can push policy to every agent.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use portcullis_engine::distribution::{encode_public_key, PolicySigner};

pub use crate::secret_file::SecretFileError as SigningKeyError;
use crate::secret_file::{create_secret_file, random_seed, read_secret_line};

/// Reads the key at `path`; `None` if there is no file.
pub fn load_signing_key(path: &Path) -> Result<Option<PolicySigner>, SigningKeyError> {
    let Some(line) = read_secret_line(path)? else {
        return Ok(None);
    };
    let secret: [u8; 32] = STANDARD
        .decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SigningKeyError::Malformed {
            path: path.to_owned(),
            expected: "a base64 Ed25519 secret of 32 bytes".into(),
        })?;
    Ok(Some(PolicySigner::from_secret(&secret)))
}

/// Reads the key at `path`, or creates one there (the directory 0700, the file 0600) if there
/// is none. The flag says whether it was created now.
pub fn load_or_create_signing_key(path: &Path) -> Result<(PolicySigner, bool), SigningKeyError> {
    if let Some(signer) = load_signing_key(path)? {
        return Ok((signer, false));
    }
    let secret = random_seed()?;
    let signer = PolicySigner::from_secret(&secret);
    let comments = [
        "Portcullis policy signing key (Ed25519). Keep it secret: it can push policy to every agent.".to_owned(),
        format!("key id: {}", signer.key_id()),
        format!("public key: {}", encode_public_key(&signer.public_key())),
    ];
    let created = create_secret_file(path, &comments, &STANDARD.encode(secret))?;
    // Another process may have made one first: theirs is the key.
    let signer = load_signing_key(path)?.ok_or_else(|| SigningKeyError::Malformed {
        path: path.to_owned(),
        expected: "a key file".into(),
    })?;
    Ok((signer, created))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
