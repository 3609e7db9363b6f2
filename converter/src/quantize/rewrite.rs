//! The graph rewrites of quantization, on a float32 `ModelProto` as the builders write it:
//!
//! - [`store_weights`]: f16 weights (`Cast`) or int8 weights (`DequantizeLinear`), nothing else;
//! - [`calibration_tensors`] and [`insert_qdq`]: static int8 QDQ — int8 weights, int32 biases,
//!   and a `QuantizeLinear` → `DequantizeLinear` pair on every activation a quantized node reads.
//!
//! # Names
//! A stored weight keeps its official name as the name of the value the layers read: the
//! initializer `W` becomes `W.int8` (or `W.f16`, `W.int32` for a bias) with `W.scale` and
//! `W.zero_point`, read by a node named `W` (`DequantizeLinear`, or `Cast` for f16) whose output
//! is `W`, so no layer changes. An activation `T` gets `T.quant` (`QuantizeLinear`) and
//! `T.dequant` (`DequantizeLinear`) with `T.quant_scale` and `T.quant_zero_point`; the quantized
//! nodes read `T.dequant`, every other reader (a float node, a graph output) still reads `T`.
//!
//! # Which nodes
//! Quantized nodes are those of [`QUANTIZED_OPS`] not named in the exclusions and, unless
//! [`KernelQuant::Full`], not in a kernel path (the kernel MLPs `*.da_conv1.kernel.*` and the
//! depthwise convs whose kernel is computed in the graph). A tensor gets a QDQ pair when it is a
//! float activation (not an initializer) that a quantized node reads as data (Conv and Gemm: the
//! input, and the kernel of a dynamic conv; Add: both; the others: their input). An excluded node
//! keeps its float32 weights and reads float inputs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::calibrate::Range;
use super::options::{KernelQuant, QuantizeOptions};
use super::params::{PerChannel, int32_bias, per_channel_int8, to_f16, uint8_activation};
use crate::error::{ConvertError, Result};
use crate::graph::{Precision, keys};
use crate::onnx::proto::{
    Attr, attr_int, f32_tensor, node, numel, props, tensor, tensor_f32, tensor_i8,
};

/// Op types whose nodes take dequantized inputs in a QDQ graph: the compute ops (Conv, Gemm) and
/// the ops between them that int8 runtimes run on int8 data (onnxruntime: QLinearAdd,
/// QLinearLeakyRelu, QLinearGlobalAveragePool; DepthToSpace and Flatten move data).
pub const QUANTIZED_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "Add",
    "LeakyRelu",
    "GlobalAveragePool",
    "Flatten",
    "DepthToSpace",
];

/// The part of a node name that marks the kernel MLPs of the dynamic depthwise convs
/// (`G.body.0.body.{n}.da_conv1.kernel.{0,1,2,view}`).
pub const KERNEL_MLP_MARK: &str = ".da_conv1.kernel.";

/// What a node is to the quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Reads dequantized activations; its constant weight (if any) is int8.
    Quantized,
    /// Reads float activations; its constant weight is int8 (kernel MLPs with
    /// [`KernelQuant::Weights`]).
    WeightsOnly,
    /// Untouched.
    Float,
}

/// One graph's initializers, producers and consumers.
struct View<'g> {
    g: &'g pb::GraphProto,
    inits: HashMap<&'g str, &'g pb::TensorProto>,
}

impl<'g> View<'g> {
    fn new(g: &'g pb::GraphProto) -> Self {
        Self {
            g,
            inits: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
        }
    }

    fn is_init(&self, name: &str) -> bool {
        self.inits.contains_key(name)
    }

    /// A Conv whose kernel is computed in the graph.
    fn is_dynamic_conv(&self, n: &pb::NodeProto) -> bool {
        n.op_type == "Conv" && n.input.get(1).is_some_and(|w| !self.is_init(w))
    }

    fn in_kernel_path(&self, n: &pb::NodeProto) -> bool {
        n.name.contains(KERNEL_MLP_MARK) || self.is_dynamic_conv(n)
    }

    fn role(&self, n: &pb::NodeProto, exclude: &BTreeSet<&str>, kernels: KernelQuant) -> Role {
        if exclude.contains(n.name.as_str()) || !QUANTIZED_OPS.contains(&n.op_type.as_str()) {
            return Role::Float;
        }
        if !self.in_kernel_path(n) {
            return Role::Quantized;
        }
        match kernels {
            KernelQuant::Full => Role::Quantized,
            KernelQuant::Weights if n.op_type == "Gemm" => Role::WeightsOnly,
            KernelQuant::Weights | KernelQuant::Float => Role::Float,
        }
    }

    /// Input positions of `n` that carry activations (data, not weights or biases).
    fn activation_inputs(&self, n: &pb::NodeProto) -> Vec<usize> {
        let idx: Vec<usize> = match n.op_type.as_str() {
            "Conv" if self.is_dynamic_conv(n) => vec![0, 1],
            "Add" => vec![0, 1],
            _ => vec![0],
        };
        idx.into_iter()
            .filter(|&i| {
                n.input
                    .get(i)
                    .is_some_and(|x| !x.is_empty() && !self.is_init(x))
            })
            .collect()
    }

    /// `(weight initializer, per-channel axis)` of a Conv or Gemm with a constant weight.
    fn weight_of(&self, n: &pb::NodeProto) -> Result<Option<(&'g pb::TensorProto, usize)>> {
        let Some(w) = n.input.get(1).and_then(|w| self.inits.get(w.as_str())) else {
            return Ok(None);
        };
        match n.op_type.as_str() {
            "Conv" => Ok(Some((w, 0))),
            "Gemm" => {
                let trans_b = attr_int(n, "transB").unwrap_or(0);
                if trans_b != 1 || w.dims.len() != 2 {
                    return Err(unsupported(format!(
                        "Gemm `{}` has transB={trans_b} and weight dims {:?}; the quantizer \
                         expects transB=1 with weights [out, in] (per-channel along axis 0)",
                        n.name, w.dims
                    )));
                }
                Ok(Some((w, 0)))
            }
            _ => Ok(None),
        }
    }

    fn bias_of(&self, n: &pb::NodeProto) -> Option<&'g pb::TensorProto> {
        if !matches!(n.op_type.as_str(), "Conv" | "Gemm") {
            return None;
        }
        n.input
            .get(2)
            .and_then(|b| self.inits.get(b.as_str()))
            .copied()
    }

    /// Every initializer name read by a node other than those in `nodes` (so not to be rewritten).
    fn read_elsewhere(&self, nodes: &BTreeSet<usize>) -> BTreeSet<&'g str> {
        self.g
            .node
            .iter()
            .enumerate()
            .filter(|(i, _)| !nodes.contains(i))
            .flat_map(|(_, n)| n.input.iter().map(String::as_str))
            .filter(|x| self.is_init(x))
            .collect()
    }
}

fn unsupported(msg: String) -> ConvertError {
    ConvertError::Graph(format!("cannot quantize this graph: {msg}"))
}

/// New values get names that nothing in the graph uses yet.
struct Names(BTreeSet<String>);

impl Names {
    fn of(g: &pb::GraphProto) -> Self {
        let mut s = BTreeSet::new();
        s.extend(g.initializer.iter().map(|t| t.name.clone()));
        s.extend(g.input.iter().map(|v| v.name.clone()));
        s.extend(g.node.iter().flat_map(|n| n.output.iter().cloned()));
        s.extend(g.node.iter().map(|n| n.name.clone()));
        Self(s)
    }

    fn claim(&mut self, name: String) -> Result<String> {
        if self.0.insert(name.clone()) {
            Ok(name)
        } else {
            Err(unsupported(format!("the name `{name}` is already used")))
        }
    }
}

/// The rewritten graph under construction: constant-reading nodes first, then the original
/// nodes, each followed by the QDQ pair of its output.
struct Out {
    inits: Vec<pb::TensorProto>,
    head: Vec<pb::NodeProto>,
    removed: BTreeSet<String>,
    /// Largest magnitude of an int8 weight ([`QuantizeOptions::weight_max`]).
    weight_max: f32,
}

impl Out {
    fn new(q: &QuantizeOptions) -> Self {
        Self {
            inits: Vec::new(),
            head: Vec::new(),
            removed: BTreeSet::new(),
            weight_max: q.weight_max(),
        }
    }

    /// Replaces the float initializer `t` with int8 per-channel values read through a
    /// `DequantizeLinear` named after it; returns the scales.
    fn int8_weight(&mut self, names: &mut Names, t: &pb::TensorProto) -> Result<Vec<f32>> {
        let data = tensor_f32(t)?;
        let ch = t.dims.first().map_or(1, |&d| d.max(1) as usize);
        let p: PerChannel = per_channel_int8(&data, ch, self.weight_max);
        let q = names.claim(format!("{}.int8", t.name))?;
        let s = names.claim(format!("{}.scale", t.name))?;
        let z = names.claim(format!("{}.zero_point", t.name))?;
        let chd = [ch as i64];
        self.inits.push(tensor(
            &q,
            &t.dims,
            DataType::Int8,
            p.q.iter().map(|v| *v as u8).collect(),
        ));
        self.inits.push(f32_tensor(&s, &chd, &p.scale));
        self.inits
            .push(tensor(&z, &chd, DataType::Int8, vec![0; ch]));
        self.head.push(node(
            "DequantizeLinear",
            &t.name,
            &[&q, &s, &z],
            &[("axis", Attr::Int(0))],
        ));
        self.removed.insert(t.name.clone());
        Ok(p.scale)
    }

    /// Replaces the float bias `t` with int32 values of scale `in_scale · w_scale[c]`; leaves it
    /// float when a value does not fit.
    fn int32_bias(
        &mut self,
        names: &mut Names,
        t: &pb::TensorProto,
        in_scale: f32,
        w_scale: &[f32],
    ) -> Result<()> {
        let data = tensor_f32(t)?;
        if data.len() != w_scale.len() {
            return Err(unsupported(format!(
                "bias `{}` has {} values for {} weight channels",
                t.name,
                data.len(),
                w_scale.len()
            )));
        }
        let Some((q, scale)) = int32_bias(&data, in_scale, w_scale) else {
            return Ok(());
        };
        let qn = names.claim(format!("{}.int32", t.name))?;
        let s = names.claim(format!("{}.scale", t.name))?;
        let z = names.claim(format!("{}.zero_point", t.name))?;
        let chd = [data.len() as i64];
        self.inits.push(tensor(
            &qn,
            &chd,
            DataType::Int32,
            q.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        self.inits.push(f32_tensor(&s, &chd, &scale));
        self.inits
            .push(tensor(&z, &chd, DataType::Int32, vec![0; 4 * data.len()]));
        self.head.push(node(
            "DequantizeLinear",
            &t.name,
            &[&qn, &s, &z],
            &[("axis", Attr::Int(0))],
        ));
        self.removed.insert(t.name.clone());
        Ok(())
    }

    /// Replaces the float initializer `t` with float16 values read through a `Cast` to float32.
    fn f16_weight(&mut self, names: &mut Names, t: &pb::TensorProto) -> Result<()> {
        let data = tensor_f32(t)?;
        let h = to_f16(&data);
        if let Some(i) = h.iter().position(|v| !v.is_finite()) {
            return Err(unsupported(format!(
                "`{}` holds {} (element {i}), beyond float16's range ±65504",
                t.name, data[i]
            )));
        }
        let n = names.claim(format!("{}.f16", t.name))?;
        self.inits.push(tensor(
            &n,
            &t.dims,
            DataType::Float16,
            h.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        self.head.push(node(
            "Cast",
            &t.name,
            &[&n],
            &[("to", Attr::Int(DataType::Float as i64))],
        ));
        self.removed.insert(t.name.clone());
        Ok(())
    }

    /// The graph with the rewritten initializers and `body` after the constant-reading nodes.
    fn finish(self, g: &pb::GraphProto, body: Vec<pb::NodeProto>) -> pb::GraphProto {
        let mut initializer: Vec<pb::TensorProto> = g
            .initializer
            .iter()
            .filter(|t| !self.removed.contains(&t.name))
            .cloned()
            .collect();
        initializer.extend(self.inits);
        let mut node = self.head;
        node.extend(body);
        pb::GraphProto {
            node,
            initializer,
            ..g.clone()
        }
    }
}

fn graph(model: &pb::ModelProto) -> Result<&pb::GraphProto> {
    model
        .graph
        .as_ref()
        .ok_or_else(|| unsupported("the model has no graph".into()))
}

fn is_float(t: &pb::TensorProto) -> bool {
    t.data_type == DataType::Float as i32
}

/// Sets `kdsr.precision` (and appends `extra` metadata entries).
fn with_precision(
    model: &pb::ModelProto,
    g: pb::GraphProto,
    p: Precision,
    extra: &[(String, String)],
) -> pb::ModelProto {
    let mut m = model.clone();
    m.graph = Some(g);
    for e in &mut m.metadata_props {
        if e.key == keys::PRECISION {
            e.value = p.as_str().to_owned();
        }
    }
    m.metadata_props.extend(props(extra));
    m
}

/// Checks that `model` is a float32 graph (no quantization or float16 already).
fn check_float32(g: &pb::GraphProto) -> Result<()> {
    if let Some(n) = g.node.iter().find(|n| {
        matches!(
            n.op_type.as_str(),
            "QuantizeLinear" | "DequantizeLinear" | "Cast" | "QLinearConv"
        )
    }) {
        return Err(unsupported(format!(
            "node `{}` ({}) shows the graph is already reduced-precision; quantize the float32 graph",
            n.name, n.op_type
        )));
    }
    Ok(())
}

/// Rewrites the weights of a float32 graph for `precision` ([`Precision::F16`]: every float
/// initializer; [`Precision::Int8Weights`]: every Conv and Gemm weight, per channel along axis 0,
/// biases stay float32) and sets `kdsr.precision`. Nodes named in `q.exclude` keep their float32
/// initializers; `q.kernels` = [`KernelQuant::Float`] also keeps the kernel MLP weights float32
/// (int8-weights); `q.reduce_range` stores 7-bit weights. [`Precision::F32`] returns the model
/// unchanged; [`Precision::Int8`] is [`insert_qdq`]'s.
pub fn store_weights(
    model: &pb::ModelProto,
    precision: Precision,
    q: &QuantizeOptions,
) -> Result<pb::ModelProto> {
    let (exclude, kernels) = (&q.exclude, q.kernels);
    let g = graph(model)?;
    if precision == Precision::F32 {
        return Ok(model.clone());
    }
    check_float32(g)?;
    let v = View::new(g);
    let ex: BTreeSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut names = Names::of(g);
    let mut out = Out::new(q);
    match precision {
        Precision::F16 => {
            let keep: BTreeSet<usize> = g
                .node
                .iter()
                .enumerate()
                .filter(|(_, n)| !ex.contains(n.name.as_str()))
                .map(|(i, _)| i)
                .collect();
            let elsewhere = v.read_elsewhere(&keep);
            for t in g.initializer.iter().filter(|t| is_float(t)) {
                if !elsewhere.contains(t.name.as_str()) {
                    out.f16_weight(&mut names, t)?;
                }
            }
        }
        Precision::Int8Weights => {
            let mut chosen = BTreeSet::new();
            let mut weights = Vec::new();
            for (i, n) in g.node.iter().enumerate() {
                let float_mlp = kernels == KernelQuant::Float && n.name.contains(KERNEL_MLP_MARK);
                if ex.contains(n.name.as_str()) || float_mlp {
                    continue;
                }
                if let Some((w, _)) = v.weight_of(n)? {
                    chosen.insert(i);
                    weights.push(w);
                }
            }
            let elsewhere = v.read_elsewhere(&chosen);
            let mut done = BTreeSet::new();
            for w in weights {
                if is_float(w) && !elsewhere.contains(w.name.as_str()) && done.insert(&w.name) {
                    out.int8_weight(&mut names, w)?;
                }
            }
        }
        Precision::F32 | Precision::Int8 => {
            return Err(ConvertError::Options(
                "int8 graphs need calibration images: build the float32 graph and quantize it \
                 with export::build (converter export --quantize int8 --calib-data DIR)"
                    .to_owned(),
            ));
        }
    }
    Ok(with_precision(
        model,
        out.finish(g, g.node.clone()),
        precision,
        &[],
    ))
}

/// The activations of `model` that get a QDQ pair with these settings (in graph order: graph
/// inputs first, then node outputs): the tensors calibration must measure.
pub fn calibration_tensors(
    model: &pb::ModelProto,
    exclude: &[String],
    kernels: KernelQuant,
) -> Result<Vec<String>> {
    let g = graph(model)?;
    check_float32(g)?;
    let v = View::new(g);
    let ex: BTreeSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut wanted = BTreeSet::new();
    for n in &g.node {
        if v.role(n, &ex, kernels) == Role::Quantized {
            for i in v.activation_inputs(n) {
                wanted.insert(n.input[i].clone());
            }
        }
    }
    let order = g
        .input
        .iter()
        .map(|i| &i.name)
        .chain(g.node.iter().flat_map(|n| n.output.iter()));
    Ok(order.filter(|t| wanted.contains(*t)).cloned().collect())
}

/// Static int8 QDQ of a float32 graph: per-channel symmetric int8 weights for the quantized Conv
/// and Gemm nodes (and the kernel MLPs with [`KernelQuant::Weights`]), int32 biases
/// (`scale = input scale · weight scale`), and on every tensor of [`calibration_tensors`] a
/// `QuantizeLinear` → `DequantizeLinear` pair with an asymmetric uint8 scale and zero point from
/// its calibrated range in `ranges`. Exclusions, kernel path and weight range from `q`. Sets
/// `kdsr.precision` to `int8` and appends `metadata`.
pub fn insert_qdq(
    model: &pb::ModelProto,
    ranges: &BTreeMap<String, Range>,
    q: &QuantizeOptions,
    metadata: &[(String, String)],
) -> Result<pb::ModelProto> {
    let (exclude, kernels) = (&q.exclude, q.kernels);
    let tensors = calibration_tensors(model, exclude, kernels)?;
    let g = graph(model)?;
    let v = View::new(g);
    let ex: BTreeSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut names = Names::of(g);
    let mut out = Out::new(q);

    let mut act: HashMap<&str, (f32, u8)> = HashMap::new();
    for t in &tensors {
        let r = ranges
            .get(t)
            .ok_or_else(|| ConvertError::Graph(format!("no calibration range for tensor `{t}`")))?;
        act.insert(t.as_str(), uint8_activation(r.min, r.max));
    }

    let roles: Vec<Role> = g.node.iter().map(|n| v.role(n, &ex, kernels)).collect();
    let int8_nodes: BTreeSet<usize> = roles
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != Role::Float)
        .map(|(i, _)| i)
        .collect();
    let elsewhere = v.read_elsewhere(&int8_nodes);
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for (i, n) in g.node.iter().enumerate() {
        if roles[i] == Role::Float {
            continue;
        }
        let Some((w, _)) = v.weight_of(n)? else {
            continue;
        };
        if !is_float(w) || elsewhere.contains(w.name.as_str()) || !done.insert(&w.name) {
            continue;
        }
        let w_scale = out.int8_weight(&mut names, w)?;
        if roles[i] != Role::Quantized {
            continue;
        }
        if let Some(b) = v.bias_of(n) {
            let in_scale = n
                .input
                .first()
                .and_then(|x| act.get(x.as_str()))
                .map(|(s, _)| *s);
            if let Some(s) = in_scale {
                if is_float(b) && !elsewhere.contains(b.name.as_str()) && done.insert(&b.name) {
                    out.int32_bias(&mut names, b, s, &w_scale)?;
                }
            }
        }
    }

    let mut qdq = |t: &str, out: &mut Out| -> Result<Vec<pb::NodeProto>> {
        let (scale, zp) = act[t];
        let s = names.claim(format!("{t}.quant_scale"))?;
        let z = names.claim(format!("{t}.quant_zero_point"))?;
        let q = names.claim(format!("{t}.quant"))?;
        let dq = names.claim(format!("{t}.dequant"))?;
        out.inits.push(f32_tensor(&s, &[], &[scale]));
        out.inits.push(tensor(&z, &[], DataType::Uint8, vec![zp]));
        Ok(vec![
            node("QuantizeLinear", &q, &[t, &s, &z], &[]),
            node("DequantizeLinear", &dq, &[&q, &s, &z], &[]),
        ])
    };

    let mut body = Vec::with_capacity(g.node.len() * 3);
    for i in &g.input {
        if act.contains_key(i.name.as_str()) {
            body.extend(qdq(&i.name, &mut out)?);
        }
    }
    for (i, n) in g.node.iter().enumerate() {
        let mut n2 = n.clone();
        if roles[i] == Role::Quantized {
            for k in v.activation_inputs(n) {
                if act.contains_key(n.input[k].as_str()) {
                    n2.input[k] = format!("{}.dequant", n.input[k]);
                }
            }
        }
        body.push(n2);
        for o in &n.output {
            if act.contains_key(o.as_str()) {
                body.extend(qdq(o, &mut out)?);
            }
        }
    }
    Ok(with_precision(
        model,
        out.finish(g, body),
        Precision::Int8,
        metadata,
    ))
}

/// The float32 values of every weight stored as int8 (`W.int8` read by a `DequantizeLinear`
/// named `W`), dequantized in Rust with the stored scales and zero points: what a correct
/// runtime must read. Keyed by `W`.
pub fn dequantized_weights(model: &pb::ModelProto) -> Result<BTreeMap<String, Vec<f32>>> {
    let g = graph(model)?;
    let inits: HashMap<&str, &pb::TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let get = |name: &str| {
        inits
            .get(name)
            .copied()
            .ok_or_else(|| ConvertError::Graph(format!("initializer `{name}` missing")))
    };
    let mut out = BTreeMap::new();
    for n in g.node.iter().filter(|n| n.op_type == "DequantizeLinear") {
        let [x, s, z] = n.input.as_slice() else {
            continue;
        };
        let Ok(xt) = get(x) else { continue };
        let Some(values) = tensor_i8(xt) else {
            continue;
        };
        let scale = tensor_f32(get(s)?)?;
        let zp: Vec<f32> = tensor_i8(get(z)?)
            .unwrap_or_default()
            .into_iter()
            .map(f32::from)
            .collect();
        if zp.len() != scale.len() || scale.is_empty() || numel(xt) % scale.len() != 0 {
            return Err(ConvertError::Graph(format!(
                "`{}`: {} scales, {} zero points for {} values",
                n.name,
                scale.len(),
                zp.len(),
                numel(xt)
            )));
        }
        let per = numel(xt) / scale.len();
        let v = values
            .into_iter()
            .enumerate()
            .map(|(i, q)| (f32::from(q) - zp[i / per]) * scale[i / per])
            .collect();
        out.insert(n.output[0].clone(), v);
    }
    Ok(out)
}
