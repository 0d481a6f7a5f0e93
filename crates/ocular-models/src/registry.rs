//! The model registry: one [`Slot`] per configured model, each loaded at most once.
//!
//! A slot owns a single-flight cell (the loaded model behind a lock, loads serialised by an async
//! mutex): however many requests ask for a model at once, exactly one load runs and everyone
//! awaits it. A failed load leaves the cell empty, records the error and a back-off deadline,
//! and the next request after the deadline tries again, so a transient failure (a model file
//! still being written) heals itself and a permanent one costs one cheap error per request
//! instead of a crash loop.
//!
//! Idle unload (`OCULAR_MODEL_IDLE_UNLOAD_S`, off by default, as immich's machine-learning
//! service offers): a model no request has used for that long, and that no request holds right
//! now, is dropped and its memory returned; the next request loads it again through the same
//! single flight ([`Registry::unload_idle`]).
//!
//! Building a registry only reads `manifest.json` files; ONNX Runtime and model files are
//! touched when a slot loads. Commands that never build a registry never load anything.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ocular_core::manifest::Precision;
use ocular_core::{Manifest, ModelKind};
use parking_lot::Mutex;
use serde::Serialize;

use crate::classifier::Classifier;
use crate::clip::{ClipImageEncoder, ClipTextEncoder};
pub use crate::contract::{LoadContext, Loadable};
use crate::error::ModelError;
use crate::fixture::FixtureModel;
use crate::image_classifier::ImageClassifier;
use crate::load_gate::LoadGate;
use crate::runtime::OrtRuntime;
use crate::self_check;
use crate::session::SessionOptions;
use crate::skin::SkinModel;
use crate::text_encoder::TextEncoder;

/// Where a model is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    NotLoaded,
    Loading,
    Ready,
    Failed,
    /// Was ready, unloaded after being idle; loads again on the next request.
    Unloaded,
}

/// What `/health?verbose=1` reports per model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelStatus {
    pub name: String,
    pub version: String,
    pub kind: &'static str,
    pub state: ModelState,
    /// Bytes of the model's weight files (what its sessions keep resident).
    pub bytes: u64,
    pub load_ms: Option<u64>,
    pub error: Option<String>,
    pub loads: usize,
    /// Times it was unloaded for being idle.
    pub unloads: usize,
    /// Times a replaced model was loaded and swapped in (`crate::reload`).
    pub reloads: usize,
    /// Why the last reload failed (the model loaded before it keeps serving); cleared by the
    /// next reload that succeeds.
    pub reload_error: Option<String>,
}

/// Process-wide loading settings shared by every slot.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub models_dir: PathBuf,
    pub ort_library: Option<PathBuf>,
    pub session: SessionOptions,
    /// Model folder names to enable; `None` enables every model found.
    pub enabled: Option<Vec<String>>,
}

/// Which graph the skin and image roles load (the server's `--skin-precision` and
/// `--image-precision`: `fp32` or `int8`). Both default to fp32, by measurement: with ONNX
/// Runtime's weight pre-packing off (our memory setting, `session.rs`) the int8 graphs run
/// *slower* than the float ones (EfficientNet-Lite0 8.2 vs 5.9 ms, sklesion 66 vs 49 ms; with
/// pre-packing 4.5 and 38.7 ms — docs/BENCHMARKS.md), and they cost accuracy (image features:
/// median cosine 0.993 with fp32; skin: one top class in eighteen changes). A precision whose
/// graph is not installed falls back to fp32 with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precisions {
    pub skin: Precision,
    pub image: Precision,
}

impl Default for Precisions {
    fn default() -> Self {
        Self { skin: Precision::Fp32, image: Precision::Fp32 }
    }
}

/// An int8 graph that did not pass its self-check on this CPU (or could not run it): the
/// float graph serves instead. Reported in the log and in `/health?verbose=1`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PrecisionFallback {
    pub model: String,
    pub requested: &'static str,
    pub serving: &'static str,
    pub reason: String,
}

/// Self-check verdicts by graph path: discovery may run twice per process
/// (`ocular_server::search_models::leave_out_unused`), the check once.
static VERDICTS: std::sync::LazyLock<Mutex<std::collections::HashMap<PathBuf, Result<self_check::Verdict, String>>>> =
    std::sync::LazyLock::new(Default::default);

fn verdict(
    dir: &Path,
    view: &Manifest,
    check: &ocular_core::manifest::SelfCheck,
    options: &RegistryOptions,
) -> Result<self_check::Verdict, String> {
    let key = dir.join(&view.onnx);
    if let Some(v) = VERDICTS.lock().get(&key) {
        return v.clone();
    }
    let v = OrtRuntime::get_or_init(options.ort_library.as_deref(), &options.models_dir)
        .map_err(|e| error_chain(&e))
        .and_then(|rt| self_check::run(rt, dir, view, check, options.session).map_err(|e| error_chain(&e)));
    crate::session::release_free_memory();
    VERDICTS.lock().insert(key, v.clone());
    v
}

/// Whether ONNX Runtime's u8 × s8 kernels accumulate exactly here (AVX-512 VNNI or AVX-VNNI).
fn cpu_has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni") || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The manifest at `precision`: the variant's view when it is installed and passes its
/// self-check on this CPU, else the float one (with a warning, and a [`PrecisionFallback`]
/// when the variant exists but failed).
pub(crate) fn at_precision(
    dir: &Path,
    manifest: Manifest,
    precision: Precision,
    options: &RegistryOptions,
    fallbacks: &mut Vec<PrecisionFallback>,
    warnings: &mut Vec<String>,
) -> Manifest {
    let Some(view) = manifest.at_precision(precision) else {
        tracing::warn!(
            model.name = %manifest.name,
            precision = precision.as_str(),
            "graph not installed (run `ocular models fetch`); using fp32"
        );
        return manifest;
    };
    if precision == Precision::Fp32 {
        return view;
    }
    let Some(variant) = manifest.variants().into_iter().find(|v| v.precision == precision) else { return view };
    // The VNNI graph computes the same integers as the portable one, faster, where the CPU
    // accumulates u8 × s8 products in int32; elsewhere only the portable one is exact.
    let Some(check) = &variant.self_check else {
        let reason =
            "the manifest stores no self-check for it (installed by an older `ocular models fetch`; fetch again)";
        return fall_back(manifest, precision, reason.to_string(), fallbacks);
    };
    let mut candidates = Vec::new();
    if let Some(vnni) = variant.vnni_onnx.as_ref().filter(|f| cpu_has_vnni() && dir.join(f).is_file()) {
        candidates.push(Manifest { onnx: vnni.clone(), ..view.clone() });
    }
    candidates.push(view);
    let mut reasons = Vec::new();
    for candidate in candidates {
        match verdict(dir, &candidate, check, options) {
            Ok(v) if v.passed => {
                // Exact here, but is it accurate enough? `ocular models fetch` gated it on
                // held-out images; serving one that failed is the operator's choice, said aloud.
                let gate = &variant.accuracy["gate"];
                if gate["passed"] == serde_json::Value::Bool(false) {
                    let warning = format!(
                        "{} int8 failed its accuracy gate at install ({}; measured {}): served because it was configured",
                        manifest.name, gate["criteria"], gate["measured"]
                    );
                    tracing::warn!(model.name = %manifest.name, "{warning}");
                    warnings.push(warning);
                }
                tracing::info!(
                    model.name = %manifest.name,
                    model.onnx = %candidate.onnx,
                    result = %v.describe(),
                    "int8 self-check passed"
                );
                return candidate;
            }
            Ok(v) => reasons.push(format!(
                "{}: outputs on this CPU out of tolerance ({}; allowed: min cosine {}, max |dp| {}, no top-class change)",
                candidate.onnx,
                v.describe(),
                check.min_cosine,
                check.max_abs_diff
            )),
            Err(e) => reasons.push(format!("{}: the self-check could not run: {e}", candidate.onnx)),
        }
    }
    fall_back(manifest, precision, reasons.join("; "), fallbacks)
}

/// Serves the float graph instead of `precision`'s, saying why in the log and in `fallbacks`.
fn fall_back(
    manifest: Manifest,
    precision: Precision,
    reason: String,
    fallbacks: &mut Vec<PrecisionFallback>,
) -> Manifest {
    tracing::warn!(
        model.name = %manifest.name,
        requested = precision.as_str(),
        reason = %reason,
        "int8 graph not used; serving fp32"
    );
    fallbacks.push(PrecisionFallback {
        model: manifest.name.clone(),
        requested: precision.as_str(),
        serving: Precision::Fp32.as_str(),
        reason,
    });
    manifest
}

#[derive(Debug, Default)]
pub(crate) struct SlotStatus {
    pub(crate) state: Option<ModelState>,
    pub(crate) load_ms: Option<u64>,
    pub(crate) error: Option<String>,
    pub(crate) failures: u32,
    pub(crate) next_retry: Option<Instant>,
    pub(crate) reload_error: Option<String>,
}

/// One model: its manifest, its single-flight cell and its status.
pub struct Slot<T> {
    dir: PathBuf,
    /// Swapped together with `current` by a reload (`crate::reload`); lock `current` first.
    pub(crate) manifest: Mutex<Arc<Manifest>>,
    /// The precision discovery chose, applied again to a reloaded manifest.
    pub(crate) precision: Precision,
    pub(crate) options: Arc<RegistryOptions>,
    pub(crate) current: Mutex<Option<Arc<T>>>,
    pub(crate) loading: tokio::sync::Mutex<()>,
    pub(crate) status: Mutex<SlotStatus>,
    loads: AtomicUsize,
    unloads: AtomicUsize,
    pub(crate) reloads: AtomicUsize,
    /// When a request last got the model, in ms since [`epoch`].
    last_used_ms: AtomicU64,
    /// The registry's gate every load passes (see `load_gate`); none for a slot on its own.
    pub(crate) gate: Mutex<Option<Arc<LoadGate>>>,
}

/// The process's reference instant for idle times.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Back-off after the n-th consecutive failure: 1 s, 2 s, 4 s ... capped at one minute.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

impl<T: Loadable> Slot<T> {
    pub fn new(dir: PathBuf, manifest: Manifest, options: Arc<RegistryOptions>) -> Self {
        Self {
            dir,
            manifest: Mutex::new(Arc::new(manifest)),
            precision: Precision::Fp32,
            options,
            current: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            status: Mutex::new(SlotStatus::default()),
            loads: AtomicUsize::new(0),
            unloads: AtomicUsize::new(0),
            reloads: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(now_ms()),
            gate: Mutex::new(None),
        }
    }

    /// The manifest of the model served now (a reload may replace it: hold the `Arc`, not a
    /// borrow, across awaits).
    pub fn manifest(&self) -> Arc<Manifest> {
        self.manifest.lock().clone()
    }

    /// The model's name: its folder's, the same across reloads.
    pub fn name(&self) -> String {
        self.manifest.lock().name.clone()
    }

    /// The model's folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The loaded model if it is ready; never starts a load.
    pub fn loaded(&self) -> Option<Arc<T>> {
        self.current.lock().clone()
    }

    fn used(&self, m: Arc<T>) -> Arc<T> {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
        m
    }

    /// The model, loading it first if needed (single-flight, with back-off after failures).
    pub async fn get(&self) -> Result<Arc<T>, ModelError> {
        if let Some(m) = self.loaded() {
            return Ok(self.used(m));
        }
        if let Some(err) = self.backing_off() {
            return Err(err);
        }
        let _flight = self.loading.lock().await;
        // Loaded by the flight we waited behind, or failed there and backing off now.
        if let Some(m) = self.loaded() {
            return Ok(self.used(m));
        }
        if let Some(err) = self.backing_off() {
            return Err(err);
        }
        // Another model may be loading: wait for the turn, then reserve this load's memory.
        let gate = self.gate.lock().clone();
        let _turn = match gate {
            Some(g) => Some(g.enter(&self.name(), self.load_cost()).await?),
            None => None,
        };
        let m = self.load_now().await?;
        *self.current.lock() = Some(m.clone());
        Ok(self.used(m))
    }

    /// Drops the model if no request has used it for `idle` and none holds it now (nor is one
    /// loading it). True when it was unloaded.
    pub fn unload_if_idle(&self, idle: Duration) -> bool {
        let since = now_ms().saturating_sub(self.last_used_ms.load(Ordering::Relaxed));
        if since < idle.as_millis() as u64 {
            return false;
        }
        let Ok(_flight) = self.loading.try_lock() else { return false };
        let mut current = self.current.lock();
        // Held by a request (its Arc is out there): the memory would not be freed anyway.
        if current.as_ref().is_none_or(|m| Arc::strong_count(m) != 1) {
            return false;
        }
        *current = None;
        self.unloads.fetch_add(1, Ordering::SeqCst);
        self.status.lock().state = Some(ModelState::Unloaded);
        tracing::info!(model.name = %self.name(), idle_s = since / 1000, "model unloaded after being idle");
        true
    }

    /// The memory a load of this model reserves ([`crate::load_gate::load_cost`]) for the
    /// weights one load reads: every file but the graphs, plus the largest graph. The folder
    /// holds one graph per precision (fp32, int8, int8 for VNNI) and a load opens one of them;
    /// counting all three made sklesion's load cost more than a 512 MiB cgroup's whole
    /// budget, so it never preloaded there.
    pub fn load_cost(&self) -> u64 {
        load_cost_of(&self.manifest())
    }

    fn backing_off(&self) -> Option<ModelError> {
        let st = self.status.lock();
        let next = st.next_retry?;
        let now = Instant::now();
        (now < next).then(|| ModelError::LoadFailed {
            model: self.name(),
            message: st.error.clone().unwrap_or_default(),
            retry_in_ms: (next - now).as_millis() as u64,
        })
    }

    async fn load_now(&self) -> Result<Arc<T>, ModelError> {
        self.status.lock().state = Some(ModelState::Loading);
        self.loads.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let result = self.load_manifest(self.manifest()).await;
        let elapsed = started.elapsed().as_millis() as u64;
        let mut st = self.status.lock();
        match &result {
            Ok(_) => {
                let reload_error = st.reload_error.take();
                *st = SlotStatus {
                    state: Some(ModelState::Ready),
                    load_ms: Some(elapsed),
                    reload_error,
                    ..Default::default()
                };
                tracing::info!(model.name = %self.name(), load_ms = elapsed, "model ready");
            }
            Err(e) => {
                st.state = Some(ModelState::Failed);
                st.failures += 1;
                st.error = Some(error_chain(e));
                st.next_retry = Some(Instant::now() + backoff(st.failures));
                tracing::error!(model.name = %self.name(), error = %error_chain(e), "model failed to load");
            }
        }
        result
    }

    /// Loads `manifest`'s model from this slot's folder, warms it up, and returns it; touches
    /// neither the cell nor the status (the lazy load and the reload decide what to do with it).
    pub(crate) async fn load_manifest(&self, manifest: Arc<Manifest>) -> Result<Arc<T>, ModelError> {
        let (dir, options) = (self.dir.clone(), self.options.clone());
        // Loading parses hundreds of MB and runs a warm-up inference: keep it off the runtime.
        tokio::task::spawn_blocking(move || {
            let runtime = OrtRuntime::get_or_init(options.ort_library.as_deref(), &options.models_dir)?;
            let ctx = LoadContext { dir: &dir, manifest: &manifest, runtime, session: options.session };
            let model = T::load(&ctx)?;
            model.warm_up()?;
            Ok::<_, ModelError>(Arc::new(model))
        })
        .await
        .map_err(ModelError::Join)
        .and_then(|r| r)
    }
}

/// The memory a load of `manifest`'s model reserves (see [`Slot::load_cost`]).
pub(crate) fn load_cost_of(manifest: &Manifest) -> u64 {
    let is_graph = |f: &&ocular_core::manifest::FileEntry| f.path.ends_with(".onnx");
    let others: u64 = manifest.files.iter().filter(|f| !is_graph(f)).map(|f| f.bytes).sum();
    let graph = manifest.files.iter().filter(is_graph).map(|f| f.bytes).max().unwrap_or(0);
    crate::load_gate::load_cost(others + graph)
}

/// An error with its sources, for status reports that outlive the error value.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

/// Object-safe view of a slot for status listing and preloading.
pub trait AnySlot: Send + Sync {
    fn status(&self) -> ModelStatus;
    fn unload_if_idle(&self, idle: Duration) -> bool;
    fn preload(&self) -> Pin<Box<dyn Future<Output = Result<(), ModelError>> + Send + '_>>;
    /// Makes the slot's loads pass `gate`.
    fn join_gate(&self, gate: Arc<LoadGate>);
}

impl<T: Loadable> AnySlot for Slot<T> {
    fn status(&self) -> ModelStatus {
        let manifest = self.manifest();
        let st = self.status.lock();
        ModelStatus {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            kind: manifest.kind.as_str(),
            state: st.state.unwrap_or(ModelState::NotLoaded),
            bytes: manifest.files.iter().map(|f| f.bytes).sum(),
            load_ms: st.load_ms,
            error: st.error.clone(),
            loads: self.loads.load(Ordering::SeqCst),
            unloads: self.unloads.load(Ordering::SeqCst),
            reloads: self.reloads.load(Ordering::SeqCst),
            reload_error: st.reload_error.clone(),
        }
    }

    fn preload(&self) -> Pin<Box<dyn Future<Output = Result<(), ModelError>> + Send + '_>> {
        Box::pin(async move { self.get().await.map(|_| ()) })
    }

    fn unload_if_idle(&self, idle: Duration) -> bool {
        Slot::unload_if_idle(self, idle)
    }

    fn join_gate(&self, gate: Arc<LoadGate>) {
        *self.gate.lock() = Some(gate);
    }
}

/// All configured models, by role.
#[derive(Default)]
pub struct Registry {
    /// Grows when a reload finds a newly imported classifier (`crate::reload`).
    slots: parking_lot::RwLock<Vec<Arc<dyn AnySlot>>>,
    pub fixture: Option<Arc<Slot<FixtureModel>>>,
    pub skin: Option<Arc<Slot<SkinModel>>>,
    pub image: Option<Arc<Slot<ImageClassifier>>>,
    pub text: Option<Arc<Slot<TextEncoder>>>,
    /// CLIP towers, each loadable alone (image-only search needs no text tower).
    pub clip_image: Option<Arc<Slot<ClipImageEncoder>>>,
    pub clip_text: Option<Arc<Slot<ClipTextEncoder>>>,
    /// Classifiers imported with `ocular models import`, by folder order, then in the order a
    /// reload found them; served by name.
    classifiers: parking_lot::RwLock<Vec<Arc<Slot<Classifier>>>>,
    /// Quantised graphs configured but not served on this CPU (see [`PrecisionFallback`]).
    pub fallbacks: Vec<PrecisionFallback>,
    /// Quantised graphs served although they failed their accuracy gate at install.
    pub warnings: Vec<String>,
    /// One load at a time, each inside the memory budget (see `load_gate`).
    pub(crate) gate: Arc<LoadGate>,
    /// One reload at a time (an HTTP request and a SIGHUP may ask together).
    pub(crate) reloading: tokio::sync::Mutex<()>,
    /// Where discovery read: a reload reads there again.
    pub(crate) options: Option<Arc<RegistryOptions>>,
}

impl Registry {
    /// Reads every `*/manifest.json` under the models directory. Loads nothing (the default
    /// [`Precisions`] are fp32, so no self-check runs either).
    pub fn discover(options: RegistryOptions) -> Result<Self, ModelError> {
        Self::discover_with(options, Precisions::default())
    }

    /// [`Registry::discover`] with explicit precisions. An int8 precision runs that graph's
    /// self-check once per process (a short session of its own, `crate::self_check`) and
    /// falls back to fp32 when it fails: the slot, and the model id its vectors carry, are
    /// the float graph's from the start, so a catalog never mixes the two.
    pub fn discover_with(options: RegistryOptions, precisions: Precisions) -> Result<Self, ModelError> {
        let options = Arc::new(options);
        let mut registry = Registry { options: Some(options.clone()), ..Registry::default() };
        let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&options.models_dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(ModelError::File { path: options.models_dir.clone(), source }),
        };
        dirs.sort();
        for dir in dirs {
            if !dir.join(ocular_core::manifest::MANIFEST_FILE).is_file() {
                continue;
            }
            let manifest = Manifest::load(&dir)?;
            if let Some(enabled) = &options.enabled
                && !enabled.iter().any(|n| n == &manifest.name)
            {
                continue;
            }
            let precision = match manifest.kind {
                ModelKind::SkinClassifier => precisions.skin,
                ModelKind::ImageClassifier => precisions.image,
                _ => Precision::Fp32,
            };
            let manifest = match manifest.kind {
                ModelKind::SkinClassifier => at_precision(
                    &dir,
                    manifest,
                    precisions.skin,
                    &options,
                    &mut registry.fallbacks,
                    &mut registry.warnings,
                ),
                ModelKind::ImageClassifier => at_precision(
                    &dir,
                    manifest,
                    precisions.image,
                    &options,
                    &mut registry.fallbacks,
                    &mut registry.warnings,
                ),
                _ => manifest,
            };
            registry.add(dir, manifest, &options, precision);
        }
        for slot in registry.slots.read().iter() {
            slot.join_gate(registry.gate.clone());
        }
        Ok(registry)
    }

    /// Makes every model load reserve its memory in `budget` first (the server passes its
    /// request budget). Loads run one at a time either way.
    pub fn limit_loads(&self, budget: crate::budget::MemoryBudget) {
        self.gate.set_budget(budget);
    }

    fn add(&mut self, dir: PathBuf, manifest: Manifest, options: &Arc<RegistryOptions>, precision: Precision) {
        let name = manifest.name.clone();
        let slots = self.slots.get_mut();
        let slot = (dir, options, precision);
        let duplicate = match manifest.kind {
            ModelKind::Fixture => install(&mut self.fixture, slots, new_slot(slot, manifest)),
            ModelKind::SkinClassifier => install(&mut self.skin, slots, new_slot(slot, manifest)),
            ModelKind::ImageClassifier => install(&mut self.image, slots, new_slot(slot, manifest)),
            ModelKind::TextEncoder => install(&mut self.text, slots, new_slot(slot, manifest)),
            ModelKind::ClipImage => install(&mut self.clip_image, slots, new_slot(slot, manifest)),
            ModelKind::ClipText => install(&mut self.clip_text, slots, new_slot(slot, manifest)),
            ModelKind::Imported => {
                let slot = Arc::new(new_slot(slot, manifest));
                slots.push(slot.clone());
                self.classifiers.get_mut().push(slot);
                false
            }
        };
        if duplicate {
            tracing::warn!(model.name = %name, "another model of the same kind is already configured; skipped");
        }
    }

    /// The imported classifier named `name`.
    pub fn classifier(&self, name: &str) -> Option<Arc<Slot<Classifier>>> {
        self.classifiers.read().iter().find(|s| s.name() == name).cloned()
    }

    /// Every imported classifier.
    pub fn classifiers(&self) -> Vec<Arc<Slot<Classifier>>> {
        self.classifiers.read().clone()
    }

    /// Adds a classifier a reload found (`crate::reload`).
    pub(crate) fn add_classifier(&self, slot: Arc<Slot<Classifier>>) {
        slot.join_gate(self.gate.clone());
        self.slots.write().push(slot.clone());
        self.classifiers.write().push(slot);
    }

    /// Every slot, for status listing and preloading (a snapshot: a reload may add one).
    fn all(&self) -> Vec<Arc<dyn AnySlot>> {
        self.slots.read().clone()
    }

    /// Status of every configured model.
    pub fn statuses(&self) -> Vec<ModelStatus> {
        self.all().iter().map(|s| s.status()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.read().is_empty()
    }

    /// True when every configured model is loaded.
    pub fn all_ready(&self) -> bool {
        // An idle-unloaded model was ready and loads on demand: readiness does not flap.
        self.all().iter().all(|s| matches!(s.status().state, ModelState::Ready | ModelState::Unloaded))
    }

    /// Unloads every model idle for `idle` (see [`Slot::unload_if_idle`]) and returns the
    /// freed heap to the operating system; returns the names unloaded.
    pub fn unload_idle(&self, idle: Duration) -> Vec<String> {
        let names: Vec<String> =
            self.all().iter().filter(|s| s.unload_if_idle(idle)).map(|s| s.status().name).collect();
        if !names.is_empty() {
            crate::session::release_free_memory();
        }
        names
    }

    /// Loads every model, one after the other; returns the errors (the process keeps running).
    ///
    /// Why not concurrently: a load holds the graph file, ONNX Runtime's parsed copy and its
    /// optimiser's scratch at once, and that transient peak is freed (`malloc_trim`) only when
    /// the load ends. Loading the three default models together peaked at 474–488 MiB, which
    /// killed some starts inside a 512 MiB cgroup before the server was ready; one at a time the
    /// peak is the resident set plus the largest single load, for ~1 s more start-up.
    pub async fn preload_all(&self) -> Vec<(String, ModelError)> {
        let mut errors = Vec::new();
        for slot in self.all() {
            if let Err(e) = slot.preload().await {
                errors.push((slot.status().name, e));
            }
        }
        errors
    }
}

/// A slot for `manifest` in `dir`, loading at `precision` (the view discovery chose).
fn new_slot<T: Loadable>(
    (dir, options, precision): (PathBuf, &Arc<RegistryOptions>, Precision),
    manifest: Manifest,
) -> Slot<T> {
    Slot { precision, ..Slot::new(dir, manifest, options.clone()) }
}

/// Puts a slot in its role; returns true when the role was already taken.
fn install<T: Loadable>(role: &mut Option<Arc<Slot<T>>>, all: &mut Vec<Arc<dyn AnySlot>>, slot: Slot<T>) -> bool {
    if role.is_some() {
        return true;
    }
    let slot = Arc::new(slot);
    all.push(slot.clone());
    *role = Some(slot);
    false
}
