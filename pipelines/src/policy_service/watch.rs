//! Hot reload: bundle directories are watched, and a tenant whose files changed is reloaded
//! once they have been quiet for the debounce time (editors and `cp -r` write in steps).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use portcullis_actors::TenantDirectory;
use portcullis_engine::TenantId;
use tracing::{info, warn};

use crate::bundles::FsBundleSource;

/// Watching stops when this is dropped.
pub struct BundleWatcher {
    _debouncer: Debouncer<RecommendedWatcher>,
}

/// Activates every tenant bundle on disk, so that errors show at start-up (and in
/// `/v1/bundles`) rather than at a tenant's first event. Returns how many were refused.
pub fn activate_all(dir: &Path, directory: &TenantDirectory) -> usize {
    let tenants = match FsBundleSource::new(dir).tenants() {
        Ok(t) => t,
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot list tenant bundles");
            return 0;
        }
    };
    tenants
        .iter()
        .filter(|t| directory.reload(t).is_err())
        .count()
}

/// Starts watching `dir`. Reloads run on the watcher's own thread: compiling a bundle never
/// holds up the async runtime.
pub fn watch_bundles(
    dir: &Path,
    directory: Arc<TenantDirectory>,
    debounce: Duration,
) -> notify_debouncer_mini::notify::Result<BundleWatcher> {
    // Events carry paths under the directory as it was given to the watcher: make it absolute.
    let root = std::fs::canonicalize(dir)?;
    let base = root.clone();
    let mut debouncer = new_debouncer(debounce, move |res: DebounceEventResult| match res {
        Ok(events) => {
            let changed = changed_tenants(&base, events.iter().map(|e| e.path.as_path()));
            for tenant in changed.tenants {
                match directory.reload(&tenant) {
                    Ok(()) => info!(%tenant, "bundle reloaded"),
                    Err(e) => warn!(%tenant, error = %e, "bundle reload refused"),
                }
            }
            if changed.root {
                activate_all(&base, &directory);
            }
        }
        Err(e) => warn!(error = %e, "bundle watcher error"),
    })?;
    debouncer.watcher().watch(&root, RecursiveMode::Recursive)?;
    info!(dir = %root.display(), "watching tenant bundles for changes");
    Ok(BundleWatcher {
        _debouncer: debouncer,
    })
}

#[derive(Debug, Default, PartialEq)]
struct Changed {
    tenants: BTreeSet<TenantId>,
    /// The bundles directory itself changed (renamed, replaced): look at everything again.
    root: bool,
}

/// Which tenants' bundles the changed paths belong to. Paths outside a valid tenant directory
/// (editor swap files at the top level, `Not-A-Tenant/`) are ignored.
fn changed_tenants<'a>(root: &Path, paths: impl Iterator<Item = &'a Path>) -> Changed {
    let mut out = Changed::default();
    for p in paths {
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        match rel.components().next() {
            None => out.root = true,
            Some(first) => {
                if let Some(t) = first
                    .as_os_str()
                    .to_str()
                    .and_then(|n| TenantId::parse(n).ok())
                {
                    out.tenants.insert(t);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_changed_files_to_their_tenant() {
        let root = Path::new("/b");
        let paths = [
            "/b/acme/policy.rego",
            "/b/acme/data.json",
            "/b/globex",
            "/b/.policy.rego.swp",
            "/b/Not-A-Tenant/x.rego",
            "/elsewhere/acme/x",
        ];
        let c = changed_tenants(root, paths.iter().map(Path::new));
        let names: Vec<_> = c.tenants.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["acme", "globex"]);
        assert!(!c.root);
        assert!(changed_tenants(root, [Path::new("/b")].into_iter()).root);
    }
}
