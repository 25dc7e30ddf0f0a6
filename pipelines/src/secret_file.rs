//! A secret on disk (a signing key): created on first use, readable by its owner only.
//!
//! The file holds comment lines (`#`, for operators: the key's id and public half) and one
//! line: the secret. Whoever reads it can sign as the engine, so a file others may read is
//! refused, as ssh refuses such a private key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key {path} may be read by others (mode {mode:o}): run `chmod 600 {path}`, and consider it leaked if others could read it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the key {path} is not {expected}")]
    Malformed { path: PathBuf, expected: String },
    #[error("cannot make random bytes for a key: {0}")]
    Random(String),
}

/// The secret line of the file at `path`; `None` if there is no file.
pub fn read_secret_line(path: &Path) -> Result<Option<String>, SecretFileError> {
    let read = |source| SecretFileError::Read {
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
        return Err(SecretFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(read)?;
    Ok(Some(
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// Writes `comments` (each line given its `# `) and `secret` to a new file at `path` (the
/// directory 0700, the file 0600). `false` when a file is there already: two processes
/// starting at once do not overwrite each other's key, and the caller reads the one that won.
pub fn create_secret_file(
    path: &Path,
    comments: &[String],
    secret: &str,
) -> Result<bool, SecretFileError> {
    let create = |source| SecretFileError::Create {
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
    let mut body = String::new();
    for line in comments {
        body.push_str("# ");
        body.push_str(line);
        body.push('\n');
    }
    body.push_str(secret);
    body.push('\n');
    // Written whole to a file of its own, then linked into place: linking fails if a key is
    // there already, so a reader never finds a half-written key, and of two processes
    // starting at once one wins and the other reads the winner's.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".new-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(body.as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(create(e));
    }
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(create(e)),
    }
}

/// 32 bytes from the operating system's generator.
pub fn random_seed() -> Result<[u8; 32], SecretFileError> {
    use rand::TryRngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| SecretFileError::Random(e.to_string()))?;
    Ok(seed)
}
