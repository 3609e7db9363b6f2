//! Y channel, PSNR and SSIM, computed the way BasicSR and the official DASR/KDSR code compute them.
//!
//! Two families of metrics are in use for blind SR and they do not agree to the last digit, so
//! every function here takes a [`MetricVariant`] and an evaluation should report which one it used
//! (its [`Display`](std::fmt::Display) name is meant for that).
//!
//! # [`MetricVariant::BasicSr`]
//! BasicSR 1.4.2 `calculate_psnr` / `calculate_ssim` (`basicsr/metrics/psnr_ssim.py`) with
//! `input_order='HWC'`:
//! - images on the 0..255 scale; `crop_border` px are cut from every side first;
//! - with `test_y_channel`, Y is `to_y_channel`: `f32((16 + 65.481·R + 128.553·G + 24.966·B) / 255) · 255`
//!   in float32, the dot product in float64, with R, G, B = pixel/255 in float32 (no rounding);
//! - PSNR = `10·log10(255² / mse)` on float64 data, `+inf` when mse = 0;
//! - SSIM = mean of the SSIM map over the valid region of an 11×11 Gaussian window (σ = 1.5),
//!   `C1 = (0.01·255)²`, `C2 = (0.03·255)²`, float64; without `test_y_channel` it is the mean of the
//!   per-channel SSIMs.
//!
//! BasicSR's functions expect **BGR** arrays (OpenCV order). Images here are RGB, and this module
//! converts RGB to Y with the coefficients in the right places, which gives the numbers BasicSR
//! reports when it is fed BGR data as intended (its `psnr_y` of an RGB array passed as-is differs:
//! see the `psnr_y_crop4_rgb_passed_as_bgr` reference value).
//!
//! # [`MetricVariant::Kdsr`]
//! The official KDSR / DASR `utility.py` (EDSR lineage):
//! - `calc_psnr(sr, hr, scale, rgb_range=1, benchmark)` works on the **difference** `sr − hr` in
//!   float32; with the Y channel the difference is mapped with `(65.738·dR + 129.057·dG + 25.064·dB)/256`
//!   (no +16 offset, no rounding), `shave` px are cut from every side and PSNR = `−10·log10(mse)`
//!   on the [0, 1] scale (mse in float32). Benchmarks use the Y channel and `shave = scale`; other
//!   data sets use RGB and `scale + 6`.
//! - `calc_ssim(sr·255, hr·255, scale, benchmark)` **rounds and clamps its first argument** (sr) to
//!   0..255 but not the second, computes `Y = (65.738·R + 129.057·G + 25.064·B)/255 + 16`
//!   (dividing by 255, not 256, so Y is 256/255 times the standard value), cuts `ceil(scale)` px
//!   (benchmark) or `ceil(scale) + 6`, and uses the same window and constants as BasicSR.
//!   The official `ssim` uses `cv2.filter2D` (reflect-101 borders) and then drops 5 px on every side,
//!   which is exactly the valid region computed here.
//!
//! # Conventions shared by both variants
//! - Inputs are [`Planar`] images with 1 or 3 channels on the [0, 1] scale (a pixel's 0..255 value
//!   is `f32(v · 255)`, which is exact for 8-bit data `k/255`).
//! - A **gray** (1-channel) image on the Y path is treated as the RGB image (g, g, g), because both
//!   official loaders (OpenCV `IMREAD_COLOR` for BasicSR, `set_channel` for KDSR) replicate gray
//!   images to three channels before any metric sees them; so its Y is `16/255 + 219/255·g`
//!   (BasicSR) and its difference is scaled by `219.859/256` (KDSR). (A bare 2-D array passed
//!   straight to BasicSR's `to_y_channel` would instead be left unchanged.)
//! - A border of 0 means no crop (BasicSR special-cases it; the official `x[0:-0]` slice would be
//!   empty).
//! - PSNR of identical images is `+inf` for **both** variants. The official KDSR code raises a
//!   math domain error there (`log10(0)`); returning `+inf` keeps the result visible (any mean that
//!   includes it is `+inf`) without aborting an evaluation.
//! - Errors: different shapes → [`Error::ShapeMismatch`]; a border that leaves too little image →
//!   [`Error::TooSmall`]; NaN/∞ → [`Error::NonFinite`]; a channel count other than 1 or 3 →
//!   [`Error::InvalidParameter`].

use std::fmt;

use crate::Planar;
use crate::error::{Error, Result};
use crate::pipeline::quantize;

/// Which reference implementation a metric reproduces. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MetricVariant {
    /// BasicSR `calculate_psnr` / `calculate_ssim` (Y via `bgr2ycbcr`, fed correctly ordered data).
    #[serde(rename = "basicsr")]
    BasicSr,
    /// The official KDSR / DASR `utility.calc_psnr` / `calc_ssim`.
    #[serde(rename = "kdsr-official")]
    Kdsr,
}

impl MetricVariant {
    /// The stable name to print next to a score: `"basicsr"` or `"kdsr-official"`.
    pub fn name(self) -> &'static str {
        match self {
            MetricVariant::BasicSr => "basicsr",
            MetricVariant::Kdsr => "kdsr-official",
        }
    }
}

impl fmt::Display for MetricVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MetricVariant {
    type Err = Error;
    /// Parses `"basicsr"` or `"kdsr-official"` (also `"kdsr"`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "basicsr" => Ok(MetricVariant::BasicSr),
            "kdsr-official" | "kdsr" => Ok(MetricVariant::Kdsr),
            other => Err(Error::Config {
                source_name: "metric variant".into(),
                message: format!("unknown metric variant `{other}`; known: basicsr, kdsr-official"),
            }),
        }
    }
}

/// PSNR and SSIM of one SR/HR pair, and the variant that computed them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// PSNR in dB (`+inf` for identical images).
    pub psnr: f64,
    /// SSIM, at most 1.
    pub ssim: f64,
    /// The implementation reproduced.
    pub variant: MetricVariant,
}

/// Largest absolute difference between two equally long slices (∞ when the lengths differ or a
/// value is NaN).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (f64::from(*x) - f64::from(*y)).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .fold(0.0, f64::max)
}

/// BasicSR `rgb2ycbcr(img, y_only=True)` for a float image: `(16 + 65.481·R + 128.553·G + 24.966·B) / 255`
/// as float32 (dot product in float64), for an RGB (or gray, see the [module docs](self)) image in
/// [0, 1]. The result has one channel and lies in [16/255, 235/255] for inputs in [0, 1].
pub fn rgb_to_y(img: &Planar) -> Result<Planar> {
    check_image("rgb_to_y input", img)?;
    let (r, g, b) = rgb_planes(img);
    let data = (0..r.len())
        .map(|i| ((16.0 + bgr_dot_basicsr(r[i], g[i], b[i])) / 255.0) as f32)
        .collect();
    Planar::new(1, img.height(), img.width(), data)
}

/// BasicSR `rgb2ycbcr(img_u8, y_only=True)` for an 8-bit image: the input is first quantised to
/// 8 bits (`clamp(round_half_even(v·255), 0, 255)`), then
/// `round_half_even(16 + 65.481·R + 128.553·G + 24.966·B)` with R, G, B = u8/255 in float32 and the
/// dot product in float64. Returns the `height · width` Y values, row-major, in [16, 235].
pub fn rgb_to_y_u8(img: &Planar) -> Result<Vec<u8>> {
    check_image("rgb_to_y_u8 input", img)?;
    let q = img.map(quantize);
    let (r, g, b) = rgb_planes(&q);
    Ok((0..r.len())
        .map(|i| {
            (16.0 + bgr_dot_basicsr(r[i], g[i], b[i]))
                .round_ties_even()
                .clamp(0.0, 255.0) as u8
        })
        .collect())
}

/// PSNR in dB of `sr` against `hr`, both [0, 1] images of the same shape with 1 or 3 channels.
///
/// `border` px are cut from every side first (BasicSR `crop_border`, KDSR `shave`); `y_channel`
/// selects the Y channel (BasicSR `test_y_channel`, KDSR `benchmark`) instead of all channels.
/// Returns `+inf` for identical (cropped) images with either variant. The images are used as given:
/// quantise them first (as [`evaluate_pair`] does) to reproduce an 8-bit evaluation.
pub fn psnr(
    sr: &Planar,
    hr: &Planar,
    border: usize,
    y_channel: bool,
    variant: MetricVariant,
) -> Result<f64> {
    check_pair(sr, hr)?;
    check_border("psnr", sr, border, 1)?;
    match variant {
        MetricVariant::BasicSr => {
            let a = basicsr_planes(sr, border, y_channel);
            let b = basicsr_planes(hr, border, y_channel);
            let (mut sum, mut n) = (0.0f64, 0usize);
            for (pa, pb) in a.iter().zip(&b) {
                for (x, y) in pa.iter().zip(pb) {
                    sum += (x - y) * (x - y);
                }
                n += pa.len();
            }
            let mse = sum / n as f64;
            Ok(if mse == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (255.0 * 255.0 / mse).log10()
            })
        }
        MetricVariant::Kdsr => kdsr_psnr(sr, hr, border, y_channel),
    }
}

/// SSIM of `sr` against `hr`, both [0, 1] images of the same shape with 1 or 3 channels.
///
/// `border` px are cut from every side first; what remains must be at least 11×11 (the window).
/// With `y_channel` the SSIM of the Y planes, otherwise the mean of the per-channel SSIMs.
///
/// With [`MetricVariant::Kdsr`] the argument order matters: like the official
/// `calc_ssim(sr, hr)`, `sr·255` is rounded (half to even) and clamped to 0..255 and `hr·255` is not.
/// The official code has no RGB SSIM; with `y_channel = false` this variant returns the mean of the
/// per-channel SSIMs of those 0..255 values (an extension, not a reference path).
pub fn ssim(
    sr: &Planar,
    hr: &Planar,
    border: usize,
    y_channel: bool,
    variant: MetricVariant,
) -> Result<f64> {
    check_pair(sr, hr)?;
    check_border("ssim", sr, border, WIN)?;
    let (a, b) = match variant {
        MetricVariant::BasicSr => (
            basicsr_planes(sr, border, y_channel),
            basicsr_planes(hr, border, y_channel),
        ),
        MetricVariant::Kdsr => (
            kdsr_ssim_planes(sr, border, y_channel, true),
            kdsr_ssim_planes(hr, border, y_channel, false),
        ),
    };
    let h = sr.height() - 2 * border;
    let w = sr.width() - 2 * border;
    let win = gaussian_window();
    let total: f64 = a
        .iter()
        .zip(&b)
        .map(|(pa, pb)| ssim_plane(pa, pb, h, w, &win))
        .sum();
    Ok(total / a.len() as f64)
}

/// The benchmark evaluation of one SR output against its HR image at `scale`, as `variant`'s
/// reference code runs it:
///
/// 1. both images are quantised to 8 bits (`clamp(round_half_even(v·255), 0, 255)/255`), as the
///    official test loop quantises SR and HR is an 8-bit file;
/// 2. PSNR and SSIM on the Y channel with a border of `scale` px (KDSR: `shave = scale` and
///    `ceil(scale)`; BasicSR: `crop_border`, which its SR configs set to the scale).
///
/// For KDSR's non-benchmark protocol call [`psnr`] with `border = scale + 6, y_channel = false`
/// and [`ssim`] with `border = scale + 6, y_channel = true` on quantised images.
pub fn evaluate_pair(
    sr: &Planar,
    hr: &Planar,
    scale: usize,
    variant: MetricVariant,
) -> Result<Metrics> {
    if scale == 0 {
        return Err(Error::InvalidParameter {
            name: "scale",
            value: 0.0,
            expected: "must be >= 1",
        });
    }
    check_pair(sr, hr)?;
    let sr = sr.map(quantize);
    let hr = hr.map(quantize);
    Ok(Metrics {
        psnr: psnr(&sr, &hr, scale, true, variant)?,
        ssim: ssim(&sr, &hr, scale, true, variant)?,
        variant,
    })
}

// ---------------------------------------------------------------------------------------------
// Internals.

/// SSIM window size.
const WIN: usize = 11;

/// BasicSR `rgb2ycbcr` Y coefficients for R, G, B (applied in BGR order).
const BASICSR_Y: [f64; 3] = [65.481, 128.553, 24.966];
/// KDSR/DASR Y coefficients for R, G, B.
const KDSR_Y: [f64; 3] = [65.738, 129.057, 25.064];

fn check_image(what: &'static str, img: &Planar) -> Result<()> {
    let c = img.channels();
    if c != 1 && c != 3 {
        return Err(Error::InvalidParameter {
            name: "channels",
            value: c as f64,
            expected: "metrics take 1 (gray) or 3 (RGB) channels",
        });
    }
    img.check_finite(what)
}

fn check_pair(sr: &Planar, hr: &Planar) -> Result<()> {
    if sr.shape() != hr.shape() {
        return Err(Error::ShapeMismatch {
            what: "metric (sr vs hr)",
            a: sr.shape().to_vec(),
            b: hr.shape().to_vec(),
        });
    }
    check_image("metric sr", sr)?;
    check_image("metric hr", hr)
}

/// The image must keep at least `min` px in each dimension after cutting `border` from each side.
fn check_border(what: &'static str, img: &Planar, border: usize, min: usize) -> Result<()> {
    let need = border.saturating_mul(2).saturating_add(min);
    if img.height() < need || img.width() < need {
        return Err(Error::TooSmall {
            what,
            height: img.height(),
            width: img.width(),
            min_height: need,
            min_width: need,
        });
    }
    Ok(())
}

/// R, G, B planes; a gray image gives its one plane three times.
fn rgb_planes(img: &Planar) -> (&[f32], &[f32], &[f32]) {
    if img.channels() == 1 {
        let p = img.plane(0);
        (p, p, p)
    } else {
        (img.plane(0), img.plane(1), img.plane(2))
    }
}

/// `np.dot(bgr, [24.966, 128.553, 65.481])` on float32 values, in float64, in BGR order.
fn bgr_dot_basicsr(r: f32, g: f32, b: f32) -> f64 {
    f64::from(b) * BASICSR_Y[2] + f64::from(g) * BASICSR_Y[1] + f64::from(r) * BASICSR_Y[0]
}

/// Cropped copy of one plane as f64 after `f`.
fn crop_plane(img: &Planar, border: usize, mut f: impl FnMut(usize) -> f64) -> Vec<f64> {
    let (h, w) = (img.height(), img.width());
    let mut out = Vec::with_capacity((h - 2 * border) * (w - 2 * border));
    for y in border..h - border {
        for x in border..w - border {
            out.push(f(y * w + x));
        }
    }
    out
}

/// 0..255 value of a [0, 1] pixel: `f32(v · 255)`.
fn to255(v: f32) -> f32 {
    v * 255.0
}

/// The float64 planes BasicSR's metrics see: cropped, 0..255, Y (`to_y_channel`) or all channels.
fn basicsr_planes(img: &Planar, border: usize, y_channel: bool) -> Vec<Vec<f64>> {
    if y_channel {
        let (r, g, b) = rgb_planes(img);
        // to_y_channel: img.astype(f32) / 255. → bgr2ycbcr (f64 dot, /255, cast f32) → · 255. (f32)
        let y = crop_plane(img, border, |i| {
            let (r, g, b) = (
                to255(r[i]) / 255.0,
                to255(g[i]) / 255.0,
                to255(b[i]) / 255.0,
            );
            let y01 = ((16.0 + bgr_dot_basicsr(r, g, b)) / 255.0) as f32;
            f64::from(y01 * 255.0)
        });
        vec![y]
    } else {
        (0..img.channels())
            .map(|c| {
                let p = img.plane(c);
                crop_plane(img, border, |i| f64::from(to255(p[i])))
            })
            .collect()
    }
}

/// The float64 planes the official `calc_ssim` sees for one argument (`first` = the rounded one).
fn kdsr_ssim_planes(img: &Planar, border: usize, y_channel: bool, first: bool) -> Vec<Vec<f64>> {
    let v255 = |v: f32| -> f64 {
        let x = to255(v);
        f64::from(if first {
            x.clamp(0.0, 255.0).round_ties_even()
        } else {
            x
        })
    };
    if y_channel {
        let (r, g, b) = rgb_planes(img);
        let y = crop_plane(img, border, |i| {
            (v255(r[i]) * KDSR_Y[0] + v255(g[i]) * KDSR_Y[1] + v255(b[i]) * KDSR_Y[2]) / 255.0
                + 16.0
        });
        vec![y]
    } else {
        (0..img.channels())
            .map(|c| {
                let p = img.plane(c);
                crop_plane(img, border, |i| v255(p[i]))
            })
            .collect()
    }
}

/// Official `calc_psnr(sr, hr, scale, rgb_range=1, benchmark=y_channel)` with `shave = border`.
fn kdsr_psnr(sr: &Planar, hr: &Planar, border: usize, y_channel: bool) -> Result<f64> {
    let (h, w) = (sr.height(), sr.width());
    let conv = [KDSR_Y[0] as f32, KDSR_Y[1] as f32, KDSR_Y[2] as f32];
    let mut sum = 0.0f64;
    let mut n = 0usize;
    if y_channel {
        let (sr_r, sr_g, sr_b) = rgb_planes(sr);
        let (hr_r, hr_g, hr_b) = rgb_planes(hr);
        for y in border..h - border {
            for x in border..w - border {
                let i = y * w + x;
                // torch float32: diff · convert / 256, summed over the channel axis.
                let dr = (sr_r[i] - hr_r[i]) * conv[0] / 256.0;
                let dg = (sr_g[i] - hr_g[i]) * conv[1] / 256.0;
                let db = (sr_b[i] - hr_b[i]) * conv[2] / 256.0;
                let d = f64::from(dr + dg + db);
                sum += d * d;
                n += 1;
            }
        }
    } else {
        for c in 0..sr.channels() {
            let (a, b) = (sr.plane(c), hr.plane(c));
            for y in border..h - border {
                for x in border..w - border {
                    let i = y * w + x;
                    let d = f64::from(a[i] - b[i]);
                    sum += d * d;
                    n += 1;
                }
            }
        }
    }
    // torch returns the mean as a float32 scalar; Python then takes log10 in double.
    let mse = f64::from((sum / n as f64) as f32);
    Ok(if mse == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * mse.log10()
    })
}

/// `cv2.getGaussianKernel(11, 1.5)`: `exp(−(i−5)²/4.5)`, normalised to sum 1, float64.
fn gaussian_window() -> [f64; WIN] {
    let mut k = [0.0; WIN];
    let half = (WIN as f64 - 1.0) * 0.5;
    let scale = -0.5 / (1.5 * 1.5);
    let mut sum = 0.0;
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - half;
        *v = (scale * x * x).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in &mut k {
        *v *= inv;
    }
    k
}

/// Valid-region 2-D correlation of an `h × w` plane with the separable window `win ⊗ win`.
fn filter_valid(src: &[f64], h: usize, w: usize, win: &[f64; WIN]) -> Vec<f64> {
    let ow = w + 1 - WIN;
    let oh = h + 1 - WIN;
    let mut tmp = vec![0.0; h * ow];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..ow {
            tmp[y * ow + x] = win.iter().zip(&row[x..x + WIN]).map(|(k, v)| k * v).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for (j, k) in win.iter().enumerate() {
            let row = &tmp[(y + j) * ow..(y + j + 1) * ow];
            for (o, v) in out[y * ow..(y + 1) * ow].iter_mut().zip(row) {
                *o += k * v;
            }
        }
    }
    out
}

/// BasicSR `_ssim` / official `ssim` of two `h × w` float64 planes on the 0..255 scale.
fn ssim_plane(a: &[f64], b: &[f64], h: usize, w: usize, win: &[f64; WIN]) -> f64 {
    let c1 = (0.01f64 * 255.0).powi(2);
    let c2 = (0.03f64 * 255.0).powi(2);
    let aa: Vec<f64> = a.iter().map(|v| v * v).collect();
    let bb: Vec<f64> = b.iter().map(|v| v * v).collect();
    let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
    let mu1 = filter_valid(a, h, w, win);
    let mu2 = filter_valid(b, h, w, win);
    let e11 = filter_valid(&aa, h, w, win);
    let e22 = filter_valid(&bb, h, w, win);
    let e12 = filter_valid(&ab, h, w, win);
    let mut sum = 0.0;
    for i in 0..mu1.len() {
        let (m1, m2) = (mu1[i], mu2[i]);
        let (m1s, m2s, m12) = (m1 * m1, m2 * m2, m1 * m2);
        let s1 = e11[i] - m1s;
        let s2 = e22[i] - m2s;
        let s12 = e12[i] - m12;
        sum += ((2.0 * m12 + c1) * (2.0 * s12 + c2)) / ((m1s + m2s + c1) * (s1 + s2 + c2));
    }
    sum / mu1.len() as f64
}
