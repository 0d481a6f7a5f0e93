//! `--query-prompt`: does embedding a text query the way ConSE embeds its classes ("a photo of
//! a {query}", or the normalised sum of that and the bare query's vector) rank the
//! `image_text` space better than the bare query? Also prints, per photo-only hard query, where
//! its answer stands in each signal's list and after fusion. Measured and not adopted
//! (docs/BENCHMARKS.md, "Relevance (issue 19)").
//!
//! Both variants go through the real search path (`Catalog::text_pool`: the index scans, the
//! full-text ranking, the cosines of keyword-only matches); they differ only in the
//! `image_text` query vector, given by an [`Embedders`] wrapper. Fusion weights are chosen by
//! the same grid on the train split for each variant separately, and the held-out split
//! decides. Nothing here changes what the server does.

use ocular_image::image::RgbImage;
use ocular_models::ModelError;
use ocular_models::clip::ClipError;
use ocular_models::image_classifier::l2_normalize;
use ocular_search::embed::{ImageVectors, LabelScore, QueryVectors, SpaceModel};
use ocular_search::fusion::{Fusion, Weights};
use ocular_search::{Embedders, embed::conse};

use std::time::{Duration, Instant};

use crate::eval::{self, Built, Judgement, TextCase};

/// Which vector a text query searches `image_text` with.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The bare query's MiniLM vector (what the server does).
    Bare,
    /// MiniLM of [`conse::query_prompt`].
    Prompted,
    /// The normalised sum of both.
    Mean,
}

/// The real embedders with one change: which text embeds a query for `image_text`.
struct Variant<'a> {
    inner: &'a dyn Embedders,
    mode: Mode,
}

impl Embedders for Variant<'_> {
    fn spaces(&self) -> &[SpaceModel] {
        self.inner.spaces()
    }
    fn image_input(&self) -> (u32, u32) {
        self.inner.image_input()
    }
    fn embed_images(&self, images: &[&RgbImage]) -> Result<Vec<ImageVectors>, ModelError> {
        self.inner.embed_images(images)
    }
    fn embed_image_query(&self, image: &RgbImage) -> Result<Vec<f32>, ModelError> {
        self.inner.embed_image_query(image)
    }
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.inner.embed_texts(texts)
    }
    fn embed_query(&self, query: &str) -> Result<QueryVectors, ModelError> {
        if self.mode == Mode::Bare {
            return self.inner.embed_query(query);
        }
        let image_query = conse::query_prompt(query);
        let mut v = self.inner.embed_texts(&[query, image_query.as_str()])?;
        let (mut image_text, text) = (v.pop().unwrap_or_default(), v.pop().unwrap_or_default());
        if self.mode == Mode::Mean {
            image_text.iter_mut().zip(&text).for_each(|(a, b)| *a += b);
            l2_normalize(&mut image_text);
        }
        Ok(QueryVectors { text, image_text })
    }
    fn score_labels(&self, image: &[f32], labels: &[&str]) -> Option<Result<Vec<LabelScore>, ClipError>> {
        self.inner.score_labels(image, labels)
    }
}

/// Where the first product graded 2 stands (1-based) in a ranking of store keys, if anywhere.
pub fn first_answer(b: &Built, j: &Judgement, keys: impl Iterator<Item = u64>) -> Option<usize> {
    keys.filter_map(|k| b.ids.get(&k)).position(|id| eval::grade(j, id, &b.concepts[id]) == 2).map(|p| p + 1)
}

/// For each photo-only hard query: where its answer stands in each signal's list and fused,
/// which tells a concept the `image_text` space cannot name (answer not first in
/// `image_text`) from a fusion error (first in `image_text`, not first fused).
fn photo_only_report(label: &str, b: &Built, cases: &[TextCase], judgements: &[Judgement], w: Weights) {
    println!();
    println!("photo-only hard queries, {label}: rank of the first answer (graded 2) per signal");
    println!("| query | image_text rank (cosine; best not graded 2) | text rank | fused rank | top result |");
    println!("|---|---|---|---|---|");
    for c in cases.iter().filter(|c| judgements[c.index].photo_only) {
        let j = &judgements[c.index];
        let rank = |list: &[(u64, f32)]| first_answer(b, j, list.iter().map(|(k, _)| *k));
        let fused = ocular_search::fusion::fuse(&c.pool, &Fusion::Scores(w));
        let fused_rank = first_answer(b, j, fused.iter().map(|f| f.id));
        let answer = c
            .pool
            .image_text
            .iter()
            .find(|(k, _)| b.ids.get(k).is_some_and(|id| eval::grade(j, id, &b.concepts[id]) == 2));
        let other = c
            .pool
            .image_text
            .iter()
            .find(|(k, _)| b.ids.get(k).is_some_and(|id| eval::grade(j, id, &b.concepts[id]) < 2));
        let top = fused
            .first()
            .and_then(|f| b.ids.get(&f.id))
            .map_or("-".to_string(), |id| format!("{id} ({})", b.concepts[id]));
        let show = |r: Option<usize>| r.map_or("-".to_string(), |r| r.to_string());
        println!(
            "| {:?} | {} ({:.3}; {:.3}) | {} | {} | {top} |",
            j.text.as_deref().unwrap_or(""),
            show(rank(&c.pool.image_text)),
            answer.map_or(f32::NAN, |a| a.1),
            other.map_or(f32::NAN, |o| o.1),
            show(rank(&c.pool.text)),
            show(fused_rank),
        );
    }
}

pub fn run(catalogs: &[(&str, &Built)], emb: &dyn Embedders, judgements: &[Judgement]) {
    let mut rows = Vec::new();
    let mut all: Vec<(&str, Vec<Vec<TextCase>>, Weights)> = Vec::new();
    let modes = [
        ("bare query", Mode::Bare),
        ("\"a photo of a {query}\"", Mode::Prompted),
        ("normalised sum of both", Mode::Mean),
    ];
    for (label, mode) in modes {
        let variant = Variant { inner: emb, mode };
        let cases: Vec<Vec<TextCase>> =
            catalogs.iter().map(|(name, b)| eval::text_cases(b, &variant, judgements, name)).collect();
        let w = crate::tune(catalogs, &cases, judgements);
        for ((name, b), cases) in catalogs.iter().zip(&cases) {
            for (split, keep) in [("train", Some(true)), ("held out", Some(false)), ("all", None)] {
                let chosen: Vec<&TextCase> =
                    cases.iter().filter(|c| keep.is_none_or(|t| eval::is_train(judgements, c.index) == t)).collect();
                let s = crate::mean_scores(b, &chosen, judgements, &Fusion::Scores(w));
                rows.push(format!(
                    "| {label} | {}/{}/{}, floor {} | {name} | {split} | {} | {:.3} | {:.3} | {:.3} |",
                    w.text,
                    w.image_text,
                    w.keyword,
                    w.floor,
                    chosen.len(),
                    s.ndcg,
                    s.mrr,
                    s.recall
                ));
            }
        }
        let (first, total, misses) = crate::photo_only_first(catalogs, &cases, judgements, &Fusion::Scores(w));
        rows.push(format!("| {label} | photo-only hard queries answered first: {first}/{total}{misses} |||||||"));
        if let Some(at) = catalogs.iter().position(|(name, _)| *name == "hard") {
            photo_only_report(label, catalogs[at].1, &cases[at], judgements, w);
        }
        all.push((label, cases, w));
    }
    // Every variant under every variant's weights: whether a gain comes from the query vector
    // or from the weights its grid picked.
    println!();
    println!("held-out nDCG@10 of each variant under each variant's train-grid weights (demo / hard)");
    for (label, cases, _) in &all {
        let cells: Vec<String> = all
            .iter()
            .map(|(_, _, w)| {
                let held = |at: usize| {
                    let chosen: Vec<&TextCase> =
                        cases[at].iter().filter(|c| !eval::is_train(judgements, c.index)).collect();
                    crate::mean_scores(catalogs[at].1, &chosen, judgements, &Fusion::Scores(*w)).ndcg
                };
                format!("{}/{}/{} floor {}: {:.3} / {:.3}", w.text, w.image_text, w.keyword, w.floor, held(0), held(1))
            })
            .collect();
        println!("{label}: {}", cells.join("; "));
    }
    embed_speed(emb, judgements);
    println!();
    println!(
        "| image_text query | weights text/image_text/keyword (train grid) | catalog | split | n | nDCG@10 | MRR | recall@10 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

/// What the prompt costs a search: `embed_query` of the hard catalog's text queries, bare (one
/// MiniLM input) and prompted (two in one batch) interleaved, medians.
fn embed_speed(emb: &dyn Embedders, judgements: &[Judgement]) {
    let texts: Vec<&str> =
        judgements.iter().filter(|j| j.catalog == "hard").filter_map(|j| j.text.as_deref()).collect();
    let variants = [Variant { inner: emb, mode: Mode::Bare }, Variant { inner: emb, mode: Mode::Prompted }];
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..20 {
        for q in &texts {
            for v in 0..2 {
                let v = (v + round) % 2;
                let started = Instant::now();
                variants[v].embed_query(q).expect("embed");
                times[v].push(started.elapsed());
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (bare, prompted) = (median(&mut times[0]), median(&mut times[1]));
    println!();
    println!(
        "embed_query p50 over {} calls each, interleaved: bare {bare:.2} ms, with the prompt {prompted:.2} ms ({:.2}x)",
        times[0].len(),
        prompted / bare
    );
}
