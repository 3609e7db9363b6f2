//! Multiply-accumulate counts (docs/reference/kdsr-architecture.md §10).
//!
//! Two ways of counting:
//! - [`Counting::All`]: every conv, linear layer, the dynamic depthwise conv and the MeanShift
//!   1×1 convs (what torch's FlopCounter reports).
//! - [`Counting::Paper`]: without the dynamic depthwise conv and the MeanShifts, as `thop`
//!   counts and as the paper's table does.

use super::layout::{Module, upsampler_factors};
use super::{BlockConv, KdsrConfig};

/// Which operations to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counting {
    /// Everything, the dynamic depthwise conv and MeanShifts included.
    All,
    /// As the paper (thop): no dynamic depthwise conv, no MeanShift.
    Paper,
}

/// MACs of one layer group for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerMacs {
    /// Module the layer belongs to.
    pub module: Module,
    /// Short description (`conv 64→256 3x3 @2x`).
    pub what: String,
    /// Multiply-accumulates.
    pub macs: u64,
    /// True for the ops [`Counting::Paper`] leaves out.
    pub paper_excludes: bool,
}

impl KdsrConfig {
    /// Per-layer MACs for one LR image of `lr_h × lr_w` (student or teacher, as configured).
    pub fn layer_macs(&self, lr_h: usize, lr_w: usize) -> Vec<LayerMacs> {
        let c = self.n_feats as u64;
        let px = (lr_h * lr_w) as u64;
        let mut out = Vec::new();
        let mut conv =
            |module, cin: u64, cout: u64, k: u64, pixels: u64, excl: bool, what: &str| {
                out.push(LayerMacs {
                    module,
                    what: format!("{what} {cin}→{cout} {k}x{k}"),
                    macs: cin * cout * k * k * pixels,
                    paper_excludes: excl,
                });
            };
        let s2 = u64::from(self.scale * self.scale);
        conv(Module::MeanShift, 3, 3, 1, px, true, "sub_mean");
        conv(Module::Head, 3, c, 3, px, false, "head conv");
        for n in 0..self.n_blocks {
            let mlp = Module::Block {
                index: n,
                ddc_mlp: true,
            };
            let blk = Module::Block {
                index: n,
                ddc_mlp: false,
            };
            if self.block_conv == BlockConv::Plain {
                conv(blk, c, c, 3, px, false, "plain conv (ablation)");
            } else {
                conv(mlp, c, c, 1, 1, false, "ddc kernel linear");
                conv(mlp, c, 9 * c, 1, 1, false, "ddc kernel linear");
                // Depthwise: one input channel per output channel.
                conv(blk, 1, c, 3, px, true, "dynamic depthwise");
            }
            conv(blk, c, c, 3, px, false, "conv1");
        }
        conv(Module::BodyConv, c, c, 3, px, false, "body conv");
        let mut res = px;
        for f in upsampler_factors(self.scale) {
            let f = f as u64;
            conv(
                Module::Upsampler,
                c,
                f * f * c,
                3,
                res,
                false,
                "upsampler conv",
            );
            res *= f * f;
        }
        conv(Module::FinalConv, c, 3, 3, px * s2, false, "tail conv");
        conv(Module::MeanShift, 3, 3, 1, px * s2, true, "add_mean");

        let inp = self.ide_in_channels() as u64;
        conv(Module::IdeTrunk, inp, c, 3, px, false, "ide conv");
        for _ in 0..self.n_resblocks {
            conv(Module::IdeTrunk, c, c, 3, px, false, "ide resblock conv");
            conv(Module::IdeTrunk, c, c, 3, px, false, "ide resblock conv");
        }
        conv(Module::IdeTrunk, c, 2 * c, 3, px, false, "ide conv");
        conv(Module::IdeTrunk, 2 * c, 2 * c, 3, px, false, "ide conv");
        conv(Module::IdeTrunk, 2 * c, 4 * c, 3, px, false, "ide conv");
        conv(Module::IdeMlp, 4 * c, 4 * c, 1, 1, false, "mlp linear");
        conv(Module::IdeMlp, 4 * c, 4 * c, 1, 1, false, "mlp linear");
        conv(
            Module::IdeCompress,
            4 * c,
            c,
            1,
            1,
            false,
            "compress linear",
        );
        out
    }

    /// Total MACs for one LR image of `lr_h × lr_w`.
    pub fn macs(&self, lr_h: usize, lr_w: usize, counting: Counting) -> u64 {
        self.layer_macs(lr_h, lr_w)
            .iter()
            .filter(|l| counting == Counting::All || !l.paper_excludes)
            .map(|l| l.macs)
            .sum()
    }

    /// MACs of the SR network `G` alone (the IDE excluded), e.g. for a folded graph.
    pub fn sr_macs(&self, lr_h: usize, lr_w: usize, counting: Counting) -> u64 {
        self.layer_macs(lr_h, lr_w)
            .iter()
            .filter(|l| l.module.in_sr_network())
            .filter(|l| counting == Counting::All || !l.paper_excludes)
            .map(|l| l.macs)
            .sum()
    }
}
