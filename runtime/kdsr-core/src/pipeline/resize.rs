//! MATLAB-style bicubic resizing with antialiasing (cubic kernel a = −0.5), in the two flavours
//! the references use:
//!
//! - [`BicubicVariant::Matlab`]: BasicSR `matlab_functions.imresize` (mirrored borders, output
//!   size ⌈in · scale⌉);
//! - [`BicubicVariant::Official`]: the `bicubic` module of DASR `utils/util.py` and KDSR
//!   `utils/util2.py` (replicated borders, output size ⌊in · scale⌋), used by the classic LR
//!   synthesis for the ×1/s downsampling and for the `hr_blured` ×s upsampling.
//!
//! Both compute the weights and the image in float32 with the same operation order as the
//! reference (torch float32 arithmetic), so that their results agree to a few ulps. The image is
//! resized along H first, then along W. Values are neither clamped nor rounded.

use crate::Planar;
use crate::error::{Error, Result, check_scale};

/// Which port of MATLAB's antialiased bicubic `imresize` to follow. Both use the same weights
/// (cubic a = −0.5; for scale < 1 the kernel is stretched to width 4/scale and scaled by `scale`;
/// each row normalised to sum 1); they differ in borders, output size and dropped tap columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BicubicVariant {
    /// BasicSR `imresize`: half-sample symmetric (mirrored) borders (index −1 → 0, n → n−1),
    /// output length `ceil(in_len · scale)`, and BasicSR's end-column trimming (when the first tap
    /// column holds a zero weight both end columns go; otherwise, when the last one does, the
    /// last two go).
    Matlab,
    /// DASR/KDSR torch port (`utils/util.py` / `utils/util2.py` `bicubic`): replicated borders
    /// (indices clamped to the image), output length `floor(in_len · scale)`, and every tap column
    /// whose weight is exactly zero in the *first* output row is dropped.
    ///
    /// The references use it only with scales `1/s` and `s` (s = 2, 3, 4), where every row has
    /// the same zero columns. At other downscaling factors the first-row rule can drop taps that
    /// are non-zero in later rows, so those rows no longer sum to 1; this port reproduces that.
    /// Prefer [`BicubicVariant::Matlab`] for arbitrary scales.
    Official,
}

/// Upper bound on `out_len · taps` for one axis, against absurd scales.
const MAX_TABLE: usize = 1 << 28;

/// The cubic convolution kernel with a = −0.5, evaluated in float32 in the reference's
/// operation order (`(1.5·|x|³ − 2.5·|x|²) + 1` and `((−0.5·|x|³ + 2.5·|x|²) − 4·|x|) + 2`).
fn cubic(x: f32) -> f32 {
    let a = x.abs();
    let a2 = a * a;
    let a3 = a2 * a;
    if a <= 1.0 {
        1.5 * a3 - 2.5 * a2 + 1.0
    } else if a <= 2.0 {
        -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    } else {
        0.0
    }
}

/// Output length of one axis: `ceil(in_len · scale)` ([`BicubicVariant::Matlab`]) or
/// `floor(in_len · scale)` ([`BicubicVariant::Official`]), computed in f64 like the references.
///
/// Fails with [`Error::InvalidParameter`] when `scale` is not finite and > 0. The result may be 0
/// (which [`resize_weights`] and [`imresize`] reject).
pub fn output_len(in_len: usize, scale: f64, variant: BicubicVariant) -> Result<usize> {
    crate::error::check_positive("scale", scale)?;
    let exact = in_len as f64 * scale;
    let len = match variant {
        BicubicVariant::Matlab => exact.ceil(),
        BicubicVariant::Official => exact.floor(),
    };
    if len > MAX_TABLE as f64 {
        return Err(Error::InvalidParameter {
            name: "scale",
            value: scale,
            expected: "must give an output length below 2^28",
        });
    }
    Ok(len as usize)
}

/// Maps a 0-based index outside `0..n` into it with the half-sample symmetric mirror (Matlab's
/// `symmetric`), repeating the reflection for indices further out than one image length.
fn mirror(j: i64, n: usize) -> usize {
    let n = n as i64;
    let m = j.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// The 1-D resampling table for an axis of length `in_len` resized by `scale`.
///
/// Returns `(weights, indices, taps)`: `weights` and `indices` are row-major
/// `[out_len x taps]` (`out_len = weights.len() / taps`, see [`output_len`]); output sample `i`
/// is `Σ_t weights[i·taps + t] · input[indices[i·taps + t]]`. The indices are 0-based with the
/// variant's border rule already applied, so they all lie in `0..in_len`. Weights are float32,
/// computed as the reference computes them (to within 1e-7).
///
/// Errors: [`Error::InvalidParameter`] for a non-finite or non-positive `scale`, an `in_len` of 0
/// or an absurdly large table; [`Error::TooSmall`] when the output length is 0.
pub fn resize_weights(
    in_len: usize,
    scale: f64,
    variant: BicubicVariant,
) -> Result<(Vec<f32>, Vec<usize>, usize)> {
    if in_len == 0 {
        return Err(Error::InvalidParameter {
            name: "resize input length",
            value: 0.0,
            expected: "must be at least 1",
        });
    }
    let out_len = output_len(in_len, scale, variant)?;
    if out_len == 0 {
        let min = (1.0 / scale).ceil();
        let min = if min.is_finite() && min < usize::MAX as f64 {
            min as usize
        } else {
            usize::MAX
        };
        return Err(Error::TooSmall {
            what: "bicubic resize (output length would be 0)",
            height: in_len,
            width: in_len,
            min_height: min,
            min_width: min,
        });
    }
    let antialias = scale < 1.0;
    let kernel_width = if antialias { 4.0 / scale } else { 4.0 };
    let p_f = kernel_width.ceil() + 2.0;
    if p_f * out_len as f64 > MAX_TABLE as f64 {
        return Err(Error::InvalidParameter {
            name: "scale",
            value: scale,
            expected: "must give a resampling table below 2^28 entries",
        });
    }
    let p = p_f as usize;

    // The references compute in float32 with the Python scalars cast to float32.
    let scale32 = scale as f32;
    let offset32 = (0.5 * (1.0 - 1.0 / scale)) as f32;
    let half32 = (kernel_width / 2.0) as f32;

    let mut full = vec![0f32; out_len * p];
    let mut left = vec![0i64; out_len];
    for (i, row) in full.chunks_exact_mut(p).enumerate() {
        let x = (i + 1) as f32;
        let u = x / scale32 + offset32;
        let l = (u - half32).floor();
        left[i] = l as i64;
        for (t, w) in row.iter_mut().enumerate() {
            let d = u - (l + t as f32);
            *w = if antialias {
                scale32 * cubic(d * scale32)
            } else {
                cubic(d)
            };
        }
        let sum: f32 = row.iter().sum();
        for w in row.iter_mut() {
            *w /= sum;
        }
    }

    let kept: Vec<usize> = match variant {
        BicubicVariant::Matlab => {
            let has_zero = |t: usize| full.chunks_exact(p).any(|row| row[t] == 0.0);
            // BasicSR: `narrow(1, 1, P-2)` when the first column holds a zero, then
            // `narrow(1, 0, P-2)` when the (original) last one does.
            if has_zero(0) {
                (1..p - 1).collect()
            } else if has_zero(p - 1) {
                (0..p - 2).collect()
            } else {
                (0..p).collect()
            }
        }
        BicubicVariant::Official => (0..p).filter(|&t| full[t] != 0.0).collect(),
    };
    let taps = kept.len();
    if taps == 0 {
        return Err(Error::InvalidParameter {
            name: "scale",
            value: scale,
            expected: "must leave at least one non-zero bicubic tap",
        });
    }

    let mut weights = Vec::with_capacity(out_len * taps);
    let mut indices = Vec::with_capacity(out_len * taps);
    for (row, &l) in full.chunks_exact(p).zip(&left) {
        for &t in &kept {
            weights.push(row[t]);
            // `l` is a 1-based index; `l + t - 1` is 0-based.
            let j = l + t as i64 - 1;
            indices.push(match variant {
                BicubicVariant::Matlab => mirror(j, in_len),
                BicubicVariant::Official => j.clamp(0, in_len as i64 - 1) as usize,
            });
        }
    }
    Ok((weights, indices, taps))
}

/// Resizes every channel of `img` (CHW, any value range) by `scale` with MATLAB-style bicubic
/// interpolation (antialiased when `scale < 1`), along H first and then along W, in float32.
///
/// Shapes: `[C, H, W]` → `[C, output_len(H), output_len(W)]` (see [`output_len`]: ceil for
/// [`BicubicVariant::Matlab`], floor for [`BicubicVariant::Official`]). The output is neither
/// clamped nor rounded.
///
/// Errors: [`Error::InvalidParameter`] for a non-finite or non-positive `scale`;
/// [`Error::TooSmall`] when an output dimension would be 0.
pub fn imresize(img: &Planar, scale: f64, variant: BicubicVariant) -> Result<Planar> {
    let (c, h, w) = (img.channels(), img.height(), img.width());
    let (wh, ih, th) = resize_weights(h, scale, variant)?;
    let (ww, iw, tw) = resize_weights(w, scale, variant)?;
    let out_h = wh.len() / th;
    let out_w = ww.len() / tw;

    // Along H: each output row is a weighted sum of whole input rows.
    let mut tmp = vec![0f32; c * out_h * w];
    for ch in 0..c {
        let plane = img.plane(ch);
        let dst_plane = &mut tmp[ch * out_h * w..(ch + 1) * out_h * w];
        for (i, dst) in dst_plane.chunks_exact_mut(w).enumerate() {
            for (&wt, &src_y) in wh[i * th..(i + 1) * th]
                .iter()
                .zip(&ih[i * th..(i + 1) * th])
            {
                let src = &plane[src_y * w..(src_y + 1) * w];
                for (o, s) in dst.iter_mut().zip(src) {
                    *o += wt * s;
                }
            }
        }
    }

    // Along W.
    let mut out = vec![0f32; c * out_h * out_w];
    for (src, dst) in tmp.chunks_exact(w).zip(out.chunks_exact_mut(out_w)) {
        for (j, o) in dst.iter_mut().enumerate() {
            let mut acc = 0f32;
            for (&wt, &x) in ww[j * tw..(j + 1) * tw]
                .iter()
                .zip(&iw[j * tw..(j + 1) * tw])
            {
                acc += wt * src[x];
            }
            *o = acc;
        }
    }
    Planar::new(c, out_h, out_w, out)
}

/// The official (DASR/KDSR) bicubic ×1/`scale` downsampling of the classic LR synthesis:
/// [`imresize`] with scale `1/scale` (the f64 value Python's `1/s` gives) and
/// [`BicubicVariant::Official`].
///
/// Shapes: `[C, H, W]` → `[C, ⌊H/s⌋, ⌊W/s⌋]` (up to f64 rounding of `H · (1/s)`, as in the
/// reference). Errors: [`Error::UnsupportedScale`] unless `scale` ∈ {2, 3, 4};
/// [`Error::TooSmall`] when the image is smaller than `scale`.
pub fn bicubic_down(hr: &Planar, scale: u32) -> Result<Planar> {
    check_scale(scale)?;
    imresize(hr, 1.0 / f64::from(scale), BicubicVariant::Official)
}

/// The official (DASR/KDSR) bicubic ×`scale` upsampling: [`imresize`] with
/// [`BicubicVariant::Official`] (replicated borders, no antialiasing since the scale is > 1).
/// KDSR's `SRMDPreprocessing` applies it to the noisy, not yet quantised LR to produce its
/// `hr_blured` output (which it then quantises).
///
/// Shapes: `[C, h, w]` → `[C, h·s, w·s]`. Errors: [`Error::UnsupportedScale`] unless `scale` ∈
/// {2, 3, 4}.
pub fn bicubic_up(lr: &Planar, scale: u32) -> Result<Planar> {
    check_scale(scale)?;
    imresize(lr, f64::from(scale), BicubicVariant::Official)
}
