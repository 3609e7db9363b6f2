//! A 3×3 convolution in bf16 on Intel AMX (Sapphire Rapids and later Xeons): the reduced
//! precision path of [`super::winograd::Winograd3x3`] (`kdsr-edge --precision bf16`).
//!
//! AMX multiplies 16×32 bf16 tiles into 16×16 float32 accumulators (`tdpbf16ps`, 8,192
//! multiply-adds an instruction); on the Intel VM of these sessions a loop of them ran 860–1,120
//! G MAC/s on one vCPU (`runtime/examples/amx-rate.rs`), ~10× float32 sgemm. At that rate the direct
//! sum (9 multiply-adds per output and channel pair) is cheaper than Winograd's transforms, so
//! this path does the direct sum, as an implicit GEMM with no im2col copy:
//!
//! - the weights become, once per op, one A tile per (16 output channels, tap, 32 input
//!   channels): 16 rows of output channels × 32 input channels in bf16 ([`Bf16Weights`]);
//! - a chunk's input rows (one row of zero padding above and below, one column left and right)
//!   are converted once per call to bf16 channel pairs, `[row][channel pair][column]` of u32
//!   (the "VNNI" layout the B operand of `tdpbf16ps` takes), so that the B tile of a tap and 16
//!   output columns is 16 rows (channel pairs) of 64 bytes (16 columns × 2 channels) read in
//!   place, with the row stride;
//! - each output row is then, per 2 blocks of 16 output channels and 2 groups of 16 columns, 4
//!   accumulator tiles summed over the 9 taps and the input channels in steps of 32, and stored
//!   as `[output channel][column]` rows, NCHW's own order, for the op's epilogue.
//!
//! Rounding: inputs and weights are rounded to bf16 (8 significant bits, round to nearest
//! even), the sums are float32, so outputs differ from the float32 convolution by about 2⁻⁸
//! relative to the terms' magnitudes; `tests` bound it against a float64 sum of the bf16-rounded
//! values (what the hardware computes, up to the order of the sums) and the shipped models'
//! PSNR is measured with it (`scripts/ops-psnr.sh`).
//!
//! Linux only: a process must ask the kernel for the AMX state (`arch_prctl`) before its first
//! tile instruction ([`available`]).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise::Depthwise;

/// Output channels per accumulator tile (its rows) and columns per tile (its 16 float32s).
pub const BLOCK: usize = 16;
/// Input channels per step (32 bf16 per row of an A tile).
const K_STEP: usize = 32;

/// 1 KiB, one full tile, aligned as the hardware reads it best.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct TileBytes([u16; 512]);

/// The weights of a 3×3 convolution as AMX A tiles: for each block of 16 output channels, tap
/// `ky·3 + kx` and step of 32 input channels, 16 rows (output channels) of 32 bf16 (input
/// channels), zeros past `oc` and `ic`: the matrix `[oc, 9 · ic']` ([`Bf16Rows`]), column
/// `tap · ic' + c`, with `ic'` the input channels up to a multiple of 32.
#[derive(Clone, Debug, PartialEq)]
pub struct Bf16Weights {
    rows: Bf16Rows,
    /// Output channels.
    pub oc: usize,
    /// Input channels.
    pub ic: usize,
}

/// `v` rounded to bf16 (round to nearest even; the values here are finite), as the top 16 bits
/// of a float32.
#[inline(always)]
fn bf16_bits(v: f32) -> u32 {
    let bits = v.to_bits();
    bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) & 0xffff_0000
}

/// Float32 pairs `(a, b)` as one u32 of two bf16: `a` in the low half.
#[inline(always)]
fn pair(a: f32, b: f32) -> u32 {
    bf16_bits(b) | (bf16_bits(a) >> 16)
}

/// One row of a B operand in bf16 pairs, from channels `a` and `b` (zeros without `b`) after a
/// depth-to-space by `block`: `dst[x·block + dx] = (a(dx)[x], b(dx)[x])`, for the `dst.len() /
/// block` columns of each `a(dx)` (ONNX `DepthToSpace`'s interleave of one output row, rounded
/// to bf16 as [`conv_rows`] rounds its input). Inlined, so that it is compiled for the
/// caller's vector instructions.
#[inline(always)]
pub fn pair_row<'a>(
    dst: &mut [u32],
    block: usize,
    a: impl Fn(usize) -> &'a [f32],
    b: impl Fn(usize) -> Option<&'a [f32]>,
) {
    let w = dst.len() / block;
    if block == 2 {
        let (a0, a1) = (&a(0)[..w], &a(1)[..w]);
        match (b(0), b(1)) {
            (Some(b0), Some(b1)) => {
                let (b0, b1) = (&b0[..w], &b1[..w]);
                for (x, d) in dst.chunks_exact_mut(2).enumerate() {
                    d[0] = pair(a0[x], b0[x]);
                    d[1] = pair(a1[x], b1[x]);
                }
            }
            _ => {
                for (x, d) in dst.chunks_exact_mut(2).enumerate() {
                    d[0] = pair(a0[x], 0.0);
                    d[1] = pair(a1[x], 0.0);
                }
            }
        }
        return;
    }
    for dx in 0..block {
        let a = &a(dx)[..w];
        let b = b(dx);
        for x in 0..w {
            dst[x * block + dx] = pair(a[x], b.map_or(0.0, |b| b[x]));
        }
    }
}

/// `v` rounded to bf16, as a float32 (for references).
pub fn round_bf16(v: f32) -> f32 {
    f32::from_bits(bf16_bits(v))
}

impl Bf16Weights {
    /// Packs OIHW weights `[oc, ic, 3, 3]`.
    pub fn new(weights: &[f32], oc: usize, ic: usize) -> TractResult<Self> {
        ensure!(
            weights.len() == oc * ic * 9 && oc > 0 && ic > 0,
            "bf16 convolution: {oc}×{ic}×3×3 weights expected"
        );
        let kp = ic.div_ceil(K_STEP) * K_STEP;
        let mut a = vec![0f32; oc * 9 * kp];
        for o in 0..oc {
            for c in 0..ic {
                for tap in 0..9 {
                    a[(o * 9 + tap) * kp + c] = weights[(o * ic + c) * 9 + tap];
                }
            }
        }
        Ok(Self {
            rows: Bf16Rows::new(&a, oc, 9 * kp)?,
            oc,
            ic,
        })
    }

    /// Blocks of 16 output channels.
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_os = "linux")),
        allow(dead_code)
    )]
    fn blocks(&self) -> usize {
        self.oc.div_ceil(BLOCK)
    }

    /// Steps of 32 input channels.
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_os = "linux")),
        allow(dead_code)
    )]
    fn steps(&self) -> usize {
        self.ic.div_ceil(K_STEP)
    }
}

/// A matrix `[m, k]` as AMX A tiles for 1×1 products ([`products`]): for each block of 16
/// rows and step of 32 columns, 16 rows of 32 bf16, zeros past `m` and `k`.
#[derive(Clone)]
pub struct Bf16Rows {
    tiles: Vec<TileBytes>,
    /// Rows.
    pub m: usize,
    /// Columns (the products' input channels).
    pub k: usize,
}

impl std::fmt::Debug for Bf16Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bf16Rows({}×{})", self.m, self.k)
    }
}

impl PartialEq for Bf16Rows {
    fn eq(&self, other: &Self) -> bool {
        self.m == other.m
            && self.k == other.k
            && self.tiles.iter().zip(&other.tiles).all(|(a, b)| a.0 == b.0)
    }
}

impl Bf16Rows {
    /// Packs the row-major `a` `[m, k]`.
    pub fn new(a: &[f32], m: usize, k: usize) -> TractResult<Self> {
        ensure!(
            a.len() == m * k && m > 0 && k > 0,
            "bf16 products: a {m}×{k} matrix expected, {} values",
            a.len()
        );
        let (blocks, steps) = (m.div_ceil(BLOCK), k.div_ceil(K_STEP));
        let mut tiles = vec![TileBytes([0; 512]); blocks * steps];
        for r in 0..m {
            for c in 0..k {
                tiles[(r / BLOCK) * steps + c / K_STEP].0[(r % BLOCK) * K_STEP + c % K_STEP] =
                    (bf16_bits(a[r * k + c]) >> 16) as u16;
            }
        }
        Ok(Self { tiles, m, k })
    }

    /// Rows of the products [`products`] writes: `m` up to a multiple of 16.
    pub fn padded_rows(&self) -> usize {
        self.m.div_ceil(BLOCK) * BLOCK
    }

    /// Rows of bf16 pairs [`products`] reads: `k / 2` up to a multiple of 16.
    pub fn pair_rows(&self) -> usize {
        self.k.div_ceil(K_STEP) * K_STEP / 2
    }
}

/// Columns [`products`] computes at a time: the width of its rows is a multiple of this.
pub const PRODUCT_COLUMNS: usize = 2 * BLOCK;

/// The 1×1 products `out = A · B` on AMX: `B` is `pairs` `[a.pair_rows()][stride]` (row `p`
/// holds channels `2p` and `2p + 1` of each column as bf16 pairs, [`pair_row`]; rows past the
/// matrix's `k / 2` zero), `out` `[a.padded_rows()][stride]` float32, both `stride` columns
/// wide, a multiple of [`PRODUCT_COLUMNS`]. Loads its own tile configuration and releases the
/// tiles after (so it may run inside [`conv_rows`]'s `row`, which configures them anew).
pub fn products(a: &Bf16Rows, pairs: &[u32], stride: usize, out: &mut [f32]) -> TractResult<()> {
    ensure!(
        stride % PRODUCT_COLUMNS == 0
            && pairs.len() >= a.pair_rows() * stride
            && out.len() >= a.padded_rows() * stride,
        "bf16 products: {} pairs and {} outputs for a {}×{} matrix, {stride} columns",
        pairs.len(),
        out.len(),
        a.m,
        a.k
    );
    ensure!(available(), "bf16 products: this CPU or OS has no AMX bf16");
    if stride == 0 {
        return Ok(());
    }
    // SAFETY: available() saw AMX and AVX-512; the buffers' sizes are checked above.
    #[allow(unsafe_code)]
    unsafe {
        imp::products(a, pairs, stride, out);
    }
    Ok(())
}

/// Whether this CPU and OS run AMX bf16: CPUID's AMX-TILE and AMX-BF16 bits, and the kernel's
/// permission for the tile state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), asked
/// once per process. `KDSR_EDGE_AMX=off` answers no (to test the error path on an AMX machine).
pub fn available() -> bool {
    static GATE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GATE.get_or_init(|| {
        std::env::var("KDSR_EDGE_AMX").as_deref() != Ok("off") && imp::cpu_and_os_have_amx()
    })
}

/// A thread's buffers for [`conv_rows`], kept across calls.
#[derive(Default)]
#[cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux")),
    allow(dead_code)
)]
pub struct Scratch {
    input: Vec<u32>,
    acc: Vec<f32>,
    /// Two rows of a prologue's depthwise output and a zero row.
    dw: Vec<f32>,
}

impl Scratch {
    /// Empty buffers (for a `thread_local!`).
    pub const fn new() -> Self {
        Self {
            input: Vec::new(),
            acc: Vec::new(),
            dw: Vec::new(),
        }
    }
}

/// Output rows `y0..y1` of the convolution (zero padding 1) of `x` `[ic, h, w]` (or, with `dw`,
/// of its depthwise convolution, each input row computed as it is converted) by `wts`, each
/// handed to `row(y, acc, stride)` (to finish in place) as `oc` rows of float32 sums without the
/// bias, output channel `o` at `acc[o·stride..][..w]`.
#[allow(clippy::too_many_arguments)]
pub fn conv_rows(
    wts: &Bf16Weights,
    x: &[f32],
    dw: Option<Depthwise>,
    h: usize,
    w: usize,
    y0: usize,
    y1: usize,
    s: &mut Scratch,
    row: impl FnMut(usize, &mut [f32], usize),
) -> TractResult<()> {
    ensure!(
        x.len() == wts.ic * h * w && y0 <= y1 && y1 <= h,
        "bf16 convolution: input of {} values for [{}, {h}, {w}], rows {y0}..{y1}",
        x.len(),
        wts.ic
    );
    ensure!(
        available(),
        "bf16 convolution: this CPU or OS has no AMX bf16"
    );
    if y0 == y1 || w == 0 {
        return Ok(());
    }
    // SAFETY: available() saw AVX-512F and AVX-512BW.
    #[allow(unsafe_code)]
    unsafe {
        imp::conv_rows(wts, x, dw, h, w, y0, y1, s, row)
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code)]
mod imp {
    use super::*;
    use std::arch::asm;

    pub(super) fn cpu_and_os_have_amx() -> bool {
        if !(std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        {
            return false;
        }
        // SAFETY: CPUID leaf 7 exists on every CPU with AVX-512F.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
        const AMX_BF16: u32 = 1 << 22;
        const AMX_TILE: u32 = 1 << 24;
        if r.edx & AMX_BF16 == 0 || r.edx & AMX_TILE == 0 {
            return false;
        }
        // arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18): 0 when granted.
        let rc: i64;
        // SAFETY: a system call that only changes which XSAVE state this process may use.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") 158i64 => rc,
                in("rdi") 0x1023i64,
                in("rsi") 18i64,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        rc == 0
    }

    /// The tile configuration (palette 1): tiles 0–3 accumulators and 4–5 A (`rows` rows each:
    /// 16, or the output channels when fewer), 6–7 B (16 rows); 64 bytes a row.
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    impl Config {
        fn new(rows: usize) -> Self {
            let mut c = [0u8; 64];
            c[0] = 1;
            for t in 0..8 {
                c[16 + 2 * t] = 64;
                c[48 + t] = if t < 6 { rows as u8 } else { 16 };
            }
            Config(c)
        }
    }

    /// Input rows `y0 - 1 ..= y1` of `x` `[ic, h, w]` (zeros outside the image; with `dw`, of
    /// its depthwise convolution, computed here a row at a time into `tmp`) into `buf`
    /// `[rows][ic/2][wp]` bf16 pairs, column `x` at `x + 1` (zeros at 0 and past `w`).
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn to_pairs(
        x: &[f32],
        dw: Option<Depthwise>,
        ic: usize,
        h: usize,
        w: usize,
        y0: usize,
        y1: usize,
        cp: usize,
        wp: usize,
        buf: &mut [u32],
        tmp: &mut Vec<f32>,
    ) {
        if dw.is_some() && tmp.len() < 3 * w {
            tmp.resize(3 * w, 0.0);
        }
        let n = tmp.len();
        let (ta, rest) = tmp.split_at_mut(w.min(n));
        let (tb, zeros) = rest.split_at_mut(w.min(n - ta.len()));
        zeros.fill(0.0);
        for (r, yy) in (y0..y1 + 2).enumerate() {
            for p in 0..cp {
                let dst = &mut buf[(r * cp + p) * wp..][..wp];
                let y = yy.wrapping_sub(1);
                if y >= h || 2 * p >= ic {
                    dst.fill(0);
                    continue;
                }
                let has_b = 2 * p + 1 < ic;
                let (a, b): (&[f32], &[f32]) = match dw {
                    None => (
                        &x[((2 * p) * h + y) * w..][..w],
                        if has_b {
                            &x[((2 * p + 1) * h + y) * w..][..w]
                        } else {
                            &[]
                        },
                    ),
                    Some(dw) => {
                        let plane = |c: usize| &x[c * h * w..][..h * w];
                        dw.row(plane(2 * p), 2 * p, h, w, y, zeros, ta);
                        if has_b {
                            dw.row(plane(2 * p + 1), 2 * p + 1, h, w, y, zeros, tb);
                        }
                        (&ta[..], if has_b { &tb[..] } else { &[] })
                    }
                };
                dst[0] = 0;
                if has_b {
                    for ((d, a), b) in dst[1..=w].iter_mut().zip(a).zip(b) {
                        *d = pair(*a, *b);
                    }
                } else {
                    for (d, a) in dst[1..=w].iter_mut().zip(a) {
                        *d = pair(*a, 0.0);
                    }
                }
                dst[w + 1..].fill(0);
            }
        }
    }

    /// 2 blocks of output channels × 2 groups of 16 columns: `c` (block `ob`, columns
    /// `x0..x0+32`) and `c + 16·cs` (block `ob + 1`) from the A tiles at `a0` and `a1`
    /// (consecutive tiles per step) and the B tiles at `b + offsets[s]` (and 64 bytes on).
    ///
    /// # Safety
    /// The tile configuration is loaded; every address read or written is in its buffer.
    #[inline(always)]
    unsafe fn block2x2(
        a0: *const u16,
        a1: *const u16,
        b: *const u32,
        offsets: &[isize],
        bs: usize,
        c: *mut f32,
        cs: usize,
    ) {
        let c2 = unsafe { c.add(BLOCK * cs / 4) };
        // SAFETY: the caller's.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "mov {t}, qword ptr [{tab}]",
                "add {t}, {b}",
                "tileloadd tmm6, [{t} + {bs}*1]",
                "tileloadd tmm7, [{t} + {bs}*1 + 64]",
                "tileloadd tmm4, [{a0} + {s64}*1]",
                "tileloadd tmm5, [{a1} + {s64}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a0}, 1024",
                "add {a1}, 1024",
                "add {tab}, 8",
                "dec {n}",
                "jnz 2b",
                "tilestored [{c} + {cs}*1], tmm0",
                "tilestored [{c} + {cs}*1 + 64], tmm1",
                "tilestored [{c2} + {cs}*1], tmm2",
                "tilestored [{c2} + {cs}*1 + 64], tmm3",
                t = out(reg) _,
                tab = inout(reg) offsets.as_ptr() => _,
                n = inout(reg) offsets.len() => _,
                a0 = inout(reg) a0 => _,
                a1 = inout(reg) a1 => _,
                b = in(reg) b,
                bs = in(reg) bs,
                s64 = in(reg) 64usize,
                c = in(reg) c,
                c2 = in(reg) c2,
                cs = in(reg) cs,
                options(nostack),
            );
        }
    }

    /// [`block2x2`] for one block of output channels.
    ///
    /// # Safety
    /// As [`block2x2`].
    #[inline(always)]
    unsafe fn block1x2(
        a0: *const u16,
        b: *const u32,
        offsets: &[isize],
        bs: usize,
        c: *mut f32,
        cs: usize,
    ) {
        // SAFETY: the caller's.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "2:",
                "mov {t}, qword ptr [{tab}]",
                "add {t}, {b}",
                "tileloadd tmm6, [{t} + {bs}*1]",
                "tileloadd tmm7, [{t} + {bs}*1 + 64]",
                "tileloadd tmm4, [{a0} + {s64}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "add {a0}, 1024",
                "add {tab}, 8",
                "dec {n}",
                "jnz 2b",
                "tilestored [{c} + {cs}*1], tmm0",
                "tilestored [{c} + {cs}*1 + 64], tmm1",
                t = out(reg) _,
                tab = inout(reg) offsets.as_ptr() => _,
                n = inout(reg) offsets.len() => _,
                a0 = inout(reg) a0 => _,
                b = in(reg) b,
                bs = in(reg) bs,
                s64 = in(reg) 64usize,
                c = in(reg) c,
                cs = in(reg) cs,
                options(nostack),
            );
        }
    }

    /// [`super::conv_rows`], compiled for AVX-512 so that `row`, inlined here, is too.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX-512BW (every CPU with AMX does; [`available`] checked).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
    pub(super) unsafe fn conv_rows(
        wts: &Bf16Weights,
        x: &[f32],
        dw: Option<Depthwise>,
        h: usize,
        w: usize,
        y0: usize,
        y1: usize,
        s: &mut Scratch,
        mut row: impl FnMut(usize, &mut [f32], usize),
    ) -> TractResult<()> {
        let (blocks, steps) = (wts.blocks(), wts.steps());
        // Columns in pairs of 16-column groups; B tiles of the last group read up to column
        // wpad + 1 of the padded rows.
        let wpad = w.div_ceil(2 * BLOCK) * 2 * BLOCK;
        let wp = wpad + BLOCK;
        let cp = steps * K_STEP / 2;
        let rows = y1 - y0 + 2;
        if s.input.len() < rows * cp * wp {
            s.input.resize(rows * cp * wp, 0);
        }
        let acc_len = blocks * BLOCK * wpad;
        if s.acc.len() < acc_len {
            s.acc.resize(acc_len, 0.0);
        }
        to_pairs(x, dw, wts.ic, h, w, y0, y1, cp, wp, &mut s.input, &mut s.dw);
        // The B tile of (tap, step) for row 0, columns 0..16, in bytes from the buffer's start.
        let offsets: Vec<isize> = (0..9)
            .flat_map(|tap| {
                let (ky, kx) = (tap / 3, tap % 3);
                (0..steps).map(move |k| (((ky * cp + k * BLOCK) * wp + kx) * 4) as isize)
            })
            .collect();
        let per_block = 9 * steps;
        let config = Config::new(wts.oc.min(BLOCK));
        let bs = wp * 4;
        let input = s.input.as_ptr();
        // SAFETY: the configuration is valid (palette 1, rows ≤ 16, 64 bytes a row). Reads:
        // A tiles `(ob·9 + tap)·steps + k` < blocks·9·steps; B tiles of row y - y0 + ky ≤ rows - 1,
        // channel pairs < cp, columns x0 + kx .. x0 + kx + 32 ≤ wpad + 2 ≤ wp. Writes: rows
        // < blocks·16 of `acc` `[blocks·16][wpad]`, columns x0 .. x0 + 32 ≤ wpad.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
            for y in y0..y1 {
                // Taken anew after each row's `row(…)` borrowed the buffer.
                let acc = s.acc.as_mut_ptr();
                let brow = input.add((y - y0) * cp * wp);
                // Blocks of output channels outermost: their A tiles (18 KiB a pair of blocks)
                // stay in the L1 cache over the row, where the 4 blocks of the 32→128
                // upsampler's (72 KiB) would not.
                row_blocks(&wts.rows, per_block, brow, &offsets, bs, acc, wpad);
                row(y, &mut s.acc[..acc_len], wpad);
                // `row` may have run tiles of its own ([`super::products`]).
                asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
            }
            asm!("tilerelease", options(nostack));
        }
        Ok(())
    }

    /// [`super::products`].
    ///
    /// # Safety
    /// AMX is available and the buffers are as [`super::products`] checks.
    pub(super) unsafe fn products(a: &Bf16Rows, pairs: &[u32], stride: usize, out: &mut [f32]) {
        let steps = a.k.div_ceil(K_STEP);
        // The B tile of step k, columns 0..16, in bytes from the buffer's start.
        let offsets: Vec<isize> = (0..steps)
            .map(|k| (k * BLOCK * stride * 4) as isize)
            .collect();
        let config = Config::new(BLOCK);
        // SAFETY: reads A tiles `ob·steps + k` < blocks·steps, B rows < steps·16 = pair_rows()
        // at columns x0 .. x0 + 32 ≤ stride; writes rows < blocks·16 = padded_rows() of `out`
        // at the same columns.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
            row_blocks(
                a,
                steps,
                pairs.as_ptr(),
                &offsets,
                stride * 4,
                out.as_mut_ptr(),
                stride,
            );
            asm!("tilerelease", options(nostack));
        }
    }

    /// One row of products: for each pair of blocks of 16 rows of `a` (the last block alone
    /// when their number is odd) and each 32 columns `x0` of `c` (`[blocks·16][cw]` float32),
    /// [`block2x2`] (or [`block1x2`]) from `a`'s tiles of that block (`per_block` consecutive
    /// tiles, one per entry of `offsets`) and the B tiles at `b + x0`.
    ///
    /// # Safety
    /// The tile configuration is loaded; every tile read and row written is in its buffer.
    #[inline(always)]
    unsafe fn row_blocks(
        a: &Bf16Rows,
        per_block: usize,
        b: *const u32,
        offsets: &[isize],
        bs: usize,
        c: *mut f32,
        cw: usize,
    ) {
        let blocks = a.m.div_ceil(BLOCK);
        let tile = |ob: usize| unsafe { a.tiles.as_ptr().add(ob * per_block) as *const u16 };
        let mut ob = 0;
        while ob < blocks {
            let two = ob + 1 < blocks;
            for x0 in (0..cw).step_by(2 * BLOCK) {
                // SAFETY: the caller's.
                unsafe {
                    let c = c.add(ob * BLOCK * cw + x0);
                    if two {
                        block2x2(tile(ob), tile(ob + 1), b.add(x0), offsets, bs, c, cw * 4);
                    } else {
                        block1x2(tile(ob), b.add(x0), offsets, bs, c, cw * 4);
                    }
                }
            }
            ob += if two { 2 } else { 1 };
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[allow(unsafe_code)] // `unsafe fn` only to match the x86-64 signature; nothing unsafe in it
mod imp {
    use super::*;

    pub(super) fn cpu_and_os_have_amx() -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn conv_rows(
        _: &Bf16Weights,
        _: &[f32],
        _: Option<Depthwise>,
        _: usize,
        _: usize,
        _: usize,
        _: usize,
        _: &mut Scratch,
        _: impl FnMut(usize, &mut [f32], usize),
    ) -> TractResult<()> {
        bail!("bf16 convolution: AMX is x86-64 Linux only")
    }

    pub(super) unsafe fn products(_: &Bf16Rows, _: &[u32], _: usize, _: &mut [f32]) {
        unreachable!("bf16 products: available() is false off x86-64 Linux")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::winograd::tests::values;

    /// The convolution of bf16-rounded `x` and weights, summed in float64.
    fn reference(wts: &[f32], x: &[f32], oc: usize, ic: usize, h: usize, w: usize) -> Vec<f64> {
        let mut y = vec![0f64; oc * h * w];
        for o in 0..oc {
            for yy in 0..h {
                for xx in 0..w {
                    let mut s = 0f64;
                    for c in 0..ic {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) =
                                    ((yy + ky).wrapping_sub(1), (xx + kx).wrapping_sub(1));
                                if iy < h && ix < w {
                                    s += f64::from(round_bf16(
                                        wts[((o * ic + c) * 3 + ky) * 3 + kx],
                                    )) * f64::from(round_bf16(x[(c * h + iy) * w + ix]));
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

    #[test]
    fn rounds_to_nearest_even() {
        assert_eq!(round_bf16(1.0), 1.0);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: to the even one, 1.
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round_bf16(-2.5), -2.5);
    }

    /// Every shape class the shipped graphs have (3→32 head, 32→32 body, 32→128 upsampler,
    /// 32→3 tail, 64 channels of student-M) and widths that are not multiples of 32, against
    /// the float64 sum of the same bf16 values: the only difference is the order of float32 sums.
    #[test]
    fn matches_the_sum_of_the_rounded_values() {
        if !available() {
            eprintln!("no AMX bf16 here: skipped (the CLI's error for it is tested in tests/)");
            return;
        }
        for (oc, ic, h, w) in [
            (32, 3, 5, 33),
            (32, 32, 7, 16),
            (128, 32, 4, 45),
            (3, 32, 6, 70),
            (64, 64, 3, 31),
            (16, 48, 2, 1),
        ] {
            let wts = values(oc * ic * 9, 1 + oc as u64);
            let x = values(ic * h * w, 7 + w as u64);
            let want = reference(&wts, &x, oc, ic, h, w);
            let packed = Bf16Weights::new(&wts, oc, ic).expect("weights");
            let mut got = vec![f32::NAN; oc * h * w];
            let mut s = Scratch::default();
            // Two chunks, as the op calls it.
            for (y0, y1) in [(0, h / 2), (h / 2, h)] {
                conv_rows(&packed, &x, None, h, w, y0, y1, &mut s, |y, acc, stride| {
                    for o in 0..oc {
                        got[(o * h + y) * w..][..w].copy_from_slice(&acc[o * stride..][..w]);
                    }
                })
                .expect("conv_rows");
            }
            // Sums of 9·ic products of magnitude < 1, rounded per float32 addition.
            let bound = 9.0 * ic as f64 * 2f64.powi(-22);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (f64::from(*g) - w).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= bound,
                "{oc}←{ic} {h}×{w}: |Δ| {worst:e} > {bound:e}"
            );
        }
    }
}
