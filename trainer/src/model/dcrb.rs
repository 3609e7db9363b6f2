//! IDR-DCRB (`G.body.0.body.{n}`): `y = conv1(LReLU(IDR-DDC(h, D))) + h`, or with a plain conv
//! in place of the IDR-DDC for the Table 4 ablation ([`BlockConv::Plain`]).

use kdsr_core::spec::{BlockConv, KdsrConfig};
use tch::{Tensor, nn};

use super::ddc::IdrDdc;
use super::layers::{Conv, LeakyRelu};

/// The block's first conv (`da_conv1`).
#[derive(Debug)]
pub enum FirstConv {
    /// The dynamic depthwise conv (KDSR).
    Ddc(IdrDdc),
    /// An ordinary 3×3 conv that ignores `D` (`da_conv1.conv`, ablation).
    Plain(Conv),
}

/// One IDR-DCRB block.
#[derive(Debug)]
pub struct Dcrb {
    /// `da_conv1`.
    pub first: FirstConv,
    conv1: Conv,
    act: LeakyRelu,
}

impl Dcrb {
    /// Variables under `p` (= `G.body.0.body.{n}`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let da = p / "da_conv1";
        Self {
            first: match cfg.block_conv {
                BlockConv::IdrDdc => FirstConv::Ddc(IdrDdc::new(&da, cfg)),
                BlockConv::Plain => FirstConv::Plain(Conv::new(&(&da / "conv"), c, c, 3)),
            },
            conv1: Conv::new(&(p / "conv1"), c, c, 3),
            act: LeakyRelu::new(p),
        }
    }

    /// The per-image depthwise kernels `[B·C,1,3,3]` this block applies, `None` for a plain
    /// block.
    pub fn kernels(&self, d: &Tensor) -> Option<Tensor> {
        match &self.first {
            FirstConv::Ddc(ddc) => Some(ddc.kernels(d)),
            FirstConv::Plain(_) => None,
        }
    }

    /// `h [B,C,H,W]`, `D [B,C]` → `[B,C,H,W]`.
    pub fn forward(&self, h: &Tensor, d: &Tensor) -> Tensor {
        let first = match &self.first {
            FirstConv::Ddc(ddc) => ddc.forward(h, d),
            FirstConv::Plain(conv) => conv.forward(h),
        };
        self.conv1.forward(&self.act.forward(&first)) + h
    }
}
