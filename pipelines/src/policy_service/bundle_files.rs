//! Tenant policy bundles on disk: `{dir}/{tenant}/*.rego`, optional `data.json`, `metadata.json`.

use std::path::{Path, PathBuf};

use portcullis_actors::{BundleSource, LoadError};
use portcullis_engine::compliance::PackRef;
use portcullis_engine::{Bundle, TenantId};

use super::pack_files::FsPackSource;
use tracing::warn;

/// Largest single file read from a bundle.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

pub struct FsBundleSource {
    dir: PathBuf,
    packs: Option<FsPackSource>,
}

impl FsBundleSource {
    /// Bundles in `dir`; a bundle that enables packs is refused until [`Self::with_packs`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            packs: None,
        }
    }

    /// Where the packs bundles enable are read from.
    pub fn with_packs(mut self, packs: FsPackSource) -> Self {
        self.packs = Some(packs);
        self
    }

    /// Tenant directories present on disk. A directory whose name is not a valid tenant id is
    /// skipped, with a warning that says why: it is most likely a typo in a tenant's name.
    pub fn tenants(&self) -> std::io::Result<Vec<TenantId>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            // Hidden entries (an editor's or a ConfigMap's `..data`) are not tenants.
            let name = entry.file_name();
            if !entry.path().is_dir() || name.to_string_lossy().starts_with('.') {
                continue;
            }
            match name.to_str().map(TenantId::parse) {
                Some(Ok(t)) => out.push(t),
                Some(Err(e)) => warn!(dir = %entry.path().display(), error = %e,
                                      "not a tenant's bundle: its name is not a valid tenant id"),
                None => warn!(dir = %entry.path().display(),
                              "not a tenant's bundle: its name is not UTF-8"),
            }
        }
        out.sort();
        Ok(out)
    }
}

impl FsBundleSource {
    /// Another tenant whose directory (links resolved) is `path` or holds it.
    fn tenant_owning(&self, path: &Path, tenant: &TenantId) -> Option<TenantId> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        entries.filter_map(Result::ok).find_map(|entry| {
            let other = TenantId::parse(entry.file_name().to_str()?).ok()?;
            let theirs = entry.path().canonicalize().ok()?;
            (other != *tenant && path.starts_with(&theirs)).then_some(other)
        })
    }
}

impl BundleSource for FsBundleSource {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError> {
        // `TenantId` admits no '/', '.' or '..', so this join cannot leave `dir`.
        let dir = self.dir.join(tenant.as_str());
        let unreadable = |message: String| LoadError::Unreadable {
            tenant: tenant.to_string(),
            message,
        };
        if !dir.is_dir() {
            return Err(LoadError::NotFound(tenant.to_string()));
        }
        // Every file is read from inside this directory, links resolved: a link to another
        // tenant's file (`spy/data.json -> ../acme/data.json`) would hand it that tenant's data.
        // Links that stay inside, as a Kubernetes ConfigMap's `..data/` ones do, are fine.
        let home = dir
            .canonicalize()
            .map_err(|e| unreadable(format!("{}: {e}", dir.display())))?;
        // The directory may itself be a link (a ConfigMap's `acme -> ..data/acme`, a release's
        // `acme -> releases/acme-7`), but not into another tenant's: `spy -> acme` would make
        // all of acme's files spy's.
        if let Some(other) = self.tenant_owning(&home, tenant) {
            return Err(unreadable(format!(
                "{} links to {}, which is tenant {other}'s directory; a bundle reads only its own files",
                dir.display(),
                home.display()
            )));
        }
        let inside = |path: &Path| -> Result<(), String> {
            match path.canonicalize() {
                Ok(real) if real.starts_with(&home) => Ok(()),
                Ok(real) => Err(format!(
                    "{}: links out of the tenant's directory (to {}); a bundle reads only its own files",
                    path.display(),
                    real.display()
                )),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        };
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| unreadable(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rego"))
            .collect();
        names.sort();
        let mut modules = Vec::with_capacity(names.len());
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            inside(&path).map_err(unreadable)?;
            modules.push((name, read_text(&path).map_err(unreadable)?));
        }
        let json = |name: &str| {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            inside(&path).and_then(|()| read_json(&path))
        };
        let data = json("data.json").map_err(unreadable)?;
        let metadata = json("metadata.json").map_err(unreadable)?;
        let Metadata {
            revision,
            mask,
            packs: wanted,
        } = match metadata {
            Some(m) => parse_metadata(&m).map_err(|e| unreadable(format!("metadata.json: {e}")))?,
            None => Metadata::default(),
        };
        let packs = match (&self.packs, wanted.is_empty()) {
            (_, true) => Vec::new(),
            (None, false) => {
                return Err(unreadable(
                    "metadata.json enables packs, but no packs directory is configured (policy.packs_dir)".into(),
                ))
            }
            (Some(source), false) => wanted
                .iter()
                .map(|p| source.load(p).map_err(|e| unreadable(e.to_string())))
                .collect::<Result<_, _>>()?,
        };
        Ok(Bundle {
            tenant: tenant.clone(),
            modules,
            data,
            revision,
            mask,
            packs,
        })
    }
}

#[derive(Debug, Default)]
struct Metadata {
    revision: Option<String>,
    mask: Vec<String>,
    packs: Vec<PackRef>,
}

/// `{"revision": "…", "decision_log": {"mask": ["/input/password", …]},
/// "packs": {"cis_aws_monitoring": "1.0.0"}}`, every key optional.
fn parse_metadata(m: &serde_json::Value) -> Result<Metadata, String> {
    let revision = match m.get("revision") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(r)) => Some(r.clone()),
        Some(other) => return Err(format!("revision must be a string, not {other}")),
    };
    let mask = match m.pointer("/decision_log/mask") {
        None => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("decision_log.mask entries must be strings, not {i}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("decision_log.mask must be a list, not {other}")),
    };
    let packs = match m.get("packs") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(packs)) => packs
            .iter()
            .map(|(name, version)| match version.as_str() {
                Some(v) => PackRef::new(name, v).map_err(|e| format!("packs: {e}")),
                None => Err(format!(
                    "packs.{name} must be a version string such as \"1.0.0\", not {version}"
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "packs must map pack names to versions ({{\"cis_aws_monitoring\": \"1.0.0\"}}), not {other}"
            ))
        }
    };
    Ok(Metadata {
        revision,
        mask,
        packs,
    })
}

pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{}: {len} bytes exceeds the {MAX_FILE_BYTES}-byte limit",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: invalid JSON: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_modules_data_and_revision_in_stable_order() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("acme");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("b.rego"), "package tenants.acme\nx := 1").unwrap();
        std::fs::write(t.join("a.rego"), "package tenants.acme\ny := 1").unwrap();
        std::fs::write(t.join("README.md"), "ignored").unwrap();
        std::fs::write(t.join("data.json"), r#"{"k": 1}"#).unwrap();
        std::fs::write(
            t.join("metadata.json"),
            r#"{"revision": "r7", "decision_log": {"mask": ["/input/password"]}}"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("Not-A-Tenant")).unwrap();
        let src = FsBundleSource::new(dir.path());
        let b = src.load(&TenantId::parse("acme").unwrap()).unwrap();
        let names: Vec<_> = b.modules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.rego", "b.rego"]);
        assert_eq!(b.data, Some(serde_json::json!({"k": 1})));
        assert_eq!(b.revision.as_deref(), Some("r7"));
        assert_eq!(b.mask, ["/input/password"]);
        assert_eq!(
            src.tenants().unwrap(),
            vec![TenantId::parse("acme").unwrap()]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_bundle_reads_no_file_through_a_link_out_of_its_directory() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let (acme, spy) = (dir.path().join("acme"), dir.path().join("spy"));
        std::fs::create_dir(&acme).unwrap();
        std::fs::create_dir(&spy).unwrap();
        std::fs::write(acme.join("data.json"), r#"{"secret": 1}"#).unwrap();
        std::fs::write(spy.join("p.rego"), "package tenants.spy\nx := 1").unwrap();
        let src = FsBundleSource::new(dir.path());
        let spy_id = TenantId::parse("spy").unwrap();
        for name in ["data.json", "metadata.json", "q.rego"] {
            let target = if name.ends_with(".rego") {
                acme.join("data.json")
            } else {
                acme.join(name)
            };
            std::fs::write(&target, r#"{"secret": 1}"#).unwrap();
            symlink(&target, spy.join(name)).unwrap();
            let err = src.load(&spy_id).unwrap_err().to_string();
            assert!(
                err.contains("links out of the tenant's directory"),
                "{name}: {err}"
            );
            std::fs::remove_file(spy.join(name)).unwrap();
        }
        // A link inside the directory, as a ConfigMap mount makes them, is read.
        std::fs::create_dir(spy.join("..data")).unwrap();
        std::fs::write(spy.join("..data/data.json"), r#"{"k": 2}"#).unwrap();
        symlink("..data/data.json", spy.join("data.json")).unwrap();
        let b = src.load(&spy_id).unwrap();
        assert_eq!(b.data, Some(serde_json::json!({"k": 2})));
        // A tenant directory that is a link to another tenant's is refused as a whole.
        symlink(&acme, dir.path().join("mallory")).unwrap();
        let err = src
            .load(&TenantId::parse("mallory").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("which is tenant acme's directory"), "{err}");
        std::fs::remove_file(dir.path().join("mallory")).unwrap();
        // A link to a directory of another name that no tenant owns (a release) is fine.
        std::fs::create_dir_all(dir.path().join("..releases/globex-7")).unwrap();
        std::fs::write(
            dir.path().join("..releases/globex-7/p.rego"),
            "package tenants.globex\nx := 1",
        )
        .unwrap();
        symlink(
            dir.path().join("..releases/globex-7"),
            dir.path().join("globex"),
        )
        .unwrap();
        let globex = src.load(&TenantId::parse("globex").unwrap()).unwrap();
        assert_eq!(globex.modules.len(), 1);
        std::fs::remove_file(dir.path().join("globex")).unwrap();
        // Hidden entries of the bundles directory (a ConfigMap mount's `..data`) are no tenants.
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        assert_eq!(
            src.tenants().unwrap(),
            ["acme", "spy"].map(|t| TenantId::parse(t).unwrap())
        );
    }

    #[test]
    fn missing_and_broken_bundles_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let src = FsBundleSource::new(dir.path());
        let err = src.load(&TenantId::parse("ghost").unwrap()).unwrap_err();
        assert_eq!(err, LoadError::NotFound("ghost".into()));
        std::fs::create_dir(dir.path().join("acme")).unwrap();
        std::fs::write(dir.path().join("acme/data.json"), "{oops").unwrap();
        let err = src
            .load(&TenantId::parse("acme").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.json: invalid JSON"), "{err}");
        std::fs::remove_file(dir.path().join("acme/data.json")).unwrap();
        std::fs::write(dir.path().join("acme/metadata.json"), r#"{"revision": 7}"#).unwrap();
        let err = src
            .load(&TenantId::parse("acme").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("revision must be a string"), "{err}");
    }
}
