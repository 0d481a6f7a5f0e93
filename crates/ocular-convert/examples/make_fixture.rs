//! Writes the tiny fixture model used by runtime tests: `fixtures/models/fixture/`.
//!
//! `y = softmax(relu(x W1 + b1) W2 + b2)` with 4 inputs, 8 hidden units and 3 outputs, weights
//! from a fixed formula so the file is reproducible byte for byte. Run from the workspace root:
//! `cargo run -p ocular-convert --example make_fixture`.

use std::path::Path;

use ocular_convert::onnx::{Attr, Dim, GraphBuilder, encode};
use ocular_core::{FileEntry, Manifest, ModelKind, TensorSpec};
use sha2::{Digest, Sha256};

fn weights(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.7 + seed).sin() * 0.5).collect()
}

fn main() -> std::io::Result<()> {
    let mut g = GraphBuilder::new("fixture");
    let x = g.input("x", &[Dim::Sym("batch"), Dim::Fixed(4)]);
    let w1 = g.constant_f32("w1", &[4, 8], &weights(32, 0.1));
    let b1 = g.constant_f32("b1", &[8], &weights(8, 1.3));
    let w2 = g.constant_f32("w2", &[8, 3], &weights(24, 2.9));
    let b2 = g.constant_f32("b2", &[3], &weights(3, 4.2));
    let h = g.dense(&x, &w1, Some(&b1));
    let h = g.op("Relu", &[&h], vec![]);
    let logits = g.dense(&h, &w2, Some(&b2));
    let y = g.op("Softmax", &[&logits], vec![Attr::Int("axis", -1)]);
    g.output("y", &y, &[Dim::Sym("batch"), Dim::Fixed(3)]);
    let bytes = encode(&g.finish(&[("ocular.fixture", "true")]));

    let dir = Path::new("fixtures/models/fixture");
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("model.onnx"), &bytes)?;
    let manifest = Manifest {
        name: "fixture".into(),
        version: "1".into(),
        kind: ModelKind::Fixture,
        source: None,
        onnx: "model.onnx".into(),
        files: vec![FileEntry {
            path: "model.onnx".into(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes: bytes.len() as u64,
        }],
        inputs: vec![TensorSpec { name: "x".into(), dtype: "float32".into(), shape: vec![-1, 4] }],
        outputs: vec![TensorSpec { name: "y".into(), dtype: "float32".into(), shape: vec![-1, 3] }],
        image: None,
        text: None,
        labels: vec![],
        gradcam: None,
        extra: serde_json::json!({ "purpose": "runtime tests" }),
    };
    manifest.save(dir)?;
    println!("wrote {} ({} bytes)", dir.display(), bytes.len());
    Ok(())
}
