//! The agent's policy cache: the signed envelope of each applied segment, one file per segment
//! in `{state_dir}/segments/`, written atomically (a temporary file renamed into place), and
//! verified again when read, so a file edited on disk is refused like a forged message.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_engine::distribution::{SegmentId, SignedEnvelope};

pub struct PolicyCache {
    dir: PathBuf,
}

impl PolicyCache {
    /// The cache under `state_dir` (created, readable by its owner only).
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = state_dir.join("segments");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, segment: &SegmentId) -> PathBuf {
        self.dir.join(format!("{segment}.json"))
    }

    /// Every cached envelope, by segment; unreadable files are reported, not fatal.
    pub fn load(&self) -> std::io::Result<Vec<(SegmentId, Result<SignedEnvelope, String>)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let Ok(segment) = SegmentId::parse(stem) else {
                continue;
            };
            let envelope = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            out.push((segment, envelope));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Keeps `envelope` as `segment`'s policy.
    pub fn save(&self, segment: &SegmentId, envelope: &SignedEnvelope) -> std::io::Result<()> {
        let path = self.path(segment);
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(envelope).expect("an envelope serializes"))?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)
    }

    pub fn remove(&self, segment: &SegmentId) -> std::io::Result<()> {
        match fs::remove_file(self.path(segment)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
