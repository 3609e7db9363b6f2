//! KD-IDE (`E` / `E_st`): a full-resolution conv trunk, global average pooling, then `mlp` → `D'`
//! and `compress` → `D`.

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::layout::ide_tail_indices;
use tch::{Tensor, nn};

use super::layers::{Conv, LeakyRelu, linear};

#[derive(Debug)]
struct ResBlock {
    c0: Conv,
    c2: Conv,
}

/// The implicit degradation estimator.
#[derive(Debug)]
pub struct Ide {
    first: Conv,
    res: Vec<ResBlock>,
    tail: [Conv; 3],
    mlp0: nn::Linear,
    mlp2: nn::Linear,
    compress: nn::Linear,
    act: LeakyRelu,
}

impl Ide {
    /// Variables under `p` (= `E` or `E_st`).
    pub fn new(p: &nn::Path, cfg: &KdsrConfig) -> Self {
        let c = cfg.n_feats;
        let e = p / "E";
        let [i1, i2, i3] = ide_tail_indices(cfg.n_resblocks);
        Self {
            first: Conv::new(&(&e / 0), cfg.ide_in_channels(), c, 3),
            res: (0..cfg.n_resblocks)
                .map(|r| {
                    let b = &e / (r + 2) / "body";
                    ResBlock {
                        c0: Conv::new(&(&b / 0), c, c, 3),
                        c2: Conv::new(&(&b / 2), c, c, 3),
                    }
                })
                .collect(),
            tail: [
                Conv::new(&(&e / i1), c, 2 * c, 3),
                Conv::new(&(&e / i2), 2 * c, 2 * c, 3),
                Conv::new(&(&e / i3), 2 * c, 4 * c, 3),
            ],
            mlp0: linear(&(p / "mlp" / 0), 4 * c, 4 * c, true),
            mlp2: linear(&(p / "mlp" / 2), 4 * c, 4 * c, true),
            compress: linear(&(p / "compress" / 0), 4 * c, c, true),
            act: LeakyRelu::new(p),
        }
    }

    /// Trunk output after global average pooling `[B,4C]`.
    pub fn pooled(&self, x: &Tensor) -> Tensor {
        let mut h = self.act.forward(&self.first.forward(x));
        for r in &self.res {
            h = r.c2.forward(&self.act.forward(&r.c0.forward(&h))) + &h;
        }
        for conv in &self.tail {
            h = self.act.forward(&conv.forward(&h));
        }
        h.mean_dim([2i64, 3].as_slice(), false, None)
    }

    /// `x [B,in,h,w]` → (`D [B,C]`, `D' [B,4C]`).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let pooled = self.pooled(x);
        let d_prime = self.act.forward(&pooled.apply(&self.mlp0));
        let d_prime = self.act.forward(&d_prime.apply(&self.mlp2));
        let d = self.act.forward(&d_prime.apply(&self.compress));
        (d, d_prime)
    }
}
