//! The SR network `G` (docs/reference/kdsr-architecture.md §4): `sub_mean`, head conv, N IDR-DCRBs, body conv
//! plus the long skip, upsampler, tail conv, `add_mean`.
//!
//! The MeanShifts are written as the 1×1 convs they are, with the checkpoint's own
//! `G.sub_mean.*` / `G.add_mean.*` tensors, not as a constant mean: the graph then reproduces any
//! checkpoint exactly (the frozen values are identity / ±DIV2K mean in official ones, but nothing
//! checks that a checkpoint kept them), and the cost is 9 MACs per pixel, under 0.1 % of the total.

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::Weights;

use super::builder::GraphBuilder;
use super::dcrb::{Kernels, Shapes, dcrb};
use super::layers::{add, conv, conv_named};
use super::upsampler::upsampler;
use crate::error::Result;

pub use kdsr_core::spec::onnx::names::SR;

/// Appends `G` reading `lr` `[B, 3, H, W]` with kernels from `kernels`; returns the value `sr`
/// `[B, 3, s·H, s·W]` (unclamped).
pub fn sr_network(
    b: &mut GraphBuilder,
    cfg: &KdsrConfig,
    w: &Weights,
    lr: &str,
    kernels: &Kernels<'_>,
) -> Result<String> {
    let shapes = Shapes::new(b, cfg, kernels)?;
    let x = conv(b, w, "G.sub_mean", lr)?;
    let head = conv(b, w, "G.head.0", &x)?;
    let mut x = head.clone();
    for n in 0..cfg.n_blocks {
        x = dcrb(b, cfg, w, n, &x, kernels, &shapes)?;
    }
    let y = conv(b, w, "G.body.1", &x)?;
    let x = add(b, "G.body", &y, &head)?;
    let x = upsampler(b, cfg, w, &x)?;
    let x = conv(b, w, "G.tail.1", &x)?;
    conv_named(b, w, "G.add_mean", SR, &x)
}
