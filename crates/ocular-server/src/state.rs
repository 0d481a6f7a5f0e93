//! Shared application state and the one way handlers run inference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocular_fetch::Fetcher;
use ocular_models::{Admission, Registry};
use ocular_search::Catalog;
use ocular_store::Store;

use crate::config::Config;
use crate::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub admission: Admission,
    pub started: Instant,
    /// The product search service; `None` without an image and a text model.
    pub catalog: Option<Arc<Catalog>>,
    /// The one way the server fetches URLs (SSRF-guarded); `None` if it could not be built.
    pub fetcher: Option<Fetcher>,
    /// Request body bytes held by all requests together (`crate::limits`).
    pub body_budget: crate::limits::BodyBudget,
    /// Analyses answered whose images are still being drawn (`crate::pending`).
    pub renders: crate::pending::PendingRenders,
    /// Catalog imports over HTTP (`crate::imports`).
    pub imports: crate::import_jobs::Imports,
}

impl AppState {
    /// `registry` may be shared (`Arc`), e.g. by tests that load the real models once.
    pub fn new(config: Config, registry: impl Into<Arc<Registry>>, store: Arc<dyn Store>) -> Self {
        let admission =
            Admission::new(config.max_concurrency, config.max_queue, Duration::from_millis(config.queue_timeout_ms))
                .with_memory_budget(crate::memory::budget(config.memory_budget));
        let budget = admission.memory().status();
        tracing::info!(
            memory_budget.limit_bytes = budget.limit_bytes,
            memory_budget.source = ?budget.source,
            "memory budget for admission"
        );
        let registry: Arc<Registry> = registry.into();
        // A lazy model load reserves its memory like a request (issue 16, finding #14).
        registry.limit_loads(admission.memory().clone());
        let fetcher = crate::search::fetcher(&config);
        let catalog = crate::search::catalog(&config, &registry, &store);
        let body_budget = crate::limits::BodyBudget::new(config.max_inflight_body_bytes);
        let imports = crate::import_jobs::Imports::new(&config.data_dir, config.max_import_jobs);
        Self {
            config: Arc::new(config),
            registry,
            store,
            admission,
            started: Instant::now(),
            catalog,
            fetcher,
            body_budget,
            renders: crate::pending::PendingRenders::default(),
            imports,
        }
    }

    /// Runs blocking model work after admission, off the async runtime, reserving the memory
    /// of a text-sized request ([`ocular_models::estimate::text`]). Beyond capacity this fails
    /// at once with 503 + Retry-After instead of queueing without bound.
    pub async fn infer<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        self.infer_reserving(ocular_models::estimate::text(), work).await
    }

    /// [`Self::infer`] for work whose peak extra memory is estimated at `bytes` (an image's,
    /// from [`ocular_models::estimate`]): it waits, within the queue's deadline, until the
    /// memory budget has room, and is refused with 503 `memory_budget_exceeded` otherwise.
    /// The reservation is held until the work ends, also if it panics or the client leaves.
    pub async fn infer_reserving<T, F>(&self, bytes: u64, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        let permit = self.admission.admit_reserving(bytes).await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Runs a blocking storage call off the async runtime.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, ocular_store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(store.as_ref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// Decoding limits for uploaded and fetched images.
    pub fn image_limits(&self) -> ocular_image::Limits {
        ocular_image::Limits { max_bytes: self.config.max_body_bytes, max_pixels: self.config.max_image_pixels }
    }

    /// Ready to serve: storage answers (off the async runtime, within
    /// [`crate::health::STORAGE_TIMEOUT`]) and, in preload mode, every configured model is loaded.
    pub async fn is_ready(&self) -> bool {
        let models_ok = !self.config.preload || self.registry.all_ready();
        let indexes_ok = self.catalog.as_ref().is_none_or(|c| !c.is_loading());
        if !(models_ok && indexes_ok) {
            return false;
        }
        let ping = tokio::time::timeout(crate::health::STORAGE_TIMEOUT, self.db(|s| s.ping())).await;
        matches!(ping, Ok(Ok(())))
    }
}
