//! Times kdsr-edge's 3×3 convolution op (`runtime/src/ops/winograd.rs`) alone on one shape:
//! random weights and input, the op built as the rewrite pass builds it (Winograd F(6,3) or, with
//! `--tile f43`, F(4,3); the direct sum for at most 4 output channels), optionally with a fused
//! depth-to-space, on the calling thread; with `--bf16`, the bf16 direct sum on AMX instead. The
//! per-op timings in `runtime/README.md` come from it. It prints a digest of the output's bits,
//! so two builds can be checked to compute the same bits.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example winograd-op -- --ic 32 --oc 128 --size 640x360 --depth-to-space 2
//! KDSR_EDGE_SIMD=avx2 cargo run --release -p kdsr-runtime --example winograd-op -- --ic 64 --oc 64 --size 64x64
//! ```

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use kdsr_runtime::ops::winograd::{Epilogue, Tile, TileChoice, Winograd3x3};
use tract_onnx::tract_core::internal::Op;

/// One convolution shape to time.
#[derive(Debug, Parser)]
struct Args {
    /// Input channels.
    #[arg(long)]
    ic: usize,
    /// Output channels.
    #[arg(long)]
    oc: usize,
    /// Input size, WxH (width first).
    #[arg(long, value_name = "WxH", default_value = "320x180")]
    size: kdsr_core::io::ImageSize,
    /// Fuse a depth-to-space (DCR) by this block into the output store.
    #[arg(long)]
    depth_to_space: Option<usize>,
    /// The Winograd algorithm: f63 or f43.
    #[arg(long, default_value = "f63")]
    tile: Tile,
    /// Compute in bf16 on AMX (`--precision bf16`), not by Winograd.
    #[arg(long)]
    bf16: bool,
    /// Timed calls after one warm-up call.
    #[arg(long, default_value_t = 10)]
    iters: usize,
}

/// Deterministic values in [-0.5, 0.5).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn main() -> Result<()> {
    let a = Args::parse();
    let (h, w) = (a.size.height, a.size.width);
    let weights = values(a.oc * a.ic * 9, 1);
    let mut op = Winograd3x3::new(
        &weights,
        Some(&values(a.oc, 2)),
        a.oc,
        a.ic,
        TileChoice::Fixed(a.tile),
    )?;
    if a.bf16 {
        op = op.with_bf16(&weights)?;
    }
    if let Some(b) = a.depth_to_space {
        op = op.with_epilogue(Epilogue {
            depth_to_space: Some((b, false)),
            ..Epilogue::default()
        })?;
    }
    let x = values(a.ic * h * w, 3);
    let [_, c, oh, ow] = op.output_shape(1, h, w);
    let mut y = vec![0f32; c * oh * ow];
    op.run(&x, None, None, &mut y, 1, h, w)?;
    let mut times = Vec::with_capacity(a.iters);
    for _ in 0..a.iters.max(1) {
        let t = Instant::now();
        op.run(&x, None, None, &mut y, 1, h, w)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let macs = (a.oc * a.ic * 9 * h * w) as f64;
    // FNV-1a over the output's bits: equal digests from two builds mean the same bits.
    let digest = y.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3)
    });
    println!(
        "{}→{} at {w}x{h}{}: min {:.2} ms, median {:.2} ms ({:.1} G MAC/s of the direct sum's MACs), {}, output digest {digest:016x}",
        a.ic,
        a.oc,
        a.depth_to_space
            .map_or(String::new(), |b| format!(", depth-to-space {b}")),
        times[0],
        times[times.len() / 2],
        macs / times[0] / 1e6,
        op.info().map(|i| i.join(" ")).unwrap_or_default(),
    );
    Ok(())
}
