//! The activation quantization of int8 QDQ graphs in one float32 pass.
//!
//! The converter's int8 graphs (onnxruntime's QDQ layout) put a `QuantizeLinear` →
//! `DequantizeLinear` pair on every activation. tract 0.23.9 folds the weights' dequantization
//! into constants, so the convolutions run in float32, and each activation pair stays two whole
//! passes over the tensor: `QuantizeLinearU8` (float32 → u8, one value at a time) and
//! `DequantizeLinearF32` (u8 → float32); a `DequantizeLinear` → `LeakyRelu` → `QuantizeLinear`
//! between two pairs becomes a u8 `LookupTable` between them. Issue 13's profile of the int8 SR
//! graph at 320×180 put the 30 pairs at 324 of 871 ms, more than the 13 convolutions.
//!
//! [`QuantTable`] is such a chain — `QuantizeLinear`, any u8 (or i8) element-wise ops, then
//! `DequantizeLinear` — as one float32 → float32 op: `y = table[q(x)]` with `q` tract's
//! quantization and `table` the chain's output for each of the 256 quantized values, computed
//! once when the graph loads by running the chain's own ops. A plain pair's table is affine
//! and is computed, not looked up. [`rewrite`] substitutes it for every such chain; the
//! Winograd op also fuses it into its output store (`super::winograd::Epilogue`), so a
//! convolution of an int8 graph writes its quantized output in the one pass.
//!
//! The values are tract's, bit for bit: `q(x) = clamp(round_half_even(x · s⁻¹) + z, lo, hi)`
//! with tract's `s⁻¹` (its `QuantizeLinearU8::scale`), and the affine case computes
//! `(q − z) · s` in the same float32 operations as `DequantizeLinearF32`. The one exception is
//! NaN, which becomes `lo` here and the zero point in tract.

use std::sync::Arc;

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, QuantizeLinearI8, QuantizeLinearU8};

use super::depth_to_space::only_successor;

/// `1.5 · 2²³`: for `|t| ≤ 2²²`, `(t + MAGIC) − MAGIC` is `t` rounded to the nearest integer,
/// ties to even (float32 addition rounds so), in plain arithmetic every SIMD level vectorizes.
const MAGIC: f32 = 12_582_912.0;

/// `|x · s⁻¹|` is clamped to this before rounding: any value beyond it quantizes to `lo` or
/// `hi` anyway (the zero point is within the 8-bit range), and the rounding stays exact.
const BOUND: f32 = 1024.0;

/// Values from which the standalone op splits its pass over tract's threads.
const PAR_MIN: usize = 1 << 16;

/// `QuantizeLinear` → element-wise ops on the quantized values → `DequantizeLinear`, as one
/// float32 op (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantTable {
    /// tract's quantization scale: the reciprocal of ONNX's `y_scale` (`x · inv_scale` is
    /// rounded).
    pub inv_scale: f32,
    /// The quantization's zero point.
    pub zero_point: i32,
    /// The quantized range: 0..=255 (u8) or -128..=127 (i8).
    pub lo: i32,
    /// See `lo`.
    pub hi: i32,
    /// The chain's float32 output for each quantized value `lo..=hi`.
    pub table: Arc<[f32; 256]>,
    /// `(z, s)` when `table[q − lo]` is `(q − z) · s` for every `q`: a plain quantize /
    /// dequantize pair, computed instead of looked up.
    pub affine: Option<(f32, f32)>,
}

impl Eq for QuantTable {}

impl QuantTable {
    /// A plain pair: quantization by `inv_scale` and `zero_point` to `lo..=hi`, dequantization
    /// by `scale` and `dq_zero_point`.
    pub fn pair(
        inv_scale: f32,
        zero_point: i32,
        (lo, hi): (i32, i32),
        scale: f32,
        dq_zero_point: i32,
    ) -> Self {
        let table = std::array::from_fn(|i| (lo + i as i32 - dq_zero_point) as f32 * scale);
        Self {
            inv_scale,
            zero_point,
            lo,
            hi,
            table: Arc::new(table),
            affine: Some((dq_zero_point as f32, scale)),
        }
    }

    /// `x` quantized: an integer in `lo..=hi`, as float32.
    #[inline(always)]
    fn level(&self, x: f32) -> f32 {
        let t = (x * self.inv_scale).clamp(-BOUND, BOUND);
        let r = (t + MAGIC) - MAGIC;
        (r + self.zero_point as f32)
            .max(self.lo as f32)
            .min(self.hi as f32)
    }

    /// The chain on every value of `line`, in place.
    #[inline(always)]
    pub fn apply(&self, line: &mut [f32]) {
        match self.affine {
            Some((z, s)) => {
                for v in line.iter_mut() {
                    *v = (self.level(*v) - z) * s;
                }
            }
            None => {
                let lo = self.lo as f32;
                let table: &[f32; 256] = &self.table;
                for v in line.iter_mut() {
                    // In 0..=255 by construction; `as u8` keeps the index in the table.
                    *v = table[(self.level(*v) - lo) as u8 as usize];
                }
            }
        }
    }

    /// [`Self::apply`] compiled for the widest vector instructions the CPU has, as the Winograd
    /// op's chunks are (the binary's x86-64 baseline is SSE2); the same values on every level.
    pub fn apply_fast(&self, line: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use super::winograd::{SimdLevel, detected_simd_level};
            match detected_simd_level() {
                // SAFETY: the level is what the CPU reported.
                #[allow(unsafe_code)]
                SimdLevel::Avx512 => return unsafe { self.apply_avx512(line) },
                #[allow(unsafe_code)]
                SimdLevel::Avx2 => return unsafe { self.apply_avx2(line) },
                SimdLevel::Baseline => {}
            }
        }
        self.apply(line)
    }

    /// [`Self::apply`] compiled for AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn apply_avx512(&self, line: &mut [f32]) {
        self.apply(line)
    }

    /// [`Self::apply`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn apply_avx2(&self, line: &mut [f32]) {
        self.apply(line)
    }
}

impl Op for QuantTable {
    fn name(&self) -> StaticName {
        "KdsrQuantTable".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let how = if self.affine.is_some() {
            "quantize / dequantize"
        } else {
            "quantize / lookup / dequantize"
        };
        Ok(vec![format!(
            "{how}, 1/scale {}, zero point {}, {}..={}",
            self.inv_scale, self.zero_point, self.lo, self.hi
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for QuantTable {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        // In place when the input is not shared (tract hands over the last reference).
        let mut t = x.into_tensor();
        {
            let mut plain = t.try_as_plain_ram_mut()?;
            let values = plain.as_slice_mut::<f32>()?;
            // On tract's executor threads when it has several (the runtime's `--threads`), in
            // a few pieces per thread.
            match current_tract_executor() {
                Executor::MultiThread(pool) if values.len() >= PAR_MIN => {
                    use rayon::prelude::*;
                    let piece = values.len().div_ceil(2 * pool.current_num_threads());
                    pool.install(|| {
                        values
                            .par_chunks_mut(piece.max(PAR_MIN / 4))
                            .for_each(|p| self.apply_fast(p))
                    });
                }
                _ => self.apply_fast(values),
            }
        }
        Ok(tvec!(t.into_tvalue()))
    }
}

impl TypedOp for QuantTable {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == f32::datum_type(),
            "QuantTable: f32 input"
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// The quantization of node `id` when it is a `QuantizeLinear` to u8 or i8: `(s⁻¹, z, range,
/// quantized type)`.
fn quantize_params(node: &TypedNode) -> Option<(f32, i32, (i32, i32), DatumType)> {
    let op = node.op_as::<ElementWiseOp>()?;
    if let Some(q) = op.0.downcast_ref::<QuantizeLinearU8>() {
        return Some((q.scale, q.zero_point as i32, (0, 255), u8::datum_type()));
    }
    let q = op.0.downcast_ref::<QuantizeLinearI8>()?;
    Some((q.scale, q.zero_point as i32, (-128, 127), i8::datum_type()))
}

/// The chain starting at node `id` (see the module docs): the last node (the
/// `DequantizeLinear`) and the op replacing it all.
fn chain(model: &TypedModel, id: usize) -> TractResult<Option<(usize, QuantTable)>> {
    let node = model.node(id);
    let Some((inv_scale, zero_point, (lo, hi), qdt)) = quantize_params(node) else {
        return Ok(None);
    };
    if node.inputs.len() != 1 || model.outlet_fact(node.inputs[0])?.datum_type != f32::datum_type()
    {
        return Ok(None);
    }
    let outputs = model.output_outlets()?.to_vec();
    // The element-wise ops on the quantized values, then the dequantization.
    let mut between = vec![];
    let mut cur = id;
    let dq = loop {
        // A chain whose middle is a model output stays as it is.
        let next = (!outputs.contains(&OutletId::new(cur, 0)))
            .then(|| only_successor(model, cur))
            .flatten();
        let Some(next) = next else {
            return Ok(None);
        };
        let n = model.node(next);
        if let Some(dq) = n.op_as::<DequantizeLinearF32>() {
            break (next, dq.clone());
        }
        let unary_q = n.inputs.len() == 1
            && n.op_is::<ElementWiseOp>()
            && model.outlet_fact(OutletId::new(next, 0))?.datum_type == qdt;
        if !unary_q || between.len() >= 4 {
            return Ok(None);
        }
        between.push(next);
        cur = next;
    };
    let (last, dq) = dq;
    // The chain's own ops on every quantized value, in order (as tract makes its tables).
    let levels: Vec<i32> = (lo..=hi).collect();
    let input = if qdt == u8::datum_type() {
        tensor1(&levels.iter().map(|&q| q as u8).collect::<Vec<_>>())
    } else {
        tensor1(&levels.iter().map(|&q| q as i8).collect::<Vec<_>>())
    };
    let mut adhoc = TypedModel::default();
    let mut wire = adhoc.add_source("levels", qdt.fact([levels.len()]))?;
    for &n in between.iter().chain([&last]) {
        let node = model.node(n);
        wire = adhoc.wire_node(&*node.name, node.op.clone(), &[wire])?[0];
    }
    adhoc.select_output_outlets(&[wire])?;
    let out = SimplePlan::new(adhoc)?
        .run(tvec![input.into_tvalue()])?
        .remove(0)
        .into_tensor();
    let plain = out.try_as_plain_ram()?;
    let values = plain.as_slice::<f32>()?;
    ensure!(values.len() == 256, "QuantTable: {} levels", values.len());
    let mut op = QuantTable::pair(inv_scale, zero_point, (lo, hi), dq.scale, dq.zero_point);
    if values
        .iter()
        .zip(op.table.iter())
        .any(|(a, b)| a.to_bits() != b.to_bits())
    {
        op.affine = None;
        op.table = Arc::new(std::array::from_fn(|i| values[i]));
    }
    Ok(Some((last, op)))
}

/// Replaces every quantize → (element-wise) → dequantize chain of `model` (decluttered) whose
/// input is float32 by [`QuantTable`].
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut found = vec![];
    for id in model.eval_order()? {
        if let Some((last, op)) = chain(model, id)? {
            found.push((id, last, op));
        }
    }
    for (first, last, op) in &found {
        let node = model.node(*first);
        let mut patch = TypedModelPatch::default();
        let tap = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(format!("{}.qdq", node.name), op.clone(), &[tap])?;
        patch.shunt_outside(model, OutletId::new(*last, 0), out[0])?;
        patch.apply(model)?;
    }
    if !found.is_empty() {
        model.compact()?;
    }
    Ok(found.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    /// Values at and around every rounding tie, both ends of the range and far beyond them.
    fn values(inv: f32, zp: i32) -> Vec<f32> {
        // Far beyond, but not so far that tract's `i32` sum overflows.
        let mut v = vec![0.0, -0.0, 1e6, -1e6];
        for k in -300..300 {
            let x = (k - zp) as f32 / inv;
            let half = (k - zp) as f32 + 0.5;
            v.extend([x, half / inv, -half / inv, x * 1.000_001, x * 0.999_999]);
        }
        v
    }

    /// A typed model of `QuantizeLinear` → `DequantizeLinear` over `n` values.
    fn pair_model(q: ElementWiseOp, dq: DequantizeLinearF32, n: usize) -> TypedModel {
        let mut m = TypedModel::default();
        let mut w = m.add_source("x", f32::fact([n])).unwrap();
        w = m.wire_node("q", q, &[w]).unwrap()[0];
        w = m.wire_node("dq", dq, &[w]).unwrap()[0];
        m.select_output_outlets(&[w]).unwrap();
        m
    }

    fn run(m: TypedModel, x: &[f32]) -> Vec<f32> {
        let out = m
            .into_runnable()
            .unwrap()
            .run(tvec![tensor1(x).into_tvalue()])
            .unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    /// `m` rewritten: its one chain replaced by the table op (affine or not), which gives `want`
    /// from `x` bit for bit, alone (plain and at the CPU's widest SIMD level) and in `m`.
    fn check_rewritten(mut m: TypedModel, x: &[f32], want: &[f32], affine: bool, what: &str) {
        assert_eq!(rewrite(&mut m).unwrap(), 1, "{what}");
        let op = m
            .nodes()
            .iter()
            .find_map(|n| n.op_as::<QuantTable>())
            .unwrap()
            .clone();
        assert_eq!(op.affine.is_some(), affine, "{what}");
        for fast in [false, true] {
            let mut got = x.to_vec();
            if fast {
                op.apply_fast(&mut got);
            } else {
                op.apply(&mut got);
            }
            let same = got
                .iter()
                .zip(want)
                .filter(|(a, b)| a.to_bits() == b.to_bits())
                .count();
            assert_eq!(
                same,
                x.len(),
                "{what}, fast {fast}: {same} of {} equal",
                x.len()
            );
        }
        assert_eq!(run(m, x), want, "{what}");
    }

    /// The op gives tract's own quantize / dequantize (and quantize / lookup table / dequantize)
    /// bit for bit, u8 and i8, on values at every rounding tie, at and beyond both ends.
    #[test]
    fn equals_tracts_chain_bit_for_bit() {
        let cases: [(f32, i32, bool); 4] = [
            (1.0 / 0.0123, 131, true),
            (1.0 / 0.05, 0, true),
            (1.0 / 0.0071, 255, true),
            (1.0 / 0.02, -7, false),
        ];
        for (inv, zp, unsigned) in cases {
            let x = values(inv, zp);
            let q = if unsigned {
                tract_onnx::tract_core::ops::quant::quantize_linear_u8(inv, zp as u8)
            } else {
                tract_onnx::tract_core::ops::quant::quantize_linear_i8(inv, zp as i8)
            };
            let dq = DequantizeLinearF32::new(1.0 / inv, zp);
            let m = pair_model(q, dq, x.len());
            let want = run(m.clone(), &x);
            check_rewritten(m, &x, &want, true, &format!("pair 1/{inv} {zp}"));
        }
        // Dequantize → LeakyReLU → quantize between two pairs: tract declutters it into a u8
        // lookup table; the chain quantize → table → dequantize is one op.
        let (inv, zp) = (1.0 / 0.0123f32, 131);
        let x = values(inv, zp);
        let mut m = TypedModel::default();
        let mut w = m.add_source("x", f32::fact([x.len()])).unwrap();
        let q = tract_onnx::tract_core::ops::quant::quantize_linear_u8(inv, zp as u8);
        w = m.wire_node("q", q, &[w]).unwrap()[0];
        w = m
            .wire_node("dq", DequantizeLinearF32::new(1.0 / inv, zp), &[w])
            .unwrap()[0];
        let leaky = tract_onnx::tract_core::ops::nn::leaky_relu(0.2);
        w = m.wire_node("relu", leaky, &[w]).unwrap()[0];
        let (inv2, zp2) = (1.0 / 0.0091f32, 40);
        let q2 = tract_onnx::tract_core::ops::quant::quantize_linear_u8(inv2, zp2 as u8);
        w = m.wire_node("q2", q2, &[w]).unwrap()[0];
        w = m
            .wire_node("dq2", DequantizeLinearF32::new(1.0 / inv2, zp2), &[w])
            .unwrap()[0];
        m.select_output_outlets(&[w]).unwrap();
        let want = run(m.clone(), &x);
        let m = m.into_decluttered().unwrap();
        assert!(
            m.nodes().iter().any(|n| n.op.name() == "LookupTable"),
            "tract made no lookup table: {m}"
        );
        check_rewritten(m, &x, &want, false, "lookup table");
    }
}
