//! Dense 3×3 convolutions (stride 1, dilation 1, one group, padding 1 on every side, float32,
//! NCHW) by Winograd F(4,3): 4× fewer multiplications than the direct product.
//!
//! Per 4×4 output tile and input channel, the 6×6 input patch `d` becomes `V = Bᵀ d B`; the
//! weights `g` of each (output, input) channel pair become `U = G g Gᵀ` once, when the op is
//! built ([`Winograd3x3::new`]); for each of the 36 positions ξ of the 6×6 transform domain
//! `M[ξ] = U[ξ] · V[ξ]` is one matrix product (OC × IC by IC × tiles, `ndarray`'s
//! `general_mat_mul`, which runs the `matrixmultiply` crate's AVX/FMA or NEON sgemm kernels); the
//! output tile is `Aᵀ M A` plus the bias. The matrices are Lavin & Gray's (interpolation points
//! 0, ±1, ±2, ∞), as in ncnn and NNPACK. The padding is read as zeros while patches are
//! gathered, so there is no padded copy of the input.
//!
//! Work is split into chunks of whole tile rows; a chunk runs all three phases (input transform,
//! the 36 products, output transform into its own rows of every output plane) on one thread, so
//! with several threads (tract's executor, the runtime's `--threads`) the chunks run side by side
//! with one hand-off per convolution. Each thread keeps its scratch (transformed input and
//! products) across calls, so steady-state calls allocate only the output.
//!
//! Accuracy: the transforms multiply by small constants (¼, ⅙, 1/12, 1/24, 2, 4, 5, 8), so the
//! result differs from the direct sum by float32 rounding, a little more than F(2,3)'s; `tests`
//! bound it against a naive convolution.

use std::cell::RefCell;
use std::sync::Arc;

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::prelude::tract_ndarray::linalg::general_mat_mul;
use tract_onnx::prelude::tract_ndarray::{ArrayView2, ArrayViewMut2};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Output tile side.
const TILE: usize = 4;
/// Input patch side (`TILE` + 2).
const PATCH: usize = 6;
/// Positions of the transform domain (`PATCH`²).
const XI: usize = PATCH * PATCH;

/// Tiles per chunk aimed at (rounded to whole tile rows): big enough for efficient products,
/// small enough that a chunk's transformed input (`36 × IC × tiles`) stays in L2.
const CHUNK_TILES: usize = 64;

/// Chunks aimed at per thread, so that threads finishing early find work left.
const CHUNKS_PER_THREAD: usize = 4;

/// A 3×3 convolution by Winograd F(4,3) (see the module docs).
#[derive(Debug, Clone)]
pub struct Winograd3x3 {
    /// Input channels.
    pub ic: usize,
    /// Output channels.
    pub oc: usize,
    /// Transformed weights `[36, oc, ic]`.
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

/// `G g` for one column `g` of a 3×3 kernel.
#[inline(always)]
fn g_col([g0, g1, g2]: [f32; 3]) -> [f32; PATCH] {
    [
        g0 / 4.0,
        -(g0 + g1 + g2) / 6.0,
        -(g0 - g1 + g2) / 6.0,
        g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
        g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
        g2,
    ]
}

/// `Bᵀ d` for one column `d` of a 6×6 patch (works lane-wise on rows too).
#[inline(always)]
fn bt_col([d0, d1, d2, d3, d4, d5]: [f32; PATCH]) -> [f32; PATCH] {
    [
        4.0 * d0 - 5.0 * d2 + d4,
        -4.0 * d1 - 4.0 * d2 + d3 + d4,
        4.0 * d1 - 4.0 * d2 - d3 + d4,
        -2.0 * d1 - d2 + 2.0 * d3 + d4,
        2.0 * d1 - d2 - 2.0 * d3 + d4,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// `Aᵀ m` for one column `m` of a 6×6 product.
#[inline(always)]
fn at_col([m0, m1, m2, m3, m4, m5]: [f32; PATCH]) -> [f32; TILE] {
    [
        m0 + m1 + m2 + m3 + m4,
        m1 - m2 + 2.0 * m3 - 2.0 * m4,
        m1 + m2 + 4.0 * m3 + 4.0 * m4,
        m1 - m2 + 8.0 * m3 - 8.0 * m4 + m5,
    ]
}

/// `G g Gᵀ` of one 3×3 kernel (row-major), row-major 6×6.
fn transform_kernel(g: &[f32]) -> [f32; XI] {
    // Columns first: t[r][c] = (G g)[r][c].
    let mut t = [[0f32; 3]; PATCH];
    for c in 0..3 {
        for (r, v) in g_col([g[c], g[3 + c], g[6 + c]]).into_iter().enumerate() {
            t[r][c] = v;
        }
    }
    let mut u = [0f32; XI];
    for (r, row) in t.iter().enumerate() {
        u[r * PATCH..][..PATCH].copy_from_slice(&g_col(*row));
    }
    u
}

/// `out[k][x] = (Bᵀ [d₀[x] … d₅[x]])[k]` for `x < n`: [`bt_col`] on every lane.
#[inline(always)]
fn bt_lanes(d: [&[f32]; PATCH], out: [&mut [f32]; PATCH], n: usize) {
    let [d0, d1, d2, d3, d4, d5] = d.map(|s| &s[..n]);
    let [o0, o1, o2, o3, o4, o5] = out.map(|s| &mut s[..n]);
    for x in 0..n {
        let [r0, r1, r2, r3, r4, r5] = bt_col([d0[x], d1[x], d2[x], d3[x], d4[x], d5[x]]);
        o0[x] = r0;
        o1[x] = r1;
        o2[x] = r2;
        o3[x] = r3;
        o4[x] = r4;
        o5[x] = r5;
    }
}

/// `out[k][x] = (Aᵀ [m₀[x] … m₅[x]])[k]` for `x < n`: [`at_col`] on every lane.
#[inline(always)]
fn at_lanes(m: [&[f32]; PATCH], out: [&mut [f32]; TILE], n: usize) {
    let [m0, m1, m2, m3, m4, m5] = m.map(|s| &s[..n]);
    let [o0, o1, o2, o3] = out.map(|s| &mut s[..n]);
    for x in 0..n {
        let [r0, r1, r2, r3] = at_col([m0[x], m1[x], m2[x], m3[x], m4[x], m5[x]]);
        o0[x] = r0;
        o1[x] = r1;
        o2[x] = r2;
        o3[x] = r3;
    }
}

/// The first `N` rows of `n` values of `buf`, each mutable on its own.
fn split_rows_mut<const N: usize>(buf: &mut [f32], n: usize) -> [&mut [f32]; N] {
    let mut rest = &mut buf[..N * n];
    std::array::from_fn(|_| {
        let (row, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        row
    })
}

/// The first `N` rows of `n` values of `buf`.
fn split_rows<const N: usize>(buf: &[f32], n: usize) -> [&[f32]; N] {
    std::array::from_fn(|i| &buf[i * n..][..n])
}

/// A thread's scratch, kept across calls: the transformed input `[36, ic, tiles]`, the
/// products `[36, oc, tiles]` of its current chunk, and the per-row buffers of the transforms.
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    work: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { v: Vec::new(), m: Vec::new(), work: Vec::new() })
    };
}

/// `buf` with at least `n` elements, its first `n`.
fn at_least(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

impl Winograd3x3 {
    /// Builds the op from OIHW weights `[oc, ic, 3, 3]` and a bias of `oc` values (or none).
    pub fn new(weights: &[f32], bias: Option<&[f32]>, oc: usize, ic: usize) -> TractResult<Self> {
        ensure!(
            weights.len() == oc * ic * 9,
            "Winograd3x3: {oc}×{ic}×3×3 weights expected"
        );
        let mut u = vec![0f32; XI * oc * ic];
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

    /// The convolution of `x` `[n, ic, h, w]` into `y` `[n, oc, h, w]`, on tract's executor
    /// threads when it has several.
    pub fn run(&self, x: &[f32], y: &mut [f32], n: usize, h: usize, w: usize) -> TractResult<()> {
        let pool = match current_tract_executor() {
            Executor::MultiThread(pool) => Some(pool),
            _ => None,
        };
        self.run_on(pool.as_deref(), x, y, n, h, w)
    }

    /// [`Self::run`] on `pool`'s threads, or the calling thread's.
    ///
    /// The image is cut into chunks of whole tile rows; each chunk (one image, tile rows
    /// `ty0..ty1`) gets its own rows `4·ty0 .. min(4·ty1, h)` of every output plane of its image.
    fn run_on(
        &self,
        pool: Option<&rayon::ThreadPool>,
        x: &[f32],
        y: &mut [f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        ensure!(
            x.len() == n * ic * h * w && y.len() == n * oc * h * w,
            "Winograd3x3: buffers do not match [{n}, {ic}|{oc}, {h}, {w}]"
        );
        if n == 0 || h == 0 || w == 0 {
            return Ok(());
        }
        let (th, tw) = (h.div_ceil(TILE), w.div_ceil(TILE));
        let threads = pool.map_or(1, |p| p.current_num_threads());
        let mut rows = (CHUNK_TILES / tw).clamp(1, th);
        if threads > 1 {
            // Enough chunks for every thread, when the image has the rows.
            let per_image = (CHUNKS_PER_THREAD * threads).div_ceil(n);
            rows = rows.min(th.div_ceil(per_image)).max(1);
        }
        let per_image = th.div_ceil(rows);
        // Each chunk's rows of every output plane of its image: bands[job][o].
        let mut bands: Vec<Vec<&mut [f32]>> =
            (0..n * per_image).map(|_| Vec::with_capacity(oc)).collect();
        for (p, plane) in y.chunks_mut(h * w).enumerate() {
            let ni = p / oc;
            for (ci, band) in plane.chunks_mut(rows * TILE * w).enumerate() {
                bands[ni * per_image + ci].push(band);
            }
        }
        let chunk = |(job, mut out): (usize, Vec<&mut [f32]>)| -> TractResult<()> {
            let (ni, ci) = (job / per_image, job % per_image);
            let ty0 = ci * rows;
            let ty1 = (ty0 + rows).min(th);
            let xi = &x[ni * ic * h * w..][..ic * h * w];
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                self.chunk(xi, &mut out, h, w, ty0, ty1, &mut s)
            })
        };
        match pool {
            Some(pool) if bands.len() > 1 => pool.install(|| {
                use rayon::prelude::*;
                bands.into_par_iter().enumerate().try_for_each(chunk)
            }),
            _ => bands.into_iter().enumerate().try_for_each(chunk),
        }
    }

    /// Tile rows `ty0..ty1` of one image: `xi` `[ic, h, w]` into `out`, the rows
    /// `4·ty0 .. min(4·ty1, h)` of each of its `oc` output planes.
    #[allow(clippy::too_many_arguments)]
    fn chunk(
        &self,
        xi: &[f32],
        out: &mut [&mut [f32]],
        h: usize,
        w: usize,
        ty0: usize,
        ty1: usize,
        s: &mut Scratch,
    ) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        let tw = w.div_ceil(TILE);
        let tiles = (ty1 - ty0) * tw;
        let v = at_least(&mut s.v, XI * ic * tiles);
        let m = at_least(&mut s.m, XI * oc * tiles);
        let work = at_least(&mut s.work, work_len(tw));
        for c in 0..ic {
            input_tiles(&xi[c * h * w..][..h * w], h, w, ty0, ty1, c, ic, v, work);
        }
        for k in 0..XI {
            let a = ArrayView2::from_shape((oc, ic), &self.u[k * oc * ic..][..oc * ic])?;
            let b = ArrayView2::from_shape((ic, tiles), &v[k * ic * tiles..][..ic * tiles])?;
            let mut c =
                ArrayViewMut2::from_shape((oc, tiles), &mut m[k * oc * tiles..][..oc * tiles])?;
            general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        }
        for (o, rows) in out.iter_mut().enumerate() {
            self.output_tiles(o, m, tiles, h, w, ty0, ty1, rows, work);
        }
        Ok(())
    }

    /// Output channel `o`'s tile rows `ty0..ty1` from `m` `[36, oc, tiles]`, plus the bias,
    /// into `rows`: output rows `4·ty0 ..` of its plane, `w` wide. Each tile row goes through
    /// `Aᵀ · A` lane-wise (one lane per tile), then its four output rows are interleaved.
    #[allow(clippy::too_many_arguments)]
    fn output_tiles(
        &self,
        o: usize,
        m: &[f32],
        tiles: usize,
        h: usize,
        w: usize,
        ty0: usize,
        ty1: usize,
        rows: &mut [f32],
        work: &mut [f32],
    ) {
        let (oc, tw) = (self.oc, w.div_ceil(TILE));
        let bias = self.bias[o];
        // s: [6 (column l), 4 (row r), tw]; f: [4 (r), 4 (column), tw]; line: 4·tw.
        let (s, rest) = work.split_at_mut(PATCH * TILE * tw);
        let (f, rest) = rest.split_at_mut(TILE * TILE * tw);
        let line = &mut rest[..TILE * tw];
        for ty in ty0..ty1 {
            let t0 = (ty - ty0) * tw;
            let mrow = |k: usize| &m[(k * oc + o) * tiles + t0..][..tw];
            for l in 0..PATCH {
                let col = std::array::from_fn(|i| mrow(i * PATCH + l));
                at_lanes(col, split_rows_mut(&mut s[l * TILE * tw..], tw), tw);
            }
            for r in 0..TILE {
                let row = std::array::from_fn(|l| &s[(l * TILE + r) * tw..][..tw]);
                at_lanes(row, split_rows_mut(&mut f[r * TILE * tw..], tw), tw);
            }
            for r in 0..TILE.min(h - TILE * ty) {
                let [f0, f1, f2, f3] = split_rows::<TILE>(&f[r * TILE * tw..], tw);
                for (tx, q) in line.chunks_exact_mut(TILE).enumerate() {
                    q[0] = f0[tx] + bias;
                    q[1] = f1[tx] + bias;
                    q[2] = f2[tx] + bias;
                    q[3] = f3[tx] + bias;
                }
                let y = TILE * (ty - ty0) + r;
                rows[y * w..][..w].copy_from_slice(&line[..w]);
            }
        }
    }
}

/// The length of the per-row buffers [`input_tiles`] and [`Winograd3x3::output_tiles`] use
/// for `tw` tiles a row.
fn work_len(tw: usize) -> usize {
    let wp = TILE * (tw + 1);
    let input = 2 * PATCH * wp + TILE * (tw + 1) + PATCH * tw;
    let output = PATCH * TILE * tw + TILE * TILE * tw + TILE * tw;
    input.max(output)
}

/// The transformed 6×6 patches of tile rows `ty0..ty1` of input channel `c`'s plane `[h, w]`
/// (zero padding 1), into `v` `[36, ic, tiles]`. Per tile row: its six input rows, zero-padded,
/// go through `Bᵀ ·` lane-wise (one lane per column); each result row is split into its four
/// phases (columns 4·tx + p), so `· B` runs lane-wise too (one lane per tile).
#[allow(clippy::too_many_arguments)]
fn input_tiles(
    plane: &[f32],
    h: usize,
    w: usize,
    ty0: usize,
    ty1: usize,
    c: usize,
    ic: usize,
    v: &mut [f32],
    work: &mut [f32],
) {
    let tw = w.div_ceil(TILE);
    let tiles = (ty1 - ty0) * tw;
    // A padded row holds columns -1 .. 4·tw + 2 of the input (zeros outside it).
    let wp = TILE * (tw + 1);
    let (pad, rest) = work.split_at_mut(PATCH * wp);
    let (tb, rest) = rest.split_at_mut(PATCH * wp);
    let (ph, rest) = rest.split_at_mut(TILE * (tw + 1));
    let hv = &mut rest[..PATCH * tw];
    for ty in ty0..ty1 {
        for (j, row) in pad.chunks_exact_mut(wp).enumerate() {
            let y = (TILE * ty + j).wrapping_sub(1);
            row.fill(0.0);
            if y < h {
                row[1..=w].copy_from_slice(&plane[y * w..][..w]);
            }
        }
        bt_lanes(split_rows(pad, wp), split_rows_mut(tb, wp), wp);
        let t0 = (ty - ty0) * tw;
        for i in 0..PATCH {
            let row = &tb[i * wp..][..wp];
            let [e0, e1, e2, e3] = split_rows_mut::<TILE>(ph, tw + 1);
            for (tx, q) in row.chunks_exact(TILE).enumerate() {
                e0[tx] = q[0];
                e1[tx] = q[1];
                e2[tx] = q[2];
                e3[tx] = q[3];
            }
            let [e0, e1, e2, e3] = split_rows::<TILE>(ph, tw + 1);
            let cols = [
                &e0[..tw],
                &e1[..tw],
                &e2[..tw],
                &e3[..tw],
                &e0[1..],
                &e1[1..],
            ];
            bt_lanes(cols, split_rows_mut(hv, tw), tw);
            for (k, vals) in hv.chunks_exact(tw).enumerate() {
                v[((i * PATCH + k) * ic + c) * tiles + t0..][..tw].copy_from_slice(vals);
            }
        }
    }
}

impl Op for Winograd3x3 {
    fn name(&self) -> StaticName {
        "KdsrWinograd3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("F(4,3), {}→{} channels", self.ic, self.oc)])
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

    /// Random weights and inputs, odd and even sizes, one and two images, several chunks, on
    /// the calling thread and on pools of 2 and 3 threads: within 1e-5 × 9·IC of the f64 direct
    /// sum (values in [-1, 1); float32 rounding of the transforms and products). The threaded
    /// runs must equal the single-threaded one exactly (each chunk does the same arithmetic).
    #[test]
    fn matches_the_direct_sum() {
        let pools: Vec<rayon::ThreadPool> = [2, 3]
            .iter()
            .map(|&t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("pool")
            })
            .collect();
        let mut worst = 0f64;
        for &(n, ic, oc, h, w) in &[
            (1, 3, 5, 7, 9),
            (1, 8, 4, 1, 1),
            (1, 4, 6, 2, 3),
            (2, 4, 3, 5, 6),
            (1, 16, 8, 33, 40),
            (2, 32, 32, 21, 70),
            (1, 3, 2, 61, 500),
        ] {
            let x = values(n * ic * h * w, 1);
            let wts = values(oc * ic * 9, 2);
            let b = values(oc, 3);
            let op = Winograd3x3::new(&wts, Some(&b), oc, ic).expect("op");
            let mut y = vec![0f32; n * oc * h * w];
            op.run_on(None, &x, &mut y, n, h, w).expect("run");
            let bound = 1e-5 * (ic * 9) as f64;
            for ni in 0..n {
                let want = naive(&x[ni * ic * h * w..][..ic * h * w], &wts, &b, ic, oc, h, w);
                let got = &y[ni * oc * h * w..][..oc * h * w];
                for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                    let e = (f64::from(*g) - r).abs();
                    worst = worst.max(e / (ic * 9) as f64);
                    assert!(
                        e <= bound,
                        "{ic}→{oc} {h}x{w} image {ni}: output {i}: {g} vs {r}"
                    );
                }
            }
            for pool in &pools {
                let mut yp = vec![f32::NAN; n * oc * h * w];
                op.run_on(Some(pool), &x, &mut yp, n, h, w).expect("run");
                let same = y.iter().zip(&yp).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{ic}→{oc} {h}x{w} n {n}: {} threads differ",
                    pool.current_num_threads()
                );
            }
        }
        eprintln!("Winograd F(4,3): worst |error| / (9·IC) {worst:.2e}");
    }
}
