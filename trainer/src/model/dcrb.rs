//! IDR-DCRB (`G.body.0.body.{n}`): `y = conv1(LReLU(IDR-DDC(h, D))) + h`.

use kdsr_core::spec::KdsrConfig;
use tch::{Tensor, nn};

use super::ddc::IdrDdc;
use super::layers::{Conv, LeakyRelu};

/// One IDR-DCRB block.
#[derive(Debug)]
pub struct Dcrb {
    /// The dynamic depthwise conv (`da_conv1`).
    pub ddc: IdrDdc,
    conv1: Conv,
    act: LeakyRelu,
}

impl Dcrb {
    /// Variables under `p` (= `G.body.0.body.{n}`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        Self {
            ddc: IdrDdc::new(&(p / "da_conv1"), cfg),
            conv1: Conv::new(&(p / "conv1"), c, c, 3),
            act: LeakyRelu::new(p),
        }
    }

    /// `h [B,C,H,W]`, `D [B,C]` → `[B,C,H,W]`.
    pub fn forward(&self, h: &Tensor, d: &Tensor) -> Tensor {
        self.conv1
            .forward(&self.act.forward(&self.ddc.forward(h, d)))
            + h
    }
}
