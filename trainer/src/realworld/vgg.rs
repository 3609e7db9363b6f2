//! The perceptual loss of the real-world GAN stage (BasicSR `PerceptualLoss` with
//! `VGGFeatureExtractor`): VGG19 features at `conv1_2`, `conv2_2`, `conv3_4`, `conv4_4` and
//! `conv5_4` **before** their ReLU, layer weights 0.1, 0.1, 1, 1, 1, L1 (mean) criterion, inputs
//! normalised with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)
//! (`use_input_norm`, no range norm); max pooling 2×2 stride 2; the GT branch is detached. The
//! network is frozen; gradients flow to the SR image only.
//!
//! # Weights
//! Nothing can be downloaded at training time: the VGG19 weights come from a safetensors file with
//! torchvision's `vgg19().features` names, `features.{i}.weight` `[out,in,3,3]` and
//! `features.{i}.bias` `[out]` for the 16 conv indices i = 0, 2, 5, 7, 10, 12, 14, 16, 19, 21,
//! 23, 25, 28, 30, 32, 34 (other keys are ignored). Make it once, where torchvision can download
//! the ImageNet weights (BasicSR uses the same ones):
//!
//! ```text
//! python -c "import torchvision; from safetensors.torch import save_file; sd=torchvision.models.vgg19(weights='IMAGENET1K_V1').features.state_dict(); save_file({f'features.{k}': v.contiguous() for k, v in sd.items()}, 'vgg19.safetensors')"
//! ```
//!
//! (`features.state_dict()` has the keys `0.weight`, `0.bias`, `2.weight`, …; the prefix makes
//! them `features.0.weight`, the names of the full model's state dict.)

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::read_safetensors;

/// The conv layers of VGG19's `features`: (index, in channels, out channels).
pub const VGG19_CONVS: [(usize, i64, i64); 16] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (16, 256, 256),
    (19, 256, 512),
    (21, 512, 512),
    (23, 512, 512),
    (25, 512, 512),
    (28, 512, 512),
    (30, 512, 512),
    (32, 512, 512),
    (34, 512, 512),
];

/// `features` indices of the max-pooling layers.
const VGG19_POOLS: [usize; 4] = [4, 9, 18, 27];

/// The tapped layers (pre-ReLU): `conv1_2`, `conv2_2`, `conv3_4`, `conv4_4`, `conv5_4`.
pub const PERCEPTUAL_LAYERS: [(&str, usize); 5] = [
    ("conv1_2", 2),
    ("conv2_2", 7),
    ("conv3_4", 16),
    ("conv4_4", 25),
    ("conv5_4", 34),
];

/// Real-ESRGAN's / KDSR-GAN's layer weights for [`PERCEPTUAL_LAYERS`].
pub const PERCEPTUAL_WEIGHTS: [f64; 5] = [0.1, 0.1, 1.0, 1.0, 1.0];

/// The ImageNet mean BasicSR normalises with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// The ImageNet std BasicSR normalises with.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Takes `key` from `tensors`, checking its shape; the error names the key, the file and both
/// shapes.
pub fn take_checked(
    tensors: &HashMap<String, Tensor>,
    key: &str,
    shape: &[i64],
    file: &str,
    device: Device,
) -> Result<Tensor> {
    let t = tensors
        .get(key)
        .with_context(|| format!("{file}: missing tensor `{key}` (expected shape {shape:?})"))?;
    if t.size() != shape {
        bail!(
            "{file}: tensor `{key}` has shape {:?}, expected {shape:?}",
            t.size()
        );
    }
    Ok(t.to_device(device).set_requires_grad(false))
}

/// The frozen VGG19 `features` trunk up to `conv5_4`.
#[derive(Debug)]
pub struct Vgg19 {
    convs: Vec<(usize, Tensor, Tensor)>,
    mean: Tensor,
    std: Tensor,
}

impl Vgg19 {
    /// Loads torchvision-named weights (see the [module docs](self)) onto `device`.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let tensors = read_safetensors(path)?;
        Self::from_tensors(&tensors, &path.display().to_string(), device)
    }

    /// Builds it from named tensors (`features.{i}.weight` / `.bias`); `file` labels errors.
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        file: &str,
        device: Device,
    ) -> Result<Self> {
        let mut convs = Vec::with_capacity(VGG19_CONVS.len());
        for (i, cin, cout) in VGG19_CONVS {
            let w = take_checked(
                tensors,
                &format!("features.{i}.weight"),
                &[cout, cin, 3, 3],
                file,
                device,
            )?;
            let b = take_checked(
                tensors,
                &format!("features.{i}.bias"),
                &[cout],
                file,
                device,
            )?;
            convs.push((i, w, b));
        }
        Ok(Self {
            convs,
            mean: Tensor::from_slice(&IMAGENET_MEAN)
                .reshape([1, 3, 1, 1])
                .to_device(device),
            std: Tensor::from_slice(&IMAGENET_STD)
                .reshape([1, 3, 1, 1])
                .to_device(device),
        })
    }

    /// Features of `x` `[B,3,H,W]` (RGB in [0, 1], ImageNet-normalised inside) at `taps`
    /// (`features` indices of conv layers, ascending), taken before the ReLU. Stops after the last
    /// tap.
    pub fn features(&self, x: &Tensor, taps: &[usize]) -> Vec<Tensor> {
        let last = taps.iter().copied().max().unwrap_or(0);
        let mut h = (x - &self.mean) / &self.std;
        let mut out = Vec::with_capacity(taps.len());
        let mut conv = self.convs.iter().peekable();
        for idx in 0..=last {
            if VGG19_POOLS.contains(&idx) {
                h = h.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            } else if let Some((_, w, b)) = conv.next_if(|(i, _, _)| *i == idx) {
                h = h.conv2d(w, Some(b), 1, 1, 1, 1);
                if taps.contains(&idx) {
                    out.push(h.shallow_clone());
                }
                if idx < last {
                    h = h.relu();
                }
            }
        }
        out
    }
}

/// The perceptual loss (see the [module docs](self)).
#[derive(Debug)]
pub struct PerceptualLoss {
    vgg: Vgg19,
    /// Weight per layer of [`PERCEPTUAL_LAYERS`].
    pub layer_weights: [f64; 5],
}

impl PerceptualLoss {
    /// The loss with the given VGG and layer weights.
    pub fn new(vgg: Vgg19, layer_weights: [f64; 5]) -> Self {
        Self { vgg, layer_weights }
    }

    /// `Σ_l w_l · mean|φ_l(sr) − φ_l(gt)|` (the GT side detached). A scalar tensor.
    pub fn forward(&self, sr: &Tensor, gt: &Tensor) -> Tensor {
        let taps: Vec<usize> = PERCEPTUAL_LAYERS.iter().map(|(_, i)| *i).collect();
        let fx = self.vgg.features(sr, &taps);
        let fg = tch::no_grad(|| self.vgg.features(&gt.detach(), &taps));
        let zero = Tensor::zeros([], (Kind::Float, sr.device()));
        fx.iter()
            .zip(&fg)
            .zip(self.layer_weights)
            .filter(|(_, w)| *w != 0.0)
            .fold(zero, |loss, ((a, b), w)| {
                loss + a.l1_loss(b, tch::Reduction::Mean) * w
            })
    }
}
