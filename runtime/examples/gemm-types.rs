//! Times the products a Winograd convolution makes, by number type: `matrixmultiply`'s sgemm
//! (what the Winograd op in `runtime/src/ops/winograd.rs` calls), tract-linalg's float32 kernel
//! and tract-linalg's int8 × int8 → int32 kernel, on the calling thread, for one shape
//! `[m, k] × [k, n]`: `m` output channels, `k` input channels, `n` tiles of a chunk. The
//! weights (`[m, k]`) are packed once; the other operand is packed on every call, as the
//! Winograd op's transformed input is. It bounds what 8-bit products can save there (README,
//! "Reduced precision"): the int8 time leaves out quantizing the transformed input to 8 bits
//! and scaling the sums back, which an int8 Winograd path would add.
//!
//! ```sh
//! cargo run --release -p kdsr-runtime --example gemm-types -- --m 128 --k 32 --n 256
//! ```

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use tract_linalg::mmm::{AsInputValue, FusedSpec};
use tract_onnx::prelude::tract_ndarray::{Array2, linalg::general_mat_mul};
use tract_onnx::prelude::*;

/// One product shape to time.
#[derive(Debug, Parser)]
struct Args {
    /// Rows of the weights: output channels.
    #[arg(long, default_value_t = 128)]
    m: usize,
    /// The shared dimension: input channels.
    #[arg(long, default_value_t = 32)]
    k: usize,
    /// Columns of the other operand: tiles of a chunk.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Products per timed call (the Winograd op makes 64 per chunk with F(6,3)).
    #[arg(long, default_value_t = 64)]
    reps: usize,
    /// Timed calls after one warm-up call (the minimum is reported).
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// tract-linalg: pack the second operand once, not on each product (the kernel alone).
    #[arg(long)]
    prepacked: bool,
}

/// The minimum over `iters` calls of `f`, after one warm-up call, in seconds.
fn time(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// tract-linalg's preferred kernel for `acc` and the shape, run with packing `packing` on
/// `a` (packed once) and `b` (packed on each of `reps` products a call), storing into `c`.
/// Packing 0 of a float32 kernel is f32 × f32; packing 1 of every int32 kernel of tract-linalg
/// 0.23.9 (x86-64 AVX2, AVX-VNNI, AVX-512 VNNI; arm64) is i8 × i8.
fn tract_product(
    acc: DatumType,
    packing: usize,
    a: &Tensor,
    b: &Tensor,
    c: &mut Tensor,
    args: &Args,
) -> Result<(String, f64)> {
    let (m, n) = (args.m, args.n);
    let mmm = tract_linalg::MmmDispatch::native()
        .preferred_kernel(acc, Some(m), Some(args.k), Some(n))
        .with_context(|| format!("no tract-linalg kernel for {acc:?}"))?;
    let (pa_format, pb_format) = mmm
        .packings()
        .get(packing)
        .with_context(|| format!("{}: no packing {packing}", mmm.name()))?;
    let pa = pa_format.prepare_one(a, 1, 0)?;
    let pb_once = pb_format.prepare_one(b, 0, 1)?;
    let secs = time(args.iters, || {
        for _ in 0..args.reps {
            let fresh;
            let pb = if args.prepacked {
                &pb_once
            } else {
                fresh = pb_format.prepare_one(b, 0, 1)?;
                &fresh
            };
            // SAFETY: `pa` and `pb` were packed by this kernel's own packing `packing`, for
            // `[m, k]` and `[k, n]`; `c` is an `[m, n]` tensor of the kernel's accumulator type,
            // viewed with rows on axis 0 and columns on axis 1.
            #[allow(unsafe_code)]
            unsafe {
                mmm.run(
                    m,
                    n,
                    &[
                        FusedSpec::AddMatMul {
                            a: AsInputValue::Borrowed(&*pa),
                            b: AsInputValue::Borrowed(&**pb),
                            packing,
                        },
                        FusedSpec::Store(mmm.c_view(Some(0), Some(1)).wrap(&c.view_mut())),
                    ],
                )?;
            }
        }
        Ok(())
    })?;
    Ok((mmm.name().to_string(), secs))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (m, k, n) = (args.m, args.k, args.n);
    let macs = (m * k * n * args.reps) as f64;
    let report = |what: &str, secs: f64, base: f64| {
        println!(
            "{what:<44} {:8.3} ms  {:6.1} G MAC/s  {:5.2}x sgemm's time",
            secs * 1e3,
            macs / secs / 1e9,
            secs / base
        );
    };
    println!("[{m}, {k}] x [{k}, {n}], {} products a call", args.reps);

    let value = |i: usize| ((i * 7919) % 255) as f32 / 255.0 - 0.5;
    let wa = Array2::from_shape_fn((m, k), |(i, j)| value(i * k + j));
    let xb = Array2::from_shape_fn((k, n), |(i, j)| value(i * n + j + 1));
    let mut yc = Array2::<f32>::zeros((m, n));
    let sgemm = time(args.iters, || {
        for _ in 0..args.reps {
            general_mat_mul(1.0, &wa, &xb, 0.0, &mut yc);
        }
        Ok(())
    })?;
    report("matrixmultiply sgemm (the Winograd op's)", sgemm, sgemm);

    let a32 = Tensor::from(wa.clone().into_dyn());
    let b32 = Tensor::from(xb.clone().into_dyn());
    let mut c32 = Tensor::zero::<f32>(&[m, n])?;
    let (name, secs) = tract_product(f32::datum_type(), 0, &a32, &b32, &mut c32, &args)?;
    report(&format!("tract-linalg f32 ({name})"), secs, sgemm);

    let a8 = Tensor::from(wa.mapv(|v| (v * 254.0) as i8).into_dyn());
    let b8 = Tensor::from(xb.mapv(|v| (v * 254.0) as i8).into_dyn());
    let mut c8 = Tensor::zero::<i32>(&[m, n])?;
    let (name, secs) = tract_product(i32::datum_type(), 1, &a8, &b8, &mut c8, &args)?;
    report(
        &format!("tract-linalg i8 x i8 -> i32 ({name})"),
        secs,
        sgemm,
    );

    // The products are checked, so that the times are of the right computation.
    let worst = c32
        .to_plain_array_view::<f32>()?
        .iter()
        .zip(yc.iter())
        .map(|(t, s)| (t - s).abs())
        .fold(0f32, f32::max);
    anyhow::ensure!(
        worst <= 1e-4 * k as f32,
        "tract-linalg f32 differs from sgemm by {worst}"
    );
    let (a8, b8) = (
        a8.to_plain_array_view::<i8>()?,
        b8.to_plain_array_view::<i8>()?,
    );
    let exact = |i: usize, j: usize| -> i32 {
        (0..k)
            .map(|l| i32::from(a8[[i, l]]) * i32::from(b8[[l, j]]))
            .sum()
    };
    let c8 = c8.to_plain_array_view::<i32>()?;
    anyhow::ensure!(
        (0..m).all(|i| (0..n).all(|j| c8[[i, j]] == exact(i, j))),
        "tract-linalg's int8 product differs from the exact one"
    );
    Ok(())
}
