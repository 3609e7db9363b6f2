//! kdsr-edge's own operators (`runtime/src/ops`) against tract's on the shipped student-edge
//! graph (trained weights): the rewritten plan must give the plain plan's output.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdsr_runtime::ops::winograd::{Tile, TileChoice};
use kdsr_runtime::ops::{OpSet, rewrite, rewrite_decluttered};
use tract_onnx::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The dynamic student-edge graph (IDE + SR: strided, depthwise, 1×1 and 3×3 convolutions, two
/// depth-to-space) optimized for a `1×3×h×w` input, with the ops of `set` substituted; and how
/// many were.
fn plan(set: OpSet, h: usize, w: usize) -> (Arc<TypedRunnableModel>, kdsr_runtime::ops::Rewrites) {
    plan_of("models/edge/student-edge.onnx", set, h, w)
}

/// [`plan`] for the graph at `path` (repo-relative; its input 0 is the LR image).
fn plan_of(
    path: &str,
    set: OpSet,
    h: usize,
    w: usize,
) -> (Arc<TypedRunnableModel>, kdsr_runtime::ops::Rewrites) {
    let model = tract_onnx::onnx()
        .model_for_path(repo().join(path))
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, h, w]).into())
        .unwrap();
    let mut typed = model.into_typed().unwrap();
    let before = rewrite(&mut typed, set).unwrap();
    let mut typed = typed.into_decluttered().unwrap();
    let after = rewrite_decluttered(&mut typed, set).unwrap();
    let done = kdsr_runtime::ops::Rewrites {
        depth_to_space: before.depth_to_space,
        pointwise: before.pointwise,
        ..after
    };
    (
        typed.into_optimized().unwrap().into_runnable().unwrap(),
        done,
    )
}

/// A crop of Set5 `baby` as `[1, 3, h, w]`.
fn input(h: usize, w: usize) -> Tensor {
    let img = kdsr_core::io::load_image(repo().join("data/Set5/baby.png"))
        .unwrap()
        .rgb;
    let crop = img.crop(100, 120, h, w).unwrap();
    Tensor::from_shape(&[1, 3, h, w], crop.data()).unwrap()
}

fn sr(plan: &Arc<TypedRunnableModel>, x: &Tensor) -> Vec<f32> {
    run(plan, tvec![x.clone().into_tvalue()])
}

/// The plan's first output, flat.
fn run(plan: &Arc<TypedRunnableModel>, inputs: TVec<TValue>) -> Vec<f32> {
    let out = plan.run(inputs).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Odd sizes (partial 4×4 and 6×6 Winograd tiles on both edges). Depth-to-space moves values
/// exactly, but without tract's axis moves next to them tract optimizes the neighbouring
/// convolutions differently (measured 6e-7; tolerance 1e-5); Winograd F(4,3) and F(6,3) change
/// float32 rounding only: within 1e-4 on an output in [0, 1] after every dense 3×3 convolution
/// is substituted (the tolerance of tiled = untiled; measured on x86-64 6.0e-7 and 7.2e-7), with
/// the LeakyReLUs, residual adds and depth-to-space that follow them fused in, and the
/// depthwise convolutions and LeakyReLUs before the IDR-DCRB blocks' convolutions computed
/// inside them.
#[test]
fn substituted_ops_give_tracts_output_on_trained_weights() {
    let (h, w) = (37, 45);
    let x = input(h, w);
    let (plain, none) = plan(OpSet::default(), h, w);
    assert_eq!(none, Default::default());
    let reference = sr(&plain, &x);
    let d2s = OpSet {
        depth_to_space: true,
        ..OpSet::default()
    };
    let (p, done) = plan(d2s, h, w);
    assert_eq!(done.depth_to_space, 2, "the two upsampler depth-to-space");
    let d = max_diff(&reference, &sr(&p, &x));
    eprintln!("depth-to-space op vs tract, student-edge dynamic {h}x{w}: max |Δ| {d:.2e}");
    assert!(d <= 1e-5, "max |Δ| {d}");
    for tile in [Tile::F43, Tile::F63] {
        let all = OpSet {
            depth_to_space: true,
            winograd: Some(TileChoice::Fixed(tile)),
            qdq: true,
            ..OpSet::default()
        };
        let (p, done) = plan(all, h, w);
        assert_eq!(done.qdq, 0, "a float32 graph has no quantization");
        // head, 8 block convs, body tail, 2 upsampler, tail: 13 in the SR network, more in the
        // IDE.
        assert!(done.winograd >= 13, "{done:?}");
        // Fused into them: 9 residual adds and the 2 depth-to-space in the SR network,
        // LeakyReLUs and residual adds in the IDE.
        assert!(done.fused >= 11, "{done:?}");
        // The SR network's `add_mean` (1×1) composed into its tail convolution.
        assert_eq!(done.pointwise, 1, "{done:?}");
        // Each of the 8 IDR-DCRB blocks' depthwise convolution (its kernels generated from the
        // IDR in the graph) and LeakyReLU, computed inside the convolution after them.
        assert_eq!(done.prologue, 8, "{done:?}");
        let d = max_diff(&reference, &sr(&p, &x));
        eprintln!(
            "Winograd {tile} vs tract, student-edge dynamic {h}x{w}: max |Δ| {d:.2e}, {done:?}"
        );
        assert!(d <= 1e-4, "{tile}: max |Δ| {d}");
    }
}

/// The int8 QDQ split SR graph (student-edge-int8, trained weights, `D` from the float32 IDE):
/// - each activation's quantize → (u8 lookup table) → dequantize chain as one op (30), fused into
///   the convolution before it where that convolution is its only producer and it the only
///   consumer: the output equals the plan that leaves the chains to tract, bit for bit (both
///   run Winograd; the op and the fusion compute tract's values, `ops::qdq`'s tests);
/// - against tract's own ops only (its quantized convolutions, whose arithmetic differs by
///   architecture, so a value can land one quantization step away): mean |Δ| within 2e-3 and
///   PSNR between the two above 45 dB, output in [0, 1] (measured on x86-64 5.8e-4 and
///   56.6 dB with the default tile choice — F(6,3) for the upsampler's convolutions at this
///   size, F(4,3) for the others —, 3.9e-4 and 58.6 dB with F(6,3) for all, 4.0e-7 and 101.5 dB
///   with F(4,3) for all; on aarch64 under qemu 5.8e-4 and 56.6 dB with F(4,3) for all).
#[test]
fn qdq_chains_give_tracts_output_on_the_int8_graph() {
    let (h, w) = (37, 45);
    let x = input(h, w);
    let (ide, _) = plan_of("models/edge/student-edge-ide.onnx", OpSet::default(), h, w);
    let d: Vec<f32> = run(&ide, tvec![x.clone().into_tvalue()]);
    let d = Tensor::from_shape(&[1, d.len()], &d).unwrap();
    let sr_of = |set: OpSet| {
        let (p, done) = plan_of("models/edge/student-edge-int8-sr.onnx", set, h, w);
        (
            run(&p, tvec![x.clone().into_tvalue(), d.clone().into_tvalue()]),
            done,
        )
    };
    let without = OpSet {
        depth_to_space: true,
        winograd: Some(TileChoice::BySize),
        qdq: false,
        ..OpSet::default()
    };
    let (reference, plain) = sr_of(without);
    let (got, done) = sr_of(OpSet {
        qdq: true,
        ..without
    });
    assert_eq!(plain.qdq, 0);
    assert_eq!(done.qdq, 30, "{done:?}");
    // Into the convolutions (none without qdq: a pair separates each from what follows it):
    // 14 chains, the 9 residual adds and the 2 depth-to-space the chains no longer keep apart.
    assert!(done.fused >= plain.fused + 20, "{done:?} vs {plain:?}");
    let d = max_diff(&reference, &got);
    eprintln!(
        "QDQ chains as one op vs tract's, student-edge-int8 SR {h}x{w}: max |Δ| {d:.2e}, {done:?}"
    );
    assert_eq!(d, 0.0, "max |Δ| {d}");
    let (tract_only, none) = sr_of(OpSet::default());
    assert_eq!(none, Default::default());
    let n = got.len() as f64;
    let mean = got
        .iter()
        .zip(&tract_only)
        .map(|(a, b)| f64::from((a - b).abs()))
        .sum::<f64>()
        / n;
    let mse = got
        .iter()
        .zip(&tract_only)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / n;
    let psnr = -10.0 * mse.max(1e-20).log10();
    eprintln!("all ops vs tract's only, int8 SR: mean |Δ| {mean:.2e}, PSNR {psnr:.1} dB");
    assert!(mean <= 2e-3 && psnr >= 45.0, "mean |Δ| {mean}, PSNR {psnr}");
}

/// PSNR in dB between two outputs in [0, 1], and their mean |Δ|.
fn psnr_and_mean(a: &[f32], b: &[f32]) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .sum::<f64>()
        / n;
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / n;
    (-10.0 * mse.max(1e-20).log10(), mean)
}

/// `--precision bf16` (every 3×3 convolution's inputs and weights rounded to bf16, float32 sums,
/// on AMX) against tract's float32 ops on the dynamic student-edge graph (trained weights): the
/// same substitutions and fusions as float32 (the tail into the ×4 upsampler too), and the output within bf16's rounding: PSNR
/// between the two at least 55 dB and mean |Δ| at most 1.5e-3, output in [0, 1] (measured on an
/// Intel Xeon VM with AMX, 2026-12-06: 65.4 dB, 4.3e-4). Where the CPU has no AMX bf16 the test says so
/// and checks nothing more (`tests/cli.rs` checks the error such a CPU gives).
#[test]
fn bf16_ops_stay_within_bf16_rounding_of_tracts_output() {
    if !kdsr_runtime::ops::amx::available() {
        eprintln!("no AMX bf16 on this machine: the bf16 path is not tested here");
        return;
    }
    let (h, w) = (37, 45);
    let x = input(h, w);
    let (plain, _) = plan(OpSet::default(), h, w);
    let reference = sr(&plain, &x);
    let f32_set = OpSet::parse(kdsr_runtime::ops::DEFAULT_OPS).unwrap();
    let (_, f32_done) = plan(f32_set, h, w);
    let (p, done) = plan(
        OpSet {
            bf16: true,
            ..f32_set
        },
        h,
        w,
    );
    assert_eq!(done, f32_done, "bf16 substitutes and fuses as float32 does");
    let got = sr(&p, &x);
    let (psnr, mean) = psnr_and_mean(&got, &reference);
    eprintln!(
        "bf16 vs tract's float32, student-edge dynamic {h}x{w}: PSNR {psnr:.1} dB, mean |Δ| {mean:.2e}"
    );
    assert!(
        psnr >= 55.0 && mean <= 1.5e-3,
        "PSNR {psnr}, mean |Δ| {mean}"
    );
}

#[test]
fn the_ops_list_is_parsed_and_checked() {
    assert_eq!(OpSet::parse("none").unwrap(), OpSet::default());
    let s = OpSet::parse("winograd, depth-to-space").unwrap();
    assert!(s.winograd == Some(TileChoice::BySize) && s.depth_to_space && !s.qdq);
    let s = OpSet::parse("winograd-f43").unwrap();
    assert!(s.winograd == Some(TileChoice::Fixed(Tile::F43)) && !s.depth_to_space);
    let f63 = OpSet::parse("winograd-f63").unwrap().winograd;
    assert_eq!(f63, Some(TileChoice::Fixed(Tile::F63)));
    assert!(OpSet::parse(kdsr_runtime::ops::DEFAULT_OPS).unwrap().qdq);
    let e = OpSet::parse("depth-to-space,fft").unwrap_err();
    assert!(e.contains("fft") && e.contains("KDSR_EDGE_OPS"), "{e}");
}
