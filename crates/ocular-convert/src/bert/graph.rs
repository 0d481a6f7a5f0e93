//! The BERT encoder, mean pooling and L2 normalisation as ONNX operators (opset 17).
//!
//! Follows `transformers/models/bert/modeling_bert.py` step by step, with two exact rewrites that
//! make inference cheaper: query, key and value projections become one `[H, 3H]` matmul split in
//! three, and the `1/√d_head` attention scale is folded into the query weights and bias.

use safetensors::{Dtype, SafeTensors};

use super::{BertConfig, BertError};
use crate::onnx::proto::data_type;
use crate::onnx::{Attr, Dim, GraphBuilder, encode};

/// Additive mask for padded keys, `torch.finfo(float32).min` as in `get_extended_attention_mask`:
/// added to a finite score it stays finite and its softmax weight is exactly 0.
const MASK_VALUE: f32 = f32::MIN;
/// sentence-transformers clamps the token count (`torch.clamp(min=1e-9)`) and
/// `F.normalize` the norm (`eps=1e-12`).
const COUNT_EPS: f32 = 1e-9;
const NORM_EPS: f32 = 1e-12;

/// Named float32 tensors of `model.safetensors`, with or without the `bert.` prefix that
/// `BertFor*` checkpoints add.
struct Weights<'a> {
    st: &'a SafeTensors<'a>,
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, BertError> {
        let full = format!("{}{name}", self.prefix);
        let t = self.st.tensor(&full).map_err(|_| BertError::MissingTensor { name: full.clone() })?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            let found = format!("{:?} {:?}", t.dtype(), t.shape());
            return Err(BertError::Tensor { name: full, expected: shape.to_vec(), found });
        }
        Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// A `nn.Linear` weight `[out, in]` transposed to the `[in, out]` that `MatMul` wants.
    fn linear_t(&self, name: &str, inputs: usize, outputs: usize) -> Result<Vec<f32>, BertError> {
        let w = self.get(name, &[outputs, inputs])?;
        let mut t = vec![0f32; w.len()];
        for o in 0..outputs {
            for i in 0..inputs {
                t[i * outputs + o] = w[o * inputs + i];
            }
        }
        Ok(t)
    }
}

struct Encoder<'a> {
    g: GraphBuilder,
    w: Weights<'a>,
    c: &'a BertConfig,
}

impl Encoder<'_> {
    fn const_(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.g.constant_f32(name, &dims, data)
    }

    fn layer_norm(&mut self, x: &str, prefix: &str) -> Result<String, BertError> {
        let h = self.c.hidden_size;
        let gamma = self.w.get(&format!("{prefix}.weight"), &[h])?;
        let beta = self.w.get(&format!("{prefix}.bias"), &[h])?;
        let gamma = self.const_(&format!("{prefix}.weight"), &[h], &gamma);
        let beta = self.const_(&format!("{prefix}.bias"), &[h], &beta);
        let eps = self.c.layer_norm_eps as f32;
        Ok(self.g.op(
            "LayerNormalization",
            &[x, &gamma, &beta],
            vec![Attr::Int("axis", -1), Attr::Float("epsilon", eps)],
        ))
    }

    fn dense(&mut self, x: &str, prefix: &str, inputs: usize, outputs: usize) -> Result<String, BertError> {
        let w = self.w.linear_t(&format!("{prefix}.weight"), inputs, outputs)?;
        let b = self.w.get(&format!("{prefix}.bias"), &[outputs])?;
        let w = self.const_(&format!("{prefix}.weight"), &[inputs, outputs], &w);
        let b = self.const_(&format!("{prefix}.bias"), &[outputs], &b);
        Ok(self.g.dense(x, &w, Some(&b)))
    }

    /// word + position + token-type embeddings, then LayerNorm (`BertEmbeddings.forward`).
    fn embeddings(&mut self, ids: &str, types: &str) -> Result<String, BertError> {
        let (h, c) = (self.c.hidden_size, self.c);
        let word = self.w.get("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
        let pos = self.w.get("embeddings.position_embeddings.weight", &[c.max_position_embeddings, h])?;
        let typ = self.w.get("embeddings.token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        let word = self.const_("word_embeddings", &[c.vocab_size, h], &word);
        let pos = self.const_("position_embeddings", &[c.max_position_embeddings, h], &pos);
        let typ = self.const_("token_type_embeddings", &[c.type_vocab_size, h], &typ);

        let x = self.g.op("Gather", &[&word, ids], vec![Attr::Int("axis", 0)]);
        let t = self.g.op("Gather", &[&typ, types], vec![Attr::Int("axis", 0)]);
        let x = self.g.op("Add", &[&x, &t], vec![]);
        // Positions 0..T are the first T rows of the table: slice them and broadcast over N.
        let seq_len = self.g.op("Shape", &[ids], vec![Attr::Int("start", 1), Attr::Int("end", 2)]);
        let zero = self.g.ints("zero", &[0]);
        let p = self.g.op("Slice", &[&pos, &zero, &seq_len, &zero], vec![]);
        let x = self.g.op("Add", &[&x, &p], vec![]);
        self.layer_norm(&x, "embeddings.LayerNorm")
    }

    /// `BertSelfAttention` + `BertSelfOutput`: returns LayerNorm(x + attention(x)).
    fn attention(&mut self, x: &str, mask: &str, l: usize) -> Result<String, BertError> {
        let (h, heads, d) = (self.c.hidden_size, self.c.num_attention_heads, self.c.head_dim());
        let p = format!("encoder.layer.{l}.attention");
        let scale = 1.0 / (d as f64).sqrt();
        let mut wqkv = vec![0f32; h * 3 * h];
        let mut bqkv = Vec::with_capacity(3 * h);
        for (j, part) in ["query", "key", "value"].iter().enumerate() {
            let w = self.w.linear_t(&format!("{p}.self.{part}.weight"), h, h)?;
            let b = self.w.get(&format!("{p}.self.{part}.bias"), &[h])?;
            let s = if j == 0 { scale } else { 1.0 };
            for i in 0..h {
                for o in 0..h {
                    wqkv[i * 3 * h + j * h + o] = (f64::from(w[i * h + o]) * s) as f32;
                }
            }
            bqkv.extend(b.iter().map(|&v| (f64::from(v) * s) as f32));
        }
        let wqkv = self.const_(&format!("{p}.self.qkv.weight"), &[h, 3 * h], &wqkv);
        let bqkv = self.const_(&format!("{p}.self.qkv.bias"), &[3 * h], &bqkv);
        let qkv = self.g.dense(x, &wqkv, Some(&bqkv));
        let split = self.g.ints("qkv_split", &[h as i64; 3]);
        let [q, k, v] = [self.g.fresh("q"), self.g.fresh("k"), self.g.fresh("v")];
        self.g.node("Split", &[&qkv, &split], &[&q, &k, &v], vec![Attr::Int("axis", -1)]);

        // N×T×H -> N×heads×T×d (keys as N×heads×d×T, ready for the score matmul).
        let heads_shape = self.g.ints("heads_shape", &[0, 0, heads as i64, d as i64]);
        let mut split_heads = |t: &str, perm: Vec<i64>| {
            let r = self.g.op("Reshape", &[t, &heads_shape], vec![]);
            self.g.op("Transpose", &[&r], vec![Attr::Ints("perm", perm)])
        };
        let q = split_heads(&q, vec![0, 2, 1, 3]);
        let k = split_heads(&k, vec![0, 2, 3, 1]);
        let v = split_heads(&v, vec![0, 2, 1, 3]);
        let scores = self.g.op("MatMul", &[&q, &k], vec![]);
        let scores = self.g.op("Add", &[&scores, mask], vec![]);
        let probs = self.g.op("Softmax", &[&scores], vec![Attr::Int("axis", -1)]);
        let ctx = self.g.op("MatMul", &[&probs, &v], vec![]);
        let ctx = self.g.op("Transpose", &[&ctx], vec![Attr::Ints("perm", vec![0, 2, 1, 3])]);
        let merged = self.g.ints("merged_shape", &[0, 0, h as i64]);
        let ctx = self.g.op("Reshape", &[&ctx, &merged], vec![]);

        let out = self.dense(&ctx, &format!("{p}.output.dense"), h, h)?;
        let out = self.g.op("Add", &[&out, x], vec![]);
        self.layer_norm(&out, &format!("{p}.output.LayerNorm"))
    }

    /// `BertIntermediate` (exact GELU) + `BertOutput`: LayerNorm(x + W2 gelu(W1 x)).
    fn feed_forward(&mut self, x: &str, l: usize) -> Result<String, BertError> {
        let (h, i) = (self.c.hidden_size, self.c.intermediate_size);
        let p = format!("encoder.layer.{l}");
        let y = self.dense(x, &format!("{p}.intermediate.dense"), h, i)?;
        // gelu(y) = y · 0.5 · (1 + erf(y / √2)), in the operator order ORT's GELU fusion expects.
        let sqrt2 = self.g.scalar("sqrt2", std::f32::consts::SQRT_2);
        let one = self.g.scalar("one", 1.0);
        let half = self.g.scalar("half", 0.5);
        let e = self.g.op("Div", &[&y, &sqrt2], vec![]);
        let e = self.g.op("Erf", &[&e], vec![]);
        let e = self.g.op("Add", &[&e, &one], vec![]);
        let e = self.g.op("Mul", &[&y, &e], vec![]);
        let act = self.g.op("Mul", &[&e, &half], vec![]);
        let out = self.dense(&act, &format!("{p}.output.dense"), i, h)?;
        let out = self.g.op("Add", &[&out, x], vec![]);
        self.layer_norm(&out, &format!("{p}.output.LayerNorm"))
    }
}

/// Builds the graph; returns the `.onnx` bytes and the number of float weights.
pub fn bert_sentence_encoder(config: &BertConfig, weights: &SafeTensors<'_>) -> Result<(Vec<u8>, usize), BertError> {
    let prefix = if weights.tensor("bert.embeddings.word_embeddings.weight").is_ok() { "bert." } else { "" };
    let mut g = GraphBuilder::new("bert_sentence_encoder");
    let dims = [Dim::Sym("batch"), Dim::Sym("sequence")];
    let ids = g.input_typed("input_ids", data_type::INT64, &dims);
    let mask = g.input_typed("attention_mask", data_type::INT64, &dims);
    let types = g.input_typed("token_type_ids", data_type::INT64, &dims);
    let mut e = Encoder { g, w: Weights { st: weights, prefix }, c: config };

    let mask_f = e.g.op("Cast", &[&mask], vec![Attr::Int("to", i64::from(data_type::FLOAT))]);
    // (1 - mask) · MASK_VALUE as N×1×1×T, broadcast over heads and query positions.
    let one = e.g.scalar("one", 1.0);
    let inverted = e.g.op("Sub", &[&one, &mask_f], vec![]);
    let big = e.g.scalar("mask_value", MASK_VALUE);
    let additive = e.g.op("Mul", &[&inverted, &big], vec![]);
    let axes12 = e.g.ints("axes", &[1, 2]);
    let additive = e.g.op("Unsqueeze", &[&additive, &axes12], vec![]);

    let mut x = e.embeddings(&ids, &types)?;
    for l in 0..config.num_hidden_layers {
        x = e.attention(&x, &additive, l)?;
        x = e.feed_forward(&x, l)?;
    }

    // sentence-transformers Pooling (mean over unmasked tokens) + Normalize.
    let mut g = e.g;
    let axis2 = g.ints("axes", &[2]);
    let m = g.op("Unsqueeze", &[&mask_f, &axis2], vec![]);
    let masked = g.op("Mul", &[&x, &m], vec![]);
    let axis1 = g.ints("axes", &[1]);
    let sum = g.op("ReduceSum", &[&masked, &axis1], vec![Attr::Int("keepdims", 0)]);
    let count = g.op("ReduceSum", &[&m, &axis1], vec![Attr::Int("keepdims", 0)]);
    let count_eps = g.scalar("count_eps", COUNT_EPS);
    let count = g.op("Max", &[&count, &count_eps], vec![]);
    let mean = g.op("Div", &[&sum, &count], vec![]);
    let norm = g.op("ReduceL2", &[&mean], vec![Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 1)]);
    let norm_eps = g.scalar("norm_eps", NORM_EPS);
    let norm = g.op("Max", &[&norm, &norm_eps], vec![]);
    let embedding = g.op("Div", &[&mean, &norm], vec![]);
    g.output("sentence_embedding", &embedding, &[Dim::Sym("batch"), Dim::Fixed(config.hidden_size as i64)]);

    let parameters = g.parameter_count();
    let onnx = encode(&g.finish(&[("ocular.source", "sentence-transformers BERT, mean pooling, L2-normalised")]));
    Ok((onnx, parameters))
}
