//! A naive plain-Rust forward of the student network: direct convolution loops (rayon over
//! output channels), per-sample dynamic kernels from [`crate::fold`]. It is the yardstick every
//! exported graph is compared with, and is itself tested against the official vectors.
//!
//! One image at a time ([`Planar`], `[3, H, W]`): batching in the official code shares nothing
//! between samples, so a batch is a loop over samples.

use kdsr_core::Planar;
use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::layout::{ide_tail_indices, upsampler_factors, upsampler_stages};
use rayon::prelude::*;

use crate::error::{ConvertError, Result};
use crate::fold::{self, lrelu};
use crate::network::{Network, tensor};

/// Outputs of the IDE for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct IdeOutput {
    /// `D` (length C).
    pub d: Vec<f32>,
    /// `D'` (length 4C).
    pub d_prime: Vec<f32>,
    /// The trunk output after global average pooling (length 4C), the input of `mlp`.
    pub pooled: Vec<f32>,
}

/// Outputs of the whole student for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// `sr` `[3, s·H, s·W]`, unclamped.
    pub sr: Planar,
    /// The IDE outputs.
    pub ide: IdeOutput,
}

/// 2-D cross-correlation, stride 1, zero padding `pad` on every side, `groups` groups.
///
/// # Shapes
/// `x` `[Cin, H, W]`, `weight` `[Cout, Cin/groups, k, k]` row-major, `bias` `[Cout]` →
/// `[Cout, H + 2·pad − k + 1, W + 2·pad − k + 1]`.
pub fn conv2d(
    x: &Planar,
    weight: &[f32],
    wshape: [usize; 4],
    bias: Option<&[f32]>,
    pad: usize,
    groups: usize,
) -> Result<Planar> {
    let [cout, cin_g, kh, kw] = wshape;
    let (cin, h, w) = (x.channels(), x.height(), x.width());
    let bad = |m: String| ConvertError::Graph(format!("conv2d: {m}"));
    if groups == 0 || cin != cin_g * groups || cout % groups != 0 {
        return Err(bad(format!(
            "input has {cin} channels, weight {wshape:?} with {groups} groups"
        )));
    }
    if weight.len() != cout * cin_g * kh * kw || bias.is_some_and(|b| b.len() != cout) {
        return Err(bad(format!(
            "weight or bias length does not match {wshape:?}"
        )));
    }
    if h + 2 * pad < kh || w + 2 * pad < kw {
        return Err(bad(format!("image {w}x{h} smaller than the kernel")));
    }
    let (oh, ow) = (h + 2 * pad - kh + 1, w + 2 * pad - kw + 1);
    let cout_g = cout / groups;
    let mut out = vec![0f32; cout * oh * ow];
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(co, plane)| {
            plane.fill(bias.map_or(0.0, |b| b[co]));
            let g = co / cout_g;
            for cl in 0..cin_g {
                let src = x.plane(g * cin_g + cl);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = weight[((co * cin_g + cl) * kh + ky) * kw + kx];
                        // Output column ox reads input column ox + kx − pad.
                        let x0 = pad.saturating_sub(kx);
                        let x1 = (w + pad).saturating_sub(kx).min(ow);
                        if x0 >= x1 {
                            continue;
                        }
                        for oy in 0..oh {
                            let iy = oy + ky;
                            if iy < pad || iy - pad >= h {
                                continue;
                            }
                            let row = &src[(iy - pad) * w..(iy - pad + 1) * w];
                            let orow = &mut plane[oy * ow..(oy + 1) * ow];
                            for (o, i) in orow[x0..x1]
                                .iter_mut()
                                .zip(&row[x0 + kx - pad..x1 + kx - pad])
                            {
                                *o += wv * *i;
                            }
                        }
                    }
                }
            }
        });
    Ok(Planar::new(cout, oh, ow, out)?)
}

/// PixelShuffle(r): `[C·r², H, W]` → `[C, r·H, r·W]`, out(c, r·y+i, r·x+j) = in(c·r² + i·r + j, y, x).
pub fn pixel_shuffle(x: &Planar, r: usize) -> Result<Planar> {
    let (cin, h, w) = (x.channels(), x.height(), x.width());
    if r == 0 || cin % (r * r) != 0 {
        return Err(ConvertError::Graph(format!(
            "pixel_shuffle: {cin} channels not divisible by {r}²"
        )));
    }
    let c = cin / (r * r);
    let (oh, ow) = (h * r, w * r);
    let mut out = vec![0f32; c * oh * ow];
    for ch in 0..c {
        for i in 0..r {
            for j in 0..r {
                let src = x.plane(ch * r * r + i * r + j);
                for y in 0..h {
                    for xx in 0..w {
                        out[(ch * oh + y * r + i) * ow + xx * r + j] = src[y * w + xx];
                    }
                }
            }
        }
    }
    Ok(Planar::new(c, oh, ow, out)?)
}

fn lrelu_img(x: Planar) -> Planar {
    let mut x = x;
    x.data_mut().iter_mut().for_each(|v| *v = lrelu(*v));
    x
}

fn add_img(a: &Planar, b: &Planar) -> Result<Planar> {
    if a.shape() != b.shape() {
        return Err(ConvertError::Graph(format!(
            "add: shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let data = a.data().iter().zip(b.data()).map(|(x, y)| x + y).collect();
    let [c, h, w] = a.shape();
    Ok(Planar::new(c, h, w, data)?)
}

/// The official conv `key` ("same" padding) applied to `x`.
fn conv(w: &Weights, key: &str, x: &Planar) -> Result<Planar> {
    let wt = tensor(w, &format!("{key}.weight"))?;
    let b = tensor(w, &format!("{key}.bias"))?;
    let shape: [usize; 4] = wt
        .shape
        .as_slice()
        .try_into()
        .map_err(|_| ConvertError::Graph(format!("{key}.weight is not 4-D")))?;
    conv2d(x, &wt.data, shape, Some(&b.data), shape[2] / 2, 1)
}

/// The official linear layer `key` (`[out, in]` weight, bias) applied to `x`, f64 sums.
fn linear(w: &Weights, key: &str, x: &[f32]) -> Result<Vec<f32>> {
    let wt = tensor(w, &format!("{key}.weight"))?;
    let b = tensor(w, &format!("{key}.bias"))?;
    let inp = x.len();
    if wt.shape.len() != 2 || wt.shape[1] != inp || b.data.len() != wt.shape[0] {
        return Err(ConvertError::Graph(format!(
            "{key}: weight {:?} does not take {inp} inputs",
            wt.shape
        )));
    }
    Ok((0..wt.shape[0])
        .map(|o| {
            let s: f64 = wt.data[o * inp..(o + 1) * inp]
                .iter()
                .zip(x)
                .map(|(a, v)| f64::from(*a) * f64::from(*v))
                .sum();
            (s + f64::from(b.data[o])) as f32
        })
        .collect())
}

fn check_lr(lr: &Planar) -> Result<()> {
    if lr.channels() != 3 {
        return Err(ConvertError::Graph(format!(
            "the network takes 3-channel RGB, the input has {} channels",
            lr.channels()
        )));
    }
    Ok(())
}

/// The student IDE on one LR image `[3, H, W]`.
pub fn ide(net: &Network, lr: &Planar) -> Result<IdeOutput> {
    check_lr(lr)?;
    let (cfg, w) = (&net.config, &net.weights);
    let p = format!("{}.E", cfg.role.ide_prefix());
    let mut x = lrelu_img(conv(w, &format!("{p}.0"), lr)?);
    for r in 0..cfg.n_resblocks {
        let rb = format!("{p}.{}", r + 2);
        let y = lrelu_img(conv(w, &format!("{rb}.body.0"), &x)?);
        let y = conv(w, &format!("{rb}.body.2"), &y)?;
        x = add_img(&y, &x)?;
    }
    for i in ide_tail_indices(cfg.n_resblocks) {
        x = lrelu_img(conv(w, &format!("{p}.{i}"), &x)?);
    }
    let n = (x.height() * x.width()) as f64;
    let pooled: Vec<f32> = (0..x.channels())
        .map(|c| (x.plane(c).iter().map(|v| f64::from(*v)).sum::<f64>() / n) as f32)
        .collect();
    let q = cfg.role.ide_prefix();
    let y: Vec<f32> = linear(w, &format!("{q}.mlp.0"), &pooled)?
        .into_iter()
        .map(lrelu)
        .collect();
    let d_prime: Vec<f32> = linear(w, &format!("{q}.mlp.2"), &y)?
        .into_iter()
        .map(lrelu)
        .collect();
    let d = linear(w, &format!("{q}.compress.0"), &d_prime)?
        .into_iter()
        .map(lrelu)
        .collect();
    Ok(IdeOutput { d, d_prime, pooled })
}

/// The SR network on one LR image with given depthwise kernels (one `Vec` of `9·C` values,
/// row-major `[C, 1, 3, 3]`, per block).
pub fn sr_with_kernels(net: &Network, lr: &Planar, kernels: &[Vec<f32>]) -> Result<Planar> {
    check_lr(lr)?;
    let (cfg, w) = (&net.config, &net.weights);
    let c = cfg.n_feats;
    if kernels.len() != cfg.n_blocks || kernels.iter().any(|k| k.len() != 9 * c) {
        return Err(ConvertError::Graph(format!(
            "expected {} blocks of {} kernel values",
            cfg.n_blocks,
            9 * c
        )));
    }
    let x = conv(w, "G.sub_mean", lr)?;
    let head = conv(w, "G.head.0", &x)?;
    let mut x = head.clone();
    for (n, k) in kernels.iter().enumerate() {
        let p = format!("G.body.0.body.{n}");
        let y = lrelu_img(conv2d(&x, k, [c, 1, 3, 3], None, 1, c)?);
        let y = conv(w, &format!("{p}.conv1"), &y)?;
        x = add_img(&y, &x)?;
    }
    let y = conv(w, "G.body.1", &x)?;
    let mut x = add_img(&y, &head)?;
    for ((idx, _), f) in upsampler_stages(cfg.scale)
        .into_iter()
        .zip(upsampler_factors(cfg.scale))
    {
        x = pixel_shuffle(&conv(w, &format!("G.tail.0.{idx}"), &x)?, f)?;
    }
    let x = conv(w, "G.tail.1", &x)?;
    conv(w, "G.add_mean", &x)
}

/// The SR network on one LR image driven by `d` (length C): kernels from [`fold::kernels`].
pub fn sr(net: &Network, lr: &Planar, d: &[f32]) -> Result<Planar> {
    let k = fold::kernels(&net.config, &net.weights, d)?;
    sr_with_kernels(net, lr, &k)
}

/// The whole student on one LR image: IDE, then the SR network with the image's own `D`.
pub fn forward(net: &Network, lr: &Planar) -> Result<Forward> {
    let ide = ide(net, lr)?;
    let sr = sr(net, lr, &ide.d)?;
    Ok(Forward { sr, ide })
}
