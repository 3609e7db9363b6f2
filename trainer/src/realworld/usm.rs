//! Unsharp masking of the ground truth (BasicSR `USMSharp`, Real-ESRGAN's `gt_usm`), on the
//! training device.
//!
//! With `G` the 51×51 Gaussian of OpenCV's `getGaussianKernel(51, 0)` (σ = 0.3·((51−1)/2 − 1) +
//! 0.8 = 8.0, normalised in f64, outer product, stored as f32) and `filter2D` the reflect-padded
//! correlation (BasicSR's `filter2D`):
//!
//! ```text
//! residual = img − filter2D(img, G)
//! mask     = (|residual|·255 > threshold)          (0 or 1)
//! soft     = filter2D(mask, G)
//! sharp    = clip(img + weight·residual, 0, 1)
//! out      = soft·sharp + (1 − soft)·img           (weight 0.5, threshold 10)
//! ```
//!
//! `G` is an outer product, so the blur runs as two 1-D passes (51 + 51 taps instead of 2601 per
//! pixel) after the same reflect padding; it equals the 2-D `filter2D` up to float rounding
//! (the tests compare it with `kdsr-core`'s direct 2-D filter).

use anyhow::{Result, ensure};
use kdsr_core::pipeline::kernels::Kernel;
use tch::{Kind, Tensor};

/// Side of the USM Gaussian (BasicSR `radius = 50`, made odd).
pub const USM_SIZE: usize = 51;
/// Weight of the residual added back (BasicSR default 0.5).
pub const USM_WEIGHT: f64 = 0.5;
/// Threshold on `|residual|·255` of the sharpening mask (BasicSR default 10).
pub const USM_THRESHOLD: f64 = 10.0;

/// OpenCV's `getGaussianKernel(size, 0)` (σ = 0.3·((size−1)/2 − 1) + 0.8), normalised to sum 1, in
/// f64.
pub fn gaussian_1d(size: usize) -> Vec<f64> {
    let sigma = 0.3 * ((size as f64 - 1.0) * 0.5 - 1.0) + 0.8;
    let half = (size as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..size)
        .map(|i| {
            let x = i as f64 - half;
            (-(x * x) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let s: f64 = g.iter().sum();
    g.iter().map(|v| v / s).collect()
}

/// The 2-D USM kernel: the outer product of [`gaussian_1d`]`(size)` with itself, as f32.
pub fn usm_kernel(size: usize) -> Result<Kernel> {
    let g = gaussian_1d(size);
    let w = g
        .iter()
        .flat_map(|a| g.iter().map(move |b| (a * b) as f32))
        .collect();
    Ok(Kernel::new(size, w)?)
}

/// The unsharp-mask sharpener (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct UsmSharpener {
    kernel: Kernel,
    taps: Vec<f32>,
    /// Weight of the residual (0.5).
    pub weight: f64,
    /// Mask threshold in 0..255 units (10).
    pub threshold: f64,
}

impl UsmSharpener {
    /// BasicSR's defaults: 51×51 Gaussian, weight 0.5, threshold 10.
    pub fn new() -> Result<Self> {
        Ok(Self {
            kernel: usm_kernel(USM_SIZE)?,
            taps: gaussian_1d(USM_SIZE).iter().map(|v| *v as f32).collect(),
            weight: USM_WEIGHT,
            threshold: USM_THRESHOLD,
        })
    }

    /// The Gaussian it blurs with.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// `filter2D(x, G)` as two 1-D passes after reflect padding of 25.
    pub fn blur(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        ensure!(s.len() == 4, "USM: expected [B,C,H,W], got {s:?}");
        let (c, h, w) = (s[1], s[2], s[3]);
        let k = self.taps.len() as i64;
        let r = k / 2;
        ensure!(
            r < h && r < w,
            "USM: image {h}x{w} is smaller than the reflect padding {r}+1"
        );
        let g = Tensor::from_slice(&self.taps).to_device(x.device());
        let kv = g.reshape([1, 1, k, 1]).expand([c, 1, k, 1], false);
        let kh = g.reshape([1, 1, 1, k]).expand([c, 1, 1, k], false);
        Ok(x.reflection_pad2d([r, r, r, r])
            .conv2d(&kv, None::<Tensor>, 1, 0, 1, c)
            .conv2d(&kh, None::<Tensor>, 1, 0, 1, c))
    }

    /// Sharpens `img` `[B,C,H,W]` (values in [0, 1]); the output has the same shape. Needs
    /// `H, W > 25` (the reflect padding of the 51×51 blur).
    pub fn apply(&self, img: &Tensor) -> Result<Tensor> {
        let residual = img - self.blur(img)?;
        let mask = (residual.abs() * 255.0)
            .gt(self.threshold)
            .to_kind(Kind::Float);
        let soft = self.blur(&mask)?;
        let sharp = (img + &residual * self.weight).clamp(0.0, 1.0);
        Ok(&soft * sharp + (1.0 - &soft) * img)
    }
}
