//! Tensor ops on the training device that both degradations ([`crate::classic::degrade`],
//! [`crate::realworld::degrade`]) are built from: reflect-pad blur with per-sample kernels, the
//! official bicubic ↓s as dense resampling matrices, Gaussian and shot noise, 8-bit quantisation.

use anyhow::{Result, bail};
use kdsr_core::pipeline::camera::photons;
use kdsr_core::pipeline::kernels::Kernel;
use kdsr_core::pipeline::resize::{BicubicVariant, resize_weights};
use tch::{Device, Kind, Tensor};

/// Reflect-pads by the kernel radius and cross-correlates each channel with its sample's kernel.
///
/// # Shapes
/// `x` `[B,C,H,W]`; `kernels` 1 or B square kernels of one size → `[B,C,H,W]`.
pub fn blur(x: &Tensor, kernels: &[Kernel], device: Device) -> Result<Tensor> {
    let s = x.size();
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    let Some(first) = kernels.first() else {
        bail!("blur: no kernel given");
    };
    let k = first.size() as i64;
    if kernels.iter().any(|kk| kk.size() as i64 != k)
        || !(kernels.len() == 1 || kernels.len() as i64 == b)
    {
        bail!(
            "blur: need one kernel or one per sample, all of one size; got {} for batch {b}",
            kernels.len()
        );
    }
    let r = k / 2;
    if r >= h || r >= w {
        bail!("blur: image {h}x{w} is smaller than the reflect padding {r}+1");
    }
    let flat: Vec<f32> = kernels
        .iter()
        .flat_map(|kk| kk.weights().iter().copied())
        .collect();
    let kt = Tensor::from_slice(&flat)
        .reshape([kernels.len() as i64, 1, k, k])
        .to_device(device);
    let padded = x.reflection_pad2d([r, r, r, r]);
    let out = if kernels.len() == 1 {
        let weight = kt.expand([c, 1, k, k], false);
        padded.conv2d(&weight, None::<Tensor>, 1, 0, 1, c)
    } else {
        let weight = kt.repeat_interleave_self_int(c, 0, None);
        padded
            .reshape([1, b * c, h + 2 * r, w + 2 * r])
            .conv2d(&weight, None::<Tensor>, 1, 0, 1, b * c)
            .reshape([b, c, h, w])
    };
    Ok(out)
}

/// The dense `[out_len, in_len]` resampling matrix of the official bicubic for one axis.
pub fn resize_matrix(in_len: usize, scale: f64, device: Device) -> Result<Tensor> {
    let (weights, indices, taps) = resize_weights(in_len, scale, BicubicVariant::Official)?;
    let out_len = weights.len() / taps;
    let mut m = vec![0f32; out_len * in_len];
    for i in 0..out_len {
        for t in 0..taps {
            m[i * in_len + indices[i * taps + t]] += weights[i * taps + t];
        }
    }
    Ok(Tensor::from_slice(&m)
        .reshape([out_len as i64, in_len as i64])
        .to_device(device))
}

/// The official bicubic ↓`scale` (antialiased, replicated borders, floor size) of `[B,C,H,W]`.
pub fn bicubic_down(x: &Tensor, scale: u32) -> Result<Tensor> {
    let s = x.size();
    let inv = 1.0 / f64::from(scale);
    let mh = resize_matrix(s[2] as usize, inv, x.device())?;
    let mw = resize_matrix(s[3] as usize, inv, x.device())?;
    // H first, then W, as the reference does.
    Ok(mh.matmul(x).matmul(&mw.tr()))
}

/// `x + draws · level/255`, the level per sample (`levels.len() == B`) or shared (1 entry).
pub fn add_noise(x: &Tensor, draws: &Tensor, levels: &[f64]) -> Tensor {
    let lv: Vec<f32> = levels.iter().map(|l| (l / 255.0) as f32).collect();
    let lv = Tensor::from_slice(&lv)
        .to_device(x.device())
        .reshape([-1, 1, 1, 1]);
    x + draws * lv
}

/// A per-batch (1 entry) or per-sample (`B` entries) list as a `[B or 1,1,1,1]` float tensor.
pub fn per_sample(v: &[f64], device: Device) -> Tensor {
    let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
    Tensor::from_slice(&v)
        .to_device(device)
        .reshape([-1, 1, 1, 1])
}

/// Shot noise of `levels` (σ at mid-grey, 0..255 units; one per sample or shared) added to `x`:
/// `Poisson(x·n)/n` with `n = 0.5·(255/level)²` (`kdsr_core::pipeline::camera::add_shot_noise`);
/// a level of 0 leaves its sample unchanged.
pub fn add_shot_noise(x: &Tensor, levels: &[f64]) -> Tensor {
    let n: Vec<f64> = levels
        .iter()
        .map(|l| if *l > 0.0 { photons(*l) } else { 0.0 })
        .collect();
    let n = per_sample(&n, x.device());
    let on = n.gt(0.0).to_kind(Kind::Float);
    let safe = &n + (1.0 - &on);
    let rate = x.clamp_min(0.0) * &safe;
    let noisy = rate.poisson() / &safe;
    x + (noisy - x) * on
}

/// 8-bit quantisation: `round_half_even(clamp(x·255, 0, 255)) / 255`.
pub fn quantize(x: &Tensor) -> Tensor {
    (x * 255.0).clamp(0.0, 255.0).round() / 255.0
}

/// Converts a `[B,3,H,W]` float tensor on any device to the kind and device given.
pub fn to(x: &Tensor, device: Device) -> Tensor {
    x.to_kind(Kind::Float).to_device(device)
}
