//! The shipped default model (`models/edge/student-edge`, the CLI's default `-m`) on the paper's
//! Gaussian8 ×4 protocol over Set5, through the very ONNX files that ship: it beats bicubic by at
//! least 3 dB, and its int8 graphs lose at most 0.1 dB against float32 (issue targets).
//! Skipped off x86-64: under qemu-user the 80 whole-image runs take far too long; the ARM
//! numerics are covered by the other tests.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;

use kdsr_core::eval::{evaluate_with, gaussian8, load_folder};
use kdsr_core::metrics::MetricVariant;
use kdsr_runtime::{Options, Upscaler};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn set5_gaussian8(model: &str) -> (f64, f64) {
    let up = Upscaler::load(repo(model), Options::default()).unwrap();
    let images = load_folder(&repo("data/Set5"), 4, usize::MAX).unwrap();
    let cases = gaussian8(4, &[]).unwrap();
    let r = evaluate_with(&images, &cases, 4, MetricVariant::Kdsr, 0, |lr, _| {
        up.upscale(lr)
    })
    .unwrap();
    (r.mean.0, r.mean.2)
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "too slow under qemu-user")]
fn shipped_model_beats_bicubic_and_int8_costs_at_most_0_1_db() {
    let (f32_psnr, bicubic) = set5_gaussian8("models/edge/student-edge");
    let (int8_psnr, _) = set5_gaussian8("models/edge/student-edge-int8");
    eprintln!(
        "Set5 Gaussian8: f32 {f32_psnr:.3} dB, int8 {int8_psnr:.3} dB, bicubic {bicubic:.3} dB"
    );
    // Measured 29.07 vs 25.87 (model card): the target, at least 3 dB over bicubic.
    assert!(
        f32_psnr - bicubic >= 3.0,
        "{f32_psnr:.3} vs bicubic {bicubic:.3}"
    );
    assert!(
        f32_psnr - int8_psnr <= 0.1,
        "int8 {int8_psnr:.3} vs f32 {f32_psnr:.3}"
    );
}
