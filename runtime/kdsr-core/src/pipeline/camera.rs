//! The degradations of a camera frame (issue 12's "camera" setting): the classic anisotropic
//! Gaussian blur and bicubic ↓s, then sensor noise — Gaussian, or shot noise whose variance grows
//! with the intensity — 8-bit quantisation, and JPEG compression with a real encoder.
//!
//! 1. Blur with an anisotropic Gaussian (λ1, λ2 ~ U(range), θ ~ U(0, π), 21×21) when the case
//!    has blur — [`blur_reflect`], as the classic pipeline.
//! 2. The official bicubic ↓s.
//! 3. Noise of level L (0..255 units) ~ U(range): Gaussian `N(0, (L/255)²)`, or shot noise
//!    ([`add_shot_noise`]) with probability `poisson_prob`.
//! 4. Quantise to 8 bits.
//! 5. JPEG at quality q ~ U(range): a baseline 4:2:0 JPEG (libjpeg's tables and quality scaling,
//!    the chroma subsampling of cameras and of `cv2.imwrite`) written with `jpeg-encoder` and
//!    decoded with the `image` crate ([`jpeg_roundtrip`]).
//!
//! Every parameter is drawn from the caller's generator, so an evaluation case is one
//! distribution and each image gets its own draw from its `(case, image)` generator.
//! The trainer's device pipeline draws the same distributions; its JPEG is DiffJPEG (a
//! differentiable approximation of the codec, as Real-ESRGAN trains), not this encoder.

use std::f64::consts::PI;

use image::ImageFormat;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::Serialize;

use crate::Planar;
use crate::error::{Error, Result, check_non_negative, check_scale};
use crate::pipeline::blur::blur_reflect;
use crate::pipeline::kernels::{KERNEL_SIZE, anisotropic_gaussian};
use crate::pipeline::resize::bicubic_down;
use crate::pipeline::{quantize, quantize_u8};

/// Shot noise of level `level_255`: the σ (0..255 units) at mid-grey. Each value `x` (clamped to
/// ≥ 0) becomes `Poisson(x · n) / n` with `n = 0.5 · (255 / level)²` photons at full scale, so the
/// noise σ is `level/255 · √(x / 0.5)`; level 0 returns the image unchanged. No clipping or
/// rounding (quantisation is a separate step).
///
/// Errors: [`Error::InvalidParameter`] for a negative or non-finite level; [`Error::NonFinite`]
/// in `img`.
pub fn add_shot_noise<R: Rng + ?Sized>(
    img: &Planar,
    level_255: f64,
    rng: &mut R,
) -> Result<Planar> {
    check_non_negative("shot noise level", level_255)?;
    img.check_finite("image")?;
    if level_255 == 0.0 {
        return Ok(img.clone());
    }
    let n = photons(level_255);
    let mut out = img.clone();
    for v in out.data_mut() {
        let rate = f64::from(v.max(0.0)) * n;
        // `Poisson::new` only fails for a non-positive or non-finite rate, excluded here.
        let count: f64 = match Poisson::new(rate) {
            Ok(p) if rate > 0.0 => p.sample(rng),
            _ => 0.0,
        };
        *v = (count / n) as f32;
    }
    Ok(out)
}

/// Photons at full scale for shot noise of σ `level_255` at mid-grey.
pub fn photons(level_255: f64) -> f64 {
    0.5 * (255.0 / level_255).powi(2)
}

/// Encodes `img` (RGB or gray, [0, 1], quantised to 8 bits first) as a baseline JPEG at
/// `quality` (1–100), 4:2:0 chroma for RGB, and decodes it again with the `image` crate.
///
/// Errors: [`Error::InvalidParameter`] for a quality outside 1–100, a channel count other than
/// 1 or 3, or a side over 65,535; [`Error::Image`] if the codec fails.
pub fn jpeg_roundtrip(img: &Planar, quality: u8) -> Result<Planar> {
    if !(1..=100).contains(&quality) {
        return Err(Error::InvalidParameter {
            name: "JPEG quality",
            value: f64::from(quality),
            expected: "1 to 100",
        });
    }
    let (c, h, w) = (img.channels(), img.height(), img.width());
    let color = match c {
        3 => ColorType::Rgb,
        1 => ColorType::Luma,
        _ => {
            return Err(Error::InvalidParameter {
                name: "channels",
                value: c as f64,
                expected: "a gray or RGB image for JPEG",
            });
        }
    };
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(Error::InvalidParameter {
            name: "JPEG side",
            value: w.max(h) as f64,
            expected: "at most 65,535 pixels",
        });
    };
    let codec_error = |message: String| Error::Image {
        path: "<in-memory JPEG>".into(),
        message,
    };
    let bytes: Vec<u8> = img.to_hwc().into_iter().map(quantize_u8).collect();
    let mut buf = Vec::new();
    let mut encoder = Encoder::new(&mut buf, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder
        .encode(&bytes, w16, h16, color)
        .map_err(|e| codec_error(e.to_string()))?;
    let decoded = image::load_from_memory_with_format(&buf, ImageFormat::Jpeg)
        .map_err(|e| codec_error(e.to_string()))?;
    let back: Vec<f32> = if c == 3 {
        decoded.to_rgb8().into_raw()
    } else {
        decoded.to_luma8().into_raw()
    }
    .into_iter()
    .map(|v| f32::from(v) / 255.0)
    .collect();
    Planar::from_hwc(c, h, w, &back)
}

/// The distribution of one camera degradation: each stage is on when its range is given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraDegradation {
    /// Scale factor (2, 3 or 4).
    pub scale: u32,
    /// Anisotropic blur: λ1, λ2 ~ U(lo, hi), θ ~ U(0, π); none: no blur.
    pub blur: Option<(f64, f64)>,
    /// Noise level (0..255 units) ~ U(lo, hi); none: no noise.
    pub noise: Option<(f64, f64)>,
    /// Probability that the noise is shot noise rather than Gaussian.
    pub poisson_prob: f64,
    /// JPEG quality ~ U(lo, hi), rounded; none: no compression.
    pub jpeg: Option<(u8, u8)>,
}

/// What one draw of a [`CameraDegradation`] picked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraDraw {
    /// (λ1, λ2, θ radians) of the blur, if any.
    pub blur: Option<(f64, f64, f64)>,
    /// Noise level (0..255) and whether it is shot noise, if any.
    pub noise: Option<(f64, bool)>,
    /// JPEG quality, if any.
    pub jpeg: Option<u8>,
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

impl CameraDegradation {
    /// Checks the ranges: scale 2/3/4, 0 < blur lo ≤ hi, 0 ≤ noise lo ≤ hi, poisson_prob in
    /// [0, 1], 1 ≤ JPEG lo ≤ hi ≤ 100.
    pub fn validate(&self) -> Result<()> {
        check_scale(self.scale)?;
        let bad = |name, value| Error::InvalidParameter {
            name,
            value,
            expected: "a range lo ≤ hi of valid values",
        };
        if let Some((lo, hi)) = self.blur
            && !(lo > 0.0 && lo <= hi && hi.is_finite())
        {
            return Err(bad("blur λ range", lo));
        }
        if let Some((lo, hi)) = self.noise
            && !(lo >= 0.0 && lo <= hi && hi.is_finite())
        {
            return Err(bad("noise level range", lo));
        }
        if !(0.0..=1.0).contains(&self.poisson_prob) {
            return Err(bad("poisson_prob", self.poisson_prob));
        }
        if let Some((lo, hi)) = self.jpeg
            && !(lo >= 1 && lo <= hi && hi <= 100)
        {
            return Err(bad("JPEG quality range", f64::from(lo)));
        }
        Ok(())
    }

    /// Draws the parameters of one image.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> CameraDraw {
        let blur = self
            .blur
            .map(|r| (uniform(rng, r), uniform(rng, r), uniform(rng, (0.0, PI))));
        let noise = self
            .noise
            .map(|r| (uniform(rng, r), rng.random::<f64>() < self.poisson_prob));
        let jpeg = self
            .jpeg
            .map(|(lo, hi)| uniform(rng, (f64::from(lo), f64::from(hi))).round() as u8);
        CameraDraw { blur, noise, jpeg }
    }

    /// Degrades `hr` (`[C,H,W]`, [0, 1], a multiple of the scale) with a given draw, the noise
    /// values from `rng`. Returns the 8-bit LR `[C, H/s, W/s]`.
    pub fn apply_draw<R: Rng + ?Sized>(
        &self,
        hr: &Planar,
        draw: &CameraDraw,
        rng: &mut R,
    ) -> Result<Planar> {
        self.validate()?;
        let blurred = match draw.blur {
            Some((l1, l2, th)) => {
                blur_reflect(hr, &anisotropic_gaussian(KERNEL_SIZE, l1, l2, th)?)?
            }
            None => hr.clone(),
        };
        let mut lr = bicubic_down(&blurred, self.scale)?;
        match draw.noise {
            Some((level, true)) => lr = add_shot_noise(&lr, level, rng)?,
            Some((level, false)) if level > 0.0 => {
                let s = (level / 255.0) as f32;
                for v in lr.data_mut() {
                    let n: f32 = StandardNormal.sample(rng);
                    *v += n * s;
                }
            }
            _ => {}
        }
        let lr = lr.map(quantize);
        match draw.jpeg {
            Some(q) => jpeg_roundtrip(&lr, q),
            None => Ok(lr),
        }
    }

    /// Draws the parameters from `rng`, then [`Self::apply_draw`].
    pub fn apply<R: Rng + ?Sized>(&self, hr: &Planar, rng: &mut R) -> Result<(Planar, CameraDraw)> {
        let draw = self.draw(rng);
        Ok((self.apply_draw(hr, &draw, rng)?, draw))
    }
}
