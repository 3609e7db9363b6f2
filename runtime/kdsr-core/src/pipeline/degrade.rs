//! The classic blind-SR LR synthesis of DASR / KDSR evaluation (`SRMDPreprocessing` with
//! `random=False`): blur → downsample → noise → quantise.
//!
//! 1. Blur with [`blur_reflect`] (reflect padding without edge repeat, correlation).
//! 2. Downsample ×1/s: the official bicubic module ([`bicubic_down`], replicated borders, floor
//!    size) or `s-fold` (keep pixel (s·i, s·j)).
//! 3. Add `N(0,1) · level` (level in 0..255 units, scaled to the data range) when level > 0.
//! 4. Quantise to 8 bits (round half to even, clamp to the range).
//!
//! The input is the HR image, already cropped to a multiple of the scale by the caller
//! ([`Planar::crop_to_multiple`]); see [`ClassicDegradation::prequant`] for what happens otherwise.
//! By default the data are in [0, 1] (KDSR, `rgb_range = 1`); DASR's 0..255 convention is
//! available through [`ClassicDegradation::with_rgb_range`].

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Planar;
use crate::error::{Error, Result, check_non_negative, check_scale};
use crate::pipeline::blur::blur_reflect;
use crate::pipeline::kernels::Kernel;
use crate::pipeline::resize::{bicubic_down, bicubic_up};

/// How the blurred HR image is brought down to LR size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Downsample {
    /// The official DASR/KDSR bicubic module with scale 1/s (see
    /// [`BicubicVariant::Official`](crate::pipeline::resize::BicubicVariant::Official)). The
    /// evaluation default.
    #[default]
    Bicubic,
    /// `mode='s-fold'`: keep pixel (s·i, s·j), the top-left one of each s×s block.
    SFold,
}

/// The deterministic part of the classic degradation: a fixed kernel, scale, noise level and
/// downsampling mode.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicDegradation {
    kernel: Kernel,
    scale: u32,
    noise_level: f32,
    downsample: Downsample,
    rgb_range: f32,
}

impl ClassicDegradation {
    /// A degradation for [0, 1] data (`rgb_range = 1`, as KDSR).
    ///
    /// `noise_level` is the Gaussian noise σ in 0..255 units (0 = no noise; KDSR's anisotropic
    /// test uses 10). Errors: [`Error::UnsupportedScale`] unless `scale` ∈ {2, 3, 4};
    /// [`Error::InvalidParameter`] for a negative or non-finite `noise_level`.
    pub fn new(
        kernel: Kernel,
        scale: u32,
        noise_level: f32,
        downsample: Downsample,
    ) -> Result<Self> {
        check_scale(scale)?;
        check_non_negative("noise level", f64::from(noise_level))?;
        Ok(Self {
            kernel,
            scale,
            noise_level,
            downsample,
            rgb_range: 1.0,
        })
    }

    /// The same degradation for data in `0..rgb_range` (255 for DASR's convention, 1 for KDSR's):
    /// the noise σ becomes `noise_level / (255 / rgb_range)` and quantisation
    /// `round(clamp(x · 255/rgb_range, 0, 255)) / (255/rgb_range)`, as in the official
    /// `SRMDPreprocessing` and `utility.quantize`. Errors: [`Error::InvalidParameter`] unless
    /// `rgb_range` is finite and > 0.
    pub fn with_rgb_range(mut self, rgb_range: f32) -> Result<Self> {
        crate::error::check_positive("rgb_range", f64::from(rgb_range))?;
        self.rgb_range = rgb_range;
        Ok(self)
    }

    /// The blur kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
    /// The scale factor (2, 3 or 4).
    pub fn scale(&self) -> u32 {
        self.scale
    }
    /// Noise σ in 0..255 units.
    pub fn noise_level(&self) -> f32 {
        self.noise_level
    }
    /// The downsampling mode.
    pub fn downsample(&self) -> Downsample {
        self.downsample
    }
    /// The data range (1 for [0, 1] data, 255 for 0..255 data).
    pub fn rgb_range(&self) -> f32 {
        self.rgb_range
    }

    /// The noise σ in the data's units, as float32 (the reference multiplies the float32 draws
    /// by the Python float `noise / (255 / rgb_range)`).
    fn sigma(&self) -> f32 {
        (f64::from(self.noise_level) / (255.0 / f64::from(self.rgb_range))) as f32
    }

    /// Blur then downsample, without noise or quantisation (the float32 LR before rounding).
    ///
    /// Shapes: `[C, H, W]` → `[C, ⌊H/s⌋, ⌊W/s⌋]`. With [`Downsample::Bicubic`] an HR size that
    /// is not a multiple of the scale is handled like the reference, by the floor output size
    /// (the last HR rows/columns then only enter through the bicubic taps); with
    /// [`Downsample::SFold`] it is rejected ([`Error::ShapeMismatch`]), as the reference's
    /// `view` would fail. Crop first with [`Planar::crop_to_multiple`] to match the official
    /// loaders. Errors also: [`Error::TooSmall`] when H or W ≤ the kernel radius (reflect padding)
    /// or smaller than the scale.
    pub fn prequant(&self, hr: &Planar) -> Result<Planar> {
        let blurred = blur_reflect(hr, &self.kernel)?;
        self.downsample_blurred(&blurred)
    }

    /// Step 2 alone: downsample an already blurred HR image.
    fn downsample_blurred(&self, blurred: &Planar) -> Result<Planar> {
        let s = self.scale as usize;
        match self.downsample {
            Downsample::Bicubic => bicubic_down(blurred, self.scale),
            Downsample::SFold => {
                let (c, h, w) = (blurred.channels(), blurred.height(), blurred.width());
                if h % s != 0 || w % s != 0 {
                    return Err(Error::ShapeMismatch {
                        what: "s-fold downsampling needs H and W divisible by the scale \
                               (crop with Planar::crop_to_multiple)",
                        a: vec![h, w],
                        b: vec![h / s * s, w / s * s],
                    });
                }
                let (oh, ow) = (h / s, w / s);
                let mut data = Vec::with_capacity(c * oh * ow);
                for ch in 0..c {
                    let plane = blurred.plane(ch);
                    for y in 0..oh {
                        let row = &plane[y * s * w..(y * s + 1) * w];
                        data.extend(row.iter().step_by(s).take(ow));
                    }
                }
                Planar::new(c, oh, ow, data)
            }
        }
    }

    /// The noisy LR before quantisation: [`Self::prequant`] plus `draws · σ` when the noise
    /// level is > 0 (`draws` ignored otherwise).
    fn noisy(&self, hr: &Planar, draws: Option<&Planar>) -> Result<Planar> {
        let mut lr = self.prequant(hr)?;
        if self.noise_level > 0.0 {
            let draws = draws.ok_or(Error::InvalidParameter {
                name: "noise level (no noise draws given)",
                value: f64::from(self.noise_level),
                expected: "needs N(0,1) draws shaped like the LR image when > 0",
            })?;
            if draws.shape() != lr.shape() {
                return Err(Error::ShapeMismatch {
                    what: "noise draws vs LR image",
                    a: draws.shape().to_vec(),
                    b: lr.shape().to_vec(),
                });
            }
            self.add_noise(&mut lr, draws.data());
        }
        Ok(lr)
    }

    /// Adds `draws · σ` (float32, like `randn(...).mul_(σ)` then `add_`).
    fn add_noise(&self, lr: &mut Planar, draws: &[f32]) {
        let sigma = self.sigma();
        for (x, d) in lr.data_mut().iter_mut().zip(draws) {
            *x += d * sigma;
        }
    }

    /// Quantises in place to 8 bits in the data's range.
    fn quantize_in_place(&self, img: &mut Planar) {
        if self.rgb_range == 1.0 {
            for v in img.data_mut() {
                *v = crate::pipeline::quantize(*v);
            }
        } else {
            let pixel_range = 255.0 / self.rgb_range;
            for v in img.data_mut() {
                *v = (*v * pixel_range).clamp(0.0, 255.0).round_ties_even() / pixel_range;
            }
        }
    }

    /// The full synthesis with given standard-normal `draws` (CHW, the LR's shape): blur,
    /// downsample, add `draws · noise_level / (255 / rgb_range)` when the level is > 0, quantise
    /// (round half to even, clamp).
    ///
    /// Shapes: `hr` `[C, H, W]` → `[C, ⌊H/s⌋, ⌊W/s⌋]`; `draws` the same as the output. Errors:
    /// those of [`Self::prequant`]; [`Error::InvalidParameter`] when the level is > 0 and `draws`
    /// is `None`; [`Error::ShapeMismatch`] for draws of the wrong shape. Draws are ignored when
    /// the level is 0.
    pub fn apply_with_noise(&self, hr: &Planar, draws: Option<&Planar>) -> Result<Planar> {
        let mut lr = self.noisy(hr, draws)?;
        self.quantize_in_place(&mut lr);
        Ok(lr)
    }

    /// As [`Self::apply_with_noise`], also returning KDSR's `hr_blured`: the official bicubic ×s
    /// upsampling ([`bicubic_up`]) of the noisy LR *before* quantisation, then quantised.
    ///
    /// Returns `(lr, hr_blurred)` with shapes `[C, ⌊H/s⌋, ⌊W/s⌋]` and `[C, s·⌊H/s⌋, s·⌊W/s⌋]`.
    pub fn apply_with_upsampled(
        &self,
        hr: &Planar,
        draws: Option<&Planar>,
    ) -> Result<(Planar, Planar)> {
        let mut lr = self.noisy(hr, draws)?;
        let mut up = bicubic_up(&lr, self.scale)?;
        self.quantize_in_place(&mut lr);
        self.quantize_in_place(&mut up);
        Ok((lr, up))
    }

    /// The full synthesis drawing the noise from `rng` (`StandardNormal` as f32, in CHW order;
    /// nothing is drawn when the level is 0).
    ///
    /// Shapes and errors as [`Self::apply_with_noise`].
    pub fn apply<R: Rng + ?Sized>(&self, hr: &Planar, rng: &mut R) -> Result<Planar> {
        let mut lr = self.prequant(hr)?;
        if self.noise_level > 0.0 {
            let draws: Vec<f32> = (0..lr.data().len())
                .map(|_| StandardNormal.sample(rng))
                .collect();
            self.add_noise(&mut lr, &draws);
        }
        self.quantize_in_place(&mut lr);
        Ok(lr)
    }
}
