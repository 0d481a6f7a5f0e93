//! Which models sit behind product search (`--search-models default|clip`), chosen once in the
//! configuration and applied the same way by `ocular serve`, `import`, `search` and `reindex`:
//! they all build their embedder provider here, so a catalog is never written with one model
//! and searched with another.
//!
//! - `default`: EfficientNet-Lite0 + MiniLM, with ConSE mapping photos into the text space;
//! - `clip`: the CLIP towers installed by `ocular models import-clip` / `fetch clip`; photos and
//!   text queries share one space, so text-to-image search needs no ConSE. The text tower is
//!   optional (image-only search, less memory).
//!
//! The models the choice does not use are left out of the registry ([`leave_out_unused`]), so a
//! server never preloads a search model it will not run. Stored vectors carry their model's id,
//! so after a switch the affected spaces answer `409 reindex_required` until `ocular reindex`.

use std::sync::Arc;

use ocular_models::{ModelError, Precisions, Registry, RegistryOptions};
use ocular_search::EmbedderProvider;
use ocular_search::embed::clip::{ClipProvider, ClipSetupError};
use ocular_search::embed::default::DefaultProvider;
use serde::Serialize;

/// The `--search-models` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchModels {
    /// EfficientNet-Lite0 + all-MiniLM-L6-v2 (+ ConSE).
    #[default]
    Default,
    /// CLIP's image tower (and text tower, when installed).
    Clip,
}

impl SearchModels {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchModels::Default => "default",
            SearchModels::Clip => "clip",
        }
    }
}

/// The embedder provider of the configured choice. `Ok(None)`: the default models are not
/// installed (search is off, as it always was without them); an error: CLIP was chosen and
/// cannot be used, which start-up reports instead of silently searching with something else.
pub fn provider(
    choice: SearchModels,
    registry: &Registry,
) -> Result<Option<Arc<dyn EmbedderProvider>>, ClipSetupError> {
    Ok(match choice {
        SearchModels::Default => {
            DefaultProvider::from_registry(registry).map(|p| Arc::new(p) as Arc<dyn EmbedderProvider>)
        }
        SearchModels::Clip => Some(Arc::new(ClipProvider::from_registry(registry)?)),
    })
}

/// Discovers the registry, leaving out the search models `choice` does not use (the CLIP
/// towers under `default`; MiniLM under `clip`). EfficientNet-Lite0 stays either way: skin
/// analysis uses it to recognise photos that are not of skin.
pub fn discover(
    options: RegistryOptions,
    choice: SearchModels,
    precisions: Precisions,
) -> Result<Registry, ModelError> {
    let registry = Registry::discover_with(options.clone(), precisions)?;
    leave_out_unused(registry, options, choice, precisions)
}

/// See [`discover`]. Discovery reads only manifests, so doing it twice costs nothing.
pub fn leave_out_unused(
    registry: Registry,
    options: RegistryOptions,
    choice: SearchModels,
    precisions: Precisions,
) -> Result<Registry, ModelError> {
    let unused: Vec<String> = match choice {
        SearchModels::Default => [
            registry.clip_image.as_ref().map(|s| s.manifest().name.clone()),
            registry.clip_text.as_ref().map(|s| s.manifest().name.clone()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        SearchModels::Clip => registry.text.as_ref().map(|s| s.manifest().name.clone()).into_iter().collect(),
    };
    if unused.is_empty() {
        return Ok(registry);
    }
    let keep: Vec<String> = registry.statuses().into_iter().map(|s| s.name).filter(|n| !unused.contains(n)).collect();
    tracing::info!(search.models = choice.as_str(), left_out = ?unused, "search models not used by this configuration");
    Registry::discover_with(RegistryOptions { enabled: Some(keep), ..options }, precisions)
}
