//! The checkpoint signing key on disk (see `secret_file`): one line, the key in signed-note's
//! private form, `PRIVATE+KEY+<name>+<id>+<base64>`.

use std::path::{Path, PathBuf};

use portcullis_engine::evidence::LogKey;

use crate::secret_file::{create_secret_file, random_seed, read_secret_line, SecretFileError};

/// Reads the key at `path`; `None` if there is no file.
pub fn load_log_key(path: &Path) -> Result<Option<LogKey>, SecretFileError> {
    let Some(line) = read_secret_line(path)? else {
        return Ok(None);
    };
    LogKey::from_private_text(&line)
        .map(Some)
        .map_err(|e| SecretFileError::Malformed {
            path: path.to_owned(),
            expected: format!("a signed-note private key ({e})"),
        })
}

/// Reads the key at `path`, or creates one named `name` there. The flag says whether it was
/// created now.
pub fn load_or_create_log_key(path: &Path, name: &str) -> Result<(LogKey, bool), SecretFileError> {
    if let Some(key) = load_log_key(path)? {
        return Ok((key, false));
    }
    let created = write_new_key(path, name)?;
    let key = load_log_key(path)?.ok_or_else(|| SecretFileError::Malformed {
        path: path.to_owned(),
        expected: "a key file".into(),
    })?;
    Ok((key, created))
}

/// Moves the key at `path` aside (to `<path>.retired-<id>`) and makes a new one named `name`.
/// Returns the new key and the old one.
pub fn rotate_log_key(
    path: &Path,
    name: &str,
) -> Result<(LogKey, Option<LogKey>), SecretFileError> {
    let old = load_log_key(path)?;
    if let Some(old) = &old {
        let aside = retired_path(path, old);
        std::fs::rename(path, &aside).map_err(|source| SecretFileError::Create {
            path: aside,
            source,
        })?;
    }
    let (new, _) = load_or_create_log_key(path, name)?;
    Ok((new, old))
}

fn retired_path(path: &Path, key: &LogKey) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".retired-{:08x}", key.id()));
    PathBuf::from(name)
}

fn write_new_key(path: &Path, name: &str) -> Result<bool, SecretFileError> {
    let key = LogKey::from_seed(name, random_seed()?).map_err(|e| SecretFileError::Malformed {
        path: path.to_owned(),
        expected: format!("a key that can be made ({e})"),
    })?;
    let comments = [
        "Portcullis receipt log key (Ed25519): signs every tenant's checkpoints. Keep it secret."
            .to_owned(),
        format!("public key: {}", key.public_text()),
    ];
    create_secret_file(path, &comments, key.private_text())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_key_is_made_once_kept_private_and_rotated_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/log.key");
        let (made, created) = load_or_create_log_key(&path, "portcullis.test").unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create_log_key(&path, "ignored").unwrap();
        assert!(!created);
        assert_eq!(again.public_text(), made.public_text());

        let (new, old) = rotate_log_key(&path, "portcullis.test").unwrap();
        assert_eq!(old.unwrap().public_text(), made.public_text());
        assert_ne!(new.public_text(), made.public_text());
        let aside = retired_path(&path, &made);
        assert_eq!(load_log_key(&aside).unwrap().unwrap().id(), made.id());
    }
}
