//! Real-ESRGAN's second-order degradation on the training device (tensor ops), as the KDSR-GAN
//! code uses it (`RealESRGANDataset` for the kernels, `RealESRGANModel.feed_data` for the rest).
//! The parameters are [`RealDegradation`], whose default is `train_realesrnet_x4plus.yml`.
//!
//! # Randomness
//! Every random *choice* and *parameter* of one batch is drawn on the CPU by
//! [`DegradePlan::draw`] from one seeded generator (the trainer seeds it with
//! `mix(seed, 3, iter)`): the per-sample kernels (built with `kdsr-core`'s
//! [`sample_mixed_kernel`] + build + pad to 21, i.e. `random_mixed_kernel` keeping the drawn
//! family for logs, and [`final_sinc`]; both are tested against BasicSR there), the
//! resize types, scales and modes, noise types, levels and gray coins, JPEG qualities, the
//! second-blur and final-order coins and the paired crop. Only the noise *samples* (normal and
//! Poisson draws) come from libtorch's generator on the device (seeded per iteration too). The
//! reference draws a few of the scalars from torch instead of numpy; the distributions are the
//! same.
//!
//! # Pipeline ([`RealDegrader::degrade`])
//! 0. `gt_usm = USM(gt)` ([`UsmSharpener`]); the degradations start from `gt_usm` (or `gt`).
//! 1. Stage 1: per-sample blur with kernel1 (reflect padding + grouped conv = `filter2D`, via
//!    [`crate::ops::blur`]); resize by the drawn factor `s` with `scale_factor` semantics
//!    ([`resize_by_factor`]: output `⌊h·s⌋`, bilinear/bicubic sample at `(i + ½)/s − ½`); Gaussian
//!    or Poisson noise (color or gray) with clipping; clamp and JPEG ([`DiffJpeg`]).
//! 2. Stage 2: blur with kernel2 (p = 0.8); resize to `(⌊H/4·s⌋, ⌊W/4·s⌋)` with `size=` semantics
//!    ([`resize_to`]); noise; then in random order (p = ½ each) either resize to `(H/4, W/4)` +
//!    final sinc + clamp + JPEG, or clamp + JPEG + resize + final sinc.
//! 3. `lq = round(clamp(out·255, 0, 255))/255`; paired random crop (`gt_size`, `gt_size/4`).
//!
//! Resize modes: `area` = `adaptive_avg_pool2d`, `bilinear` / `bicubic` = libtorch's
//! `upsample_bilinear2d` / `upsample_bicubic2d` (align_corners false, Keys a = −0.75, no
//! antialiasing, clamped borders), exactly what `F.interpolate` calls (a one-off comparison with
//! PyTorch 2.11's `F.interpolate`, `scale_factor` 0.37 and 1.23 and `size=`, all three modes,
//! gave identical values).
//!
//! # Noise, batched
//! Gaussian: σ_b ~ U(range)/255 per sample; a sample is gray with p = `gray_noise_prob`. When any
//! sample of the batch is gray, **one** `(h, w)` standard-normal plane is drawn for the whole batch
//! and each gray sample uses it scaled by its own σ (broadcast over the channels); colour samples
//! use independent per-channel draws. Poisson: per sample, `img_r = round(clamp(x·255))/255`,
//! `vals = 2^⌈log2(#unique levels of img_r)⌉`, `noise = (Poisson(img_r·vals)/vals − img_r)·scale`
//! (gray samples: computed on the luma `0.2989R + 0.587G + 0.114B` and broadcast), added to the
//! unrounded image; both then clip to [0, 1].

use anyhow::{Context, Result, bail, ensure};
use kdsr_core::pipeline::kernels::{
    BlurKernel, Kernel, MixedKernelConfig, final_sinc, sample_mixed_kernel,
};
use kdsr_core::pipeline::noise::GRAY_WEIGHTS;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::usm::UsmSharpener;
use crate::jpeg::DiffJpeg;
use crate::ops::{blur, per_sample};

/// Every probability and range of the second-order degradation (defaults: Real-ESRGAN's
/// `train_realesrnet_x4plus.yml`, scale 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealDegradation {
    /// Stage-1 blur kernels (`kernel1`).
    pub kernel1: MixedKernelConfig,
    /// Stage-2 blur kernels (`kernel2`).
    pub kernel2: MixedKernelConfig,
    /// Probability of the final sinc filter (else an identity pulse): 0.8.
    pub final_sinc_prob: f64,
    /// Stage-1 up / down / keep probabilities: [0.2, 0.7, 0.1].
    pub resize_prob: [f64; 3],
    /// Stage-1 scale range: up ~ U(1, hi), down ~ U(lo, 1): [0.15, 1.5].
    pub resize_range: (f64, f64),
    /// Stage-1 probability of Gaussian (else Poisson) noise: 0.5.
    pub gaussian_noise_prob: f64,
    /// Stage-1 Gaussian σ range in 0..255 units: [1, 30].
    pub noise_range: (f64, f64),
    /// Stage-1 Poisson scale range: [0.05, 3].
    pub poisson_scale_range: (f64, f64),
    /// Stage-1 probability of gray noise per sample: 0.4.
    pub gray_noise_prob: f64,
    /// Stage-1 JPEG quality range (real-valued): [30, 95].
    pub jpeg_range: (f64, f64),
    /// Probability of the stage-2 blur: 0.8.
    pub second_blur_prob: f64,
    /// Stage-2 up / down / keep probabilities: [0.3, 0.4, 0.3].
    pub resize_prob2: [f64; 3],
    /// Stage-2 scale range (relative to the final LR size): [0.3, 1.2].
    pub resize_range2: (f64, f64),
    /// Stage-2 probability of Gaussian noise: 0.5.
    pub gaussian_noise_prob2: f64,
    /// Stage-2 Gaussian σ range: [1, 25].
    pub noise_range2: (f64, f64),
    /// Stage-2 Poisson scale range: [0.05, 2.5].
    pub poisson_scale_range2: (f64, f64),
    /// Stage-2 gray-noise probability: 0.4.
    pub gray_noise_prob2: f64,
    /// Stage-2 JPEG quality range: [30, 95].
    pub jpeg_range2: (f64, f64),
    /// Probability of "resize + sinc, then JPEG" as the final step (else JPEG first): 0.5.
    pub final_resize_first_prob: f64,
}

impl Default for RealDegradation {
    fn default() -> Self {
        Self {
            kernel1: MixedKernelConfig::realesrgan_first(),
            kernel2: MixedKernelConfig::realesrgan_second(),
            final_sinc_prob: 0.8,
            resize_prob: [0.2, 0.7, 0.1],
            resize_range: (0.15, 1.5),
            gaussian_noise_prob: 0.5,
            noise_range: (1.0, 30.0),
            poisson_scale_range: (0.05, 3.0),
            gray_noise_prob: 0.4,
            jpeg_range: (30.0, 95.0),
            second_blur_prob: 0.8,
            resize_prob2: [0.3, 0.4, 0.3],
            resize_range2: (0.3, 1.2),
            gaussian_noise_prob2: 0.5,
            noise_range2: (1.0, 25.0),
            poisson_scale_range2: (0.05, 2.5),
            gray_noise_prob2: 0.4,
            jpeg_range2: (30.0, 95.0),
            final_resize_first_prob: 0.5,
        }
    }
}

fn check_prob(name: &str, p: f64) -> Result<()> {
    ensure!(
        p.is_finite() && (0.0..=1.0).contains(&p),
        "degradation.{name} = {p} is not a probability"
    );
    Ok(())
}

fn check_range(name: &str, r: (f64, f64), min: f64) -> Result<()> {
    ensure!(
        r.0.is_finite() && r.1.is_finite() && r.0 >= min && r.0 <= r.1,
        "degradation.{name} = [{}, {}]: need {min} ≤ low ≤ high",
        r.0,
        r.1
    );
    Ok(())
}

impl RealDegradation {
    /// Checks probabilities and ranges, and that a `crop`-sized GT survives every stage at
    /// `scale` (the reflect padding of the 21×21 kernels needs more than 10 pixels).
    pub fn validate(&self, crop: usize, scale: u32) -> Result<()> {
        for (n, p) in [
            ("final_sinc_prob", self.final_sinc_prob),
            ("gaussian_noise_prob", self.gaussian_noise_prob),
            ("gray_noise_prob", self.gray_noise_prob),
            ("second_blur_prob", self.second_blur_prob),
            ("gaussian_noise_prob2", self.gaussian_noise_prob2),
            ("gray_noise_prob2", self.gray_noise_prob2),
            ("final_resize_first_prob", self.final_resize_first_prob),
        ] {
            check_prob(n, p)?;
        }
        for (n, p) in [
            ("resize_prob", self.resize_prob),
            ("resize_prob2", self.resize_prob2),
        ] {
            ensure!(
                p.iter().all(|v| v.is_finite() && *v >= 0.0) && p.iter().sum::<f64>() > 0.0,
                "degradation.{n} = {p:?}: need non-negative weights with a positive sum"
            );
        }
        for (n, r, min) in [
            ("resize_range", self.resize_range, f64::MIN_POSITIVE),
            ("resize_range2", self.resize_range2, f64::MIN_POSITIVE),
            ("noise_range", self.noise_range, 0.0),
            ("noise_range2", self.noise_range2, 0.0),
            ("poisson_scale_range", self.poisson_scale_range, 0.0),
            ("poisson_scale_range2", self.poisson_scale_range2, 0.0),
            ("jpeg_range", self.jpeg_range, f64::MIN_POSITIVE),
            ("jpeg_range2", self.jpeg_range2, f64::MIN_POSITIVE),
        ] {
            check_range(n, r, min)?;
        }
        for (n, r) in [
            ("resize_range", self.resize_range),
            ("resize_range2", self.resize_range2),
        ] {
            ensure!(
                r.0 <= 1.0 && r.1 >= 1.0,
                "degradation.{n}: down is drawn from (low, 1) and up from (1, high): need low ≤ 1 ≤ high"
            );
        }
        ensure!(
            self.jpeg_range.1 <= 100.0 && self.jpeg_range2.1 <= 100.0,
            "degradation: JPEG qualities above 100 are undefined"
        );
        let pad = self.kernel1.pad_to.max(self.kernel2.pad_to) / 2;
        let stage1_min = (crop as f64 * self.resize_range.0).floor() as usize;
        let lr = crop / scale as usize;
        ensure!(
            crop % scale as usize == 0 && stage1_min > pad && lr > pad && crop > 25,
            "degradation: a {crop}px training crop is too small at ×{scale}: the smallest \
             stage-1 size ({stage1_min}) and the LR size ({lr}) must exceed the kernel radius \
             {pad}, and the crop a multiple of {scale} above 25"
        );
        Ok(())
    }
}

/// Up, down or keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeKind {
    /// s ~ U(1, high).
    Up,
    /// s ~ U(low, 1).
    Down,
    /// s = 1.
    Keep,
}

/// `F.interpolate` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// `adaptive_avg_pool2d`.
    Area,
    /// `upsample_bilinear2d`, align_corners false.
    Bilinear,
    /// `upsample_bicubic2d`, align_corners false (a = −0.75, no antialiasing).
    Bicubic,
}

impl ResizeMode {
    /// The three modes in Real-ESRGAN's order (`['area', 'bilinear', 'bicubic']`).
    pub const ALL: [Self; 3] = [Self::Area, Self::Bilinear, Self::Bicubic];
}

/// One drawn resize.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResizeDraw {
    /// Up, down or keep.
    pub kind: ResizeKind,
    /// The factor.
    pub scale: f64,
    /// The interpolation.
    pub mode: ResizeMode,
}

/// Gaussian or Poisson.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// Additive Gaussian noise.
    Gaussian,
    /// Poisson (shot) noise.
    Poisson,
}

/// One stage's drawn noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseDraw {
    /// Gaussian or Poisson for the whole batch.
    pub kind: NoiseKind,
    /// Per sample: σ in 0..255 units (Gaussian) or the Poisson scale.
    pub level: Vec<f64>,
    /// Per sample: gray (one plane broadcast over the channels) or colour noise.
    pub gray: Vec<bool>,
}

/// Order of the final step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinalOrder {
    /// Resize to the LR size, sinc filter, then JPEG.
    ResizeThenJpeg,
    /// JPEG, then resize to the LR size and sinc filter.
    JpegThenResize,
}

/// Everything drawn for one batch (see the [module docs](self)). The built kernels are kept for
/// the device; the parameters are kept for logs and tests.
#[derive(Clone, Debug)]
pub struct DegradePlan {
    /// Per sample: kernel1's family and parameters, and its unpadded size.
    pub kernel1: Vec<(BlurKernel, usize)>,
    /// Per sample: kernel2's family and parameters, and its unpadded size.
    pub kernel2: Vec<(BlurKernel, usize)>,
    /// Per sample: whether the final filter is a sinc (else the identity pulse).
    pub final_sinc: Vec<bool>,
    /// Built kernel1s, 21×21.
    pub kernels1: Vec<Kernel>,
    /// Built kernel2s, 21×21.
    pub kernels2: Vec<Kernel>,
    /// Built final filters, 21×21.
    pub sinc: Vec<Kernel>,
    /// Stage-1 resize.
    pub resize1: ResizeDraw,
    /// Stage-1 noise.
    pub noise1: NoiseDraw,
    /// Stage-1 JPEG quality per sample.
    pub jpeg1: Vec<f64>,
    /// Whether stage 2 blurs.
    pub second_blur: bool,
    /// Stage-2 resize (factor relative to the final LR size).
    pub resize2: ResizeDraw,
    /// Stage-2 noise.
    pub noise2: NoiseDraw,
    /// Order of the final step.
    pub order: FinalOrder,
    /// Mode of the final resize.
    pub final_mode: ResizeMode,
    /// Stage-2 JPEG quality per sample.
    pub jpeg2: Vec<f64>,
    /// The paired crop in LR pixels: (top, left, side); `None` keeps the whole image.
    pub crop: Option<(i64, i64, i64)>,
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, r: (f64, f64)) -> f64 {
    r.0 + (r.1 - r.0) * rng.random::<f64>()
}

fn weighted<R: Rng + ?Sized>(rng: &mut R, w: &[f64; 3]) -> usize {
    let total: f64 = w.iter().sum();
    let target = rng.random::<f64>() * total;
    let mut acc = 0.0;
    for (i, p) in w.iter().enumerate() {
        acc += p;
        if target < acc {
            return i;
        }
    }
    w.len() - 1
}

fn draw_resize<R: Rng + ?Sized>(rng: &mut R, prob: &[f64; 3], range: (f64, f64)) -> ResizeDraw {
    let (kind, scale) = match weighted(rng, prob) {
        0 => (ResizeKind::Up, uniform(rng, (1.0, range.1))),
        1 => (ResizeKind::Down, uniform(rng, (range.0, 1.0))),
        _ => (ResizeKind::Keep, 1.0),
    };
    let mode = draw_mode(rng);
    ResizeDraw { kind, scale, mode }
}

fn draw_mode<R: Rng + ?Sized>(rng: &mut R) -> ResizeMode {
    ResizeMode::ALL[rng.random_range(0..3usize)]
}

fn draw_noise<R: Rng + ?Sized>(
    rng: &mut R,
    batch: usize,
    gaussian_prob: f64,
    sigma: (f64, f64),
    poisson: (f64, f64),
    gray_prob: f64,
) -> NoiseDraw {
    let kind = if rng.random::<f64>() < gaussian_prob {
        NoiseKind::Gaussian
    } else {
        NoiseKind::Poisson
    };
    let range = match kind {
        NoiseKind::Gaussian => sigma,
        NoiseKind::Poisson => poisson,
    };
    let level = (0..batch).map(|_| uniform(rng, range)).collect();
    let gray = (0..batch)
        .map(|_| rng.random::<f64>() < gray_prob)
        .collect();
    NoiseDraw { kind, level, gray }
}

impl DegradePlan {
    /// Draws the plan of a batch of `batch` GT images of `height × width` (multiples of `scale`),
    /// with a paired random crop of `gt_size` GT pixels (`None`: no crop). Order of the draws: per
    /// sample kernel1, kernel2, final sinc; then stage 1 (resize, noise, JPEG), stage 2 (blur coin,
    /// resize, noise), final order, final mode, stage-2 JPEG, crop.
    pub fn draw<R: Rng + ?Sized>(
        cfg: &RealDegradation,
        batch: usize,
        (height, width): (usize, usize),
        gt_size: Option<usize>,
        scale: u32,
        rng: &mut R,
    ) -> Result<Self> {
        let s = scale as usize;
        ensure!(
            height % s == 0 && width % s == 0,
            "GT {height}x{width} is not a multiple of the scale {s}"
        );
        if let Some(g) = gt_size {
            ensure!(
                g <= height.min(width) && g % s == 0 && g > 0,
                "paired crop: gt_size {g} must be ≤ the GT {height}x{width} and a multiple of {s}"
            );
        }
        let mut kernel1 = Vec::with_capacity(batch);
        let mut kernel2 = Vec::with_capacity(batch);
        let mut kernels1 = Vec::with_capacity(batch);
        let mut kernels2 = Vec::with_capacity(batch);
        let mut sinc = Vec::with_capacity(batch);
        let mut final_sinc_drawn = Vec::with_capacity(batch);
        let identity = Kernel::identity(cfg.kernel1.pad_to)?;
        for _ in 0..batch {
            for (cfg_k, params, built) in [
                (&cfg.kernel1, &mut kernel1, &mut kernels1),
                (&cfg.kernel2, &mut kernel2, &mut kernels2),
            ] {
                let (k, size) = sample_mixed_kernel(rng, cfg_k)?;
                built.push(
                    k.build(size)
                        .and_then(|b| b.pad_to(cfg_k.pad_to))
                        .with_context(|| format!("building the blur kernel {k:?}"))?,
                );
                params.push((k, size));
            }
            let f = final_sinc(rng, cfg.final_sinc_prob)?;
            final_sinc_drawn.push(f != identity);
            sinc.push(f);
        }
        let resize1 = draw_resize(rng, &cfg.resize_prob, cfg.resize_range);
        let noise1 = draw_noise(
            rng,
            batch,
            cfg.gaussian_noise_prob,
            cfg.noise_range,
            cfg.poisson_scale_range,
            cfg.gray_noise_prob,
        );
        let jpeg1 = (0..batch).map(|_| uniform(rng, cfg.jpeg_range)).collect();
        let second_blur = rng.random::<f64>() < cfg.second_blur_prob;
        let resize2 = draw_resize(rng, &cfg.resize_prob2, cfg.resize_range2);
        let noise2 = draw_noise(
            rng,
            batch,
            cfg.gaussian_noise_prob2,
            cfg.noise_range2,
            cfg.poisson_scale_range2,
            cfg.gray_noise_prob2,
        );
        let order = if rng.random::<f64>() < cfg.final_resize_first_prob {
            FinalOrder::ResizeThenJpeg
        } else {
            FinalOrder::JpegThenResize
        };
        let final_mode = draw_mode(rng);
        let jpeg2 = (0..batch).map(|_| uniform(rng, cfg.jpeg_range2)).collect();
        let crop = gt_size.map(|g| {
            let lp = g / s;
            let top = rng.random_range(0..=(height / s - lp)) as i64;
            let left = rng.random_range(0..=(width / s - lp)) as i64;
            (top, left, lp as i64)
        });
        Ok(Self {
            kernel1,
            kernel2,
            final_sinc: final_sinc_drawn,
            kernels1,
            kernels2,
            sinc,
            resize1,
            noise1,
            jpeg1,
            second_blur,
            resize2,
            noise2,
            order,
            final_mode,
            jpeg2,
            crop,
        })
    }
}

/// `F.interpolate(x, scale_factor=s, mode)`: output `⌊h·s⌋ × ⌊w·s⌋` (at least 1); bilinear and
/// bicubic sample at `(i + ½)/s − ½` with the drawn `s` itself (align_corners false); area is
/// adaptive average pooling to that size.
pub fn resize_by_factor(x: &Tensor, s: f64, mode: ResizeMode) -> Result<Tensor> {
    let sz = x.size();
    let oh = ((sz[2] as f64 * s).floor() as i64).max(1);
    let ow = ((sz[3] as f64 * s).floor() as i64).max(1);
    Ok(match mode {
        ResizeMode::Area => x.f_adaptive_avg_pool2d([oh, ow])?,
        ResizeMode::Bilinear => x.f_upsample_bilinear2d([oh, ow], false, Some(s), Some(s))?,
        ResizeMode::Bicubic => x.f_upsample_bicubic2d([oh, ow], false, Some(s), Some(s))?,
    })
}

/// `F.interpolate(x, size=(h, w), mode)`: the sampling ratio is input/output size.
pub fn resize_to(x: &Tensor, h: i64, w: i64, mode: ResizeMode) -> Result<Tensor> {
    ensure!(h > 0 && w > 0, "resize to {h}x{w}");
    Ok(match mode {
        ResizeMode::Area => x.f_adaptive_avg_pool2d([h, w])?,
        ResizeMode::Bilinear => x.f_upsample_bilinear2d([h, w], false, None, None)?,
        ResizeMode::Bicubic => x.f_upsample_bicubic2d([h, w], false, None, None)?,
    })
}

fn check_batch(what: &str, x: &Tensor, n: usize) -> Result<()> {
    let b = x.size()[0];
    ensure!(
        n as i64 == b,
        "{what}: {n} per-sample values for a batch of {b}"
    );
    Ok(())
}

/// Real-ESRGAN's batched Gaussian noise `[B,C,H,W]` (not added): σ_b/255 per sample; gray samples
/// share one `(H, W)` standard-normal plane drawn for the batch (drawn first, only when any sample
/// is gray), colour samples use per-channel draws. Draws from libtorch's generator.
pub fn gaussian_noise(x: &Tensor, sigma_255: &[f64], gray: &[bool]) -> Result<Tensor> {
    check_batch("gaussian noise", x, sigma_255.len())?;
    check_batch("gaussian noise", x, gray.len())?;
    let s = x.size();
    let sigma = per_sample(sigma_255, x.device()) / 255.0;
    let gray_plane = gray.iter().any(|g| *g).then(|| {
        Tensor::randn([s[2], s[3]], (Kind::Float, x.device())).reshape([1, 1, s[2], s[3]]) * &sigma
    });
    let color = Tensor::randn(s.as_slice(), (Kind::Float, x.device())) * &sigma;
    Ok(match gray_plane {
        Some(g) => {
            let gmask = per_sample(
                &gray
                    .iter()
                    .map(|g| f64::from(u8::from(*g)))
                    .collect::<Vec<_>>(),
                x.device(),
            );
            &color * (1.0 - &gmask) + g * &gmask
        }
        None => color,
    })
}

/// `2^⌈log2(n)⌉` per sample, `n` = the number of distinct 8-bit levels of `levels` `[B,…]`
/// (integers 0..=255 as floats). Returned as `[B,1,1,1]`.
fn poisson_vals(levels: &Tensor) -> Tensor {
    let b = levels.size()[0];
    let offs = Tensor::arange(b, (Kind::Int64, levels.device())).reshape([-1, 1]) * 256;
    let idx = levels.reshape([b, -1]).to_kind(Kind::Int64) + offs;
    let counts = idx
        .reshape([-1])
        .bincount(None::<Tensor>, b * 256)
        .reshape([b, 256]);
    let n = counts
        .gt(0)
        .sum_dim_intlist(1, false, Kind::Float)
        .clamp_min(1.0);
    n.log2().ceil().exp2().reshape([b, 1, 1, 1])
}

/// Poisson noise of one image set `[B,C,H,W]` in [0, 1]: `(Poisson(img_r·vals)/vals − img_r)`.
fn poisson_core(x: &Tensor) -> Tensor {
    let levels = (x * 255.0).round().clamp(0.0, 255.0);
    let img_r = &levels / 255.0;
    let vals = poisson_vals(&levels);
    (&img_r * &vals).poisson() / &vals - img_r
}

/// Real-ESRGAN's batched Poisson noise `[B,C,H,W]` (not added), scaled per sample; gray samples
/// use the noise of their luma image broadcast over the channels (computed only when any sample
/// is gray, before the colour noise, as the reference does). Draws from libtorch's generator.
pub fn poisson_noise(x: &Tensor, scale: &[f64], gray: &[bool]) -> Result<Tensor> {
    check_batch("poisson noise", x, scale.len())?;
    check_batch("poisson noise", x, gray.len())?;
    let s = x.size();
    let dev = x.device();
    let gray_noise = if gray.iter().any(|g| *g) {
        ensure!(
            s[1] == 3,
            "gray Poisson noise needs RGB input, got {} channels",
            s[1]
        );
        let w = Tensor::from_slice(&GRAY_WEIGHTS)
            .to_device(dev)
            .reshape([1, 3, 1, 1]);
        let luma = (x * w).sum_dim_intlist(1, true, Kind::Float);
        Some(poisson_core(&luma).expand(s.as_slice(), false))
    } else {
        None
    };
    let color = poisson_core(x);
    let noise = match gray_noise {
        Some(g) => {
            let gmask = per_sample(
                &gray
                    .iter()
                    .map(|g| f64::from(u8::from(*g)))
                    .collect::<Vec<_>>(),
                dev,
            );
            &color * (1.0 - &gmask) + g * &gmask
        }
        None => color,
    };
    Ok(noise * per_sample(scale, dev))
}

/// Adds the drawn noise and clips to [0, 1] (no rounding).
pub fn add_noise(x: &Tensor, n: &NoiseDraw) -> Result<Tensor> {
    let noise = match n.kind {
        NoiseKind::Gaussian => gaussian_noise(x, &n.level, &n.gray)?,
        NoiseKind::Poisson => poisson_noise(x, &n.level, &n.gray)?,
    };
    Ok((x + noise).clamp(0.0, 1.0))
}

/// What [`RealDegrader::degrade`] returns, after the paired crop.
#[derive(Debug)]
pub struct Degraded {
    /// GT `[B,3,gt,gt]`.
    pub gt: Tensor,
    /// LQ `[B,3,gt/s,gt/s]`, 8-bit levels.
    pub lq: Tensor,
}

/// Runs the second-order degradation on one device.
#[derive(Debug)]
pub struct RealDegrader {
    cfg: RealDegradation,
    scale: u32,
    jpeg: DiffJpeg,
    usm: UsmSharpener,
}

impl RealDegrader {
    /// A degrader for `scale` on `device`.
    pub fn new(cfg: &RealDegradation, scale: u32, device: Device) -> Result<Self> {
        Ok(Self {
            cfg: cfg.clone(),
            scale,
            jpeg: DiffJpeg::new(device),
            usm: UsmSharpener::new()?,
        })
    }

    /// The parameters.
    pub fn config(&self) -> &RealDegradation {
        &self.cfg
    }

    /// The USM sharpener.
    pub fn usm(&self) -> &UsmSharpener {
        &self.usm
    }

    /// The JPEG op.
    pub fn jpeg(&self) -> &DiffJpeg {
        &self.jpeg
    }

    /// Degrades `gt` `[B,3,H,W]` (on the device, [0, 1], `H`, `W` multiples of the scale) with
    /// `plan`, starting from `USM(gt)` when `from_usm` (Real-ESRGAN's `gt_usm`), and applies the
    /// plan's paired crop. The noise samples come from libtorch's generator.
    pub fn degrade(&self, gt: &Tensor, plan: &DegradePlan, from_usm: bool) -> Result<Degraded> {
        let s = gt.size();
        let sc = i64::from(self.scale);
        ensure!(
            s.len() == 4 && s[1] == 3 && s[2] % sc == 0 && s[3] % sc == 0,
            "real-world degradation: GT {s:?} must be [B,3,H,W] with H, W multiples of {sc}"
        );
        let (b, h, w) = (s[0], s[2], s[3]);
        ensure!(
            plan.kernels1.len() as i64 == b,
            "degradation plan for {} samples, batch of {b}",
            plan.kernels1.len()
        );
        let dev = gt.device();
        let src = if from_usm {
            self.usm.apply(gt)?
        } else {
            gt.shallow_clone()
        };
        // Stage 1.
        let out = blur(&src, &plan.kernels1, dev).context("stage-1 blur")?;
        let out = resize_by_factor(&out, plan.resize1.scale, plan.resize1.mode)?;
        let out = add_noise(&out, &plan.noise1)?;
        let out = self.jpeg.apply(&out.clamp(0.0, 1.0), &plan.jpeg1)?;
        // Stage 2.
        let out = if plan.second_blur {
            blur(&out, &plan.kernels2, dev).context("stage-2 blur")?
        } else {
            out
        };
        let (fh, fw) = (h / sc, w / sc);
        let s2 = plan.resize2.scale;
        let (h2, w2) = (
            ((h as f64 / sc as f64 * s2) as i64).max(1),
            ((w as f64 / sc as f64 * s2) as i64).max(1),
        );
        let out = resize_to(&out, h2, w2, plan.resize2.mode)?;
        let out = add_noise(&out, &plan.noise2)?;
        let out = match plan.order {
            FinalOrder::ResizeThenJpeg => {
                let o = resize_to(&out, fh, fw, plan.final_mode)?;
                let o = blur(&o, &plan.sinc, dev).context("final sinc filter")?;
                self.jpeg.apply(&o.clamp(0.0, 1.0), &plan.jpeg2)?
            }
            FinalOrder::JpegThenResize => {
                let o = self.jpeg.apply(&out.clamp(0.0, 1.0), &plan.jpeg2)?;
                let o = resize_to(&o, fh, fw, plan.final_mode)?;
                blur(&o, &plan.sinc, dev).context("final sinc filter")?
            }
        };
        let lq = (out * 255.0).round().clamp(0.0, 255.0) / 255.0;
        let Some((top, left, lp)) = plan.crop else {
            return Ok(Degraded {
                gt: gt.shallow_clone(),
                lq,
            });
        };
        if top < 0 || left < 0 || top + lp > fh || left + lp > fw {
            bail!("paired crop {lp}px at ({top}, {left}) does not fit the {fh}x{fw} LQ");
        }
        let lq = lq.narrow(2, top, lp).narrow(3, left, lp);
        let gt = gt
            .narrow(2, top * sc, lp * sc)
            .narrow(3, left * sc, lp * sc);
        Ok(Degraded { gt, lq })
    }
}
