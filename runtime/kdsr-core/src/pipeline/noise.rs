//! Noise: BasicSR/Real-ESRGAN Gaussian and Poisson noise, and the classic (DASR/KDSR) additive
//! Gaussian noise step.
//!
//! Every function comes in two forms: `*_with` takes the random draws as an image (so the
//! arithmetic can be checked against reference vectors), and the plain form draws them from a
//! [`rand::Rng`] and calls the `*_with` form. Images are [`Planar`] float32 in [0, 1]; the
//! arithmetic is float32 in the order BasicSR's numpy code uses.
//!
//! Gray noise is one `height x width` plane broadcast over all channels. The Poisson gray image is
//! `0.2989·R + 0.587·G + 0.114·B` ([`GRAY_WEIGHTS`], torchvision's `rgb_to_grayscale`, which
//! Real-ESRGAN's batched `generate_poisson_noise_pt` uses on RGB data).

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson, StandardNormal};

use crate::Planar;
use crate::error::{Error, Result, check_non_negative};
use crate::pipeline::quantize_u8;

/// Luma weights (R, G, B) of the Poisson gray-noise image: torchvision `rgb_to_grayscale`.
///
/// BasicSR's numpy `generate_poisson_noise` uses `cv2.COLOR_BGR2GRAY` instead
/// (0.299/0.587/0.114 on BGR data); Real-ESRGAN's training pipeline uses these weights on RGB.
pub const GRAY_WEIGHTS: [f32; 3] = [0.2989, 0.587, 0.114];

/// Checks that `noise` has the shape of `img` or is a single plane of its size (gray noise).
/// Returns true for the single-plane case.
fn broadcast_plane(what: &'static str, img: &Planar, noise: &Planar) -> Result<bool> {
    if noise.shape() == img.shape() {
        Ok(false)
    } else if noise.channels() == 1
        && noise.height() == img.height()
        && noise.width() == img.width()
    {
        Ok(true)
    } else {
        Err(Error::ShapeMismatch {
            what,
            a: img.shape().to_vec(),
            b: noise.shape().to_vec(),
        })
    }
}

/// `img + noise` (noise broadcast over channels when it is a single plane), then BasicSR's
/// `clip` / `rounds` post-processing.
fn add_and_finish(img: &Planar, noise: &Planar, clip: bool, rounds: bool) -> Result<Planar> {
    let gray = broadcast_plane("add noise", img, noise)?;
    let mut out = img.clone();
    for c in 0..img.channels() {
        let n = if gray { noise.plane(0) } else { noise.plane(c) };
        for (o, v) in out.plane_mut(c).iter_mut().zip(n) {
            *o = finish(*o + *v, clip, rounds);
        }
    }
    Ok(out)
}

/// BasicSR's tail of `add_*_noise`: clip and/or round to 8-bit levels, in f32.
fn finish(x: f32, clip: bool, rounds: bool) -> f32 {
    match (clip, rounds) {
        (true, true) => round_level(x),
        (true, false) => x.clamp(0.0, 1.0),
        (false, true) => (x * 255.0).round_ties_even() / 255.0,
        (false, false) => x,
    }
}

/// BasicSR `add_gaussian_noise(img, sigma, clip, rounds)` with given standard-normal `draws`:
/// `noise = draws · σ / 255` (f32, in that order), `out = img + noise`, then
/// - `clip && rounds`: `clip(round(out·255), 0, 255)/255`,
/// - `clip`: `clip(out, 0, 1)`,
/// - `rounds`: `round(out·255)/255` (round half to even).
///
/// `draws` has the shape of `img`, or one channel (gray noise, broadcast over the channels).
///
/// Errors: [`Error::ShapeMismatch`] for other shapes; [`Error::InvalidParameter`] for σ < 0 or
/// non-finite; [`Error::NonFinite`] for NaN/∞ in `img` or `draws`.
pub fn add_gaussian_noise_with(
    img: &Planar,
    draws: &Planar,
    sigma_255: f64,
    clip: bool,
    rounds: bool,
) -> Result<Planar> {
    check_non_negative("sigma", sigma_255)?;
    broadcast_plane("gaussian noise", img, draws)?;
    img.check_finite("image")?;
    draws.check_finite("gaussian draws")?;
    let s = sigma_255 as f32;
    let noise = draws.map(|n| n * s / 255.0);
    add_and_finish(img, &noise, clip, rounds)
}

/// Standard-normal draws of the given shape.
fn normal_draws<R: Rng + ?Sized>(rng: &mut R, c: usize, h: usize, w: usize) -> Result<Planar> {
    let data = (0..c * h * w)
        .map(|_| StandardNormal.sample(rng))
        .collect::<Vec<f32>>();
    Planar::new(c, h, w, data)
}

/// [`add_gaussian_noise_with`] with draws from `rng`: one plane broadcast over the channels when
/// `gray`, otherwise independent noise per channel. Real-ESRGAN uses σ ~ U(1, 30) (stage 1) or
/// U(1, 25) (stage 2), gray with p = 0.4, `clip = true`, `rounds = false`.
pub fn add_gaussian_noise<R: Rng + ?Sized>(
    img: &Planar,
    rng: &mut R,
    sigma_255: f64,
    gray: bool,
    clip: bool,
    rounds: bool,
) -> Result<Planar> {
    check_non_negative("sigma", sigma_255)?;
    let c = if gray { 1 } else { img.channels() };
    let draws = normal_draws(rng, c, img.height(), img.width())?;
    add_gaussian_noise_with(img, &draws, sigma_255, clip, rounds)
}

/// The gray image Poisson gray noise starts from: `0.2989·R + 0.587·G + 0.114·B` in f32
/// ([`GRAY_WEIGHTS`]) for 3 channels, the image itself for 1 channel.
///
/// Errors: [`Error::InvalidParameter`] for other channel counts.
pub fn to_gray(img: &Planar) -> Result<Planar> {
    match img.channels() {
        1 => Ok(img.clone()),
        3 => {
            let [wr, wg, wb] = GRAY_WEIGHTS;
            let data = img
                .plane(0)
                .iter()
                .zip(img.plane(1))
                .zip(img.plane(2))
                .map(|((r, g), b)| wr * r + wg * g + wb * b)
                .collect();
            Planar::new(1, img.height(), img.width(), data)
        }
        c => Err(Error::InvalidParameter {
            name: "channels",
            value: c as f64,
            expected: "gray conversion needs 1 or 3 (RGB) channels",
        }),
    }
}

/// numpy's `np.clip(np.round(x * 255), 0, 255) / 255` in f32. Unlike
/// [`quantize`](crate::pipeline::quantize) it keeps the sign of zero (a value rounding to −0.0
/// stays −0.0) and NaN, as numpy does.
fn round_level(x: f32) -> f32 {
    (x * 255.0).round_ties_even().clamp(0.0, 255.0) / 255.0
}

/// [`round_level`] of every value: the levels Poisson noise counts with.
fn round_levels(img: &Planar) -> Planar {
    img.map(round_level)
}

/// The level k of a rounded value k/255 (−0.0 and 0.0 are the same level, as in `np.unique`).
fn level_index(v: f32) -> usize {
    usize::from(quantize_u8(v))
}

/// `2^ceil(log2(n))` for the number `n` of distinct 8-bit levels of an already rounded image.
fn vals_of_rounded(rounded: &Planar) -> f64 {
    let mut seen = [false; 256];
    for v in rounded.data() {
        seen[level_index(*v)] = true;
    }
    let n = seen.iter().filter(|s| **s).count().max(1);
    (n as f64).log2().ceil().exp2()
}

/// BasicSR's Poisson `vals`: `2^ceil(log2(number of unique values of img_r))` with
/// `img_r = clip(round(img·255), 0, 255)/255` over all channels (256 for a typical 8-bit photo).
///
/// Errors: [`Error::NonFinite`] for NaN/∞ in `img`.
pub fn poisson_vals(img: &Planar) -> Result<f64> {
    img.check_finite("image")?;
    Ok(vals_of_rounded(&round_levels(img)))
}

/// The Poisson rates `img_r · vals` (f64) the counts of [`add_poisson_noise_with`] are drawn from:
/// of `img` itself, or of its gray image ([`to_gray`]) when `gray`. Returned as
/// (shape `[channels, height, width]`, row-major rates).
pub fn poisson_rates(img: &Planar, gray: bool) -> Result<([usize; 3], Vec<f64>)> {
    img.check_finite("image")?;
    let base = if gray { to_gray(img)? } else { img.clone() };
    let rounded = round_levels(&base);
    let vals = vals_of_rounded(&rounded);
    let rates = rounded
        .data()
        .iter()
        .map(|v| f64::from(*v) * vals)
        .collect();
    Ok((rounded.shape(), rates))
}

/// BasicSR `add_poisson_noise(img, scale, clip, rounds, gray_noise)` with given Poisson `counts`:
/// `img_r = clip(round(img·255), 0, 255)/255`, `vals` as in [`poisson_vals`],
/// `noise = (f32(counts/vals) − img_r)·scale`, `out = img + noise` (the noise is added to the
/// *unrounded* image), then clip/round as in [`add_gaussian_noise_with`].
///
/// `counts` are draws of `Poisson(img_r·vals)` (see [`poisson_rates`]). If `counts` has the shape
/// of `img` the noise is per channel; if `img` has 3 channels and `counts` one, it is gray noise:
/// `img_r` and `vals` come from [`to_gray`]`(img)` and the one noise plane is broadcast.
///
/// Errors: [`Error::ShapeMismatch`] for other shapes; [`Error::InvalidParameter`] for scale < 0
/// or non-finite; [`Error::NonFinite`] for NaN/∞ in `img` or `counts`.
pub fn add_poisson_noise_with(
    img: &Planar,
    counts: &Planar,
    scale: f64,
    clip: bool,
    rounds: bool,
) -> Result<Planar> {
    check_non_negative("poisson scale", scale)?;
    let gray = broadcast_plane("poisson noise", img, counts)?;
    img.check_finite("image")?;
    counts.check_finite("poisson counts")?;
    let base = if gray { to_gray(img)? } else { img.clone() };
    let rounded = round_levels(&base);
    let vals = vals_of_rounded(&rounded);
    let s = scale as f32;
    let noise_data = counts
        .data()
        .iter()
        .zip(rounded.data())
        .map(|(n, r)| ((f64::from(*n) / vals) as f32 - r) * s)
        .collect();
    let noise = Planar::new(
        counts.channels(),
        counts.height(),
        counts.width(),
        noise_data,
    )?;
    add_and_finish(img, &noise, clip, rounds)
}

/// [`add_poisson_noise_with`] with counts drawn from `rng` (`Poisson(img_r·vals)`; a rate of 0
/// gives 0). Real-ESRGAN uses scale ~ U(0.05, 3) (stage 1) or U(0.05, 2.5) (stage 2), gray with
/// p = 0.4, `clip = true`, `rounds = false`.
pub fn add_poisson_noise<R: Rng + ?Sized>(
    img: &Planar,
    rng: &mut R,
    scale: f64,
    gray: bool,
    clip: bool,
    rounds: bool,
) -> Result<Planar> {
    check_non_negative("poisson scale", scale)?;
    img.check_finite("image")?;
    let base = if gray { to_gray(img)? } else { img.clone() };
    let rounded = round_levels(&base);
    let vals = vals_of_rounded(&rounded);
    // One distribution per 8-bit level (at most 256), built on first use; rate 0 gives 0.
    let mut cache: Vec<Option<Option<Poisson<f64>>>> = vec![None; 256];
    let mut counts = Vec::with_capacity(rounded.data().len());
    for v in rounded.data() {
        let k = level_index(*v);
        if cache[k].is_none() {
            let lambda = f64::from(*v) * vals;
            cache[k] = Some(if lambda > 0.0 {
                Some(Poisson::new(lambda).map_err(|_| Error::InvalidParameter {
                    name: "poisson rate",
                    value: lambda,
                    expected: "must be finite and within rand_distr's Poisson range",
                })?)
            } else {
                None
            });
        }
        let dist = cache[k].as_ref().and_then(Option::as_ref);
        counts.push(match dist {
            Some(d) => d.sample(rng) as f32,
            None => 0.0,
        });
    }
    let [c, h, w] = rounded.shape();
    let counts = Planar::new(c, h, w, counts)?;
    add_poisson_noise_with(img, &counts, scale, clip, rounds)
}

/// The classic (DASR/KDSR) noise step on a [0, 1] LR image: `lr + draws · f32(level/255)`, the
/// same level in every channel, with no clipping and no rounding (quantisation is a separate
/// step). `draws` are standard-normal, shape of `lr`.
///
/// Errors: [`Error::ShapeMismatch`]; [`Error::InvalidParameter`] for a level < 0 or non-finite;
/// [`Error::NonFinite`] in `lr` or `draws`.
pub fn add_classic_noise_with(lr: &Planar, draws: &Planar, level_255: f64) -> Result<Planar> {
    check_non_negative("noise level", level_255)?;
    if draws.shape() != lr.shape() {
        return Err(Error::ShapeMismatch {
            what: "classic noise",
            a: lr.shape().to_vec(),
            b: draws.shape().to_vec(),
        });
    }
    lr.check_finite("LR image")?;
    draws.check_finite("gaussian draws")?;
    let s = (level_255 / 255.0) as f32;
    let data = lr
        .data()
        .iter()
        .zip(draws.data())
        .map(|(x, n)| x + n * s)
        .collect();
    Planar::new(lr.channels(), lr.height(), lr.width(), data)
}

/// [`add_classic_noise_with`] with standard-normal draws from `rng` (test time: a fixed level,
/// e.g. KDSR's anisotropic test uses 10).
pub fn add_classic_noise<R: Rng + ?Sized>(
    lr: &Planar,
    rng: &mut R,
    level_255: f64,
) -> Result<Planar> {
    check_non_negative("noise level", level_255)?;
    let draws = normal_draws(rng, lr.channels(), lr.height(), lr.width())?;
    add_classic_noise_with(lr, &draws, level_255)
}

/// The training-time classic noise: level ~ U(0, `max_level_255`) per image, then
/// [`add_classic_noise`]. Returns the noisy image and the level drawn (0..255 units).
pub fn add_classic_noise_random_level<R: Rng + ?Sized>(
    lr: &Planar,
    rng: &mut R,
    max_level_255: f64,
) -> Result<(Planar, f64)> {
    check_non_negative("max noise level", max_level_255)?;
    let level = max_level_255 * rng.random::<f64>();
    Ok((add_classic_noise(lr, rng, level)?, level))
}
