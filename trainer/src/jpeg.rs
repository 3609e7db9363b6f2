//! JPEG compression on the training device, as BasicSR's `DiffJPEG(differentiable=False)` that
//! Real-ESRGAN (and so the KDSR-GAN code) trains with.
//!
//! # Why a tensor op and not libjpeg
//! The degradation runs on the training device in batches; a libjpeg round trip (e.g. through the
//! `image` crate) would copy every batch to the host twice, run on the CPU one image at a time and
//! only take integer qualities. More importantly it is a *different distribution*: DiffJPEG is
//! not libjpeg (real-valued quality, unrounded quantisation tables, transposed tables, no 8-bit
//! rounding of the decoded pixels, 2×2 average-pooled chroma), and the official models were
//! trained on DiffJPEG's artefacts. This module reproduces DiffJPEG's arithmetic with batched
//! tensor ops, so the LR images follow Real-ESRGAN's training distribution and never leave the
//! device.
//!
//! # Steps (per sample `b` with quality `q_b`)
//! 1. `factor = 5000/q/100` if q < 50, else `(200 − 2q)/100` ([`quality_to_factor`]).
//! 2. `x·255`, zero padding at the bottom/right to a multiple of 16.
//! 3. Full-range JPEG YCbCr (0.299/0.587/0.114; Cb/Cr offset 128); Cb and Cr 4:2:0 by 2×2 average
//!    pooling.
//! 4. 8×8 blocks, level shift −128, DCT as a matmul `A·X·Aᵀ` with the orthonormal DCT-II matrix
//!    `A[u][x] = ½·α(u)·cos((2x+1)uπ/16)`, α(0) = 1/√2, α(u>0) = 1 ([`dct_matrix`]).
//! 5. Quantisation `round_half_even(coef / (T·factor))` with the Annex K luma / chroma tables
//!    **transposed** as DiffJPEG stores them, multiplied by the factor without integer rounding;
//!    dequantisation `·(T·factor)`.
//! 6. IDCT `Aᵀ·F·A + 128`, blocks merged, Cb/Cr 2× nearest-neighbour upsampling, back to RGB,
//!    clamp to [0, 255], `/255`, crop to the input size.
//!
//! A one-off comparison with BasicSR's `diffjpeg.py` (PyTorch 2.11, CPU) on a random
//! `[2,3,37,50]` batch at qualities 31.7 and 77.3 gave a largest difference of 1.8e-7.
//!
//! One deliberate difference: the scaled tables are clamped to ≥ 1 (as libjpeg does). For the
//! qualities Real-ESRGAN draws (30…95) every scaled entry is already ≥ 1 (the smallest, 10·0.1),
//! so nothing changes there; it only makes qualities above 95 defined (DiffJPEG divides by 0 at
//! q = 100; here q = 100 quantises with all-ones tables, a near-identity apart from the chroma
//! subsampling).

use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

/// The Annex K luminance quantisation table, natural order (row = vertical frequency).
pub const Y_TABLE: [[f32; 8]; 8] = [
    [16., 11., 10., 16., 24., 40., 51., 61.],
    [12., 12., 14., 19., 26., 58., 60., 55.],
    [14., 13., 16., 24., 40., 57., 69., 56.],
    [14., 17., 22., 29., 51., 87., 80., 62.],
    [18., 22., 37., 56., 68., 109., 103., 77.],
    [24., 35., 55., 64., 81., 104., 113., 92.],
    [49., 64., 78., 87., 103., 121., 120., 101.],
    [72., 92., 95., 98., 112., 100., 103., 99.],
];

/// The chrominance table of DiffJPEG: 99 everywhere except the top-left 4×4 block (Annex K).
pub fn c_table() -> [[f32; 8]; 8] {
    let top = [
        [17., 18., 24., 47.],
        [18., 21., 26., 66.],
        [24., 26., 56., 99.],
        [47., 66., 99., 99.],
    ];
    let mut t = [[99.0f32; 8]; 8];
    for i in 0..4 {
        for j in 0..4 {
            t[i][j] = top[i][j];
        }
    }
    t
}

/// DiffJPEG's quality → table factor: `5000/q/100` below 50, else `(200 − 2q)/100`.
pub fn quality_to_factor(quality: f64) -> f64 {
    if quality < 50.0 {
        5000.0 / quality / 100.0
    } else {
        (200.0 - quality * 2.0) / 100.0
    }
}

/// The 8×8 orthonormal DCT-II matrix `A[u][x] = ½·α(u)·cos((2x+1)uπ/16)` (computed in f64).
/// `A·X·Aᵀ` is DiffJPEG's `DCT8x8` (its `0.25·α(u)α(v)·Σ cos·cos` tensor) and `Aᵀ·F·A` its
/// `iDCT8x8`.
pub fn dct_matrix() -> [[f32; 8]; 8] {
    let mut a = [[0.0f32; 8]; 8];
    for u in 0..8 {
        let alpha = if u == 0 {
            std::f64::consts::FRAC_1_SQRT_2
        } else {
            1.0
        };
        for x in 0..8 {
            let c = ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos();
            a[u][x] = (0.5 * alpha * c) as f32;
        }
    }
    a
}

fn mat8(m: &[[f32; 8]; 8], device: Device) -> Tensor {
    let flat: Vec<f32> = m.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([8, 8]).to_device(device)
}

fn transpose8(m: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    let mut t = [[0.0f32; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            t[i][j] = m[j][i];
        }
    }
    t
}

/// DiffJPEG (see the [module docs](self)) for one device.
#[derive(Debug)]
pub struct DiffJpeg {
    dct: Tensor,
    y_table: Tensor,
    c_table: Tensor,
    to_ycc: Tensor,
    to_ycc_shift: Tensor,
    to_rgb: Tensor,
    device: Device,
}

impl DiffJpeg {
    /// The constant matrices on `device`.
    pub fn new(device: Device) -> Self {
        let to_ycc: [f32; 9] = [
            0.299, 0.587, 0.114, //
            -0.168_736, -0.331_264, 0.5, //
            0.5, -0.418_688, -0.081_312,
        ];
        let to_rgb: [f32; 9] = [
            1.0, 0.0, 1.402, //
            1.0, -0.344_136, -0.714_136, //
            1.0, 1.772, 0.0,
        ];
        Self {
            dct: mat8(&dct_matrix(), device),
            y_table: mat8(&transpose8(&Y_TABLE), device),
            c_table: mat8(&transpose8(&c_table()), device),
            to_ycc: Tensor::from_slice(&to_ycc)
                .reshape([3, 3, 1, 1])
                .to_device(device),
            to_ycc_shift: Tensor::from_slice(&[0.0f32, 128.0, 128.0]).to_device(device),
            to_rgb: Tensor::from_slice(&to_rgb)
                .reshape([3, 3, 1, 1])
                .to_device(device),
            device,
        }
    }

    /// Compresses and decompresses `x` `[B,3,H,W]` (values in [0, 1]; the caller clamps) with one
    /// quality per sample (`quality.len() == B`) or one for the whole batch. Qualities must be in
    /// (0, 100]. Returns `[B,3,H,W]` in [0, 1] (not rounded to 8 bits, as DiffJPEG).
    pub fn apply(&self, x: &Tensor, quality: &[f64]) -> Result<Tensor> {
        let s = x.size();
        if s.len() != 4 || s[1] != 3 {
            bail!("JPEG: expected a [B,3,H,W] batch, got {s:?}");
        }
        let (b, h, w) = (s[0], s[2], s[3]);
        if !(quality.len() == 1 || quality.len() as i64 == b) {
            bail!(
                "JPEG: {} qualities for a batch of {b} (give 1 or {b})",
                quality.len()
            );
        }
        if let Some(q) = quality
            .iter()
            .find(|q| !(q.is_finite() && **q > 0.0 && **q <= 100.0))
        {
            bail!("JPEG quality {q} is outside (0, 100]");
        }
        let factors: Vec<f32> = quality
            .iter()
            .map(|q| quality_to_factor(*q) as f32)
            .collect();
        let factor = Tensor::from_slice(&factors)
            .to_device(self.device)
            .reshape([-1, 1, 1, 1, 1]);
        let (hp, wp) = ((16 - h % 16) % 16, (16 - w % 16) % 16);
        let img = (x.to_kind(Kind::Float) * 255.0).constant_pad_nd([0, wp, 0, hp]);
        let (ph, pw) = (h + hp, w + wp);
        let ycc = img.conv2d(&self.to_ycc, Some(&self.to_ycc_shift), 1, 0, 1, 1);
        let y = ycc.narrow(1, 0, 1);
        let pool = |t: Tensor| t.avg_pool2d([2, 2], [2, 2], [0, 0], false, false, None::<i64>);
        let cb = pool(ycc.narrow(1, 1, 1));
        let cr = pool(ycc.narrow(1, 2, 1));
        let y_t = (&self.y_table * &factor).clamp_min(1.0);
        let c_t = (&self.c_table * &factor).clamp_min(1.0);
        let y = self.code_plane(&y, &y_t);
        let cb = self.code_plane(&cb, &c_t);
        let cr = self.code_plane(&cr, &c_t);
        let up = |t: Tensor| t.upsample_nearest2d([ph, pw], None, None);
        let ycc = Tensor::cat(&[y, up(cb), up(cr)], 1);
        let shift = Tensor::from_slice(&[0.0f32, -128.0, -128.0])
            .to_device(self.device)
            .reshape([1, 3, 1, 1]);
        let rgb = (ycc + shift).conv2d(&self.to_rgb, None::<Tensor>, 1, 0, 1, 1);
        Ok((rgb.clamp(0.0, 255.0) / 255.0)
            .narrow(2, 0, h)
            .narrow(3, 0, w))
    }

    /// DCT, quantisation with `table` `[B or 1,1,1,8,8]`, dequantisation and IDCT of one plane
    /// `[B,1,H,W]` (H, W multiples of 8).
    fn code_plane(&self, plane: &Tensor, table: &Tensor) -> Tensor {
        let s = plane.size();
        let (b, h, w) = (s[0], s[2], s[3]);
        let blocks = plane
            .reshape([b, h / 8, 8, w / 8, 8])
            .permute([0, 1, 3, 2, 4])
            - 128.0;
        let coef = self.dct.matmul(&blocks).matmul(&self.dct.tr());
        let q = (coef / table).round() * table;
        let rec = self.dct.tr().matmul(&q).matmul(&self.dct) + 128.0;
        rec.permute([0, 1, 3, 2, 4]).reshape([b, 1, h, w])
    }
}
