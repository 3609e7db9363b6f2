//! Blurring with reflect padding, as DASR/KDSR `BatchBlur` and Real-ESRGAN `filter2D` do it:
//! pad by the kernel radius with `ReflectionPad2d` (mirror *without* repeating the edge pixel:
//! index −1 → 1, n → n−2), then 2-D correlation (the kernel is not flipped) over the valid region,
//! float32, the same kernel on every channel. The output has the input's size.
//!
//! [`blur_reflect`] is the exact (direct) filter; [`blur_separable`] is the fast path for rank-1
//! kernels (isotropic Gaussians), whose factors [`separable_factors`] extracts.

use crate::Planar;
use crate::error::{Error, Result};
use crate::pipeline::kernels::Kernel;

/// Maps `j` (may be out of range by less than `n`) into `0..n` with the reflection that does not
/// repeat the edge (`ReflectionPad2d`): −1 → 1, n → n−2. Needs `n ≥ 2` unless `j` is in range.
fn reflect(j: isize, n: usize) -> usize {
    let n = n as isize;
    let r = if j < 0 {
        -j
    } else if j >= n {
        2 * (n - 1) - j
    } else {
        j
    };
    r as usize
}

/// Fails with [`Error::TooSmall`] unless the reflect padding fits (`pad_h < H`, `pad_w < W`).
fn check_pad(what: &'static str, img: &Planar, pad_h: usize, pad_w: usize) -> Result<()> {
    if pad_h >= img.height() || pad_w >= img.width() {
        return Err(Error::TooSmall {
            what,
            height: img.height(),
            width: img.width(),
            min_height: pad_h + 1,
            min_width: pad_w + 1,
        });
    }
    Ok(())
}

/// Reflect padding without edge repeat (`torch.nn.ReflectionPad2d(pad)`, numpy `reflect`,
/// OpenCV `BORDER_REFLECT_101`) of `pad` pixels on every side of every channel.
///
/// Shapes: `[C, H, W]` → `[C, H + 2·pad, W + 2·pad]`. Errors: [`Error::TooSmall`] when
/// `pad ≥ H` or `pad ≥ W` (the reflection would run past the opposite edge, which torch rejects
/// too).
pub fn reflect_pad(img: &Planar, pad: usize) -> Result<Planar> {
    check_pad("reflect padding", img, pad, pad)?;
    let (c, h, w) = (img.channels(), img.height(), img.width());
    let (ph, pw) = (h + 2 * pad, w + 2 * pad);
    let mut data = Vec::with_capacity(c * ph * pw);
    for ch in 0..c {
        let plane = img.plane(ch);
        for y in 0..ph {
            let sy = reflect(y as isize - pad as isize, h);
            let row = &plane[sy * w..(sy + 1) * w];
            data.extend((0..pad).map(|x| row[pad - x]));
            data.extend_from_slice(row);
            data.extend((0..pad).map(|x| row[w - 2 - x]));
        }
    }
    Planar::new(c, ph, pw, data)
}

/// 2-D correlation of every channel of `padded` with `kernel` over the valid region (no padding;
/// `F.conv2d(x, k, padding=0)` with one group per channel), accumulating in float32 over kernel
/// rows, then columns.
///
/// Shapes: `[C, H, W]` with a `k x k` kernel → `[C, H − k + 1, W − k + 1]`. Errors:
/// [`Error::TooSmall`] when the image is smaller than the kernel.
pub fn correlate_valid(padded: &Planar, kernel: &Kernel) -> Result<Planar> {
    let k = kernel.size();
    let (c, h, w) = (padded.channels(), padded.height(), padded.width());
    if h < k || w < k {
        return Err(Error::TooSmall {
            what: "valid correlation with the blur kernel",
            height: h,
            width: w,
            min_height: k,
            min_width: k,
        });
    }
    let (oh, ow) = (h - k + 1, w - k + 1);
    let kw = kernel.weights();
    let mut out = vec![0f32; c * oh * ow];
    for ch in 0..c {
        let plane = padded.plane(ch);
        let dst_plane = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
        for (y, dst) in dst_plane.chunks_exact_mut(ow).enumerate() {
            for (ky, krow) in kw.chunks_exact(k).enumerate() {
                let src_row = &plane[(y + ky) * w..(y + ky + 1) * w];
                for (kx, &wt) in krow.iter().enumerate() {
                    let src = &src_row[kx..kx + ow];
                    for (o, s) in dst.iter_mut().zip(src) {
                        *o += wt * s;
                    }
                }
            }
        }
    }
    Planar::new(c, oh, ow, out)
}

/// Same-size blur: [`reflect_pad`] by the kernel radius, then [`correlate_valid`]. This is DASR /
/// KDSR `BatchBlur` (21×21 kernels, pad 10) and Real-ESRGAN `filter2D`.
///
/// Shapes: `[C, H, W]` → `[C, H, W]`. Works for any value range (linear). Errors:
/// [`Error::TooSmall`] when `H` or `W` ≤ the kernel radius.
pub fn blur_reflect(img: &Planar, kernel: &Kernel) -> Result<Planar> {
    check_pad("reflect-padded blur", img, kernel.radius(), kernel.radius())?;
    let padded = reflect_pad(img, kernel.radius())?;
    correlate_valid(&padded, kernel)
}

/// Real-ESRGAN / BasicSR `filter2D`: reflect padding of `k // 2`, then correlation. The same
/// operation as [`blur_reflect`].
///
/// Shapes: `[C, H, W]` → `[C, H, W]`. Errors as [`blur_reflect`].
pub fn filter2d(img: &Planar, kernel: &Kernel) -> Result<Planar> {
    blur_reflect(img, kernel)
}

/// Fails with [`Error::InvalidParameter`] unless `taps` is a non-empty, odd-length, finite 1-D
/// kernel.
fn check_taps(name: &'static str, taps: &[f32]) -> Result<()> {
    if taps.len() % 2 == 0 {
        return Err(Error::InvalidParameter {
            name,
            value: taps.len() as f64,
            expected: "length must be odd",
        });
    }
    crate::error::check_finite(name, taps)
}

/// Separable same-size blur with reflect padding: the fast path for a rank-1 kernel
/// `k[y][x] = ky[y] · kx[x]` (e.g. an isotropic Gaussian, see [`separable_factors`]). Pads by
/// `ky.len()/2` rows and `kx.len()/2` columns with the [`reflect_pad`] rule, correlates the
/// columns with `ky` and then the rows with `kx`, in float32.
///
/// Agrees with [`blur_reflect`] on the outer-product kernel to float32 rounding (measured 1.1e-6
/// on [0, 1] data with the σ = 2.6 Gaussian), not bit for bit: use [`blur_reflect`] where the reference vectors must be hit.
///
/// Shapes: `[C, H, W]` → `[C, H, W]`; `kx`, `ky`: odd lengths. Errors:
/// [`Error::InvalidParameter`] for an even-length (or empty) factor, [`Error::NonFinite`] for a
/// non-finite tap, [`Error::TooSmall`] when a radius is ≥ the matching image dimension.
pub fn blur_separable(img: &Planar, kx: &[f32], ky: &[f32]) -> Result<Planar> {
    check_taps("horizontal kernel length", kx)?;
    check_taps("vertical kernel length", ky)?;
    let (rx, ry) = (kx.len() / 2, ky.len() / 2);
    check_pad("separable reflect-padded blur", img, ry, rx)?;
    let (c, h, w) = (img.channels(), img.height(), img.width());
    let pw = w + 2 * rx;
    let mut out = vec![0f32; c * h * w];
    // One vertically filtered row, already padded horizontally.
    let mut row = vec![0f32; pw];
    let mut vert = vec![0f32; w];
    for ch in 0..c {
        let plane = img.plane(ch);
        let dst_plane = &mut out[ch * h * w..(ch + 1) * h * w];
        for (y, dst) in dst_plane.chunks_exact_mut(w).enumerate() {
            vert.fill(0.0);
            for (t, &wt) in ky.iter().enumerate() {
                let sy = reflect(y as isize + t as isize - ry as isize, h);
                let src = &plane[sy * w..(sy + 1) * w];
                for (o, s) in vert.iter_mut().zip(src) {
                    *o += wt * s;
                }
            }
            for (x, v) in row.iter_mut().enumerate() {
                *v = vert[reflect(x as isize - rx as isize, w)];
            }
            for (x, o) in dst.iter_mut().enumerate() {
                let mut acc = 0f32;
                for (&wt, &s) in kx.iter().zip(&row[x..x + kx.len()]) {
                    acc += wt * s;
                }
                *o = acc;
            }
        }
    }
    Planar::new(c, h, w, out)
}

/// Splits `kernel` into `(kx, ky)` with `kernel[y][x] ≈ ky[y] · kx[x]` when it is rank 1 to
/// within `tol` (largest absolute deviation of any weight), else `None`.
///
/// `ky` holds the row sums and `kx` the column sums divided by the total, so that
/// `Σkx = 1` and `Σky` is the kernel's sum (1 for normalised kernels). Computed in f64, returned
/// as f32 (length `kernel.size()` each). A kernel summing to 0 gives `None`.
pub fn separable_factors(kernel: &Kernel, tol: f32) -> Option<(Vec<f32>, Vec<f32>)> {
    let n = kernel.size();
    let w = kernel.weights();
    let total: f64 = w.iter().map(|v| f64::from(*v)).sum();
    if total == 0.0 || !total.is_finite() {
        return None;
    }
    let ky: Vec<f64> = w
        .chunks_exact(n)
        .map(|r| r.iter().map(|v| f64::from(*v)).sum())
        .collect();
    let kx: Vec<f64> = (0..n)
        .map(|x| (0..n).map(|y| f64::from(w[y * n + x])).sum::<f64>() / total)
        .collect();
    for y in 0..n {
        for x in 0..n {
            if (ky[y] * kx[x] - f64::from(w[y * n + x])).abs() > f64::from(tol) {
                return None;
            }
        }
    }
    Some((
        kx.iter().map(|v| *v as f32).collect(),
        ky.iter().map(|v| *v as f32).collect(),
    ))
}
