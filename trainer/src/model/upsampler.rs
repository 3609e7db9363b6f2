//! The upsampler `G.tail.0`: conv + PixelShuffle stages (×4 = two ×2 stages at `.0` and `.2`).

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::layout::{upsampler_factors, upsampler_stages};
use tch::{Tensor, nn};

use super::layers::Conv;

/// Conv C→f²C then PixelShuffle(f), per stage, no activation.
#[derive(Debug)]
pub struct Upsampler {
    stages: Vec<(Conv, i64)>,
}

impl Upsampler {
    /// Variables under `p` (= `G.tail.0`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let stages = upsampler_stages(cfg.scale)
            .into_iter()
            .zip(upsampler_factors(cfg.scale))
            .map(|((idx, mult), f)| (Conv::new(&(p / idx), c, mult * c, 3), f as i64))
            .collect();
        Self { stages }
    }

    /// `[B,C,H,W]` → `[B,C,sH,sW]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.stages.iter().fold(x.shallow_clone(), |h, (conv, f)| {
            conv.forward(&h).pixel_shuffle(*f)
        })
    }
}
