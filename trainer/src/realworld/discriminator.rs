//! Real-ESRGAN's U-Net discriminator with spectral normalisation (`UNetDiscriminatorSN`,
//! `num_feat` 64, skip connections), at BasicSR's `state_dict` key names.
//!
//! ```text
//! x0 = LReLU(conv0(x))                      3 → F, 3×3, bias, no SN
//! x1 = LReLU(conv1(x0))  x2 = LReLU(conv2(x1))  x3 = LReLU(conv3(x2))
//!                                           4×4 stride 2: F → 2F → 4F → 8F, SN, no bias
//! x4 = LReLU(conv4(up2(x3))) + x2           3×3, 8F → 4F
//! x5 = LReLU(conv5(up2(x4))) + x1           4F → 2F
//! x6 = LReLU(conv6(up2(x5))) + x0           2F → F
//! out = conv9(LReLU(conv8(LReLU(conv7(x6)))))   F → F → F → 1 (conv9: bias, no SN)
//! ```
//! LReLU has slope 0.2; `up2` is bilinear ×2 (align_corners false). The output is one logit per
//! pixel `[B,1,H,W]`; H and W must be multiples of 8.
//!
//! # Spectral norm
//! As `torch.nn.utils.spectral_norm` (one power iteration, ε = 1e-12): each SN conv keeps
//! `weight_orig` (trained) and the buffers `weight_u` `[out]` and `weight_v` `[in·k·k]`
//! (initialised to normalised standard-normal draws). Every forward in training mode first runs one
//! power iteration without gradient, `v ← normalize(Wᵀu)`, `u ← normalize(W v)` (stored), then
//! uses `W / (uᵀ W v)`; in eval mode the stored `u`, `v` are used as they are. The buffers are part
//! of [`UNetDiscriminator::weights`], so checkpoints and the resume state carry them.
//!
//! A one-off comparison with Real-ESRGAN's class built on `torch.nn.utils.spectral_norm`
//! (PyTorch 2.11, CPU, `num_feat` 16): the weights written by [`UNetDiscriminator::weights`]
//! load into its `state_dict` with `strict=True`, and one training-mode forward gave identical
//! logits and identical updated `weight_u` / `weight_v`.

use std::collections::HashMap;

use anyhow::{Result, bail};
use kdsr_core::spec::checkpoint::Weights;
use tch::{Device, Kind, Tensor, nn};

use crate::checkpoint::{copy_checked, named_trainables, weights_of};

/// Negative slope of the discriminator's LeakyReLU.
pub const D_LRELU_SLOPE: f64 = 0.2;
/// ε of the power-iteration normalisation.
const SN_EPS: f64 = 1e-12;

fn lrelu(x: &Tensor) -> Tensor {
    x.maximum(&(x * D_LRELU_SLOPE))
}

fn normalize(x: &Tensor) -> Tensor {
    x / x.norm().clamp_min(SN_EPS)
}

fn bound(fan_in: i64) -> nn::Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -b, up: b }
}

/// A conv with spectral-normalised weight and no bias.
#[derive(Debug)]
struct SnConv {
    weight_orig: Tensor,
    u: Tensor,
    v: Tensor,
    stride: i64,
    padding: i64,
}

impl SnConv {
    fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64) -> Self {
        let fan_in = cin * k * k;
        let weight_orig = p.var("weight_orig", &[cout, cin, k, k], bound(fan_in));
        let mut u = p.zeros_no_train("weight_u", &[cout]);
        let mut v = p.zeros_no_train("weight_v", &[fan_in]);
        tch::no_grad(|| {
            u.copy_(&normalize(&Tensor::randn(
                [cout],
                (Kind::Float, p.device()),
            )));
            v.copy_(&normalize(&Tensor::randn(
                [fan_in],
                (Kind::Float, p.device()),
            )));
        });
        Self {
            weight_orig,
            u,
            v,
            stride,
            padding,
        }
    }

    /// The normalised weight, after one power iteration when `train`.
    fn weight(&self, train: bool) -> Tensor {
        let out = self.weight_orig.size()[0];
        let wm = self.weight_orig.reshape([out, -1]);
        if train {
            tch::no_grad(|| {
                let wd = wm.detach();
                let v = normalize(&wd.tr().mv(&self.u));
                let u = normalize(&wd.mv(&v));
                self.v.shallow_clone().copy_(&v);
                self.u.shallow_clone().copy_(&u);
            });
        }
        // Clones, as torch does, so that a later forward's in-place update cannot invalidate the
        // tensors this one's backward needs.
        let (u, v) = (self.u.detach().copy(), self.v.detach().copy());
        let sigma = u.dot(&wm.mv(&v));
        &self.weight_orig / sigma
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.conv2d(
            &self.weight(train),
            None::<Tensor>,
            self.stride,
            self.padding,
            1,
            1,
        )
    }
}

/// The U-Net discriminator (see the [module docs](self)) with its own VarStore.
#[derive(Debug)]
pub struct UNetDiscriminator {
    /// All variables under BasicSR names (`conv0.weight`, `conv1.weight_orig`, `conv1.weight_u`,
    /// …); `weight_u` / `weight_v` are not trainable.
    pub vs: nn::VarStore,
    conv0: nn::Conv2D,
    sn: Vec<SnConv>,
    conv9: nn::Conv2D,
    skip: bool,
    /// Training mode: every forward runs one power iteration (as `net_d.train()`).
    pub training: bool,
}

impl UNetDiscriminator {
    /// A freshly initialised discriminator (PyTorch default conv init; `u`, `v` from libtorch's
    /// generator) with `num_feat` features (64 in the paper) on `device`.
    pub fn new(num_feat: i64, skip: bool, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let r = vs.root();
        let f = num_feat;
        let conv = |name: &str, cin: i64, cout: i64| {
            let fan = cin * 9;
            nn::conv2d(
                &(&r / name),
                cin,
                cout,
                3,
                nn::ConvConfig {
                    padding: 1,
                    ws_init: bound(fan),
                    bs_init: bound(fan),
                    ..Default::default()
                },
            )
        };
        let conv0 = conv("conv0", 3, f);
        let spec: [(&str, i64, i64, i64, i64, i64); 8] = [
            ("conv1", f, 2 * f, 4, 2, 1),
            ("conv2", 2 * f, 4 * f, 4, 2, 1),
            ("conv3", 4 * f, 8 * f, 4, 2, 1),
            ("conv4", 8 * f, 4 * f, 3, 1, 1),
            ("conv5", 4 * f, 2 * f, 3, 1, 1),
            ("conv6", 2 * f, f, 3, 1, 1),
            ("conv7", f, f, 3, 1, 1),
            ("conv8", f, f, 3, 1, 1),
        ];
        let sn = spec
            .iter()
            .map(|(n, cin, cout, k, s, p)| SnConv::new(&(&r / *n), *cin, *cout, *k, *s, *p))
            .collect();
        let conv9 = conv("conv9", f, 1);
        Self {
            vs,
            conv0,
            sn,
            conv9,
            skip,
            training: true,
        }
    }

    /// Logits `[B,1,H,W]` for images `x` `[B,3,H,W]` (H, W multiples of 8).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        if s.len() != 4 || s[1] != 3 || s[2] % 8 != 0 || s[3] % 8 != 0 {
            bail!("discriminator input must be [B,3,H,W] with H, W multiples of 8, got {s:?}");
        }
        let t = self.training;
        let up = |h: &Tensor| {
            let z = h.size();
            h.upsample_bilinear2d([z[2] * 2, z[3] * 2], false, Some(2.0), Some(2.0))
        };
        let x0 = lrelu(&x.apply(&self.conv0));
        let x1 = lrelu(&self.sn[0].forward(&x0, t));
        let x2 = lrelu(&self.sn[1].forward(&x1, t));
        let x3 = lrelu(&self.sn[2].forward(&x2, t));
        let skip = |h: Tensor, s: &Tensor| if self.skip { h + s } else { h };
        let x4 = skip(lrelu(&self.sn[3].forward(&up(&x3), t)), &x2);
        let x5 = skip(lrelu(&self.sn[4].forward(&up(&x4), t)), &x1);
        let x6 = skip(lrelu(&self.sn[5].forward(&up(&x5), t)), &x0);
        let o = lrelu(&self.sn[6].forward(&x6, t));
        let o = lrelu(&self.sn[7].forward(&o, t));
        Ok(o.apply(&self.conv9))
    }

    /// Trainable parameters, sorted by name (for the optimizer).
    pub fn trainables(&self) -> Vec<(String, Tensor)> {
        named_trainables(&self.vs)
    }

    /// Every variable (weights, biases, `weight_u`, `weight_v`) as float32 CPU tensors.
    pub fn weights(&self) -> Result<Weights> {
        weights_of(&self.vs)
    }

    /// Copies every variable from `tensors` (names as [`Self::weights`] writes them); a missing
    /// or mis-shaped tensor is an error naming it. `file` labels errors.
    pub fn load(&mut self, tensors: &HashMap<String, Tensor>, file: &str) -> Result<()> {
        let what = format!("{file}: the discriminator");
        for (name, mut var) in self.vs.variables() {
            copy_checked(&mut var, tensors, &name, &what)?;
        }
        Ok(())
    }
}
