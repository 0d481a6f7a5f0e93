//! all-MiniLM-L6-v2 converted from `model.safetensors` and run in ONNX Runtime, compared with
//! sentence-transformers (`scripts/minilm_reference.py` → `fixtures/reference/minilm.json`).
//!
//! Needs the model folder (`OCULAR_MINILM_DIR`, default: where `ocular models fetch` keeps it,
//! `models/.cache/src/minilm`) and the ONNX Runtime library; without them the tests skip with a
//! message, or fail when `OCULAR_REQUIRE_MODELS` is set.

use std::path::Path;
use std::sync::OnceLock;

use ocular_convert::bert::{Converted, convert_minilm};
use ort::session::Session;
use ort::value::Tensor;
use serde_json::Value;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::torch::{cosine, locate, max_abs_diff, ort_env, run, session, workspace};

/// Relative to the workspace: where `ocular models fetch` keeps the source weights.
const DEFAULT_DIR: &str = "models/.cache/src/minilm";

struct Model {
    converted: Converted,
    tokenizer: Tokenizer,
}

fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = locate("OCULAR_MINILM_DIR", DEFAULT_DIR, "all-MiniLM-L6-v2 model folder")?;
            ort_env()?;
            let converted = convert_minilm(&dir).unwrap();
            let tokenizer = tokenizer(&dir, converted.text.as_ref().unwrap().max_tokens);
            Some(Model { converted, tokenizer })
        })
        .as_ref()
}

/// `tokenizer.json` pads and truncates to a fixed 128; sentence-transformers truncates to
/// `max_seq_length` and pads a batch to its longest member, so override both.
fn tokenizer(dir: &Path, max_tokens: usize) -> Tokenizer {
    let mut t = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    t.with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() })).unwrap();
    t.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
    t
}

/// Embeds `texts` as one padded batch.
fn embed(session: &mut Session, tokenizer: &Tokenizer, texts: &[&str]) -> Vec<Vec<f32>> {
    let encodings = tokenizer.encode_batch(texts.to_vec(), true).unwrap();
    let (n, t) = (encodings.len(), encodings[0].len());
    let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
        encodings.iter().flat_map(|e| f(e).iter().map(|&v| i64::from(v))).collect()
    };
    let tensor = |data: Vec<i64>| Tensor::from_array((vec![n as i64, t as i64], data)).unwrap().into_dyn();
    let inputs = vec![
        ("input_ids", tensor(flat(tokenizers::Encoding::get_ids))),
        ("attention_mask", tensor(flat(tokenizers::Encoding::get_attention_mask))),
        ("token_type_ids", tensor(flat(tokenizers::Encoding::get_type_ids))),
    ];
    let out = run(session, inputs);
    let (shape, data) = &out["sentence_embedding"];
    assert_eq!(shape, &[n as i64, 384]);
    data.chunks(384).map(<[f32]>::to_vec).collect()
}

fn reference() -> Vec<(String, Vec<u32>, Vec<f32>)> {
    let path = workspace().join("fixtures/reference/minilm.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids = s["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let emb = s["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            (s["text"].as_str().unwrap().to_string(), ids, emb)
        })
        .collect()
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(m) = model() else { return };
    let mut session = session(&m.converted.onnx, 2);
    for (text, ids, expected) in reference() {
        // Same token ids as the Python tokenizer, so any difference below is the network's.
        let enc = m.tokenizer.encode(text.as_str(), true).unwrap();
        assert_eq!(enc.get_ids(), ids.as_slice(), "tokens of {text:?}");
        let got = &embed(&mut session, &m.tokenizer, &[&text])[0];
        let (cos, diff) = (cosine(got, &expected), max_abs_diff(got, &expected));
        eprintln!(
            "{:4} tokens: cos = {cos:.8}, max |Δ| = {diff:.2e}  {:?}",
            ids.len(),
            text.chars().take(40).collect::<String>()
        );
        assert!(cos >= 0.99999, "{text:?}: cosine {cos}");
        assert!(diff <= 1e-4, "{text:?}: max abs diff {diff}");
        let norm = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not normalised: {norm}");
    }
}

#[test]
fn minilm_padded_batch_equals_single_and_semantics_hold() {
    let Some(m) = model() else { return };
    let mut session = session(&m.converted.onnx, 2);
    let reference = reference();
    // Different lengths (2 to 256 tokens) in one batch: padding must not change any embedding.
    let texts: Vec<&str> = reference.iter().map(|(t, _, _)| t.as_str()).collect();
    let batch = embed(&mut session, &m.tokenizer, &texts);
    for ((text, _, _), b) in reference.iter().zip(&batch) {
        let single = &embed(&mut session, &m.tokenizer, &[text])[0];
        let diff = max_abs_diff(b, single);
        assert!(diff < 1e-5, "{text:?}: batch differs from single by {diff}");
    }

    // docs/MODELS.md: cos("a photo of a cat", "a cute kitten") ≈ 0.58, vs "quarterly tax report" ≈ 0.08.
    let e = embed(&mut session, &m.tokenizer, &["a photo of a cat", "a cute kitten", "quarterly tax report"]);
    let (kitten, tax) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]));
    eprintln!("cat~kitten {kitten:.4}, cat~tax {tax:.4}");
    assert!((kitten - 0.58).abs() < 0.01, "{kitten}");
    assert!((tax - 0.08).abs() < 0.01, "{tax}");
}
