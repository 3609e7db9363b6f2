//! The IDR-DCRB block (docs/reference/kdsr-architecture.md §4.1–4.2): a depthwise 3×3 conv whose kernels come
//! from `D`, LeakyReLU(0.1), the ordinary conv `conv1`, and the residual add.
//!
//! Where the kernels come from is a [`Kernels`] value:
//! - computed in the graph from a `D` value: `Gemm(D, W1ᵀ)` → LeakyReLU → `Gemm(·, W2ᵀ)` →
//!   `Reshape [B·C, 1, 3, 3]` (row-major, exactly as the official `view`);
//! - or folded to constants in Rust ([`crate::fold`]) and stored as the initializer
//!   `{block}.da_conv1.folded_kernel` `[C, 1, 3, 3]`.
//!
//! At a fixed batch B > 1 ([`Kernels::Dynamic`] with `batch: Some(B)`), the feature map
//! `[B, C, H, W]` is reshaped to `[1, B·C, H, W]`, convolved with `group = B·C` and reshaped back,
//! so every sample gets its own kernels — the official batching.

use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::{DDC_KERNEL, KdsrConfig};

use super::builder::GraphBuilder;
use super::layers::{add, conv, depthwise3x3, leaky_relu, linear, reshape};
use crate::error::{ConvertError, Result};

/// Where the depthwise kernels of every block come from.
#[derive(Clone, Copy, Debug)]
pub enum Kernels<'a> {
    /// Computed in the graph from the value named `d` (`[B, C]`). `batch` is `None` for the
    /// batch-1 graphs (kernels applied directly with `group = C`) and `Some(B)` for a fixed-batch
    /// graph (the reshape to `group = B·C`).
    Dynamic {
        /// Name of the `D` value.
        d: &'a str,
        /// Fixed batch size, or `None` for batch 1 without reshapes.
        batch: Option<usize>,
    },
    /// Constant kernels, one `Vec` of `9·C` values (row-major `[C, 1, 3, 3]`) per block.
    Folded(&'a [Vec<f32>]),
}

/// Names of the shape constants shared by every block, created once per graph.
#[derive(Clone, Debug)]
pub struct Shapes {
    kernel: Option<String>,
    to_groups: Option<String>,
    from_groups: Option<String>,
}

impl Shapes {
    /// Creates the shape constants `kernels` needs: `ddc.kernel_shape` `[B·C, 1, 3, 3]`, and for a
    /// fixed batch `ddc.to_groups_shape` `[1, B·C, 0, 0]` and `ddc.from_groups_shape`
    /// `[B, C, 0, 0]` (0 copies H and W).
    pub fn new(b: &mut GraphBuilder, cfg: &KdsrConfig, kernels: &Kernels<'_>) -> Result<Self> {
        let c = cfg.n_feats as i64;
        let k = DDC_KERNEL as i64;
        let mut s = Shapes {
            kernel: None,
            to_groups: None,
            from_groups: None,
        };
        if let Kernels::Dynamic { batch, .. } = kernels {
            let bn = batch.unwrap_or(1) as i64;
            s.kernel = Some(b.const_i64("ddc.kernel_shape", &[bn * c, 1, k, k])?);
            if batch.is_some() {
                s.to_groups = Some(b.const_i64("ddc.to_groups_shape", &[1, bn * c, 0, 0])?);
                s.from_groups = Some(b.const_i64("ddc.from_groups_shape", &[bn, c, 0, 0])?);
            }
        }
        Ok(s)
    }
}

/// Appends IDR-DCRB `n` (`G.body.0.body.{n}`) reading `x` `[B, C, H, W]`; the block's output
/// value is named `G.body.0.body.{n}`.
pub fn dcrb(
    b: &mut GraphBuilder,
    cfg: &KdsrConfig,
    w: &Weights,
    n: usize,
    x: &str,
    kernels: &Kernels<'_>,
    shapes: &Shapes,
) -> Result<String> {
    let p = format!("G.body.0.body.{n}");
    let c = cfg.n_feats;
    let missing = |what: &str| ConvertError::Graph(format!("{p}: shape constant {what} missing"));
    let y = match kernels {
        Kernels::Dynamic { d, batch } => {
            let k = linear(b, w, &format!("{p}.da_conv1.kernel.0"), d, false)?;
            let k = leaky_relu(b, &format!("{p}.da_conv1.kernel.1"), &k)?;
            let k = linear(b, w, &format!("{p}.da_conv1.kernel.2"), &k, false)?;
            let kshape = shapes.kernel.as_deref().ok_or_else(|| missing("kernel"))?;
            let k = reshape(b, &format!("{p}.da_conv1.kernel.view"), &k, kshape)?;
            match batch {
                None => depthwise3x3(b, &format!("{p}.da_conv1"), x, &k, c)?,
                Some(bn) => {
                    let to = shapes.to_groups.as_deref().ok_or_else(|| missing("to"))?;
                    let from = shapes
                        .from_groups
                        .as_deref()
                        .ok_or_else(|| missing("from"))?;
                    let g = reshape(b, &format!("{p}.da_conv1.to_groups"), x, to)?;
                    let g = depthwise3x3(b, &format!("{p}.da_conv1.conv"), &g, &k, bn * c)?;
                    reshape(b, &format!("{p}.da_conv1"), &g, from)?
                }
            }
        }
        Kernels::Folded(all) => {
            let kv = all
                .get(n)
                .ok_or_else(|| ConvertError::Graph(format!("no folded kernels for block {n}")))?;
            let k = b.weight(
                &format!("{p}.da_conv1.folded_kernel"),
                &[c, 1, DDC_KERNEL, DDC_KERNEL],
                kv,
            )?;
            depthwise3x3(b, &format!("{p}.da_conv1"), x, &k, c)?
        }
    };
    let y = leaky_relu(b, &format!("{p}.relu"), &y)?;
    let y = conv(b, w, &format!("{p}.conv1"), &y)?;
    add(b, &p, &y, x)
}
