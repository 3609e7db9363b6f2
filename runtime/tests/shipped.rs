//! The shipped models through the very ONNX files that ship: the Gaussian-only model
//! (`models/edge/student-edge`, the paper's Table 1 setting) on the paper's Gaussian8 ×4 protocol
//! over Set5 beats bicubic by at least 3 dB and its int8 graphs lose at most 0.1 dB against
//! float32; the degradation-aware candidate names the blur; the default camera model
//! (`models/edge/camera/student-edge-camera`) beats bicubic on camera-like inputs (issue targets).
//! Skipped off x86-64: under qemu-user the whole-image runs take far too long; the ARM
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

/// The degradation-aware candidate (`models/edge/blind/student-edge-blind`, `cpu-edge-blind`),
/// through its shipped ONNX files and bank: its IDR names the blur of Set14 centre crops (the
/// bank's nearest σ within ±0.6 for σ 0.8 and 3.4, where the paper-recipe model names one σ for
/// all), and upscaling a crop with the IDR of the other σ costs PSNR (the IDR matters). Card:
/// 80 % of 100 B100 crops within ±0.6; swap cost 1.20 dB on Set14 (trainer).
#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "too slow under qemu-user")]
fn blind_candidate_names_the_blur_and_depends_on_its_idr() {
    use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
    use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
    let model = "models/edge/blind/student-edge-blind";
    let up = Upscaler::load(repo(model), Options::default()).unwrap();
    let bank = kdsr_runtime::bank::Bank::load_for(
        &repo(&format!("{model}.bank")),
        &up.info().weights_hash,
    )
    .unwrap();
    let images = load_folder(&repo("data/Set14"), 4, 6).unwrap();
    let (mut named, mut total, mut swap_cost) = (0, 0, 0.0);
    for img in &images {
        let c = 192.min(img.hr.height()).min(img.hr.width()) / 4 * 4;
        let hr = img
            .hr
            .crop((img.hr.height() - c) / 2, (img.hr.width() - c) / 2, c, c)
            .unwrap();
        let mut lrs = Vec::new();
        for sigma in [0.8f32, 3.4] {
            let deg = ClassicDegradation::new(
                isotropic_gaussian(KERNEL_SIZE, f64::from(sigma)).unwrap(),
                4,
                0.0,
                Downsample::Bicubic,
            )
            .unwrap();
            let lr = deg.apply_with_noise(&hr, None).unwrap();
            let idr = up.estimate_idr(&lr).unwrap();
            let best = &bank.nearest(&idr.d_prime, 1)[0];
            named += usize::from((best.entry.sigma - sigma).abs() <= 0.6);
            total += 1;
            lrs.push((lr, idr));
        }
        let psnr = |lr, idr| {
            let sr = up.upscale_with_idr(lr, idr).unwrap();
            kdsr_core::metrics::evaluate_pair(&sr, &hr, 4, MetricVariant::Kdsr)
                .unwrap()
                .psnr
        };
        swap_cost += psnr(&lrs[0].0, &lrs[0].1) - psnr(&lrs[0].0, &lrs[1].1);
        swap_cost += psnr(&lrs[1].0, &lrs[1].1) - psnr(&lrs[1].0, &lrs[0].1);
    }
    let swap_cost = swap_cost / (2 * images.len()) as f64;
    eprintln!(
        "blind candidate: σ named within ±0.6 for {named}/{total}, swap cost {swap_cost:.3} dB"
    );
    assert!(named * 10 >= total * 8, "σ named for {named}/{total}");
    assert!(swap_cost >= 0.3, "swap cost {swap_cost:.3} dB");
}

/// The camera model (`models/edge/camera/student-edge-camera`, `cpu-edge-camera`), through its
/// shipped f32 and int8 ONNX files, on the `camera` suite (blur + noise, JPEG, both; one draw per
/// image) over the first 20 B100 images: ≥ +0.33 dB over bicubic on average in every case,
/// ≥ +0.58 dB over all three, int8 within 0.1 dB of f32; and its IDR names the noise level of
/// Set14 crops from its bank.
/// The camera model's least mean gain over bicubic on the test's 60 LR images, and its least
/// gain in each case. Measured when written (the fourth fine-tune, `training/student-ft4`):
/// mean +0.63 dB; blur + noise +0.86, JPEG +0.41, both +0.61 (the 300 images of
/// `models/edge/camera/eval-onnx-camera-f32.md`: +0.63). The model before it (`student-ft2`)
/// gave +0.54 with JPEG at +0.30 and fails both bounds.
const CAMERA_MIN_GAIN_DB: f64 = 0.58;
const CAMERA_MIN_CASE_GAIN_DB: f64 = 0.33;

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "too slow under qemu-user")]
fn camera_model_beats_bicubic_on_camera_inputs_and_names_the_noise() {
    use kdsr_core::eval::camera_cases;
    use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
    use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
    let model = "models/edge/camera/student-edge-camera";
    let images = load_folder(&repo("data/B100"), 4, 20).unwrap();
    let cases = camera_cases(4).unwrap();
    let run = |m: &str| {
        let up = Upscaler::load(repo(m), Options::default()).unwrap();
        evaluate_with(&images, &cases, 4, MetricVariant::Kdsr, 0, |lr, _| {
            up.upscale(lr)
        })
        .unwrap()
    };
    let f32r = run(model);
    let int8r = run("models/edge/camera/student-edge-camera-int8");
    for ((case, p, _, b, _), (_, q, _, _, _)) in f32r.per_case.iter().zip(&int8r.per_case) {
        eprintln!("{case}: f32 {p:.3} dB, int8 {q:.3} dB, bicubic {b:.3} dB");
        assert!(
            p - b >= CAMERA_MIN_CASE_GAIN_DB,
            "{case}: {p:.3} vs bicubic {b:.3}"
        );
    }
    let (p, q, b) = (f32r.mean.0, int8r.mean.0, f32r.mean.2);
    assert!(p - b >= CAMERA_MIN_GAIN_DB, "mean {p:.3} vs bicubic {b:.3}");
    assert!(p - q <= 0.1, "int8 {q:.3} vs f32 {p:.3}");

    let up = Upscaler::load(repo(model), Options::default()).unwrap();
    let bank = kdsr_runtime::bank::Bank::load_for(
        &repo(&format!("{model}.bank")),
        &up.info().weights_hash,
    )
    .unwrap();
    let (mut named, mut total) = (0, 0);
    for (i, img) in load_folder(&repo("data/Set14"), 4, 6)
        .unwrap()
        .iter()
        .enumerate()
    {
        let c = 192.min(img.hr.height()).min(img.hr.width()) / 4 * 4;
        let hr = img
            .hr
            .crop((img.hr.height() - c) / 2, (img.hr.width() - c) / 2, c, c)
            .unwrap();
        for (k, noise) in [0.0f32, 20.0].into_iter().enumerate() {
            let deg = ClassicDegradation::new(
                isotropic_gaussian(KERNEL_SIZE, 2.0).unwrap(),
                4,
                noise,
                Downsample::Bicubic,
            )
            .unwrap();
            let lr = deg
                .apply(&hr, &mut kdsr_core::eval::case_rng(0, k, i))
                .unwrap();
            let idr = up.estimate_idr(&lr).unwrap();
            let best = &bank.nearest(&idr.d_prime, 1)[0];
            named += usize::from((best.entry.noise - noise).abs() <= 5.0);
            total += 1;
        }
    }
    eprintln!("camera model: noise 0 / 20 named within ±5 for {named}/{total}");
    assert!(named * 10 >= total * 8, "noise named for {named}/{total}");
}
