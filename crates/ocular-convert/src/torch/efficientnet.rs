//! EfficientNet-Lite0 (Tan & Le 2019, <https://arxiv.org/abs/1905.11946>; the "Lite" variant
//! for edge devices: no squeeze-excite, ReLU6, fixed stem and head) as an ONNX graph, from the
//! lukemelas-style PyTorch state dict.
//!
//! Reference implementation: `efficientnet_lite_pytorch` (ml-illustrated's fork of
//! lukemelas/EfficientNet-PyTorch, `model.py`), whose `Conv2dStaticSamePadding` reproduces
//! TensorFlow's 'SAME' padding for a fixed 224×224 input. `scripts/torch_efficientnet_reference.py`
//! runs it to produce the values the tests compare against.
//!
//! BatchNorm is folded into the preceding convolution (`w·γ/√(σ²+ε)`, `β − μ·γ/√(σ²+ε)`,
//! computed in f64): inference-mode BN is an affine map per channel, so folding is exact up to
//! float rounding and removes a third of the graph's nodes.
//!
//! Graph contract (batch `N` dynamic):
//! - input `pixel_values` `N×3×224×224` float32, NCHW, RGB already normalised `(x − 127) / 128`;
//! - `logits` `N×1000`: the classifier's raw scores (Grad-CAM differentiates these);
//! - `probabilities` `N×1000`: softmax of `logits`, what a person is shown;
//! - `features` `N×1280`: the global-average-pooled feature, NOT normalised (the runtime
//!   L2-normalises it to use as an image embedding);
//! - `feature_map` `N×1280×7×7`: the head activation Grad-CAM weighs, with weights
//!   `fc.weight[c] / 49` for class `c` ([`Converted::head`] describes that layer).

use std::path::Path;

use ocular_core::head::{Blob, HEAD_JSON, HeadOp, HeadSpec};
use ocular_core::{GradcamSpec, ImagePreprocess, Layout, ResizeMode, TensorSpec};

use super::{Converted, StateDict, TorchError, imagenet_labels};
use crate::onnx::{Attr, Dim, GraphBuilder, encode};

const INPUT_SIZE: usize = 224;
const BN_EPS: f64 = 1e-3;
const STEM_CHANNELS: usize = 32;
const HEAD_CHANNELS: usize = 1280;
const CLASSES: usize = 1000;

/// One stage of MBConv blocks: (kernel, stride, expand ratio, in, out, repeats), from
/// `efficientnet_lite_builder.py`. The stride applies to the first repeat only.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

/// Reads the checkpoint and converts it; see the module docs for the graph contract.
pub fn convert_efficientnet_lite0(pth: &Path) -> Result<Converted, TorchError> {
    efficientnet_lite0(&StateDict::load(pth)?)
}

/// TensorFlow 'SAME' padding for one spatial axis: (before, after, output size).
fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2, out)
}

/// A convolution with its BatchNorm folded in.
struct ConvBn<'a> {
    conv: &'a str,
    bn: &'a str,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
}

struct Builder<'a> {
    g: GraphBuilder,
    sd: &'a StateDict,
    zero: String,
    six: String,
}

impl Builder<'_> {
    /// Emits conv (+ folded BN) (+ ReLU6) on a square `size×size` input; returns the value and
    /// the output size.
    fn conv_bn(&mut self, x: &str, size: usize, c: &ConvBn<'_>) -> Result<(String, usize), TorchError> {
        let per_filter_in = if c.depthwise { 1 } else { c.cin };
        let w = self.sd.tensor(&format!("{}.weight", c.conv), &[c.cout, per_filter_in, c.kernel, c.kernel])?;
        let gamma = self.sd.tensor(&format!("{}.weight", c.bn), &[c.cout])?.to_vec();
        let beta = self.sd.tensor(&format!("{}.bias", c.bn), &[c.cout])?.to_vec();
        let mean = self.sd.tensor(&format!("{}.running_mean", c.bn), &[c.cout])?.to_vec();
        let var = self.sd.tensor(&format!("{}.running_var", c.bn), &[c.cout])?.to_vec();

        let mut weight = w.to_vec();
        let per_out = weight.len() / c.cout;
        let mut bias = vec![0f32; c.cout];
        for o in 0..c.cout {
            let scale = f64::from(gamma[o]) / (f64::from(var[o]) + BN_EPS).sqrt();
            for v in &mut weight[o * per_out..(o + 1) * per_out] {
                *v = (f64::from(*v) * scale) as f32;
            }
            bias[o] = (f64::from(beta[o]) - f64::from(mean[o]) * scale) as f32;
        }
        let k = c.kernel as i64;
        let wname = self.g.constant_f32(c.conv, &[c.cout as i64, per_filter_in as i64, k, k], &weight);
        let bname = self.g.constant_f32(&format!("{}.bias", c.conv), &[c.cout as i64], &bias);

        let (before, after, out) = same_padding(size, c.kernel, c.stride);
        let (b, a) = (before as i64, after as i64);
        let mut attrs = vec![
            Attr::Ints("kernel_shape", vec![k, k]),
            Attr::Ints("strides", vec![c.stride as i64; 2]),
            // ONNX order: [top, left, bottom, right]; TF puts the odd pixel after.
            Attr::Ints("pads", vec![b, b, a, a]),
        ];
        if c.depthwise {
            attrs.push(Attr::Int("group", c.cout as i64));
        }
        let mut y = self.g.op("Conv", &[x, &wname, &bname], attrs);
        if c.relu6 {
            let (zero, six) = (self.zero.clone(), self.six.clone());
            y = self.g.op("Clip", &[&y, &zero, &six], vec![]);
        }
        Ok((y, out))
    }

    /// lukemelas `MBConvBlock.forward` without squeeze-excite and drop-connect (eval mode).
    fn mbconv(
        &mut self,
        x: &str,
        size: usize,
        index: usize,
        spec: (usize, usize, usize, usize, usize),
    ) -> Result<(String, usize), TorchError> {
        let (kernel, stride, expand, cin, cout) = spec;
        let p = format!("_blocks.{index}");
        let hidden = cin * expand;
        let mut h = x.to_string();
        // With expand ratio 1 there is no expansion conv and its `_bn0` is absent.
        if expand != 1 {
            let c = ConvBn {
                conv: &format!("{p}._expand_conv"),
                bn: &format!("{p}._bn0"),
                cin,
                cout: hidden,
                kernel: 1,
                stride: 1,
                depthwise: false,
                relu6: true,
            };
            h = self.conv_bn(&h, size, &c)?.0;
        }
        let c = ConvBn {
            conv: &format!("{p}._depthwise_conv"),
            bn: &format!("{p}._bn1"),
            cin: hidden,
            cout: hidden,
            kernel,
            stride,
            depthwise: true,
            relu6: true,
        };
        let (h, out) = self.conv_bn(&h, size, &c)?;
        let c = ConvBn {
            conv: &format!("{p}._project_conv"),
            bn: &format!("{p}._bn2"),
            cin: hidden,
            cout,
            kernel: 1,
            stride: 1,
            depthwise: false,
            relu6: false,
        };
        let (mut h, _) = self.conv_bn(&h, out, &c)?;
        if stride == 1 && cin == cout {
            h = self.g.op("Add", &[&h, x], vec![]);
        }
        Ok((h, out))
    }
}

/// Builds the ONNX graph from an already loaded state dict.
pub fn efficientnet_lite0(sd: &StateDict) -> Result<Converted, TorchError> {
    let mut g = GraphBuilder::new("efficientnet_lite0");
    let batch = Dim::Sym("batch");
    let x = g.input(
        "pixel_values",
        &[batch.clone(), Dim::Fixed(3), Dim::Fixed(INPUT_SIZE as i64), Dim::Fixed(INPUT_SIZE as i64)],
    );
    let zero = g.scalar("relu6_min", 0.0);
    let six = g.scalar("relu6_max", 6.0);
    let mut b = Builder { g, sd, zero, six };

    let stem = ConvBn {
        conv: "_conv_stem",
        bn: "_bn0",
        cin: 3,
        cout: STEM_CHANNELS,
        kernel: 3,
        stride: 2,
        depthwise: false,
        relu6: true,
    };
    let (mut h, mut size) = b.conv_bn(&x, INPUT_SIZE, &stem)?;
    let mut index = 0;
    for (kernel, stride, expand, cin, cout, repeats) in STAGES {
        for r in 0..repeats {
            let (s, i) = if r == 0 { (stride, cin) } else { (1, cout) };
            (h, size) = b.mbconv(&h, size, index, (kernel, s, expand, i, cout))?;
            index += 1;
        }
    }
    let last_stage_out = STAGES[STAGES.len() - 1].4;
    let head = ConvBn {
        conv: "_conv_head",
        bn: "_bn1",
        cin: last_stage_out,
        cout: HEAD_CHANNELS,
        kernel: 1,
        stride: 1,
        depthwise: false,
        relu6: true,
    };
    let (feature_map, size) = b.conv_bn(&h, size, &head)?;

    let fc_w = sd.tensor("_fc.weight", &[CLASSES, HEAD_CHANNELS])?.to_vec();
    let fc_b = sd.tensor("_fc.bias", &[CLASSES])?.to_vec();
    let mut g = b.g;
    let pooled = g.op("GlobalAveragePool", &[&feature_map], vec![]);
    let features = g.op("Flatten", &[&pooled], vec![Attr::Int("axis", 1)]);
    let w = g.constant_f32("_fc.weight", &[CLASSES as i64, HEAD_CHANNELS as i64], &fc_w);
    let bias = g.constant_f32("_fc.bias", &[CLASSES as i64], &fc_b);
    let logits = g.op("Gemm", &[&features, &w, &bias], vec![Attr::Int("transB", 1)]);
    let probabilities = g.op("Softmax", &[&logits], vec![Attr::Int("axis", -1)]);

    let (classes, channels, side) = (CLASSES as i64, HEAD_CHANNELS as i64, size as i64);
    g.output("logits", &logits, &[batch.clone(), Dim::Fixed(classes)]);
    g.output("probabilities", &probabilities, &[batch.clone(), Dim::Fixed(classes)]);
    g.output("features", &features, &[batch.clone(), Dim::Fixed(channels)]);
    g.output("feature_map", &feature_map, &[batch, Dim::Fixed(channels), Dim::Fixed(side), Dim::Fixed(side)]);
    let params = g.parameter_count();
    let onnx = encode(&g.finish(&[("ocular.source", "efficientnet-lite0 (lukemelas naming), BatchNorm folded")]));

    let spec = |name: &str, shape: Vec<i64>| TensorSpec { name: name.into(), dtype: "float32".into(), shape };
    let side_in = INPUT_SIZE as i64;
    Ok(Converted {
        onnx,
        inputs: vec![spec("pixel_values", vec![-1, 3, side_in, side_in])],
        outputs: vec![
            spec("logits", vec![-1, classes]),
            spec("probabilities", vec![-1, classes]),
            spec("features", vec![-1, channels]),
            spec("feature_map", vec![-1, channels, side, side]),
        ],
        labels: imagenet_labels(),
        image: Some(ImagePreprocess {
            width: INPUT_SIZE as u32,
            height: INPUT_SIZE as u32,
            resize: ResizeMode::BilinearTf,
            layout: Layout::Nchw,
            scale: 1.0,
            mean: [127.0; 3],
            std: [128.0; 3],
        }),
        text: None,
        gradcam: Some(GradcamSpec {
            feature_output: "feature_map".into(),
            layout: Layout::Nchw,
            layer: "_conv_head".into(),
            head: HEAD_JSON.into(),
        }),
        head: Some(classifier_head(&fc_w, &fc_b)?),
        params,
        extra: serde_json::json!({
            "embedding_dim": HEAD_CHANNELS,
            "embedding_output": "features",
        }),
    })
}

/// The head after pooling is the single `_fc` layer. Its output is the *logit*, not the
/// probability: Grad-CAM differentiates the pre-softmax class score (Selvaraju et al. 2017, §3),
/// which makes the channel weights exactly `fc.weight[c] / (7·7)`.
fn classifier_head(weight: &[f32], bias: &[f32]) -> Result<HeadSpec, TorchError> {
    // HeadOp::Dense wants the kernel as (inputs, units); torch stores (units, inputs).
    let mut data = vec![0f32; HEAD_CHANNELS * CLASSES];
    for c in 0..CLASSES {
        for k in 0..HEAD_CHANNELS {
            data[k * CLASSES + c] = weight[c * HEAD_CHANNELS + k];
        }
    }
    data.extend_from_slice(bias);
    let dense = HeadOp::Dense {
        layer: "_fc".into(),
        input: "features".into(),
        output: "logits".into(),
        units: CLASSES,
        kernel: Blob { offset: 0, len: HEAD_CHANNELS * CLASSES },
        bias: Some(Blob { offset: HEAD_CHANNELS * CLASSES * 4, len: CLASSES }),
    };
    let head = HeadSpec::new("features".into(), HEAD_CHANNELS, vec![], vec![dense], "logits".into(), CLASSES, data)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // Stride 1: k//2 on each side.
        assert_eq!(same_padding(56, 5, 1), (2, 2, 56));
        // Stride 2 on even inputs: (k-2)//2 before, the rest after.
        assert_eq!(same_padding(224, 3, 2), (0, 1, 112));
        assert_eq!(same_padding(56, 5, 2), (1, 2, 28));
        assert_eq!(same_padding(14, 5, 2), (1, 2, 7));
        // Odd input, as TF computes it: out = ceil(15/2) = 8, total = 7*2+3-15 = 2.
        assert_eq!(same_padding(15, 3, 2), (1, 1, 8));
    }

    #[test]
    fn missing_weights_are_a_clear_error() {
        let err = efficientnet_lite0(&StateDict::default()).unwrap_err();
        assert!(matches!(err, TorchError::MissingTensor { ref name } if name == "_conv_stem.weight"), "{err}");
    }
}
