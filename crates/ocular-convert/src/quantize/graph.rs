//! Which tensors get QuantizeLinear/DequantizeLinear pairs, and the rewrite that inserts them.
//!
//! Only `Conv` nodes with constant weights are quantised. In both converted CNNs every
//! `MatMul`/`Gemm` belongs to the head after global pooling (sklesion's metadata MLP, the
//! EfficientNet classifier): under 1% of the multiply-adds, and the part that turns features
//! into the probabilities Grad-CAM differentiates analytically (`ocular_core::head`). Keeping
//! it float keeps Grad-CAM exact relative to the quantised model's own feature map.
//!
//! Around each quantised Conv, ONNX Runtime's QDQ optimiser looks for
//! `DQ(x) → Conv(DQ(w), DQ(b)) → Q` and replaces it with `QLinearConv`; a `Relu` or `Clip`
//! between the Conv and its `Q` is dropped when the Q range already clips there. So the pairs
//! go on every Conv input and on every Conv output (after its activation when that is its only
//! consumer). Every consumer of a quantised tensor reads the dequantised value, including the
//! `Identity` that exposes the Grad-CAM feature map: the exposed map is exactly what the head
//! inside the graph sees.

use std::collections::{BTreeSet, HashMap};

use super::params::{self, ActParams};
use crate::onnx::proto::{self, attribute_type, data_type};

/// The activation tensors to calibrate and quantise, in graph order, and the Conv nodes whose
/// weights become int8.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Conv node names, index-aligned with `convs`.
    pub names: Vec<String>,
    pub tensors: Vec<String>,
    pub convs: Vec<usize>,
}

fn consumers(graph: &proto::GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            map.entry(input.as_str()).or_default().push(i);
        }
    }
    map
}

fn initializer<'a>(graph: &'a proto::GraphProto, name: &str) -> Option<&'a proto::TensorProto> {
    graph.initializer.iter().find(|t| t.name == name)
}

/// Plans the rewrite: Conv nodes with float constant weights and the tensors around them.
pub fn plan(graph: &proto::GraphProto) -> Plan {
    plan_keeping_float(graph, &BTreeSet::new())
}

/// [`plan`] without the Conv nodes named in `keep_float` (they and any tensor only they touch
/// stay float: the layers a sensitivity search found the quantised model most hurt by).
pub fn plan_keeping_float(graph: &proto::GraphProto, keep_float: &BTreeSet<String>) -> Plan {
    let users = consumers(graph);
    let outputs: BTreeSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut tensors = Vec::new();
    let mut convs = Vec::new();
    let mut names = Vec::new();
    let mut add = |t: &str, tensors: &mut Vec<String>| {
        // A graph output cannot be renamed; its producer simply stays float.
        if !outputs.contains(t) && seen.insert(t.to_string()) {
            tensors.push(t.to_string());
        }
    };
    for (i, n) in graph.node.iter().enumerate() {
        let weight = n.input.get(1).and_then(|w| initializer(graph, w));
        if n.op_type != "Conv" || weight.is_none_or(|w| w.data_type != data_type::FLOAT || w.dims.len() != 4) {
            continue;
        }
        if outputs.contains(n.input[0].as_str()) || keep_float.contains(&n.name) {
            continue;
        }
        convs.push(i);
        names.push(n.name.clone());
        add(&n.input[0], &mut tensors);
        let out = n.output[0].as_str();
        let after = match users.get(out).map(Vec::as_slice) {
            Some([only]) if matches!(graph.node[*only].op_type.as_str(), "Relu" | "Clip") => {
                &graph.node[*only].output[0]
            }
            _ => out,
        };
        add(after, &mut tensors);
    }
    Plan { names, tensors, convs }
}

fn tensor(name: String, dims: Vec<i64>, data_type: i32, raw_data: Vec<u8>) -> proto::TensorProto {
    proto::TensorProto { dims, data_type, name, raw_data }
}

fn node(op: &str, name: String, inputs: &[&str], output: &str, axis: Option<i64>) -> proto::NodeProto {
    proto::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name,
        op_type: op.to_string(),
        attribute: axis
            .map(|a| proto::AttributeProto {
                name: "axis".into(),
                i: a,
                r#type: attribute_type::INT,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        domain: String::new(),
    }
}

fn f32_data(t: &proto::TensorProto) -> Vec<f32> {
    t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Rewrites `graph` in place: QDQ pairs on the planned tensors with `act` parameters, int8
/// per-channel weights and int32 biases on the planned Convs. Returns how many Convs changed.
pub fn rewrite(
    graph: &mut proto::GraphProto,
    plan: &Plan,
    act: &HashMap<String, ActParams>,
    format: params::WeightFormat,
) -> usize {
    let mut head = Vec::new(); // weight dequantisation, first in the node list
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut pairs: HashMap<String, [proto::NodeProto; 2]> = HashMap::new();
    for t in &plan.tensors {
        let Some(p) = act.get(t) else { continue };
        let (s, z, q, dq) = (format!("{t}_scale"), format!("{t}_zero_point"), format!("{t}_q"), format!("{t}_dq"));
        graph.initializer.push(tensor(s.clone(), vec![], data_type::FLOAT, p.scale.to_le_bytes().to_vec()));
        graph.initializer.push(tensor(z.clone(), vec![], data_type::UINT8, vec![p.zero_point]));
        let qn = node("QuantizeLinear", format!("{t}_QuantizeLinear"), &[t, &s, &z], &q, None);
        let dqn = node("DequantizeLinear", format!("{t}_DequantizeLinear"), &[&q, &s, &z], &dq, None);
        pairs.insert(t.clone(), [qn, dqn]);
        rename.insert(t.clone(), dq);
    }
    let mut converted = 0;
    let mut drop = BTreeSet::new();
    for &i in &plan.convs {
        let n = &graph.node[i];
        let Some(x) = act.get(&n.input[0]) else { continue };
        let Some(w) = initializer(graph, &n.input[1]) else { continue };
        let channels = w.dims[0] as usize;
        let wf = f32_data(w);
        let mut wp = params::weights_per_channel(&wf, channels, format);
        let (wname, wdims) = (w.name.clone(), w.dims.clone());
        let bias = n.input.get(2).filter(|b| !b.is_empty()).and_then(|b| initializer(graph, b)).cloned();
        if let Some(b) = &bias {
            params::fit_bias(&mut wp, &wf, &f32_data(b), x.scale);
        }
        let prefix = n.name.clone();
        let mut new_inputs = vec![n.input[0].clone()];
        let (wq, ws, wz, wdq) = (
            format!("{prefix}_w_q"),
            format!("{prefix}_w_scale"),
            format!("{prefix}_w_zero_point"),
            format!("{prefix}_w_dq"),
        );
        let wtype = if format == params::WeightFormat::U8 { data_type::UINT8 } else { data_type::INT8 };
        graph.initializer.push(tensor(
            wq.clone(),
            wdims,
            wtype,
            wp.quantized.iter().map(|v| format.store(*v)).collect(),
        ));
        graph.initializer.push(tensor(
            ws.clone(),
            vec![channels as i64],
            data_type::FLOAT,
            wp.scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        graph.initializer.push(tensor(wz.clone(), vec![channels as i64], wtype, vec![format.zero_point(); channels]));
        head.push(node("DequantizeLinear", format!("{prefix}_w_DequantizeLinear"), &[&wq, &ws, &wz], &wdq, Some(0)));
        new_inputs.push(wdq);
        drop.insert(wname);
        if let Some(b) = bias {
            let (bq, scales) = params::bias_int32(&f32_data(&b), x.scale, &wp.scales);
            let (bqn, bs, bz, bdq) = (
                format!("{prefix}_b_q"),
                format!("{prefix}_b_scale"),
                format!("{prefix}_b_zero_point"),
                format!("{prefix}_b_dq"),
            );
            let n_b = bq.len() as i64;
            graph.initializer.push(tensor(
                bqn.clone(),
                vec![n_b],
                data_type::INT32,
                bq.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
            graph.initializer.push(tensor(
                bs.clone(),
                vec![n_b],
                data_type::FLOAT,
                scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
            graph.initializer.push(tensor(bz.clone(), vec![n_b], data_type::INT32, vec![0; 4 * n_b as usize]));
            head.push(node(
                "DequantizeLinear",
                format!("{prefix}_b_DequantizeLinear"),
                &[&bqn, &bs, &bz],
                &bdq,
                Some(0),
            ));
            new_inputs.push(bdq);
            drop.insert(b.name.clone());
        }
        graph.node[i].input = new_inputs;
        converted += 1;
    }
    // Float weights nobody reads any more.
    let still_read: BTreeSet<String> = graph.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    graph.initializer.retain(|t| !drop.contains(&t.name) || still_read.contains(&t.name));

    // Consumers read the dequantised value; the Q/DQ pair follows its producer, so the node
    // list stays topologically ordered.
    let mut nodes = head;
    for t in graph.input.iter().map(|i| i.name.clone()) {
        if let Some(pair) = pairs.remove(&t) {
            nodes.extend(pair);
        }
    }
    for mut n in std::mem::take(&mut graph.node) {
        for input in &mut n.input {
            if let Some(dq) = rename.get(input.as_str()) {
                *input = dq.clone();
            }
        }
        let outs = n.output.clone();
        nodes.push(n);
        for o in outs {
            if let Some(pair) = pairs.remove(&o) {
                nodes.extend(pair);
            }
        }
    }
    graph.node = nodes;
    converted
}
