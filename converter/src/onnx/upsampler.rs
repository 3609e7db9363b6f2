//! The upsampler `G.tail.0` (docs/reference/kdsr-architecture.md §4 step 5): per stage a 3×3 conv `C → f²·C`
//! and a PixelShuffle(f), written as `DepthToSpace(blocksize f, mode CRD)` — CRD is PixelShuffle's
//! channel order `c·f² + i·f + j`. ×4 is two ×2 stages (`tail.0.0`/`.1`, `tail.0.2`/`.3`), ×3 one
//! ×3 stage, ×2 one ×2 stage.

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::layout::{upsampler_factors, upsampler_stages};

use super::builder::{Attr, GraphBuilder};
use super::layers::conv;
use crate::error::Result;

/// Appends the upsampler reading `x` `[B, C, H, W]`; returns its output `[B, C, s·H, s·W]`.
pub fn upsampler(b: &mut GraphBuilder, cfg: &KdsrConfig, w: &Weights, x: &str) -> Result<String> {
    let mut x = x.to_owned();
    for ((idx, _), f) in upsampler_stages(cfg.scale)
        .into_iter()
        .zip(upsampler_factors(cfg.scale))
    {
        let y = conv(b, w, &format!("G.tail.0.{idx}"), &x)?;
        x = b.node(
            "DepthToSpace",
            &format!("G.tail.0.{}", idx + 1),
            &[&y],
            &[
                ("blocksize", Attr::Int(f as i64)),
                ("mode", Attr::Str("CRD".to_owned())),
            ],
        )?;
    }
    Ok(x)
}
