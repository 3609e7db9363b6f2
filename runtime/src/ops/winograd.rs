//! Dense 3×3 convolutions (stride 1, dilation 1, one group, padding 1 on every side, float32,
//! NCHW) by Winograd F(2,3): 2.25× fewer multiplications than the direct product.
//!
//! Per 2×2 output tile and input channel, the 4×4 input patch `d` becomes `V = Bᵀ d B`; the
//! weights `g` of each (output, input) channel pair become `U = G g Gᵀ` once, when the op is
//! built ([`Winograd3x3::new`]); for each of the 16 positions ξ of the 4×4 transform domain
//! `M[ξ] = U[ξ] · V[ξ]` is one matrix product (OC × IC by IC × tiles, `ndarray`'s
//! `general_mat_mul`, which runs the `matrixmultiply` crate's AVX/FMA or NEON sgemm kernels); the
//! output tile is `Aᵀ m A` plus the bias. The padding is read as zeros while patches are
//! gathered, so there is no padded copy of the input. Tiles are processed in chunks of whole
//! tile rows, in parallel on tract's executor (the runtime's threads) when it has several.
//!
//! Accuracy: the transforms only add, subtract and halve, so the result differs from the direct
//! sum by float32 rounding; `tests` bound it against a naive convolution.

use std::sync::Arc;

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::prelude::tract_ndarray::linalg::general_mat_mul;
use tract_onnx::prelude::tract_ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Tiles per chunk aimed at (rounded to whole tile rows): big enough for efficient products and
/// few thread hand-offs, small enough that a chunk's transformed input and products stay small.
const CHUNK_TILES: usize = 256;

/// A 3×3 convolution by Winograd F(2,3) (see the module docs).
#[derive(Debug, Clone)]
pub struct Winograd3x3 {
    /// Input channels.
    pub ic: usize,
    /// Output channels.
    pub oc: usize,
    /// Transformed weights `[16, oc, ic]`.
    u: Arc<Vec<f32>>,
    /// `[oc]`.
    bias: Arc<Vec<f32>>,
}

/// Equal when built from bitwise-equal weights and bias (tract compares ops to merge nodes).
impl PartialEq for Winograd3x3 {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        self.ic == other.ic
            && self.oc == other.oc
            && bits(&self.u) == bits(&other.u)
            && bits(&self.bias) == bits(&other.bias)
    }
}

impl Eq for Winograd3x3 {}

/// `G g Gᵀ` of one 3×3 kernel (row-major), row-major 4×4.
fn transform_kernel(g: &[f32]) -> [f32; 16] {
    let mut t = [[0f32; 3]; 4];
    for c in 0..3 {
        let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
        t[0][c] = g0;
        t[1][c] = 0.5 * (g0 + g1 + g2);
        t[2][c] = 0.5 * (g0 - g1 + g2);
        t[3][c] = g2;
    }
    let mut u = [0f32; 16];
    for r in 0..4 {
        let [a, b, c] = t[r];
        u[r * 4] = a;
        u[r * 4 + 1] = 0.5 * (a + b + c);
        u[r * 4 + 2] = 0.5 * (a - b + c);
        u[r * 4 + 3] = c;
    }
    u
}

/// `Bᵀ d B` of one 4×4 patch, in place (row-major).
#[inline(always)]
fn transform_input(d: &mut [f32; 16]) {
    for c in 0..4 {
        let (d0, d1, d2, d3) = (d[c], d[4 + c], d[8 + c], d[12 + c]);
        d[c] = d0 - d2;
        d[4 + c] = d1 + d2;
        d[8 + c] = d2 - d1;
        d[12 + c] = d1 - d3;
    }
    for r in 0..4 {
        let (x0, x1, x2, x3) = (d[r * 4], d[r * 4 + 1], d[r * 4 + 2], d[r * 4 + 3]);
        d[r * 4] = x0 - x2;
        d[r * 4 + 1] = x1 + x2;
        d[r * 4 + 2] = x2 - x1;
        d[r * 4 + 3] = x1 - x3;
    }
}

/// `Aᵀ m A` of one 4×4 product, row-major 2×2.
#[inline(always)]
fn transform_output(m: &[f32; 16]) -> [f32; 4] {
    let mut s = [[0f32; 4]; 2];
    for c in 0..4 {
        let (m0, m1, m2, m3) = (m[c], m[4 + c], m[8 + c], m[12 + c]);
        s[0][c] = m0 + m1 + m2;
        s[1][c] = m1 - m2 - m3;
    }
    [
        s[0][0] + s[0][1] + s[0][2],
        s[0][1] - s[0][2] - s[0][3],
        s[1][0] + s[1][1] + s[1][2],
        s[1][1] - s[1][2] - s[1][3],
    ]
}

impl Winograd3x3 {
    /// Builds the op from OIHW weights `[oc, ic, 3, 3]` and a bias of `oc` values (or none).
    pub fn new(weights: &[f32], bias: Option<&[f32]>, oc: usize, ic: usize) -> TractResult<Self> {
        ensure!(
            weights.len() == oc * ic * 9,
            "Winograd3x3: {oc}×{ic}×3×3 weights expected"
        );
        let mut u = vec![0f32; 16 * oc * ic];
        for o in 0..oc {
            for i in 0..ic {
                let t = transform_kernel(&weights[(o * ic + i) * 9..][..9]);
                for (xi, v) in t.iter().enumerate() {
                    u[(xi * oc + o) * ic + i] = *v;
                }
            }
        }
        let bias = match bias {
            Some(b) => {
                ensure!(
                    b.len() == oc,
                    "Winograd3x3: bias of {} values, {oc} expected",
                    b.len()
                );
                b.to_vec()
            }
            None => vec![0.0; oc],
        };
        Ok(Self {
            ic,
            oc,
            u: Arc::new(u),
            bias: Arc::new(bias),
        })
    }

    /// The convolution of `x` `[n, ic, h, w]` into `y` `[n, oc, h, w]`.
    ///
    /// Tiles go in chunks of whole tile rows; per chunk three phases, each split over the
    /// executor's threads: input transform (per input channel, into `v` `[ic, 16, tiles]`), the
    /// 16 products (per ξ, into `m` `[16, oc, tiles]`), output transform (per output channel,
    /// straight into `y`). `v` and `m` are allocated once per call.
    pub fn run(&self, x: &[f32], y: &mut [f32], n: usize, h: usize, w: usize) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
        let rows_per_chunk = (CHUNK_TILES / tw.max(1)).max(1).min(th.max(1));
        let cap = rows_per_chunk * tw;
        let mut v = vec![0f32; ic * 16 * cap];
        let mut m = vec![0f32; 16 * oc * cap];
        let pool = match current_tract_executor() {
            Executor::MultiThread(pool) => Some(pool),
            _ => None,
        };
        for ni in 0..n {
            let xi = &x[ni * ic * h * w..][..ic * h * w];
            let yi = &mut y[ni * oc * h * w..][..oc * h * w];
            for ty0 in (0..th).step_by(rows_per_chunk) {
                let ty1 = (ty0 + rows_per_chunk).min(th);
                let tiles = (ty1 - ty0) * tw;
                let v = &mut v[..ic * 16 * tiles];
                let m = &mut m[..16 * oc * tiles];
                let pool = pool.as_deref();
                each_chunk(pool, v, 16 * tiles, |(c, vc)| {
                    input_tiles(&xi[c * h * w..][..h * w], h, w, ty0, ty1, vc);
                    Ok(())
                })?;
                each_chunk(pool, m, oc * tiles, |(k, mk)| self.product(k, v, tiles, mk))?;
                each_chunk(pool, yi, h * w, |(o, yo)| {
                    self.output_tiles(o, m, tiles, h, w, ty0, ty1, yo);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// `m[ξ] = U[ξ] · V[ξ]` (`oc × ic` by `ic × tiles`); `v` is `[ic, 16, tiles]`.
    fn product(&self, xi: usize, v: &[f32], tiles: usize, mx: &mut [f32]) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        let a = ArrayView2::from_shape((oc, ic), &self.u[xi * oc * ic..][..oc * ic]);
        let b = ArrayView2::from_shape(
            (ic, tiles).strides((16 * tiles, 1)),
            &v[xi * tiles..][..(ic - 1) * 16 * tiles + tiles],
        );
        let mut c = ArrayViewMut2::from_shape((oc, tiles), mx)?;
        general_mat_mul(1.0, &a?, &b?, 0.0, &mut c);
        Ok(())
    }

    /// Output channel `o`'s tile rows `ty0..ty1` from `m` `[16, oc, tiles]`, plus the bias,
    /// into its plane `yo` `[h, w]`.
    fn output_tiles(
        &self,
        o: usize,
        m: &[f32],
        tiles: usize,
        h: usize,
        w: usize,
        ty0: usize,
        ty1: usize,
        yo: &mut [f32],
    ) {
        let (oc, tw) = (self.oc, w.div_ceil(2));
        let bias = self.bias[o];
        for ty in ty0..ty1 {
            for tx in 0..tw {
                let t = (ty - ty0) * tw + tx;
                let mut p = [0f32; 16];
                for (xi, val) in p.iter_mut().enumerate() {
                    *val = m[(xi * oc + o) * tiles + t];
                }
                let y4 = transform_output(&p);
                for r in 0..2 {
                    let y = 2 * ty + r;
                    if y >= h {
                        continue;
                    }
                    for k in 0..2 {
                        let xx = 2 * tx + k;
                        if xx < w {
                            yo[y * w + xx] = y4[r * 2 + k] + bias;
                        }
                    }
                }
            }
        }
    }
}

/// `f` on every `size`-long chunk of `data` (with its index), on `pool`'s threads when there is
/// one.
fn each_chunk<F>(
    pool: Option<&rayon::ThreadPool>,
    data: &mut [f32],
    size: usize,
    f: F,
) -> TractResult<()>
where
    F: Fn((usize, &mut [f32])) -> TractResult<()> + Sync + Send,
{
    match pool {
        Some(pool) => pool.install(|| {
            use rayon::prelude::*;
            data.par_chunks_mut(size).enumerate().try_for_each(f)
        }),
        None => data.chunks_mut(size).enumerate().try_for_each(f),
    }
}

/// The transformed 4×4 patches of tile rows `ty0..ty1` of one input plane `[h, w]` (zero
/// padding 1), into `vc` `[16, tiles]`.
fn input_tiles(plane: &[f32], h: usize, w: usize, ty0: usize, ty1: usize, vc: &mut [f32]) {
    let tw = w.div_ceil(2);
    let tiles = (ty1 - ty0) * tw;
    for ty in ty0..ty1 {
        for tx in 0..tw {
            let mut d = [0f32; 16];
            for r in 0..4 {
                let y = (2 * ty + r) as isize - 1;
                if y < 0 || y >= h as isize {
                    continue;
                }
                let row = &plane[y as usize * w..][..w];
                for k in 0..4 {
                    let xx = (2 * tx + k) as isize - 1;
                    if xx >= 0 && xx < w as isize {
                        d[r * 4 + k] = row[xx as usize];
                    }
                }
            }
            transform_input(&mut d);
            let t = (ty - ty0) * tw + tx;
            for (xi, val) in d.iter().enumerate() {
                vc[xi * tiles + t] = *val;
            }
        }
    }
}

impl Op for Winograd3x3 {
    fn name(&self) -> StaticName {
        "KdsrWinograd3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("F(2,3), {}→{} channels", self.ic, self.oc)])
    }

    op_as_typed_op!();
}

impl EvalOp for Winograd3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        ensure!(
            shape.len() == 4 && shape[1] == self.ic,
            "Winograd3x3: input {shape:?}, [n, {}, h, w] expected",
            self.ic
        );
        let (n, h, w) = (shape[0], shape[2], shape[3]);
        let mut out = Tensor::zero::<f32>(&[n, self.oc, h, w])?;
        let src = input.try_as_plain_ram()?;
        {
            let mut dst = out.try_as_plain_ram_mut()?;
            self.run(src.as_slice::<f32>()?, dst.as_slice_mut::<f32>()?, n, h, w)?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Winograd3x3 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let f = inputs[0];
        ensure!(
            f.datum_type == f32::datum_type() && f.rank() == 4,
            "Winograd3x3: f32 NCHW"
        );
        Ok(tvec!(f32::fact([
            f.shape[0].clone(),
            self.oc.to_dim(),
            f.shape[2].clone(),
            f.shape[3].clone(),
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct sum, zero padding 1, in f64.
    fn naive(
        x: &[f32],
        wts: &[f32],
        b: &[f32],
        ic: usize,
        oc: usize,
        h: usize,
        w: usize,
    ) -> Vec<f64> {
        let mut y = vec![0f64; oc * h * w];
        for o in 0..oc {
            for yy in 0..h {
                for xx in 0..w {
                    let mut s = f64::from(b[o]);
                    for i in 0..ic {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (sy, sx) =
                                    (yy as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                    s += f64::from(x[(i * h + sy as usize) * w + sx as usize])
                                        * f64::from(wts[((o * ic + i) * 3 + ky) * 3 + kx]);
                                }
                            }
                        }
                    }
                    y[(o * h + yy) * w + xx] = s;
                }
            }
        }
        y
    }

    /// A deterministic pseudo-random sequence in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Random weights and inputs, odd and even sizes, several chunks: within 1e-5 × the sum of
    /// |terms| of each output (float32 rounding of the transforms and products).
    #[test]
    fn matches_the_direct_sum() {
        for &(ic, oc, h, w) in &[
            (3, 5, 7, 9),
            (8, 4, 1, 1),
            (4, 6, 2, 3),
            (16, 8, 33, 40),
            (3, 2, 61, 500),
        ] {
            let x = values(ic * h * w, 1);
            let wts = values(oc * ic * 9, 2);
            let b = values(oc, 3);
            let op = Winograd3x3::new(&wts, Some(&b), oc, ic).expect("op");
            let mut y = vec![0f32; oc * h * w];
            op.run(&x, &mut y, 1, h, w).expect("run");
            let want = naive(&x, &wts, &b, ic, oc, h, w);
            let bound = 1e-5 * (ic * 9) as f64;
            for (i, (g, r)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(*g) - r).abs() <= bound,
                    "{ic}→{oc} {h}x{w}: output {i}: {g} vs {r}"
                );
            }
        }
    }
}
