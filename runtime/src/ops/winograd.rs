//! Dense 3×3 convolutions (stride 1, dilation 1, one group, padding 1 on every side, float32,
//! NCHW) by Winograd F(m,3) ([`Tile`]): F(6,3) does 5.06× fewer multiplications than the
//! direct product, F(4,3) 4×. By default each call picks by the input's size and the CPU
//! ([`TileChoice`]): F(6,3), unless the input is too small to give every thread chunks of 6×6
//! tiles big enough for efficient products, or the CPU has AVX-512, where F(4,3) measured faster
//! at every size (`f63_pays`).
//!
//! Per m×m output tile and input channel, the (m+2)×(m+2) input patch `d` becomes `V = Bᵀ d B`;
//! the weights `g` of each (output, input) channel pair become `U = G g Gᵀ` once, when the op is
//! built ([`Winograd3x3::new`]); for each of the (m+2)² positions ξ of the transform domain
//! `M[ξ] = U[ξ] · V[ξ]` is one matrix product (OC × IC by IC × tiles, `ndarray`'s
//! `general_mat_mul`, which runs the `matrixmultiply` crate's AVX-512F, AVX2+FMA or NEON sgemm
//! kernel, whichever the CPU has; the workspace turns on the crate's `avx512` feature); the
//! output tile is `Aᵀ M A` plus the bias. F(4,3)'s matrices are Lavin & Gray's (interpolation
//! points 0, ±1, ±2, ∞), as in ncnn and NNPACK; F(6,3)'s are ncnn's (0, ±1, ±2, ±½, ∞). The
//! padding is read as zeros while patches are gathered, so there is no padded copy of the input.
//!
//! Convolutions with at most [`DIRECT_MAX_OC`] output channels (the SR network's 32→3 tail)
//! compute by 1×1 products and shifted sums instead ([`Winograd3x3::direct_rows`]).
//!
//! What follows the convolution alone in the graph can be fused into the output store
//! ([`Epilogue`]: a LeakyReLU, a residual add, a depth-to-space; `super::rewrite_decluttered`
//! does it): the output row is finished in a row buffer and written once, where the graph would
//! otherwise make one more pass over the whole tensor per op (for the ×4 upsampler's last
//! convolution a 118 MB tensor at LR 320×180). A few-output-channel convolution reading the
//! result of a depth-to-space (the tail) is fused too ([`Epilogue::then`]): it is computed from
//! bands of finished rows while they are in the cache, and the 118 MB tensor is never written.
//!
//! Work is split into chunks of whole tile rows; a chunk runs all three phases (input transform,
//! the products, output transform into its own rows of every output plane) on one thread, so
//! with several threads (tract's executor, the runtime's `--threads`) the chunks run side by side
//! with one hand-off per convolution. Each thread keeps its scratch (transformed input and
//! products) across calls, so steady-state calls allocate only the output.
//!
//! The transforms are lane-wise loops that the compiler vectorizes: `Bᵀ ·` on the input runs
//! over an input row (one lane per column), `· B` and both halves of `Aᵀ · A` over all the
//! chunk's tiles at once (one lane per tile; for a 64×64 image a pass per tile row of 16 tiles
//! spent more in loop overhead than in arithmetic, and the whole-chunk passes made the 64→64
//! convolution at 64×64 ~1/3 faster); on x86-64 the
//! chunk is also compiled for AVX2+FMA and for AVX-512 and the widest the CPU has runs (the
//! binary's baseline is SSE2). Each loop takes its rows as parameters of a function of its own
//! (`lanes!`), which is what lets the compiler vectorize it in every transform. F(4,3)'s
//! gathers of tile columns, which the compiler left scalar, are vector shuffles
//! (`super::tiles`). tract-linalg's own packed kernels (AVX-512 16×12 and the rest)
//! were tried for the products and were slower at these shapes (M = OC, K = IC = 32, N ≈ 64
//! tiles; 118 vs 84 ms for the upsampler's 32→128 convolution at 360×640, one thread, timed with
//! a scratch version not kept in the repo), as they spend more per kernel tile than
//! `matrixmultiply` at K = 32.
//!
//! Accuracy: the transforms multiply by small constants (F(4,3): ¼, ⅙, 1/12, 1/24, 2, 4, 5, 8;
//! F(6,3) also 2/9, 1/45, 1/90, 1/180, 4.25, 5.25, 16, 32), so the result differs from the
//! direct sum by float32 rounding, more for the larger tile; `tests` bound each against a naive
//! convolution.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::prelude::tract_ndarray::linalg::general_mat_mul;
use tract_onnx::prelude::tract_ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::amx::{self, Bf16Rows, Bf16Weights};
use super::depthwise::Depthwise;
use super::qdq::QuantTable;

/// Outputs of at least this many bytes with a fused depth-to-space by 2 are written with
/// non-temporal stores (`depth_to_space::interleave2_streaming`), which do not read the
/// output's cache lines before writing them: far larger than the caches, nothing that follows
/// finds them there anyway. The ×4 upsampler's second convolution (118 MB at LR 320×180) took
/// 86–87 against 92–96 ms alone (`winograd-op` example, 32→128 at 640×360, minimum of 10 calls,
/// 4 interleaved rounds, Zen 3 VM), and the split SR graph 221–239 against 225–245 ms on one
/// thread (`kdsr-edge bench`, minimum of 20 calls, 6 interleaved rounds), within the noise on
/// two (121–133 against 122–134 ms). Streaming the first upsampler convolution's output too (29
/// MB, about the size of that VM's L3 cache, and read by the next convolution) was no better on
/// one thread and slower on two.
const STREAM_MIN_BYTES: usize = 64 << 20;

/// The few-output-channel path ([`Winograd3x3::direct_rows`]) cuts its chunks into whole bands
/// of this many output rows (one band a chunk, the last one shorter): each chunk computes the
/// 1×1 products of its rows plus one on each side, so shorter chunks would repeat more of them
/// (2 in 34 here).
const DIRECT_ROWS: usize = 32;

/// Convolutions with at most this many output channels (and no depth-to-space) compute the
/// 1×1 products and shifted sums instead of Winograd's (see [`Winograd3x3::direct_rows`]).
const DIRECT_MAX_OC: usize = 4;

/// Chunks aimed at per thread, so that threads finishing early find work left (4 made the
/// chunks of small images too small: random student-M at 64×64 on 2 threads took ~140 ms
/// against ~115 with 2 and 1, `kdsr-edge bench`, 4 interleaved rounds).
const CHUNKS_PER_THREAD: usize = 2;

/// Output pixels per chunk of the AMX bf16 path (whole rows, at least one): its input rows,
/// two more than its output rows, converted to bf16 pairs stay in the L2 cache.
const AMX_CHUNK: usize = 8192;

/// A Winograd algorithm: F(m,3), m×m output tiles from (m+2)×(m+2) input patches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tile {
    /// F(4,3): 36 products per tile of 16 outputs.
    F43,
    /// F(6,3): 64 products per tile of 36 outputs; its rounding error is a little larger (see
    /// `tests`).
    F63,
}

/// Which [`Tile`] an op runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TileChoice {
    /// Always this one.
    Fixed(Tile),
    /// Per call, by the input's size and the CPU: F(6,3) when it has at least
    /// [`F63_MIN_TILES`] 6×6 tiles per thread and the CPU is one where F(6,3) pays
    /// (`f63_pays`: not with AVX-512), else F(4,3).
    #[default]
    BySize,
}

/// [`TileChoice::BySize`]'s rule for `tiles` 6×6 tiles on `threads` threads: F(6,3) from
/// [`F63_MIN_TILES`] tiles per thread where it pays on this CPU ([`f63_pays`]), else F(4,3).
fn tile_by_size(tiles: usize, threads: usize, f63_pays: bool) -> Tile {
    if f63_pays && tiles >= F63_MIN_TILES * threads.max(1) {
        Tile::F63
    } else {
        Tile::F43
    }
}

/// Whether F(6,3)'s fewer products pay for its costlier transforms on this CPU: not where
/// `matrixmultiply` runs its AVX-512 sgemm (measured; presumably its products are cheap enough
/// there that F(4,3)'s cheaper transforms weigh more). On the 2-vCPU Intel Xeon VM (AVX-512,
/// 2026-12-06; `kdsr-edge bench --direct-spatial auto --iters 9`, `--iters 5` at 640×360,
/// `KDSR_EDGE_OPS=depth-to-space,winograd-f43,qdq` against `…-f63…`, rounds interleaved,
/// minimum per round) F(4,3) was faster in every round: split SR 320×180 one thread 228–272
/// against 259–300 ms (6 rounds), folded 320×180 one thread 217–226 against 248–263 ms and two
/// threads 117–140 against 135–154 ms (4 rounds each), split SR 640×360 one thread 937–1009
/// against 1083–1152 ms (3 rounds). Elsewhere the size rule measured on AVX2 (Zen 3) stands;
/// on NEON it is not measured.
fn f63_pays() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// [`TileChoice::BySize`]'s threshold. On a Zen 3 VM (`kdsr-edge bench`, split SR of
/// student-edge, interleaved, minimum of 20 calls) F(6,3) was faster than F(4,3) from 128×128
/// up on one thread (83 against 94 ms; 320×180: ~6 %) and from 192×108 on two (55 against 61
/// ms), level at 128×128 on two (242 tiles per thread) and at 64×64 on one (121 tiles), and
/// slower at 64×64 on two (60 tiles a thread: 15.6–16.3 against 13.8–14.4 ms), where its chunks
/// are too small for efficient products.
pub const F63_MIN_TILES: usize = 128;

impl Tile {
    /// Output tile side m.
    pub fn side(self) -> usize {
        match self {
            Tile::F43 => 4,
            Tile::F63 => 6,
        }
    }

    /// Tiles per chunk aimed at (rounded to whole tile rows): big enough for efficient
    /// products (N = tiles), and for F(4,3) small enough that a chunk's transformed input
    /// (`36 × IC × tiles`) stays in L2. F(6,3) at 256 tiles (~2 MB at IC 32) was faster than at
    /// 64 on a Zen 3 (the `winograd-op` example; runtime/README.md).
    fn chunk_tiles(self) -> usize {
        match self {
            Tile::F43 => 64,
            Tile::F63 => 256,
        }
    }
}

/// `f43` or `f63`, as `KDSR_EDGE_OPS` names them (`winograd-f43`).
impl std::str::FromStr for Tile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f43" => Ok(Tile::F43),
            "f63" => Ok(Tile::F63),
            _ => Err(format!("`{s}`: f43 or f63")),
        }
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "F({},3)", self.side())
    }
}

/// One Winograd algorithm F(T,3), `P = T + 2`: its transforms, one column or lane-wise.
trait Algorithm<const T: usize, const P: usize> {
    /// `G g` for one column `g` of a 3×3 kernel.
    fn g_col(g: [f32; 3]) -> [f32; P];
    /// `out[k][x] = (Bᵀ [d₀[x] … d_P₋₁[x]])[k]` for `x < n`: `Bᵀ ·` on every lane.
    fn bt_lanes(d: [&[f32]; P], out: RowsMut, n: usize);
    /// `out[k][x] = (Aᵀ [m₀[x] … m_P₋₁[x]])[k]` for `x < n`: `Aᵀ ·` on every lane.
    fn at_lanes(m: [&[f32]; P], out: RowsMut, n: usize);
    /// `out[c][t] = row[T·t + c]` for every whole tile `t` of `row` that the rows `out` have
    /// room for: a row of tiles split into one row per column of the tile.
    fn split_tiles(row: &[f32], out: RowsMut);
    /// `line[T·t + c] = f[c][t] + bias` for every whole tile `t` of `line`: the inverse of
    /// [`Self::split_tiles`], plus the bias.
    fn join_tiles(line: &mut [f32], f: [&[f32]; T], bias: f32);
}

/// Rows of `n` values of `buf`, the first at its start and each `stride` after the last
/// (`n ≤ stride`): where a transform writes, each row bound to a name of its own by
/// [`rows_mut!`].
///
/// The transforms take their rows this way and their input rows from [`row_array`], not as
/// arrays built by `std::array::from_fn`: the op's chunk functions are large, the compiler did
/// not inline `from_fn`'s machinery (`try_from_fn`) into them, and those calls, a few per row,
/// took ~4 % of the split SR graph's time (`perf`, Intel Xeon, 2026-12-06).
struct RowsMut<'a> {
    buf: &'a mut [f32],
    stride: usize,
    n: usize,
}

impl<'a> RowsMut<'a> {
    /// Rows `stride` apart.
    #[inline(always)]
    fn strided(buf: &'a mut [f32], stride: usize, n: usize) -> Self {
        RowsMut { buf, stride, n }
    }

    /// Rows one after the other.
    #[inline(always)]
    fn packed(buf: &'a mut [f32], n: usize) -> Self {
        RowsMut { buf, stride: n, n }
    }

    /// The first row, and the rows after it.
    #[inline(always)]
    fn next(self) -> (&'a mut [f32], Self) {
        let RowsMut { buf, stride, n } = self;
        let (row, rest) = buf.split_at_mut(stride.min(buf.len()));
        (
            &mut row[..n],
            RowsMut {
                buf: rest,
                stride,
                n,
            },
        )
    }
}

/// Binds the first rows of a [`RowsMut`] to the names given, one `let` each.
macro_rules! rows_mut {
    ($rows:expr => [$($o:ident),+]) => {
        let rest: RowsMut = $rows;
        $(let ($o, rest) = rest.next();)+
        let _ = rest;
    };
}

/// A lane-wise transform: `out[k][x] = col([inp₀[x], inp₁[x], …])[k]` for `x < n`.
///
/// The loop is a function of its own with each row a parameter, so that the compiler knows the
/// output rows alias neither each other nor the inputs (`&mut` parameters; the knowledge stays
/// when it inlines the function) and that each is `n` long: it vectorizes with no bounds checks
/// and no overlap tests. Rows taken from arrays or split off one buffer inside the chunk's
/// function left some transforms scalar (F(4,3)'s input transform: ~18 % of the op's own code
/// in a 32→32 convolution, `perf` on an Intel Xeon, 2026-12-06), which ones depending on code
/// elsewhere.
macro_rules! lanes {
    ($col:path, $inp:expr => [$($i:ident),+], $out:expr => [$($o:ident),+], $n:expr) => {{
        const I: usize = [$(stringify!($i)),+].len();
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn lanes<const O: usize>(
            col: impl Fn([f32; I]) -> [f32; O],
            $($i: &[f32],)+
            $($o: &mut [f32],)+
            n: usize,
        ) {
            $(let $i = &$i[..n];)+
            $(let $o = &mut $o[..n];)+
            for x in 0..n {
                let r = col([$($i[x]),+]);
                let mut k = 0;
                $(
                    $o[x] = r[k];
                    k += 1;
                )+
                debug_assert_eq!(k, O);
            }
        }
        let [$($i),+] = $inp;
        rows_mut!($out => [$($o),+]);
        lanes($col, $($i,)+ $($o,)+ $n);
    }};
}

/// Winograd F(4,3) (Lavin & Gray's matrices).
struct F43;

impl F43 {
    /// `Bᵀ d` for one column `d` of a 6×6 patch.
    #[inline(always)]
    fn bt_col([d0, d1, d2, d3, d4, d5]: [f32; 6]) -> [f32; 6] {
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
    fn at_col([m0, m1, m2, m3, m4, m5]: [f32; 6]) -> [f32; 4] {
        [
            m0 + m1 + m2 + m3 + m4,
            m1 - m2 + 2.0 * m3 - 2.0 * m4,
            m1 + m2 + 4.0 * m3 + 4.0 * m4,
            m1 - m2 + 8.0 * m3 - 8.0 * m4 + m5,
        ]
    }
}

impl Algorithm<4, 6> for F43 {
    #[inline(always)]
    fn g_col([g0, g1, g2]: [f32; 3]) -> [f32; 6] {
        [
            g0 / 4.0,
            -(g0 + g1 + g2) / 6.0,
            -(g0 - g1 + g2) / 6.0,
            g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
            g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
            g2,
        ]
    }

    #[inline(always)]
    fn bt_lanes(d: [&[f32]; 6], out: RowsMut, n: usize) {
        lanes!(Self::bt_col, d => [d0, d1, d2, d3, d4, d5], out => [o0, o1, o2, o3, o4, o5], n);
    }

    #[inline(always)]
    fn at_lanes(m: [&[f32]; 6], out: RowsMut, n: usize) {
        lanes!(Self::at_col, m => [m0, m1, m2, m3, m4, m5], out => [o0, o1, o2, o3], n);
    }

    // Vector shuffles where the CPU has them (the plain loop stayed scalar): `tiles`.
    #[inline(always)]
    fn split_tiles(row: &[f32], out: RowsMut) {
        rows_mut!(out => [e0, e1, e2, e3]);
        super::tiles::split4(row, e0, e1, e2, e3);
    }

    #[inline(always)]
    fn join_tiles(line: &mut [f32], [f0, f1, f2, f3]: [&[f32]; 4], bias: f32) {
        super::tiles::join4(line, f0, f1, f2, f3, bias);
    }
}

/// Winograd F(6,3) (ncnn's matrices: interpolation points 0, ±1, ±2, ±½, ∞).
struct F63;

impl F63 {
    /// `Bᵀ d` for one column `d` of an 8×8 patch, in ncnn's grouping (shared sums).
    #[inline(always)]
    fn bt_col([d0, d1, d2, d3, d4, d5, d6, d7]: [f32; 8]) -> [f32; 8] {
        let e1 = d2 + d6 - 4.25 * d4;
        let o1 = d1 + d5 - 4.25 * d3;
        let e3 = 0.25 * d2 - 1.25 * d4 + d6;
        let o3 = 0.5 * d1 - 2.5 * d3 + 2.0 * d5;
        let e5 = 4.0 * d2 - 5.0 * d4 + d6;
        let o5 = 2.0 * d1 - 2.5 * d3 + 0.5 * d5;
        [
            (d0 - d6) + 5.25 * (d4 - d2),
            e1 + o1,
            e1 - o1,
            e3 + o3,
            e3 - o3,
            e5 + o5,
            e5 - o5,
            (d7 - d1) + 5.25 * (d3 - d5),
        ]
    }

    /// `Aᵀ m` for one column `m` of an 8×8 product.
    #[inline(always)]
    fn at_col([m0, m1, m2, m3, m4, m5, m6, m7]: [f32; 8]) -> [f32; 6] {
        let (s1, s2, s3) = (m1 + m2, m3 + m4, m5 + m6);
        let (t1, t2, t3) = (m1 - m2, m3 - m4, m5 - m6);
        [
            m0 + s1 + s2 + 32.0 * s3,
            t1 + 2.0 * t2 + 16.0 * t3,
            s1 + 4.0 * s2 + 8.0 * s3,
            t1 + 8.0 * t2 + 4.0 * t3,
            s1 + 16.0 * s2 + 2.0 * s3,
            t1 + 32.0 * t2 + t3 + m7,
        ]
    }
}

impl Algorithm<6, 8> for F63 {
    #[inline(always)]
    fn g_col([g0, g1, g2]: [f32; 3]) -> [f32; 8] {
        [
            g0,
            -2.0 / 9.0 * (g0 + g1 + g2),
            -2.0 / 9.0 * (g0 - g1 + g2),
            g0 / 90.0 + g1 / 45.0 + g2 * (2.0 / 45.0),
            g0 / 90.0 - g1 / 45.0 + g2 * (2.0 / 45.0),
            g0 / 45.0 + g1 / 90.0 + g2 / 180.0,
            g0 / 45.0 - g1 / 90.0 + g2 / 180.0,
            g2,
        ]
    }

    #[inline(always)]
    fn bt_lanes(d: [&[f32]; 8], out: RowsMut, n: usize) {
        lanes!(
            Self::bt_col,
            d => [d0, d1, d2, d3, d4, d5, d6, d7],
            out => [o0, o1, o2, o3, o4, o5, o6, o7],
            n
        );
    }

    #[inline(always)]
    fn at_lanes(m: [&[f32]; 8], out: RowsMut, n: usize) {
        lanes!(
            Self::at_col,
            m => [m0, m1, m2, m3, m4, m5, m6, m7],
            out => [o0, o1, o2, o3, o4, o5],
            n
        );
    }

    #[inline(always)]
    fn split_tiles(row: &[f32], out: RowsMut) {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn split(
            row: &[f32],
            e0: &mut [f32],
            e1: &mut [f32],
            e2: &mut [f32],
            e3: &mut [f32],
            e4: &mut [f32],
            e5: &mut [f32],
        ) {
            let tiles = row
                .chunks_exact(6)
                .zip(e0)
                .zip(e1)
                .zip(e2)
                .zip(e3)
                .zip(e4)
                .zip(e5);
            for ((((((q, a), b), c), d), e), f) in tiles {
                [*a, *b, *c, *d, *e, *f] = [q[0], q[1], q[2], q[3], q[4], q[5]];
            }
        }
        rows_mut!(out => [e0, e1, e2, e3, e4, e5]);
        split(row, e0, e1, e2, e3, e4, e5);
    }

    #[inline(always)]
    fn join_tiles(line: &mut [f32], [f0, f1, f2, f3, f4, f5]: [&[f32]; 6], bias: f32) {
        let tiles = line
            .chunks_exact_mut(6)
            .zip(f0)
            .zip(f1)
            .zip(f2)
            .zip(f3)
            .zip(f4)
            .zip(f5);
        for ((((((q, a), b), c), d), e), f) in tiles {
            q.copy_from_slice(&[*a, *b, *c, *d, *e, *f].map(|v| v + bias));
        }
    }
}

/// The transformed weights `[P², ic, oc]` (`U = G g Gᵀ` of each kernel, position
/// ξ = row·P + column) of OIHW weights `[oc, ic, 3, 3]`: each position's `oc × ic` matrix stored
/// column-major, so that `matrixmultiply`'s packing of it (panels of 16 output channels per input
/// channel, on every call) copies contiguous runs instead of gathering with a stride of `ic`.
/// Same bits as the row-major layout (the packed panels are the same); `matrixmultiply`'s packing
/// of both operands took 18.6 % of the split SR graph's samples before, 8.1 % after (`perf`, one
/// thread, Zen 4; it does not split them by operand).
fn transform_weights<const T: usize, const P: usize, A: Algorithm<T, P>>(
    weights: &[f32],
    oc: usize,
    ic: usize,
) -> Vec<f32> {
    let mut u = vec![0f32; P * P * oc * ic];
    for o in 0..oc {
        for i in 0..ic {
            let g = &weights[(o * ic + i) * 9..][..9];
            // Columns first: t[r][c] = (G g)[r][c]; then each row: (G g Gᵀ)[r] = G t[r].
            let mut t = [[0f32; 3]; P];
            for c in 0..3 {
                for (r, v) in A::g_col([g[c], g[3 + c], g[6 + c]]).into_iter().enumerate() {
                    t[r][c] = v;
                }
            }
            for (r, row) in t.into_iter().enumerate() {
                for (c, v) in A::g_col(row).into_iter().enumerate() {
                    u[((r * P + c) * ic + i) * oc + o] = v;
                }
            }
        }
    }
    u
}

/// A 3×3 convolution by Winograd F(6,3) or F(4,3) (see the module docs).
#[derive(Debug, Clone)]
pub struct Winograd3x3 {
    /// Input channels.
    pub ic: usize,
    /// Output channels.
    pub oc: usize,
    /// Which Winograd algorithm runs.
    choice: TileChoice,
    /// F(4,3)'s transformed weights `[36, ic, oc]`, when [`Self::choice`] can pick it.
    u43: Option<Arc<Vec<f32>>>,
    /// F(6,3)'s transformed weights `[64, ic, oc]`, when [`Self::choice`] can pick it.
    u63: Option<Arc<Vec<f32>>>,
    /// `[oc]`.
    bias: Arc<Vec<f32>>,
    /// The weights as `[oc · 9, ic]` (row `o · 9 + 3 · ky + kx`, then zero rows up to
    /// [`direct_taps`]), kept when the op computes by
    /// 1×1 products and shifted sums instead (at most [`DIRECT_MAX_OC`] output channels, see
    /// [`Self::direct_rows`]).
    direct: Option<Arc<Vec<f32>>>,
    /// The weights as AMX bf16 tiles when the op computes in bf16 ([`Self::with_bf16`]): then
    /// every call is the direct sum on AMX ([`amx`]), neither Winograd nor [`Self::direct_rows`].
    amx: Option<Arc<Bf16Weights>>,
    /// [`Self::direct`] as AMX A tiles, when the op computes in bf16 and has them: the 1×1
    /// products of a bf16 tail fused into a bf16 upsampler ([`Winograd3x3::run_with_tail`]).
    amx_taps: Option<Arc<Bf16Rows>>,
    /// What the op computes from its input before the convolution (see [`Prologue`]).
    pub prologue: Option<Prologue>,
    /// What the op does to the convolution's output before storing it (see [`Epilogue`]).
    pub epilogue: Epilogue,
    /// The variant of [`Self::chunk`] to run.
    #[cfg(target_arch = "x86_64")]
    simd: SimdLevel,
}

/// Equal when built from bitwise-equal weights and bias (tract compares ops to merge nodes).
impl PartialEq for Winograd3x3 {
    fn eq(&self, other: &Self) -> bool {
        // Shared weights are equal without a look (tract compares ops whenever a patch is applied).
        let same = |a: &Arc<Vec<f32>>, b: &Arc<Vec<f32>>| {
            Arc::ptr_eq(a, b)
                || (a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits()))
        };
        let same_opt = |a: &Option<Arc<Vec<f32>>>, b: &Option<Arc<Vec<f32>>>| match (a, b) {
            (Some(a), Some(b)) => same(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.ic == other.ic
            && self.oc == other.oc
            && self.choice == other.choice
            && self.epilogue == other.epilogue
            && self.prologue == other.prologue
            && same_opt(&self.u43, &other.u43)
            && same_opt(&self.u63, &other.u63)
            && same(&self.bias, &other.bias)
            && same_opt(&self.direct, &other.direct)
            && match (&self.amx, &other.amx) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (a, b) => a.is_none() && b.is_none(),
            }
            && match (&self.amx_taps, &other.amx_taps) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

impl Eq for Winograd3x3 {}

/// What precedes the convolution inside the op: an IDR-DCRB block's depthwise 3×3 convolution
/// (stride 1, padding 1, its kernels `[ic, 1, 3, 3]` the op's second input: generated from the
/// IDR per image in the dynamic and split graphs, constants in a folded one) and the LeakyReLU
/// after it ([`super::depthwise`]). The op's input is then the depthwise convolution's; each
/// row the convolution reads is computed from it as the chunk converts its input rows (the
/// same rows for every chunk that reads them), and the two ops' outputs are never stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prologue {
    /// The depthwise convolution's constant bias `[ic]`, if it has one.
    pub bias: Option<Arc<Vec<f32>>>,
    /// LeakyReLU's slope for negative values.
    pub leaky_relu: Option<f32>,
}

/// What follows the convolution inside the op, in this order: the bias (always), a LeakyReLU,
/// an int8 graph's activation quantization ([`QuantTable`]), a residual added (the op's second
/// input, `[n, oc, h, w]`), the quantization of the sum, and a depth-to-space of the result
/// (ONNX `DepthToSpace`: output `[n, oc/b², h·b, w·b]`; an element-wise op after it is the same
/// before it). Each is the op the graph had after the convolution, computed in the same float32
/// operations, so a fused op gives the same values as the unfused chain; fusing saves a pass over
/// the output and its allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Epilogue {
    /// LeakyReLU's slope for negative values.
    pub leaky_relu: Option<f32>,
    /// The quantization before the residual add.
    pub quant: Option<QuantTable>,
    /// Whether a residual (the second input) is added.
    pub residual: bool,
    /// The quantization after the residual add (or after `quant`, or after depth-to-space).
    pub quant_after: Option<QuantTable>,
    /// Depth-to-space: block size and mode (CRD when true, else DCR).
    pub depth_to_space: Option<(usize, bool)>,
    /// A convolution of few output channels computed by shifted sums (the SR network's 32→3
    /// tail) that alone reads the output after a depth-to-space by at least 2: fused, it takes
    /// its products from each band of finished rows while they are in the cache, and the op's
    /// output is the tail's ([`Winograd3x3::run_with_tail`]); the ×4 upsampler's 118 MB output
    /// at LR 320×180 is neither written nor read back.
    pub then: Option<Arc<Winograd3x3>>,
}

impl Eq for Epilogue {}

impl Epilogue {
    /// Block size (1 without depth-to-space).
    pub(crate) fn block(&self) -> usize {
        self.depth_to_space.map_or(1, |(b, _)| b)
    }

    /// The output channel that depth-to-space puts at block offset `k` (`dy·b + dx`) of plane
    /// `p` (`p` itself without depth-to-space).
    fn channel(&self, p: usize, k: usize, oc: usize) -> usize {
        match self.depth_to_space {
            None => p,
            Some((b, true)) => p * b * b + k,
            Some((b, false)) => k * (oc / (b * b)) + p,
        }
    }
}

/// `[row(0), row(1), …, row(N - 1)]`, filled by a plain loop (see [`RowsMut`]).
#[inline(always)]
fn row_array<'a, const N: usize>(row: impl Fn(usize) -> &'a [f32]) -> [&'a [f32]; N] {
    let mut out: [&[f32]; N] = [&[]; N];
    for (j, o) in out.iter_mut().enumerate() {
        *o = row(j);
    }
    out
}

/// The widest vector instructions [`Winograd3x3::chunk`] (and [`QuantTable`]'s pass) has a
/// variant for.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimdLevel {
    Avx512,
    Avx2,
    Baseline,
}

/// What this CPU has, detected once; `KDSR_EDGE_SIMD=baseline|avx2` caps it (A/B runs).
#[cfg(target_arch = "x86_64")]
pub(crate) fn detected_simd_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("KDSR_EDGE_SIMD").unwrap_or_default();
        let avx2 = cap != "baseline"
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2 && cap != "avx2" && std::arch::is_x86_feature_detected!("avx512f") {
            SimdLevel::Avx512
        } else if avx2 {
            SimdLevel::Avx2
        } else {
            SimdLevel::Baseline
        }
    })
}

/// A thread's scratch, kept across calls: the transformed input `[36, ic, tiles]`, the
/// products `[36, oc, tiles]` of its current chunk, and the per-row buffers of the transforms.
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    work: Vec<f32>,
    /// The shifted sums' ring of products and a zero row ([`Winograd3x3::direct_rows`]).
    ring: Vec<f32>,
    /// A fused tail's band of finished rows ([`Winograd3x3::run_with_tail`]).
    band: Vec<f32>,
    /// A fused bf16 tail's input rows as bf16 pairs ([`Winograd3x3::amx_tail_rows`]).
    pairs: Vec<u32>,
    /// A chunk's rows of the prologue's depthwise output, one channel, and a zero row.
    dw: Vec<f32>,
    amx: amx::Scratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            v: Vec::new(),
            m: Vec::new(),
            work: Vec::new(),
            ring: Vec::new(),
            band: Vec::new(),
            pairs: Vec::new(),
            dw: Vec::new(),
            amx: amx::Scratch::new(),
        })
    };
}

/// `buf` with at least `n` elements, its first `n`.
#[inline(always)]
fn at_least(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

impl Winograd3x3 {
    /// Builds the op from OIHW weights `[oc, ic, 3, 3]` and a bias of `oc` values (or none),
    /// computing by the Winograd algorithm `choice` picks.
    pub fn new(
        weights: &[f32],
        bias: Option<&[f32]>,
        oc: usize,
        ic: usize,
        choice: TileChoice,
    ) -> TractResult<Self> {
        ensure!(
            weights.len() == oc * ic * 9,
            "Winograd3x3: {oc}×{ic}×3×3 weights expected"
        );
        let can = |t| choice == TileChoice::BySize || choice == TileChoice::Fixed(t);
        let u43 = can(Tile::F43).then(|| Arc::new(transform_weights::<4, 6, F43>(weights, oc, ic)));
        let u63 = can(Tile::F63).then(|| Arc::new(transform_weights::<6, 8, F63>(weights, oc, ic)));
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
            choice,
            u43,
            u63,
            bias: Arc::new(bias),
            direct: (1..=DIRECT_MAX_OC).contains(&oc).then(|| {
                // OIHW [oc, ic, 3, 3] → [oc · 9, ic]: row o·9 + tap holds the tap of every
                // input channel.
                let mut a = vec![0f32; direct_taps(oc) * ic];
                for o in 0..oc {
                    for c in 0..ic {
                        for t in 0..9 {
                            a[(o * 9 + t) * ic + c] = weights[(o * ic + c) * 9 + t];
                        }
                    }
                }
                Arc::new(a)
            }),
            amx: None,
            amx_taps: None,
            prologue: None,
            epilogue: Epilogue::default(),
            #[cfg(target_arch = "x86_64")]
            simd: detected_simd_level(),
        })
    }

    /// The op computing in bf16 on AMX ([`amx`]) from the same OIHW `weights` it was built
    /// from; an error where the CPU or OS has no AMX bf16 ([`amx::available`]).
    pub fn with_bf16(mut self, weights: &[f32]) -> TractResult<Self> {
        ensure!(
            amx::available(),
            "bf16 convolution: this CPU or OS has no AMX bf16 (Intel Xeon Sapphire Rapids or later, Linux)"
        );
        self.amx = Some(Arc::new(Bf16Weights::new(weights, self.oc, self.ic)?));
        if let Some(a) = &self.direct {
            let taps = direct_taps(self.oc);
            self.amx_taps = Some(Arc::new(Bf16Rows::new(a, taps, self.ic)?));
        }
        Ok(self)
    }

    /// Whether the op computes in bf16 ([`Self::with_bf16`]).
    pub fn is_bf16(&self) -> bool {
        self.amx.is_some()
    }

    /// The op with `epilogue` fused (checked against the channel count).
    pub fn with_epilogue(mut self, epilogue: Epilogue) -> TractResult<Self> {
        if let Some((b, _)) = epilogue.depth_to_space {
            ensure!(
                b >= 1 && self.oc % (b * b) == 0,
                "Winograd3x3: depth-to-space by {b} of {} channels",
                self.oc
            );
        }
        if let Some(t) = &epilogue.then {
            ensure!(
                self.takes_tail(epilogue.block(), t),
                "Winograd3x3: {}→{} cannot take a fused {}→{} tail",
                self.ic,
                self.oc,
                t.ic,
                t.oc
            );
        }
        self.epilogue = epilogue;
        Ok(self)
    }

    /// The op with `prologue` fused: its input becomes the depthwise convolution's, its
    /// second input the depthwise kernels. Only for ops that compute by Winograd or AMX (not
    /// the shifted sums) and take no fused tail.
    pub fn with_prologue(mut self, prologue: Prologue) -> TractResult<Self> {
        ensure!(
            self.takes_prologue(),
            "Winograd3x3: {}→{} cannot take a depthwise prologue",
            self.ic,
            self.oc
        );
        if let Some(b) = &prologue.bias {
            ensure!(
                b.len() == self.ic,
                "Winograd3x3: depthwise bias of {} values, {} expected",
                b.len(),
                self.ic
            );
        }
        self.prologue = Some(prologue);
        Ok(self)
    }

    /// Whether [`Self::with_prologue`] accepts a prologue.
    pub(crate) fn takes_prologue(&self) -> bool {
        self.prologue.is_none() && self.direct_weights().is_none() && self.epilogue.then.is_none()
    }

    /// The prologue's depthwise convolution with the kernels `kernel` (`[ic, 9]`).
    fn depthwise<'a>(&'a self, kernel: Option<&'a [f32]>) -> TractResult<Option<Depthwise<'a>>> {
        match (&self.prologue, kernel) {
            (None, None) => Ok(None),
            (Some(p), Some(k)) if k.len() == self.ic * 9 => Ok(Some(Depthwise {
                kernel: k,
                bias: p.bias.as_deref().map(Vec::as_slice),
                leaky_relu: p.leaky_relu,
            })),
            (p, k) => bail!(
                "Winograd3x3: depthwise kernels of {:?} values for a prologue {:?} ({} channels)",
                k.map(<[f32]>::len),
                p,
                self.ic
            ),
        }
    }

    /// Whether `tail` can be fused into this op after a depth-to-space by `block`
    /// ([`Epilogue::then`]): the same precision on both sides (float32: the op's Winograd and
    /// the tail's shifted sums; bf16: both on AMX), a block of at least 2 (so each job of
    /// [`Self::run_with_tail`] has two rows or more), the tail reading every output channel,
    /// and nothing fused into the tail that reads a second input or another tail.
    pub(crate) fn takes_tail(&self, block: usize, tail: &Winograd3x3) -> bool {
        block >= 2
            && self.prologue.is_none()
            && self.is_bf16() == tail.is_bf16()
            && tail.ic * block * block == self.oc
            && tail.direct_weights().is_some()
            && !tail.epilogue.residual
            && tail.epilogue.then.is_none()
    }

    /// How the op picks its Winograd algorithm, or `None` when it computes by shifted sums
    /// (few output channels, no depth-to-space).
    pub fn choice(&self) -> Option<TileChoice> {
        self.direct_weights().is_none().then_some(self.choice)
    }

    /// The Winograd algorithm a call on `n` images of `h × w` on `threads` threads runs, or
    /// `None` for the shifted sums.
    pub fn tile_for(&self, n: usize, h: usize, w: usize, threads: usize) -> Option<Tile> {
        Some(match self.choice()? {
            TileChoice::Fixed(tile) => tile,
            TileChoice::BySize => {
                let side = Tile::F63.side();
                let tiles = n * h.div_ceil(side) * w.div_ceil(side);
                tile_by_size(tiles, threads, f63_pays())
            }
        })
    }

    /// `tile`'s transformed weights.
    fn transformed(&self, tile: Tile) -> TractResult<&[f32]> {
        let u = match tile {
            Tile::F43 => &self.u43,
            Tile::F63 => &self.u63,
        };
        match u {
            Some(u) => Ok(u),
            None => bail!(
                "Winograd3x3: no {tile} weights in an op built for {:?}",
                self.choice
            ),
        }
    }

    /// The output shape `[n, c, h, w]` for an input of `h × w`.
    pub fn output_shape(&self, n: usize, h: usize, w: usize) -> [usize; 4] {
        let b = self.epilogue.block();
        [n, self.out_channels(), h * b, w * b]
    }

    /// The output's channels: after depth-to-space, or the fused tail's.
    fn out_channels(&self) -> usize {
        let b = self.epilogue.block();
        self.epilogue
            .then
            .as_ref()
            .map_or(self.oc / (b * b), |t| t.oc)
    }

    /// The convolution of `x` `[n, ic, h, w]` (after the prologue, with the depthwise kernels
    /// `dw` `[ic, 9]` when it has one; plus the epilogue, with the residual `res` `[n, oc, h,
    /// w]` when it has one) into `y` (see [`Self::output_shape`]), on tract's executor threads
    /// when it has several.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[f32],
        dw: Option<&[f32]>,
        res: Option<&[f32]>,
        y: &mut [f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> TractResult<()> {
        let pool = match current_tract_executor() {
            Executor::MultiThread(pool) => Some(pool),
            _ => None,
        };
        let stream = self.epilogue.block() == 2 && std::mem::size_of_val(y) >= STREAM_MIN_BYTES;
        self.run_on(pool.as_deref(), x, dw, res, y, n, h, w, stream)
    }

    /// [`Self::run`] on `pool`'s threads, or the calling thread's.
    ///
    /// The image is cut into chunks of whole tile rows; each chunk (one image, tile rows
    /// `ty0..ty1`) gets its own rows `m·ty0·b .. min(m·ty1, h)·b` of every output plane of its
    /// image (`m` the tile side, [`DIRECT_ROWS`] for the shifted sums; `b` the depth-to-space
    /// block, else 1). With `stream`, a fused depth-to-space by 2 writes its rows with
    /// non-temporal stores ([`STREAM_MIN_BYTES`]).
    #[allow(clippy::too_many_arguments)]
    fn run_on(
        &self,
        pool: Option<&rayon::ThreadPool>,
        x: &[f32],
        dw: Option<&[f32]>,
        res: Option<&[f32]>,
        y: &mut [f32],
        n: usize,
        h: usize,
        w: usize,
        stream: bool,
    ) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        let [_, planes, oh, ow] = self.output_shape(n, h, w);
        ensure!(
            x.len() == n * ic * h * w && y.len() == n * planes * oh * ow,
            "Winograd3x3: buffers do not match [{n}, {ic}, {h}, {w}] → [{n}, {planes}, {oh}, {ow}]"
        );
        ensure!(
            res.map(<[f32]>::len) == self.epilogue.residual.then_some(n * oc * h * w),
            "Winograd3x3: residual does not match the op ({:?} values, residual {})",
            res.map(<[f32]>::len),
            self.epilogue.residual
        );
        let dw = self.depthwise(dw)?;
        if n == 0 || h == 0 || w == 0 {
            return Ok(());
        }
        if let Some(tail) = &self.epilogue.then {
            return self.run_with_tail(tail, pool, x, res, y, n, h, w);
        }
        let threads = pool.map_or(1, |p| p.current_num_threads());
        let tile = self
            .amx
            .is_none()
            .then(|| self.tile_for(n, h, w, threads))
            .flatten();
        // Chunks of tile rows; for AMX of output rows of about AMX_CHUNK pixels.
        let (side, chunk_tiles) = match tile {
            Some(tile) => (tile.side(), tile.chunk_tiles()),
            None if self.amx.is_some() => (1, AMX_CHUNK),
            None => (DIRECT_ROWS, 1),
        };
        let (th, tw) = (h.div_ceil(side), w.div_ceil(side));
        let mut rows = (chunk_tiles / tw).clamp(1, th);
        if threads > 1 {
            // Enough chunks for every thread, when the image has the rows.
            let per_image = (CHUNKS_PER_THREAD * threads).div_ceil(n);
            rows = rows.min(th.div_ceil(per_image)).max(1);
        }
        let per_image = th.div_ceil(rows);
        // Each chunk's rows of every output plane of its image: bands[job][plane].
        let mut bands: Vec<Vec<&mut [f32]>> = (0..n * per_image)
            .map(|_| Vec::with_capacity(planes))
            .collect();
        let band_len = rows * side * self.epilogue.block() * ow;
        for (p, plane) in y.chunks_mut(oh * ow).enumerate() {
            let ni = p / planes;
            for (ci, band) in plane.chunks_mut(band_len).enumerate() {
                bands[ni * per_image + ci].push(band);
            }
        }
        let chunk = |(job, out): (usize, Vec<&mut [f32]>)| -> TractResult<()> {
            let (ni, ci) = (job / per_image, job % per_image);
            let ty0 = ci * rows;
            let ty1 = (ty0 + rows).min(th);
            let mut io = ChunkIo {
                x: &x[ni * ic * h * w..][..ic * h * w],
                dw,
                res: res.map(|r| &r[ni * oc * h * w..][..oc * h * w]),
                out,
                span: Span { h, w, ty0, ty1 },
                tile,
                stream,
            };
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                self.chunk(&mut io, &mut s)
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

    /// [`Self::run_on`] with a fused tail ([`Epilogue::then`]): `y` is the tail's output
    /// `[n, tail.oc, h·b, w·b]`, and the op's own output (after its depth-to-space by `b`) never
    /// goes to memory whole.
    ///
    /// Each image is cut into jobs of whole tile rows (one per image on one thread, else
    /// [`CHUNKS_PER_THREAD`] per thread); a job computes its rows in order on one thread and,
    /// as each output row of the op is finished, the tail's 1×1 products of it (a ring of
    /// three, [`TailJob`]) and the tail's output rows they complete ([`Self::shifted_row`]), the
    /// same arithmetic as the tail op alone:
    /// - float32: Winograd chunks, each into a band of finished rows (`Scratch::band`, 1.3 MB
    ///   for the ×4 upsampler at 1280 wide), then the products of the band's rows on the sgemm
    ///   ([`Self::tap_product`]);
    /// - bf16: the AMX rows ([`amx::conv_rows`]), each input row's `b` output rows turned into
    ///   bf16 pairs as its depth-to-space interleaves them ([`amx::pair_row`]) and their
    ///   products computed on AMX too ([`amx::products`]), the tail's inputs rounded to bf16 as
    ///   the tail op alone rounds them.
    ///
    /// The first and last output row of a job inside the image need a product of the next
    /// job's rows: each job keeps the products of its first two and last two rows (`edges`),
    /// and those rows are summed after all jobs.
    #[allow(clippy::too_many_arguments)]
    fn run_with_tail(
        &self,
        tail: &Winograd3x3,
        pool: Option<&rayon::ThreadPool>,
        x: &[f32],
        res: Option<&[f32]>,
        y: &mut [f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> TractResult<()> {
        let (ic, oc, b) = (self.ic, self.oc, self.epilogue.block());
        let (oh, ow, planes) = (h * b, w * b, oc / (b * b));
        let threads = pool.map_or(1, |p| p.current_num_threads());
        // takes_tail: b ≥ 2 and tail.ic == planes, among the rest.
        ensure!(
            self.takes_tail(b, tail),
            "Winograd3x3: a fused tail needs a depth-to-space onto its input"
        );
        // What a job's steps are: Winograd chunks of tile rows, or AMX chunks of input rows;
        // how many rows of tiles (or input rows) each has.
        let (tile, side, sub) = match &self.amx {
            None => {
                let Some(tile) = self.tile_for(n, h, w, threads) else {
                    bail!("Winograd3x3: a fused tail needs Winograd or AMX");
                };
                let (side, tiles) = (tile.side(), tile.chunk_tiles());
                (Some(tile), side, tiles / w.div_ceil(side))
            }
            Some(_) => (None, 1, AMX_CHUNK / w),
        };
        let th = h.div_ceil(side);
        let sub = sub.clamp(1, th);
        let taps = direct_taps(tail.oc);
        // The products' rows: AMX stores whole groups of columns.
        let rs = match tile {
            Some(_) => ow,
            None => ow.next_multiple_of(amx::PRODUCT_COLUMNS),
        };
        let per_image = if threads > 1 {
            (CHUNKS_PER_THREAD * threads).min(th)
        } else {
            1
        };
        let job_rows = th.div_ceil(per_image);
        let per_image = th.div_ceil(job_rows);
        let band_len = job_rows * side * b * ow;
        // Edge products only where a job has a neighbour.
        let edge_len = if per_image > 1 { 4 * taps * rs } else { 0 };
        let mut edges = vec![0f32; n * per_image * edge_len];
        // Each job's rows of every tail output plane, and its edge products.
        let mut rest = edges.as_mut_slice();
        let mut jobs: Vec<(Vec<&mut [f32]>, &mut [f32])> = (0..n * per_image)
            .map(|_| {
                let (e, r) = std::mem::take(&mut rest).split_at_mut(edge_len);
                rest = r;
                (Vec::with_capacity(tail.oc), e)
            })
            .collect();
        for (p, plane) in y.chunks_mut(oh * ow).enumerate() {
            let ni = p / tail.oc;
            for (ji, band) in plane.chunks_mut(band_len).enumerate() {
                jobs[ni * per_image + ji].0.push(band);
            }
        }
        let job = |(j, (out, edges)): (usize, (Vec<&mut [f32]>, &mut [f32]))| {
            let (ni, ji) = (j / per_image, j % per_image);
            let (t0, t1) = (ji * job_rows, ((ji + 1) * job_rows).min(th));
            let (x, res) = (
                &x[ni * ic * h * w..][..ic * h * w],
                res.map(|r| &r[ni * oc * h * w..][..oc * h * w]),
            );
            // The job's output rows ra..rb.
            let (ra, rb) = (t0 * side * b, (t1 * side).min(h) * b);
            SCRATCH.with(|s| -> TractResult<()> {
                let mut s = s.borrow_mut();
                let mut band_buf = std::mem::take(&mut s.band);
                let mut ring = std::mem::take(&mut s.ring);
                let result = (|| {
                    let (ring, zeros) =
                        at_least(&mut ring, (3 * taps + 1) * rs).split_at_mut(3 * taps * rs);
                    zeros.fill(0.0);
                    let mut tj = TailJob {
                        tail,
                        ra,
                        slots: [ra, ra + 1, rb - 2, rb - 1],
                        oh,
                        ow,
                        rs,
                        ring,
                        zeros,
                        edges,
                        out,
                    };
                    for ty0 in (t0..t1).step_by(sub) {
                        let ty1 = (ty0 + sub).min(t1);
                        let (r0, r1) = (ty0 * side * b, (ty1 * side).min(h) * b);
                        if tile.is_none() {
                            self.amx_tail_rows(tail, x, res, h, w, ty0, ty1, &mut s, &mut tj)?;
                            continue;
                        }
                        let band = at_least(&mut band_buf, planes * (r1 - r0) * ow);
                        let mut io = ChunkIo {
                            x,
                            dw: None,
                            res,
                            out: band.chunks_mut((r1 - r0) * ow).collect(),
                            span: Span { h, w, ty0, ty1 },
                            tile,
                            stream: false,
                        };
                        self.chunk(&mut io, &mut s)?;
                        drop(io);
                        for r in r0..r1 {
                            let rows = ArrayView2::from_shape(
                                (planes, ow).strides(((r1 - r0) * ow, 1)),
                                &band[(r - r0) * ow..],
                            )?;
                            tail.tap_product(rows, tj.slot(r))?;
                            tj.finish(r);
                        }
                    }
                    Ok(())
                })();
                s.band = band_buf;
                s.ring = ring;
                result
            })
        };
        match pool {
            Some(pool) if jobs.len() > 1 => pool.install(|| {
                use rayon::prelude::*;
                jobs.into_par_iter().enumerate().try_for_each(job)
            })?,
            _ => jobs.into_iter().enumerate().try_for_each(job)?,
        }
        // The rows on each side of a boundary between jobs: row q of the upper job's last two
        // and the lower job's first two.
        let (len, zeros) = (taps * rs, vec![0f32; ow]);
        for ni in 0..n {
            for ji in 1..per_image {
                let bnd = ji * job_rows * side * b;
                let upper = &edges[(ni * per_image + ji - 1) * edge_len..][..edge_len];
                let lower = &edges[(ni * per_image + ji) * edge_len..][..edge_len];
                let product = |r: usize| -> Option<&[f32]> {
                    let slot = match r {
                        _ if r + 2 == bnd => &upper[2 * len..],
                        _ if r + 1 == bnd => &upper[3 * len..],
                        _ if r == bnd => lower,
                        _ if r == bnd + 1 => &lower[len..],
                        _ => return None,
                    };
                    Some(&slot[..len])
                };
                for q in [bnd - 1, bnd] {
                    let t = [
                        product(q - 1),
                        product(q),
                        product(q + 1).filter(|_| q + 1 < oh),
                    ];
                    for o in 0..tail.oc {
                        let line = &mut y[((ni * tail.oc + o) * oh + q) * ow..][..ow];
                        tail.shifted_row(o, t, &zeros, rs, line, None);
                    }
                }
            }
        }
        Ok(())
    }

    /// Input rows `y0..y1` of one image of a bf16 op with a fused bf16 tail
    /// ([`Self::run_with_tail`]): each AMX row through the epilogue, then, per output row its
    /// depth-to-space makes, the tail's bf16 pairs and their products into `tj`.
    #[allow(clippy::too_many_arguments)]
    fn amx_tail_rows(
        &self,
        tail: &Winograd3x3,
        x: &[f32],
        res: Option<&[f32]>,
        h: usize,
        w: usize,
        y0: usize,
        y1: usize,
        s: &mut Scratch,
        tj: &mut TailJob,
    ) -> TractResult<()> {
        let (Some(wts), Some(a)) = (&self.amx, &tail.amx_taps) else {
            bail!("Winograd3x3: a bf16 fused tail without its AMX weights");
        };
        // One output row's pairs `[a.pair_rows(), rs]`; `b` of them.
        let b = self.epilogue.block();
        let one = a.pair_rows() * tj.rs;
        let pairs = &mut s.pairs;
        if pairs.len() < b * one {
            pairs.resize(b * one, 0);
        }
        let pairs = &mut pairs[..b * one];
        // Columns past the row and pair rows past the channels stay zero.
        pairs.fill(0);
        let mut failed = Ok(());
        amx::conv_rows(wts, x, None, h, w, y0, y1, &mut s.amx, |y, acc, stride| {
            if failed.is_err() {
                return;
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AMX path runs only where amx::available() saw AVX-512F and BW.
            #[allow(unsafe_code)]
            unsafe {
                self.amx_pairs_avx512(tail, res, h, w, y, acc, stride, pairs, tj.rs)
            }
            #[cfg(not(target_arch = "x86_64"))]
            self.amx_pairs(tail, res, h, w, y, acc, stride, pairs, tj.rs);
            failed = (0..b).try_for_each(|dy| {
                let r = y * b + dy;
                amx::products(a, &pairs[dy * one..][..one], tj.rs, tj.slot(r))?;
                tj.finish(r);
                Ok(())
            });
        })?;
        failed
    }
    /// Tile rows `ty0..ty1` of one image (rows of [`DIRECT_ROWS`] for the shifted sums): `io.x`
    /// `[ic, h, w]` into `io.out`, the chunk's rows of each output plane.
    ///
    /// The transforms are lane-wise loops the compiler vectorizes; the binary's baseline on
    /// x86-64 is SSE2 (4 lanes), so on CPUs with AVX2+FMA or AVX-512 the same code runs compiled
    /// for those (8 or 16 lanes), picked at run time. The arithmetic is the same operations in
    /// the same order (no contraction into FMAs), so every variant gives the same bits.
    fn chunk(&self, io: &mut ChunkIo, s: &mut Scratch) -> TractResult<()> {
        if let Some(wts) = &self.amx {
            return self.amx_chunk(wts, io, &mut s.amx);
        }
        #[cfg(target_arch = "x86_64")]
        {
            match self.simd {
                // SAFETY: `simd` is never above what detected_simd_level() saw the CPU report.
                #[allow(unsafe_code)]
                SimdLevel::Avx512 => return unsafe { self.chunk_avx512(io, s) },
                #[allow(unsafe_code)]
                SimdLevel::Avx2 => return unsafe { self.chunk_avx2(io, s) },
                SimdLevel::Baseline => {}
            }
        }
        self.chunk_body(io, s)
    }

    /// [`Self::chunk`] compiled for AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn chunk_avx512(&self, io: &mut ChunkIo, s: &mut Scratch) -> TractResult<()> {
        self.chunk_body(io, s)
    }

    /// [`Self::chunk`] compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn chunk_avx2(&self, io: &mut ChunkIo, s: &mut Scratch) -> TractResult<()> {
        self.chunk_body(io, s)
    }

    /// [`Self::chunk`]'s work, inlined into each variant.
    #[inline(always)]
    fn chunk_body(&self, io: &mut ChunkIo, s: &mut Scratch) -> TractResult<()> {
        if let Some(tile) = io.tile {
            let u = self.transformed(tile)?;
            return match tile {
                Tile::F43 => self.winograd_chunk::<4, 6, F43>(u, io, s),
                Tile::F63 => self.winograd_chunk::<6, 8, F63>(u, io, s),
            };
        }
        self.direct_rows(io, s)
    }

    /// [`Self::chunk_body`] by Winograd F(T,3) with the transformed weights `u`: the input
    /// transform of every input channel, the P² products, the output transform of every
    /// output plane.
    #[inline(always)]
    fn winograd_chunk<const T: usize, const P: usize, A: Algorithm<T, P>>(
        &self,
        u: &[f32],
        io: &mut ChunkIo,
        s: &mut Scratch,
    ) -> TractResult<()> {
        let (ic, oc) = (self.ic, self.oc);
        let span @ Span { h, w, ty0, ty1 } = io.span;
        let tiles = (ty1 - ty0) * w.div_ceil(T);
        let v = at_least(&mut s.v, P * P * ic * tiles);
        let m = at_least(&mut s.m, P * P * oc * tiles);
        let work = at_least(
            &mut s.work,
            work_len::<T, P>(w, self.epilogue.block(), tiles),
        );
        match io.dw {
            None => {
                for c in 0..ic {
                    let plane = &io.x[c * h * w..][..h * w];
                    input_tiles::<T, P, A>(plane, 0, span, c, ic, v, work);
                }
            }
            Some(dw) => {
                // The rows the chunk's tiles read, of the depthwise convolution's output.
                let (lo, hi) = ((T * ty0).saturating_sub(1), (T * ty1 + 1).min(h));
                let (rows, zeros) =
                    at_least(&mut s.dw, (hi - lo + 1) * w).split_at_mut((hi - lo) * w);
                zeros.fill(0.0);
                for c in 0..ic {
                    let plane = &io.x[c * h * w..][..h * w];
                    for (y, row) in (lo..hi).zip(rows.chunks_exact_mut(w)) {
                        dw.row(plane, c, h, w, y, zeros, row);
                    }
                    input_tiles::<T, P, A>(rows, lo, span, c, ic, v, work);
                }
            }
        }
        for k in 0..P * P {
            let a = ArrayView2::from_shape((oc, ic).f(), &u[k * oc * ic..][..oc * ic])?;
            let b = ArrayView2::from_shape((ic, tiles), &v[k * ic * tiles..][..ic * tiles])?;
            let mut c =
                ArrayViewMut2::from_shape((oc, tiles), &mut m[k * oc * tiles..][..oc * tiles])?;
            general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        }
        for (p, rows) in io.out.iter_mut().enumerate() {
            self.output_plane::<T, P, A>(p, m, tiles, span, rows, io.res, work, io.stream);
        }
        if io.stream {
            super::depth_to_space::store_fence();
        }
        Ok(())
    }

    /// Output rows `ty0..ty1` (the chunk's rows: one row a "tile") by AMX bf16 ([`amx`]), each
    /// finished in the row buffer the AMX sums are in and stored ([`Self::amx_row`]).
    fn amx_chunk(
        &self,
        wts: &Bf16Weights,
        io: &mut ChunkIo,
        s: &mut amx::Scratch,
    ) -> TractResult<()> {
        let Span { h, w, ty0, ty1 } = io.span;
        let rows = ty0..ty1.min(h);
        let (x, dw) = (io.x, io.dw);
        amx::conv_rows(
            wts,
            x,
            dw,
            h,
            w,
            rows.start,
            rows.end,
            s,
            |y, acc, stride| {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the AMX path runs only where amx::available() saw AVX-512F and BW.
                #[allow(unsafe_code)]
                unsafe {
                    self.amx_row_avx512(io, y, acc, stride)
                }
                #[cfg(not(target_arch = "x86_64"))]
                self.amx_row(io, y, acc, stride)
            },
        )?;
        if io.stream {
            super::depth_to_space::store_fence();
        }
        Ok(())
    }

    /// [`Self::amx_row`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    fn amx_row_avx512(&self, io: &mut ChunkIo, y: usize, acc: &mut [f32], stride: usize) {
        self.amx_row(io, y, acc, stride)
    }

    /// Output row `y` from the AMX sums `acc` (output channel `o` at `acc[o·stride..]`): plus
    /// the bias, then [`Self::finish_epilogue`], in place; stored into the chunk's bands,
    /// interleaved when the epilogue has a depth-to-space.
    #[inline(always)]
    fn amx_row(&self, io: &mut ChunkIo, y: usize, acc: &mut [f32], stride: usize) {
        let Span { h, w, ty0: y0, .. } = io.span;
        let (oc, b) = (self.oc, self.epilogue.block());
        if b == 1 {
            // The sums plus the bias straight into the output row, finished there: one pass
            // over the sums, not one in place and a copy.
            for (o, rows) in io.out.iter_mut().enumerate() {
                let line = &mut rows[(y - y0) * w..][..w];
                let bias = self.bias[o];
                for (v, a) in line.iter_mut().zip(&acc[o * stride..][..w]) {
                    *v = a + bias;
                }
                self.finish_epilogue(line, io.res.map(|r| &r[(o * h + y) * w..][..w]));
            }
        } else {
            self.amx_finish(io.res, h, w, y, acc, stride);
            let acc = &*acc;
            for (p, rows) in io.out.iter_mut().enumerate() {
                for dy in 0..b {
                    let row = &mut rows[((y - y0) * b + dy) * w * b..][..w * b];
                    let src =
                        |dx: usize| &acc[self.epilogue.channel(p, dy * b + dx, oc) * stride..][..w];
                    if b == 2 && io.stream {
                        super::depth_to_space::interleave2_streaming(row, src(0), src(1));
                    } else {
                        super::depth_to_space::interleave(row, b, src);
                    }
                }
            }
        }
    }

    /// Input row `y`'s AMX sums `acc` (output channel `o` at `acc[o·stride..]`, `w` columns)
    /// plus the bias, then [`Self::finish_epilogue`] (with the image's residual `res`), in place.
    #[inline(always)]
    fn amx_finish(
        &self,
        res: Option<&[f32]>,
        h: usize,
        w: usize,
        y: usize,
        acc: &mut [f32],
        stride: usize,
    ) {
        for o in 0..self.oc {
            let line = &mut acc[o * stride..][..w];
            let bias = self.bias[o];
            for v in line.iter_mut() {
                *v += bias;
            }
            self.finish_epilogue(line, res.map(|r| &r[(o * h + y) * w..][..w]));
        }
    }

    /// [`Self::amx_pairs`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn amx_pairs_avx512(
        &self,
        tail: &Winograd3x3,
        res: Option<&[f32]>,
        h: usize,
        w: usize,
        y: usize,
        acc: &mut [f32],
        stride: usize,
        pairs: &mut [u32],
        rs: usize,
    ) {
        self.amx_pairs(tail, res, h, w, y, acc, stride, pairs, rs)
    }

    /// Input row `y`'s AMX sums through the epilogue ([`Self::amx_finish`]), then the `b`
    /// output rows its depth-to-space makes as the bf16 tail's input: `pairs` `[b,
    /// pair_rows, rs]`, pair row `p` channels `2p` and `2p + 1` of the tail ([`amx::pair_row`]).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn amx_pairs(
        &self,
        tail: &Winograd3x3,
        res: Option<&[f32]>,
        h: usize,
        w: usize,
        y: usize,
        acc: &mut [f32],
        stride: usize,
        pairs: &mut [u32],
        rs: usize,
    ) {
        self.amx_finish(res, h, w, y, acc, stride);
        let (oc, b, planes) = (self.oc, self.epilogue.block(), tail.ic);
        let acc = &*acc;
        let channel = |p: usize, k: usize| &acc[self.epilogue.channel(p, k, oc) * stride..][..w];
        let cp = planes.div_ceil(2);
        for (dy, rows) in pairs.chunks_exact_mut(pairs.len() / b).enumerate() {
            for (p, row) in rows.chunks_exact_mut(rs).take(cp).enumerate() {
                amx::pair_row(
                    &mut row[..w * b],
                    b,
                    |dx| channel(2 * p, dy * b + dx),
                    |dx| (2 * p + 1 < planes).then(|| channel(2 * p + 1, dy * b + dx)),
                );
            }
        }
    }

    /// The weights `[oc · 9, ic]` when the op computes by [`Self::direct_rows`]: few output
    /// channels and no depth-to-space.
    fn direct_weights(&self) -> Option<&[f32]> {
        self.direct
            .as_deref()
            .filter(|_| self.epilogue.depth_to_space.is_none())
            .map(Vec::as_slice)
    }

    /// Output rows `y0..y1` of a convolution with few output channels (at most
    /// [`DIRECT_MAX_OC`], no depth-to-space: the SR network's 32→3 tail, at the ×4 output size),
    /// into the chunk's bands (`io.out[o]`, row `y - y0`), with the epilogue.
    ///
    /// Winograd's products would be tiny here and its input transform, 2.25 values written per
    /// input value of every input channel, most of the time. Instead each input row `r` goes
    /// through one 1×1 product, `T_r = A · X_r` (`A` `[oc · 9, ic]`, the weights of every
    /// output channel and tap; `X_r` `[ic, w]`, the row of every input channel, read in place),
    /// on the same sgemm kernel as Winograd's products; output row `y` is then the sum of the
    /// nine tap rows of `T_{y-1}`, `T_y`, `T_{y+1}`, each shifted by its column offset
    /// ([`shifted_sum`]). The products of the last three rows are kept in a ring (`[3,
    /// direct_taps(oc), w]` floats, 492 kB for the 32→3 tail at 1280 wide), so each input row's
    /// product is computed once per
    /// chunk (twice for the row on each side of a chunk boundary).
    ///
    /// The direct sum before it (per output row and input channel, the nine taps added into the
    /// row's sums lane-wise) ran the 32→3 tail at 1280×720 at 13–20 G MAC/s on an Intel Xeon
    /// with AVX-512, bound by its own adds and multiplications: without FMA (which the
    /// transforms avoid, so that every SIMD level gives the same bits) and with a load and a
    /// store of the sums per input channel.
    fn direct_rows(&self, io: &mut ChunkIo, s: &mut Scratch) -> TractResult<()> {
        let Span { h, w, ty0, ty1 } = io.span;
        let (y0, y1) = (DIRECT_ROWS * ty0, (DIRECT_ROWS * ty1).min(h));
        let (ic, taps) = (self.ic, direct_taps(self.oc));
        let (ring, zeros) = at_least(&mut s.ring, (3 * taps + 1) * w).split_at_mut(3 * taps * w);
        zeros.fill(0.0);
        let x = io.x;
        // Row r of every input channel: [ic, w], rows h·w apart.
        let product = |r: usize, ring: &mut [f32]| -> TractResult<()> {
            let b = ArrayView2::from_shape((ic, w).strides((h * w, 1)), &x[r * w..])?;
            self.tap_product(b, &mut ring[(r % 3) * taps * w..][..taps * w])
        };
        for r in y0.saturating_sub(1)..(y0 + 1).min(h) {
            product(r, ring)?;
        }
        for y in y0..y1 {
            if y + 1 < h {
                product(y + 1, ring)?;
            }
            let t = ring_rows(ring, taps * w, y, h);
            for (o, band) in io.out.iter_mut().enumerate() {
                let line = &mut band[(y - y0) * w..][..w];
                self.shifted_row(
                    o,
                    t,
                    zeros,
                    w,
                    line,
                    io.res.map(|r| &r[(o * h + y) * w..][..w]),
                );
            }
        }
        Ok(())
    }

    /// `t = A · b` (`t` `[taps, w]`): the 1×1 products of one row `b` `[ic, w]` of the input
    /// of an op computing by shifted sums ([`Self::direct_rows`]).
    fn tap_product(&self, b: ArrayView2<f32>, t: &mut [f32]) -> TractResult<()> {
        let Some(a) = self.direct_weights() else {
            bail!("Winograd3x3: the shifted sums without their weights");
        };
        let taps = direct_taps(self.oc);
        let a = ArrayView2::from_shape((taps, self.ic), a)?;
        let mut t = ArrayViewMut2::from_shape((taps, b.ncols()), t)?;
        general_mat_mul(1.0, &a, &b, 0.0, &mut t);
        Ok(())
    }

    /// Output channel `o`'s row `y` (`line`) from the products `t` of input rows `y - 1`, `y`,
    /// `y + 1` ([`Self::tap_product`], tap rows `stride` apart; `None` outside the image, read
    /// as `zeros`), plus the bias and the epilogue (with the residual row `res`).
    #[inline(always)]
    fn shifted_row(
        &self,
        o: usize,
        t: [Option<&[f32]>; 3],
        zeros: &[f32],
        stride: usize,
        line: &mut [f32],
        res: Option<&[f32]>,
    ) {
        let w = line.len();
        // Tap (ky, kx)'s row.
        let tap = |i: usize| -> &[f32] {
            match t[i / 3] {
                Some(t) => &t[(o * 9 + i) * stride..][..w],
                None => &zeros[..w],
            }
        };
        shifted_sum(line, row_array::<9>(tap), self.bias[o]);
        self.finish_epilogue(line, res);
    }

    /// Output plane `p`'s rows for tile rows `ty0..ty1` into `rows`, its band: the `b²`
    /// channels depth-to-space puts in it (the one channel `p` without), each from `m`
    /// `[P², oc, tiles]` through `Aᵀ · A` lane-wise (one lane per tile, all the chunk's tiles at
    /// once, see [`input_tiles`] for their layout) and its T rows interleaved, plus the bias,
    /// LeakyReLU and the residual (`res`, the image's `[oc, h, w]`); then each output row is
    /// written once, in order (with `stream` and depth-to-space by 2, by non-temporal stores).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn output_plane<const T: usize, const P: usize, A: Algorithm<T, P>>(
        &self,
        p: usize,
        m: &[f32],
        tiles: usize,
        Span { h, w, ty0, ty1 }: Span,
        rows: &mut [f32],
        res: Option<&[f32]>,
        work: &mut [f32],
        stream: bool,
    ) {
        let (oc, tw) = (self.oc, w.div_ceil(T));
        let b = self.epilogue.block();
        // The chunk's output rows (of one channel, before depth-to-space).
        let nh = (T * ty1).min(h) - T * ty0;
        // s: [P (column l), T (row r), tiles]; f: [T (r), T (column), tiles];
        // lines: [b², nh, w] (with depth-to-space).
        let (s, rest) = work.split_at_mut(P * T * tiles);
        let (f, rest) = rest.split_at_mut(T * T * tiles);
        let lines = &mut rest[..if b == 1 { 0 } else { b * b * nh * w }];
        for k in 0..b * b {
            let o = self.epilogue.channel(p, k, oc);
            let mrow = |i: usize| &m[(i * oc + o) * tiles..][..tiles];
            for l in 0..P {
                let col = row_array(|i| mrow(i * P + l));
                A::at_lanes(col, RowsMut::packed(&mut s[l * T * tiles..], tiles), tiles);
            }
            for r in 0..T {
                let row = row_array(|l| &s[(l * T + r) * tiles..][..tiles]);
                A::at_lanes(row, RowsMut::packed(&mut f[r * T * tiles..], tiles), tiles);
            }
            // Without depth-to-space the values go straight to the output rows.
            let out = if b == 1 {
                &mut *rows
            } else {
                &mut lines[k * nh * w..]
            };
            for y in 0..nh {
                let (ty, r) = (ty0 + y / T, y % T);
                let t0 = (ty - ty0) * tw;
                let fr: [&[f32]; T] = row_array(|c| &f[(r * T + c) * tiles + t0..][..tw]);
                self.finish_line::<T, P, A>(
                    o,
                    fr,
                    &mut out[y * w..][..w],
                    res.map(|x| &x[(o * h + T * ty0 + y) * w..][..w]),
                );
            }
        }
        if b > 1 {
            let lines = &*lines;
            for y in 0..nh {
                for dy in 0..b {
                    let row = &mut rows[(y * b + dy) * w * b..][..w * b];
                    let src = |dx: usize| &lines[((dy * b + dx) * nh + y) * w..][..w];
                    if b == 2 && stream {
                        super::depth_to_space::interleave2_streaming(row, src(0), src(1));
                    } else {
                        super::depth_to_space::interleave(row, b, src);
                    }
                }
            }
        }
    }

    /// One output row of channel `o` (`line`, `w` wide) from the rows `f` of its tiles (`f[c][tx]`
    /// is column `T·tx + c`): plus the bias, then the LeakyReLU and the residual row `res`.
    #[inline(always)]
    fn finish_line<const T: usize, const P: usize, A: Algorithm<T, P>>(
        &self,
        o: usize,
        f: [&[f32]; T],
        line: &mut [f32],
        res: Option<&[f32]>,
    ) {
        let bias = self.bias[o];
        let full = line.len() / T;
        let (head, tail) = line.split_at_mut(full * T);
        A::join_tiles(head, f, bias);
        for (j, v) in tail.iter_mut().enumerate() {
            *v = f[j][full] + bias;
        }
        self.finish_epilogue(line, res);
    }

    /// The LeakyReLU, the quantizations and the residual row `res` of the epilogue, on one
    /// output row.
    #[inline(always)]
    fn finish_epilogue(&self, line: &mut [f32], res: Option<&[f32]>) {
        if let Some(alpha) = self.epilogue.leaky_relu {
            for v in line.iter_mut() {
                if *v < 0.0 {
                    *v *= alpha;
                }
            }
        }
        if let Some(q) = &self.epilogue.quant {
            q.apply(line);
        }
        if let Some(res) = res {
            for (v, r) in line.iter_mut().zip(res) {
                *v += *r;
            }
        }
        if let Some(q) = &self.epilogue.quant_after {
            q.apply(line);
        }
    }
}

/// One job of [`Winograd3x3::run_with_tail`]: the ring of the tail's 1×1 products of the op's
/// output rows (row `r` in slot `r % 3`, [`Self::len`] values, tap rows `rs` apart), the products of the
/// job's edge rows `slots` kept for after the jobs, and its rows (from `ra`) of the tail's
/// output planes.
struct TailJob<'a> {
    tail: &'a Winograd3x3,
    ra: usize,
    slots: [usize; 4],
    oh: usize,
    ow: usize,
    rs: usize,
    ring: &'a mut [f32],
    zeros: &'a [f32],
    edges: &'a mut [f32],
    out: Vec<&'a mut [f32]>,
}

impl TailJob<'_> {
    /// Values of one row's products: the tail's taps, `rs` apart.
    fn len(&self) -> usize {
        direct_taps(self.tail.oc) * self.rs
    }

    /// Where the products of the op's output row `r` go.
    fn slot(&mut self, r: usize) -> &mut [f32] {
        let len = self.len();
        &mut self.ring[(r % 3) * len..][..len]
    }

    /// After row `r`'s products: keeps them if `r` is an edge row, and sums the tail's output
    /// rows they complete: row `r - 1` (unless it is the job's first row inside the image,
    /// summed after the jobs) and, at the image's bottom, row `r`.
    fn finish(&mut self, r: usize) {
        let len = self.len();
        if !self.edges.is_empty() {
            let t = &self.ring[(r % 3) * len..][..len];
            for (i, _) in self.slots.iter().enumerate().filter(|(_, q)| **q == r) {
                self.edges[i * len..][..len].copy_from_slice(t);
            }
        }
        let done = r.checked_sub(1).filter(|&q| q > self.ra || q == 0);
        let last = (r + 1 == self.oh).then_some(r);
        for q in done.into_iter().chain(last) {
            let t = ring_rows(self.ring, len, q, self.oh);
            for (o, plane) in self.out.iter_mut().enumerate() {
                let line = &mut plane[(q - self.ra) * self.ow..][..self.ow];
                self.tail.shifted_row(o, t, self.zeros, self.rs, line, None);
            }
        }
    }
}

/// The products of input rows `y - 1`, `y`, `y + 1` in a ring of three (row `r` in slot
/// `r % 3`, `len` values each), `None` outside the image's `h` rows.
fn ring_rows(ring: &[f32], len: usize, y: usize, h: usize) -> [Option<&[f32]>; 3] {
    let mut t = [None; 3];
    for (ky, t) in t.iter_mut().enumerate() {
        *t = (y + ky)
            .checked_sub(1)
            .filter(|&r| r < h)
            .map(|r| &ring[(r % 3) * len..][..len]);
    }
    t
}

/// The rows of [`Winograd3x3::direct_rows`]'s 1×1 products for `oc` output channels: `oc · 9`
/// taps, padded with zero rows to a multiple of 16, the sgemm kernel's height with AVX-512 (and
/// twice that of its AVX2 and NEON kernels). Without the padding the 32→3 tail's 27 rows left
/// 11 to the crate's masked kernel, ~10 % of the op's time.
fn direct_taps(oc: usize) -> usize {
    (oc * 9).next_multiple_of(16)
}

/// `line[x] = bias + Σ_ky Σ_kx t[3·ky + kx][x + kx - 1]`, the terms outside the row (column
/// -1 and `w`) left out: a 3×3 convolution's output row from its nine tap rows ([`Winograd3x3::
/// direct_rows`]). Lane-wise over the interior columns, each tap row a slice of its own, so the
/// compiler vectorizes it without alias checks.
#[inline(always)]
fn shifted_sum(line: &mut [f32], t: [&[f32]; 9], bias: f32) {
    let w = line.len();
    let at = |x: usize, kxs: std::ops::Range<usize>| -> f32 {
        let mut v = bias;
        for ky in 0..3 {
            for kx in kxs.clone() {
                v += t[3 * ky + kx][x + kx - 1];
            }
        }
        v
    };
    if w == 1 {
        line[0] = at(0, 1..2);
        return;
    }
    line[0] = at(0, 1..3);
    line[w - 1] = at(w - 1, 0..2);
    let n = w - 2;
    let [t0, t1, t2, t3, t4, t5, t6, t7, t8] = [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 0),
        (4, 1),
        (5, 2),
        (6, 0),
        (7, 1),
        (8, 2),
    ]
    .map(|(i, d)| &t[i][d..d + n]);
    for (x, v) in line[1..w - 1].iter_mut().enumerate() {
        *v = bias + ((t0[x] + t1[x] + t2[x]) + (t3[x] + t4[x] + t5[x]) + (t6[x] + t7[x] + t8[x]));
    }
}

/// Where a chunk lies: its image's height and width, and its tile rows `ty0..ty1`.
#[derive(Clone, Copy, Debug)]
struct Span {
    h: usize,
    w: usize,
    ty0: usize,
    ty1: usize,
}

/// One chunk's inputs and outputs.
struct ChunkIo<'a> {
    /// The image's input `[ic, h, w]`.
    x: &'a [f32],
    /// The prologue's depthwise convolution, whose output the convolution reads.
    dw: Option<Depthwise<'a>>,
    /// The image's residual `[oc, h, w]`, when the epilogue adds one.
    res: Option<&'a [f32]>,
    /// The chunk's band of each output plane.
    out: Vec<&'a mut [f32]>,
    /// Where the chunk lies.
    span: Span,
    /// The Winograd algorithm of the call, `None` for the shifted sums.
    tile: Option<Tile>,
    /// Non-temporal stores for a fused depth-to-space by 2 ([`STREAM_MIN_BYTES`]).
    stream: bool,
}

/// The length of the buffers [`input_tiles`] and [`Winograd3x3::output_plane`] use for
/// images `w` wide, with depth-to-space by `b` (1 without), for a chunk of `tiles` tiles of
/// F(T,3) (`P = T + 2`).
fn work_len<const T: usize, const P: usize>(w: usize, b: usize, tiles: usize) -> usize {
    let wp = T * (w.div_ceil(T) + 1);
    let input = w + P * wp + P * P * (tiles + 1);
    // With depth-to-space, the chunk's rows (at most T per tile row, `tiles / tw` tile rows).
    let lines = if b == 1 {
        0
    } else {
        b * b * T * (tiles / w.div_ceil(T)) * w
    };
    let output = P * T * tiles + T * T * tiles + lines;
    input.max(output)
}

/// The transformed P×P patches of tile rows `ty0..ty1` of input channel `c`'s plane `[h, w]`
/// (zero padding 1), into `v` `[P², ic, tiles]` (tile `(ty - ty0)·tw + tx`). `plane` holds the
/// rows from `first` on (all of them, or the rows the chunk reads of a prologue's output).
///
/// Per tile row: its P input rows (a zero row for those in the padding) go through `Bᵀ ·`
/// lane-wise (one lane per column) into rows that hold columns -1 .. T·tw + T - 2 (zeros
/// outside the image); from each result row `i`, column `q` of every tile's patch (image column
/// `T·tx + q - 1`) is gathered into `cols[i][q]` at the tile's lane. Then `· B` runs on those
/// lane-wise over all the chunk's tiles at once, straight into `v` (for small images, a pass per
/// tile row would be mostly loop overhead).
#[inline(always)]
fn input_tiles<const T: usize, const P: usize, A: Algorithm<T, P>>(
    plane: &[f32],
    first: usize,
    Span { h, w, ty0, ty1 }: Span,
    c: usize,
    ic: usize,
    v: &mut [f32],
    work: &mut [f32],
) {
    let tw = w.div_ceil(T);
    let tiles = (ty1 - ty0) * tw;
    let one_row = ty1 - ty0 == 1;
    let wp = T * (tw + 1);
    let (zeros, rest) = work.split_at_mut(w);
    let (tb, rest) = rest.split_at_mut(P * wp);
    // cols: [P (row i), P (column q), tiles + 1].
    let pl = tiles + 1;
    let cols = &mut rest[..P * P * pl];
    zeros.fill(0.0);
    for row in tb.chunks_exact_mut(wp) {
        row[0] = 0.0;
        row[w + 1..].fill(0.0);
    }
    for ty in ty0..ty1 {
        let d = row_array(|j| {
            let y = (T * ty + j).wrapping_sub(1);
            if y < h {
                &plane[(y - first) * w..][..w]
            } else {
                &*zeros
            }
        });
        A::bt_lanes(d, RowsMut::strided(&mut tb[1..], wp, w), w);
        let t0 = (ty - ty0) * tw;
        for i in 0..P {
            let row = &tb[i * wp..][..wp];
            let cols_i = &mut cols[i * P * pl + t0..];
            A::split_tiles(row, RowsMut::strided(cols_i, pl, tw + 1));
            // Columns T and T + 1 of tile tx are columns 0 and 1 of tile tx + 1: one tile row
            // reads them shifted by a lane below; several need a copy, as the phases' value at
            // lane t0 + tw belongs to the next tile row, which overwrites it.
            for q in (0..P - T).filter(|_| !one_row) {
                let (a, b) = cols_i.split_at_mut((T + q) * pl);
                b[..tw].copy_from_slice(&a[q * pl + 1..][..tw]);
            }
        }
    }
    for i in 0..P {
        let first = (i * P * ic + c) * tiles;
        let cols_i = &cols[i * P * pl..];
        A::bt_lanes(
            row_array(|q| match q {
                _ if q >= T && one_row => &cols_i[(q - T) * pl + 1..][..tiles],
                _ => &cols_i[q * pl..][..tiles],
            }),
            RowsMut::strided(&mut v[first..], ic * tiles, tiles),
            tiles,
        );
    }
}

impl Op for Winograd3x3 {
    fn name(&self) -> StaticName {
        "KdsrWinograd3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let how = match self.choice() {
            _ if self.is_bf16() => "bf16 direct sum on AMX".to_string(),
            Some(TileChoice::Fixed(tile)) => tile.to_string(),
            Some(TileChoice::BySize) => "F(6,3) or F(4,3) by size and CPU".to_string(),
            None => "1×1 products + shifted sums".to_string(),
        };
        let then = match &self.epilogue.then {
            Some(t) => format!(", then {}→{} by shifted sums", t.ic, t.oc),
            None => String::new(),
        };
        let after = match &self.prologue {
            Some(p) if p.leaky_relu.is_some() => "depthwise 3×3 + LeakyReLU, then ",
            Some(_) => "depthwise 3×3, then ",
            None => "",
        };
        Ok(vec![format!(
            "{after}{how}, {}→{} channels{then}",
            self.ic, self.oc
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Winograd3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let with_dw = usize::from(self.prologue.is_some());
        ensure!(
            inputs.len() == 1 + with_dw + usize::from(self.epilogue.residual),
            "Winograd3x3: {} inputs",
            inputs.len()
        );
        let input = &inputs[0];
        let shape = input.shape().to_vec();
        ensure!(
            shape.len() == 4 && shape[1] == self.ic,
            "Winograd3x3: input {shape:?}, [n, {}, h, w] expected",
            self.ic
        );
        let (n, h, w) = (shape[0], shape[2], shape[3]);
        let res = match inputs.get(1 + with_dw) {
            Some(r) => {
                ensure!(
                    r.shape() == [n, self.oc, h, w],
                    "Winograd3x3: residual {:?}, [{n}, {}, {h}, {w}] expected",
                    r.shape(),
                    self.oc
                );
                Some(r.try_as_plain_ram()?)
            }
            None => None,
        };
        let res = res.as_ref().map(|r| r.as_slice::<f32>()).transpose()?;
        // The prologue's depthwise kernels, `[ic, 1, 3, 3]`.
        let dw = match with_dw {
            1 => {
                let k = &inputs[1];
                ensure!(
                    k.datum_type() == f32::datum_type() && k.len() == self.ic * 9,
                    "Winograd3x3: depthwise kernels {:?} {:?}, [{}, 1, 3, 3] f32 expected",
                    k.datum_type(),
                    k.shape(),
                    self.ic
                );
                Some(k.try_as_plain_ram()?)
            }
            _ => None,
        };
        let dw = dw.as_ref().map(|k| k.as_slice::<f32>()).transpose()?;
        let mut out = super::output_f32(&self.output_shape(n, h, w))?;
        let src = input.try_as_plain_ram()?;
        {
            let mut dst = out.try_as_plain_ram_mut()?;
            self.run(
                src.as_slice::<f32>()?,
                dw,
                res,
                dst.as_slice_mut::<f32>()?,
                n,
                h,
                w,
            )?;
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
        ensure!(
            inputs.len()
                == 1 + usize::from(self.prologue.is_some()) + usize::from(self.epilogue.residual),
            "Winograd3x3: {} inputs for prologue {:?} and residual {}",
            inputs.len(),
            self.prologue,
            self.epilogue.residual
        );
        let b = self.epilogue.block();
        Ok(tvec!(f32::fact([
            f.shape[0].clone(),
            self.out_channels().to_dim(),
            f.shape[2].clone() * b,
            f.shape[3].clone() * b,
        ])))
    }

    as_op!();
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// Thread pools of 2 and 3 threads.
    fn pools_of_2_and_3() -> Vec<rayon::ThreadPool> {
        [2, 3]
            .iter()
            .map(|&t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .expect("pool")
            })
            .collect()
    }

    /// A deterministic pseudo-random sequence in [-1, 1).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
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
    /// the calling thread and on pools of 2 and 3 threads, for each tile: within `bound` × 9·IC
    /// of the f64 direct sum (values in [-1, 1); float32 rounding of the transforms and
    /// products). The threaded runs must equal the single-threaded one exactly (each chunk does
    /// the same arithmetic), and so must the narrower SIMD variants this CPU can run (x86-64:
    /// AVX2, SSE2 baseline).
    fn matches_the_direct_sum(tile: Tile, bound: f64) {
        let pools = pools_of_2_and_3();
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
            let op = Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::Fixed(tile)).expect("op");
            let mut y = vec![0f32; n * oc * h * w];
            op.run_on(None, &x, None, None, &mut y, n, h, w, false)
                .expect("run");
            let bound = bound * (ic * 9) as f64;
            for ni in 0..n {
                let want = naive(&x[ni * ic * h * w..][..ic * h * w], &wts, &b, ic, oc, h, w);
                let got = &y[ni * oc * h * w..][..oc * h * w];
                for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                    let e = (f64::from(*g) - r).abs();
                    worst = worst.max(e / (ic * 9) as f64);
                    assert!(
                        e <= bound,
                        "{tile} {ic}→{oc} {h}x{w} image {ni}: output {i}: {g} vs {r}"
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            for level in [SimdLevel::Avx2, SimdLevel::Baseline] {
                if level == op.simd || (level == SimdLevel::Avx2 && op.simd == SimdLevel::Baseline)
                {
                    continue;
                }
                let mut lower = op.clone();
                lower.simd = level;
                let mut yl = vec![f32::NAN; n * oc * h * w];
                lower
                    .run_on(None, &x, None, None, &mut yl, n, h, w, false)
                    .expect("run");
                let same = y.iter().zip(&yl).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{ic}→{oc} {h}x{w}: {level:?} differs from {:?}",
                    op.simd
                );
            }
            for pool in &pools {
                let mut yp = vec![f32::NAN; n * oc * h * w];
                op.run_on(Some(pool), &x, None, None, &mut yp, n, h, w, false)
                    .expect("run");
                let same = y.iter().zip(&yp).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{ic}→{oc} {h}x{w} n {n}: {} threads differ",
                    pool.current_num_threads()
                );
            }
        }
        eprintln!("Winograd {tile}: worst |error| / (9·IC) {worst:.2e}");
    }

    /// F(4,3) within 4e-6 × 9·IC (worst measured on x86-64: 4.4e-7).
    #[test]
    fn f43_matches_the_direct_sum() {
        matches_the_direct_sum(Tile::F43, 4e-6);
    }

    /// F(6,3) within 4e-6 × 9·IC (worst measured on x86-64: 7.9e-7; its larger constants
    /// round more).
    #[test]
    fn f63_matches_the_direct_sum() {
        matches_the_direct_sum(Tile::F63, 4e-6);
    }

    /// [`TileChoice::BySize`] runs F(4,3) below [`F63_MIN_TILES`] 6×6 tiles per thread and
    /// F(6,3) from there (F(4,3) throughout with AVX-512), and computes what the op built for
    /// that tile computes, bit for bit; an op of few output channels computes by shifted sums
    /// whatever the size.
    #[test]
    fn the_tile_is_chosen_by_size() {
        let (ic, oc) = (8, 8);
        let (wts, b) = (values(oc * ic * 9, 8), values(oc, 9));
        let op = |choice| Winograd3x3::new(&wts, Some(&b), oc, ic, choice).expect("op");
        let by_size = op(TileChoice::BySize);
        // The rule, on a CPU where F(6,3) pays and on one where it does not (AVX-512).
        for (tiles, threads, f63) in [
            (127, 1, Tile::F43),
            (128, 1, Tile::F63),
            (255, 2, Tile::F43),
        ] {
            assert_eq!(
                tile_by_size(tiles, threads, true),
                f63,
                "{tiles} on {threads}"
            );
            assert_eq!(tile_by_size(tiles, threads, false), Tile::F43);
        }
        assert_eq!(tile_by_size(256, 2, true), Tile::F63);
        assert_eq!(tile_by_size(121, 0, true), Tile::F43);
        // This CPU. 64×64: 11² = 121 tiles; 72×72: 12² = 144.
        let f63 = if f63_pays() { Tile::F63 } else { Tile::F43 };
        assert_eq!(by_size.tile_for(1, 64, 64, 1), Some(Tile::F43));
        assert_eq!(by_size.tile_for(1, 72, 72, 1), Some(f63));
        assert_eq!(by_size.tile_for(1, 72, 72, 2), Some(Tile::F43));
        assert_eq!(by_size.tile_for(2, 64, 64, 1), Some(f63));
        assert_eq!(by_size.tile_for(1, 64, 64, 0), Some(Tile::F43));
        let few = Winograd3x3::new(&wts[..3 * ic * 9], None, 3, ic, TileChoice::BySize);
        assert_eq!(few.expect("op").tile_for(1, 720, 1280, 1), None);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        for (h, w, pool) in [(64, 64, None), (72, 72, None), (72, 72, Some(&pool))] {
            let threads = pool.map_or(1, rayon::ThreadPool::current_num_threads);
            let tile = by_size.tile_for(1, h, w, threads).expect("Winograd");
            let x = values(ic * h * w, 10);
            let [got, want] = [&by_size, &op(TileChoice::Fixed(tile))].map(|op| {
                let mut y = vec![f32::NAN; oc * h * w];
                op.run_on(pool, &x, None, None, &mut y, 1, h, w, false)
                    .expect("run");
                y
            });
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{h}x{w} on {threads} threads: by size differs from {tile}"
            );
        }
    }

    /// The fused epilogue gives, bit for bit, what the plain op followed by the ops it replaces
    /// gives: LeakyReLU, quantization (a plain pair, a lookup table), residual add,
    /// quantization, depth-to-space (both modes, blocks 2 and 3), alone and combined, on one
    /// thread, on a pool of 3 and with non-temporal stores.
    #[test]
    fn the_fused_epilogue_equals_the_ops_it_replaces() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        // 36 and 4 output channels: Winograd (4 with depth-to-space), 4 without and 3: the
        // shifted sums.
        for tile in [Tile::F43, Tile::F63] {
            for oc in [36, 4, 3] {
                fused_epilogue_case(&pool, oc, tile, false);
            }
        }
        // The AMX path's epilogue (its rows finished in the sums' buffer, or straight into
        // the output without depth-to-space) against the same chain after the plain bf16 op.
        if amx::available() {
            for oc in [36, 4, 3] {
                fused_epilogue_case(&pool, oc, Tile::F43, true);
            }
        }
    }

    fn fused_epilogue_case(pool: &rayon::ThreadPool, oc: usize, tile: Tile, bf16: bool) {
        let (n, ic, h, w) = (2, 5, 11, 14);
        let x = values(n * ic * h * w, 4);
        let res = values(n * oc * h * w, 5);
        let (wts, b) = (values(oc * ic * 9, 6), values(oc, 7));
        let mut plain =
            Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::Fixed(tile)).expect("op");
        if bf16 {
            plain = plain.with_bf16(&wts).expect("bf16");
        }
        // The plain output by the algorithm the fused op uses (with depth-to-space, Winograd).
        let mut winograd = plain.clone();
        winograd.direct = None;
        let [y, y_winograd] = [&plain, &winograd].map(|op| {
            let mut y = vec![0f32; n * oc * h * w];
            op.run_on(None, &x, None, None, &mut y, n, h, w, false)
                .expect("run");
            y
        });
        // An int8 graph's quantizations: a plain pair, and a lookup table (not affine).
        let pair = QuantTable::pair(1.0 / 0.05, 128, (0, 255), 0.05, 128);
        let mut lut = QuantTable::pair(1.0 / 0.03, 100, (0, 255), 0.03, 100);
        lut.affine = None;
        lut.table = Arc::new(std::array::from_fn(|i| ((i as f32 - 90.0) * 0.02).sin()));
        let quants = [None, Some(pair), Some(lut)];
        let stages = (0..4).flat_map(|s| (0..3).flat_map(move |q| (0..3).map(move |a| (s, q, a))));
        for (s, q, a) in stages {
            let (leaky_relu, residual) = ((s & 1 == 1).then_some(0.1f32), s & 2 == 2);
            let (quant, quant_after) = (quants[q].clone(), quants[a].clone());
            for depth_to_space in [None, Some((2, true)), Some((2, false)), Some((3, true))]
                .into_iter()
                .filter(|d| d.is_none_or(|(b, _)| oc % (b * b) == 0))
            {
                let e = Epilogue {
                    leaky_relu,
                    quant: quant.clone(),
                    residual,
                    quant_after: quant_after.clone(),
                    depth_to_space,
                    then: None,
                };
                // The unfused chain, in the graph's order.
                let op = plain.clone().with_epilogue(e.clone()).expect("epilogue");
                let direct = op.direct_weights().is_some();
                let mut want = if direct {
                    y.clone()
                } else {
                    y_winograd.clone()
                };
                if let Some(a) = leaky_relu {
                    want.iter_mut().filter(|v| **v < 0.0).for_each(|v| *v *= a);
                }
                if let Some(q) = &quant {
                    q.apply(&mut want);
                }
                if residual {
                    want.iter_mut().zip(&res).for_each(|(v, r)| *v += *r);
                }
                if let Some(q) = &quant_after {
                    q.apply(&mut want);
                }
                if let Some((b, crd)) = depth_to_space {
                    let d2s = super::super::depth_to_space::DepthToSpace { block: b, crd };
                    let mut shuffled = vec![0f32; want.len()];
                    d2s.run(&want, &mut shuffled, n, oc / (b * b), h, w);
                    want = shuffled;
                }
                let r = residual.then_some(res.as_slice());
                for (p, stream) in [(None, false), (Some(pool), false), (None, true)] {
                    let mut got = vec![f32::NAN; want.len()];
                    op.run_on(p, &x, None, r, &mut got, n, h, w, stream)
                        .expect("run");
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{tile} {oc} channels, bf16 {bf16}, {e:?}, pool {}, stream {stream}",
                        p.is_some()
                    );
                }
            }
        }
    }

    /// A tail fused into the op before it ([`Epilogue::then`]) computes what the two ops
    /// compute one after the other, bit for bit: both tiles, DCR and CRD depth-to-space, with
    /// and without a LeakyReLU and a residual before it and a LeakyReLU in the tail, one and
    /// two images, on the calling thread (one job, several bands: the image 140 wide gives
    /// one tile row per chunk) and on pools of 2 and 3 threads (jobs of a few tile rows, whose
    /// boundary rows are summed after the jobs), sizes with partial tiles, one tile row and
    /// one row.
    #[test]
    fn a_fused_tail_equals_the_two_ops() {
        let pools = pools_of_2_and_3();
        let (ic, planes, toc) = (5, 6, 3);
        let oc = planes * 4;
        let (wts, b) = (values(oc * ic * 9, 11), values(oc, 12));
        let (tw, tb) = (values(toc * planes * 9, 13), values(toc, 14));
        for tile in [Tile::F43, Tile::F63] {
            for (s, crd) in (0..4).flat_map(|s| [(s, false), (s, true)]) {
                let (leaky_relu, residual) = ((s & 1 == 1).then_some(0.1f32), s & 2 == 2);
                let op =
                    Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::Fixed(tile)).expect("op");
                let up = op
                    .with_epilogue(Epilogue {
                        leaky_relu,
                        residual,
                        depth_to_space: Some((2, crd)),
                        ..Epilogue::default()
                    })
                    .expect("epilogue");
                let mut tail =
                    Winograd3x3::new(&tw, Some(&tb), toc, planes, TileChoice::Fixed(tile))
                        .expect("tail");
                if s == 3 {
                    tail = tail
                        .with_epilogue(Epilogue {
                            leaky_relu: Some(0.2),
                            ..Epilogue::default()
                        })
                        .expect("tail epilogue");
                }
                let mut e = up.epilogue.clone();
                e.then = Some(Arc::new(tail.clone()));
                let fused = up.clone().with_epilogue(e).expect("fused");
                for &(n, h, w) in &[(1, 37, 140), (2, 29, 23), (1, 4, 9), (1, 1, 7), (2, 2, 1)] {
                    let x = values(n * ic * h * w, 15);
                    let res = values(n * oc * h * w, 16);
                    let r = residual.then_some(res.as_slice());
                    let mut mid = vec![0f32; n * planes * 4 * h * w];
                    up.run_on(None, &x, None, r, &mut mid, n, h, w, false)
                        .expect("upsampler");
                    let mut want = vec![0f32; n * toc * 4 * h * w];
                    tail.run_on(None, &mid, None, None, &mut want, n, 2 * h, 2 * w, false)
                        .expect("tail");
                    assert_eq!(fused.output_shape(n, h, w), [n, toc, 2 * h, 2 * w]);
                    for p in [None, Some(&pools[0]), Some(&pools[1])] {
                        let mut got = vec![f32::NAN; want.len()];
                        fused
                            .run_on(p, &x, None, r, &mut got, n, h, w, false)
                            .expect("fused");
                        let bad = got
                            .iter()
                            .zip(&want)
                            .position(|(a, b)| a.to_bits() != b.to_bits());
                        assert!(
                            bad.is_none(),
                            "{tile} {n}x{h}x{w}, stage {s}, crd {crd}, threads {}: value {bad:?}",
                            p.map_or(1, |p| p.current_num_threads())
                        );
                    }
                }
            }
        }
        // What cannot take a tail: no depth-to-space, or channels that do not match.
        let plain = Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::BySize).expect("op");
        let tail = Arc::new(
            Winograd3x3::new(&tw, Some(&tb), toc, planes, TileChoice::BySize).expect("tail"),
        );
        let no_d2s = Epilogue {
            then: Some(tail.clone()),
            ..Epilogue::default()
        };
        assert!(plain.clone().with_epilogue(no_d2s).is_err());
        let wrong = values(toc * 3 * planes * 9, 17);
        let wrong =
            Winograd3x3::new(&wrong, Some(&tb), toc, 3 * planes, TileChoice::BySize).expect("tail");
        let mismatch = Epilogue {
            depth_to_space: Some((2, false)),
            then: Some(Arc::new(wrong)),
            ..Epilogue::default()
        };
        assert!(plain.with_epilogue(mismatch).is_err());
    }

    /// An op with a depthwise prologue ([`Prologue`]) computes what the op without it computes
    /// on the depthwise convolution's output, bit for bit: that output computed alone by the
    /// same rows ([`Depthwise::row`]), for F(4,3), F(6,3) and bf16 on AMX (where the CPU has
    /// it), with and without the LeakyReLU and a bias, with a LeakyReLU and a residual after the
    /// convolution, one and two images, sizes with partial tiles, one row and one column, on the
    /// calling thread (chunks of a few tile rows, each computing its rows and the one on each
    /// side) and pools of 2 and 3. `Depthwise::row` itself is within 9 · 2⁻²³ of the float64
    /// sum (nine terms of magnitude < 1, values in [-1, 1)).
    #[test]
    fn a_depthwise_prologue_equals_the_ops_it_replaces() {
        let pools = pools_of_2_and_3();
        let (ic, oc) = (6, 8);
        let (wts, b) = (values(oc * ic * 9, 31), values(oc, 32));
        let kernel = values(ic * 9, 33);
        let dw_bias = values(ic, 34);
        let variants = [
            (Some(Tile::F43), false),
            (Some(Tile::F63), false),
            (None, true),
        ];
        for (tile, bf16) in variants.into_iter().filter(|v| !v.1 || amx::available()) {
            let choice = TileChoice::Fixed(tile.unwrap_or(Tile::F43));
            for (leaky_relu, bias) in [
                (None, None),
                (Some(0.1f32), Some(&dw_bias)),
                (Some(0.3), None),
            ] {
                let mut plain = Winograd3x3::new(&wts, Some(&b), oc, ic, choice).expect("op");
                if bf16 {
                    plain = plain.with_bf16(&wts).expect("bf16");
                }
                let plain = plain
                    .with_epilogue(Epilogue {
                        leaky_relu: Some(0.2),
                        residual: true,
                        ..Epilogue::default()
                    })
                    .expect("epilogue");
                let prologue = Prologue {
                    bias: bias.map(|b| Arc::new(b.clone())),
                    leaky_relu,
                };
                let fused = plain.clone().with_prologue(prologue).expect("prologue");
                let dw = Depthwise {
                    kernel: &kernel,
                    bias: bias.map(Vec::as_slice),
                    leaky_relu,
                };
                for &(n, h, w) in &[(1, 23, 29), (2, 7, 5), (1, 1, 9), (1, 6, 1), (1, 40, 3)] {
                    let x = values(n * ic * h * w, 35);
                    let res = values(n * oc * h * w, 36);
                    let zeros = vec![0f32; w];
                    let mut mid = vec![f32::NAN; x.len()];
                    for (i, plane) in mid.chunks_exact_mut(h * w).enumerate() {
                        let src = &x[i * h * w..][..h * w];
                        for (y, row) in plane.chunks_exact_mut(w).enumerate() {
                            dw.row(src, i % ic, h, w, y, &zeros, row);
                        }
                    }
                    let mut want = vec![0f32; n * oc * h * w];
                    plain
                        .run_on(None, &mid, None, Some(&res), &mut want, n, h, w, false)
                        .expect("plain");
                    for p in [None, Some(&pools[0]), Some(&pools[1])] {
                        let mut got = vec![f32::NAN; want.len()];
                        fused
                            .run_on(p, &x, Some(&kernel), Some(&res), &mut got, n, h, w, false)
                            .expect("fused");
                        let bad = got
                            .iter()
                            .zip(&want)
                            .position(|(a, b)| a.to_bits() != b.to_bits());
                        assert!(
                            bad.is_none(),
                            "{tile:?} bf16 {bf16}, leaky {leaky_relu:?}, bias {}, {n}x{h}x{w}, threads {}: value {bad:?}",
                            bias.is_some(),
                            p.map_or(1, |p| p.current_num_threads())
                        );
                    }
                    // The depthwise rows against float64.
                    for (i, plane) in mid.chunks_exact(h * w).enumerate() {
                        let c = i % ic;
                        let src = &x[i * h * w..][..h * w];
                        for (j, got) in plane.iter().enumerate() {
                            let (y, xx) = (j / w, j % w);
                            let mut s = f64::from(bias.map_or(0.0, |b| b[c]));
                            for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                                let (iy, ix) =
                                    ((y + ky).wrapping_sub(1), (xx + kx).wrapping_sub(1));
                                if iy < h && ix < w {
                                    s += f64::from(kernel[c * 9 + ky * 3 + kx])
                                        * f64::from(src[iy * w + ix]);
                                }
                            }
                            if s < 0.0 {
                                s *= f64::from(leaky_relu.unwrap_or(1.0));
                            }
                            let d = (f64::from(*got) - s).abs();
                            assert!(d <= 9.0 * 2f64.powi(-23), "depthwise row: |Δ| {d:e}");
                        }
                    }
                }
            }
        }
        // What cannot take one: an op computing by shifted sums, a bias of the wrong length;
        // and a call without the kernels, or with too few.
        let direct =
            Winograd3x3::new(&values(3 * ic * 9, 37), None, 3, ic, TileChoice::BySize).expect("op");
        assert!(direct.with_prologue(Prologue::default()).is_err());
        let op = Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::BySize).expect("op");
        let wrong = Prologue {
            bias: Some(Arc::new(vec![0.0; ic + 1])),
            leaky_relu: None,
        };
        assert!(op.clone().with_prologue(wrong).is_err());
        let fused = op.with_prologue(Prologue::default()).expect("prologue");
        let (h, w) = (5, 6);
        let x = values(ic * h * w, 38);
        let mut y = vec![0f32; oc * h * w];
        assert!(
            fused
                .run_on(None, &x, None, None, &mut y, 1, h, w, false)
                .is_err()
        );
        let short = &kernel[..ic * 9 - 1];
        assert!(
            fused
                .run_on(None, &x, Some(short), None, &mut y, 1, h, w, false)
                .is_err()
        );
    }

    /// A bf16 tail fused into a bf16 upsampler ([`Winograd3x3::amx_tail_rows`]) against the
    /// two bf16 ops: the tail's inputs are the same bf16-rounded values either way and every
    /// product of two bf16 values is exact in float32, so the two differ only in the order of
    /// the float32 sums, each of 9·IC products and the bias: by at most 2 · 9·IC · 2⁻²⁴ times
    /// the sum of the terms' magnitudes (taken in float64 from the rounded values). One and two
    /// images, sizes with a partial group of 32 output columns, one row, one column; the
    /// calling thread and pools of 2 and 3 (jobs and boundary rows); a tail of 6 channels (one
    /// step of 32, pair rows past the channels) and of 40 (two steps); both depth-to-space
    /// modes, with and without LeakyReLU and a residual. Skipped without AMX.
    #[test]
    fn a_fused_bf16_tail_matches_the_two_ops() {
        if !amx::available() {
            eprintln!("no AMX bf16 here: skipped");
            return;
        }
        let pools = pools_of_2_and_3();
        for (ic, planes, toc) in [(5, 6, 3), (32, 40, 2)] {
            let oc = planes * 4;
            let (wts, b) = (values(oc * ic * 9, 21), values(oc, 22));
            let (tw, tb) = (values(toc * planes * 9, 23), values(toc, 24));
            for (s, crd) in (0..4).flat_map(|s| [(s, false), (s, true)]) {
                let (leaky_relu, residual) = ((s & 1 == 1).then_some(0.1f32), s & 2 == 2);
                let up = Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::BySize)
                    .and_then(|op| op.with_bf16(&wts))
                    .and_then(|op| {
                        op.with_epilogue(Epilogue {
                            leaky_relu,
                            residual,
                            depth_to_space: Some((2, crd)),
                            ..Epilogue::default()
                        })
                    })
                    .expect("upsampler");
                let tail = Winograd3x3::new(&tw, Some(&tb), toc, planes, TileChoice::BySize)
                    .and_then(|op| op.with_bf16(&tw))
                    .expect("tail");
                let mut e = up.epilogue.clone();
                e.then = Some(Arc::new(tail.clone()));
                let fused = up.clone().with_epilogue(e).expect("fused");
                for &(n, h, w) in &[(1, 23, 21), (2, 7, 17), (1, 1, 40), (1, 5, 1)] {
                    let x = values(n * ic * h * w, 25);
                    let res = values(n * oc * h * w, 26);
                    let r = residual.then_some(res.as_slice());
                    let mut mid = vec![0f32; n * planes * 4 * h * w];
                    up.run_on(None, &x, None, r, &mut mid, n, h, w, false)
                        .expect("upsampler");
                    let (oh, ow) = (2 * h, 2 * w);
                    let mut want = vec![0f32; n * toc * oh * ow];
                    tail.run_on(None, &mid, None, None, &mut want, n, oh, ow, false)
                        .expect("tail");
                    // Σ|terms| of each tail output, from the rounded values.
                    let mut mag = vec![0f64; want.len()];
                    for ((ni, o), (yy, xx)) in (0..n)
                        .flat_map(|ni| (0..toc).map(move |o| (ni, o)))
                        .flat_map(|no| {
                            (0..oh).flat_map(move |y| (0..ow).map(move |x| (no, (y, x))))
                        })
                    {
                        let mut m = f64::from(tb[o].abs());
                        for c in 0..planes {
                            for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                                let (iy, ix) =
                                    ((yy + ky).wrapping_sub(1), (xx + kx).wrapping_sub(1));
                                if iy < oh && ix < ow {
                                    let v = mid[((ni * planes + c) * oh + iy) * ow + ix];
                                    let g = tw[((o * planes + c) * 3 + ky) * 3 + kx];
                                    m += f64::from(amx::round_bf16(v).abs())
                                        * f64::from(amx::round_bf16(g).abs());
                                }
                            }
                        }
                        mag[((ni * toc + o) * oh + yy) * ow + xx] = m;
                    }
                    let scale = 2.0 * 9.0 * planes as f64 * 2f64.powi(-24);
                    for p in [None, Some(&pools[0]), Some(&pools[1])] {
                        let mut got = vec![f32::NAN; want.len()];
                        fused
                            .run_on(p, &x, None, r, &mut got, n, h, w, false)
                            .expect("fused");
                        let bad = (0..want.len()).find(|&i| {
                            let d = f64::from(got[i] - want[i]).abs();
                            d.is_nan() || d > scale * mag[i]
                        });
                        assert!(
                            bad.is_none(),
                            "{ic}→{oc}→{toc}, {n}x{h}x{w}, stage {s}, crd {crd}, threads {}: value {bad:?}: {} vs {}",
                            p.map_or(1, |p| p.current_num_threads()),
                            bad.map_or(0.0, |i| got[i]),
                            bad.map_or(0.0, |i| want[i]),
                        );
                    }
                }
            }
            // Precisions do not mix: a float32 tail does not go into a bf16 upsampler.
            let up = Winograd3x3::new(&wts, Some(&b), oc, ic, TileChoice::BySize)
                .and_then(|op| op.with_bf16(&wts))
                .expect("upsampler");
            let f32_tail =
                Winograd3x3::new(&tw, Some(&tb), toc, planes, TileChoice::BySize).expect("tail");
            let mixed = Epilogue {
                depth_to_space: Some((2, false)),
                then: Some(Arc::new(f32_tail)),
                ..Epilogue::default()
            };
            assert!(up.with_epilogue(mixed).is_err());
        }
    }
}
