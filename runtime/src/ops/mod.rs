//! kdsr-edge's own tract operators and the rewrite passes that substitute them when
//! `Graph::load` reads a graph: [`rewrite`] on the typed model, [`rewrite_decluttered`] on the
//! decluttered one.
//!
//! - [`depth_to_space`]: ONNX `DepthToSpace` in one pass, instead of the reshape / two axis moves
//!   / reshape chain tract-onnx expands it into (each axis move a strided copy).
//! - [`winograd`]: dense 3×3 convolutions (stride 1, dilation 1, one group, padding 1, constant
//!   float32 weights) by Winograd F(6,3) or F(4,3), with what follows such a convolution alone
//!   fused into its output store ([`winograd::Epilogue`]): a LeakyReLU, a residual add, a depth-to-space,
//!   an int8 graph's activation quantization.
//! - [`qdq`]: an int8 QDQ graph's activation `QuantizeLinear` → (u8 lookup table) →
//!   `DequantizeLinear` chains as one float32 pass ([`qdq::QuantTable`]), instead of two or three.
//!
//! `KDSR_EDGE_OPS` ([`OPS_VAR`]) picks which are substituted: a comma-separated list of
//! `depth-to-space`, `winograd` (F(6,3) or F(4,3) by the input's size; `winograd-f43` or
//! `winograd-f63` fix the tile) and `qdq`, or `none` for tract's own ops only (A/B
//! measurements); unset, the [`DEFAULT_OPS`].

pub mod depth_to_space;
pub mod qdq;
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
/// writing it took ~4–8 % of the split SR graph's time (`kdsr-edge bench`, interleaved).
/// With debug assertions (every `cargo test` build) the tensor is filled with NaN instead, so
/// that an element an op fails to write shows in the tests' comparisons with tract's ops.
pub(crate) fn output_f32(shape: &[usize]) -> TractResult<Tensor> {
    if cfg!(debug_assertions) {
        let len = shape.iter().product();
        return Tensor::from_shape(shape, &vec![f32::NAN; len]);
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
}

/// Substitutes the ops of `set` that match tract-onnx's typed graph (depth-to-space) into
/// `model`, typed and not yet decluttered.
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
    })
}

/// Substitutes the ops of `set` that need constant weights and biases (Winograd) or tract's
/// decluttered quantization ops (the QDQ chains) into `model`, decluttered (before
/// decluttering a bias can still be a computed value), then fuses what follows each Winograd
/// convolution into it.
pub fn rewrite_decluttered(model: &mut TypedModel, set: OpSet) -> TractResult<Rewrites> {
    let winograd = match set.winograd {
        Some(tile) => rewrite_winograd(model, tile)?,
        None => 0,
    };
    let qdq = if set.qdq { qdq::rewrite(model)? } else { 0 };
    let fused = if set.winograd.is_some() {
        fuse_epilogues(model)?
    } else {
        0
    };
    Ok(Rewrites {
        depth_to_space: 0,
        winograd,
        qdq,
        fused,
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

/// The Winograd op for node `id` when it is an eligible convolution (see the module docs).
fn winograd_for(model: &TypedModel, id: usize, tile: TileChoice) -> Option<winograd::Winograd3x3> {
    let node = model.node(id);
    let conv = node.op_as::<Conv>()?;
    let ps = &conv.pool_spec;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
    let pad_one = match &ps.padding {
        PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, _) => {
            b.iter().chain(a.iter()).all(|&p| p == 1) && b.len() == 2 && a.len() == 2
        }
        _ => false,
    };
    let input = model.outlet_fact(node.inputs[0]).ok()?;
    if conv.q_params.is_some()
        || conv.group != 1
        || conv.kernel_fmt != KernelFormat::OIHW
        || ps.data_format != DataFormat::NCHW
        || ps.kernel_shape.as_slice() != [3, 3]
        || !ones(&ps.strides)
        || !ones(&ps.dilations)
        || !pad_one
        || input.datum_type != f32::datum_type()
        || input.rank() != 4
        || node.inputs.len() != 3
    {
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
    let b = match b.len() {
        0 => None,
        1 if oc != 1 => {
            return (b[0] == 0.0)
                .then(|| winograd::Winograd3x3::new(w, None, oc, ic, tile).ok())
                .flatten();
        }
        _ => Some(b),
    };
    winograd::Winograd3x3::new(w, b, oc, ic, tile).ok()
}

/// Replaces every eligible convolution of `model` by [`winograd::Winograd3x3`].
fn rewrite_winograd(model: &mut TypedModel, tile: TileChoice) -> TractResult<usize> {
    let found: Vec<(usize, winograd::Winograd3x3)> = model
        .eval_order()?
        .into_iter()
        .filter_map(|id| winograd_for(model, id, tile).map(|op| (id, op)))
        .collect();
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
