//! Replacing a served model without downtime (issue 18, item 4).
//!
//! `ocular models import FILE --name N --replace`, run by another process, renames a complete
//! new folder over the old one (`ocular_convert::install`); a running server notices nothing
//! until it is asked to reload (`POST /api/v1/models:reload`, `POST /api/v1/models/{name}/reload`
//! or SIGHUP). A reload reads every manifest again and, for each imported classifier and for the
//! skin model whose manifest changed:
//!
//! - loads the new model **beside** the old one, inside the same single flight as a lazy load
//!   (a request that needs a load meanwhile waits for the reload instead of loading twice) and
//!   through the registry's load gate, so the load reserves its memory in the request budget
//!   while the old model's memory is still counted: the peak is the old model plus one load,
//!   never two loads;
//! - swaps it in under the slot's lock: requests that already hold the old model (its `Arc`)
//!   finish on it and free it when they end; every request after the swap gets the new one.
//!   Nothing is refused and nothing waits for the swap;
//! - a failed load (a corrupt file, a graph ONNX Runtime refuses, no room in the budget) leaves
//!   the old model and its manifest serving, and the failure is reported by the reload and in
//!   `/health?verbose=1` (`reload_error`) until a later reload succeeds.
//!
//! A classifier imported under a new name is added and loaded. The search models (image, text,
//! CLIP) are not reloaded: the catalog's stored vectors belong to the model that made them, so
//! swapping one means re-embedding the catalog (`ocular reindex`) and a restart. Neither is a
//! skin model installed while none was configured, nor a folder removed (the loaded model keeps
//! serving); each is reported. Stored analyses carry the name and version of the model that
//! made them, and a re-imported model gets a new version (`install::import_keras` appends its
//! source's digest), so analyses made before and after a replacement stay told apart.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ocular_core::{Manifest, ModelKind};
use serde::Serialize;

use crate::classifier::Classifier;
use crate::error::ModelError;
use crate::registry::{Loadable, ModelState, Registry, Slot, at_precision, backoff, error_chain, load_cost_of};

/// What a reload did with one model folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Same manifest as the model served: nothing loaded.
    Unchanged,
    /// The new model was loaded and now serves.
    Replaced,
    /// A classifier under a new name, now served.
    Added,
    /// Not loaded; the model served before (if any) keeps serving. `error` says why.
    Failed,
    /// Found but not reloadable while serving (see the module notes); `error` says what to do.
    Skipped,
}

/// One line of a reload's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub name: String,
    pub outcome: Outcome,
    /// The version served before the reload, when one was.
    pub previous_version: Option<String>,
    /// The version served after it.
    pub version: Option<String>,
    pub load_ms: Option<u64>,
    pub error: Option<String>,
}

impl Reloaded {
    fn new(name: &str, outcome: Outcome) -> Self {
        Self { name: name.into(), outcome, previous_version: None, version: None, load_ms: None, error: None }
    }

    fn failed(name: &str, error: String) -> Self {
        Self { error: Some(error), ..Self::new(name, Outcome::Failed) }
    }
}

impl<T: Loadable> Slot<T> {
    /// Reads this model's manifest again and, if it changed, loads the new model beside the
    /// served one and swaps it in (see the module notes). Never leaves the slot without the
    /// model it served before unless the new one serves.
    pub async fn reload(&self) -> Reloaded {
        let name = self.name();
        let fresh = match self.fresh_manifest() {
            Ok(m) => m,
            Err(e) => return self.reload_failed(&name, format!("cannot read the new manifest: {e}")),
        };
        let before = self.manifest();
        let previous_version = Some(before.version.clone());
        if *fresh == *before {
            return Reloaded {
                previous_version: previous_version.clone(),
                version: previous_version,
                ..Reloaded::new(&name, Outcome::Unchanged)
            };
        }
        // The same single flight as a lazy load: a request that finds the model unloaded waits
        // for this instead of loading the old files' replacement a second time.
        let _flight = self.loading.lock().await;
        let gate = self.gate.lock().clone();
        let started = Instant::now();
        let loaded = async {
            let _turn = match gate {
                Some(g) => Some(g.enter(&name, load_cost_of(&fresh)).await?),
                None => None,
            };
            self.load_manifest(fresh.clone()).await
        }
        .await;
        let load_ms = started.elapsed().as_millis() as u64;
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                let mut report = self.reload_failed(&name, error_chain(&e));
                report.previous_version = previous_version;
                // Nothing loaded to keep serving: the files on disk are the new ones now, so
                // the next request's lazy load (after the back-off) tries those.
                if self.current.lock().is_none() {
                    *self.manifest.lock() = fresh.clone();
                    let mut st = self.status.lock();
                    st.state = Some(ModelState::Failed);
                    st.failures += 1;
                    st.error = report.error.clone();
                    st.next_retry = Some(Instant::now() + backoff(st.failures));
                }
                return report;
            }
        };
        {
            // Model and manifest change together: a card listed during the swap never
            // describes the other model than the one a request would get.
            let mut current = self.current.lock();
            *self.manifest.lock() = fresh.clone();
            *current = Some(model);
        }
        self.reloads.fetch_add(1, Ordering::SeqCst);
        {
            let mut st = self.status.lock();
            st.state = Some(ModelState::Ready);
            st.load_ms = Some(load_ms);
            st.error = None;
            st.failures = 0;
            st.next_retry = None;
            st.reload_error = None;
        }
        // The old model's memory goes back when its last request ends; give the allocator's
        // free pages back now for what is already free.
        crate::session::release_free_memory();
        tracing::info!(
            model.name = %name,
            from = %before.version,
            to = %fresh.version,
            load_ms,
            "model replaced"
        );
        Reloaded {
            previous_version,
            version: Some(fresh.version.clone()),
            load_ms: Some(load_ms),
            ..Reloaded::new(&name, Outcome::Replaced)
        }
    }

    /// The manifest on disk, viewed at the precision discovery chose. Refused when it names
    /// another model or kind than this slot serves.
    fn fresh_manifest(&self) -> Result<Arc<Manifest>, ModelError> {
        let fresh = Manifest::load(self.dir())?;
        let before = self.manifest();
        if fresh.name != before.name || fresh.kind != before.kind {
            return Err(ModelError::Invalid {
                model: before.name.clone(),
                reason: format!(
                    "the folder now holds {} ({}) instead of a {}; restart to serve it",
                    fresh.name,
                    fresh.kind.as_str(),
                    before.kind.as_str()
                ),
            });
        }
        // An int8 view whose self-check fails falls back to fp32 here as at start (logged).
        let (mut fallbacks, mut warnings) = (Vec::new(), Vec::new());
        Ok(Arc::new(at_precision(self.dir(), fresh, self.precision, &self.options, &mut fallbacks, &mut warnings)))
    }

    fn reload_failed(&self, name: &str, error: String) -> Reloaded {
        tracing::error!(model.name = %name, error = %error, "reload failed; the model served before keeps serving");
        self.status.lock().reload_error = Some(error.clone());
        Reloaded {
            version: self.loaded().is_some().then(|| self.manifest().version.clone()),
            ..Reloaded::failed(name, error)
        }
    }
}

impl Registry {
    /// Reads the models folder again and reloads what changed (see the module notes), one
    /// reload at a time. Returns one line per model folder it looked at.
    pub async fn reload(&self) -> Vec<Reloaded> {
        let _one = self.reloading.lock().await;
        let Some(options) = self.options.clone() else { return Vec::new() };
        let mut report = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (dir, manifest) in model_folders(&options.models_dir, &mut report) {
            if options.enabled.as_ref().is_some_and(|e| !e.contains(&manifest.name)) {
                continue;
            }
            seen.insert(manifest.name.clone());
            match manifest.kind {
                ModelKind::Imported => match self.classifier(&manifest.name) {
                    Some(slot) => report.push(slot.reload().await),
                    None => report.push(self.add_found(dir, manifest, &options).await),
                },
                ModelKind::SkinClassifier => match &self.skin {
                    Some(slot) if slot.dir() == dir => report.push(slot.reload().await),
                    Some(slot) => report.push(Reloaded {
                        error: Some(format!("skin model {} is served; one skin model at a time", slot.name())),
                        ..Reloaded::new(&manifest.name, Outcome::Skipped)
                    }),
                    None => report.push(Reloaded {
                        error: Some("no skin model was configured at start: restart to serve it".into()),
                        ..Reloaded::new(&manifest.name, Outcome::Skipped)
                    }),
                },
                // Search models: the catalog's vectors belong to the model that made them.
                _ => {}
            }
        }
        let classifiers = self.classifiers();
        let served = self.skin.iter().map(|s| s.name()).chain(classifiers.iter().map(|s| s.name()));
        for name in served.filter(|n| !seen.contains(n)).collect::<Vec<_>>() {
            report.push(Reloaded {
                error: Some("its folder is gone or unreadable; the loaded model keeps serving until a restart".into()),
                ..Reloaded::new(&name, Outcome::Skipped)
            });
        }
        report
    }

    /// Reloads the model named `name` only: a served classifier or skin model, or a classifier
    /// imported under that new name. `None` when no such model is served or installed.
    pub async fn reload_one(&self, name: &str) -> Option<Reloaded> {
        let _one = self.reloading.lock().await;
        if let Some(slot) = self.classifier(name) {
            return Some(slot.reload().await);
        }
        if let Some(slot) = self.skin.as_ref().filter(|s| s.name() == name) {
            return Some(slot.reload().await);
        }
        // A name from a URL: only a plain folder name may reach the file system.
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let options = self.options.clone().filter(|_| plain)?;
        let dir = options.models_dir.join(name);
        let manifest = Manifest::load(&dir).ok().filter(|m| m.kind == ModelKind::Imported && m.name == name)?;
        if options.enabled.as_ref().is_some_and(|e| !e.iter().any(|n| n == name)) {
            return None;
        }
        Some(self.add_found(dir, manifest, &options).await)
    }

    /// A classifier imported under a new name: served from now on, loaded now so the reload
    /// reports whether it works.
    async fn add_found(
        &self,
        dir: std::path::PathBuf,
        manifest: Manifest,
        options: &Arc<crate::RegistryOptions>,
    ) -> Reloaded {
        let name = manifest.name.clone();
        let version = manifest.version.clone();
        let slot = Arc::new(Slot::<Classifier>::new(dir, manifest, options.clone()));
        self.add_classifier(slot.clone());
        let started = Instant::now();
        match slot.get().await {
            Ok(_) => Reloaded {
                version: Some(version),
                load_ms: Some(started.elapsed().as_millis() as u64),
                ..Reloaded::new(&name, Outcome::Added)
            },
            Err(e) => Reloaded::failed(&name, error_chain(&e)),
        }
    }
}

/// Every `*/manifest.json` under `models_dir`, in folder order; unreadable manifests become
/// failed lines of `report` (a folder half-way through a rename is one).
fn model_folders(models_dir: &Path, report: &mut Vec<Reloaded>) -> Vec<(std::path::PathBuf, Manifest)> {
    let mut dirs: Vec<_> = match std::fs::read_dir(models_dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            report.push(Reloaded::failed(&models_dir.display().to_string(), e.to_string()));
            return Vec::new();
        }
    };
    dirs.sort();
    let mut found = Vec::new();
    for dir in dirs {
        // `.NAME.partial` folders are imports still being written.
        let hidden = dir.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if hidden || !dir.join(ocular_core::manifest::MANIFEST_FILE).is_file() {
            continue;
        }
        match Manifest::load(&dir) {
            Ok(m) => found.push((dir, m)),
            Err(e) => {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                report.push(Reloaded::failed(&name, error_chain(&e)));
            }
        }
    }
    found
}
