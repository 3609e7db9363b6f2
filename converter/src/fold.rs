//! Folding an IDR into constant depthwise kernels, in Rust, exactly as the official IDR-DDC
//! computes them: `k = W2 · LReLU0.1(W1 · D)` (`W1 = da_conv1.kernel.0.weight` `[C, C]`,
//! `W2 = da_conv1.kernel.2.weight` `[9C, C]`, no biases), read row-major as `[C, 1, 3, 3]`: channel
//! `c`, kernel row `i`, column `j` is `k[c·9 + i·3 + j]` (docs/reference/kdsr-architecture.md §4.2). The sums are
//! accumulated in f64 and rounded once, so the result does not depend on summation order.

use kdsr_core::spec::checkpoint::Weights;
use kdsr_core::spec::{DDC_KERNEL, KdsrConfig, LRELU_SLOPE};

use crate::error::{ConvertError, Result};
use crate::network::tensor;

/// `y = W · x` for `W` `[out, in]` row-major, accumulated in f64.
fn matvec(wm: &[f32], out: usize, x: &[f32]) -> Vec<f32> {
    let inp = x.len();
    (0..out)
        .map(|o| {
            wm[o * inp..(o + 1) * inp]
                .iter()
                .zip(x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>() as f32
        })
        .collect()
}

/// LeakyReLU(0.1) of one value.
pub fn lrelu(v: f32) -> f32 {
    if v >= 0.0 { v } else { v * LRELU_SLOPE }
}

/// The `9·C` depthwise kernel values of block `n` for `d` (length C), row-major `[C, 1, 3, 3]`.
pub fn block_kernels(cfg: &KdsrConfig, w: &Weights, n: usize, d: &[f32]) -> Result<Vec<f32>> {
    let c = cfg.n_feats;
    if d.len() != c {
        return Err(ConvertError::IdrLength {
            source_name: "<D>".to_owned(),
            found: d.len(),
            expected: c,
        });
    }
    let p = format!("G.body.0.body.{n}.da_conv1.kernel");
    let w1 = tensor(w, &format!("{p}.0.weight"))?;
    let w2 = tensor(w, &format!("{p}.2.weight"))?;
    let kk = DDC_KERNEL * DDC_KERNEL;
    if w1.shape != [c, c] || w2.shape != [kk * c, c] {
        return Err(ConvertError::Graph(format!(
            "{p}: weights of shape {:?} / {:?}, expected [{c}, {c}] / [{}, {c}]",
            w1.shape,
            w2.shape,
            kk * c
        )));
    }
    let h: Vec<f32> = matvec(&w1.data, c, d).into_iter().map(lrelu).collect();
    Ok(matvec(&w2.data, kk * c, &h))
}

/// The kernels of every block for `d`, one `Vec` of `9·C` values per block.
pub fn kernels(cfg: &KdsrConfig, w: &Weights, d: &[f32]) -> Result<Vec<Vec<f32>>> {
    (0..cfg.n_blocks)
        .map(|n| block_kernels(cfg, w, n, d))
        .collect()
}
