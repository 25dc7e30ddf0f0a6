//! Hot reload: bundle directories are watched, and a tenant whose files changed is reloaded
//! once they have been quiet for the debounce time (editors and `cp -r` write in steps).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use portcullis_actors::PolicyStore;
use portcullis_engine::TenantId;
use tracing::{info, warn};

use crate::policy_service::bundle_files::FsBundleSource;

/// Longest a stream of changes postpones a reload: a bundle written to without pause is still
/// picked up.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// Watching stops when this is dropped.
pub struct BundleWatcher {
    _watcher: RecommendedWatcher,
    _thread: JoinHandle<()>,
}

/// Activates every tenant bundle on disk, so that errors show at start-up (and in
/// `/v1/bundles`) rather than at a tenant's first event. Returns how many were refused.
pub fn activate_all(dir: &Path, store: &PolicyStore) -> usize {
    let tenants = match FsBundleSource::new(dir).tenants() {
        Ok(t) => t,
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot list tenant bundles");
            return 0;
        }
    };
    tenants.iter().filter(|t| store.reload(t).is_err()).count()
}

/// Starts watching `dir`. Reloads run on the watcher's own thread: compiling a bundle never
/// holds up the async runtime.
pub fn watch_bundles(
    dir: &Path,
    store: Arc<PolicyStore>,
    debounce: Duration,
) -> notify::Result<BundleWatcher> {
    watch_changes(dir, debounce, move |root, changed| {
        for tenant in &changed.tenants {
            match store.reload(tenant) {
                Ok(()) => info!(%tenant, "bundle reloaded"),
                Err(e) => warn!(%tenant, error = %e, "bundle reload refused"),
            }
        }
        if changed.root {
            activate_all(root, &store);
        }
    })
}

/// Starts watching the packs directory `dir`: a changed pack reloads every tenant's bundle
/// (each takes the pack's new files if it enables it; a refused reload keeps the bundle that
/// was active).
pub fn watch_packs(
    dir: &Path,
    bundles_dir: &Path,
    store: Arc<PolicyStore>,
    debounce: Duration,
) -> notify::Result<BundleWatcher> {
    let bundles_dir = bundles_dir.to_owned();
    watch_changes(dir, debounce, move |_, _| {
        let refused = activate_all(&bundles_dir, &store);
        info!(refused, "packs changed: bundles reloaded");
    })
}

/// Calls `on_change` with the tenants whose files changed, once they have been quiet for
/// `debounce`.
fn watch_changes(
    dir: &Path,
    debounce: Duration,
    on_change: impl Fn(&Path, &Changed) + Send + 'static,
) -> notify::Result<BundleWatcher> {
    // Events carry paths under the directory as it was given to the watcher: make it absolute.
    let root = std::fs::canonicalize(dir)?;
    let (tx, rx) = channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| match res {
        Ok(event) if is_change(&event.kind) => {
            for path in event.paths {
                // Fails only once the reloading thread is gone, i.e. while shutting down.
                let _ = tx.send(path);
            }
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "bundle watcher error"),
    })?;
    watcher.watch(&root, RecursiveMode::Recursive)?;
    let base = root.clone();
    let thread = std::thread::Builder::new()
        .name("bundle-watch".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut paths = vec![first];
                let started = Instant::now();
                let mut open = true;
                while started.elapsed() < MAX_DEBOUNCE {
                    match rx.recv_timeout(debounce) {
                        Ok(path) => paths.push(path),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
                on_change(
                    &base,
                    &changed_tenants(&base, paths.iter().map(PathBuf::as_path)),
                );
                if !open {
                    return;
                }
            }
        })?;
    info!(dir = %root.display(), "watching for changes");
    Ok(BundleWatcher {
        _watcher: watcher,
        _thread: thread,
    })
}

/// Whether an event may have changed a bundle. Reading one is not a change: the engine reads
/// bundles when it reloads them, and inotify reports every open, so counting opens would
/// reload every bundle again and again.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[derive(Debug, Default, PartialEq)]
struct Changed {
    tenants: BTreeSet<TenantId>,
    /// The bundles directory itself changed (renamed, replaced): look at everything again.
    root: bool,
}

/// Which tenants' bundles the changed paths belong to. Paths outside a valid tenant directory
/// (editor swap files at the top level, `Not-A-Tenant/`) are ignored, except a top-level entry
/// named `..…`: a Kubernetes ConfigMap mounted as the bundles directory swaps its `..data` link
/// to a new `..2026_…` directory behind the tenants' links, so everything is looked at again.
fn changed_tenants<'a>(root: &Path, paths: impl Iterator<Item = &'a Path>) -> Changed {
    let mut out = Changed::default();
    for p in paths {
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        match rel.components().next() {
            None => out.root = true,
            Some(first) => {
                let name = first.as_os_str().to_str();
                if let Some(t) = name.and_then(|n| TenantId::parse(n).ok()) {
                    out.tenants.insert(t);
                } else if name.is_some_and(|n| n.starts_with("..")) {
                    out.root = true;
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
    fn reading_a_bundle_is_not_a_change_and_writing_one_is() {
        let dir = std::env::temp_dir().join(format!("portcullis-watch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("acme")).unwrap();
        std::fs::write(dir.join("acme/policy.rego"), "package tenants.acme").unwrap();
        let (tx, rx) = channel();
        let _watcher = watch_changes(&dir, Duration::from_millis(50), move |_, c| {
            let _ = tx.send(c.tenants.clone());
        })
        .unwrap();
        for _ in 0..3 {
            std::fs::read_to_string(dir.join("acme/policy.rego")).unwrap();
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "a read was taken for a change"
        );
        std::fs::write(dir.join("acme/policy.rego"), "package tenants.acme\nx := 1").unwrap();
        let changed = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the write was seen");
        assert_eq!(
            changed.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["acme"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

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
        // A ConfigMap mount's swap of its data directory: everything is looked at again.
        for swap in ["/b/..data", "/b/..2026_11_23_08_00_00.123/acme/policy.rego"] {
            assert!(
                changed_tenants(root, [Path::new(swap)].into_iter()).root,
                "{swap}"
            );
        }
    }
}
