//! kdsr-edge's own tract operators and the rewrite passes that substitute them when
//! `Graph::load` reads a graph: [`rewrite`] on the typed model, [`rewrite_decluttered`] on the
//! decluttered one.
//!
//! - [`depth_to_space`]: ONNX `DepthToSpace` in one pass, instead of the reshape / two axis moves
//!   / reshape chain tract-onnx expands it into (each axis move a strided copy).
//! - [`winograd`]: dense 3×3 convolutions (stride 1, dilation 1, one group, padding 1, constant
//!   float32 weights) by Winograd F(6,3) or F(4,3), with what follows such a convolution alone
//!   fused into its output store ([`winograd::Epilogue`]): a LeakyReLU, a residual add, a depth-to-space,
//!   an int8 graph's activation quantization; a 1×1 convolution that alone reads such a
//!   convolution's output is composed into its weights first; and what alone feeds it computed
//!   in its input conversion ([`winograd::Prologue`], [`depthwise`]): an IDR-DCRB block's
//!   depthwise 3×3 convolution (kernels of any origin: generated from the IDR, or folded
//!   constants) and the LeakyReLU after it.
//! - [`qdq`]: an int8 QDQ graph's activation `QuantizeLinear` → (u8 lookup table) →
//!   `DequantizeLinear` chains as one float32 pass ([`qdq::QuantTable`]), instead of two or three.
//!
//! `KDSR_EDGE_OPS` ([`OPS_VAR`]) picks which are substituted: a comma-separated list of
//! `depth-to-space`, `winograd` (F(6,3) or F(4,3) by the input's size and the CPU;
//! `winograd-f43` or `winograd-f63` fix the tile) and `qdq`, or `none` for tract's own ops only
//! (A/B measurements); unset, the [`DEFAULT_OPS`].

pub mod amx;
pub mod depth_to_space;
pub mod depthwise;
pub mod qdq;
mod tiles;
pub mod winograd;

use winograd::{Tile, TileChoice};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::{Conv, PaddingSpec};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::{DataFormat, LeakyRelu};

/// A float32 tensor of `shape` for an op that writes every one of its elements before anything
/// reads it: not zeroed first. Zeroing the ×4 upsampler's output (118 MB at LR 320×180) before
/// writing it took ~5 % of the split SR graph's time on one thread, ~10 % on two (`kdsr-edge
/// bench`, 6 interleaved rounds, runtime/README).
/// With debug assertions (every `cargo test` build) the tensor is filled with NaN instead, so
/// that an element an op fails to write shows in the tests' comparisons with tract's ops.
pub(crate) fn output_f32(shape: &[usize]) -> TractResult<Tensor> {
    if cfg!(debug_assertions) {
        return Ok(tract_ndarray::ArrayD::from_elem(shape, f32::NAN).into_tensor());
    }
    // SAFETY: the callers (`DepthToSpace::eval`, `Winograd3x3::eval`) write every element
    // before the tensor is returned, and f32 has no invalid bit patterns.
    #[allow(unsafe_code)]
    unsafe {
        Tensor::uninitialized::<f32>(shape)
    }
}

/// The environment variable naming the substituted ops (see the module docs).
pub const OPS_VAR: &str = "KDSR_EDGE_OPS";

/// What is substituted when [`OPS_VAR`] is unset.
pub const DEFAULT_OPS: &str = "depth-to-space,winograd,qdq";

/// Which ops [`rewrite`] substitutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpSet {
    /// [`depth_to_space::DepthToSpace`].
    pub depth_to_space: bool,
    /// [`winograd::Winograd3x3`], by this algorithm.
    pub winograd: Option<TileChoice>,
    /// [`qdq::QuantTable`].
    pub qdq: bool,
    /// The Winograd ops compute in bf16 on AMX ([`winograd::Winograd3x3::with_bf16`]); set by
    /// `--precision bf16`, not by [`OPS_VAR`].
    pub bf16: bool,
}

impl OpSet {
    /// Parses a list as [`OPS_VAR`] takes it; unknown names are an error naming them.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let mut set = OpSet::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" => {}
                "depth-to-space" => set.depth_to_space = true,
                "winograd" => set.winograd = Some(TileChoice::BySize),
                "qdq" => set.qdq = true,
                other => match other.strip_prefix("winograd-").map(str::parse::<Tile>) {
                    Some(Ok(tile)) => set.winograd = Some(TileChoice::Fixed(tile)),
                    _ => {
                        return Err(format!(
                            "{OPS_VAR}: unknown op `{other}` (depth-to-space, winograd, \
                             winograd-f43, winograd-f63, qdq or none)"
                        ));
                    }
                },
            }
        }
        Ok(set)
    }

    /// From [`OPS_VAR`], else [`DEFAULT_OPS`].
    pub fn from_env() -> std::result::Result<Self, String> {
        match std::env::var(OPS_VAR) {
            Ok(s) => Self::parse(&s),
            Err(_) => Self::parse(DEFAULT_OPS),
        }
    }
}

/// What [`rewrite`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewrites {
    /// `DepthToSpace` chains replaced by [`depth_to_space::DepthToSpace`].
    pub depth_to_space: usize,
    /// Convolutions replaced by [`winograd::Winograd3x3`].
    pub winograd: usize,
    /// Quantize → dequantize chains replaced by [`qdq::QuantTable`].
    pub qdq: usize,
    /// Ops fused into those convolutions (LeakyReLU, residual add, depth-to-space, chains).
    pub fused: usize,
    /// 1×1 convolutions composed into the 3×3 convolution before them (with `winograd`).
    pub pointwise: usize,
    /// Depthwise 3×3 convolutions (and the LeakyReLU after them) computed inside the
    /// convolution that reads them ([`winograd::Prologue`]).
    pub prologue: usize,
}

/// Substitutes the ops of `set` that match tract-onnx's typed graph (depth-to-space) into
/// `model`, typed and not yet decluttered; with `winograd`, also composes each 1×1
/// convolution that alone reads a 3×3 convolution's output into it (the SR network's tail and
/// `add_mean`, which tract ran as a 1×1 product over the ×4 output: ~9 ms at LR 320×180 on one
/// thread). After decluttering, a 1×1 convolution is an `EinSum` and a separate bias `Add`.
pub fn rewrite(model: &mut TypedModel, set: OpSet) -> TractResult<Rewrites> {
    Ok(Rewrites {
        depth_to_space: if set.depth_to_space {
            depth_to_space::rewrite(model)?
        } else {
            0
        },
        winograd: 0,
        qdq: 0,
        fused: 0,
        pointwise: if set.winograd.is_some() {
            compose_pointwise_convs(model)?
        } else {
            0
        },
        prologue: 0,
    })
}

/// Substitutes the ops of `set` that need constant weights and biases (Winograd) or tract's
/// decluttered quantization ops (the QDQ chains) into `model`, decluttered (before
/// decluttering a bias can still be a computed value), then fuses what follows each Winograd
/// convolution into it.
pub fn rewrite_decluttered(model: &mut TypedModel, set: OpSet) -> TractResult<Rewrites> {
    let winograd = match set.winograd {
        Some(tile) => rewrite_winograd(model, tile, set.bf16)?,
        None => 0,
    };
    let qdq = if set.qdq { qdq::rewrite(model)? } else { 0 };
    let (fused, prologue) = if set.winograd.is_some() {
        (fuse_epilogues(model)?, fuse_prologues(model)?)
    } else {
        (0, 0)
    };
    Ok(Rewrites {
        depth_to_space: 0,
        winograd,
        qdq,
        fused,
        pointwise: 0,
        prologue,
    })
}

/// What the op consuming a Winograd node's output adds to its epilogue, and the extra input it
/// brings (a residual), when it can be fused: the epilogue's stages keep their order (LeakyReLU,
/// quantization, residual, quantization, depth-to-space) and each comes at most once; a
/// quantization after the depth-to-space is the same before it (element-wise).
fn epilogue_step(
    model: &TypedModel,
    conv: &winograd::Winograd3x3,
    conv_out: OutletId,
    next: &TypedNode,
) -> Option<(winograd::Epilogue, Option<OutletId>)> {
    let mut e = conv.epilogue.clone();
    if e.then.is_some() {
        // The op's output is the tail's now.
        return None;
    }
    if let Some(tail) = next.op_as::<winograd::Winograd3x3>() {
        // A tail of few output channels after the depth-to-space (see Epilogue::then).
        if !conv.takes_tail(e.block(), tail) {
            return None;
        }
        e.then = Some(std::sync::Arc::new(tail.clone()));
        return Some((e, None));
    }
    if let Some(q) = next.op_as::<qdq::QuantTable>() {
        if e.quant_after.is_some() {
            return None;
        }
        if e.quant.is_some() || e.residual || e.depth_to_space.is_some() {
            e.quant_after = Some(q.clone());
        } else {
            e.quant = Some(q.clone());
        }
        return Some((e, None));
    }
    let later_than_leaky =
        e.quant.is_some() || e.residual || e.quant_after.is_some() || e.depth_to_space.is_some();
    if let Some(op) = next.op_as::<ElementWiseOp>() {
        let leaky = op.0.downcast_ref::<LeakyRelu>()?;
        if later_than_leaky
            || e.leaky_relu.is_some()
            || op.1.is_some_and(|t| t != f32::datum_type())
        {
            return None;
        }
        e.leaky_relu = Some(leaky.alpha);
        return Some((e, None));
    }
    if let Some(op) = next.op_as::<TypedBinOp>() {
        if !op.0.is::<Add>()
            || e.residual
            || e.quant_after.is_some()
            || e.depth_to_space.is_some()
            || op.1.is_some_and(|t| t != f32::datum_type())
            || next.inputs.len() != 2
        {
            return None;
        }
        let other = *next.inputs.iter().find(|i| **i != conv_out)?;
        let (a, b) = (
            model.outlet_fact(conv_out).ok()?,
            model.outlet_fact(other).ok()?,
        );
        if a.shape != b.shape || b.datum_type != f32::datum_type() {
            return None;
        }
        e.residual = true;
        return Some((e, Some(other)));
    }
    let d2s = next.op_as::<depth_to_space::DepthToSpace>()?;
    if e.depth_to_space.is_some() {
        return None;
    }
    e.depth_to_space = Some((d2s.block, d2s.crd));
    Some((e, None))
}

/// Fuses into each Winograd node the ops that alone consume its output, one at a time, while
/// [`epilogue_step`] accepts them.
fn fuse_epilogues(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    loop {
        let outputs = model.output_outlets()?.to_vec();
        let mut found = None;
        for id in model.eval_order()? {
            let node = model.node(id);
            let Some(conv) = node.op_as::<winograd::Winograd3x3>() else {
                continue;
            };
            let out = OutletId::new(id, 0);
            let consumers = &node.outputs[0].successors;
            if consumers.len() != 1 || outputs.contains(&out) {
                continue;
            }
            let next = model.node(consumers[0].node);
            if let Some((e, extra)) = epilogue_step(model, conv, out, next) {
                found = Some((id, next.id, conv.clone().with_epilogue(e)?, extra));
                break;
            }
        }
        let Some((id, next, op, extra)) = found else {
            return Ok(fused);
        };
        let node = model.node(id);
        let mut patch = TypedModelPatch::default();
        let mut taps = node
            .inputs
            .iter()
            .map(|i| patch.tap_model(model, *i))
            .collect::<TractResult<Vec<_>>>()?;
        if let Some(extra) = extra {
            taps.push(patch.tap_model(model, extra)?);
        }
        let name = format!("{}+{}", node.name, model.node(next).name);
        let out = patch.wire_node(name, op, &taps)?;
        patch.shunt_outside(model, OutletId::new(next, 0), out[0])?;
        patch.apply(model)?;
        model.compact()?;
        fused += 1;
    }
}

/// The prologue ([`winograd::Prologue`]) that node `w`, a Winograd node, can take from what
/// alone feeds its input: a depthwise 3×3 convolution (one group per channel, stride 1,
/// dilation 1, padding 1, NCHW, OIHW kernels of any origin, a constant bias), optionally through
/// a LeakyReLU, neither read by anything else; with the depthwise node and its input and kernel.
fn prologue_for(
    model: &TypedModel,
    w: usize,
) -> Option<(winograd::Prologue, usize, OutletId, OutletId)> {
    let outputs = model.output_outlets().ok()?;
    let conv = model.node(w).op_as::<winograd::Winograd3x3>()?;
    if !conv.takes_prologue() {
        return None;
    }
    // The node feeding `id`'s input 0 when `id`'s output is read by it alone.
    let alone = |id: usize| -> Option<&TypedNode> {
        let node = model.node(id);
        let out = OutletId::new(id, 0);
        (node.outputs.len() == 1
            && node.outputs[0].successors.len() == 1
            && !outputs.contains(&out))
        .then_some(node)
    };
    let mut feed = alone(model.node(w).inputs[0].node)?;
    let mut leaky_relu = None;
    if let Some(op) = feed.op_as::<ElementWiseOp>() {
        let leaky = op.0.downcast_ref::<LeakyRelu>()?;
        if op.1.is_some_and(|t| t != f32::datum_type()) {
            return None;
        }
        leaky_relu = Some(leaky.alpha);
        feed = alone(feed.inputs[0].node)?;
    }
    let c = conv.ic;
    let dw = simple_conv(model, feed, 3, 1)?;
    let ps = &dw.pool_spec;
    if dw.group != c || ps.input_channels != c || ps.output_channels != c {
        return None;
    }
    let kernel = model.outlet_fact(feed.inputs[1]).ok()?;
    let shape = kernel.shape.as_concrete()?;
    if kernel.datum_type != f32::datum_type() || shape != [c, 1, 3, 3] {
        return None;
    }
    let bias = model.outlet_fact(feed.inputs[2]).ok()?.konst.clone()?;
    let b = bias.try_as_plain_ram().ok()?;
    let b = b.as_slice::<f32>().ok()?;
    let bias = match b.len() {
        0 => None,
        1 if c != 1 => (b[0] == 0.0).then_some(None)?,
        n if n == c => Some(std::sync::Arc::new(b.to_vec())),
        _ => return None,
    };
    let prologue = winograd::Prologue { bias, leaky_relu };
    Some((prologue, feed.id, feed.inputs[0], feed.inputs[1]))
}

/// Fuses into each Winograd node the depthwise convolution (and LeakyReLU) that alone feeds
/// it ([`prologue_for`]): the node then reads the depthwise convolution's input and kernels.
fn fuse_prologues(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    loop {
        let found = model.eval_order()?.into_iter().find_map(|id| {
            let (prologue, dw, x, kernel) = prologue_for(model, id)?;
            let op = model.node(id).op_as::<winograd::Winograd3x3>()?;
            Some((id, dw, x, kernel, op.clone().with_prologue(prologue)))
        });
        let Some((id, dw, x, kernel, op)) = found else {
            return Ok(fused);
        };
        let node = model.node(id);
        let mut patch = TypedModelPatch::default();
        let mut taps = vec![patch.tap_model(model, x)?, patch.tap_model(model, kernel)?];
        for i in &node.inputs[1..] {
            taps.push(patch.tap_model(model, *i)?);
        }
        // The convolution's name first: `benches/profile.py` counts the node in its row.
        let name = format!("{}+{}", node.name, model.node(dw).name);
        let out = patch.wire_node(name, op?, &taps)?;
        patch.shunt_outside(model, OutletId::new(id, 0), out[0])?;
        patch.apply(model)?;
        model.compact()?;
        fused += 1;
    }
}

/// A convolution's constant float32 weights (OIHW) and bias (`None`: no bias, or a scalar zero).
struct ConvParams {
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
    oc: usize,
    ic: usize,
}

/// `node`'s `Conv` when it is a float32 2-D convolution with stride 1 and dilation 1, NCHW,
/// OIHW kernels `k`×`k`, padding `pad` on every side, and inputs (data, kernel, bias); any
/// number of groups.
fn simple_conv<'a>(
    model: &TypedModel,
    node: &'a TypedNode,
    k: usize,
    pad: usize,
) -> Option<&'a Conv> {
    let conv = node.op_as::<Conv>()?;
    let ps = &conv.pool_spec;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
    let padded = match &ps.padding {
        PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, _) => {
            b.iter().chain(a.iter()).all(|&p| p == pad) && b.len() == 2 && a.len() == 2
        }
        PaddingSpec::Valid => pad == 0,
        _ => false,
    };
    let input = model.outlet_fact(node.inputs[0]).ok()?;
    let simple = conv.q_params.is_none()
        && conv.kernel_fmt == KernelFormat::OIHW
        && ps.data_format == DataFormat::NCHW
        && ps.kernel_shape.as_slice() == [k, k]
        && ones(&ps.strides)
        && ones(&ps.dilations)
        && padded
        && input.datum_type == f32::datum_type()
        && input.rank() == 4
        && node.inputs.len() == 3;
    simple.then_some(conv)
}

/// Node `id`'s weights and bias when it is a dense convolution (one group, stride 1, dilation 1,
/// NCHW, OIHW, float32, constant weights and bias) with a `k`×`k` kernel and padding `pad` on
/// every side.
fn conv_params(model: &TypedModel, id: usize, k: usize, pad: usize) -> Option<ConvParams> {
    let node = model.node(id);
    let conv = simple_conv(model, node, k, pad)?;
    let ps = &conv.pool_spec;
    if conv.group != 1 {
        return None;
    }
    let weights = model.outlet_fact(node.inputs[1]).ok()?.konst.clone()?;
    let bias = model.outlet_fact(node.inputs[2]).ok()?.konst.clone()?;
    if weights.datum_type() != f32::datum_type() || bias.datum_type() != f32::datum_type() {
        return None;
    }
    let (oc, ic) = (ps.output_channels, ps.input_channels);
    let w = weights.try_as_plain_ram().ok()?;
    let b = bias.try_as_plain_ram().ok()?;
    let (w, b) = (w.as_slice::<f32>().ok()?, b.as_slice::<f32>().ok()?);
    let bias = match b.len() {
        0 => None,
        1 if oc != 1 => (b[0] == 0.0).then_some(None)?,
        n if n == oc => Some(b.to_vec()),
        _ => return None,
    };
    (w.len() == oc * ic * k * k).then(|| ConvParams {
        weights: w.to_vec(),
        bias,
        oc,
        ic,
    })
}

/// The Winograd op for node `id` when it is an eligible convolution (see the module docs).
/// With `bf16`, the op computes in bf16 on AMX (an error where it cannot).
fn winograd_for(
    model: &TypedModel,
    id: usize,
    tile: TileChoice,
    bf16: bool,
) -> Option<TractResult<winograd::Winograd3x3>> {
    let p = conv_params(model, id, 3, 1)?;
    let op = winograd::Winograd3x3::new(&p.weights, p.bias.as_deref(), p.oc, p.ic, tile).ok()?;
    Some(if bf16 {
        op.with_bf16(&p.weights)
    } else {
        Ok(op)
    })
}

/// Replaces every eligible convolution of `model` by [`winograd::Winograd3x3`] (computing in
/// bf16 with `bf16`).
fn rewrite_winograd(model: &mut TypedModel, tile: TileChoice, bf16: bool) -> TractResult<usize> {
    let found: Vec<(usize, winograd::Winograd3x3)> = model
        .eval_order()?
        .into_iter()
        .filter_map(|id| winograd_for(model, id, tile, bf16).map(|op| op.map(|op| (id, op))))
        .collect::<TractResult<_>>()?;
    for (id, op) in &found {
        let node = model.node(*id);
        let mut patch = TypedModelPatch::default();
        let tap = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(format!("{}.winograd", node.name), op.clone(), &[tap])?;
        patch.shunt_outside(model, OutletId::new(*id, 0), out[0])?;
        patch.apply(model)?;
    }
    Ok(found.len())
}

/// `p` followed by the 1×1 convolution `q` as one convolution: `W[o, i] = Σ_c Wq[o, c] · Wp[c,
/// i]` (each tap), `b = Wq · bp + bq`. Nothing between them, so the composition is exact up to
/// the float rounding of the sums.
fn compose_pointwise(p: &ConvParams, q: &ConvParams) -> ConvParams {
    let taps = p.weights.len() / (p.oc * p.ic);
    let mut weights = vec![0f32; q.oc * p.ic * taps];
    for (o, w) in weights.chunks_exact_mut(p.ic * taps).enumerate() {
        for c in 0..p.oc {
            let s = q.weights[o * q.ic + c];
            for (v, pw) in w
                .iter_mut()
                .zip(&p.weights[c * p.ic * taps..][..p.ic * taps])
            {
                *v += s * pw;
            }
        }
    }
    let bias = (0..q.oc)
        .map(|o| {
            let from_p = p.bias.as_ref().map_or(0.0, |bp| {
                (0..p.oc).map(|c| q.weights[o * q.ic + c] * bp[c]).sum()
            });
            from_p + q.bias.as_ref().map_or(0.0, |bq| bq[o])
        })
        .collect();
    ConvParams {
        weights,
        bias: Some(bias),
        oc: q.oc,
        ic: p.ic,
    }
}

/// A 3×3 convolution and the 1×1 convolution `next` that alone reads its output, as one
/// convolution: tract's op and its constant weights and bias.
struct Composed {
    next: usize,
    op: Conv,
    weights: Tensor,
    bias: Tensor,
}

/// Node `id` with the 1×1 convolution after it as one convolution, when `id` is an eligible
/// convolution (3×3, see the module docs) whose output only a 1×1 convolution reads (the SR
/// network's tail and its `add_mean`).
fn with_pointwise_after(model: &TypedModel, id: usize) -> Option<Composed> {
    let out = OutletId::new(id, 0);
    let consumers = &model.node(id).outputs[0].successors;
    if consumers.len() != 1 || model.output_outlets().ok()?.contains(&out) {
        return None;
    }
    let next = consumers[0].node;
    if model.node(next).inputs[0] != out {
        return None;
    }
    let q = conv_params(model, next, 1, 0)?;
    let p = conv_params(model, id, 3, 1)?;
    if q.ic != p.oc {
        return None;
    }
    let c = compose_pointwise(&p, &q);
    let mut op = model.node(id).op_as::<Conv>()?.clone();
    op.pool_spec.output_channels = c.oc;
    Some(Composed {
        next,
        op,
        weights: tensor1(&c.weights).into_shape(&[c.oc, c.ic, 3, 3]).ok()?,
        bias: tensor1(c.bias.as_deref()?),
    })
}

/// Replaces each eligible 3×3 convolution of the typed `model` that only a 1×1 convolution
/// reads, and that 1×1 convolution, by one 3×3 convolution (tract's op, with the composed
/// weights as constants), which the Winograd rewrite then substitutes. Keeps the graph
/// output's name when the 1×1 convolution was one. Returns how many were composed.
fn compose_pointwise_convs(model: &mut TypedModel) -> TractResult<usize> {
    let found: Vec<(usize, Composed)> = model
        .eval_order()?
        .into_iter()
        .filter_map(|id| with_pointwise_after(model, id).map(|c| (id, c)))
        .collect();
    let composed = found.len();
    for (id, c) in found {
        let (node, last) = (model.node(id), model.node(c.next));
        // `benches/profile.py` finds the ONNX node by the name's longest dotted prefix.
        let name = format!("{}.pointwise+{}", node.name, last.name);
        let old = OutletId::new(c.next, 0);
        let output = model.output_outlets()?.iter().position(|o| *o == old);
        let label = model.outlet_label(old).unwrap_or(&last.name).to_owned();
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let w = patch.add_const(format!("{name}.weight"), c.weights)?;
        let b = patch.add_const(format!("{name}.bias"), c.bias)?;
        let out = patch.wire_node(name, c.op, &[x, w, b])?;
        patch.shunt_outside(model, old, out[0])?;
        patch.apply(model)?;
        if let Some(ix) = output {
            let new = model.output_outlets()?[ix];
            model.set_outlet_label(new, label)?;
        }
    }
    Ok(composed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::PoolSpec;
    use winograd::tests::values;

    /// A dense convolution of `k`×`k` kernels, padding `pad`, as tract-onnx types ONNX `Conv`.
    fn conv(ic: usize, oc: usize, k: usize, pad: usize) -> Conv {
        Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![k, k],
                padding: PaddingSpec::Explicit(tvec![pad, pad], tvec![pad, pad]),
                dilations: None,
                strides: None,
                input_channels: ic,
                output_channels: oc,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        }
    }

    /// A 3×3 convolution 4→5 then a 1×1 convolution 5→3 (random weights and biases, not the
    /// identity of `add_mean`) as one Winograd convolution: the graph's output keeps its name,
    /// and equals tract's two convolutions within 1e-5 (float32 rounding of the composed sums;
    /// values of magnitude ~10).
    #[test]
    fn a_pointwise_conv_is_composed_into_the_conv_before_it() -> TractResult<()> {
        let (h, w) = (7, 9);
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 4, h, w]))?;
        let t = |v: Vec<f32>, shape: &[usize]| tensor1(&v).into_shape(shape);
        let w1 = model.add_const("w1", t(values(5 * 4 * 9, 1), &[5, 4, 3, 3])?)?;
        let b1 = model.add_const("b1", t(values(5, 2), &[5])?)?;
        let w2 = model.add_const("w2", t(values(3 * 5, 3), &[3, 5, 1, 1])?)?;
        let b2 = model.add_const("b2", t(values(3, 4), &[3])?)?;
        let y = model.wire_node("c1", conv(4, 5, 3, 1), &[x, w1, b1])?;
        let z = model.wire_node("c2", conv(5, 3, 1, 0), &[y[0], w2, b2])?;
        model.select_output_outlets(&z)?;
        let input = t(values(4 * h * w, 5), &[1, 4, h, w])?;
        let run = |m: TypedModel| -> TractResult<Tensor> {
            let out = m
                .into_optimized()?
                .into_runnable()?
                .run(tvec![input.clone().into()])?;
            Ok(out[0].clone().into_tensor())
        };
        let reference = run(model.clone())?;
        let set = OpSet {
            winograd: Some(TileChoice::default()),
            ..OpSet::default()
        };
        assert_eq!(rewrite(&mut model, set)?.pointwise, 1);
        let out = model.output_outlets()?[0];
        let name = model
            .outlet_label(out)
            .unwrap_or(&model.node(out.node).name);
        assert_eq!(name, "c2", "the output keeps its name");
        let mut model = model.into_decluttered()?;
        let done = rewrite_decluttered(&mut model, set)?;
        assert_eq!(done.winograd, 1, "{done:?}");
        let got = run(model)?;
        assert_eq!(got.shape(), [1, 3, h, w]);
        let (r, g) = (reference.try_as_plain_ram()?, got.try_as_plain_ram()?);
        let d = r
            .as_slice::<f32>()?
            .iter()
            .zip(g.as_slice::<f32>()?)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("composed 3×3 + 1×1 vs tract: max |Δ| {d:.2e}");
        assert!(d <= 1e-5, "max |Δ| {d}");
        Ok(())
    }
}
