//! Compliance packs on disk: `{dir}/{name}/{version}/pack.json`, `*.rego` and `tests.json`.
//! Packs are shared by every tenant that enables them; a tenant's bundle names the ones it
//! wants (`metadata.json` `"packs": {"cis_aws_monitoring": "1.0.0"}`).

use std::path::{Path, PathBuf};

use portcullis_engine::compliance::{PackManifest, PackRef, PackSource, PackTestCase};

use super::bundle_files::read_text;

/// Why a pack could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackLoadError {
    #[error("pack {pack} is not installed: no directory {}", dir.display())]
    NotFound { pack: PackRef, dir: PathBuf },
    #[error("pack {pack}: {message}")]
    Unreadable { pack: PackRef, message: String },
}

#[derive(Debug, Clone)]
pub struct FsPackSource {
    dir: PathBuf,
}

impl FsPackSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pack_dir(&self, pack: &PackRef) -> PathBuf {
        // `PackRef` admits no '/' and no leading '.', so this cannot leave `dir`.
        self.dir.join(&pack.name).join(&pack.version)
    }

    /// Reads `pack`'s manifest and modules; the manifest must name the directory it is in.
    pub fn load(&self, pack: &PackRef) -> Result<PackSource, PackLoadError> {
        let dir = self.pack_dir(pack);
        if !dir.is_dir() {
            return Err(PackLoadError::NotFound {
                pack: pack.clone(),
                dir,
            });
        }
        let unreadable = |message: String| PackLoadError::Unreadable {
            pack: pack.clone(),
            message,
        };
        let manifest_text = read_text(&dir.join("pack.json")).map_err(unreadable)?;
        let manifest =
            PackManifest::parse(manifest_text.as_bytes()).map_err(|e| unreadable(e.to_string()))?;
        if manifest.pack_ref() != *pack {
            return Err(unreadable(format!(
                "pack.json says {}, but it is in {}",
                manifest.pack_ref(),
                dir.display()
            )));
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| unreadable(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rego"))
            .collect();
        names.sort();
        let modules = names
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                read_text(path).map(|src| (name, src))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        Ok(PackSource { manifest, modules })
    }

    /// The pack's own tests, `tests.json`; empty when it has none.
    pub fn load_tests(&self, pack: &PackRef) -> Result<Vec<PackTestCase>, PackLoadError> {
        let path = self.pack_dir(pack).join("tests.json");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = read_text(&path).map_err(|message| PackLoadError::Unreadable {
            pack: pack.clone(),
            message,
        })?;
        serde_json::from_str(&text).map_err(|e| PackLoadError::Unreadable {
            pack: pack.clone(),
            message: format!("{}: {e}", path.display()),
        })
    }

    /// Every `{name}/{version}` directory that could hold a pack, in order; entries whose
    /// names cannot be a pack's are skipped.
    pub fn list(&self) -> std::io::Result<Vec<PackRef>> {
        let mut out = Vec::new();
        for name in std::fs::read_dir(&self.dir)? {
            let name = name?;
            if !name.path().is_dir() {
                continue;
            }
            let Some(name_str) = name.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            for version in std::fs::read_dir(name.path())? {
                let version = version?;
                if !version.path().is_dir() {
                    continue;
                }
                if let Some(Ok(pack)) = version
                    .file_name()
                    .to_str()
                    .map(|v| PackRef::new(&name_str, v))
                {
                    out.push(pack);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use portcullis_engine::compliance::CompiledPack;

    use super::*;

    fn shipped() -> FsPackSource {
        FsPackSource::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/packs"))
    }

    /// Every control of every shipped pack passes its own tests: the records it must fire on
    /// (as a change or as a failed attempt) and the look-alikes it must stay quiet on.
    #[test]
    fn every_shipped_pack_passes_its_own_tests() {
        let source = shipped();
        let packs = source.list().unwrap();
        let names: Vec<String> = packs.iter().map(ToString::to_string).collect();
        assert!(
            names.contains(&"cis_aws_monitoring@1.0.0".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"cloudtrail_detections@1.0.0".to_owned()),
            "{names:?}"
        );
        for pack in &packs {
            let loaded = source.load(pack).unwrap();
            let mut compiled = CompiledPack::compile(&loaded, Duration::from_millis(100))
                .unwrap_or_else(|e| panic!("{pack}: {e}"));
            assert_eq!(
                compiled.evaluator(),
                "dispatch",
                "{pack} runs split by event name"
            );
            let cases = source.load_tests(pack).unwrap();
            let failures = compiled.run_tests(&cases).unwrap();
            assert!(failures.is_empty(), "{pack}: {failures:#?}");
        }
    }

    #[test]
    fn the_cis_pack_covers_4_1_to_4_15_and_detections_are_at_least_twenty() {
        let source = shipped();
        let cis = source
            .load(&PackRef::new("cis_aws_monitoring", "1.0.0").unwrap())
            .unwrap();
        let ids: Vec<&str> = cis
            .manifest
            .controls
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        let want: Vec<String> = (1..=15).map(|n| format!("4.{n}")).collect();
        assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
        let detections = source
            .load(&PackRef::new("cloudtrail_detections", "1.0.0").unwrap())
            .unwrap();
        assert!(detections.manifest.controls.len() >= 20);
    }

    #[test]
    fn a_pack_must_sit_where_its_manifest_says_and_exist() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("p").join("1.0.0");
        std::fs::create_dir_all(&at).unwrap();
        std::fs::write(
            at.join("pack.json"),
            r#"{"name": "q", "version": "1.0.0", "title": "Q", "controls": [{"id": "a",
                "title": "A", "severity": "low", "resource": {"type": "AWS::::Account"},
                "rationale": "r", "remediation": {"text": "t"}}]}"#,
        )
        .unwrap();
        let source = FsPackSource::new(dir.path());
        let err = source
            .load(&PackRef::new("p", "1.0.0").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("pack.json says q@1.0.0"), "{err}");
        let err = source
            .load(&PackRef::new("p", "2.0.0").unwrap())
            .unwrap_err();
        assert!(matches!(err, PackLoadError::NotFound { .. }), "{err}");
    }
}
