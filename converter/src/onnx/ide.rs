//! The KD-IDE of a student (`E_st`, docs/reference/kdsr-architecture.md §3): the convolutional
//! trunk at LR resolution, global average pooling, then `mlp` → `D'` and `compress` → `D`.
//!
//! Node names follow the official `nn.Sequential` indices: `E_st.E.0` (conv), `E_st.E.1`
//! (LeakyReLU), `E_st.E.{2+r}.body.{0,1,2}` and the residual add `E_st.E.{2+r}`, the three tail
//! convs and their activations at `E_st.E.{R+2..R+7}`, pooling at `E_st.E.{R+8}`.

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::layout::ide_tail_indices;

use super::builder::GraphBuilder;
use super::layers::{add, conv, leaky_relu, linear};
use crate::error::Result;

/// Names of the IDE's two results in the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdeValues {
    /// `D` `[B, C]` (after `compress` and its LeakyReLU), the value named `D`.
    pub d: String,
    /// `D'` `[B, 4C]` (after `mlp` and its trailing LeakyReLU), the value named `D_prime`.
    pub d_prime: String,
}

/// Appends the IDE reading `lr` `[B, 3, H, W]`; returns the values `D` and `D_prime`.
pub fn ide(b: &mut GraphBuilder, cfg: &KdsrConfig, w: &Weights, lr: &str) -> Result<IdeValues> {
    let p = format!("{}.E", cfg.role.ide_prefix());
    let x = conv(b, w, &format!("{p}.0"), lr)?;
    let mut x = leaky_relu(b, &format!("{p}.1"), &x)?;
    for r in 0..cfg.n_resblocks {
        let rb = format!("{p}.{}", r + 2);
        let y = conv(b, w, &format!("{rb}.body.0"), &x)?;
        let y = leaky_relu(b, &format!("{rb}.body.1"), &y)?;
        let y = conv(b, w, &format!("{rb}.body.2"), &y)?;
        x = add(b, &rb, &y, &x)?;
    }
    for i in ide_tail_indices(cfg.n_resblocks) {
        let y = conv(b, w, &format!("{p}.{i}"), &x)?;
        x = leaky_relu(b, &format!("{p}.{}", i + 1), &y)?;
    }
    let pool = format!("{p}.{}", cfg.n_resblocks + 8);
    let pooled = b.node("GlobalAveragePool", &pool, &[&x], &[])?;
    let flat = b.node(
        "Flatten",
        &format!("{pool}.flatten"),
        &[&pooled],
        &[("axis", super::builder::Attr::Int(1))],
    )?;
    let q = cfg.role.ide_prefix();
    let y = linear(b, w, &format!("{q}.mlp.0"), &flat, true)?;
    let y = leaky_relu(b, &format!("{q}.mlp.1"), &y)?;
    let y = linear(b, w, &format!("{q}.mlp.2"), &y, true)?;
    let d_prime = leaky_relu(b, "D_prime", &y)?;
    let y = linear(b, w, &format!("{q}.compress.0"), &d_prime, true)?;
    let d = leaky_relu(b, "D", &y)?;
    Ok(IdeValues { d, d_prime })
}
