//! IDR-DDC (`da_conv1`): a depthwise 3×3 conv whose kernels are generated per sample from the IDR.

use kdsr_core::spec::{DDC_KERNEL, KdsrConfig};
use tch::{Tensor, nn};

use super::layers::{LeakyRelu, linear};

/// `kernel = Linear(C,C,no bias) → LReLU → Linear(C,9C,no bias)`; keys `kernel.0`, `kernel.2`.
#[derive(Debug)]
pub struct IdrDdc {
    l0: nn::Linear,
    l2: nn::Linear,
    act: LeakyRelu,
    c: i64,
}

impl IdrDdc {
    /// Variables under `p` (= `…da_conv1`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let k = p / "kernel";
        Self {
            l0: linear(&(&k / "0"), c, c, false),
            l2: linear(&(&k / "2"), c, DDC_KERNEL * DDC_KERNEL * c, false),
            act: LeakyRelu::new(p),
            c: c as i64,
        }
    }

    /// Per-sample depthwise kernels, batch-major: `D [B,C]` → `[B·C,1,3,3]` (row-major reshape of
    /// the `[B,9C]` MLP output, as the official code does).
    pub fn kernels(&self, d: &Tensor) -> Tensor {
        let b = d.size()[0];
        let k = self.act.forward(&d.apply(&self.l0)).apply(&self.l2);
        k.reshape([b * self.c, 1, DDC_KERNEL as i64, DDC_KERNEL as i64])
    }

    /// Applies the dynamic depthwise conv: `x [B,C,H,W]`, `D [B,C]` → `[B,C,H,W]` (zero padding 1,
    /// no bias; each sample convolved with its own kernels via a grouped conv over `[1,B·C,H,W]`).
    pub fn forward(&self, x: &Tensor, d: &Tensor) -> Tensor {
        let k = self.kernels(d);
        depthwise(x, &k)
    }
}

/// Per-sample depthwise 3×3 conv: `x [B,C,H,W]`, `k [B·C,1,3,3]` → `[B,C,H,W]`.
pub fn depthwise(x: &Tensor, k: &Tensor) -> Tensor {
    let s = x.size();
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    x.reshape([1, b * c, h, w])
        .conv2d(k, None::<Tensor>, 1, 1, 1, b * c)
        .reshape([b, c, h, w])
}
