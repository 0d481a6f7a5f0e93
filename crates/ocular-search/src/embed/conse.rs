//! ConSE: an image mapped into a sentence-embedding space through its class probabilities.
//!
//! Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings" (ICLR
//! 2014, <https://arxiv.org/abs/1312.5650>): embed each class name once, then represent an image
//! by the probability-weighted sum of its top-T classes' embeddings. Here the classes are the
//! 1000 ImageNet classes of EfficientNet-Lite0, each embedded by MiniLM as "a photo of a
//! {class}", and T = 10:
//!
//! `v(image) = L2norm(Σ_{i ∈ top10} p_i · MiniLM("a photo of a {class_i}"))`
//!
//! A MiniLM text query is then directly comparable with `v`. On the skimage photos 7 of 8
//! queries found the right photo first (docs/MODELS.md §3), but it only knows ImageNet's
//! concepts: it is the fallback until a CLIP model is configured, never presented as CLIP.
//!
//! The 1000 prompt embeddings cost seconds of MiniLM time, so they are computed once, kept on
//! disk beside the text model (`super::conse_file`: later processes read them back) and
//! shared within a process by every catalog using the same pair of models.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ocular_models::ModelError;
use ocular_models::image_classifier::l2_normalize;
use ocular_models::text_encoder::TextEncoder;
use parking_lot::Mutex;

/// Classes combined per image (the paper's T).
pub const TOP_T: usize = 10;
/// Prompts per MiniLM call while building the matrix: big enough to amortise the call,
/// small enough that padding to the longest prompt wastes little.
const PROMPT_BATCH: usize = 64;

/// What every class name is embedded inside: "a photo of a {class}".
const PHOTO_OF: &str = "a photo of";

/// The prompt for one class name.
pub fn prompt(class: &str) -> String {
    format!("{PHOTO_OF} a {class}")
}

/// A text query put in the class prompts' frame ("a kitten": "a photo of a kitten", not "a photo
/// of a a kitten"). Only the relevance benchmark's `--query-prompt` A/B uses it: the server
/// embeds the bare query for `image_text`, because the prompted query lost on the hard
/// catalog's held-out queries (docs/BENCHMARKS.md, "Relevance (issue 19)").
pub fn query_prompt(query: &str) -> String {
    let query = query.trim();
    let lower = query.to_lowercase();
    if ["a ", "an ", "the "].iter().any(|a| lower.starts_with(a)) {
        format!("{PHOTO_OF} {query}")
    } else {
        prompt(query)
    }
}

/// The embeddings of every class prompt, row-major (`classes × dim`).
#[derive(Debug)]
pub struct PromptMatrix {
    pub dim: usize,
    pub rows: Vec<f32>,
}

impl PromptMatrix {
    /// Embeds every class name's prompt.
    pub fn build(text: &TextEncoder, classes: &[&str]) -> Result<Self, ModelError> {
        let prompts: Vec<String> = classes.iter().map(|c| prompt(c)).collect();
        Self::build_prompts(text, &prompts)
    }

    /// Embeds `prompts`, one row each.
    pub fn build_prompts(text: &TextEncoder, prompts: &[String]) -> Result<Self, ModelError> {
        let mut rows = Vec::with_capacity(prompts.len() * text.dim);
        for chunk in prompts.chunks(PROMPT_BATCH) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for v in text.embed(&refs)? {
                rows.extend_from_slice(&v);
            }
        }
        Ok(Self { dim: text.dim, rows })
    }

    /// The matrix of `prompts` for the ConSE model `key`: read from `dir` when a stored copy
    /// matches the loaded text model (see `super::conse_file`), else built and stored there.
    /// `dir: None` always builds.
    pub fn load_or_build(
        text: &TextEncoder,
        prompts: &[String],
        key: &str,
        dir: Option<&Path>,
    ) -> Result<Self, ModelError> {
        use super::conse_file;
        let (Some(dir), Some(first)) = (dir, prompts.first()) else {
            return Self::build_prompts(text, prompts);
        };
        let file = conse_file::path(dir, key, text.dim, prompts);
        if let Some(stored) = conse_file::read(&file, prompts.len(), text.dim) {
            let fresh = text.embed(&[first.as_str()])?.pop().unwrap_or_default();
            if conse_file::first_row_matches(&stored, &fresh) {
                tracing::debug!(path = %file.display(), "ConSE class prompts read from disk");
                return Ok(stored);
            }
            tracing::warn!(path = %file.display(), "stored ConSE prompts do not match the loaded text model; rebuilding");
        }
        let built = Self::build_prompts(text, prompts)?;
        if let Err(e) = conse_file::write(&file, &built) {
            // A read-only models directory (a container image) only means rebuilding per process.
            tracing::info!(path = %file.display(), error = %e, "ConSE class prompts not stored; built again at the next start");
        }
        Ok(built)
    }

    pub fn classes(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }

    /// The ConSE vector of one image's class probabilities.
    pub fn combine(&self, probabilities: &[f32]) -> Vec<f32> {
        let n = probabilities.len().min(self.classes());
        let mut idx: Vec<usize> = (0..n).collect();
        // Partial selection is enough: only the top T matter, in any order.
        let t = TOP_T.min(n);
        if t > 0 && t < n {
            idx.select_nth_unstable_by(t - 1, |&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        }
        let mut v = vec![0.0f32; self.dim];
        for &i in &idx[..t] {
            let row = &self.rows[i * self.dim..(i + 1) * self.dim];
            v.iter_mut().zip(row).for_each(|(acc, x)| *acc += probabilities[i] * x);
        }
        l2_normalize(&mut v);
        v
    }
}

type Cache = Mutex<HashMap<String, Arc<PromptMatrix>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// The prompt matrix for the model pair `key`, built by `build` on first use in this process.
///
/// The lock is held while building, so concurrent first callers wait for one build instead
/// of each running a thousand MiniLM inferences; a failed build leaves nothing cached and the
/// next caller tries again.
pub fn shared(
    key: &str,
    build: impl FnOnce() -> Result<PromptMatrix, ModelError>,
) -> Result<Arc<PromptMatrix>, ModelError> {
    let mut cache = cache().lock();
    if let Some(m) = cache.get(key) {
        return Ok(m.clone());
    }
    let started = std::time::Instant::now();
    let matrix = Arc::new(build()?);
    // A thousand prompts through MiniLM leave freed activation buffers in malloc's arenas;
    // give them back now rather than carry them as resident memory for the process's life.
    ocular_models::session::release_free_memory();
    tracing::info!(
        conse.key = key,
        classes = matrix.classes(),
        duration_ms = started.elapsed().as_millis() as u64,
        "ConSE class prompts ready"
    );
    cache.insert(key.to_string(), matrix.clone());
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_the_top_classes_by_probability() {
        // 12 classes in 2-d: class i points at angle i; only the top 10 may contribute.
        let rows: Vec<f32> = (0..12).flat_map(|i| [(i as f32).cos(), (i as f32).sin()]).collect();
        let m = PromptMatrix { dim: 2, rows };
        let mut p = vec![0.0; 12];
        p[3] = 1.0;
        let v = m.combine(&p);
        assert!((v[0] - 3f32.cos()).abs() < 1e-6 && (v[1] - 3f32.sin()).abs() < 1e-6, "{v:?}");

        // Two equal classes: the normalised bisector.
        let mut p = vec![0.0; 12];
        p[0] = 0.5;
        p[2] = 0.5;
        let v = m.combine(&p);
        assert!((v[0] - 1f32.cos()).abs() < 1e-5 && (v[1] - 1f32.sin()).abs() < 1e-5, "{v:?}");

        // The two least probable of twelve are left out.
        let mut p: Vec<f32> = (0..12).map(|i| 1.0 + i as f32).collect();
        p[0] = 0.0;
        p[1] = 0.0;
        let mut expected = [0.0f32; 2];
        for (i, pi) in p.iter().enumerate().skip(2) {
            expected[0] += pi * (i as f32).cos();
            expected[1] += pi * (i as f32).sin();
        }
        let norm = (expected[0].powi(2) + expected[1].powi(2)).sqrt();
        let v = m.combine(&p);
        assert!((v[0] - expected[0] / norm).abs() < 1e-5 && (v[1] - expected[1] / norm).abs() < 1e-5);
    }
}
