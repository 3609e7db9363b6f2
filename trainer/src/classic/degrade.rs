//! The classic KDSR degradation on the training device, as tensor ops: reflect-pad blur with a
//! per-iteration (or per-sample) Gaussian kernel, the official bicubic ↓s (as dense resampling
//! matrices built from `kdsr-core`'s tables), Gaussian noise and 8-bit quantisation. It matches
//! the CPU pipeline (`kdsr_core::pipeline::degrade`) within 1e-5 on the same kernel and noise.
//!
//! The camera additions (off in the paper presets): shot noise instead of Gaussian on a fraction
//! of the samples (`kdsr_core::pipeline::camera::add_shot_noise`'s definition, drawn with
//! libtorch's Poisson sampler), and JPEG after quantisation with DiffJPEG
//! ([`crate::jpeg`]), re-quantised to 8 bits.

use std::f64::consts::PI;

use anyhow::{Result, bail};
use kdsr_core::pipeline::kernels::{Kernel, anisotropic_gaussian, isotropic_gaussian};
use rand::{Rng, RngExt};
use serde::Serialize;
use tch::{Device, Tensor};

use super::config::{DegradationSection, KernelKind};
use crate::jpeg::DiffJpeg;
use crate::ops::{add_noise, add_shot_noise, bicubic_down, blur, per_sample, quantize};

/// Side of the training blur kernels (official: 21).
pub const KERNEL_SIZE: usize = 21;

/// What was drawn for one batch (for logs and tests).
#[derive(Clone, Debug, Serialize)]
pub struct Draw {
    /// Per kernel: (σ or λ1, λ2, θ in radians); one entry per batch, or per sample.
    pub kernels: Vec<(f64, f64, f64)>,
    /// Noise level(s) in 0..255 units.
    pub noise: Vec<f64>,
    /// Per noise entry: shot noise (true) or Gaussian.
    pub shot: Vec<bool>,
    /// Per noise entry: the JPEG quality, or none.
    pub jpeg: Vec<Option<f64>>,
}

/// Entry `i` of a per-batch (1 entry) or per-sample list.
/// True with probability `p`; draws nothing when `p ≥ 1`, so a probability left at 1 keeps the
/// random stream (and every earlier run) as it was.
fn happens<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    p >= 1.0 || rng.random::<f64>() < p
}

fn nth<T: Copy>(v: &[T], i: usize) -> T {
    v[if v.len() == 1 { 0 } else { i }]
}

impl Draw {
    /// The normalised degradation of each of the `b` samples, `[b, k]` row-major: column 0 the
    /// blur ((mean λ − σ_min) / (σ_max − σ_min)), then the noise level / `noise_max` when
    /// `cfg.noise_max > 0`, then the JPEG strength (100 − q) / (100 − q_min) (0 uncompressed)
    /// when `cfg.jpeg` is set (the targets of `idr.regress_weight`).
    pub fn targets(&self, b: usize, cfg: &DegradationSection) -> Vec<f32> {
        let k = regress_channels(cfg);
        let span = (cfg.sigma_max - cfg.sigma_min).max(1e-12);
        let mut t = Vec::with_capacity(b * k);
        for i in 0..b {
            let (l1, l2, _) = nth(&self.kernels, i);
            // A sharp sample (`blur_prob`, λ recorded as 0) counts as σ_min: a Gaussian of
            // σ 0.2 is the identity to within 4e-6 per tap.
            t.push((((l1 + l2) / 2.0 - cfg.sigma_min).max(0.0) / span) as f32);
            if cfg.noise_max > 0.0 {
                t.push((nth(&self.noise, i) / cfg.noise_max) as f32);
            }
            if let Some([lo, _]) = cfg.jpeg {
                let q = nth(&self.jpeg, i).unwrap_or(100.0);
                t.push(((100.0 - q) / (100.0 - lo).max(1e-12)) as f32);
            }
        }
        t
    }
}

/// How many leading channels of `D` the degradation regression supervises: the blur, the noise
/// level when the training noise can be non-zero, and the JPEG strength when there is JPEG.
pub fn regress_channels(cfg: &DegradationSection) -> usize {
    1 + usize::from(cfg.noise_max > 0.0) + usize::from(cfg.jpeg.is_some())
}

/// Degrades HR batches on a device.
#[derive(Debug)]
pub struct Degrader {
    cfg: DegradationSection,
    scale: u32,
    device: Device,
    pairs: bool,
    jpeg: Option<DiffJpeg>,
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

impl Degrader {
    /// A degrader for `scale` on `device`.
    pub fn new(cfg: &DegradationSection, scale: u32, device: Device) -> Self {
        Self {
            cfg: cfg.clone(),
            scale,
            device,
            pairs: false,
            jpeg: cfg.jpeg.map(|_| DiffJpeg::new(device)),
        }
    }

    /// With `per_sample` degradations: draw one degradation per pair, samples `i` and `i + B/2`
    /// sharing its kernel and noise level (the pairs of `idr.consistency_weight`). Needs an even
    /// batch.
    pub fn paired(mut self, on: bool) -> Self {
        self.pairs = on;
        self
    }

    /// Draws one kernel as the official trainer does: iso σ ~ U(min, max); aniso λ1, λ2 ~ U(min,
    /// max), θ ~ U(0, π).
    /// With `blur_prob` < 1 a sample is left sharp with that probability's complement: the
    /// identity kernel, recorded as λ1 = λ2 = 0.
    pub fn sample_kernel<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<(Kernel, (f64, f64, f64))> {
        if !happens(rng, self.cfg.blur_prob) {
            return Ok((Kernel::identity(KERNEL_SIZE)?, (0.0, 0.0, 0.0)));
        }
        let (lo, hi) = (self.cfg.sigma_min, self.cfg.sigma_max);
        Ok(match self.cfg.kernel {
            KernelKind::Iso => {
                let s = uniform(rng, lo, hi);
                (isotropic_gaussian(KERNEL_SIZE, s)?, (s, s, 0.0))
            }
            KernelKind::Aniso => {
                let l1 = uniform(rng, lo, hi);
                let l2 = uniform(rng, lo, hi);
                let th = uniform(rng, 0.0, PI);
                (anisotropic_gaussian(KERNEL_SIZE, l1, l2, th)?, (l1, l2, th))
            }
        })
    }

    /// Degrades `hr` `[B,3,H,W]` (on the device, [0,1]) to a quantised LR `[B,3,H/s,W/s]`,
    /// drawing kernel(s) and noise level(s) from `rng` and noise values from torch's generator.
    pub fn degrade<R: Rng + ?Sized>(&self, hr: &Tensor, rng: &mut R) -> Result<(Tensor, Draw)> {
        let b = hr.size()[0] as usize;
        let pairs = self.pairs && self.cfg.per_sample;
        if pairs && b % 2 != 0 {
            bail!("paired degradations need an even batch, got {b}");
        }
        let n = match (self.cfg.per_sample, pairs) {
            (false, _) => 1,
            (true, false) => b,
            (true, true) => b / 2,
        };
        let mut kernels = Vec::with_capacity(n);
        let mut params = Vec::with_capacity(n);
        for _ in 0..n {
            let (k, p) = self.sample_kernel(rng)?;
            kernels.push(k);
            params.push(p);
        }
        let mut noise: Vec<f64> = Vec::with_capacity(n);
        let mut shot = Vec::with_capacity(n);
        let mut jpeg = Vec::with_capacity(n);
        for _ in 0..n {
            noise.push(
                if self.cfg.noise_max > 0.0 && happens(rng, self.cfg.noise_prob) {
                    rng.random::<f64>() * self.cfg.noise_max
                } else {
                    0.0
                },
            );
            shot.push(self.cfg.poisson_prob > 0.0 && rng.random::<f64>() < self.cfg.poisson_prob);
            jpeg.push(match self.cfg.jpeg {
                Some([lo, hi]) if rng.random::<f64>() < self.cfg.jpeg_prob => {
                    Some(uniform(rng, lo, hi))
                }
                _ => None,
            });
        }
        if pairs {
            // Sample i + B/2 repeats sample i's degradation.
            kernels.extend_from_within(..);
            params.extend_from_within(..);
            noise.extend_from_within(..);
            shot.extend_from_within(..);
            jpeg.extend_from_within(..);
        }
        let pre = self.prequant(hr, &kernels)?;
        let lr = if noise.iter().any(|l| *l > 0.0) {
            let draws = pre.randn_like();
            let gaussian = add_noise(&pre, &draws, &noise);
            if shot.iter().any(|s| *s) {
                let mask = per_sample(
                    &shot
                        .iter()
                        .map(|s| f64::from(u8::from(*s)))
                        .collect::<Vec<_>>(),
                    pre.device(),
                );
                let shot_lr = add_shot_noise(&pre, &noise);
                &gaussian + (shot_lr - &gaussian) * mask
            } else {
                gaussian
            }
        } else {
            pre
        };
        let mut lr = quantize(&lr);
        if let Some(codec) = &self.jpeg
            && jpeg.iter().any(Option::is_some)
        {
            let q: Vec<f64> = jpeg.iter().map(|q| q.unwrap_or(100.0)).collect();
            let on: Vec<f64> = jpeg
                .iter()
                .map(|q| f64::from(u8::from(q.is_some())))
                .collect();
            let mask = per_sample(&on, lr.device());
            let coded = codec.apply(&lr, &q)?;
            lr = quantize(&(&lr + (coded - &lr) * mask));
        }
        Ok((
            lr,
            Draw {
                kernels: params,
                noise,
                shot,
                jpeg,
            },
        ))
    }

    /// Blur then the official bicubic ↓s, without noise or quantisation. `kernels` holds one
    /// kernel for the whole batch or one per sample.
    pub fn prequant(&self, hr: &Tensor, kernels: &[Kernel]) -> Result<Tensor> {
        let blurred = blur(hr, kernels, self.device)?;
        bicubic_down(&blurred, self.scale)
    }
}
