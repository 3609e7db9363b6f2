//! ONNX `DepthToSpace` (DCR and CRD modes) as one tract op that writes each output row once.
//!
//! tract-onnx 0.23.9 expands `DepthToSpace` into `Reshape` → `Move` → `Move` → `Reshape`; the two
//! axis moves are strided copies of the whole tensor (the issue-13 profile counted the pair
//! at about a quarter of the folded graph's time). [`rewrite`] finds that chain in a typed model
//! and replaces it with [`DepthToSpace`].

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;

/// `[N, C·b², H, W]` → `[N, C, H·b, W·b]`, float32.
///
/// DCR (`crd = false`): `out[n, c, h·b + i, w·b + j] = in[n, (i·b + j)·C + c, h, w]`;
/// CRD (`crd = true`): `out[n, c, h·b + i, w·b + j] = in[n, c·b² + i·b + j, h, w]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DepthToSpace {
    /// Block size b.
    pub block: usize,
    /// CRD mode (else DCR).
    pub crd: bool,
}

impl DepthToSpace {
    /// Input channel of output channel `c` and block offsets `i`, `j` (`c_out` = C).
    fn source_channel(&self, c: usize, i: usize, j: usize, c_out: usize) -> usize {
        let b = self.block;
        if self.crd {
            c * b * b + i * b + j
        } else {
            (i * b + j) * c_out + c
        }
    }

    /// The op on plain slices: `input` `[n, c·b², h, w]`, `output` `[n, c, h·b, w·b]`.
    pub fn run(&self, input: &[f32], output: &mut [f32], n: usize, c: usize, h: usize, w: usize) {
        let b = self.block;
        let (plane_in, plane_out) = (h * w, h * w * b * b);
        for ni in 0..n {
            let src = &input[ni * c * b * b * plane_in..][..c * b * b * plane_in];
            let dst = &mut output[ni * c * plane_out..][..c * plane_out];
            for (ci, out_plane) in dst.chunks_exact_mut(plane_out).enumerate() {
                for (row, out_row) in out_plane.chunks_exact_mut(w * b).enumerate() {
                    let (y, i) = (row / b, row % b);
                    let source = |j: usize| {
                        let ch = self.source_channel(ci, i, j, c);
                        &src[ch * plane_in + y * w..][..w]
                    };
                    interleave(out_row, b, source);
                }
            }
        }
    }
}

/// `row[x·b + j] = source(j)[x]` for `j < b`: `b` rows of `row.len() / b` values interleaved,
/// written in order when `b` is 2 (the ×4 upsampler's case). Also the Winograd op's fused
/// depth-to-space store.
#[inline(always)]
pub(crate) fn interleave<'a>(row: &mut [f32], b: usize, source: impl Fn(usize) -> &'a [f32]) {
    if b == 2 {
        let (r0, r1) = (source(0), source(1));
        for ((pair, a), z) in row.chunks_exact_mut(2).zip(r0).zip(r1) {
            pair[0] = *a;
            pair[1] = *z;
        }
    } else {
        for j in 0..b {
            for (dst, v) in row[j..].iter_mut().step_by(b).zip(source(j)) {
                *dst = *v;
            }
        }
    }
}

/// [`interleave`] for `b` = 2 with non-temporal stores (x86-64 `movntps`, SSE, which every
/// x86-64 CPU has): the row goes to memory without first being read into the cache, as a
/// plain store does to a line it does not hold. For outputs far larger than the caches (the
/// ×4 upsampler's last convolution writes 118 MB at LR 320×180), that read is half the
/// store's memory traffic. The caller issues [`store_fence`] before anything else reads the
/// rows. Elsewhere (and for rows whose pairs cannot be 16-byte aligned) plain stores.
#[inline(always)]
pub(crate) fn interleave2_streaming(row: &mut [f32], r0: &[f32], r1: &[f32]) {
    let n = row.len() / 2;
    let (r0, r1) = (&r0[..n], &r1[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps, _mm_unpackhi_ps, _mm_unpacklo_ps};
        // Pairs written plainly until the row is 16-byte aligned (when it can be).
        let off = row.as_ptr().align_offset(16);
        if off % 2 == 0 && off / 2 <= n {
            let head = off / 2;
            let quads = (n - head) / 4;
            let tail = head + 4 * quads;
            interleave(&mut row[..2 * head], 2, |j| if j == 0 { r0 } else { r1 });
            let dst = row[2 * head..][..8 * quads].as_mut_ptr();
            let (a, z) = (
                r0[head..][..4 * quads].as_ptr(),
                r1[head..][..4 * quads].as_ptr(),
            );
            for q in 0..quads {
                // SAFETY: q < quads, so the 4 values read from `a` and `z` at 4q and the 8
                // written at 8q lie within the sub-slices above; `dst` is 16-byte aligned
                // (align_offset) and 8q floats are 32 bytes, so both stores are aligned; SSE
                // is part of x86-64.
                #[allow(unsafe_code)]
                unsafe {
                    let va = _mm_loadu_ps(a.add(4 * q));
                    let vz = _mm_loadu_ps(z.add(4 * q));
                    _mm_stream_ps(dst.add(8 * q), _mm_unpacklo_ps(va, vz));
                    _mm_stream_ps(dst.add(8 * q + 4), _mm_unpackhi_ps(va, vz));
                }
            }
            let (t0, t1) = (&r0[tail..], &r1[tail..]);
            interleave(&mut row[2 * tail..], 2, |j| if j == 0 { t0 } else { t1 });
            return;
        }
    }
    interleave(row, 2, |j| if j == 0 { r0 } else { r1 });
}

/// Orders the non-temporal stores of [`interleave2_streaming`] before the stores and loads
/// that follow (x86-64 `sfence`; nothing elsewhere).
#[inline(always)]
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no operands and SSE is part of x86-64.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

impl Op for DepthToSpace {
    fn name(&self) -> StaticName {
        "KdsrDepthToSpace".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "block {}, {}",
            self.block,
            if self.crd { "CRD" } else { "DCR" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DepthToSpace {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(
            shape.len() == 4,
            "DepthToSpace takes a rank-4 input, got {shape:?}"
        );
        let b = self.block;
        let (n, cb, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        ensure!(cb % (b * b) == 0, "DepthToSpace: {cb} channels, block {b}");
        let c = cb / (b * b);
        let mut out = super::output_f32(&[n, c, h * b, w * b])?;
        let src = input.try_as_plain_ram()?;
        let src = src.as_slice::<f32>()?;
        {
            let mut dst = out.try_as_plain_ram_mut()?;
            self.run(src, dst.as_slice_mut::<f32>()?, n, c, h, w);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for DepthToSpace {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let f = inputs[0];
        ensure!(f.datum_type == f32::datum_type(), "DepthToSpace: f32 only");
        ensure!(f.rank() == 4, "DepthToSpace: rank-4 input");
        let b = self.block;
        let s = &f.shape;
        Ok(tvec!(f32::fact([
            s[0].clone(),
            s[1].clone() / (b * b),
            s[2].clone() * b,
            s[3].clone() * b,
        ])))
    }

    as_op!();
}

fn axis_op(model: &TypedModel, node: usize) -> Option<&AxisOp> {
    model.node(node).op_as::<AxisOp>()
}

/// The only successor of `node`'s single output, when it has exactly one.
pub(super) fn only_successor(model: &TypedModel, node: usize) -> Option<usize> {
    let n = model.node(node);
    (n.outputs.len() == 1 && n.outputs[0].successors.len() == 1)
        .then(|| n.outputs[0].successors[0].node)
}

/// The chain tract-onnx wires for `DepthToSpace` starting at `node`: its four nodes and the op.
fn chain(model: &TypedModel, node: usize) -> Option<([usize; 4], DepthToSpace)> {
    let AxisOp::Reshape(1, from, to) = axis_op(model, node)? else {
        return None;
    };
    let input = model.outlet_fact(model.node(node).inputs[0]).ok()?;
    if from.len() != 1
        || to.len() != 3
        || input.rank() != 4
        || input.datum_type != f32::datum_type()
    {
        return None;
    }
    let second = only_successor(model, node)?;
    let third = only_successor(model, second)?;
    let fourth = only_successor(model, third)?;
    let (m1, m2) = (axis_op(model, second)?, axis_op(model, third)?);
    let crd = match (m1, m2) {
        (AxisOp::Move(2, 5), AxisOp::Move(1, 3)) => false,
        (AxisOp::Move(3, 5), AxisOp::Move(2, 3)) => true,
        _ => return None,
    };
    let b = if crd { &to[1] } else { &to[0] };
    let b = b.to_usize().ok()?;
    let (b0, b1) = if crd {
        (&to[1], &to[2])
    } else {
        (&to[0], &to[1])
    };
    if b0 != b1 || b < 2 {
        return None;
    }
    let AxisOp::Reshape(2, of, ot) = axis_op(model, fourth)? else {
        return None;
    };
    (of.len() == 4 && ot.len() == 2).then_some((
        [node, second, third, fourth],
        DepthToSpace { block: b, crd },
    ))
}

/// Replaces every `DepthToSpace` chain of `model` by [`DepthToSpace`]; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut done = 0;
    loop {
        let found = model
            .eval_order()?
            .into_iter()
            .find_map(|n| chain(model, n));
        let Some(([first, .., last], op)) = found else {
            return Ok(done);
        };
        let mut patch = TypedModelPatch::default();
        let tap = patch.tap_model(model, model.node(first).inputs[0])?;
        let name = model.node(first).name.trim_end_matches(".0").to_owned();
        let out = patch.wire_node(name, op, &[tap])?;
        patch.shunt_outside(model, OutletId::new(last, 0), out[0])?;
        patch.apply(model)?;
        done += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The op against ONNX's definition (reshape, transpose, reshape) written out per element.
    #[test]
    fn matches_the_onnx_definition() {
        for crd in [false, true] {
            for &(n, c, h, w, b) in &[(1, 3, 4, 5, 2), (2, 2, 3, 3, 3), (1, 32, 7, 9, 2)] {
                let op = DepthToSpace { block: b, crd };
                let input: Vec<f32> = (0..n * c * b * b * h * w).map(|v| v as f32).collect();
                let mut out = vec![0f32; input.len()];
                op.run(&input, &mut out, n, c, h, w);
                for ni in 0..n {
                    for ci in 0..c {
                        for y in 0..h * b {
                            for x in 0..w * b {
                                let (i, j) = (y % b, x % b);
                                let ch = if crd {
                                    ci * b * b + i * b + j
                                } else {
                                    (i * b + j) * c + ci
                                };
                                let want = input[((ni * c * b * b + ch) * h + y / b) * w + x / b];
                                let got = out[((ni * c + ci) * h * b + y) * w * b + x];
                                assert_eq!(got, want, "crd {crd} n{ni} c{ci} y{y} x{x}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The streaming interleave writes what the plain one writes, the whole row and nothing
    /// past it, for rows starting at every 4-byte offset from a 16-byte boundary (odd ones
    /// cannot align their pairs and take the plain stores) and of every length up to 21 pairs
    /// (plain head, streamed groups of 4 pairs, plain tail).
    #[test]
    fn the_streaming_interleave_equals_the_plain_one() {
        let r0: Vec<f32> = (0..21).map(|v| v as f32).collect();
        let r1: Vec<f32> = (0..21).map(|v| -1.0 - v as f32).collect();
        for start in 0..4 {
            for n in 0..=21 {
                // Room for up to 3 floats before the first 16-byte boundary (a Vec<f32> is
                // only 4-byte aligned), 3 more, 42 values and NaN after them.
                let mut want = vec![f32::NAN; 64];
                let base = want.as_ptr().align_offset(16);
                let mut got = want.clone();
                let at = base + start;
                interleave(
                    &mut want[at..][..2 * n],
                    2,
                    |j| if j == 0 { &r0 } else { &r1 },
                );
                interleave2_streaming(&mut got[at..][..2 * n], &r0, &r1);
                store_fence();
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "start {start}, {n} pairs: {got:?} against {want:?}");
            }
        }
    }
}
